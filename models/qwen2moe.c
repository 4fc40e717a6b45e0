/* qwen2moe: qwen2 attention (biases) with experts whose top-k weights are
 * NOT renormalised, plus a shared expert gated by sigmoid(gate . x). */
#include "arch_common.h"

static clv_status qwen2moe_load(clv_model *m) {
    clv_status st;
    m->hp.rope_type = CLV_ROPE_NEOX;
    if ((st = clv_arch_read_activation(m, CLV_ACT_SILU))) return st;
    if (m->hp.n_expert == 0) return clv_fail(CLV_ERR_FORMAT, "%s: qwen2moe without expert_count", clv_gguf_path(m->gguf));
    return clv_load_prenorm(m, true, CLV_QK_NORM_NONE);
}

static clv_status qwen2moe_forward(clv_context *ctx, const clv_batch *batch) {
    return clv_forward_prenorm(ctx, batch, CLV_QK_NORM_NONE, false);
}

const clv_arch clv_arch_qwen2moe = {"qwen2moe", qwen2moe_load, qwen2moe_forward};
