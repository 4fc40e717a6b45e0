/* The small per-token ops of a forward pass on the GPU, callable from C:
 * RMS norm, rotary embedding, activations and GLUs, elementwise add/mul,
 * softmax, top-k and MoE routing, embedding-row lookup, argmax. Each follows
 * its CPU op formula for formula (kernels/cpu/vec.h, runtime/ops_cpu*.c);
 * tests/test_cuda_ops.c checks each against the CPU and gives the bounds.
 *
 * Common to every entry: all array arguments are device memory; the op runs
 * asynchronously on `stream` (a cudaStream_t; NULL: the default stream);
 * nothing is allocated; CLV_ERR_ARG for a bad size, mode or NULL array,
 * CLV_ERR_DEVICE when the launch fails (which includes an earlier
 * asynchronous error of the same device, as cudaGetLastError reports it).
 * Sizes of zero rows or elements are accepted and do nothing. Inputs are
 * finite unless said otherwise. Row counts and lengths that index rows are
 * at most INT32_MAX. */
#ifndef CLV_CUDA_OPS_H
#define CLV_CUDA_OPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Activation functions; the values are those of clv_ffn_act (runtime/model.h),
 * which kernels/ does not include, so a model's act converts by a cast. */
typedef enum clv_cuda_act {
    CLV_CUDA_ACT_SILU = 0, /* x * sigmoid(x) = x / (1 + exp(-x)) */
    CLV_CUDA_ACT_GELU = 1, /* 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), as clv_vec_gelu */
    CLV_CUDA_ACT_RELU = 2, /* max(x, 0) */
} clv_cuda_act;

/* RoPE modes; the values are those of clv_rope_type (runtime/model.h). */
typedef enum clv_cuda_rope_mode {
    CLV_CUDA_ROPE_NONE = 0,   /* no rotation */
    CLV_CUDA_ROPE_NORMAL = 1, /* rotate adjacent pairs (2i, 2i+1) */
    CLV_CUDA_ROPE_NEOX = 2,   /* rotate (i, i + n_rot/2) */
} clv_cuda_rope_mode;

/* clv_rope_params (runtime/ops.h) with the frequency factors in device memory. */
typedef struct clv_cuda_rope_params {
    int32_t mode;                 /* clv_cuda_rope_mode */
    int64_t n_rot;                /* leading dims of each head rotated: even, <= head_dim, <= 8192 */
    float freq_base, freq_scale;  /* theta_i = pos * freq_scale * base^(-2i/n_rot) / factor_i */
    const float *freq_factors;    /* [n_rot/2] (Llama 3 rope_freqs), or NULL */
} clv_cuda_rope_params;

/* dst[r] = src[r] / sqrt(mean(src[r]^2) + eps) * w for n_rows rows of n
 * floats (n >= 1); w [n] may be NULL (no weight: the CPU op multiplies by w
 * as it is, so a Gemma-style 1 + w must already be in w). dst may be src.
 * The sum of squares is taken in double like clv_vec_rmsnorm. */
clv_status clv_cuda_rmsnorm(float *dst, const float *src, const float *w, int64_t n_rows, int64_t n, float eps,
                            void *stream);

/* x += d (x written back), then dst = rmsnorm(x) * w as clv_cuda_rmsnorm:
 * a residual add and the norm after it, with the bits of clv_cuda_add then
 * clv_cuda_rmsnorm. dst may be d, not x; d must not be x. */
clv_status clv_cuda_add_rmsnorm(float *dst, float *x, const float *d, const float *w, int64_t n_rows, int64_t n,
                                float eps, void *stream);

/* Rotary embedding in place on x [n_tokens][n_heads][head_dim], token t at
 * position pos[t] (int32), as clv_op_rope: the first n_rot dims of every
 * head are rotated, the rest are left as they are. Mode NONE or n_rot 0: a
 * no-op (like the CPU). */
clv_status clv_cuda_rope(float *x, int64_t n_tokens, int64_t n_heads, int64_t head_dim, const int32_t *pos,
                         const clv_cuda_rope_params *p, void *stream);

