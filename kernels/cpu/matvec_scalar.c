/* Scalar reference path: plain C, one weight row against one activation at a
 * time. Within a block (or sub-block) the integer dot product is exact; block
 * scales are applied in float and summed in block order. The SIMD paths
 * compute the same integer sums and differ only in the order of the float
 * additions. */
#include "matvec_impl.h"

static inline float h2f(const uint8_t *p) { return clv_fp16_to_fp32(clv_load_u16(p)); }

/* --- plain floats ---------------------------------------------------------- */

static float dot_f32(int64_t n, const uint8_t *w, const uint8_t *x) {
    const float *a = (const float *)(const void *)w, *b = (const float *)(const void *)x;
    float sum = 0.0f;
    for (int64_t i = 0; i < n; i++) sum += a[i] * b[i];
    return sum;
}

static float dot_f16(int64_t n, const uint8_t *w, const uint8_t *x) {
    const float *b = (const float *)(const void *)x;
    float sum = 0.0f;
    for (int64_t i = 0; i < n; i++) sum += h2f(w + 2 * i) * b[i];
    return sum;
}

static float dot_bf16(int64_t n, const uint8_t *w, const uint8_t *x) {
    const float *b = (const float *)(const void *)x;
    float sum = 0.0f;
    for (int64_t i = 0; i < n; i++) sum += clv_bf16_to_fp32(clv_load_u16(w + 2 * i)) * b[i];
    return sum;
}

/* --- 32-element formats against Q8_0 -------------------------------------- */

/* Decodes one block's 32 integer weights; returns its scale, and the offset
 * m of affine formats (y = d * q + m) in *m. */
static float decode32(int32_t type, const uint8_t *b, int q[32], float *m) {
    *m = 0.0f;
    switch (type) {
    case CLV_TYPE_Q4_0:
        for (int j = 0; j < 16; j++) {
            q[j] = (b[2 + j] & 0xF) - 8;
            q[j + 16] = (b[2 + j] >> 4) - 8;
        }
        return h2f(b);
    case CLV_TYPE_Q4_1:
        for (int j = 0; j < 16; j++) {
            q[j] = b[4 + j] & 0xF;
            q[j + 16] = b[4 + j] >> 4;
        }
        *m = h2f(b + 2);
        return h2f(b);
    case CLV_TYPE_Q5_0:
    case CLV_TYPE_Q5_1: {
        int off = type == CLV_TYPE_Q5_0 ? 2 : 4;
        uint32_t qh = clv_load_u32(b + off);
        int bias = type == CLV_TYPE_Q5_0 ? 16 : 0;
        for (int j = 0; j < 16; j++) {
            q[j] = ((b[off + 4 + j] & 0xF) | (int)((qh >> j) & 1) << 4) - bias;
            q[j + 16] = ((b[off + 4 + j] >> 4) | (int)((qh >> (j + 16)) & 1) << 4) - bias;
        }
        if (type == CLV_TYPE_Q5_1) *m = h2f(b + 2);
        return h2f(b);
    }
    case CLV_TYPE_Q8_0:
        for (int j = 0; j < 32; j++) q[j] = (int8_t)b[2 + j];
        return h2f(b);
    case CLV_TYPE_IQ4_NL:
        for (int j = 0; j < 16; j++) {
            q[j] = clv_iq4nl_values[b[2 + j] & 0xF];
            q[j + 16] = clv_iq4nl_values[b[2 + j] >> 4];
        }
        return h2f(b);
    case CLV_TYPE_MXFP4:
        for (int j = 0; j < 16; j++) {
            q[j] = clv_mxfp4_values[b[1 + j] & 0xF];
            q[j + 16] = clv_mxfp4_values[b[1 + j] >> 4];
        }
        return clv_e8m0_half(b[0]);
    default: CLV_ASSERT(!"not a 32-element format");
    }
    return 0.0f;
}

/* sum over blocks of (d_w * d_x) * sum(q_w * q_x) [+ (m_w * d_x) * sum(q_x)] */
static float dot_q32(int32_t type, int64_t n, const uint8_t *w, const uint8_t *x) {
    int bytes = clv_type_get(type)->block_bytes;
    bool affine = type == CLV_TYPE_Q4_1 || type == CLV_TYPE_Q5_1;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / 32; i++, w += bytes, x += CLV_Q80_BYTES) {
        int q[32];
        float m;
        float d = decode32(type, w, q, &m);
        const int8_t *xq = (const int8_t *)(x + 2);
        int isum = 0, xsum = 0;
        for (int j = 0; j < 32; j++) {
            isum += q[j] * xq[j];
            xsum += xq[j];
        }
        float dx = h2f(x);
        sum += (d * dx) * (float)isum;
        if (affine) sum += (m * dx) * (float)xsum;
    }
    return sum;
}

#define DOT32(name, type) \
    static float name(int64_t n, const uint8_t *w, const uint8_t *x) { return dot_q32(type, n, w, x); }
