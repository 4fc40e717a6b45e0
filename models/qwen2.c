/* qwen2: dense, q/k/v biases, half-split rotation. */
#include "arch_common.h"

static clv_status qwen2_load(clv_model *m) {
    clv_status st;
    m->hp.rope_type = CLV_ROPE_NEOX;
    if ((st = clv_arch_read_activation(m, CLV_ACT_SILU))) return st;
    return clv_load_prenorm(m, true, CLV_QK_NORM_NONE);
}

static clv_status qwen2_forward(clv_context *ctx, const clv_batch *batch) {
    return clv_forward_prenorm(ctx, batch, CLV_QK_NORM_NONE, false);
}

const clv_arch clv_arch_qwen2 = {"qwen2", qwen2_load, qwen2_forward};
