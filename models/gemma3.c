/* gemma3: embeddings scaled by sqrt(n_embd); per-head q/k norms; norms after
 * attention and after the FFN as well as before; GELU (tanh) FFN; five
 * sliding-window layers for every global one, each kind with its own rope
 * base. Norm weights in the file already include Gemma's +1. */
#include <math.h>

#include "arch_common.h"

#define SHAPE(...) ((const int64_t[]){__VA_ARGS__})

/* Gemma 3's pattern: every sixth layer is global. */
#define GEMMA3_SWA_PERIOD 6

static clv_status gemma3_load(clv_model *m) {
    clv_hparams *hp = &m->hp;
    clv_status st;
    hp->rope_type = CLV_ROPE_NEOX;
    hp->ffn_act = CLV_ACT_GELU;
    hp->embd_scale = sqrtf((float)hp->n_embd);
    if (!clv_gguf_find(m->gguf, "gemma3.rope.freq_base_swa")) hp->rope_freq_base_swa = 10000.0f;
    for (int64_t il = 0; il < hp->n_layer; il++) {
        hp->layer_swa[il] = hp->sliding_window > 0 && il % GEMMA3_SWA_PERIOD < GEMMA3_SWA_PERIOD - 1;
    }
    if ((st = clv_arch_read_swa_pattern(m))) return st;
    /* query_pre_attn_scalar is written as key_length by converters; the
     * attention scale is its inverse square root. */
    float qscale = 0;
    if ((st = clv_model_f32(m, "attention.query_pre_attn_scalar", false, &qscale))) return st;
    if (qscale > 0) hp->attn_scale = 1.0f / sqrtf(qscale);
    if ((st = clv_load_prenorm(m, false, CLV_QK_NORM_HEAD))) return st;
    for (int64_t il = 0; il < hp->n_layer; il++) {
        clv_layer *l = &m->layers[il];
        if ((st = clv_model_tensor(m, &l->attn_post_norm, true, 1, SHAPE(hp->n_embd), "blk.%lld.post_attention_norm.weight", (long long)il))) return st;
        if ((st = clv_model_tensor(m, &l->ffn_post_norm, true, 1, SHAPE(hp->n_embd), "blk.%lld.post_ffw_norm.weight", (long long)il))) return st;
    }
    return CLV_OK;
}

static clv_status gemma3_forward(clv_context *ctx, const clv_batch *batch) {
    const clv_model *m = ctx->model;
    const clv_hparams *hp = &m->hp;
    clv_scratch *s = &ctx->s;
    int64_t T = batch->n_tokens, n = hp->n_embd;
    clv_op_embed(ctx, s->x, m->token_embd, batch->tokens, T, hp->embd_scale);
    for (int64_t il = 0; il < hp->n_layer; il++) {
        const clv_layer *l = &m->layers[il];
        clv_attn_opts o = clv_attn_opts_for_layer(m, il, CLV_QK_NORM_HEAD);
        /* x += the previous layer's normed FFN output, then this layer's norm */
        if (il == 0) clv_op_rmsnorm(ctx, s->xb, s->x, l->attn_norm, T, n, hp->norm_eps);
        else clv_op_add_rmsnorm(ctx, s->x, s->xb2, s->xb, l->attn_norm, T, n, hp->norm_eps);
        clv_block_attention(ctx, il, s->xb2, s->xb, T, &o);
        clv_op_rmsnorm(ctx, s->xb2, s->xb2, l->attn_post_norm, T, n, hp->norm_eps);
        clv_op_add_rmsnorm(ctx, s->x, s->xb2, s->xb, l->ffn_norm, T, n, hp->norm_eps);
        clv_block_ffn(ctx, il, s->xb2, s->xb, T, hp->ffn_act, false);
        clv_op_rmsnorm(ctx, s->xb2, s->xb2, l->ffn_post_norm, T, n, hp->norm_eps);
    }
    clv_op_add(ctx, s->x, s->xb2, T, n);
    clv_op_logits(ctx, s->x, T, batch->logits_all);
    return CLV_OK;
}

const clv_arch clv_arch_gemma3 = {"gemma3", gemma3_load, gemma3_forward};