DOT32(dot_q4_0, CLV_TYPE_Q4_0)
DOT32(dot_q4_1, CLV_TYPE_Q4_1)
DOT32(dot_q5_0, CLV_TYPE_Q5_0)
DOT32(dot_q5_1, CLV_TYPE_Q5_1)
DOT32(dot_q8_0, CLV_TYPE_Q8_0)
DOT32(dot_iq4_nl, CLV_TYPE_IQ4_NL)
DOT32(dot_mxfp4, CLV_TYPE_MXFP4)

/* --- 256-element formats against Q8_K ------------------------------------- */

/* Every K-quant block is sum_s scale_s * sum(q * x) over sub-blocks s (integer)
 * times d * d_x, minus (for Q2_K, Q4_K, Q5_K) dmin * d_x * sum_s min_s * sum(x). */

static float dot_q2_k(int64_t n, const uint8_t *w, const uint8_t *x) {
    float sum = 0.0f;
    for (int64_t i = 0; i < n / 256; i++, w += 84, x += CLV_Q8K_BYTES) {
        const uint8_t *sc = w, *qs = w + 16;
        const int8_t *xq = (const int8_t *)(x + CLV_Q8K_QS);
        int isum = 0, msum = 0;
        for (int s = 0; s < 16; s++) {
            int part = 0;
            for (int l = 0; l < 16; l++) {
                int e = 16 * s + l;
                int q = (qs[32 * (e / 128) + e % 32] >> (2 * (e / 32 % 4))) & 3;
                part += q * xq[e];
            }
            int16_t bsum;
            memcpy(&bsum, x + CLV_Q8K_BSUMS + 2 * s, 2);
            isum += (sc[s] & 0xF) * part;
            msum += (sc[s] >> 4) * bsum;
        }
        float dx = clv_load_f32(x);
        sum += dx * (h2f(w + 80) * (float)isum - h2f(w + 82) * (float)msum);
    }
    return sum;
}

static float dot_q3_k(int64_t n, const uint8_t *w, const uint8_t *x) {
    float sum = 0.0f;
    for (int64_t i = 0; i < n / 256; i++, w += 110, x += CLV_Q8K_BYTES) {
        const uint8_t *hm = w, *qs = w + 32;
        const int8_t *xq = (const int8_t *)(x + CLV_Q8K_QS);
        int8_t sc[16];
        clv_k3_scales(w + 96, sc);
        int isum = 0;
        for (int s = 0; s < 16; s++) {
            int part = 0;
            for (int l = 0; l < 16; l++) {
                int e = 16 * s + l;
                int q = (qs[32 * (e / 128) + e % 32] >> (2 * (e / 32 % 4))) & 3;
                int high = (hm[e % 32] >> (e / 32)) & 1;
                part += (q - (high ? 0 : 4)) * xq[e];
            }
            isum += sc[s] * part;
        }
        sum += clv_load_f32(x) * (h2f(w + 108) * (float)isum);
    }
    return sum;
}

static float dot_q45_k(int64_t n, const uint8_t *w, const uint8_t *x, bool five) {
    int bytes = five ? 176 : 144;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / 256; i++, w += bytes, x += CLV_Q8K_BYTES) {
        const uint8_t *qh = w + 16, *qs = w + (five ? 48 : 16);
        const int8_t *xq = (const int8_t *)(x + CLV_Q8K_QS);
        uint8_t sc[8], mn[8];
        clv_k4_scales(w + 4, sc, mn);
        int isum = 0, msum = 0;
        for (int j = 0; j < 8; j++) { /* sub-block j: nibble j % 2 of qs[32 (j / 2) + l] */
            int part = 0;
            for (int l = 0; l < 32; l++) {
                int q = (qs[32 * (j / 2) + l] >> (4 * (j % 2))) & 0xF;
                if (five) q |= ((qh[l] >> j) & 1) << 4;
                part += q * xq[32 * j + l];
            }
            int16_t b0, b1;
            memcpy(&b0, x + CLV_Q8K_BSUMS + 4 * j, 2);
            memcpy(&b1, x + CLV_Q8K_BSUMS + 4 * j + 2, 2);
            isum += sc[j] * part;
            msum += mn[j] * (b0 + b1);
        }
        sum += clv_load_f32(x) * (h2f(w) * (float)isum - h2f(w + 2) * (float)msum);
    }
    return sum;
}

static float dot_q4_k(int64_t n, const uint8_t *w, const uint8_t *x) { return dot_q45_k(n, w, x, false); }
static float dot_q5_k(int64_t n, const uint8_t *w, const uint8_t *x) { return dot_q45_k(n, w, x, true); }

