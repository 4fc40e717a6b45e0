#include "quantize.h"

#include <math.h>
#include <string.h>

#include "blocks.h"
#include "fp16.h"

/* Values below this magnitude quantize to zero (keeps 1/d finite). */
#define TINY 1e-30f

/* Round-half-even of v clamped to [lo, hi] (|lo|, |hi| < 2^22). NaN gives lo.
 * Adding 1.5 * 2^23 leaves the rounded integer in the low mantissa bits. */
static inline int quant_round(float v, int lo, int hi) {
    if (!(v > (float)lo)) return lo;
    if (v > (float)hi) return hi;
    float t = v + 12582912.0f;
    int32_t bits;
    memcpy(&bits, &t, sizeof bits);
    return (bits & 0x7fffff) - 0x400000;
}

static inline float fp16_round(float f) { return clv_fp16_to_fp32(clv_fp32_to_fp16(f)); }

/* --- scale search ---------------------------------------------------------- */

/* Fits x ~ d * q with integer q in [-nmax, nmax - 1]; returns d (0 when x is
 * all ~zero). The extra negative level goes to the side of the largest
 * magnitude, so d takes the sign opposite to that value. Tries inverse scales
 * mapping that value to -0.9..-1.4 times nmax (the larger ones clip it, which
 * pays for heavy-tailed data), takes the least-squares d of each rounding,
 * then polishes the best with a few requantize / refit rounds. */
static float fit_symmetric(const float *x, int n, int nmax) {
    float amax = 0.0f, vmax = 0.0f;
    for (int i = 0; i < n; i++) {
        if (fabsf(x[i]) > amax) {
            amax = fabsf(x[i]);
            vmax = x[i];
        }
    }
    if (amax < TINY) return 0.0f;

    /* maximizing (sum xq)^2 / sum qq is minimizing the error of the best d */
    float best_d = -vmax / (float)nmax, best_num = -1.0f, best_den = 1.0f;
    for (int k = 0; k <= 20; k++) {
        float iscale = -(float)nmax * (0.9f + 0.025f * (float)k) / vmax;
        float sxq = 0.0f, sqq = 0.0f;
        for (int i = 0; i < n; i++) {
            int q = quant_round(iscale * x[i], -nmax, nmax - 1);
            sxq += x[i] * (float)q;
            sqq += (float)(q * q);
        }
        if (sqq > 0.0f && sxq * sxq * best_den > best_num * sqq) {
            best_num = sxq * sxq;
            best_den = sqq;
            best_d = sxq / sqq;
        }
    }
    for (int it = 0; it < 4; it++) {
        float id = 1.0f / best_d, sxq = 0.0f, sqq = 0.0f;
        for (int i = 0; i < n; i++) {
            int q = quant_round(id * x[i], -nmax, nmax - 1);
            sxq += x[i] * (float)q;
            sqq += (float)(q * q);
        }
        if (!(sqq > 0.0f && sxq * sxq * best_den > best_num * sqq)) break;
        best_num = sxq * sxq;
        best_den = sqq;
        best_d = sxq / sqq;
    }
    return best_d;
}

/* Fits x ~ d * q + m with integer q in [0, nmax], d >= 0; with m_nonpos the
 * offset is kept <= 0 (K-quants store it as a subtracted unsigned min). Tries
 * steps that map the range [lo, hi] onto nmax-1 .. nmax+1 levels, each
 * followed by the least-squares (d, m) of its rounding, then polishes the
 * best with a few requantize / refit rounds. */
