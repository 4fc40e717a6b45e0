/* Internal to the CPU implementation of ops.h: the ops themselves (the
 * CPU backend's table, clv_backend_cpu, is in ops_cpu.c) and running a loop
 * on the context's thread pool. */
#ifndef CLV_OPS_CPU_H
#define CLV_OPS_CPU_H

#include "context.h"
#include "ops.h"
#include "threadpool.h"

/* The CPU versions of the ops of ops.h (same arguments and meaning). */
void clv_cpu_op_embed(clv_context *ctx, float *dst, const clv_weight *emb, const int32_t *tokens, int64_t n_tokens,
                      float scale);
void clv_cpu_op_rmsnorm(clv_context *ctx, float *dst, const float *src, const clv_weight *weight, int64_t n_rows,
                        int64_t n, float eps);
void clv_cpu_op_matmul(clv_context *ctx, float *dst, const clv_weight *w, const clv_weight *bias, const float *src,
                       int64_t n_tokens);
void clv_cpu_op_rope(clv_context *ctx, float *x, int64_t n_tokens, int64_t n_heads, int64_t head_dim,
                     const int32_t *pos, const clv_rope_params *rp);
void clv_cpu_op_attention(clv_context *ctx, int64_t il, float *out, const float *q, const float *k, const float *v,
                          int64_t n_tokens, const int32_t *pos, float scale, int64_t window);
void clv_cpu_op_add(clv_context *ctx, float *dst, const float *src, int64_t n_tokens, int64_t n);
void clv_cpu_op_glu(clv_context *ctx, float *dst, const float *gate, const float *up, int64_t n_tokens, int64_t n,
                    clv_ffn_act act);
void clv_cpu_op_ffn(clv_context *ctx, int64_t il, float *dst, const float *x, const clv_weight *gate,
                    const clv_weight *up, const clv_weight *down, int64_t n_tokens, clv_ffn_act act);
void clv_cpu_op_moe(clv_context *ctx, float *dst, const float *x, const clv_layer *l, int64_t n_tokens,
                    clv_ffn_act act, bool renormalize);
void clv_cpu_op_sigmoid_gate(clv_context *ctx, float *dst, const float *x, const clv_weight *gate, int64_t n_tokens,
                             int64_t n_dst);
void clv_cpu_op_logits(clv_context *ctx, const float *x, int64_t n_tokens, bool all);

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
