/* Element decoders shared by the CUDA kernels: element i of a weight block,
 * with the same float operations as the scalar reference
 * (kernels/dequantize.c). Every multiply and add uses the _rn intrinsics so
 * that nvcc cannot fuse d*q + m into an FMA: the values are bit-exact
 * against the reference, operation for operation. Included by .cu files
 * only. */
#ifndef CLV_CUDA_DECODE_CUH
#define CLV_CUDA_DECODE_CUH

#include <stddef.h>
#include <stdint.h>

#include "types.h"

#include "blocks.h"
#include "fp16.h"

static __constant__ int8_t d_iq4nl_values[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                          1,    13,   25,  38,  53,  69,  89,  113};
static __constant__ int8_t d_mxfp4_values[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};

__device__ static inline uint32_t ld_u16(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8; }

__device__ static inline uint32_t ld_u32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

__device__ static inline float ld_fp16(const uint8_t *p) { return clv_fp16_to_fp32((clv_fp16)ld_u16(p)); }

/* Element j (0..31) of a 32-element nibble block: low nibbles first. */
__device__ static inline int nibble32(const uint8_t *qs, int j) {
    return j < 16 ? qs[j] & 0xF : qs[j - 16] >> 4;
}

/* Six-bit scale and min of sub-block j of Q4_K/Q5_K. */
__device__ static inline void k_scale_min(const uint8_t *s, int j, int *sc, int *m) {
    if (j < 4) {
        *sc = s[j] & 63;
        *m = s[j + 4] & 63;
    } else {
        *sc = (s[j + 4] & 0xF) | (s[j - 4] >> 6) << 4;
        *m = (s[j + 4] >> 4) | (s[j] >> 6) << 4;
    }
}

/* Byte n (0..3) of a word. */
__device__ static inline uint32_t byte_of(uint32_t w, int n) { return w >> (8 * n) & 0xFF; }

/* Scale and min of sub-block j of a Q4_K or Q5_K block whose header words are h
 * (h.y, h.z, h.w: scales[0..11]); k_scale_min's packing, from registers. */
__device__ static inline void q4_k_scale_min(uint4 h, int j, int *sc, int *m) {
    if (j < 4) {
        *sc = (int)(byte_of(h.y, j) & 63);
        *m = (int)(byte_of(h.z, j) & 63);
    } else {
        uint32_t lo = byte_of(h.w, j - 4);
        *sc = (int)((lo & 0xF) | (byte_of(h.y, j - 4) >> 6) << 4);
        *m = (int)((lo >> 4) | (byte_of(h.z, j - 4) >> 6) << 4);
    }
}

/* Every type decode<> knows, as X(TYPE, BLOCK, ELEMS): the block's struct
 * and elements, what the launchers instantiate their kernels with. */
#define CLV_CUDA_DECODED_TYPES(X)                                                                                  \
    X(CLV_TYPE_F32, float, 1)                                                                                      \
    X(CLV_TYPE_F16, clv_fp16, 1)                                                                                   \
    X(CLV_TYPE_BF16, clv_bf16, 1)                                                                                  \
    X(CLV_TYPE_Q4_0, clv_block_q4_0, CLV_QK)                                                                       \
    X(CLV_TYPE_Q4_1, clv_block_q4_1, CLV_QK)                                                                       \
    X(CLV_TYPE_Q5_0, clv_block_q5_0, CLV_QK)                                                                       \
    X(CLV_TYPE_Q5_1, clv_block_q5_1, CLV_QK)                                                                       \
    X(CLV_TYPE_Q8_0, clv_block_q8_0, CLV_QK)                                                                       \
    X(CLV_TYPE_Q8_1, clv_block_q8_1, CLV_QK)                                                                       \
    X(CLV_TYPE_IQ4_NL, clv_block_iq4_nl, CLV_QK)                                                                   \
    X(CLV_TYPE_MXFP4, clv_block_mxfp4, CLV_QK)                                                                     \
    X(CLV_TYPE_Q2_K, clv_block_q2_k, CLV_QK_K)                                                                     \
    X(CLV_TYPE_Q3_K, clv_block_q3_k, CLV_QK_K)                                                                     \
    X(CLV_TYPE_Q4_K, clv_block_q4_k, CLV_QK_K)                                                                     \
    X(CLV_TYPE_Q5_K, clv_block_q5_k, CLV_QK_K)                                                                     \
    X(CLV_TYPE_Q6_K, clv_block_q6_k, CLV_QK_K)                                                                     \
    X(CLV_TYPE_Q8_K, clv_block_q8_k, CLV_QK_K)                                                                     \
    X(CLV_TYPE_IQ4_XS, clv_block_iq4_xs, CLV_QK_K)

