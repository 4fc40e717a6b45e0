/* qwen3: RMS norm on each q and k head before the rotation; no biases. */
#include "arch_common.h"

static clv_status qwen3_load(clv_model *m) {
    clv_status st;
    m->hp.rope_type = CLV_ROPE_NEOX;
    if ((st = clv_arch_read_activation(m, CLV_ACT_SILU))) return st;
    return clv_load_prenorm(m, false, CLV_QK_NORM_HEAD);
}

static clv_status qwen3_forward(clv_context *ctx, const clv_batch *batch) {
    return clv_forward_prenorm(ctx, batch, CLV_QK_NORM_HEAD, false);
}

const clv_arch clv_arch_qwen3 = {"qwen3", qwen3_load, qwen3_forward};
