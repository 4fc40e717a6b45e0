#include "dequantize.h"

#include <string.h>

#include "blocks.h"
#include "fp16.h"

/* Built with -ffp-contract=off (kernels/CMakeLists.txt): the reference
 * decoders round every product and sum separately. In today's formats every
 * product is exact (fp16 scale x small integers), so a fused d*q + m would
 * agree anyway, but a decoder added later may not be so lucky. */

static void dequant_q4_0(const clv_block_q4_0 *b, float *y) {
    float d = clv_fp16_to_fp32(b->d);
    for (int j = 0; j < CLV_QK / 2; j++) {
        y[j] = d * (float)((b->qs[j] & 0xF) - 8);
        y[j + CLV_QK / 2] = d * (float)((b->qs[j] >> 4) - 8);
    }
}

static void dequant_q4_1(const clv_block_q4_1 *b, float *y) {
    float d = clv_fp16_to_fp32(b->d);
    float m = clv_fp16_to_fp32(b->m);
    for (int j = 0; j < CLV_QK / 2; j++) {
        y[j] = d * (float)(b->qs[j] & 0xF) + m;
        y[j + CLV_QK / 2] = d * (float)(b->qs[j] >> 4) + m;
    }
}

static uint32_t load_u32_le(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void dequant_q5_0(const clv_block_q5_0 *b, float *y) {
    float d = clv_fp16_to_fp32(b->d);
    uint32_t qh = load_u32_le(b->qh);
    for (int j = 0; j < CLV_QK / 2; j++) {
        int lo = (b->qs[j] & 0xF) | (int)((qh >> j) & 1) << 4;
        int hi = (b->qs[j] >> 4) | (int)((qh >> (j + 16)) & 1) << 4;
        y[j] = d * (float)(lo - 16);
        y[j + CLV_QK / 2] = d * (float)(hi - 16);
    }
}

static void dequant_q5_1(const clv_block_q5_1 *b, float *y) {
    float d = clv_fp16_to_fp32(b->d);
    float m = clv_fp16_to_fp32(b->m);
    uint32_t qh = load_u32_le(b->qh);
    for (int j = 0; j < CLV_QK / 2; j++) {
        int lo = (b->qs[j] & 0xF) | (int)((qh >> j) & 1) << 4;
        int hi = (b->qs[j] >> 4) | (int)((qh >> (j + 16)) & 1) << 4;
        y[j] = d * (float)lo + m;
        y[j + CLV_QK / 2] = d * (float)hi + m;
    }
}

static void dequant_q8_0(const clv_block_q8_0 *b, float *y) {
    float d = clv_fp16_to_fp32(b->d);
    for (int j = 0; j < CLV_QK; j++) y[j] = (float)b->qs[j] * d;
}

static void dequant_q8_1(const clv_block_q8_1 *b, float *y) {
    float d = clv_fp16_to_fp32(b->d);
    for (int j = 0; j < CLV_QK; j++) y[j] = (float)b->qs[j] * d;
}

static void dequant_iq4_nl(const clv_block_iq4_nl *b, float *y) {
    float d = clv_fp16_to_fp32(b->d);
    for (int j = 0; j < CLV_QK / 2; j++) {
        y[j] = d * (float)clv_iq4nl_values[b->qs[j] & 0xF];
        y[j + CLV_QK / 2] = d * (float)clv_iq4nl_values[b->qs[j] >> 4];
    }
}

/* 2^(e-127) / 2 as an fp32; e = 0 and 1 land on fp32 subnormals, 255 is taken
 * as 2^127 (not NaN), as the format's reference decoder does. */
static float e8m0_to_fp32_half(uint8_t e) {
    uint32_t bits = e < 2 ? 0x00200000u << e : (uint32_t)(e - 1) << 23;
    return clv_fp32_from_bits(bits);
}

static void dequant_mxfp4(const clv_block_mxfp4 *b, float *y) {
    float d = e8m0_to_fp32_half(b->e);
    for (int j = 0; j < CLV_QK / 2; j++) {
        y[j] = d * (float)clv_mxfp4_values[b->qs[j] & 0xF];
        y[j + CLV_QK / 2] = d * (float)clv_mxfp4_values[b->qs[j] >> 4];
    }
}

/* Elements i and i+16 of each 32 share a qs byte (shift 2*(i/32 % 4)); the
 * 16 elements of one scale are consecutive. */
static void dequant_q2_k(const clv_block_q2_k *b, float *y) {
    float d = clv_fp16_to_fp32(b->d);
    float dmin = clv_fp16_to_fp32(b->dmin);
    for (int i = 0; i < CLV_QK_K; i++) {
        uint8_t sc = b->scales[i / 16];
        int q = (b->qs[32 * (i / 128) + i % 32] >> (2 * (i / 32 % 4))) & 3;
        float dl = d * (float)(sc & 0xF);
        float ml = dmin * (float)(sc >> 4);
        y[i] = dl * (float)q - ml;
    }
}

/* Six-bit scale s (0..15) of Q3_K, bias removed. */
static int q3_k_scale(const uint8_t *b, int s) {
    int lo = s < 8 ? b[s] & 0xF : b[s - 8] >> 4;
    int hi = (b[8 + s % 4] >> (2 * (s / 4))) & 3;
    return (lo | hi << 4) - 32;
}

static void dequant_q3_k(const clv_block_q3_k *b, float *y) {
    float d = clv_fp16_to_fp32(b->d);
    float dl[16];
    for (int s = 0; s < 16; s++) dl[s] = d * (float)q3_k_scale(b->scales, s);
    for (int i = 0; i < CLV_QK_K; i++) {
        int q = (b->qs[32 * (i / 128) + i % 32] >> (2 * (i / 32 % 4))) & 3;
        int high = (b->hmask[i % 32] >> (i / 32)) & 1;
        y[i] = dl[i / 16] * (float)(q - (high ? 0 : 4));
    }
}

/* Six-bit scale and min of sub-block j (0..7) of Q4_K/Q5_K. */
static void k_scale_min(const uint8_t *s, int j, int *sc, int *m) {
    if (j < 4) {
        *sc = s[j] & 63;
        *m = s[j + 4] & 63;
    } else {
        *sc = (s[j + 4] & 0xF) | (s[j - 4] >> 6) << 4;
        *m = (s[j + 4] >> 4) | (s[j] >> 6) << 4;
    }
}

static void dequant_q4_k(const clv_block_q4_k *b, float *y) {
    float d = clv_fp16_to_fp32(b->d);
    float dmin = clv_fp16_to_fp32(b->dmin);
    for (int c = 0; c < 4; c++) { /* 64 elements share 32 qs bytes */
        int sc0, m0, sc1, m1;
        k_scale_min(b->scales, 2 * c, &sc0, &m0);
        k_scale_min(b->scales, 2 * c + 1, &sc1, &m1);
        float d0 = d * (float)sc0, min0 = dmin * (float)m0;
        float d1 = d * (float)sc1, min1 = dmin * (float)m1;
        const uint8_t *q = b->qs + 32 * c;
        for (int l = 0; l < 32; l++) {
            y[64 * c + l] = d0 * (float)(q[l] & 0xF) - min0;
            y[64 * c + 32 + l] = d1 * (float)(q[l] >> 4) - min1;
        }
    }
}

static void dequant_q5_k(const clv_block_q5_k *b, float *y) {
    float d = clv_fp16_to_fp32(b->d);
    float dmin = clv_fp16_to_fp32(b->dmin);
    for (int c = 0; c < 4; c++) {
        int sc0, m0, sc1, m1;
        k_scale_min(b->scales, 2 * c, &sc0, &m0);
        k_scale_min(b->scales, 2 * c + 1, &sc1, &m1);
        float d0 = d * (float)sc0, min0 = dmin * (float)m0;
        float d1 = d * (float)sc1, min1 = dmin * (float)m1;
        const uint8_t *q = b->qs + 32 * c;
        for (int l = 0; l < 32; l++) {
            int lo = (q[l] & 0xF) | ((b->qh[l] >> (2 * c)) & 1) << 4;
            int hi = (q[l] >> 4) | ((b->qh[l] >> (2 * c + 1)) & 1) << 4;
            y[64 * c + l] = d0 * (float)lo - min0;
            y[64 * c + 32 + l] = d1 * (float)hi - min1;
        }
    }
}

static void dequant_q6_k(const clv_block_q6_k *b, float *y) {
    float d = clv_fp16_to_fp32(b->d);
    for (int h = 0; h < 2; h++) { /* two halves of 128 elements */
        const uint8_t *ql = b->ql + 64 * h;
        const uint8_t *qh = b->qh + 32 * h;
        const int8_t *sc = b->scales + 8 * h;
        float *yh = y + 128 * h;
        for (int l = 0; l < 32; l++) {
            int is = l / 16;
            int q0 = ((ql[l] & 0xF) | ((qh[l] >> 0) & 3) << 4) - 32;
            int q1 = ((ql[l + 32] & 0xF) | ((qh[l] >> 2) & 3) << 4) - 32;
            int q2 = ((ql[l] >> 4) | ((qh[l] >> 4) & 3) << 4) - 32;
            int q3 = ((ql[l + 32] >> 4) | ((qh[l] >> 6) & 3) << 4) - 32;
            yh[l] = d * (float)sc[is] * (float)q0;
            yh[l + 32] = d * (float)sc[is + 2] * (float)q1;
            yh[l + 64] = d * (float)sc[is + 4] * (float)q2;
            yh[l + 96] = d * (float)sc[is + 6] * (float)q3;
        }
    }
}

static void dequant_q8_k(const clv_block_q8_k *b, float *y) {
    for (int j = 0; j < CLV_QK_K; j++) y[j] = b->d * (float)b->qs[j];
}

static void dequant_iq4_xs(const clv_block_iq4_xs *b, float *y) {
    float d = clv_fp16_to_fp32(b->d);
    for (int ib = 0; ib < CLV_QK_K / 32; ib++) {
        int ls = ((b->scales_l[ib / 2] >> (4 * (ib % 2))) & 0xF) | ((b->scales_h >> (2 * ib)) & 3) << 4;
        float dl = d * (float)(ls - 32);
        const uint8_t *q = b->qs + 16 * ib;
        for (int j = 0; j < 16; j++) {
            y[32 * ib + j] = dl * (float)clv_iq4nl_values[q[j] & 0xF];
            y[32 * ib + 16 + j] = dl * (float)clv_iq4nl_values[q[j] >> 4];
        }
    }
}

/* Decodes blocks of `btype` with `fn`; a block that is not aligned for its
 * struct (a file may place tensors anywhere) is copied first. */
#define DEQUANT_BLOCKS(btype, fn, elems)                                        \
    do {                                                                        \
        const uint8_t *p_ = (const uint8_t *)src;                               \
        bool aligned_ = (uintptr_t)p_ % _Alignof(btype) == 0;                   \
        for (int64_t i_ = 0; i_ < n / (elems); i_++) {                          \
            const uint8_t *bp_ = p_ + i_ * (int64_t)sizeof(btype);              \
            if (aligned_) {                                                     \
                fn((const btype *)(const void *)bp_, dst + i_ * (elems));       \
            } else {                                                            \
                btype tmp_;                                                     \
                memcpy(&tmp_, bp_, sizeof tmp_);                                \
                fn(&tmp_, dst + i_ * (elems));                                  \
            }                                                                   \
        }                                                                       \
    } while (0)

bool clv_type_can_dequantize(int32_t type) {
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
    case CLV_TYPE_Q2_K:
    case CLV_TYPE_Q3_K:
    case CLV_TYPE_Q4_K:
    case CLV_TYPE_Q5_K:
    case CLV_TYPE_Q6_K:
    case CLV_TYPE_Q8_K:
    case CLV_TYPE_IQ4_NL:
    case CLV_TYPE_IQ4_XS:
    case CLV_TYPE_MXFP4: return true;
    default: return false;
    }
}