/* Element i of the block at b. */
template <int TYPE> __device__ static float decode(const uint8_t *b, int i) {
    if constexpr (TYPE == CLV_TYPE_F32) {
        return clv_fp32_from_bits(ld_u32(b));
    } else if constexpr (TYPE == CLV_TYPE_F16) {
        return ld_fp16(b);
    } else if constexpr (TYPE == CLV_TYPE_BF16) {
        return clv_bf16_to_fp32((clv_bf16)ld_u16(b));
    } else if constexpr (TYPE == CLV_TYPE_Q4_0) {
        float d = ld_fp16(b + offsetof(clv_block_q4_0, d));
        return __fmul_rn(d, (float)(nibble32(b + offsetof(clv_block_q4_0, qs), i) - 8));
    } else if constexpr (TYPE == CLV_TYPE_Q4_1) {
        float d = ld_fp16(b + offsetof(clv_block_q4_1, d));
        float m = ld_fp16(b + offsetof(clv_block_q4_1, m));
        return __fadd_rn(__fmul_rn(d, (float)nibble32(b + offsetof(clv_block_q4_1, qs), i)), m);
    } else if constexpr (TYPE == CLV_TYPE_Q5_0) {
        float d = ld_fp16(b + offsetof(clv_block_q5_0, d));
        uint32_t qh = ld_u32(b + offsetof(clv_block_q5_0, qh));
        int q = nibble32(b + offsetof(clv_block_q5_0, qs), i) | (int)((qh >> i) & 1) << 4;
        return __fmul_rn(d, (float)(q - 16));
    } else if constexpr (TYPE == CLV_TYPE_Q5_1) {
        float d = ld_fp16(b + offsetof(clv_block_q5_1, d));
        float m = ld_fp16(b + offsetof(clv_block_q5_1, m));
        uint32_t qh = ld_u32(b + offsetof(clv_block_q5_1, qh));
        int q = nibble32(b + offsetof(clv_block_q5_1, qs), i) | (int)((qh >> i) & 1) << 4;
        return __fadd_rn(__fmul_rn(d, (float)q), m);
    } else if constexpr (TYPE == CLV_TYPE_Q8_0) {
        float d = ld_fp16(b + offsetof(clv_block_q8_0, d));
        return __fmul_rn((float)(int8_t)b[offsetof(clv_block_q8_0, qs) + i], d);
    } else if constexpr (TYPE == CLV_TYPE_Q8_1) {
        float d = ld_fp16(b + offsetof(clv_block_q8_1, d));
        return __fmul_rn((float)(int8_t)b[offsetof(clv_block_q8_1, qs) + i], d);
    } else if constexpr (TYPE == CLV_TYPE_IQ4_NL) {
        float d = ld_fp16(b + offsetof(clv_block_iq4_nl, d));
        return __fmul_rn(d, (float)d_iq4nl_values[nibble32(b + offsetof(clv_block_iq4_nl, qs), i)]);
    } else if constexpr (TYPE == CLV_TYPE_MXFP4) {
        uint8_t e = b[offsetof(clv_block_mxfp4, e)];
        float d = clv_fp32_from_bits(e < 2 ? 0x00200000u << e : (uint32_t)(e - 1) << 23); /* 2^(e-128) */
        return __fmul_rn(d, (float)d_mxfp4_values[nibble32(b + offsetof(clv_block_mxfp4, qs), i)]);
    } else if constexpr (TYPE == CLV_TYPE_Q2_K) {
        float d = ld_fp16(b + offsetof(clv_block_q2_k, d));
        float dmin = ld_fp16(b + offsetof(clv_block_q2_k, dmin));
        int sc = b[offsetof(clv_block_q2_k, scales) + i / 16];
        int q = (b[offsetof(clv_block_q2_k, qs) + 32 * (i / 128) + i % 32] >> (2 * (i / 32 % 4))) & 3;
        return __fsub_rn(__fmul_rn(__fmul_rn(d, (float)(sc & 0xF)), (float)q), __fmul_rn(dmin, (float)(sc >> 4)));
    } else if constexpr (TYPE == CLV_TYPE_Q3_K) {
        float d = ld_fp16(b + offsetof(clv_block_q3_k, d));
        const uint8_t *s = b + offsetof(clv_block_q3_k, scales);
        int is = i / 16;
        int lo = is < 8 ? s[is] & 0xF : s[is - 8] >> 4;
        int hi = (s[8 + is % 4] >> (2 * (is / 4))) & 3;
        int q = (b[offsetof(clv_block_q3_k, qs) + 32 * (i / 128) + i % 32] >> (2 * (i / 32 % 4))) & 3;
        int high = (b[offsetof(clv_block_q3_k, hmask) + i % 32] >> (i / 32)) & 1;
        return __fmul_rn(__fmul_rn(d, (float)((lo | hi << 4) - 32)), (float)(q - (high ? 0 : 4)));
    } else if constexpr (TYPE == CLV_TYPE_Q4_K || TYPE == CLV_TYPE_Q5_K) {
        /* Q4_K and Q5_K share d, dmin and scales at the same offsets */
        float d = ld_fp16(b + offsetof(clv_block_q4_k, d));
        float dmin = ld_fp16(b + offsetof(clv_block_q4_k, dmin));
        int j = i / 32, l = i % 32, sc, m;
        k_scale_min(b + offsetof(clv_block_q4_k, scales), j, &sc, &m);
        int q;
        if constexpr (TYPE == CLV_TYPE_Q4_K) {
            uint8_t byte = b[offsetof(clv_block_q4_k, qs) + 32 * (j / 2) + l];
            q = j % 2 ? byte >> 4 : byte & 0xF;
        } else {
            uint8_t byte = b[offsetof(clv_block_q5_k, qs) + 32 * (j / 2) + l];
            q = (j % 2 ? byte >> 4 : byte & 0xF) | ((b[offsetof(clv_block_q5_k, qh) + l] >> j) & 1) << 4;
        }
        return __fsub_rn(__fmul_rn(__fmul_rn(d, (float)sc), (float)q), __fmul_rn(dmin, (float)m));
    } else if constexpr (TYPE == CLV_TYPE_Q6_K) {
        float d = ld_fp16(b + offsetof(clv_block_q6_k, d));
        int h = i / 128, k = i % 128 / 32, l = i % 32;
        uint8_t lbyte = b[offsetof(clv_block_q6_k, ql) + 64 * h + 32 * (k % 2) + l];
        int lo = k < 2 ? lbyte & 0xF : lbyte >> 4;
        int hi = (b[offsetof(clv_block_q6_k, qh) + 32 * h + l] >> (2 * k)) & 3;
        int sc = (int8_t)b[offsetof(clv_block_q6_k, scales) + i / 16];
        return __fmul_rn(__fmul_rn(d, (float)sc), (float)((lo | hi << 4) - 32));
    } else if constexpr (TYPE == CLV_TYPE_Q8_K) {
        float d = clv_fp32_from_bits(ld_u32(b + offsetof(clv_block_q8_k, d)));
        return __fmul_rn(d, (float)(int8_t)b[offsetof(clv_block_q8_k, qs) + i]);
    } else if constexpr (TYPE == CLV_TYPE_IQ4_XS) {
        float d = ld_fp16(b + offsetof(clv_block_iq4_xs, d));
        uint32_t sh = ld_u16(b + offsetof(clv_block_iq4_xs, scales_h));
        int ib = i / 32;
        int ls = ((b[offsetof(clv_block_iq4_xs, scales_l) + ib / 2] >> (4 * (ib % 2))) & 0xF) |
                 (int)((sh >> (2 * ib)) & 3) << 4;
        int q = nibble32(b + offsetof(clv_block_iq4_xs, qs) + 16 * ib, i % 32);
        return __fmul_rn(__fmul_rn(d, (float)(ls - 32)), (float)d_iq4nl_values[q]);
    } else {
        static_assert(TYPE < 0, "no decoder for this type");
        return 0.0f;
    }
}

#endif
