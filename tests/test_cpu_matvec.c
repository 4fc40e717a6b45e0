/* CPU matvec/matmul kernels (kernels/cpu/matvec.h), every weight type on every
 * code path this CPU has (the scalar path always; others are skipped with a
 * note and are to be run on a machine that has them).
 *
 * For each row the test computes, in float64, ref = sum dequant(w) * dequant(xq)
 * (the dequantized activation, or x itself for F32 activations) and the
 * magnitude mag = sum |dequant(w)| * |dequant(xq)|, and checks
 *   (a) |y_path - y_scalar| <= bound_a * mag    (same integer sums, other float order)
 *   (b) |y_path - ref|      <= bound_b * mag    (float rounding only)
 * with the bounds of the table below (measured maxima printed at the end).
 * Both are relative to mag, not to |ref|, since ref may cancel to ~0.
 *
 * Error bounds (normalized by mag), per type, all paths:
 *   type                (a) vs scalar   (b) vs float64   why
 *   F32, F16, BF16         2e-6            2e-6          n-term float sums in other orders
 *   32-element formats     2e-6            2e-6          exact int block sums; per-block float terms
 *   K-quants, IQ4_XS       2e-6            2e-6          exact int super-block sums; two float terms
 * (measured maxima are ~10x below; a float sum of n terms has a worst-case
 * relative error of n * 2^-24 ~ 2.4e-4 at n = 4096, but random data stays
 * near sqrt(n) * 2^-24).
 *
 * Also: activation quantization is byte-identical to clv_quantize_row on
 * every path (including ties, tiny and huge values, all-zero blocks);
 * matmul equals matvec per activation (within bound (a)); r0/r1 sub-ranges
 * and strides write exactly their outputs. */
#include <stdbool.h>
#include <stdint.h>

#include "cpu/cpu_features.h"
#include "cpu/matvec.h"
#include "dequantize.h"
#include "fp16.h"
#include "quantize.h"
#include "test.h"
#include "types.h"

