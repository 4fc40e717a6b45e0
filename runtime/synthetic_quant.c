/* Fast quantizers for generated weights: one pass for the scales (min/max or
 * max-abs), one for the codes, no search. The reference quantizers in
 * kernels/quantize.c search scales per block for the least error, which is
 * right for real weights but ~20x too slow to write a 17 GB model in
 * seconds; for random weights the error difference does not matter.
 * Layouts follow REFERENCE.md section 2 (and kernels/blocks.h). */
#include <math.h>
#include <string.h>

#include "blocks.h"
#include "fp16.h"
#include "quantize.h"
#include "synthetic_internal.h"

/* Round-half-even of v clamped to [lo, hi]; the 1.5 * 2^23 trick leaves the
 * rounded integer in the low mantissa bits (|v| < 2^22 after the clamp). */
static inline int round_clamp(float v, int lo, int hi) {
    if (!(v > (float)lo)) return lo;
    if (v > (float)hi) return hi;
    float t = v + 12582912.0f;
    int32_t bits;
    memcpy(&bits, &t, sizeof bits);
    return (bits & 0x7fffff) - 0x400000;
}

static inline float fp16_round(float f) { return clv_fp16_to_fp32(clv_fp32_to_fp16(f)); }

/* Plain comparisons compile to minss/maxss; fminf/fmaxf become libm calls
 * (NaN rules), several times slower. Inputs are finite. */
static inline float min_f(float a, float b) { return b < a ? b : a; }
static inline float max_f(float a, float b) { return b > a ? b : a; }

/* Q4_0: y = (q - 8) * d; the value of largest magnitude maps to -8. */
static void quant_q4_0(const float *x, clv_block_q4_0 *b) {
    float amax = 0.0f, vmax = 0.0f;
    for (int i = 0; i < CLV_QK; i++) {
        if (fabsf(x[i]) > amax) {
            amax = fabsf(x[i]);
            vmax = x[i];
        }
    }
    float d = fp16_round(vmax / -8.0f);
    float id = d != 0.0f ? 1.0f / d : 0.0f;
    b->d = clv_fp32_to_fp16(d);
    for (int j = 0; j < CLV_QK / 2; j++) {
        int lo = round_clamp(x[j] * id, -8, 7) + 8;
        int hi = round_clamp(x[j + CLV_QK / 2] * id, -8, 7) + 8;
        b->qs[j] = (uint8_t)(lo | hi << 4);
    }
}

/* Q4_K / Q5_K scales: per sub-block of 32, step (hi - lo) / nmax and
 * subtracted min -lo (lo clipped to <= 0); the super-block d and dmin put the
 * largest of each on 63. Codes q in [0, nmax] go to q[256]. */
static void k_affine(const float *x, int nmax, uint8_t *sc, uint8_t *mn, uint8_t *q, float *pd, float *pdmin) {
    float step[8], minv[8], max_step = 0.0f, max_min = 0.0f;
    for (int j = 0; j < 8; j++) {
        const float *xs = x + 32 * j;
        float lo = 0.0f, hi = xs[0];
        for (int i = 0; i < 32; i++) {
            lo = min_f(lo, xs[i]);
            hi = max_f(hi, xs[i]);
        }
        step[j] = (hi - lo) / (float)nmax;
        minv[j] = -lo;
        max_step = max_f(max_step, step[j]);
        max_min = max_f(max_min, minv[j]);
    }
    float d = fp16_round(max_step / 63.0f), dmin = fp16_round(max_min / 63.0f);
    float id = d > 0.0f ? 1.0f / d : 0.0f, idmin = dmin > 0.0f ? 1.0f / dmin : 0.0f;
    for (int j = 0; j < 8; j++) {
        int s = round_clamp(step[j] * id, 0, 63);
        if (s == 0 && step[j] > 0.0f && d > 0.0f) s = 1;
        int m = round_clamp(minv[j] * idmin, 0, 63);
        sc[j] = (uint8_t)s;
        mn[j] = (uint8_t)m;
        float ds = d * (float)s, dm = dmin * (float)m;
        float ids = ds > 0.0f ? 1.0f / ds : 0.0f;
        for (int i = 0; i < 32; i++) q[32 * j + i] = (uint8_t)round_clamp((x[32 * j + i] + dm) * ids, 0, nmax);
    }
    *pd = d;
    *pdmin = dmin;
}

/* The 12 scale bytes: the decoder's 6-bit unpacking run backwards. */
static void pack_k_scales(const uint8_t *sc, const uint8_t *mn, uint8_t *s) {
    for (int j = 0; j < 4; j++) {
        s[j] = (uint8_t)((sc[j] & 63) | (sc[j + 4] >> 4) << 6);
        s[j + 4] = (uint8_t)((mn[j] & 63) | (mn[j + 4] >> 4) << 6);
        s[j + 8] = (uint8_t)((sc[j + 4] & 0xF) | (mn[j + 4] & 0xF) << 4);
    }
}

