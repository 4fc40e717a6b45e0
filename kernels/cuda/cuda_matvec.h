/* GPU matrix-vector product over GGUF weight rows (decode), callable from C:
 * y[r] = sum_i W[r][i] * x[i] for every type the scalar reference decodes,
 * with the weights decoded on the fly (decode.cuh) and float activations.
 * tests/test_cuda_matvec.c checks it against the CPU per type;
 * tests/bench/bench_cuda_matvec.c measures it. */
#ifndef CLV_CUDA_MATVEC_H
#define CLV_CUDA_MATVEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cuda_ops.h"
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

/* clv_cuda_matvec with rows_per_warp (1, 2 or 4) rows to a warp instead of
 * the count chosen from the shape (0): the same result, another speed (for
 * the benchmark and the tests). */
clv_status clv_cuda_matvec_rows(int32_t type, const void *w_dev, size_t row_bytes, int64_t n_in, int64_t n_rows,
                                const float *x_dev, float *y_dev, int rows_per_warp, void *stream);

/* Up to CLV_CUDA_MATVEC_MAX_PARTS matrices of one type and row layout times
 * the same x in one launch (a layer's q, k and v in decode): y_dev[p] =
 * matrix w_dev[p] (n_rows[p] rows) times x, bit for bit what a
 * clv_cuda_matvec each gives. */
#define CLV_CUDA_MATVEC_MAX_PARTS 3
clv_status clv_cuda_matvec_multi(int32_t type, int n, const void *const *w_dev, const int64_t *n_rows,
                                 float *const *y_dev, size_t row_bytes, int64_t n_in, const float *x_dev,
                                 void *stream);

/* A GLU feed-forward's first half in one launch: y[r] = act(G[r] x) * (U[r] x)
 * for two matrices G and U of the same type and layout, bit for bit what
 * two clv_cuda_matvec and clv_cuda_glu give. CLV_ERR_ARG for an unknown act. */
clv_status clv_cuda_matvec_glu(int32_t type, const void *gate_dev, const void *up_dev, size_t row_bytes,
                               int64_t n_in, int64_t n_rows, const float *x_dev, float *y_dev, clv_cuda_act act,
                               void *stream);

/* Routed experts without a trip to the host: W is a 3-D expert tensor of
 * n_expert matrices of n_rows x n_in (each n_rows * row_bytes bytes, one
 * after another); for s < n_sel, y + s * y_stride = (matrix ids[s]) times
 * (x + s * x_stride), x_stride 0 giving every expert the same x. ids (device
 * memory, n_sel entries) come from the router kernel; an id out of range is
 * a bug and fills its y with NaN. CLV_ERR_ARG also for y_stride < n_rows or
 * n_sel above 65535. */
clv_status clv_cuda_matvec_experts(int32_t type, const void *w_dev, size_t row_bytes, int64_t n_in, int64_t n_rows,
                                   int64_t n_expert, const int32_t *ids_dev, int64_t n_sel, const float *x_dev,
                                   int64_t x_stride, float *y_dev, int64_t y_stride, void *stream);

/* The two at once: the chosen experts' act(gate x) * (up x), gate and up
 * 3-D tensors of the same type and shape. */
clv_status clv_cuda_matvec_experts_glu(int32_t type, const void *gate_dev, const void *up_dev, size_t row_bytes,
                                       int64_t n_in, int64_t n_rows, int64_t n_expert, const int32_t *ids_dev,
                                       int64_t n_sel, const float *x_dev, int64_t x_stride, float *y_dev,
                                       int64_t y_stride, clv_cuda_act act, void *stream);

/* A token's experts and their weighted sum in one launch (the down product
 * of MoE decode): for t < n_tokens, y + t * y_stride = sum over j < k of
 * weights[t k + j] * (matrix ids[t k + j]) times (x + (t k + j) * x_stride),
 * summed in slot order. The bits are those of clv_cuda_matvec_experts over
 * the n_tokens k slots then clv_cuda_moe_combine. k <= 32, n_tokens <= 65535. */
clv_status clv_cuda_matvec_experts_combine(int32_t type, const void *w_dev, size_t row_bytes, int64_t n_in,
                                           int64_t n_rows, int64_t n_expert, const int32_t *ids_dev,
                                           const float *weights_dev, int64_t n_tokens, int64_t k, const float *x_dev,
                                           int64_t x_stride, float *y_dev, int64_t y_stride, void *stream);
/* The same with rows_per_warp (1, 2 or 4; 0: the default) rows to a warp, for
 * the benchmark and the tests. */
clv_status clv_cuda_matvec_experts_combine_rows(int32_t type, const void *w_dev, size_t row_bytes, int64_t n_in,
                                                int64_t n_rows, int64_t n_expert, const int32_t *ids_dev,
                                                const float *weights_dev, int64_t n_tokens, int64_t k,
                                                const float *x_dev, int64_t x_stride, float *y_dev, int64_t y_stride,
                                                int rows_per_warp, void *stream);

#ifdef __cplusplus
}
#endif

#endif
