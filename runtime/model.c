/* Model loading: architecture lookup, hyper-parameters, tensor binding with
 * shape checks. Weights stay in the file mapping; nothing is copied. */
#include "model.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "matvec.h"
#include "types.h"

clv_model_params clv_model_default_params(void) {
    return (clv_model_params){.use_mmap = true, .verbose = false};
}

void clv_model_free(clv_model *m) {
    if (!m) return;
    clv_gguf_free(m->gguf);
    free(m->layers);
    free(m->weights);
    free(m);
}

/* --- hyper-parameters ----------------------------------------------------------- */

static void arch_key(const clv_model *m, const char *suffix, char *key, size_t cap) {
    snprintf(key, cap, "%s.%s", m->hp.arch, suffix);
}

clv_status clv_model_u32(clv_model *m, const char *suffix, bool required, int64_t *out) {
    char key[160];
    arch_key(m, suffix, key, sizeof key);
    const clv_gguf_kv *kv = clv_gguf_find(m->gguf, key);
    if (!kv) {
        if (!required) return CLV_OK;
        return clv_fail(CLV_ERR_FORMAT, "%s: required hyper-parameter '%s' is missing", clv_gguf_path(m->gguf), key);
    }
    int64_t v;
    if (clv_gguf_value_to_i64(&kv->value, &v) != CLV_OK || v < 0 || v > INT32_MAX) {
        return clv_fail(CLV_ERR_FORMAT, "%s: hyper-parameter '%s' must be a non-negative integer (type %s)",
                        clv_gguf_path(m->gguf), key, clv_gguf_value_type_name(kv->value.type));
    }
    *out = v;
    return CLV_OK;
}

clv_status clv_model_f32(clv_model *m, const char *suffix, bool required, float *out) {
    char key[160];
    arch_key(m, suffix, key, sizeof key);
    const clv_gguf_kv *kv = clv_gguf_find(m->gguf, key);
    if (!kv) {
        if (!required) return CLV_OK;
        return clv_fail(CLV_ERR_FORMAT, "%s: required hyper-parameter '%s' is missing", clv_gguf_path(m->gguf), key);
    }
    double v;
    int64_t iv;
    if (clv_gguf_value_to_f64(&kv->value, &v) != CLV_OK) {
        if (clv_gguf_value_to_i64(&kv->value, &iv) != CLV_OK) {
            return clv_fail(CLV_ERR_FORMAT, "%s: hyper-parameter '%s' must be a number (type %s)",
                            clv_gguf_path(m->gguf), key, clv_gguf_value_type_name(kv->value.type));
        }
        v = (double)iv;
    }
    if (!isfinite(v)) return clv_fail(CLV_ERR_FORMAT, "%s: hyper-parameter '%s' is not finite", clv_gguf_path(m->gguf), key);
    *out = (float)v;
    return CLV_OK;
}

clv_status clv_model_per_layer(clv_model *m, const char *suffix, bool required, int64_t *out) {
    char key[160];
    arch_key(m, suffix, key, sizeof key);
    const clv_gguf_kv *kv = clv_gguf_find(m->gguf, key);
    if (kv && kv->value.type == CLV_GGUF_ARRAY) {
        const clv_gguf_value *v = &kv->value;
        if (v->v.arr.count != (uint64_t)m->hp.n_layer) {
            return clv_fail(CLV_ERR_FORMAT, "%s: '%s' has %llu entries for %lld layers", clv_gguf_path(m->gguf), key,
                            (unsigned long long)v->v.arr.count, (long long)m->hp.n_layer);
        }
        size_t es = clv_gguf_value_type_size(v->v.arr.elem_type);
        for (int64_t i = 0; i < m->hp.n_layer; i++) {
            clv_gguf_value e = {.type = v->v.arr.elem_type};
            if (es == 0 || es > sizeof e.v) return clv_fail(CLV_ERR_FORMAT, "%s: '%s' is not an integer array", clv_gguf_path(m->gguf), key);
            memcpy(&e.v, (const uint8_t *)v->v.arr.data + (size_t)i * es, es);
            int64_t x;
            if (clv_gguf_value_to_i64(&e, &x) != CLV_OK || x < 0 || x > INT32_MAX) {
                return clv_fail(CLV_ERR_FORMAT, "%s: '%s'[%lld] is not a non-negative integer", clv_gguf_path(m->gguf), key,
                                (long long)i);
            }
            out[i] = x;
        }
        return CLV_OK;
    }
    int64_t scalar = -1;
    clv_status st = clv_model_u32(m, suffix, required, &scalar);
    if (st) return st;
    if (scalar >= 0) {
        for (int64_t i = 0; i < m->hp.n_layer; i++) out[i] = scalar;
    }
    return CLV_OK;
}

