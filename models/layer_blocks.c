#include "layer_blocks.h"

#include "types.h"

#define SHAPE(...) ((const int64_t[]){__VA_ARGS__})

clv_attn_opts clv_attn_opts_for_layer(const clv_model *m, int64_t il, clv_qk_norm qk_norm) {
    const clv_hparams *hp = &m->hp;
    bool swa = hp->layer_swa[il];
    clv_attn_opts o = {
        .qk_norm = qk_norm,
        .rope = {.type = hp->rope_type,
                 .n_rot = hp->n_rot,
                 .freq_base = swa ? hp->rope_freq_base_swa : hp->rope_freq_base,
                 .freq_scale = swa ? hp->rope_freq_scale_swa : hp->rope_freq_scale,
                 .freq_factors = swa ? NULL : m->rope_freqs},
        .window = swa ? hp->sliding_window : 0,
    };
    return o;
}

void clv_block_attention(clv_context *ctx, int64_t il, float *out, const float *in, int64_t n_tokens,
                         const clv_attn_opts *o) {
    const clv_model *m = ctx->model;
    const clv_hparams *hp = &m->hp;
    const clv_layer *l = &m->layers[il];
    clv_scratch *s = &ctx->s;
    int64_t n_head = hp->n_head, n_head_kv = hp->n_head_kv[il];
    int64_t hd_k = hp->n_embd_head_k, hd_v = hp->n_embd_head_v;

    float *const qkv[3] = {s->q, s->k, s->v};
    const clv_weight *const w[3] = {l->wq, l->wk, l->wv}, *const b[3] = {l->bq, l->bk, l->bv};
    clv_op_matmul_multi(ctx, 3, qkv, w, b, in, n_tokens);
    clv_qk_prep prep = {.eps = hp->norm_eps, .rope = o->rope};
    if (o->qk_norm == CLV_QK_NORM_HEAD) {
        prep.q_norm = l->attn_q_norm;
        prep.k_norm = l->attn_k_norm;
    } else if (o->qk_norm == CLV_QK_NORM_FULL) { /* over the whole row: not a per-head step */
        clv_op_rmsnorm(ctx, s->q, s->q, l->attn_q_norm, n_tokens, n_head * hd_k, hp->norm_eps);
        clv_op_rmsnorm(ctx, s->k, s->k, l->attn_k_norm, n_tokens, n_head_kv * hd_k, hp->norm_eps);
    }
    clv_op_rope_attention(ctx, il, s->attn, s->q, s->k, s->v, n_tokens, s->pos, hp->attn_scale, o->window, &prep);
    clv_op_matmul(ctx, out, l->wo, l->bo, s->attn, n_tokens);
    (void)hd_v;
}

void clv_block_ffn(clv_context *ctx, int64_t il, float *out, const float *in, int64_t n_tokens, clv_ffn_act act,
                   bool renormalize_experts) {
    const clv_model *m = ctx->model;
    const clv_layer *l = &m->layers[il];
    if (!l->ffn_gate_inp) {
        clv_op_ffn(ctx, il, out, in, l->ffn_gate, l->ffn_up, l->ffn_down, n_tokens, act);
        return;
    }
    if (!l->ffn_up_shexp) {
        clv_op_moe(ctx, out, in, l, n_tokens, act, renormalize_experts);
        return;
    }
    /* Shared expert first (into out), then the routed experts, computed into
     * the attention buffer (free once attention is done), added on top. */
    float *routed = ctx->s.attn;
    CLV_ASSERT(routed != out && routed != in);
    clv_op_ffn(ctx, -1, out, in, l->ffn_gate_shexp, l->ffn_up_shexp, l->ffn_down_shexp, n_tokens, act);
    if (l->ffn_gate_inp_shexp) clv_op_sigmoid_gate(ctx, out, in, l->ffn_gate_inp_shexp, n_tokens, m->hp.n_embd);
    clv_op_moe(ctx, routed, in, l, n_tokens, act, renormalize_experts);
    clv_op_add(ctx, out, routed, n_tokens, m->hp.n_embd);
}

