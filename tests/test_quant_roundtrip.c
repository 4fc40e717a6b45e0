/* Quantize -> dequantize round trips for every type cleave can quantize:
 * the relative RMS error stays under a per-type bound on several input
 * distributions, all-zero input comes back exactly zero, and quantizing is
 * deterministic and independent of the destination's alignment. */
#include <stdint.h>

#include "blocks.h"
#include "dequantize.h"
#include "quantize.h"
#include "status.h"
#include "test.h"
#include "types.h"

#define N_ELEMS 8192 /* 32 K-quant super-blocks, 256 32-element blocks */

/* Bounds on RMS(dequant(quant(x)) - x) / RMS(x) per type: `typical` over
 * every distribution below but "outliers", `outliers` for gaussian data with
 * 1% of values x25 (they stretch a block's range, so its other values lose
 * resolution; the longer the block, the more blocks are hit). Measured values
 * (gaussian / uniform / outliers, N_ELEMS values, this quantizer) are in the
 * comments; bounds are ~1.25x the worst measured, so a change that makes the
 * error clearly worse fails. These are near ideal uniform quantization:
 * error ~ step / sqrt(12) with step = block range / (levels - 1); e.g. Q6_K's
 * 16-element sub-blocks of gaussian data span ~3.6 sigma over 63 steps,
 * 0.016. For comparison, the plain max-abs quantizers of the gguf Python
 * package measure Q4_0 0.086, Q4_1 0.078, Q5_0 0.043, Q5_1 0.038 on gaussian
 * data. */
typedef struct type_bound {
    int32_t type;
    double typical;
    double outliers;
} type_bound;

static const type_bound bounds[] = {
    {CLV_TYPE_F32, 0.0, 0.0},         /* exact */
    {CLV_TYPE_F16, 0.0004, 0.0004},   /* 0.00021 / 0.00018 / 0.00021; constant 0.00032 */
    {CLV_TYPE_BF16, 0.003, 0.003},    /* 0.00165 / 0.00147 / 0.00170; constant 0.0024 */
    {CLV_TYPE_Q8_0, 0.007, 0.015},    /* 0.0053 / 0.0037 / 0.0116 */
    {CLV_TYPE_Q8_1, 0.007, 0.015},    /* 0.0054 / 0.0038 / 0.0116 */
    {CLV_TYPE_Q8_K, 0.009, 0.033},    /* 0.0071 / 0.0039 / 0.0262 (one scale per 256) */
    {CLV_TYPE_Q6_K, 0.021, 0.042},    /* 0.0166 / 0.0126 / 0.0334 */
    {CLV_TYPE_Q5_0, 0.051, 0.11},     /* 0.0404 / 0.0281 / 0.0884 */
    {CLV_TYPE_Q5_1, 0.042, 0.058},    /* 0.0335 / 0.0260 / 0.0465 */
    {CLV_TYPE_Q5_K, 0.044, 0.062},    /* 0.0342 / 0.0266 / 0.0498 */
    {CLV_TYPE_Q4_0, 0.10, 0.18},      /* 0.0792 / 0.0588 / 0.1440 */
    {CLV_TYPE_Q4_1, 0.088, 0.12},     /* 0.0701 / 0.0535 / 0.0961 */
    {CLV_TYPE_Q4_K, 0.088, 0.122},    /* 0.0704 / 0.0536 / 0.0978 */
};
#define N_TYPES (int)(sizeof bounds / sizeof bounds[0])

