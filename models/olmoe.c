/* olmoe: q and k normed over their full width (not per head); experts' top-k
 * weights not renormalised. */
#include "arch_common.h"

static clv_status olmoe_load(clv_model *m) {
    clv_status st;
    m->hp.rope_type = CLV_ROPE_NEOX;
    if ((st = clv_arch_read_activation(m, CLV_ACT_SILU))) return st;
    if (m->hp.n_expert == 0) return clv_fail(CLV_ERR_FORMAT, "%s: olmoe without expert_count", clv_gguf_path(m->gguf));
    return clv_load_prenorm(m, false, CLV_QK_NORM_FULL);
}

static clv_status olmoe_forward(clv_context *ctx, const clv_batch *batch) {
    return clv_forward_prenorm(ctx, batch, CLV_QK_NORM_FULL, false);
}

const clv_arch clv_arch_olmoe = {"olmoe", olmoe_load, olmoe_forward};
