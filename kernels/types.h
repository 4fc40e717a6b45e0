/* Tensor element types as stored in GGUF files (the ggml type numbering).
 *
 * Every type a GGUF file may name is listed so that files can be read, sized
 * and inspected; which of them cleave can compute with is a separate question
 * (clv_type_can_dequantize). */
#ifndef CLV_TYPES_H
#define CLV_TYPES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum clv_type {
    CLV_TYPE_F32 = 0,
    CLV_TYPE_F16 = 1,
    CLV_TYPE_Q4_0 = 2,
    CLV_TYPE_Q4_1 = 3,
    CLV_TYPE_Q5_0 = 6,
    CLV_TYPE_Q5_1 = 7,
    CLV_TYPE_Q8_0 = 8,
    CLV_TYPE_Q8_1 = 9,
    CLV_TYPE_Q2_K = 10,
    CLV_TYPE_Q3_K = 11,
    CLV_TYPE_Q4_K = 12,
    CLV_TYPE_Q5_K = 13,
    CLV_TYPE_Q6_K = 14,
    CLV_TYPE_Q8_K = 15,
    CLV_TYPE_IQ2_XXS = 16,
    CLV_TYPE_IQ2_XS = 17,
    CLV_TYPE_IQ3_XXS = 18,
    CLV_TYPE_IQ1_S = 19,
    CLV_TYPE_IQ4_NL = 20,
    CLV_TYPE_IQ3_S = 21,
    CLV_TYPE_IQ2_S = 22,
    CLV_TYPE_IQ4_XS = 23,
    CLV_TYPE_I8 = 24,
    CLV_TYPE_I16 = 25,
    CLV_TYPE_I32 = 26,
    CLV_TYPE_I64 = 27,
    CLV_TYPE_F64 = 28,
    CLV_TYPE_IQ1_M = 29,
    CLV_TYPE_BF16 = 30,
    CLV_TYPE_TQ1_0 = 34,
    CLV_TYPE_TQ2_0 = 35,
    CLV_TYPE_MXFP4 = 39,
    CLV_TYPE_NVFP4 = 40,
    CLV_TYPE_Q1_0 = 41,
    CLV_TYPE_COUNT = 42, /* one past the largest value; holes are unknown */
} clv_type;

typedef struct clv_type_info {
    const char *name;    /* "Q4_K" */
    int32_t block_elems; /* elements per block (1 for plain types) */
    int32_t block_bytes; /* bytes per block */
} clv_type_info;

/* NULL for a number that is no known type (holes and out-of-range values). */
const clv_type_info *clv_type_get(int32_t type);

/* "Q4_K", or "unknown" for a number that is no known type. */
const char *clv_type_name(int32_t type);

/* Type by name, case-insensitive; -1 when unknown. */
int32_t clv_type_from_name(const char *name);

/* Bytes of `n_elems` elements; false when the type is unknown, n_elems is not
 * a multiple of the block size, or the size overflows. */
bool clv_type_bytes(int32_t type, int64_t n_elems, uint64_t *bytes);

/* True for the types cleave's scalar dequantizer handles. */
bool clv_type_can_dequantize(int32_t type);

/* Name of a `general.file_type` value ("Q4_K_M"), or NULL when unknown. */
const char *clv_file_type_name(uint32_t file_type);

#ifdef __cplusplus
}
#endif

#endif
