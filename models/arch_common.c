#include "arch_common.h"

#include <stdio.h>
#include <string.h>

clv_status clv_arch_read_activation(clv_model *m, clv_ffn_act def) {
    m->hp.ffn_act = def;
    char key[160];
    snprintf(key, sizeof key, "%s.hidden_activation", m->hp.arch);
    const clv_gguf_kv *kv = clv_gguf_find(m->gguf, key);
    if (!kv) return CLV_OK;
    if (kv->value.type != CLV_GGUF_STRING) {
        return clv_fail(CLV_ERR_FORMAT, "%s: %s must be a string", clv_gguf_path(m->gguf), key);
    }
    const char *s = kv->value.v.str.data;
    if (!strcmp(s, "silu")) m->hp.ffn_act = CLV_ACT_SILU;
    else if (!strcmp(s, "gelu")) m->hp.ffn_act = CLV_ACT_GELU;
    else if (!strcmp(s, "relu")) m->hp.ffn_act = CLV_ACT_RELU;
    else if (!strcmp(s, "gelu_pytorch_tanh")) m->hp.ffn_act = CLV_ACT_GELU;
    else return clv_fail(CLV_ERR_UNSUPPORTED, "%s: %s '%s' is not supported (silu, gelu, relu)", clv_gguf_path(m->gguf), key, s);
    return CLV_OK;
}

clv_status clv_arch_read_swa_pattern(clv_model *m) {
    clv_hparams *hp = &m->hp;
    char key[160];
    snprintf(key, sizeof key, "%s.attention.sliding_window_pattern", hp->arch);
    const clv_gguf_kv *kv = clv_gguf_find(m->gguf, key);
    if (!kv) return CLV_OK;
    const clv_gguf_value *v = &kv->value;
    int64_t period;
    if (clv_gguf_value_to_i64(v, &period) == CLV_OK) {
        if (period < 1) return clv_fail(CLV_ERR_FORMAT, "%s: %s must be positive", clv_gguf_path(m->gguf), key);
        for (int64_t il = 0; il < hp->n_layer; il++) hp->layer_swa[il] = period > 1 && il % period < period - 1;
        return CLV_OK;
    }
    if (v->type == CLV_GGUF_ARRAY && v->v.arr.elem_type == CLV_GGUF_BOOL && v->v.arr.count == (uint64_t)hp->n_layer) {
        const uint8_t *b = v->v.arr.data;
        for (int64_t il = 0; il < hp->n_layer; il++) hp->layer_swa[il] = b[il] != 0;
        return CLV_OK;
    }
    return clv_fail(CLV_ERR_FORMAT, "%s: %s must be a period or one bool per layer", clv_gguf_path(m->gguf), key);
}