static void fit_affine(const float *x, int n, int nmax, bool m_nonpos, float *pd, float *pm) {
    CLV_ASSERT(n <= CLV_QK);
    float lo = x[0], hi = x[0];
    for (int i = 1; i < n; i++) {
        lo = fminf(lo, x[i]);
        hi = fmaxf(hi, x[i]);
    }
    if (m_nonpos && lo > 0.0f) lo = 0.0f;
    if (hi - lo < TINY) { /* constant: the offset alone carries it */
        *pd = 0.0f;
        *pm = m_nonpos ? fminf(lo, 0.0f) : lo;
        return;
    }

    float best_d = (hi - lo) / (float)nmax, best_m = lo, best_err = INFINITY;
    for (int k = 0; k <= 24; k++) {
        float d, m, err;
        int q[CLV_QK];
        /* k = 0..20 scan the step; the rest refine the best so far */
        float iscale = k <= 20 ? ((float)nmax - 1.0f + 0.1f * (float)k) / (hi - lo) : 1.0f / best_d;
        float base = k <= 20 ? lo : best_m;
        float sq = 0.0f, sqq = 0.0f, sx = 0.0f, sqx = 0.0f;
        for (int i = 0; i < n; i++) {
            q[i] = quant_round((x[i] - base) * iscale, 0, nmax);
            sq += (float)q[i];
            sqq += (float)(q[i] * q[i]);
            sx += x[i];
            sqx += (float)q[i] * x[i];
        }
        float det = (float)n * sqq - sq * sq;
        if (det > 0.0f) {
            d = ((float)n * sqx - sq * sx) / det;
            m = (sqq * sx - sq * sqx) / det;
        } else { /* every q equal */
            d = best_d;
            m = sx / (float)n - d * sq / (float)n;
        }
        if (m_nonpos && m > 0.0f) {
            m = 0.0f;
            d = sqq > 0.0f ? sqx / sqq : 0.0f;
        }
        if (!(d > 0.0f)) continue;
        err = 0.0f;
        for (int i = 0; i < n; i++) {
            float e = d * (float)q[i] + m - x[i];
            err += e * e;
        }
        if (err < best_err) {
            best_err = err;
            best_d = d;
            best_m = m;
        }
    }
    *pd = best_d;
    *pm = best_m;
}

/* --- 32-element formats ---------------------------------------------------- */

static void quantize_q8_0(const float *x, clv_block_q8_0 *b) {
    float amax = 0.0f;
    for (int i = 0; i < CLV_QK; i++) amax = fmaxf(amax, fabsf(x[i]));
    b->d = clv_fp32_to_fp16(amax / 127.0f);
    float d = clv_fp16_to_fp32(b->d);
    float id = d != 0.0f ? 1.0f / d : 0.0f;
    for (int i = 0; i < CLV_QK; i++) b->qs[i] = (int8_t)quant_round(x[i] * id, -127, 127);
}

static void quantize_q8_1(const float *x, clv_block_q8_1 *b) {
    float amax = 0.0f;
    for (int i = 0; i < CLV_QK; i++) amax = fmaxf(amax, fabsf(x[i]));
    b->d = clv_fp32_to_fp16(amax / 127.0f);
    float d = clv_fp16_to_fp32(b->d);
    float id = d != 0.0f ? 1.0f / d : 0.0f;
    int sum = 0;
    for (int i = 0; i < CLV_QK; i++) {
        b->qs[i] = (int8_t)quant_round(x[i] * id, -127, 127);
        sum += b->qs[i];
    }
    b->s = clv_fp32_to_fp16(d * (float)sum);
}

/* Symmetric 32-element block: q + nmax in [0, 2 nmax) into qv. */
static float quantize_sym32(const float *x, int nmax, uint8_t *qv) {
    float d = fp16_round(fit_symmetric(x, CLV_QK, nmax));
    float id = d != 0.0f ? 1.0f / d : 0.0f;
    for (int i = 0; i < CLV_QK; i++) qv[i] = (uint8_t)(quant_round(x[i] * id, -nmax, nmax - 1) + nmax);
    return d;
}

/* Affine 32-element block: q in [0, nmax] into qv; d and m fp16-rounded. */
static void quantize_affine32(const float *x, int nmax, uint8_t *qv, float *pd, float *pm) {
    float d, m;
    fit_affine(x, CLV_QK, nmax, false, &d, &m);
    d = fp16_round(d);
    m = fp16_round(m);
    float id = d != 0.0f ? 1.0f / d : 0.0f;
    for (int i = 0; i < CLV_QK; i++) qv[i] = (uint8_t)quant_round((x[i] - m) * id, 0, nmax);
    *pd = d;
    *pm = m;
}

static void pack_nibbles32(const uint8_t *qv, uint8_t *qs) {
    for (int j = 0; j < CLV_QK / 2; j++) qs[j] = (uint8_t)((qv[j] & 0xF) | (qv[j + CLV_QK / 2] & 0xF) << 4);
}

static void pack_high_bits32(const uint8_t *qv, uint8_t *qh) {
    uint32_t h = 0;
    for (int j = 0; j < CLV_QK; j++) h |= (uint32_t)(qv[j] >> 4) << j;
    for (int k = 0; k < 4; k++) qh[k] = (uint8_t)(h >> (8 * k));
}

static void quantize_q4_0(const float *x, clv_block_q4_0 *b) {
    uint8_t qv[CLV_QK];
    b->d = clv_fp32_to_fp16(quantize_sym32(x, 8, qv));
    pack_nibbles32(qv, b->qs);
}

