/* clv_op_*: each op runs on its context's backend (backend.h). A context
 * without one (tests that fill in a context by hand) runs on the CPU. */
#include "backend.h"

static const clv_backend *backend(const clv_context *ctx) { return ctx->backend ? ctx->backend : &clv_backend_cpu; }

void clv_op_embed(clv_context *ctx, float *dst, const clv_weight *emb, const int32_t *tokens, int64_t n_tokens,
                  float scale) {
    backend(ctx)->embed(ctx, dst, emb, tokens, n_tokens, scale);
}

void clv_op_rmsnorm(clv_context *ctx, float *dst, const float *src, const clv_weight *weight, int64_t n_rows,
                    int64_t n, float eps) {
    backend(ctx)->rmsnorm(ctx, dst, src, weight, n_rows, n, eps);
}

void clv_op_matmul(clv_context *ctx, float *dst, const clv_weight *w, const clv_weight *bias, const float *src,
                   int64_t n_tokens) {
    backend(ctx)->matmul(ctx, dst, w, bias, src, n_tokens);
}

void clv_op_matmul_multi(clv_context *ctx, int n, float *const *dst, const clv_weight *const *w,
                         const clv_weight *const *bias, const float *src, int64_t n_tokens) {
    const clv_backend *b = backend(ctx);
    CLV_ASSERT(n >= 1 && n <= CLV_OP_MATMUL_MULTI_MAX);
    if (b->matmul_multi) {
        b->matmul_multi(ctx, n, dst, w, bias, src, n_tokens);
        return;
    }
    for (int i = 0; i < n; i++) b->matmul(ctx, dst[i], w[i], bias[i], src, n_tokens);
}

void clv_op_rope(clv_context *ctx, float *x, int64_t n_tokens, int64_t n_heads, int64_t head_dim,
                 const int32_t *pos, const clv_rope_params *rp) {
    backend(ctx)->rope(ctx, x, n_tokens, n_heads, head_dim, pos, rp);
}

void clv_op_attention(clv_context *ctx, int64_t il, float *out, const float *q, const float *k, const float *v,
                      int64_t n_tokens, const int32_t *pos, float scale, int64_t window) {
    backend(ctx)->attention(ctx, il, out, q, k, v, n_tokens, pos, scale, window);
}

void clv_op_rope_attention(clv_context *ctx, int64_t il, float *out, float *q, float *k, const float *v,
                           int64_t n_tokens, const int32_t *pos, float scale, int64_t window, const clv_qk_prep *prep) {
    const clv_backend *b = backend(ctx);
    if (b->rope_attention) {
        b->rope_attention(ctx, il, out, q, k, v, n_tokens, pos, scale, window, prep);
        return;
    }
    const clv_hparams *hp = &ctx->model->hp;
    int64_t n_head = hp->n_head, n_head_kv = hp->n_head_kv[il], hd = hp->n_embd_head_k;
    if (prep->q_norm) b->rmsnorm(ctx, q, q, prep->q_norm, n_tokens * n_head, hd, prep->eps);
    if (prep->k_norm) b->rmsnorm(ctx, k, k, prep->k_norm, n_tokens * n_head_kv, hd, prep->eps);
    b->rope(ctx, q, n_tokens, n_head, hd, pos, &prep->rope);
    b->rope(ctx, k, n_tokens, n_head_kv, hd, pos, &prep->rope);
    b->attention(ctx, il, out, q, k, v, n_tokens, pos, scale, window);
}

void clv_op_add_rmsnorm(clv_context *ctx, float *x, const float *delta, float *dst, const clv_weight *weight,
                        int64_t n_tokens, int64_t n, float eps) {
    const clv_backend *b = backend(ctx);
    if (b->add_rmsnorm) {
        b->add_rmsnorm(ctx, x, delta, dst, weight, n_tokens, n, eps);
        return;
    }
    b->add(ctx, x, delta, n_tokens, n);
    b->rmsnorm(ctx, dst, x, weight, n_tokens, n, eps);
}

void clv_op_add(clv_context *ctx, float *dst, const float *src, int64_t n_tokens, int64_t n) {
    backend(ctx)->add(ctx, dst, src, n_tokens, n);
}

void clv_op_glu(clv_context *ctx, float *dst, const float *gate, const float *up, int64_t n_tokens, int64_t n,
                clv_ffn_act act) {
    backend(ctx)->glu(ctx, dst, gate, up, n_tokens, n, act);
}

void clv_op_ffn(clv_context *ctx, int64_t il, float *dst, const float *x, const clv_weight *gate,
                const clv_weight *up, const clv_weight *down, int64_t n_tokens, clv_ffn_act act) {
    backend(ctx)->ffn(ctx, il, dst, x, gate, up, down, n_tokens, act);
}

void clv_op_moe(clv_context *ctx, float *dst, const float *x, const clv_layer *l, int64_t n_tokens, clv_ffn_act act,
                bool renormalize) {
    backend(ctx)->moe(ctx, dst, x, l, n_tokens, act, renormalize);
}

void clv_op_sigmoid_gate(clv_context *ctx, float *dst, const float *x, const clv_weight *gate, int64_t n_tokens,
                         int64_t n_dst) {
    backend(ctx)->sigmoid_gate(ctx, dst, x, gate, n_tokens, n_dst);
}

void clv_op_logits(clv_context *ctx, const float *x, int64_t n_tokens, bool all) {
    backend(ctx)->logits(ctx, x, n_tokens, all);
}