clv_status clv_dequantize_row(int32_t type, const void *src, float *dst, int64_t n) {
    if (!clv_type_can_dequantize(type)) {
        return clv_fail(CLV_ERR_UNSUPPORTED, "dequantize: type %s (%d) is not supported",
                        clv_type_name(type), (int)type);
    }
    int64_t block = clv_type_get(type)->block_elems;
    if (n < 0 || n % block != 0) {
        return clv_fail(CLV_ERR_ARG, "dequantize: %lld elements of %s: not a multiple of %lld",
                        (long long)n, clv_type_name(type), (long long)block);
    }
    if (n == 0) return CLV_OK;
    const uint8_t *s = (const uint8_t *)src;
    switch (type) {
    case CLV_TYPE_F32: memcpy(dst, src, (size_t)n * sizeof(float)); break;
    case CLV_TYPE_F16:
        for (int64_t i = 0; i < n; i++) dst[i] = clv_fp16_to_fp32((clv_fp16)(s[2 * i] | s[2 * i + 1] << 8));
        break;
    case CLV_TYPE_BF16:
        for (int64_t i = 0; i < n; i++) dst[i] = clv_bf16_to_fp32((clv_bf16)(s[2 * i] | s[2 * i + 1] << 8));
        break;
    case CLV_TYPE_Q4_0: DEQUANT_BLOCKS(clv_block_q4_0, dequant_q4_0, CLV_QK); break;
    case CLV_TYPE_Q4_1: DEQUANT_BLOCKS(clv_block_q4_1, dequant_q4_1, CLV_QK); break;
    case CLV_TYPE_Q5_0: DEQUANT_BLOCKS(clv_block_q5_0, dequant_q5_0, CLV_QK); break;
    case CLV_TYPE_Q5_1: DEQUANT_BLOCKS(clv_block_q5_1, dequant_q5_1, CLV_QK); break;
    case CLV_TYPE_Q8_0: DEQUANT_BLOCKS(clv_block_q8_0, dequant_q8_0, CLV_QK); break;
    case CLV_TYPE_Q8_1: DEQUANT_BLOCKS(clv_block_q8_1, dequant_q8_1, CLV_QK); break;
    case CLV_TYPE_IQ4_NL: DEQUANT_BLOCKS(clv_block_iq4_nl, dequant_iq4_nl, CLV_QK); break;
    case CLV_TYPE_MXFP4: DEQUANT_BLOCKS(clv_block_mxfp4, dequant_mxfp4, CLV_QK); break;
    case CLV_TYPE_Q2_K: DEQUANT_BLOCKS(clv_block_q2_k, dequant_q2_k, CLV_QK_K); break;
    case CLV_TYPE_Q3_K: DEQUANT_BLOCKS(clv_block_q3_k, dequant_q3_k, CLV_QK_K); break;
    case CLV_TYPE_Q4_K: DEQUANT_BLOCKS(clv_block_q4_k, dequant_q4_k, CLV_QK_K); break;
    case CLV_TYPE_Q5_K: DEQUANT_BLOCKS(clv_block_q5_k, dequant_q5_k, CLV_QK_K); break;
    case CLV_TYPE_Q6_K: DEQUANT_BLOCKS(clv_block_q6_k, dequant_q6_k, CLV_QK_K); break;
    case CLV_TYPE_Q8_K: DEQUANT_BLOCKS(clv_block_q8_k, dequant_q8_k, CLV_QK_K); break;
    case CLV_TYPE_IQ4_XS: DEQUANT_BLOCKS(clv_block_iq4_xs, dequant_iq4_xs, CLV_QK_K); break;
    default: CLV_ASSERT(!"type listed in clv_type_can_dequantize without a decoder");
    }
    return CLV_OK;
}