/* --- deterministic random numbers (splitmix64) */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng_next(void) {
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double rng_uniform(void) { return (double)(rng_next() >> 11) * 0x1p-53; } /* [0, 1) */

static double rng_gauss(void) {
    double u = rng_uniform() + 0x1p-60, v = rng_uniform();
    return sqrt(-2.0 * log(u)) * cos(2.0 * 3.14159265358979323846 * v);
}

enum dist { GAUSS, UNIFORM, POSITIVE, OUTLIERS, SCALED_SMALL, SCALED_LARGE, CONSTANT, NEG_CONSTANT, ZERO, N_DIST };
static const char *dist_names[N_DIST] = {"gaussian", "uniform", "positive", "outliers", "gauss*1e-3",
                                         "gauss*1e3", "constant", "neg-const", "zero"};

static void fill(float *x, int n, enum dist d) {
    for (int i = 0; i < n; i++) {
        switch (d) {
        case GAUSS: x[i] = (float)rng_gauss(); break;
        case UNIFORM: x[i] = (float)(2.0 * rng_uniform() - 1.0); break;
        case POSITIVE: x[i] = (float)fabs(rng_gauss()); break; /* post-activation-like */
        case OUTLIERS: x[i] = (float)(rng_gauss() * (rng_uniform() < 0.01 ? 25.0 : 1.0)); break;
        case SCALED_SMALL: x[i] = (float)(rng_gauss() * 1e-3); break;
        case SCALED_LARGE: x[i] = (float)(rng_gauss() * 1e3); break;
        case CONSTANT: x[i] = 0.37f; break;
        case NEG_CONSTANT: x[i] = -1.3f; break;
        case ZERO: x[i] = 0.0f; break;
        case N_DIST: break;
        }
    }
}

static double rel_rmse(const float *x, const float *y, int n) {
    double se = 0.0, ss = 0.0;
    for (int i = 0; i < n; i++) {
        double e = (double)y[i] - (double)x[i];
        se += e * e;
        ss += (double)x[i] * (double)x[i];
    }
    return ss > 0.0 ? sqrt(se / ss) : sqrt(se / n);
}

static float x_buf[N_ELEMS], y_buf[N_ELEMS];
static uint8_t q_buf[N_ELEMS * 4 + 64], q_again[N_ELEMS * 4 + 64];

static void check_type(const type_bound *tb) {
    int32_t type = tb->type;
    uint64_t bytes = 0;
    CLV_ASSERT(clv_type_bytes(type, N_ELEMS, &bytes) && bytes <= N_ELEMS * 4);
    CHECK_MSG(clv_type_can_quantize(type) && clv_type_can_dequantize(type), "%s", clv_type_name(type));
    printf("  %-5s", clv_type_name(type));
    for (int d = 0; d < N_DIST; d++) {
        fill(x_buf, N_ELEMS, (enum dist)d);
        CHECK_STATUS(clv_quantize_row(type, x_buf, q_buf, N_ELEMS), CLV_OK);
        CHECK_STATUS(clv_dequantize_row(type, q_buf, y_buf, N_ELEMS), CLV_OK);
        double err = rel_rmse(x_buf, y_buf, N_ELEMS);
        double bound = d == OUTLIERS ? tb->outliers : tb->typical;
        printf(" %s=%.5f", dist_names[d], err);
        if (d == ZERO) {
            int nonzero = 0;
            for (int i = 0; i < N_ELEMS; i++) nonzero += y_buf[i] != 0.0f;
            CHECK_MSG(nonzero == 0, "%s: %d of all-zero input come back non-zero", clv_type_name(type),
                      nonzero);
        } else {
            CHECK_MSG(err <= bound, "%s on %s input: relative RMSE %.5f > bound %.5f",
                      clv_type_name(type), dist_names[d], err, bound);
        }

        /* Deterministic, and the same bytes at an odd destination address. */
        CHECK_STATUS(clv_quantize_row(type, x_buf, q_again + 1, N_ELEMS), CLV_OK);
        CHECK_MSG(memcmp(q_buf, q_again + 1, bytes) == 0, "%s: quantizing %s twice differs",
                  clv_type_name(type), dist_names[d]);
    }
    printf("\n");
}

/* The redundant sums that activation blocks carry for dot products. */
static void check_activation_sums(void) {
    fill(x_buf, N_ELEMS, GAUSS);
    CHECK_STATUS(clv_quantize_row(CLV_TYPE_Q8_K, x_buf, q_buf, CLV_QK_K), CLV_OK);
    clv_block_q8_k bk;
    memcpy(&bk, q_buf, sizeof bk);
    for (int j = 0; j < CLV_QK_K / 16; j++) {
        int sum = 0;
        for (int i = 0; i < 16; i++) sum += bk.qs[16 * j + i];
        CHECK_EQ_INT(bk.bsums[j], sum);
    }
    CHECK_STATUS(clv_quantize_row(CLV_TYPE_Q8_1, x_buf, q_buf, CLV_QK), CLV_OK);
    clv_block_q8_1 b1;
    memcpy(&b1, q_buf, sizeof b1);
    int sum = 0;
    for (int i = 0; i < CLV_QK; i++) sum += b1.qs[i];
    float s = clv_fp16_to_fp32(b1.s), want = clv_fp16_to_fp32(b1.d) * (float)sum;
    CHECK_MSG(fabsf(s - want) <= 1e-3f * fabsf(want) + 1e-6f, "Q8_1 s %g, d*sum %g", (double)s, (double)want);
}

/* Block structs against the type table (the static asserts check literals). */
static void check_block_sizes(void) {
    static const struct {
        int32_t type;
        size_t size;
    } sizes[] = {
        {CLV_TYPE_Q4_0, sizeof(clv_block_q4_0)},     {CLV_TYPE_Q4_1, sizeof(clv_block_q4_1)},
        {CLV_TYPE_Q5_0, sizeof(clv_block_q5_0)},     {CLV_TYPE_Q5_1, sizeof(clv_block_q5_1)},
        {CLV_TYPE_Q8_0, sizeof(clv_block_q8_0)},     {CLV_TYPE_Q8_1, sizeof(clv_block_q8_1)},
        {CLV_TYPE_Q2_K, sizeof(clv_block_q2_k)},     {CLV_TYPE_Q3_K, sizeof(clv_block_q3_k)},
        {CLV_TYPE_Q4_K, sizeof(clv_block_q4_k)},     {CLV_TYPE_Q5_K, sizeof(clv_block_q5_k)},
        {CLV_TYPE_Q6_K, sizeof(clv_block_q6_k)},     {CLV_TYPE_Q8_K, sizeof(clv_block_q8_k)},
        {CLV_TYPE_IQ4_NL, sizeof(clv_block_iq4_nl)}, {CLV_TYPE_IQ4_XS, sizeof(clv_block_iq4_xs)},
        {CLV_TYPE_MXFP4, sizeof(clv_block_mxfp4)},
    };
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        CHECK_MSG(clv_type_get(sizes[i].type)->block_bytes == (int32_t)sizes[i].size, "%s: %zu bytes",
                  clv_type_name(sizes[i].type), sizes[i].size);
    }
}

