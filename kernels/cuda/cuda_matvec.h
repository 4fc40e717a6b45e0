/* GPU matrix-vector product over GGUF weight rows (decode), callable from C:
 * y[r] = sum_i W[r][i] * x[i] for every type the scalar reference decodes,
 * with the weights decoded on the fly (decode.cuh) and float activations.
 * tests/test_cuda_matvec.c checks it against the CPU per type. */
#ifndef CLV_CUDA_MATVEC_H
#define CLV_CUDA_MATVEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* W (device memory) has n_rows rows of n_in elements of `type`, row_bytes
 * apart; x (n_in floats) and y (n_rows floats) are device memory. Runs
 * asynchronously on `stream` (a cudaStream_t; NULL: the default stream).
 * CLV_ERR_UNSUPPORTED for a type without a decoder, CLV_ERR_ARG for n_in not
 * a multiple of the block size or rows shorter than their elements,
 * CLV_ERR_DEVICE when the launch fails. */
clv_status clv_cuda_matvec(int32_t type, const void *w_dev, size_t row_bytes, int64_t n_in, int64_t n_rows,
                           const float *x_dev, float *y_dev, void *stream);

#ifdef __cplusplus
}
#endif

#endif
