/* Internal to the CPU implementation of ops.h: running a loop on the
 * context's thread pool. */
#ifndef CLV_OPS_CPU_H
#define CLV_OPS_CPU_H

#include "context.h"
#include "threadpool.h"

/* Runs fn(arg, begin, end) over [0, n) in chunks of `chunk` on every thread
 * (dynamic: threads take the next chunk when done). Small loops (n * cost
 * below a threshold) run on the calling thread alone. */
typedef void (*clv_range_fn)(void *arg, int64_t begin, int64_t end);
void clv_cpu_parallel_for(clv_context *ctx, int64_t n, int64_t chunk, double cost_per_item, clv_range_fn fn,
                          void *arg);

/* Quantizes n_rows activation rows for weights of type wtype into xq. */
void clv_cpu_quantize_activations(clv_context *ctx, int32_t wtype, const float *src, int64_t n_rows, int64_t n_in,
                                  void *xq, size_t xq_stride);

/* dst[t][r] = W[r] . x[t] for activations already quantized for W's type. */
void clv_cpu_matmul_quantized(clv_context *ctx, float *dst, const clv_weight *w, const void *xq, size_t xq_stride,
                              int64_t n_tokens);

/* Layer il's FFN on the sparse path (ops_cpu_sparse.c) when the context
 * makes that layer sparse; false (nothing done) otherwise. */
bool clv_cpu_ffn_sparse(clv_context *ctx, int64_t il, float *dst, const float *x, const clv_weight *gate,
                        const clv_weight *up, const clv_weight *down, int64_t n_tokens, clv_ffn_act act);

/* Reference-mode product: float activations, weights decoded by the scalar
 * dequantizer (clv_context_params.f32_activations). */
void clv_cpu_matmul_reference(clv_context *ctx, float *dst, const clv_weight *w, const float *src, int64_t n_tokens);

#endif