static void quantize_q5_0(const float *x, clv_block_q5_0 *b) {
    uint8_t qv[CLV_QK];
    b->d = clv_fp32_to_fp16(quantize_sym32(x, 16, qv));
    pack_nibbles32(qv, b->qs);
    pack_high_bits32(qv, b->qh);
}

static void quantize_q4_1(const float *x, clv_block_q4_1 *b) {
    uint8_t qv[CLV_QK];
    float d, m;
    quantize_affine32(x, 15, qv, &d, &m);
    b->d = clv_fp32_to_fp16(d);
    b->m = clv_fp32_to_fp16(m);
    pack_nibbles32(qv, b->qs);
}

static void quantize_q5_1(const float *x, clv_block_q5_1 *b) {
    uint8_t qv[CLV_QK];
    float d, m;
    quantize_affine32(x, 31, qv, &d, &m);
    b->d = clv_fp32_to_fp16(d);
    b->m = clv_fp32_to_fp16(m);
    pack_nibbles32(qv, b->qs);
    pack_high_bits32(qv, b->qh);
}

/* --- K-quants -------------------------------------------------------------- */

/* Squared error of one sub-block coded with step d and subtracted min m,
 * computed exactly as the decoder does (d * q - m); the codes go to qv. */
static float affine_codes(const float *x, int n, int nmax, float d, float m, uint8_t *qv) {
    float id = d > 0.0f ? 1.0f / d : 0.0f, err = 0.0f;
    for (int i = 0; i < n; i++) {
        qv[i] = (uint8_t)quant_round((x[i] + m) * id, 0, nmax);
        float e = d * (float)qv[i] - m - x[i];
        err += e * e;
    }
    return err;
}

/* Q4_K and Q5_K: 8 sub-blocks of 32, y = (d * sc) * q - dmin * mn with 6-bit
 * sc and mn. Each sub-block gets its own best (step, min); the super-block
 * scales put the largest of each on 63; then every sub-block tries the
 * neighbouring 6-bit codes of its rounded scale and min and keeps the pair
 * with the least error, since rounding both separately is not optimal. */
static void quantize_k_affine(const float *x, int nmax, float *pd, float *pdmin, uint8_t *sc,
                              uint8_t *mn, uint8_t *qv) {
    float step[8], mins[8], max_step = 0.0f, max_min = 0.0f;
    for (int j = 0; j < 8; j++) {
        float m;
        fit_affine(x + 32 * j, 32, nmax, true, &step[j], &m);
        mins[j] = -m;
        max_step = fmaxf(max_step, step[j]);
        max_min = fmaxf(max_min, mins[j]);
    }
    float d = fp16_round(max_step / 63.0f);
    float dmin = fp16_round(max_min / 63.0f);
    float id = d > 0.0f ? 1.0f / d : 0.0f;
    float idmin = dmin > 0.0f ? 1.0f / dmin : 0.0f;
    for (int j = 0; j < 8; j++) {
        const float *xs = x + 32 * j;
        int sc0 = quant_round(step[j] * id, 0, 63);
        int mn0 = quant_round(mins[j] * idmin, 0, 63);
        float best_err = INFINITY;
        uint8_t codes[32];
        for (int s = sc0 - 1; s <= sc0 + 1; s++) {
            for (int t = mn0 - 1; t <= mn0 + 1; t++) {
                if (s < 0 || s > 63 || t < 0 || t > 63) continue;
                float err = affine_codes(xs, 32, nmax, d * (float)s, dmin * (float)t, codes);
                if (err < best_err) {
                    best_err = err;
                    sc[j] = (uint8_t)s;
                    mn[j] = (uint8_t)t;
                    memcpy(qv + 32 * j, codes, sizeof codes);
                }
            }
        }
    }
    *pd = d;
    *pdmin = dmin;
}

/* Inverse of the decoder's 6-bit unpacking (REFERENCE.md, Q4_K). */
static void pack_k_scales(const uint8_t *sc, const uint8_t *mn, uint8_t *s) {
    for (int j = 0; j < 4; j++) {
        s[j] = (uint8_t)((sc[j] & 63) | (sc[j + 4] >> 4) << 6);
        s[j + 4] = (uint8_t)((mn[j] & 63) | (mn[j + 4] >> 4) << 6);
        s[j + 8] = (uint8_t)((sc[j + 4] & 0xF) | (mn[j + 4] & 0xF) << 4);
    }
}