static float dot_q6_k(int64_t n, const uint8_t *w, const uint8_t *x) {
    float sum = 0.0f;
    for (int64_t i = 0; i < n / 256; i++, w += 210, x += CLV_Q8K_BYTES) {
        const uint8_t *ql = w, *qh = w + 128;
        const int8_t *sc = (const int8_t *)(w + 192);
        const int8_t *xq = (const int8_t *)(x + CLV_Q8K_QS);
        int isum = 0;
        for (int s = 0; s < 16; s++) {
            int part = 0;
            for (int l16 = 0; l16 < 16; l16++) {
                int e = 16 * s + l16, h = e / 128, k = e % 128 / 32, l = e % 32;
                int lo = (ql[64 * h + l + 32 * (k & 1)] >> (4 * (k >> 1))) & 0xF;
                int hi = (qh[32 * h + l] >> (2 * k)) & 3;
                part += ((lo | hi << 4) - 32) * xq[e];
            }
            isum += sc[s] * part;
        }
        sum += clv_load_f32(x) * (h2f(w + 208) * (float)isum);
    }
    return sum;
}

static float dot_iq4_xs(int64_t n, const uint8_t *w, const uint8_t *x) {
    float sum = 0.0f;
    for (int64_t i = 0; i < n / 256; i++, w += 136, x += CLV_Q8K_BYTES) {
        const uint8_t *qs = w + 8;
        const int8_t *xq = (const int8_t *)(x + CLV_Q8K_QS);
        int16_t ls[8];
        clv_iq4xs_scales(w, ls);
        int isum = 0;
        for (int ib = 0; ib < 8; ib++) {
            int part = 0;
            for (int j = 0; j < 16; j++) {
                part += clv_iq4nl_values[qs[16 * ib + j] & 0xF] * xq[32 * ib + j];
                part += clv_iq4nl_values[qs[16 * ib + j] >> 4] * xq[32 * ib + 16 + j];
            }
            isum += ls[ib] * part;
        }
        sum += clv_load_f32(x) * (h2f(w) * (float)isum);
    }
    return sum;
}

/* --- drivers ---------------------------------------------------------------- */

#define MM(name, dot)                                                                          \
    static void name(int64_t n, const uint8_t *w, size_t rb, int64_t nrows, const uint8_t *x,  \
                     size_t xs, int64_t nbatch, float *y, size_t ys) {                         \
        for (int64_t r = 0; r < nrows; r++) {                                                  \
            for (int64_t b = 0; b < nbatch; b++) y[(size_t)b * ys + r] = dot(n, w + r * rb, x + b * xs); \
        }                                                                                      \
    }

MM(mm_f32, dot_f32)
MM(mm_f16, dot_f16)
MM(mm_bf16, dot_bf16)
MM(mm_q4_0, dot_q4_0)
MM(mm_q4_1, dot_q4_1)
MM(mm_q5_0, dot_q5_0)
MM(mm_q5_1, dot_q5_1)
MM(mm_q8_0, dot_q8_0)
MM(mm_iq4_nl, dot_iq4_nl)
MM(mm_mxfp4, dot_mxfp4)
MM(mm_q2_k, dot_q2_k)
MM(mm_q3_k, dot_q3_k)
MM(mm_q4_k, dot_q4_k)
MM(mm_q5_k, dot_q5_k)
MM(mm_q6_k, dot_q6_k)
MM(mm_iq4_xs, dot_iq4_xs)

/* The reference quantizers are the scalar path's activation quantizers. */
#include "quantize.h"
static void quant_q8_0(const float *x, void *xq, int64_t n) { clv_quantize_row(CLV_TYPE_Q8_0, x, xq, n); }
static void quant_q8_k(const float *x, void *xq, int64_t n) { clv_quantize_row(CLV_TYPE_Q8_K, x, xq, n); }

const clv_cpu_kernels clv_cpu_kernels_scalar = {
    .built = true,
    .mm = {
        [CLV_TYPE_F32] = mm_f32, [CLV_TYPE_F16] = mm_f16, [CLV_TYPE_BF16] = mm_bf16,
        [CLV_TYPE_Q4_0] = mm_q4_0, [CLV_TYPE_Q4_1] = mm_q4_1, [CLV_TYPE_Q5_0] = mm_q5_0,
        [CLV_TYPE_Q5_1] = mm_q5_1, [CLV_TYPE_Q8_0] = mm_q8_0, [CLV_TYPE_IQ4_NL] = mm_iq4_nl,
        [CLV_TYPE_MXFP4] = mm_mxfp4, [CLV_TYPE_Q2_K] = mm_q2_k, [CLV_TYPE_Q3_K] = mm_q3_k,
        [CLV_TYPE_Q4_K] = mm_q4_k, [CLV_TYPE_Q5_K] = mm_q5_k, [CLV_TYPE_Q6_K] = mm_q6_k,
        [CLV_TYPE_IQ4_XS] = mm_iq4_xs,
    },
    .quant_q8_0 = quant_q8_0,
    .quant_q8_k = quant_q8_k,
};