clv_status clv_model_common_hparams(clv_model *m) {
    clv_hparams *hp = &m->hp;
    const char *path = clv_gguf_path(m->gguf);
    clv_status st;
    if ((st = clv_model_u32(m, "block_count", true, &hp->n_layer))) return st;
    if (hp->n_layer < 1 || hp->n_layer > CLV_MAX_LAYERS) {
        return clv_fail(CLV_ERR_FORMAT, "%s: block_count %lld is outside 1..%d", path, (long long)hp->n_layer, CLV_MAX_LAYERS);
    }
    if ((st = clv_model_u32(m, "context_length", true, &hp->n_ctx_train))) return st;
    if ((st = clv_model_u32(m, "embedding_length", true, &hp->n_embd))) return st;
    if ((st = clv_model_u32(m, "attention.head_count", true, &hp->n_head))) return st;
    if (hp->n_embd < 1 || hp->n_head < 1) return clv_fail(CLV_ERR_FORMAT, "%s: embedding_length and head_count must be positive", path);
    for (int64_t i = 0; i < hp->n_layer; i++) hp->n_head_kv[i] = hp->n_head;
    if ((st = clv_model_per_layer(m, "attention.head_count_kv", false, hp->n_head_kv))) return st;
    for (int64_t i = 0; i < hp->n_layer; i++) {
        if (hp->n_head_kv[i] < 1 || hp->n_head % hp->n_head_kv[i] != 0 ||
            hp->n_head / hp->n_head_kv[i] > CLV_MAX_GQA_GROUP) {
            return clv_fail(CLV_ERR_FORMAT, "%s: layer %lld: head_count %lld is not a multiple of head_count_kv %lld", path,
                            (long long)i, (long long)hp->n_head, (long long)hp->n_head_kv[i]);
        }
    }
    hp->n_embd_head_k = hp->n_embd / hp->n_head;
    if ((st = clv_model_u32(m, "attention.key_length", false, &hp->n_embd_head_k))) return st;
    hp->n_embd_head_v = hp->n_embd_head_k;
    if ((st = clv_model_u32(m, "attention.value_length", false, &hp->n_embd_head_v))) return st;
    if (hp->n_embd_head_k < 1 || hp->n_embd_head_v < 1 || hp->n_embd_head_k > CLV_MAX_HEAD_DIM ||
        hp->n_embd_head_v > CLV_MAX_HEAD_DIM) {
        return clv_fail(CLV_ERR_FORMAT, "%s: head sizes %lld/%lld are outside 1..%d", path, (long long)hp->n_embd_head_k,
                        (long long)hp->n_embd_head_v, CLV_MAX_HEAD_DIM);
    }
    if ((st = clv_model_per_layer(m, "feed_forward_length", false, hp->n_ff))) return st;
    if ((st = clv_model_f32(m, "attention.layer_norm_rms_epsilon", true, &hp->norm_eps))) return st;
    hp->attn_scale = 1.0f / sqrtf((float)hp->n_embd_head_k);

    hp->rope_freq_base = 10000.0f;
    if ((st = clv_model_f32(m, "rope.freq_base", false, &hp->rope_freq_base))) return st;
    hp->rope_freq_base_swa = hp->rope_freq_base;
    if ((st = clv_model_f32(m, "rope.freq_base_swa", false, &hp->rope_freq_base_swa))) return st;
    hp->n_rot = hp->n_embd_head_k;
    if ((st = clv_model_u32(m, "rope.dimension_count", false, &hp->n_rot))) return st;
    if (hp->n_rot > hp->n_embd_head_k || hp->n_rot % 2) {
        return clv_fail(CLV_ERR_FORMAT, "%s: rope.dimension_count %lld does not fit head size %lld", path,
                        (long long)hp->n_rot, (long long)hp->n_embd_head_k);
    }
    hp->rope_freq_scale = 1.0f;
    char key[160];
    arch_key(m, "rope.scaling.type", key, sizeof key);
    const char *scaling = NULL;
    if (clv_gguf_get_str(m->gguf, key, &scaling) == CLV_OK && strcmp(scaling, "none") != 0) {
        if (strcmp(scaling, "linear") != 0) {
            return clv_fail(CLV_ERR_UNSUPPORTED, "%s: rope scaling '%s' is not supported yet (linear and none are)", path,
                            scaling);
        }
        float factor = 1.0f;
        if ((st = clv_model_f32(m, "rope.scaling.factor", false, &factor))) return st;
        if (factor > 0) hp->rope_freq_scale = 1.0f / factor;
    }
    clv_clear_error();
    hp->rope_freq_scale_swa = 1.0f; /* linear scaling applies to global layers only */

    if ((st = clv_model_u32(m, "attention.sliding_window", false, &hp->sliding_window))) return st;
    if ((st = clv_model_u32(m, "expert_count", false, &hp->n_expert))) return st;
    if ((st = clv_model_u32(m, "expert_used_count", false, &hp->n_expert_used))) return st;
    if ((st = clv_model_u32(m, "expert_feed_forward_length", false, &hp->n_ff_exp))) return st;
    if ((st = clv_model_u32(m, "expert_shared_feed_forward_length", false, &hp->n_ff_shexp))) return st;
    if (hp->n_expert > CLV_MAX_EXPERTS || hp->n_expert_used > hp->n_expert || (hp->n_expert && !hp->n_expert_used)) {
        return clv_fail(CLV_ERR_FORMAT, "%s: %lld experts with %lld used is not a valid MoE", path, (long long)hp->n_expert,
                        (long long)hp->n_expert_used);
    }
    hp->embd_scale = 1.0f;
    return CLV_OK;
}