static void quantize_q4_k(const float *x, clv_block_q4_k *b) {
    float d, dmin;
    uint8_t sc[8], mn[8], qv[CLV_QK_K];
    quantize_k_affine(x, 15, &d, &dmin, sc, mn, qv);
    b->d = clv_fp32_to_fp16(d);
    b->dmin = clv_fp32_to_fp16(dmin);
    pack_k_scales(sc, mn, b->scales);
    for (int c = 0; c < 4; c++) {
        for (int l = 0; l < 32; l++) b->qs[32 * c + l] = (uint8_t)(qv[64 * c + l] | qv[64 * c + 32 + l] << 4);
    }
}

static void quantize_q5_k(const float *x, clv_block_q5_k *b) {
    float d, dmin;
    uint8_t sc[8], mn[8], qv[CLV_QK_K];
    quantize_k_affine(x, 31, &d, &dmin, sc, mn, qv);
    b->d = clv_fp32_to_fp16(d);
    b->dmin = clv_fp32_to_fp16(dmin);
    pack_k_scales(sc, mn, b->scales);
    memset(b->qh, 0, sizeof b->qh);
    for (int c = 0; c < 4; c++) {
        for (int l = 0; l < 32; l++) {
            uint8_t lo = qv[64 * c + l], hi = qv[64 * c + 32 + l];
            b->qs[32 * c + l] = (uint8_t)((lo & 0xF) | (hi & 0xF) << 4);
            b->qh[l] |= (uint8_t)((lo >> 4) << (2 * c) | (hi >> 4) << (2 * c + 1));
        }
    }
}

/* Q6_K: 16 sub-blocks of 16, y = (d * sc) * (q - 32) with signed 8-bit sc.
 * Sub-block steps from the symmetric search; d puts the largest at +-127;
 * each sub-block then keeps the best of its rounded scale and neighbours. */
static void quantize_q6_k(const float *x, clv_block_q6_k *b) {
    float step[16], amax = 0.0f;
    uint8_t qv[CLV_QK_K]; /* q + 32 */
    for (int j = 0; j < 16; j++) {
        step[j] = fit_symmetric(x + 16 * j, 16, 32);
        amax = fmaxf(amax, fabsf(step[j]));
    }
    float d = fp16_round(amax / 127.0f);
    float id = d > 0.0f ? 1.0f / d : 0.0f;
    for (int j = 0; j < 16; j++) {
        const float *xs = x + 16 * j;
        int s0 = quant_round(step[j] * id, -128, 127);
        float best_err = INFINITY;
        b->scales[j] = 0;
        memset(qv + 16 * j, 32, 16);
        for (int s = s0 - 1; s <= s0 + 1; s++) {
            if (s < -128 || s > 127) continue;
            float ds = d * (float)s, ids = ds != 0.0f ? 1.0f / ds : 0.0f, err = 0.0f;
            uint8_t codes[16];
            for (int i = 0; i < 16; i++) {
                int q = quant_round(xs[i] * ids, -32, 31);
                codes[i] = (uint8_t)(q + 32);
                float e = ds * (float)q - xs[i];
                err += e * e;
            }
            if (err < best_err) {
                best_err = err;
                b->scales[j] = (int8_t)s;
                memcpy(qv + 16 * j, codes, sizeof codes);
            }
        }
    }
    b->d = clv_fp32_to_fp16(d);
    for (int h = 0; h < 2; h++) {
        const uint8_t *q = qv + 128 * h;
        for (int l = 0; l < 32; l++) {
            b->ql[64 * h + l] = (uint8_t)((q[l] & 0xF) | (q[l + 64] & 0xF) << 4);
            b->ql[64 * h + l + 32] = (uint8_t)((q[l + 32] & 0xF) | (q[l + 96] & 0xF) << 4);
            b->qh[32 * h + l] =
                (uint8_t)((q[l] >> 4) | (q[l + 32] >> 4) << 2 | (q[l + 64] >> 4) << 4 | (q[l + 96] >> 4) << 6);
        }
    }
}

static void quantize_q8_k(const float *x, clv_block_q8_k *b) {
    float amax = 0.0f;
    for (int i = 0; i < CLV_QK_K; i++) amax = fmaxf(amax, fabsf(x[i]));
    b->d = amax / 127.0f;
    float id = b->d != 0.0f ? 1.0f / b->d : 0.0f;
    for (int i = 0; i < CLV_QK_K; i++) b->qs[i] = (int8_t)quant_round(x[i] * id, -127, 127);
    for (int j = 0; j < CLV_QK_K / 16; j++) {
        int sum = 0;
        for (int i = 0; i < 16; i++) sum += b->qs[16 * j + i];
        b->bsums[j] = (int16_t)sum;
    }
}