/* dst[i] = act(src[i]) for n elements; dst may be src. */
clv_status clv_cuda_activation(float *dst, const float *src, int64_t n, clv_cuda_act act, void *stream);

/* dst[i] = act(gate[i]) * up[i] for n elements (n_tokens * width of
 * clv_op_glu); dst may be gate or up. */
clv_status clv_cuda_glu(float *dst, const float *gate, const float *up, int64_t n, clv_cuda_act act, void *stream);

/* dst[i] = a[i] + b[i] (the residual add; dst may be a or b). */
clv_status clv_cuda_add(float *dst, const float *a, const float *b, int64_t n, void *stream);

/* dst[i] = a[i] * b[i] (dst may be a or b). */
clv_status clv_cuda_mul(float *dst, const float *a, const float *b, int64_t n, void *stream);

/* Row softmax of n_rows rows of n floats (n >= 1): exp(x - max) / sum, the
 * sum in double as clv_vec_softmax; -inf entries give 0 (a row needs one
 * finite entry). dst may be src. */
clv_status clv_cuda_softmax(float *dst, const float *src, int64_t n_rows, int64_t n, void *stream);

/* The k largest entries of each of n_rows rows of n floats (1 <= k <= 32,
 * k <= n), largest first, ties to the lower index (the order of the CPU MoE
 * routing, runtime/ops_cpu_moe.c): ids [n_rows][k] and their values
 * vals [n_rows][k] (vals may be NULL). NaN entries rank below -inf, so every
 * row always gives k distinct ids in [0, n). */
clv_status clv_cuda_topk(int32_t *ids, float *vals, const float *src, int64_t n_rows, int64_t n, int64_t k,
                         void *stream);

/* MoE routing of n_rows tokens exactly as the CPU's (runtime/ops_cpu_moe.c):
 * the top k of each row of router logits [n_rows][n_expert] (as
 * clv_cuda_topk) into ids [n_rows][k], and their softmax probabilities over
 * all n_expert logits, computed in double, into weights [n_rows][k];
 * renormalize divides the k weights by their float sum. */
clv_status clv_cuda_moe_route(int32_t *ids, float *weights, const float *logits, int64_t n_rows, int64_t n_expert,
                              int64_t k, bool renormalize, void *stream);

/* The router of a few tokens in one launch: logits [n_tokens][n_expert] =
 * W x (W F32 {n_in, n_expert}, rows row_bytes apart, 16-byte aligned like
 * x; the bits of clv_cuda_matvec), then ids and weights [n_tokens][k] as
 * clv_cuda_moe_route gives them. done: n_tokens counters, zero before the
 * launch and after it. Shapes clv_cuda_moe_router_fits refuses are
 * CLV_ERR_ARG (at most 256 experts, n_in a multiple of 4, k <= 32). */
bool clv_cuda_moe_router_fits(int64_t n_in, int64_t n_expert, int64_t k);
clv_status clv_cuda_moe_router(const float *w, size_t row_bytes, int64_t n_in, int64_t n_expert, const float *x,
                               int64_t n_tokens, float *logits, int32_t *ids, float *weights, int64_t k,
                               bool renormalize, uint32_t *done, void *stream);

/* Embedding lookup (clv_op_embed): dst[t][0..n_cols) = row ids[t] of the
 * matrix w (n_rows rows of n_cols elements of `type`, row_bytes apart, any
 * alignment) decoded to float (bit-exact with the scalar dequantizer) and
 * multiplied by scale, for t < n_ids. An id outside [0, n_rows) gives a row
 * of NaN: tokens are checked before they get here, and this keeps a bad one
 * from reading outside w while making it plain in the logits.
 * CLV_ERR_UNSUPPORTED for a type without a decoder, CLV_ERR_ARG for n_cols
 * not a multiple of the type's block or rows shorter than their elements. */
clv_status clv_cuda_get_rows(int32_t type, const void *w, size_t row_bytes, int64_t n_cols, int64_t n_rows,
                             const int32_t *ids, int64_t n_ids, float *dst, float scale, void *stream);