/* --- tensors -------------------------------------------------------------------- */

static clv_status add_weight(clv_model *m, const clv_gguf_tensor *t, const clv_weight **out) {
    /* Bound once: a second binding of the same tensor returns the first. */
    for (int64_t i = 0; i < m->n_weights; i++) {
        if (m->weights[i].name == t->name) {
            *out = &m->weights[i];
            return CLV_OK;
        }
    }
    CLV_ASSERT(m->n_weights < m->cap_weights); /* sized from the tensor count */
    clv_weight *w = &m->weights[m->n_weights++];
    w->name = t->name;
    w->type = t->type;
    memcpy(w->ne, t->ne, sizeof w->ne);
    w->bytes = t->size;
    clv_type_bytes(t->type, t->ne[0], &w->row_bytes);
    w->data = clv_gguf_tensor_data(m->gguf, t);
    if (!w->data && t->size) {
        return clv_fail(CLV_ERR_UNSUPPORTED, "%s: tensor '%s': the CPU backend needs the file mapped (mmap)",
                        clv_gguf_path(m->gguf), t->name);
    }
    m->weight_bytes += t->size;
    *out = w;
    return CLV_OK;
}

clv_status clv_model_tensor(clv_model *m, const clv_weight **out, bool required, int n_dims, const int64_t *want,
                            const char *fmt, ...) {
    char name[128];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    *out = NULL;
    const clv_gguf_tensor *t = clv_gguf_find_tensor(m->gguf, name);
    if (!t) {
        if (!required) return CLV_OK;
        return clv_fail(CLV_ERR_NOT_FOUND, "%s: tensor '%s' is missing (architecture %s)", clv_gguf_path(m->gguf), name,
                        m->hp.arch);
    }
    bool ok = true;
    for (int d = 0; d < CLV_GGUF_MAX_DIMS; d++) {
        int64_t w = d < n_dims ? want[d] : 1;
        if (w >= 0 && t->ne[d] != w) ok = false;
    }
    if (!ok) {
        char got[96], exp[96];
        snprintf(got, sizeof got, "[%lld, %lld, %lld, %lld]", (long long)t->ne[0], (long long)t->ne[1],
                 (long long)t->ne[2], (long long)t->ne[3]);
        int n = snprintf(exp, sizeof exp, "[");
        for (int d = 0; d < CLV_GGUF_MAX_DIMS; d++) {
            int64_t w = d < n_dims ? want[d] : 1;
            n += snprintf(exp + n, sizeof exp - (size_t)n, w >= 0 ? "%s%lld" : "%s*", d ? ", " : "", (long long)w);
        }
        snprintf(exp + n, sizeof exp - (size_t)n, "]");
        return clv_fail(CLV_ERR_FORMAT, "%s: tensor '%s' has shape %s, expected %s", clv_gguf_path(m->gguf), name, got,
                        exp);
    }
    if (n_dims == 1 && t->type != CLV_TYPE_F32) {
        return clv_fail(CLV_ERR_UNSUPPORTED, "%s: tensor '%s' is %s; cleave expects norms and biases in F32",
                        clv_gguf_path(m->gguf), name, clv_type_name(t->type));
    }
    if (n_dims >= 2 && !clv_cpu_matvec_supports(t->type, t->ne[0])) {
        return clv_fail(CLV_ERR_UNSUPPORTED, "%s: tensor '%s' has type %s, which the CPU kernels do not handle",
                        clv_gguf_path(m->gguf), name, clv_type_name(t->type));
    }
    return add_weight(m, t, out);
}

