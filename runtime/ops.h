/* The operations a forward pass is composed of. Model code calls only these;
 * they run on the context's backend (today the CPU: thread pool + kernels/cpu)
 * so that no device API appears in models/. Activations are row-major
 * [n_tokens][width] float arrays from the context's scratch. */
#ifndef CLV_OPS_H
#define CLV_OPS_H

#include <stdint.h>

#include "context.h"
#include "model.h"

/* dst[t] = embedding row tokens[t] * scale. */
void clv_op_embed(clv_context *ctx, float *dst, const clv_weight *emb, const int32_t *tokens, int64_t n_tokens,
                  float scale);

/* RMS norm of n_rows rows of width n; weight (width n) may be NULL. In place allowed. */
void clv_op_rmsnorm(clv_context *ctx, float *dst, const float *src, const clv_weight *weight, int64_t n_rows,
                    int64_t n, float eps);

/* dst[t][r] = W[r] . src[t] (+ bias[r]); W {n_in, n_out}; src rows are n_in wide. */
void clv_op_matmul(clv_context *ctx, float *dst, const clv_weight *w, const clv_weight *bias, const float *src,
                   int64_t n_tokens);

/* dst[i] = w[i] . src (+ bias[i]) for n products of the same input (a
 * layer's q, k and v): clv_op_matmul n times, which a backend may run as
 * fewer launches. n <= CLV_OP_MATMUL_MULTI_MAX; bias[i] may be NULL. */
#define CLV_OP_MATMUL_MULTI_MAX 3
void clv_op_matmul_multi(clv_context *ctx, int n, float *const *dst, const clv_weight *const *w,
                         const clv_weight *const *bias, const float *src, int64_t n_tokens);

/* Rotary embedding in place on x [n_tokens][n_heads][head_dim]. */
typedef struct clv_rope_params {
    clv_rope_type type;
    int64_t n_rot;
    float freq_base, freq_scale;
    const clv_weight *freq_factors; /* Llama 3 rope_freqs, or NULL */
} clv_rope_params;
void clv_op_rope(clv_context *ctx, float *x, int64_t n_tokens, int64_t n_heads, int64_t head_dim,
                 const int32_t *pos, const clv_rope_params *rp);

/* Stores k, v of the batch in layer il's cache at their positions, then
 * attends every query to the cached keys at positions <= its own (and within
 * `window` when window > 0). q [T][n_head][hd_k] -> out [T][n_head][hd_v]. */
void clv_op_attention(clv_context *ctx, int64_t il, float *out, const float *q, const float *k, const float *v,
                      int64_t n_tokens, const int32_t *pos, float scale, int64_t window);

/* What is done to q and k before attention: an RMS norm of each head with
 * weights {head_dim} (NULL: no norm of that part), then the rotary
 * embedding. */
typedef struct clv_qk_prep {
    const clv_weight *q_norm, *k_norm;
    float eps;
    clv_rope_params rope;
} clv_qk_prep;

/* clv_op_attention after q [T][n_head][hd] and k [T][n_head_kv][hd] are
 * normed per head and rotated in place as prep says: the same as
 * clv_op_rmsnorm over the heads, clv_op_rope, then clv_op_attention, which
 * a backend may run as fewer steps. */
void clv_op_rope_attention(clv_context *ctx, int64_t il, float *out, float *q, float *k, const float *v,
                           int64_t n_tokens, const int32_t *pos, float scale, int64_t window, const clv_qk_prep *prep);

/* dst += src, n_tokens rows of width n. */
void clv_op_add(clv_context *ctx, float *dst, const float *src, int64_t n_tokens, int64_t n);

/* x += delta, then dst = the RMS norm of x (rows of n, weight may be NULL):
 * a residual add and the norm after it, as clv_op_add then clv_op_rmsnorm.
 * dst may be delta, not x. */
void clv_op_add_rmsnorm(clv_context *ctx, float *x, const float *delta, float *dst, const clv_weight *weight,
                        int64_t n_tokens, int64_t n, float eps);

/* dst = act(gate) * up, elementwise over n_tokens * n. */
void clv_op_glu(clv_context *ctx, float *dst, const float *gate, const float *up, int64_t n_tokens, int64_t n,
                clv_ffn_act act);

/* Dense gated FFN: dst = down(act(gate(x)) * up(x)), using scratch ffn_a/ffn_b.
 * il is the layer whose FFN this is (observed, and sparse when the context
 * asks), or -1 for a shared expert. */
void clv_op_ffn(clv_context *ctx, int64_t il, float *dst, const float *x, const clv_weight *gate,
                const clv_weight *up, const clv_weight *down, int64_t n_tokens, clv_ffn_act act);

/* Mixture of experts: router softmax, top-k (renormalised when asked), each
 * token through its experts, weighted sum into dst. */
void clv_op_moe(clv_context *ctx, float *dst, const float *x, const clv_layer *l, int64_t n_tokens, clv_ffn_act act,
                bool renormalize);

/* dst[t] *= sigmoid(gate . x[t]) for a gate vector {n}: the shared expert's gate. */
void clv_op_sigmoid_gate(clv_context *ctx, float *dst, const float *x, const clv_weight *gate, int64_t n_tokens,
                         int64_t n_dst);

/* Final norm and output projection for the rows the batch wants logits of. */
void clv_op_logits(clv_context *ctx, const float *x, int64_t n_tokens, bool all);

#endif
