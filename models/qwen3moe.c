/* qwen3moe: qwen3 attention (per-head q/k norms) with experts whose top-k
 * weights are renormalised. */
#include "arch_common.h"

static clv_status qwen3moe_load(clv_model *m) {
    clv_status st;
    m->hp.rope_type = CLV_ROPE_NEOX;
    if ((st = clv_arch_read_activation(m, CLV_ACT_SILU))) return st;
    if (m->hp.n_expert == 0) return clv_fail(CLV_ERR_FORMAT, "%s: qwen3moe without expert_count", clv_gguf_path(m->gguf));
    return clv_load_prenorm(m, false, CLV_QK_NORM_HEAD);
}

static clv_status qwen3moe_forward(clv_context *ctx, const clv_batch *batch) {
    return clv_forward_prenorm(ctx, batch, CLV_QK_NORM_HEAD, true);
}

const clv_arch clv_arch_qwen3moe = {"qwen3moe", qwen3moe_load, qwen3moe_forward};