/* Greedy sampling on the device: out[r] = index of the largest of row r of
 * n_rows rows of n floats, ties to the lower index, as the sampler's greedy
 * choice (runtime/sampler.c): NaN and -inf entries are never chosen, and a
 * row with nothing else gives -1. Any input values are accepted. */
clv_status clv_cuda_argmax(int32_t *out, const float *src, int64_t n_rows, int64_t n, void *stream);

/* KV cache store (clv_op_attention's first half): row t of src [n_tokens]
 * [width] goes to row pos[t] (pos in device memory) of cache, rows of width
 * elements of `type` (CLV_TYPE_F16, rounded to nearest even as the CPU
 * does, or CLV_TYPE_F32). CLV_ERR_UNSUPPORTED for another type. */
clv_status clv_cuda_kv_store(void *cache, int32_t type, int64_t width, const int32_t *pos, const float *src,
                             int64_t n_tokens, void *stream);

/* What a layer does to q and k before attention: an RMS norm of each head
 * with weights [head_dim] (NULL: no norm of that part; eps as rmsnorm),
 * then the rotary embedding (mode NONE or n_rot 0: none). */
typedef struct clv_cuda_qk_prep {
    const float *q_norm, *k_norm;
    float eps;
    clv_cuda_rope_params rope;
} clv_cuda_qk_prep;

/* In one launch, for a batch of n_tokens: q [n_tokens][n_head][head_dim] and
 * k [n_tokens][n_head_kv][head_dim] normed and rotated in place as p says,
 * then k and v [n_tokens][v_width] stored at cache rows pos[t] as
 * clv_cuda_kv_store_pair does; the bits of clv_cuda_rmsnorm per head,
 * clv_cuda_rope and clv_cuda_kv_store_pair. head_dim <= 256; kv_type F16 or
 * F32 (else CLV_ERR_UNSUPPORTED). */
clv_status clv_cuda_qk_rope_store(float *q, float *k, const float *v, int64_t n_tokens, int64_t n_head,
                                  int64_t n_head_kv, int64_t head_dim, int64_t v_width, const int32_t *pos,
                                  const clv_cuda_qk_prep *p, void *k_cache, void *v_cache, int32_t kv_type,
                                  void *stream);

/* K and V in one launch: clv_cuda_kv_store(k_cache, .., k_width, pos, k)
 * and clv_cuda_kv_store(v_cache, .., v_width, pos, v), the same bits. */
clv_status clv_cuda_kv_store_pair(void *k_cache, void *v_cache, int32_t type, int64_t k_width, int64_t v_width,
                                  const int32_t *pos, const float *k, const float *v, int64_t n_tokens, void *stream);

/* The MoE combine: dst[i] = sum_j w[j] * src[j][i] for j < k, i < n, w [k]
 * in device memory, summed from zero in slot order (the CPU's bits). dst
 * must not overlap src. */
clv_status clv_cuda_weighted_sum(float *dst, const float *src, const float *w, int64_t k, int64_t n, void *stream);

/* The MoE combine of a batch with its expert outputs grouped by expert:
 * dst[t][i] = sum_j w[t][j] * src[slot[t][j]][i] for t < n_tokens (at most
 * 65535), j < k, i < n; slot and w are [n_tokens][k] in device memory, slot
 * the grouped row of each (token, slot), or NULL when src holds the
 * outputs in assignment order (row t * k + j). Summed from zero in slot
 * order (the CPU's bits). dst must not overlap src. */
clv_status clv_cuda_moe_combine(float *dst, const float *src, const int32_t *slot, const float *w,
                                int64_t n_tokens, int64_t k, int64_t n, void *stream);

/* The shared expert's gate (clv_op_sigmoid_gate): for each of n_rows rows,
 * dst[r][0..n_dst) *= sigmoid(gate . x[r]), x [n_rows][n], gate [n], the
 * dot product and sigmoid in double. */
clv_status clv_cuda_sigmoid_gate(float *dst, const float *x, const float *gate, int64_t n_rows, int64_t n,
                                 int64_t n_dst, void *stream);

#ifdef __cplusplus
}
#endif

#endif