clv_status clv_forward_prenorm(clv_context *ctx, const clv_batch *batch, clv_qk_norm qk_norm, bool renormalize_experts) {
    const clv_model *m = ctx->model;
    const clv_hparams *hp = &m->hp;
    clv_scratch *s = &ctx->s;
    int64_t T = batch->n_tokens;
    int64_t n = hp->n_embd;
    clv_op_embed(ctx, s->x, m->token_embd, batch->tokens, T, hp->embd_scale);
    for (int64_t il = 0; il < hp->n_layer; il++) {
        const clv_layer *l = &m->layers[il];
        clv_attn_opts o = clv_attn_opts_for_layer(m, il, qk_norm);
        /* x += the previous layer's FFN output, then this layer's norm */
        if (il == 0) clv_op_rmsnorm(ctx, s->xb, s->x, l->attn_norm, T, n, hp->norm_eps);
        else clv_op_add_rmsnorm(ctx, s->x, s->xb2, s->xb, l->attn_norm, T, n, hp->norm_eps);
        clv_block_attention(ctx, il, s->xb2, s->xb, T, &o);
        clv_op_add_rmsnorm(ctx, s->x, s->xb2, s->xb, l->ffn_norm, T, n, hp->norm_eps);
        clv_block_ffn(ctx, il, s->xb2, s->xb, T, hp->ffn_act, renormalize_experts);
    }
    clv_op_add(ctx, s->x, s->xb2, T, n);
    clv_op_logits(ctx, s->x, T, batch->logits_all);
    return CLV_OK;
}

clv_status clv_load_prenorm(clv_model *m, bool attn_biases, clv_qk_norm qk_norm) {
    clv_hparams *hp = &m->hp;
    clv_status st;
    if ((st = clv_model_bind_io(m))) return st;
    for (int64_t il = 0; il < hp->n_layer; il++) {
        clv_layer *l = &m->layers[il];
        int64_t kvw = hp->n_head_kv[il] * hp->n_embd_head_k;
        if ((st = clv_model_tensor(m, &l->attn_norm, true, 1, SHAPE(hp->n_embd), "blk.%lld.attn_norm.weight", (long long)il))) return st;
        if ((st = clv_model_bind_attention(m, il, attn_biases))) return st;
        if (qk_norm == CLV_QK_NORM_HEAD) {
            if ((st = clv_model_tensor(m, &l->attn_q_norm, true, 1, SHAPE(hp->n_embd_head_k), "blk.%lld.attn_q_norm.weight", (long long)il))) return st;
            if ((st = clv_model_tensor(m, &l->attn_k_norm, true, 1, SHAPE(hp->n_embd_head_k), "blk.%lld.attn_k_norm.weight", (long long)il))) return st;
        } else if (qk_norm == CLV_QK_NORM_FULL) {
            if ((st = clv_model_tensor(m, &l->attn_q_norm, true, 1, SHAPE(hp->n_head * hp->n_embd_head_k), "blk.%lld.attn_q_norm.weight", (long long)il))) return st;
            if ((st = clv_model_tensor(m, &l->attn_k_norm, true, 1, SHAPE(kvw), "blk.%lld.attn_k_norm.weight", (long long)il))) return st;
        }
        if ((st = clv_model_tensor(m, &l->ffn_norm, true, 1, SHAPE(hp->n_embd), "blk.%lld.ffn_norm.weight", (long long)il))) return st;
        if ((st = clv_model_bind_ffn(m, il))) return st;
        if (hp->n_ff_shexp > 0 && l->ffn_gate_inp) {
            int64_t ff = hp->n_ff_shexp;
            if ((st = clv_model_tensor(m, &l->ffn_gate_shexp, true, 2, SHAPE(hp->n_embd, ff), "blk.%lld.ffn_gate_shexp.weight", (long long)il))) return st;
            if ((st = clv_model_tensor(m, &l->ffn_up_shexp, true, 2, SHAPE(hp->n_embd, ff), "blk.%lld.ffn_up_shexp.weight", (long long)il))) return st;
            if ((st = clv_model_tensor(m, &l->ffn_down_shexp, true, 2, SHAPE(ff, hp->n_embd), "blk.%lld.ffn_down_shexp.weight", (long long)il))) return st;
            if ((st = clv_model_tensor(m, &l->ffn_gate_inp_shexp, false, 1, SHAPE(hp->n_embd), "blk.%lld.ffn_gate_inp_shexp.weight", (long long)il))) return st;
        }
    }
    return CLV_OK;
}
