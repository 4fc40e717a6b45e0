/* Block layouts of the quantized types, byte for byte as GGUF stores them
 * (REFERENCE.md section 2). Every multi-byte field is little-endian; fp16
 * fields are raw clv_fp16 bits (see fp16.h). Sizes must match the type table
 * in types.c: the static asserts below and test_quant_roundtrip check it.
 *
 * Fields are at most 2-byte aligned (4 for Q8_K), so a block pointer into a
 * mapped file needs that alignment; the scalar dequantizer copies blocks that
 * are not aligned. */
#ifndef CLV_BLOCKS_H
#define CLV_BLOCKS_H

#include <stdint.h>

#include "fp16.h"

#ifdef __cplusplus
#define CLV_STATIC_ASSERT(cond, msg) static_assert(cond, msg)
#else
#define CLV_STATIC_ASSERT(cond, msg) _Static_assert(cond, msg)
#endif

#define CLV_QK 32          /* elements per block of the 32-element formats */
#define CLV_QK_K 256       /* elements per K-quant super-block */
#define CLV_K_SCALE_SIZE 12 /* packed 6-bit scales and mins of Q4_K/Q5_K */

/* --- 32-element formats: element j is the low nibble of qs[j], j+16 the high */

typedef struct clv_block_q4_0 {
    clv_fp16 d;
    uint8_t qs[CLV_QK / 2];
} clv_block_q4_0; /* (q - 8) * d */
CLV_STATIC_ASSERT(sizeof(clv_block_q4_0) == 18, "Q4_0 block size");

typedef struct clv_block_q4_1 {
    clv_fp16 d;
    clv_fp16 m;
    uint8_t qs[CLV_QK / 2];
} clv_block_q4_1; /* q * d + m */
CLV_STATIC_ASSERT(sizeof(clv_block_q4_1) == 20, "Q4_1 block size");

typedef struct clv_block_q5_0 {
    clv_fp16 d;
    uint8_t qh[4]; /* little-endian u32: bit j is the fifth bit of element j */
    uint8_t qs[CLV_QK / 2];
} clv_block_q5_0; /* ((q | h << 4) - 16) * d */
CLV_STATIC_ASSERT(sizeof(clv_block_q5_0) == 22, "Q5_0 block size");

typedef struct clv_block_q5_1 {
    clv_fp16 d;
    clv_fp16 m;
    uint8_t qh[4];
    uint8_t qs[CLV_QK / 2];
} clv_block_q5_1; /* (q | h << 4) * d + m */
CLV_STATIC_ASSERT(sizeof(clv_block_q5_1) == 24, "Q5_1 block size");

typedef struct clv_block_q8_0 {
    clv_fp16 d;
    int8_t qs[CLV_QK];
} clv_block_q8_0; /* q * d */
CLV_STATIC_ASSERT(sizeof(clv_block_q8_0) == 34, "Q8_0 block size");

/* Activations for Q4_1/Q5_1 dot products: s = d * sum(qs) saves a pass. */
typedef struct clv_block_q8_1 {
    clv_fp16 d;
    clv_fp16 s;
    int8_t qs[CLV_QK];
} clv_block_q8_1; /* q * d */
CLV_STATIC_ASSERT(sizeof(clv_block_q8_1) == 36, "Q8_1 block size");

typedef struct clv_block_iq4_nl {
    clv_fp16 d;
    uint8_t qs[CLV_QK / 2];
} clv_block_iq4_nl; /* d * clv_iq4nl_values[q] */
CLV_STATIC_ASSERT(sizeof(clv_block_iq4_nl) == 18, "IQ4_NL block size");

typedef struct clv_block_mxfp4 {
    uint8_t e; /* E8M0 shared exponent: scale 2^(e - 127) */
    uint8_t qs[CLV_QK / 2];
} clv_block_mxfp4; /* clv_mxfp4_values[q] * 2^(e - 128) (values are doubled) */
CLV_STATIC_ASSERT(sizeof(clv_block_mxfp4) == 17, "MXFP4 block size");

/* --- K-quants: 256-element super-blocks */

typedef struct clv_block_q2_k {
    uint8_t scales[CLV_QK_K / 16]; /* per 16 elements: scale (low 4 bits), min (high 4) */
    uint8_t qs[CLV_QK_K / 4];
    clv_fp16 d;
    clv_fp16 dmin;
} clv_block_q2_k;
CLV_STATIC_ASSERT(sizeof(clv_block_q2_k) == 84, "Q2_K block size");

typedef struct clv_block_q3_k {
    uint8_t hmask[CLV_QK_K / 8]; /* third bit; set means no -4 offset */
    uint8_t qs[CLV_QK_K / 4];    /* low two bits */
    uint8_t scales[12];          /* 16 six-bit scales, biased by 32 */
    clv_fp16 d;
} clv_block_q3_k;
CLV_STATIC_ASSERT(sizeof(clv_block_q3_k) == 110, "Q3_K block size");

typedef struct clv_block_q4_k {
    clv_fp16 d;
    clv_fp16 dmin;
    uint8_t scales[CLV_K_SCALE_SIZE]; /* 8 six-bit scales and 8 six-bit mins */
    uint8_t qs[CLV_QK_K / 2];
} clv_block_q4_k;
CLV_STATIC_ASSERT(sizeof(clv_block_q4_k) == 144, "Q4_K block size");

typedef struct clv_block_q5_k {
    clv_fp16 d;
    clv_fp16 dmin;
    uint8_t scales[CLV_K_SCALE_SIZE];
    uint8_t qh[CLV_QK_K / 8];
    uint8_t qs[CLV_QK_K / 2];
} clv_block_q5_k;
CLV_STATIC_ASSERT(sizeof(clv_block_q5_k) == 176, "Q5_K block size");

typedef struct clv_block_q6_k {
    uint8_t ql[CLV_QK_K / 2]; /* low 4 bits */
    uint8_t qh[CLV_QK_K / 4]; /* high 2 bits */
    int8_t scales[CLV_QK_K / 16];
    clv_fp16 d;
} clv_block_q6_k;
CLV_STATIC_ASSERT(sizeof(clv_block_q6_k) == 210, "Q6_K block size");

/* Activations for K-quant dot products; bsums are sums of 16 qs each. */
typedef struct clv_block_q8_k {
    float d;
    int8_t qs[CLV_QK_K];
    int16_t bsums[CLV_QK_K / 16];
} clv_block_q8_k;
CLV_STATIC_ASSERT(sizeof(clv_block_q8_k) == 292, "Q8_K block size");

typedef struct clv_block_iq4_xs {
    clv_fp16 d;
    uint16_t scales_h; /* high 2 bits of the 8 six-bit scales */
    uint8_t scales_l[CLV_QK_K / 64];
    uint8_t qs[CLV_QK_K / 2];
} clv_block_iq4_xs;
CLV_STATIC_ASSERT(sizeof(clv_block_iq4_xs) == 136, "IQ4_XS block size");

/* Non-linear 4-bit codebooks. */
static const int8_t clv_iq4nl_values[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                            1,    13,   25,  38,  53,  69,  89,  113};
/* E2M1 values times two (the block scale carries the factor 1/2). */
static const int8_t clv_mxfp4_values[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};

#endif
