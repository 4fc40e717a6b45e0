/* llama: Llama 2/3 (incl. rope_freqs), Mistral, SmolLM, ReLU-fied variants
 * (ReluLLaMA, ProSparse), and Mixtral-style MoE when expert_count > 0
 * (softmax router, top-k renormalised). Rotation: adjacent pairs. */
#include "arch_common.h"

static clv_status llama_load(clv_model *m) {
    clv_status st;
    m->hp.rope_type = CLV_ROPE_NORMAL;
    if ((st = clv_arch_read_activation(m, CLV_ACT_SILU))) return st;
    if ((st = clv_load_prenorm(m, false, CLV_QK_NORM_NONE))) return st;
    /* Llama 3 rope factors: one per rotated pair. */
    const int64_t want[1] = {m->hp.n_rot / 2};
    return clv_model_tensor(m, &m->rope_freqs, false, 1, want, "rope_freqs.weight");
}

static clv_status llama_forward(clv_context *ctx, const clv_batch *batch) {
    return clv_forward_prenorm(ctx, batch, CLV_QK_NORM_NONE, true);
}

const clv_arch clv_arch_llama = {"llama", llama_load, llama_forward};
