/* Building blocks the architecture files compose: the attention block and the
 * feed-forward block with the variations real models use. Each block reads
 * from `in` (already normed) and writes the block's output to `out`. */
#ifndef CLV_MODELS_LAYER_BLOCKS_H
#define CLV_MODELS_LAYER_BLOCKS_H

#include "context.h"
#include "model.h"
#include "ops.h"

typedef enum clv_qk_norm {
    CLV_QK_NORM_NONE = 0,
    CLV_QK_NORM_HEAD, /* RMS norm over each head (qwen3, gemma3) */
    CLV_QK_NORM_FULL, /* RMS norm over the whole q / k row (olmoe) */
} clv_qk_norm;

typedef struct clv_attn_opts {
    clv_qk_norm qk_norm;
    clv_rope_params rope;
    int64_t window; /* 0: full causal attention */
} clv_attn_opts;

/* Rope and window of layer il from the hyper-parameters (sliding-window
 * layers use their own rope base and no linear scaling). */
clv_attn_opts clv_attn_opts_for_layer(const clv_model *m, int64_t il, clv_qk_norm qk_norm);

void clv_block_attention(clv_context *ctx, int64_t il, float *out, const float *in, int64_t n_tokens,
                         const clv_attn_opts *o);

/* Dense FFN, or MoE (+ shared expert gated by sigmoid when present). */
void clv_block_ffn(clv_context *ctx, int64_t il, float *out, const float *in, int64_t n_tokens, clv_ffn_act act,
                   bool renormalize_experts);

/* Shared by the architectures whose decoder is "pre-norm attention, pre-norm
 * FFN" (llama, qwen2, qwen3, the MoE ones): the whole forward pass. */
clv_status clv_forward_prenorm(clv_context *ctx, const clv_batch *batch, clv_qk_norm qk_norm, bool renormalize_experts);

/* Loads what those architectures share: attention (with or without biases),
 * q/k norms when present, FFN or experts, shared experts. */
clv_status clv_load_prenorm(clv_model *m, bool attn_biases, clv_qk_norm qk_norm);

#endif
