/* Shared inside predictor/: the threaded product the trainer and the
 * evaluators run. Not part of the public API. */
#ifndef CLV_PREDICTOR_INTERNAL_H
#define CLV_PREDICTOR_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "neuron_predictor.h"

struct clv_threadpool;

/* A set of n_layer layers without predictors or profile facts (the file
 * reader fills it in), and the engine view's refresh after layer il changed. */
clv_status clv_pred_set_alloc(int64_t n_layer, int64_t n_embd, clv_predictor_set **out);
void clv_pred_refresh_view(clv_predictor_set *s, int64_t il);

/* Y[b * y_stride + r] = dot(row r of W, x_b) for b < n_batch, r < n_rows:
 * W of `wtype` (F32 or F16) with rows of n_in elements row_bytes apart, x_b
 * the floats at x + b * x_stride (floats). Rows are split over the pool's
 * threads (pool NULL: the caller alone). */
void clv_pred_matmul(struct clv_threadpool *pool, int32_t wtype, const void *w, size_t row_bytes, int64_t n_in,
                     int64_t n_rows, const float *x, int64_t x_stride, int64_t n_batch, float *y, int64_t y_stride);
/* The same with activations already in W's vec dot type (clv_cpu_quantize_activation),
 * xq_stride bytes apart; for weight types whose activations are quantized. */
void clv_pred_matmul_q(struct clv_threadpool *pool, int32_t wtype, const void *w, size_t row_bytes, int64_t n_in,
                       int64_t n_rows, const void *xq, size_t xq_stride, int64_t n_batch, float *y, int64_t y_stride);

/* Active bit j of a sample mask (LSB first). */
static inline int clv_pred_mask_bit(const uint8_t *mask, int64_t j) { return (mask[j >> 3] >> (j & 7)) & 1; }

#endif