/* fp16 conversions: every half round-trips exactly, and fp32 -> fp16 rounds
 * to nearest even at the tricky points. */
static void check_fp16(void) {
    int bad = 0;
    for (uint32_t h = 0; h < 0x10000; h++) {
        uint32_t exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
        float f = clv_fp16_to_fp32((clv_fp16)h);
        bool nan = exp == 0x1f && mant != 0;
        if (exp != 0x1f) { /* finite: the value itself, computed another way */
            double v = exp ? ldexp((double)(mant | 0x400), (int)exp - 25) : ldexp((double)mant, -24);
            bad += (double)f != ((h & 0x8000) ? -v : v);
        }
        /* NaNs come back quiet with their payload; everything else exactly */
        bad += clv_fp32_to_fp16(f) != (nan ? (h | 0x200) : h);
    }
    CHECK_MSG(bad == 0, "%d fp16 values do not round-trip", bad);
    CHECK_EQ_INT(clv_fp32_to_fp16(65504.0f), 0x7bff);
    CHECK_EQ_INT(clv_fp32_to_fp16(65519.99f), 0x7bff);
    CHECK_EQ_INT(clv_fp32_to_fp16(65520.0f), 0x7c00);           /* tie to even: inf */
    CHECK_EQ_INT(clv_fp32_to_fp16(1.0f + 0x1p-11f), 0x3c00);    /* tie, even stays */
    CHECK_EQ_INT(clv_fp32_to_fp16(1.0f + 3 * 0x1p-11f), 0x3c02); /* tie, odd rounds up */
    CHECK_EQ_INT(clv_fp32_to_fp16(0x1p-25f), 0x0000);           /* tie to even: zero */
    CHECK_EQ_INT(clv_fp32_to_fp16(0x1.000002p-25f), 0x0001);
    CHECK_EQ_INT(clv_fp32_to_fp16(3 * 0x1p-25f), 0x0002);       /* tie, odd rounds up */
    CHECK_EQ_INT(clv_fp32_to_fp16(-0x1.ffcp-15f), 0x8400);      /* subnormal tie rounds up to normal */
    CHECK_EQ_INT(clv_fp32_to_fp16(-0.0f), 0x8000);
    CHECK_EQ_INT(clv_fp32_to_fp16(1e10f), 0x7c00);
    CHECK_EQ_INT(clv_fp32_to_bf16(1.0f + 0x1p-8f), 0x3f80);     /* tie, even stays */
    CHECK_EQ_INT(clv_fp32_to_bf16(1.0f + 3 * 0x1p-8f), 0x3f82);
    CHECK_EQ_INT(clv_fp32_to_bf16(clv_fp32_from_bits(0x7f7fffff)), 0x7f80); /* overflow: inf */
    CHECK_EQ_INT(clv_fp32_to_bf16(clv_fp32_from_bits(0x7f800001)) & 0x7fc0, 0x7fc0); /* NaN stays NaN */
    CHECK_EQ_INT(clv_fp32_bits(clv_bf16_to_fp32(0xc0a0)), 0xc0a00000);
}

int main(void) {
    check_fp16();
    check_block_sizes();
    for (int t = 0; t < N_TYPES; t++) check_type(&bounds[t]);
    check_activation_sums();

    float x[CLV_QK_K] = {0};
    uint8_t out[512];
    CHECK_STATUS(clv_quantize_row(CLV_TYPE_Q2_K, x, out, CLV_QK_K), CLV_ERR_UNSUPPORTED);
    CHECK(strstr(clv_last_error(), "Q2_K") != NULL);
    CHECK_STATUS(clv_quantize_row(CLV_TYPE_Q4_K, x, out, 128), CLV_ERR_ARG);
    CHECK_STATUS(clv_quantize_row(CLV_TYPE_Q8_0, x, out, -32), CLV_ERR_ARG);
    CHECK_STATUS(clv_quantize_row(CLV_TYPE_Q8_0, NULL, NULL, 0), CLV_OK);
    CHECK(!clv_type_can_quantize(CLV_TYPE_IQ4_XS));
    return test_finish("test_quant_roundtrip");
}