#define SHAPE(...) ((const int64_t[]){__VA_ARGS__})

clv_status clv_model_bind_io(clv_model *m) {
    clv_hparams *hp = &m->hp;
    clv_status st;
    /* The vocabulary size is the embedding's row count. */
    const clv_gguf_tensor *emb = clv_gguf_find_tensor(m->gguf, "token_embd.weight");
    if (!emb) return clv_fail(CLV_ERR_NOT_FOUND, "%s: tensor 'token_embd.weight' is missing", clv_gguf_path(m->gguf));
    hp->n_vocab = emb->ne[1];
    if ((st = clv_model_tensor(m, &m->token_embd, true, 2, SHAPE(hp->n_embd, hp->n_vocab), "token_embd.weight"))) return st;
    if ((st = clv_model_tensor(m, &m->output_norm, true, 1, SHAPE(hp->n_embd), "output_norm.weight"))) return st;
    if ((st = clv_model_tensor(m, &m->output, false, 2, SHAPE(hp->n_embd, hp->n_vocab), "output.weight"))) return st;
    if (!m->output) m->output = m->token_embd; /* tied */
    return CLV_OK;
}

clv_status clv_model_bind_attention(clv_model *m, int64_t il, bool biases) {
    const clv_hparams *hp = &m->hp;
    clv_layer *l = &m->layers[il];
    int64_t nq = hp->n_head * hp->n_embd_head_k;
    int64_t nk = hp->n_head_kv[il] * hp->n_embd_head_k;
    int64_t nv = hp->n_head_kv[il] * hp->n_embd_head_v;
    int64_t no = hp->n_head * hp->n_embd_head_v;
    clv_status st;
    if ((st = clv_model_tensor(m, &l->wq, true, 2, SHAPE(hp->n_embd, nq), "blk.%lld.attn_q.weight", (long long)il))) return st;
    if ((st = clv_model_tensor(m, &l->wk, true, 2, SHAPE(hp->n_embd, nk), "blk.%lld.attn_k.weight", (long long)il))) return st;
    if ((st = clv_model_tensor(m, &l->wv, true, 2, SHAPE(hp->n_embd, nv), "blk.%lld.attn_v.weight", (long long)il))) return st;
    if ((st = clv_model_tensor(m, &l->wo, true, 2, SHAPE(no, hp->n_embd), "blk.%lld.attn_output.weight", (long long)il))) return st;
    if ((st = clv_model_tensor(m, &l->bq, biases, 1, SHAPE(nq), "blk.%lld.attn_q.bias", (long long)il))) return st;
    if ((st = clv_model_tensor(m, &l->bk, biases, 1, SHAPE(nk), "blk.%lld.attn_k.bias", (long long)il))) return st;
    if ((st = clv_model_tensor(m, &l->bv, biases, 1, SHAPE(nv), "blk.%lld.attn_v.bias", (long long)il))) return st;
    if ((st = clv_model_tensor(m, &l->bo, false, 1, SHAPE(hp->n_embd), "blk.%lld.attn_output.bias", (long long)il))) return st;
    return CLV_OK;
}

