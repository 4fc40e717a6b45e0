/* The seam between models/ and the devices: each context carries a table of
 * the ops of ops.h, and clv_op_* (ops.c) calls through it. The CPU backend
 * (ops_cpu*.c) is the reference; the CUDA backend (ops_cuda.c, built with
 * CUDA only) runs the same ops on device memory. Model code sees neither. */
#ifndef CLV_BACKEND_H
#define CLV_BACKEND_H

#include "ops.h"

typedef struct clv_backend {
    const char *name;
    void (*embed)(clv_context *ctx, float *dst, const clv_weight *emb, const int32_t *tokens, int64_t n_tokens,
                  float scale);
    void (*rmsnorm)(clv_context *ctx, float *dst, const float *src, const clv_weight *weight, int64_t n_rows,
                    int64_t n, float eps);
    void (*matmul)(clv_context *ctx, float *dst, const clv_weight *w, const clv_weight *bias, const float *src,
                   int64_t n_tokens);
    void (*rope)(clv_context *ctx, float *x, int64_t n_tokens, int64_t n_heads, int64_t head_dim, const int32_t *pos,
                 const clv_rope_params *rp);
    void (*attention)(clv_context *ctx, int64_t il, float *out, const float *q, const float *k, const float *v,
                      int64_t n_tokens, const int32_t *pos, float scale, int64_t window);
    void (*add)(clv_context *ctx, float *dst, const float *src, int64_t n_tokens, int64_t n);
    /* Optional fusions (NULL: ops.c runs the ops they stand for). */
    void (*matmul_multi)(clv_context *ctx, int n, float *const *dst, const clv_weight *const *w,
                         const clv_weight *const *bias, const float *src, int64_t n_tokens);
    void (*rope_attention)(clv_context *ctx, int64_t il, float *out, float *q, float *k, const float *v,
                           int64_t n_tokens, const int32_t *pos, float scale, int64_t window,
                           const clv_qk_prep *prep);
    void (*add_rmsnorm)(clv_context *ctx, float *x, const float *delta, float *dst, const clv_weight *weight,
                        int64_t n_tokens, int64_t n, float eps);
    void (*glu)(clv_context *ctx, float *dst, const float *gate, const float *up, int64_t n_tokens, int64_t n,
                clv_ffn_act act);
    void (*ffn)(clv_context *ctx, int64_t il, float *dst, const float *x, const clv_weight *gate,
                const clv_weight *up, const clv_weight *down, int64_t n_tokens, clv_ffn_act act);
    void (*moe)(clv_context *ctx, float *dst, const float *x, const clv_layer *l, int64_t n_tokens, clv_ffn_act act,
                bool renormalize);
    void (*sigmoid_gate)(clv_context *ctx, float *dst, const float *x, const clv_weight *gate, int64_t n_tokens,
                         int64_t n_dst);
    void (*logits)(clv_context *ctx, const float *x, int64_t n_tokens, bool all);
} clv_backend;

extern const clv_backend clv_backend_cpu;

#endif