static void quant_q4_k(const float *x, clv_block_q4_k *b) {
    uint8_t sc[8], mn[8], q[CLV_QK_K];
    float d, dmin;
    k_affine(x, 15, sc, mn, q, &d, &dmin);
    b->d = clv_fp32_to_fp16(d);
    b->dmin = clv_fp32_to_fp16(dmin);
    pack_k_scales(sc, mn, b->scales);
    for (int c = 0; c < 4; c++) {
        for (int l = 0; l < 32; l++) b->qs[32 * c + l] = (uint8_t)(q[64 * c + l] | q[64 * c + 32 + l] << 4);
    }
}

static void quant_q5_k(const float *x, clv_block_q5_k *b) {
    uint8_t sc[8], mn[8], q[CLV_QK_K];
    float d, dmin;
    k_affine(x, 31, sc, mn, q, &d, &dmin);
    b->d = clv_fp32_to_fp16(d);
    b->dmin = clv_fp32_to_fp16(dmin);
    pack_k_scales(sc, mn, b->scales);
    memset(b->qh, 0, sizeof b->qh);
    for (int c = 0; c < 4; c++) {
        for (int l = 0; l < 32; l++) {
            uint8_t lo = q[64 * c + l], hi = q[64 * c + 32 + l];
            b->qs[32 * c + l] = (uint8_t)((lo & 0xF) | (hi & 0xF) << 4);
            b->qh[l] |= (uint8_t)((lo >> 4) << (2 * c) | (hi >> 4) << (2 * c + 1));
        }
    }
}

/* Q6_K: 16 sub-blocks of 16, y = d * sc * (q - 32); step amax / 31 per
 * sub-block, d puts the largest step on 127. */
static void quant_q6_k(const float *x, clv_block_q6_k *b) {
    float step[16], max_step = 0.0f;
    uint8_t q[CLV_QK_K]; /* q + 32 */
    for (int j = 0; j < 16; j++) {
        float amax = 0.0f;
        for (int i = 0; i < 16; i++) amax = max_f(amax, fabsf(x[16 * j + i]));
        step[j] = amax / 31.0f;
        max_step = max_f(max_step, step[j]);
    }
    float d = fp16_round(max_step / 127.0f);
    float id = d > 0.0f ? 1.0f / d : 0.0f;
    for (int j = 0; j < 16; j++) {
        int s = round_clamp(step[j] * id, 0, 127);
        if (s == 0 && step[j] > 0.0f && d > 0.0f) s = 1;
        b->scales[j] = (int8_t)s;
        float ds = d * (float)s, ids = ds > 0.0f ? 1.0f / ds : 0.0f;
        for (int i = 0; i < 16; i++) q[16 * j + i] = (uint8_t)(round_clamp(x[16 * j + i] * ids, -32, 31) + 32);
    }
    b->d = clv_fp32_to_fp16(d);
    for (int h = 0; h < 2; h++) {
        const uint8_t *qh = q + 128 * h;
        for (int l = 0; l < 32; l++) {
            b->ql[64 * h + l] = (uint8_t)((qh[l] & 0xF) | (qh[l + 64] & 0xF) << 4);
            b->ql[64 * h + l + 32] = (uint8_t)((qh[l + 32] & 0xF) | (qh[l + 96] & 0xF) << 4);
            b->qh[32 * h + l] =
                (uint8_t)((qh[l] >> 4) | (qh[l + 32] >> 4) << 2 | (qh[l + 64] >> 4) << 4 | (qh[l + 96] >> 4) << 6);
        }
    }
}

/* Each block goes through a local struct, so dst needs no alignment. */
#define FAST_BLOCKS(btype, fn, elems)                                  \
    do {                                                               \
        uint8_t *p_ = (uint8_t *)dst;                                  \
        for (int64_t i_ = 0; i_ < n / (elems); i_++) {                 \
            btype b_;                                                  \
            fn(x + i_ * (elems), &b_);                                 \
            memcpy(p_ + i_ * (int64_t)sizeof(btype), &b_, sizeof b_);  \
        }                                                              \
    } while (0)

clv_status synth_quantize_row(int32_t type, const float *x, void *dst, int64_t n) {
    switch (type) {
    case CLV_TYPE_Q4_0:
        if (n % CLV_QK) break;
        FAST_BLOCKS(clv_block_q4_0, quant_q4_0, CLV_QK);
        return CLV_OK;
    case CLV_TYPE_Q4_K:
        if (n % CLV_QK_K) break;
        FAST_BLOCKS(clv_block_q4_k, quant_q4_k, CLV_QK_K);
        return CLV_OK;
    case CLV_TYPE_Q5_K:
        if (n % CLV_QK_K) break;
        FAST_BLOCKS(clv_block_q5_k, quant_q5_k, CLV_QK_K);
        return CLV_OK;
    case CLV_TYPE_Q6_K:
        if (n % CLV_QK_K) break;
        FAST_BLOCKS(clv_block_q6_k, quant_q6_k, CLV_QK_K);
        return CLV_OK;
    default: return clv_quantize_row(type, x, dst, n); /* F32, F16, BF16, Q8_0 are fast there */
    }
    return clv_fail(CLV_ERR_ARG, "%lld values is not a whole number of %s blocks", (long long)n, clv_type_name(type));
}