clv_status clv_model_bind_ffn(clv_model *m, int64_t il) {
    clv_hparams *hp = &m->hp;
    clv_layer *l = &m->layers[il];
    clv_status st;
    const clv_gguf_tensor *router = NULL;
    char name[96];
    snprintf(name, sizeof name, "blk.%lld.ffn_gate_inp.weight", (long long)il);
    router = clv_gguf_find_tensor(m->gguf, name);
    if (hp->n_expert > 0 && router) {
        int64_t ne = hp->n_expert, ff = hp->n_ff_exp;
        if (ff == 0) { /* older files: the expert width is the tensor's */
            snprintf(name, sizeof name, "blk.%lld.ffn_up_exps.weight", (long long)il);
            const clv_gguf_tensor *t = clv_gguf_find_tensor(m->gguf, name);
            if (t) ff = hp->n_ff_exp = t->ne[1];
        }
        if ((st = clv_model_tensor(m, &l->ffn_gate_inp, true, 2, SHAPE(hp->n_embd, ne), "blk.%lld.ffn_gate_inp.weight", (long long)il))) return st;
        if ((st = clv_model_tensor(m, &l->ffn_gate_exps, true, 3, SHAPE(hp->n_embd, ff, ne), "blk.%lld.ffn_gate_exps.weight", (long long)il))) return st;
        if ((st = clv_model_tensor(m, &l->ffn_up_exps, true, 3, SHAPE(hp->n_embd, ff, ne), "blk.%lld.ffn_up_exps.weight", (long long)il))) return st;
        if ((st = clv_model_tensor(m, &l->ffn_down_exps, true, 3, SHAPE(ff, hp->n_embd, ne), "blk.%lld.ffn_down_exps.weight", (long long)il))) return st;
        hp->n_ff[il] = 0;
        return CLV_OK;
    }
    if (hp->n_ff[il] <= 0) {
        return clv_fail(CLV_ERR_FORMAT, "%s: layer %lld has neither feed_forward_length nor experts", clv_gguf_path(m->gguf),
                        (long long)il);
    }
    int64_t ff = hp->n_ff[il];
    if ((st = clv_model_tensor(m, &l->ffn_gate, true, 2, SHAPE(hp->n_embd, ff), "blk.%lld.ffn_gate.weight", (long long)il))) return st;
    if ((st = clv_model_tensor(m, &l->ffn_up, true, 2, SHAPE(hp->n_embd, ff), "blk.%lld.ffn_up.weight", (long long)il))) return st;
    if ((st = clv_model_tensor(m, &l->ffn_down, true, 2, SHAPE(ff, hp->n_embd), "blk.%lld.ffn_down.weight", (long long)il))) return st;
    return CLV_OK;
}

/* --- load --------------------------------------------------------------------------- */

clv_status clv_model_load(const char *path, const clv_model_params *params, clv_model **out) {
    *out = NULL;
    clv_model_params defaults = clv_model_default_params();
    if (!params) params = &defaults;
    clv_model *m = calloc(1, sizeof *m);
    if (!m) return clv_fail(CLV_ERR_NOMEM, "%s: no memory", path);
    clv_gguf_params gp = clv_gguf_default_params();
    gp.use_mmap = params->use_mmap;
    gp.verbose = params->verbose;
    clv_status st = clv_gguf_open(path, &gp, &m->gguf);
    if (st) {
        free(m);
        return st;
    }
    const char *arch = NULL;
    if (clv_gguf_get_str(m->gguf, "general.architecture", &arch) != CLV_OK) {
        st = clv_fail(CLV_ERR_FORMAT, "%s: general.architecture is missing; this is not a model file", path);
        goto fail;
    }
    m->arch = clv_arch_find(arch);
    if (!m->arch) {
        st = clv_fail(CLV_ERR_UNSUPPORTED, "%s: architecture '%s' is not supported (supported: %s)", path, arch,
                      clv_arch_list());
        goto fail;
    }
    snprintf(m->hp.arch, sizeof m->hp.arch, "%s", arch);
    m->cap_weights = clv_gguf_n_tensors(m->gguf);
    m->weights = calloc((size_t)(m->cap_weights ? m->cap_weights : 1), sizeof *m->weights);
    if (!m->weights) {
        st = clv_fail(CLV_ERR_NOMEM, "%s: no memory", path);
        goto fail;
    }
    if ((st = clv_model_common_hparams(m))) goto fail;
    m->layers = calloc((size_t)m->hp.n_layer, sizeof *m->layers);
    if (!m->layers) {
        st = clv_fail(CLV_ERR_NOMEM, "%s: no memory", path);
        goto fail;
    }
    if ((st = m->arch->load(m))) goto fail;
    *out = m;
    return CLV_OK;
fail:
    clv_model_free(m);
    return st;
}