/* --- row entry ------------------------------------------------------------- */

/* Quantizes each block into a local struct and copies it out, so dst needs
 * no alignment. */
#define QUANT_BLOCKS(btype, fn, elems)                                          \
    do {                                                                        \
        uint8_t *p_ = (uint8_t *)dst;                                           \
        for (int64_t i_ = 0; i_ < n / (elems); i_++) {                          \
            btype b_;                                                           \
            fn(src + i_ * (elems), &b_);                                        \
            memcpy(p_ + i_ * (int64_t)sizeof(btype), &b_, sizeof b_);           \
        }                                                                       \
    } while (0)

bool clv_type_can_quantize(int32_t type) {
    switch (type) {
    case CLV_TYPE_F32:
    case CLV_TYPE_F16:
    case CLV_TYPE_BF16:
    case CLV_TYPE_Q4_0:
    case CLV_TYPE_Q4_1:
    case CLV_TYPE_Q5_0:
    case CLV_TYPE_Q5_1:
    case CLV_TYPE_Q8_0:
    case CLV_TYPE_Q8_1:
    case CLV_TYPE_Q4_K:
    case CLV_TYPE_Q5_K:
    case CLV_TYPE_Q6_K:
    case CLV_TYPE_Q8_K: return true;
    default: return false;
    }
}

clv_status clv_quantize_row(int32_t type, const float *src, void *dst, int64_t n) {
    if (!clv_type_can_quantize(type)) {
        return clv_fail(CLV_ERR_UNSUPPORTED, "quantize: type %s (%d) is not supported",
                        clv_type_name(type), (int)type);
    }
    int64_t block = clv_type_get(type)->block_elems;
    if (n < 0 || n % block != 0) {
        return clv_fail(CLV_ERR_ARG, "quantize: %lld elements of %s: not a multiple of %lld",
                        (long long)n, clv_type_name(type), (long long)block);
    }
    if (n == 0) return CLV_OK;
    uint8_t *d = (uint8_t *)dst;
    switch (type) {
    case CLV_TYPE_F32: memcpy(dst, src, (size_t)n * sizeof(float)); break;
    case CLV_TYPE_F16:
        for (int64_t i = 0; i < n; i++) {
            clv_fp16 h = clv_fp32_to_fp16(src[i]);
            d[2 * i] = (uint8_t)h;
            d[2 * i + 1] = (uint8_t)(h >> 8);
        }
        break;
    case CLV_TYPE_BF16:
        for (int64_t i = 0; i < n; i++) {
            clv_bf16 h = clv_fp32_to_bf16(src[i]);
            d[2 * i] = (uint8_t)h;
            d[2 * i + 1] = (uint8_t)(h >> 8);
        }
        break;
    case CLV_TYPE_Q4_0: QUANT_BLOCKS(clv_block_q4_0, quantize_q4_0, CLV_QK); break;
    case CLV_TYPE_Q4_1: QUANT_BLOCKS(clv_block_q4_1, quantize_q4_1, CLV_QK); break;
    case CLV_TYPE_Q5_0: QUANT_BLOCKS(clv_block_q5_0, quantize_q5_0, CLV_QK); break;
    case CLV_TYPE_Q5_1: QUANT_BLOCKS(clv_block_q5_1, quantize_q5_1, CLV_QK); break;
    case CLV_TYPE_Q8_0: QUANT_BLOCKS(clv_block_q8_0, quantize_q8_0, CLV_QK); break;
    case CLV_TYPE_Q8_1: QUANT_BLOCKS(clv_block_q8_1, quantize_q8_1, CLV_QK); break;
    case CLV_TYPE_Q4_K: QUANT_BLOCKS(clv_block_q4_k, quantize_q4_k, CLV_QK_K); break;
    case CLV_TYPE_Q5_K: QUANT_BLOCKS(clv_block_q5_k, quantize_q5_k, CLV_QK_K); break;
    case CLV_TYPE_Q6_K: QUANT_BLOCKS(clv_block_q6_k, quantize_q6_k, CLV_QK_K); break;
    case CLV_TYPE_Q8_K: QUANT_BLOCKS(clv_block_q8_k, quantize_q8_k, CLV_QK_K); break;
    default: CLV_ASSERT(!"type listed in clv_type_can_quantize without a quantizer");
    }
    return CLV_OK;
}
