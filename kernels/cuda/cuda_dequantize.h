/* GPU dequantization, callable from C. Same types and the same float
 * operations as the scalar reference (kernels/dequantize.c), so results are
 * bit-exact against it; tests/test_cuda_dequantize.c checks that. */
#ifndef CLV_CUDA_DEQUANTIZE_H
#define CLV_CUDA_DEQUANTIZE_H

#include <stdbool.h>
#include <stdint.h>

#include "status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* True for the types clv_cuda_dequantize handles (those of the scalar
 * reference: clv_type_can_dequantize). */
bool clv_cuda_can_dequantize(int32_t type);

/* Decodes n elements (a multiple of the type's block size) of `type` from
 * device memory src_dev (packed blocks, any alignment) into device memory
 * dst_dev, asynchronously on `stream` (a cudaStream_t; NULL for the default
 * stream). CLV_ERR_UNSUPPORTED for an unknown type, CLV_ERR_ARG for a bad n,
 * CLV_ERR_DEVICE when the kernel launch fails. */
clv_status clv_cuda_dequantize(int32_t type, const void *src_dev, float *dst_dev, int64_t n, void *stream);

#ifdef __cplusplus
}
#endif

#endif