#define BOUND_A 2e-6
#define BOUND_B 2e-6

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng_u64(void) { /* splitmix64 */
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static float rng_uniform(void) { return (float)((double)(rng_u64() >> 11) * 0x1.0p-53) * 2.0f - 1.0f; }

/* Roughly normal, with occasional outliers as LLM activations have. */
static float rng_value(void) {
    float s = rng_uniform() + rng_uniform() + rng_uniform();
    if (rng_u64() % 64 == 0) s *= 12.0f;
    return s;
}

static const int32_t types[] = {
    CLV_TYPE_F32,  CLV_TYPE_F16,  CLV_TYPE_BF16, CLV_TYPE_Q4_0,   CLV_TYPE_Q4_1,   CLV_TYPE_Q5_0,
    CLV_TYPE_Q5_1, CLV_TYPE_Q8_0, CLV_TYPE_Q2_K, CLV_TYPE_Q3_K,   CLV_TYPE_Q4_K,   CLV_TYPE_Q5_K,
    CLV_TYPE_Q6_K, CLV_TYPE_IQ4_NL, CLV_TYPE_IQ4_XS, CLV_TYPE_MXFP4,
};
#define N_TYPES ((int)(sizeof types / sizeof types[0]))

static const clv_cpu_path paths[] = {CLV_CPU_PATH_SCALAR, CLV_CPU_PATH_AVX2, CLV_CPU_PATH_AVX512};
#define N_PATHS 3

static double max_err_a[CLV_TYPE_COUNT][N_PATHS], max_err_b[CLV_TYPE_COUNT][N_PATHS];

static void put_fp16(uint8_t *p, float v) {
    clv_fp16 h = clv_fp32_to_fp16(v);
    memcpy(p, &h, 2);
}

/* Random bytes everywhere, then sane values in the scale fields: every bit
 * pattern of quants and packed scales is valid, only scales must be finite. */
static void random_blocks(int32_t type, uint8_t *row, int64_t n) {
    const clv_type_info *ti = clv_type_get(type);
    int64_t nb = n / ti->block_elems;
    for (int64_t i = 0; i < nb * ti->block_bytes; i++) row[i] = (uint8_t)rng_u64();
    for (int64_t i = 0; i < nb; i++) {
        uint8_t *b = row + i * ti->block_bytes;
        float d = 0.01f * rng_uniform(), d2 = 0.01f * rng_uniform();
        switch (type) {
        case CLV_TYPE_Q4_1:
        case CLV_TYPE_Q5_1:
        case CLV_TYPE_Q4_K:
        case CLV_TYPE_Q5_K:
            put_fp16(b, d);
            put_fp16(b + 2, d2);
            break;
        case CLV_TYPE_Q4_0:
        case CLV_TYPE_Q5_0:
        case CLV_TYPE_Q8_0:
        case CLV_TYPE_IQ4_NL:
        case CLV_TYPE_IQ4_XS: put_fp16(b, d); break;
        case CLV_TYPE_MXFP4: b[0] = (uint8_t)(115 + rng_u64() % 16); break;
        case CLV_TYPE_Q2_K:
            put_fp16(b + 80, d);
            put_fp16(b + 82, d2);
            break;
        case CLV_TYPE_Q3_K: put_fp16(b + 108, d); break;
        case CLV_TYPE_Q6_K: put_fp16(b + 208, d); break;
        default: CHECK_MSG(false, "random_blocks: type %d", (int)type);
        }
    }
}

/* Row r of a weight matrix: quantized random floats where a quantizer
 * exists (even rows), random valid blocks otherwise. */
static void make_row(int32_t type, uint8_t *row, int64_t n, int64_t r, float *tmp) {
    bool plain = type == CLV_TYPE_F32 || type == CLV_TYPE_F16 || type == CLV_TYPE_BF16;
    if (plain || (clv_type_can_quantize(type) && r % 2 == 0)) {
        for (int64_t i = 0; i < n; i++) tmp[i] = rng_value() * 0.05f;
        CHECK_STATUS(clv_quantize_row(type, tmp, row, n), CLV_OK);
    } else {
        random_blocks(type, row, n);
    }
}

/* float64 reference and magnitude of one row against one activation. */
static void reference(int32_t type, const uint8_t *row, int64_t n, const float *xd, double *ref, double *mag,
                      float *wd) {
    CHECK_STATUS(clv_dequantize_row(type, row, wd, n), CLV_OK);
    double s = 0.0, m = 0.0;
    for (int64_t i = 0; i < n; i++) {
        s += (double)wd[i] * (double)xd[i];
        m += fabs((double)wd[i] * (double)xd[i]);
    }
    *ref = s;
    *mag = m;
}

/* Fills x (n floats) with random values, plus some hard cases for the
 * quantizers: zero blocks, values at rounding ties, tiny and huge ones. */
static void make_activation(float *x, int64_t n, int variant) {
    for (int64_t i = 0; i < n; i++) x[i] = rng_value();
    if (variant == 1 && n >= 64) {
        for (int i = 0; i < 32; i++) x[i] = 0.0f; /* an all-zero Q8_0 block */
        for (int i = 32; i < 64; i++) x[i] = (float)(i - 48) * 0.5f; /* ties at x * 127 / 8 */
    }
    if (variant == 2) {
        for (int64_t i = 0; i < n; i++) x[i] *= (i / 32) % 2 ? 1e-6f : 3e4f; /* subnormal fp16 d; large d */
    }
    if (variant == 3) {
        for (int64_t i = 0; i < n; i++) x[i] = (float)((int)(rng_u64() % 255) - 127); /* exact integers */
    }
}

typedef struct shape {
    int64_t n_in, n_rows, r0, r1;
} shape;

static void test_type(int32_t type) {
    const clv_type_info *ti = clv_type_get(type);
    const int64_t be = ti->block_elems;
    const int32_t vt = clv_cpu_vec_dot_type(type);
    CHECK(vt >= 0);
    CHECK(clv_cpu_matvec_supports(type, be * 4));
    CHECK(!clv_cpu_matvec_supports(type, 0));
    if (be > 1) CHECK(!clv_cpu_matvec_supports(type, be + 1));

    shape shapes[6];
    int ns = 0;
    if (be == 1) {
        shapes[ns++] = (shape){1, 3, 0, 3};
        shapes[ns++] = (shape){7, 5, 1, 4};
        shapes[ns++] = (shape){37, 9, 0, 9};
        shapes[ns++] = (shape){300, 11, 2, 11};
    } else {
        shapes[ns++] = (shape){be, 5, 0, 5};       /* one block */
        shapes[ns++] = (shape){be * 3, 13, 3, 11}; /* several, sub-range */
        shapes[ns++] = (shape){be * 7, 7, 0, 7};   /* odd block count */
    }
    shapes[ns++] = (shape){4096, 9, 1, 8};

    for (int si = 0; si < ns; si++) {
        const shape sh = shapes[si];
        const int64_t n = sh.n_in;
        uint64_t rb64;
        CHECK(clv_type_bytes(type, n, &rb64));
        const size_t rb = (size_t)rb64;
        const size_t xb = clv_cpu_activation_bytes(type, n);
        const int nbatch = 5;
        uint8_t *w = malloc(rb * (size_t)sh.n_rows);
        float *tmp = malloc(sizeof(float) * (size_t)n);
        float *wd = malloc(sizeof(float) * (size_t)n);
        float *x = malloc(sizeof(float) * (size_t)n * nbatch);
        float *xd = malloc(sizeof(float) * (size_t)n * nbatch);
        const size_t xs = xb + 64; /* padded stride between activations */
        uint8_t *xq = malloc(xs * nbatch);
        uint8_t *xq_ref = malloc(xb);
        const size_t ys = (size_t)sh.n_rows + 3;
        float *y_scalar = malloc(sizeof(float) * ys * nbatch);
        float *y = malloc(sizeof(float) * ys * nbatch);
        float *y1 = malloc(sizeof(float) * ys);
        double *ref = malloc(sizeof(double) * (size_t)sh.n_rows * nbatch);
        double *mag = malloc(sizeof(double) * (size_t)sh.n_rows * nbatch);

        for (int64_t r = 0; r < sh.n_rows; r++) make_row(type, w + (size_t)r * rb, n, r, tmp);
        for (int b = 0; b < nbatch; b++) make_activation(x + (size_t)b * n, n, b % 4);

        for (int pi = 0; pi < N_PATHS; pi++) {
            const clv_cpu_path p = paths[pi];
            if (!clv_cpu_path_available(p)) continue;
            CHECK(clv_cpu_set_path(p));
            CHECK(clv_cpu_get_path() == p);

            /* quantized activations, byte-identical to the reference quantizer */
            for (int b = 0; b < nbatch; b++) {
                uint8_t *q = xq + (size_t)b * xs;
                clv_cpu_quantize_activation(type, x + (size_t)b * n, q, n);
                CHECK_STATUS(clv_quantize_row(vt, x + (size_t)b * n, xq_ref, n), CLV_OK);
                CHECK_MSG(memcmp(q, xq_ref, xb) == 0, "%s path %s: activation %d differs from clv_quantize_row",
                          ti->name, clv_cpu_path_name(p), b);
                CHECK_STATUS(clv_dequantize_row(vt, q, xd + (size_t)b * n, n), CLV_OK);
            }
            if (p == CLV_CPU_PATH_SCALAR) {
                for (int b = 0; b < nbatch; b++) {
                    for (int64_t r = 0; r < sh.n_rows; r++) {
                        reference(type, w + (size_t)r * rb, n, xd + (size_t)b * n, &ref[b * sh.n_rows + r],
                                  &mag[b * sh.n_rows + r], wd);
                    }
                }
            }

            /* matmul over all activations into a strided output with sentinels */
            for (size_t i = 0; i < ys * nbatch; i++) y[i] = -12345.0f;
            clv_cpu_matmul(type, w, rb, n, xq, xs, nbatch, y, ys, sh.r0, sh.r1);
            for (int b = 0; b < nbatch; b++) {
                for (size_t i = (size_t)(sh.r1 - sh.r0); i < ys; i++) {
                    CHECK_MSG(y[b * ys + i] == -12345.0f, "%s %s: matmul wrote outside its range", ti->name,
                              clv_cpu_path_name(p));
                }
            }
            if (p == CLV_CPU_PATH_SCALAR) memcpy(y_scalar, y, sizeof(float) * ys * nbatch);

            for (int b = 0; b < nbatch; b++) {
                /* matvec of the same activation */
                for (size_t i = 0; i < ys; i++) y1[i] = -12345.0f;
                clv_cpu_matvec(type, w, rb, n, xq + (size_t)b * xs, y1, sh.r0, sh.r1);
                CHECK(y1[sh.r1 - sh.r0] == -12345.0f);
                for (int64_t r = sh.r0; r < sh.r1; r++) {
                    const size_t o = (size_t)b * ys + (size_t)(r - sh.r0);
                    const double m = mag[b * sh.n_rows + r] > 0 ? mag[b * sh.n_rows + r] : 1e-30;
                    const double ea = fabs((double)y[o] - (double)y_scalar[o]) / m;
                    const double ea1 = fabs((double)y1[r - sh.r0] - (double)y_scalar[o]) / m;
                    const double emm = fabs((double)y1[r - sh.r0] - (double)y[o]) / m;
                    const double eb = fabs((double)y[o] - ref[b * sh.n_rows + r]) / m;
                    const double eb1 = fabs((double)y1[r - sh.r0] - ref[b * sh.n_rows + r]) / m;
                    double *ma = &max_err_a[type][pi], *mb = &max_err_b[type][pi];
                    *ma = fmax(*ma, fmax(ea, ea1));
                    *mb = fmax(*mb, fmax(eb, eb1));
                    CHECK_MSG(ea <= BOUND_A && ea1 <= BOUND_A && emm <= BOUND_A,
                              "%s %s n=%lld row %lld act %d: vs scalar %.3g (matmul) %.3g (matvec), matmul vs "
                              "matvec %.3g; y %.9g scalar %.9g",
                              ti->name, clv_cpu_path_name(p), (long long)n, (long long)r, b, ea, ea1, emm, y[o],
                              y_scalar[o]);
                    CHECK_MSG(eb <= BOUND_B && eb1 <= BOUND_B,
                              "%s %s n=%lld row %lld act %d: vs float64 %.3g / %.3g; y %.9g ref %.9g mag %.3g",
                              ti->name, clv_cpu_path_name(p), (long long)n, (long long)r, b, eb, eb1, y[o],
                              ref[b * sh.n_rows + r], m);
                }
            }

            /* rows by id (gathered tiles): bit-identical to the plain matvec,
               for scattered, repeated and unsorted ids of every count mod 8 */
            {
                float *yall = malloc(sizeof(float) * (size_t)sh.n_rows), *yid = malloc(sizeof(float) * 40);
                int32_t ids[40];
                clv_cpu_matvec(type, w, rb, n, xq, yall, 0, sh.n_rows);
                for (int cnt = 0; cnt <= 19; cnt++) {
                    for (int k = 0; k < cnt; k++) ids[k] = (int32_t)((k * 7 + cnt * 3) % sh.n_rows);
                    yid[cnt] = -12345.0f;
                    clv_cpu_matvec_ids(type, w, rb, n, xq, ids, cnt, yid);
                    bool same = yid[cnt] == -12345.0f;
                    for (int k = 0; k < cnt; k++) same = same && yid[k] == yall[ids[k]];
                    CHECK_MSG(same, "%s %s: matvec_ids of %d rows differs from matvec", ti->name, clv_cpu_path_name(p),
                              cnt);
                }
                free(yall);
                free(yid);
            }

            /* every batch size (all tile remainders), unpadded stride */
            for (int nb = 1; nb <= nbatch; nb++) {
                float yy[5 * 16];
                CHECK(sh.n_rows <= 16);
                uint8_t *xq2 = malloc(xb * (size_t)nb);
                for (int b = 0; b < nb; b++) memcpy(xq2 + (size_t)b * xb, xq + (size_t)b * xs, xb);
                clv_cpu_matmul(type, w, rb, n, xq2, xb, nb, yy, (size_t)(sh.r1 - sh.r0), sh.r0, sh.r1);
                for (int b = 0; b < nb; b++) {
                    for (int64_t r = sh.r0; r < sh.r1; r++) {
                        const double m = mag[b * sh.n_rows + r] > 0 ? mag[b * sh.n_rows + r] : 1e-30;
                        double e = fabs((double)yy[b * (sh.r1 - sh.r0) + (r - sh.r0)] -
                                        (double)y_scalar[(size_t)b * ys + (size_t)(r - sh.r0)]) / m;
                        CHECK_MSG(e <= BOUND_A, "%s %s: batch %d act %d row %lld: %.3g", ti->name,
                                  clv_cpu_path_name(p), nb, b, (long long)r, e);
                    }
                }
                free(xq2);
            }
        }
        free(w);
        free(tmp);
        free(wd);
        free(x);
        free(xd);
        free(xq);
        free(xq_ref);
        free(y_scalar);
        free(y);
        free(y1);
        free(ref);
        free(mag);
    }
}

/* Larger batch than one activation group, odd sizes (driver tiling). */
static void test_large_batch(void) {
    const int32_t type = CLV_TYPE_Q4_K;
    const int64_t n = 4096, rows = 3, nb = 67;
    const size_t rb = (size_t)n / 256 * 144, xb = clv_cpu_activation_bytes(type, n);
    uint8_t *w = malloc(rb * rows), *xq = malloc(xb * nb);
    float *x = malloc(sizeof(float) * n), *ys = malloc(sizeof(float) * rows * nb), *yp = malloc(sizeof(float) * rows * nb);
    for (int64_t r = 0; r < rows; r++) random_blocks(type, w + r * rb, n);
    for (int64_t b = 0; b < nb; b++) {
        make_activation(x, n, 0);
        CHECK_STATUS(clv_quantize_row(CLV_TYPE_Q8_K, x, xq + b * xb, n), CLV_OK);
    }
    CHECK(clv_cpu_set_path(CLV_CPU_PATH_SCALAR));
    clv_cpu_matmul(type, w, rb, n, xq, xb, nb, ys, rows, 0, rows);
    for (int pi = 1; pi < N_PATHS; pi++) {
        if (!clv_cpu_set_path(paths[pi])) continue;
        clv_cpu_matmul(type, w, rb, n, xq, xb, nb, yp, rows, 0, rows);
        double worst = 0;
        for (int64_t i = 0; i < rows * nb; i++) worst = fmax(worst, fabs((double)yp[i] - ys[i]) / (fabs(ys[i]) + 1.0));
        CHECK_MSG(worst < 1e-4, "large batch %s: %.3g", clv_cpu_path_name(paths[pi]), worst);
    }
    free(w);
    free(xq);
    free(x);
    free(ys);
    free(yp);
}

/* MXFP4 scales 2^(e-128) for e = 0, 1 are fp32 subnormals (a branch of
 * their own in the SIMD decoders); activations with scales near the fp16
 * maximum keep the products of the two scales normal. */
static void test_mxfp4_tiny_scales(void) {
    const int64_t n = 256, rows = 9;
    const size_t rb = (size_t)n / 32 * 17, xb = clv_cpu_activation_bytes(CLV_TYPE_MXFP4, n);
    uint8_t w[9 * 136], xq[272];
    float x[256], ys[9], yp[9];
    for (int64_t r = 0; r < rows; r++) {
        random_blocks(CLV_TYPE_MXFP4, w + r * rb, n);
        for (int64_t i = 0; i < n / 32; i++) w[r * rb + i * 17] = (uint8_t)((r + i) % 4); /* e = 0..3 */
    }
    for (int64_t i = 0; i < n; i++) x[i] = rng_value() * 2e5f; /* Q8_0 scale near the fp16 maximum */
    CHECK(xb <= sizeof xq);
    CHECK_STATUS(clv_quantize_row(CLV_TYPE_Q8_0, x, xq, n), CLV_OK);
    CHECK(clv_cpu_set_path(CLV_CPU_PATH_SCALAR));
    clv_cpu_matvec(CLV_TYPE_MXFP4, w, rb, n, xq, ys, 0, rows);
    float wd[256], xd[256];
    CHECK_STATUS(clv_dequantize_row(CLV_TYPE_Q8_0, xq, xd, n), CLV_OK);
    for (int pi = 0; pi < N_PATHS; pi++) {
        if (!clv_cpu_set_path(paths[pi])) continue;
        clv_cpu_matvec(CLV_TYPE_MXFP4, w, rb, n, xq, yp, 0, rows);
        for (int64_t r = 0; r < rows; r++) {
            double ref, mag;
            reference(CLV_TYPE_MXFP4, w + r * rb, n, xd, &ref, &mag, wd);
            CHECK_MSG(mag > 0 && fabs(yp[r] - ref) <= BOUND_B * mag && fabs((double)yp[r] - ys[r]) <= BOUND_A * mag,
                      "MXFP4 tiny scales %s row %lld: %g scalar %g ref %g", clv_cpu_path_name(paths[pi]), (long long)r,
                      yp[r], ys[r], ref);
        }
    }
}

int main(void) {
    char feat[256];
    clv_cpu_features_str(clv_cpu_get_features(), feat, sizeof feat);
    printf("cpu features: %s\n", feat);
    CHECK(clv_cpu_path_available(CLV_CPU_PATH_SCALAR));
    CHECK(!clv_cpu_set_path((clv_cpu_path)99));
    for (int pi = 0; pi < N_PATHS; pi++) {
        if (!clv_cpu_path_available(paths[pi]))
            printf("note: path %s not available (this CPU or build lacks it): not tested here\n", clv_cpu_path_name(paths[pi]));
    }
    CHECK(clv_cpu_set_path(CLV_CPU_PATH_AUTO));
    printf("auto path: %s\n", clv_cpu_path_name(clv_cpu_get_path()));
    CHECK(clv_cpu_vec_dot_type(CLV_TYPE_Q4_K) == CLV_TYPE_Q8_K);
    CHECK(clv_cpu_vec_dot_type(CLV_TYPE_MXFP4) == CLV_TYPE_Q8_0);
    CHECK(clv_cpu_vec_dot_type(CLV_TYPE_BF16) == CLV_TYPE_F32);
    CHECK(clv_cpu_vec_dot_type(CLV_TYPE_IQ2_XXS) == -1);
    CHECK(clv_cpu_activation_bytes(CLV_TYPE_Q4_0, 64) == 68);
    CHECK(clv_cpu_activation_bytes(CLV_TYPE_Q6_K, 512) == 584);
    CHECK(clv_cpu_activation_bytes(CLV_TYPE_F16, 3) == 12);

    for (int t = 0; t < N_TYPES; t++) test_type(types[t]);
    test_large_batch();
    test_mxfp4_tiny_scales();

    printf("max normalized error |y - y'| / sum|w x|:  (a) vs scalar path  (b) vs float64; bounds %.0e / %.0e\n",
           BOUND_A, BOUND_B);
    printf("%-8s", "type");
    for (int pi = 0; pi < N_PATHS; pi++) printf("  %8s (a)  %8s (b)", clv_cpu_path_name(paths[pi]), clv_cpu_path_name(paths[pi]));
    printf("\n");
    for (int t = 0; t < N_TYPES; t++) {
        printf("%-8s", clv_type_name(types[t]));
        for (int pi = 0; pi < N_PATHS; pi++) {
            if (clv_cpu_path_available(paths[pi]))
                printf("  %12.2e  %12.2e", max_err_a[types[t]][pi], max_err_b[types[t]][pi]);
            else
                printf("  %12s  %12s", "-", "-");
        }
        printf("\n");
    }
    CHECK(clv_cpu_set_path(CLV_CPU_PATH_AUTO));
    return test_finish("test_cpu_matvec");
}
