/* The profile: allocation, the |h| histogram and its thresholds, and the
 * GGUF file (keys and tensors are listed in docs/profiler.md). Loading trusts
 * nothing: every tensor's type and shape is checked against the keys before a
 * byte is read, and every value that is later used as an index or a count is
 * range-checked. */
#include "profile.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fp16.h"
#include "gguf_writer.h"
#include "model.h"
#include "types.h"

#define PROFILE_VERSION 1
#define MAX_PROFILE_LAYERS 65536
#define MAX_PROFILE_EMBD (1 << 20)
#define MAX_PROFILE_FF (1 << 24)
#define MAX_PROFILE_EXPERTS 65536
#define MAX_PROFILE_SAMPLES (1 << 24)

/* --- histogram ------------------------------------------------------------------- */

/* Mantissas 2^(j / 16) in [1, 2), rounded to float: the bin edges are these
 * exact values times powers of two, so binning is a comparison, not a log. */
static const float edge_mantissa[CLV_PROFILE_HIST_PER_OCTAVE] = {
    0x1.000000p+0f, 0x1.0b5586p+0f, 0x1.172b84p+0f, 0x1.2387a6p+0f, 0x1.306fe0p+0f, 0x1.3dea64p+0f,
    0x1.4bfdaep+0f, 0x1.5ab07ep+0f, 0x1.6a09e6p+0f, 0x1.7a1148p+0f, 0x1.8ace54p+0f, 0x1.9c4918p+0f,
    0x1.ae89fap+0f, 0x1.c199bep+0f, 0x1.d5818ep+0f, 0x1.ea4afap+0f,
};
_Static_assert(CLV_PROFILE_HIST_PER_OCTAVE == 16, "edge_mantissa has 16 entries");

int clv_profile_hist_bin(float v) {
    uint32_t bits = clv_fp32_bits(v) & 0x7fffffffu;
    if (bits >= 0x7f800000u) return CLV_PROFILE_HIST_BINS - 1; /* inf, NaN */
    int e = (int)(bits >> 23) - 127; /* subnormals fall below the first edge */
    if (e < CLV_PROFILE_HIST_MIN_EXP) return 0;
    int octave = e - CLV_PROFILE_HIST_MIN_EXP;
    if (octave >= (CLV_PROFILE_HIST_BINS - 1) / CLV_PROFILE_HIST_PER_OCTAVE) return CLV_PROFILE_HIST_BINS - 1;
    float m = clv_fp32_from_bits((bits & 0x007fffffu) | 0x3f800000u); /* in [1, 2) */
    int j = CLV_PROFILE_HIST_PER_OCTAVE - 1;
    while (m < edge_mantissa[j]) j--;
    return 1 + octave * CLV_PROFILE_HIST_PER_OCTAVE + j;
}

double clv_profile_hist_edge(int b) {
    CLV_ASSERT(b >= 0 && b <= CLV_PROFILE_HIST_BINS);
    if (b == 0) return 0.0;
    int k = b - 1;
    return ldexp((double)edge_mantissa[k % CLV_PROFILE_HIST_PER_OCTAVE],
                 k / CLV_PROFILE_HIST_PER_OCTAVE + CLV_PROFILE_HIST_MIN_EXP);
}

float clv_profile_threshold_for(const clv_profile *p, int64_t il, double sparsity) {
    if (!p || il < 0 || il >= p->n_layer) return -1.0f;
    const clv_profile_layer *l = &p->layers[il];
    if (l->n_ff == 0 || !l->act_hist) return -1.0f;
    double total = 0;
    for (int b = 0; b < CLV_PROFILE_HIST_BINS; b++) total += (double)l->act_hist[b];
    if (total <= 0) return -1.0f;
    if (sparsity <= 0) return 0.0f;
    double target = sparsity * total, cum = 0;
    for (int b = 0; b < CLV_PROFILE_HIST_BINS; b++) {
        double n = (double)l->act_hist[b];
        if (n <= 0) continue;
        if (cum + n >= target) {
            /* bin 0 holds zeros: everything in it is at or below 0 */
            if (b == 0) return 0.0f;
            double lo = clv_profile_hist_edge(b);
            if (b == CLV_PROFILE_HIST_BINS - 1) return (float)lo;
            double hi = clv_profile_hist_edge(b + 1);
            return (float)(lo + (hi - lo) * ((target - cum) / n));
        }
        cum += n;
    }
    return (float)clv_profile_hist_edge(CLV_PROFILE_HIST_BINS - 1);
}

/* --- allocation -------------------------------------------------------------------- */

static void layer_free(clv_profile_layer *l) {
    free(l->neuron_active);
    free(l->act_hist);
    free(l->expert_count);
    free(l->expert_weight);
    free(l->expert_next);
    free(l->sample_x);
    free(l->sample_mask);
    free(l->sample_experts);
    memset(l, 0, sizeof *l);
}

void clv_profile_free(clv_profile *p) {
    if (!p) return;
    for (int64_t il = 0; p->layers && il < p->n_layer; il++) layer_free(&p->layers[il]);
    free(p->layers);
    free(p);
}

static int64_t mask_bytes(int64_t n_ff) { return (n_ff + 7) / 8; }

/* Zeroed arrays for a layer of these sizes (sizes already checked). */
static clv_status layer_alloc(clv_profile_layer *l, int64_t n_embd, int64_t n_ff, int64_t n_expert,
                              int64_t n_expert_next, int64_t n_expert_used, int64_t n_samples) {
    memset(l, 0, sizeof *l);
    l->n_ff = n_ff;
    l->n_expert = n_expert;
    l->n_expert_next = n_expert_next;
    l->n_samples = n_samples;
    bool ok = true;
    if (n_ff > 0) {
        ok = ok && (l->neuron_active = calloc((size_t)n_ff, sizeof *l->neuron_active));
        ok = ok && (l->act_hist = calloc(CLV_PROFILE_HIST_BINS, sizeof *l->act_hist));
    }
    if (n_expert > 0) {
        ok = ok && (l->expert_count = calloc((size_t)n_expert, sizeof *l->expert_count));
        ok = ok && (l->expert_weight = calloc((size_t)n_expert, sizeof *l->expert_weight));
        if (n_expert_next > 0)
            ok = ok && (l->expert_next = calloc((size_t)(n_expert * n_expert_next), sizeof *l->expert_next));
    }
    if (n_samples > 0) {
        ok = ok && (l->sample_x = calloc((size_t)(n_samples * n_embd), sizeof *l->sample_x));
        if (n_ff > 0) ok = ok && (l->sample_mask = calloc((size_t)(n_samples * mask_bytes(n_ff)), 1));
        if (n_expert > 0)
            ok = ok && (l->sample_experts = calloc((size_t)(n_samples * n_expert_used), sizeof *l->sample_experts));
    }
    if (!ok) {
        layer_free(l);
        return clv_fail(CLV_ERR_NOMEM, "out of memory for a profile layer (%lld neurons, %lld experts, %lld samples)",
                        (long long)n_ff, (long long)n_expert, (long long)n_samples);
    }
    return CLV_OK;
}

static clv_status check_sizes(int64_t n_layer, int64_t n_embd, const int64_t *n_ff, const int64_t *n_expert,
                              int64_t n_expert_used, int64_t n_samples) {
    if (n_layer < 1 || n_layer > MAX_PROFILE_LAYERS)
        return clv_fail(CLV_ERR_ARG, "profile: %lld layers (1..%d)", (long long)n_layer, MAX_PROFILE_LAYERS);
    if (n_embd < 1 || n_embd > MAX_PROFILE_EMBD)
        return clv_fail(CLV_ERR_ARG, "profile: embedding width %lld (1..%d)", (long long)n_embd, MAX_PROFILE_EMBD);
    if (n_samples < 0 || n_samples > MAX_PROFILE_SAMPLES)
        return clv_fail(CLV_ERR_ARG, "profile: %lld samples per layer (0..%d)", (long long)n_samples,
                        MAX_PROFILE_SAMPLES);
    int64_t max_expert = 0;
    for (int64_t il = 0; il < n_layer; il++) {
        int64_t f = n_ff ? n_ff[il] : 0, e = n_expert ? n_expert[il] : 0;
        if (f < 0 || f > MAX_PROFILE_FF)
            return clv_fail(CLV_ERR_ARG, "profile: layer %lld: %lld neurons (0..%d)", (long long)il, (long long)f,
                            MAX_PROFILE_FF);
        if (e < 0 || e > MAX_PROFILE_EXPERTS)
            return clv_fail(CLV_ERR_ARG, "profile: layer %lld: %lld experts (0..%d)", (long long)il, (long long)e,
                            MAX_PROFILE_EXPERTS);
        if (e > max_expert) max_expert = e;
    }
    if (max_expert > 0 && (n_expert_used < 1 || n_expert_used > max_expert))
        return clv_fail(CLV_ERR_ARG, "profile: %lld experts used per token (1..%lld)", (long long)n_expert_used,
                        (long long)max_expert);
    if (max_expert == 0 && n_expert_used != 0)
        return clv_fail(CLV_ERR_ARG, "profile: %lld experts used per token, but no layer has experts",
                        (long long)n_expert_used);
    return CLV_OK;
}

/* A profile with every layer empty (arrays allocated by the caller). */
static clv_status profile_shell(clv_profile **out, int64_t n_layer, int64_t n_embd, int64_t n_expert_used) {
    clv_profile *p = calloc(1, sizeof *p);
    if (p) p->layers = calloc((size_t)n_layer, sizeof *p->layers);
    if (!p || !p->layers) {
        free(p);
        return clv_fail(CLV_ERR_NOMEM, "out of memory for a profile of %lld layers", (long long)n_layer);
    }
    p->n_layer = n_layer;
    p->n_embd = n_embd;
    p->n_expert_used = n_expert_used;
    *out = p;
    return CLV_OK;
}

clv_status clv_profile_create(clv_profile **out, int64_t n_layer, int64_t n_embd, const int64_t *n_ff,
                              const int64_t *n_expert, int64_t n_expert_used, int64_t n_samples) {
    *out = NULL;
    clv_status st = check_sizes(n_layer, n_embd, n_ff, n_expert, n_expert_used, n_samples);
    clv_profile *p = NULL;
    if (!st) st = profile_shell(&p, n_layer, n_embd, n_expert_used);
    for (int64_t il = 0; !st && il < n_layer; il++) {
        int64_t e = n_expert ? n_expert[il] : 0;
        int64_t next = e > 0 && il + 1 < n_layer && n_expert ? n_expert[il + 1] : 0;
        st = layer_alloc(&p->layers[il], n_embd, n_ff ? n_ff[il] : 0, e, next, n_expert_used, n_samples);
    }
    if (st) {
        clv_profile_free(p);
        return st;
    }
    *out = p;
    return CLV_OK;
}

/* --- saving ------------------------------------------------------------------------- */

static const char *act_name(int32_t act) {
    switch (act) {
    case CLV_ACT_SILU: return "silu";
    case CLV_ACT_GELU: return "gelu";
    case CLV_ACT_RELU: return "relu";
    }
    return NULL;
}

static void tensor_name(char *buf, size_t cap, int64_t il, const char *what) {
    snprintf(buf, cap, "blk.%lld.%s", (long long)il, what);
}

/* The tensors of one layer, in file order: name, type, shape, data. */
typedef struct tensor_plan {
    char name[64];
    int32_t type;
    uint32_t n_dims;
    int64_t ne[2];
    const void *data;
    uint64_t bytes;
} tensor_plan;

static int layer_tensors(const clv_profile *p, int64_t il, tensor_plan *t) {
    const clv_profile_layer *l = &p->layers[il];
    int n = 0;
#define ADD(what, ty, nd, e0, e1, ptr, elem)                                                          \
    do {                                                                                              \
        tensor_name(t[n].name, sizeof t[n].name, il, what);                                           \
        t[n].type = ty, t[n].n_dims = nd, t[n].ne[0] = e0, t[n].ne[1] = e1, t[n].data = ptr;         \
        t[n].bytes = (uint64_t)(e0) * (uint64_t)(e1) * (elem);                                        \
        n++;                                                                                          \
    } while (0)
    if (l->n_ff > 0) {
        ADD("neuron_active", CLV_TYPE_I64, 1, l->n_ff, 1, l->neuron_active, 8);
        ADD("act_hist", CLV_TYPE_I64, 1, CLV_PROFILE_HIST_BINS, 1, l->act_hist, 8);
    }
    if (l->n_expert > 0) {
        ADD("expert_count", CLV_TYPE_I64, 1, l->n_expert, 1, l->expert_count, 8);
        ADD("expert_weight", CLV_TYPE_F64, 1, l->n_expert, 1, l->expert_weight, 8);
        if (l->expert_next) ADD("expert_next", CLV_TYPE_I64, 2, l->n_expert_next, l->n_expert, l->expert_next, 8);
    }
    if (l->n_samples > 0) {
        ADD("sample_x", CLV_TYPE_F16, 2, p->n_embd, l->n_samples, l->sample_x, 2);
        if (l->n_ff > 0) ADD("sample_mask", CLV_TYPE_I8, 2, mask_bytes(l->n_ff), l->n_samples, l->sample_mask, 1);
        if (l->n_expert > 0)
            ADD("sample_experts", CLV_TYPE_I32, 2, p->n_expert_used, l->n_samples, l->sample_experts, 4);
    }
#undef ADD
    return n;
}

#define MAX_LAYER_TENSORS 8

clv_status clv_profile_save(const clv_profile *p, const char *path) {
    const char *act = act_name(p->act);
    if (!act) return clv_fail(CLV_ERR_ARG, "%s: profile has an unknown activation %d", path, (int)p->act);
    clv_status st = CLV_OK;
    float *thresholds = malloc((size_t)p->n_layer * sizeof *thresholds);
    if (!thresholds) return clv_fail(CLV_ERR_NOMEM, "out of memory");
    for (int64_t il = 0; il < p->n_layer; il++) thresholds[il] = p->layers[il].threshold;
    clv_gguf_writer *w = NULL;
    clv_gguf_writer_params wp = clv_gguf_writer_default_params();
    st = clv_gguf_writer_open(path, &wp, &w);
#define SET(call)              \
    do {                       \
        if (!st) st = (call);  \
    } while (0)
    SET(clv_gguf_writer_set_str(w, "general.type", "profile"));
    SET(clv_gguf_writer_set_u32(w, "cleave.profile.version", PROFILE_VERSION));
    SET(clv_gguf_writer_set_str(w, "cleave.profile.arch", p->arch));
    SET(clv_gguf_writer_set_str(w, "cleave.profile.model_name", p->model_name));
    SET(clv_gguf_writer_set_str(w, "cleave.profile.corpus", p->corpus));
    SET(clv_gguf_writer_set_str(w, "cleave.profile.activation", act));
    SET(clv_gguf_writer_set_u64(w, "cleave.profile.block_count", (uint64_t)p->n_layer));
    SET(clv_gguf_writer_set_u64(w, "cleave.profile.embedding_length", (uint64_t)p->n_embd));
    SET(clv_gguf_writer_set_u64(w, "cleave.profile.expert_used_count", (uint64_t)p->n_expert_used));
    SET(clv_gguf_writer_set_f32(w, "cleave.profile.sparsity", p->sparsity));
    SET(clv_gguf_writer_set_str(w, "cleave.profile.selection", p->top_k ? "top-k" : "threshold"));
    SET(clv_gguf_writer_set_u64(w, "cleave.profile.n_tokens", (uint64_t)p->n_tokens));
    SET(clv_gguf_writer_set_u64(w, "cleave.profile.n_calib_tokens", (uint64_t)p->n_calib_tokens));
    SET(clv_gguf_writer_set_u64(w, "cleave.profile.sample_stride", (uint64_t)p->sample_stride));
    SET(clv_gguf_writer_set_u32(w, "cleave.profile.hist.per_octave", CLV_PROFILE_HIST_PER_OCTAVE));
    SET(clv_gguf_writer_set_i32(w, "cleave.profile.hist.min_exp", CLV_PROFILE_HIST_MIN_EXP));
    SET(clv_gguf_writer_set_u32(w, "cleave.profile.hist.bins", CLV_PROFILE_HIST_BINS));
    SET(clv_gguf_writer_set_arr(w, "cleave.profile.threshold", CLV_GGUF_F32, thresholds, (uint64_t)p->n_layer));
    tensor_plan t[MAX_LAYER_TENSORS];
    for (int64_t il = 0; il < p->n_layer && !st; il++) {
        int n = layer_tensors(p, il, t);
        for (int i = 0; i < n && !st; i++) st = clv_gguf_writer_add_tensor(w, t[i].name, t[i].type, t[i].n_dims, t[i].ne);
    }
    SET(clv_gguf_writer_begin_data(w));
    for (int64_t il = 0; il < p->n_layer && !st; il++) {
        int n = layer_tensors(p, il, t);
        for (int i = 0; i < n && !st; i++) {
            CLV_ASSERT(t[i].data); /* the sizes say the array exists */
            st = clv_gguf_writer_write(w, t[i].data, t[i].bytes);
        }
    }
#undef SET
    free(thresholds);
    if (st) {
        clv_gguf_writer_free(w);
        return st;
    }
    return clv_gguf_writer_finish(w);
}

/* --- loading ------------------------------------------------------------------------ */

static clv_status get_count(const clv_gguf *g, const char *key, int64_t max, int64_t *out) {
    int64_t v;
    clv_status st = clv_gguf_get_i64(g, key, &v);
    if (st) return st == CLV_ERR_NOT_FOUND ? CLV_ERR_FORMAT : st;
    if (v < 0 || v > max) return clv_fail(CLV_ERR_FORMAT, "key %s = %lld is out of range (0..%lld)", key, (long long)v,
                                          (long long)max);
    *out = v;
    return CLV_OK;
}

static clv_status get_string(const clv_gguf *g, const char *key, char *dst, size_t cap) {
    clv_gguf_str s;
    clv_status st = clv_gguf_get_str_len(g, key, &s);
    if (st) return st == CLV_ERR_NOT_FOUND ? CLV_ERR_FORMAT : st;
    if (s.len >= cap || memchr(s.data, 0, s.len))
        return clv_fail(CLV_ERR_FORMAT, "key %s: a string of %llu bytes (at most %zu, no NUL bytes)", key,
                        (unsigned long long)s.len, cap - 1);
    memcpy(dst, s.data, s.len);
    dst[s.len] = '\0';
    return CLV_OK;
}

/* Layer il's tensor `what`, or NULL. */
static const clv_gguf_tensor *find_tensor(const clv_gguf *g, int64_t il, const char *what) {
    char name[64];
    tensor_name(name, sizeof name, il, what);
    return clv_gguf_find_tensor(g, name);
}

static clv_status expect_shape(const clv_gguf_tensor *t, int32_t type, uint32_t n_dims, int64_t ne0, int64_t ne1) {
    if (t->type != type)
        return clv_fail(CLV_ERR_FORMAT, "tensor %s has type %s, expected %s", t->name, clv_type_name(t->type),
                        clv_type_name(type));
    if (t->n_dims != n_dims || t->ne[0] != ne0 || (n_dims > 1 && t->ne[1] != ne1)) {
        if (n_dims == 1)
            return clv_fail(CLV_ERR_FORMAT, "tensor %s has shape [%lld, %lld], expected [%lld]", t->name,
                            (long long)t->ne[0], (long long)t->ne[1], (long long)ne0);
        return clv_fail(CLV_ERR_FORMAT, "tensor %s has shape [%lld, %lld], expected [%lld, %lld]", t->name,
                        (long long)t->ne[0], (long long)t->ne[1], (long long)ne0, (long long)ne1);
    }
    return CLV_OK;
}

/* A 1-D or 2-D tensor's extent along dim d, checked to lie in [lo, hi]. */
static clv_status tensor_extent(const clv_gguf_tensor *t, int32_t type, uint32_t n_dims, int d, int64_t lo, int64_t hi,
                                int64_t *out) {
    if (t->type != type)
        return clv_fail(CLV_ERR_FORMAT, "tensor %s has type %s, expected %s", t->name, clv_type_name(t->type),
                        clv_type_name(type));
    if (t->n_dims != n_dims)
        return clv_fail(CLV_ERR_FORMAT, "tensor %s has %u dimensions, expected %u", t->name, t->n_dims, n_dims);
    if (t->ne[d] < lo || t->ne[d] > hi)
        return clv_fail(CLV_ERR_FORMAT, "tensor %s: dimension %d is %lld (%lld..%lld)", t->name, d,
                        (long long)t->ne[d], (long long)lo, (long long)hi);
    *out = t->ne[d];
    return CLV_OK;
}

static clv_status read_all(const clv_gguf *g, const clv_gguf_tensor *t, void *dst, uint64_t bytes) {
    if (t->size != bytes)
        return clv_fail(CLV_ERR_FORMAT, "tensor %s holds %llu bytes, expected %llu", t->name,
                        (unsigned long long)t->size, (unsigned long long)bytes);
    clv_status st = clv_gguf_read_tensor(g, t, 0, dst, bytes);
    if (st) clv_error_prefix("tensor %s: ", t->name);
    return st;
}

static clv_status check_counts(const char *name, const int64_t *v, int64_t n, int64_t max) {
    for (int64_t i = 0; i < n; i++)
        if (v[i] < 0 || v[i] > max)
            return clv_fail(CLV_ERR_FORMAT, "tensor %s: entry %lld is %lld (0..%lld)", name, (long long)i,
                            (long long)v[i], (long long)max);
    return CLV_OK;
}

/* Shapes of one layer, from its tensors; checked against each other. */
typedef struct layer_shape {
    const clv_gguf_tensor *active, *hist, *count, *weight, *next, *x, *mask, *experts;
    int64_t n_ff, n_expert, n_samples;
} layer_shape;

static clv_status read_shape(const clv_gguf *g, int64_t il, layer_shape *s) {
    memset(s, 0, sizeof *s);
    s->active = find_tensor(g, il, "neuron_active");
    s->hist = find_tensor(g, il, "act_hist");
    s->count = find_tensor(g, il, "expert_count");
    s->weight = find_tensor(g, il, "expert_weight");
    s->next = find_tensor(g, il, "expert_next");
    s->x = find_tensor(g, il, "sample_x");
    s->mask = find_tensor(g, il, "sample_mask");
    s->experts = find_tensor(g, il, "sample_experts");
    clv_status st = CLV_OK;
    if (s->active) st = tensor_extent(s->active, CLV_TYPE_I64, 1, 0, 1, MAX_PROFILE_FF, &s->n_ff);
    if (!st && s->count) st = tensor_extent(s->count, CLV_TYPE_I64, 1, 0, 1, MAX_PROFILE_EXPERTS, &s->n_expert);
    if (!st && s->x) st = tensor_extent(s->x, CLV_TYPE_F16, 2, 1, 1, MAX_PROFILE_SAMPLES, &s->n_samples);
    if (st) return st;
    if (!s->active && (s->hist || s->mask))
        return clv_fail(CLV_ERR_FORMAT, "layer %lld has %s but no neuron_active tensor", (long long)il,
                        s->hist ? "act_hist" : "sample_mask");
    if (s->active && !s->hist) return clv_fail(CLV_ERR_FORMAT, "layer %lld: tensor blk.%lld.act_hist is missing",
                                               (long long)il, (long long)il);
    if (!s->count && (s->weight || s->next || s->experts))
        return clv_fail(CLV_ERR_FORMAT, "layer %lld has expert tensors but no expert_count", (long long)il);
    if (s->count && !s->weight)
        return clv_fail(CLV_ERR_FORMAT, "layer %lld: tensor blk.%lld.expert_weight is missing", (long long)il,
                        (long long)il);
    if (!s->x && (s->mask || s->experts))
        return clv_fail(CLV_ERR_FORMAT, "layer %lld has sample tensors but no sample_x", (long long)il);
    return CLV_OK;
}

static clv_status load_layer(const clv_gguf *g, clv_profile *p, int64_t il, const layer_shape *s,
                             int64_t n_expert_next) {
    clv_profile_layer *l = &p->layers[il];
    clv_status st = CLV_OK;
    if (s->hist) st = expect_shape(s->hist, CLV_TYPE_I64, 1, CLV_PROFILE_HIST_BINS, 1);
    if (!st && s->weight) st = expect_shape(s->weight, CLV_TYPE_F64, 1, s->n_expert, 1);
    if (!st && s->next) {
        if (n_expert_next == 0)
            return clv_fail(CLV_ERR_FORMAT, "tensor %s: layer %lld has no experts to follow", s->next->name,
                            (long long)il + 1);
        st = expect_shape(s->next, CLV_TYPE_I64, 2, n_expert_next, s->n_expert);
    }
    if (!st && s->x) st = expect_shape(s->x, CLV_TYPE_F16, 2, p->n_embd, s->n_samples);
    if (!st && s->n_samples > 0 && s->n_ff > 0) {
        if (!s->mask) return clv_fail(CLV_ERR_FORMAT, "tensor blk.%lld.sample_mask is missing", (long long)il);
        st = expect_shape(s->mask, CLV_TYPE_I8, 2, mask_bytes(s->n_ff), s->n_samples);
    }
    if (!st && s->n_samples > 0 && s->n_expert > 0) {
        if (!s->experts) return clv_fail(CLV_ERR_FORMAT, "tensor blk.%lld.sample_experts is missing", (long long)il);
        st = expect_shape(s->experts, CLV_TYPE_I32, 2, p->n_expert_used, s->n_samples);
    }
    if (!st && s->n_expert > 0 && p->n_expert_used > s->n_expert)
        st = clv_fail(CLV_ERR_FORMAT, "layer %lld has %lld experts, fewer than the %lld used per token", (long long)il,
                      (long long)s->n_expert, (long long)p->n_expert_used);
    if (!st) st = layer_alloc(l, p->n_embd, s->n_ff, s->n_expert, s->next ? n_expert_next : 0, p->n_expert_used,
                              s->n_samples);
    if (st) return st;
    int64_t T = p->n_tokens;
    if (l->n_ff > 0) {
        st = read_all(g, s->active, l->neuron_active, (uint64_t)l->n_ff * 8);
        if (!st) st = check_counts(s->active->name, l->neuron_active, l->n_ff, T);
        if (!st) st = read_all(g, s->hist, l->act_hist, CLV_PROFILE_HIST_BINS * 8);
        if (!st) st = check_counts(s->hist->name, l->act_hist, CLV_PROFILE_HIST_BINS, INT64_MAX);
    }
    if (!st && l->n_expert > 0) {
        st = read_all(g, s->count, l->expert_count, (uint64_t)l->n_expert * 8);
        if (!st) st = check_counts(s->count->name, l->expert_count, l->n_expert, T);
        if (!st) st = read_all(g, s->weight, l->expert_weight, (uint64_t)l->n_expert * 8);
        for (int64_t e = 0; !st && e < l->n_expert; e++)
            if (!isfinite(l->expert_weight[e]) || l->expert_weight[e] < 0)
                st = clv_fail(CLV_ERR_FORMAT, "tensor %s: entry %lld is %g (finite, >= 0)", s->weight->name,
                              (long long)e, l->expert_weight[e]);
        if (!st && l->expert_next) {
            st = read_all(g, s->next, l->expert_next, (uint64_t)(l->n_expert * l->n_expert_next) * 8);
            if (!st) st = check_counts(s->next->name, l->expert_next, l->n_expert * l->n_expert_next, T);
        }
    }
    if (!st && l->n_samples > 0) {
        st = read_all(g, s->x, l->sample_x, (uint64_t)(l->n_samples * p->n_embd) * 2);
        if (!st && l->sample_mask) st = read_all(g, s->mask, l->sample_mask, (uint64_t)(l->n_samples * mask_bytes(l->n_ff)));
        if (!st && l->sample_experts) {
            int64_t n = l->n_samples * p->n_expert_used;
            st = read_all(g, s->experts, l->sample_experts, (uint64_t)n * 4);
            for (int64_t i = 0; !st && i < n; i++)
                if (l->sample_experts[i] < 0 || l->sample_experts[i] >= l->n_expert)
                    st = clv_fail(CLV_ERR_FORMAT, "tensor %s: entry %lld is expert %d of %lld", s->experts->name,
                                  (long long)i, (int)l->sample_experts[i], (long long)l->n_expert);
        }
    }
    return st;
}

static clv_status load_from(const clv_gguf *g, clv_profile **out) {
    char type[32];
    if (!clv_gguf_find(g, "general.type"))
        return clv_fail(CLV_ERR_FORMAT, "not a cleave profile (no general.type key; a model file?)");
    clv_status st = get_string(g, "general.type", type, sizeof type);
    if (st == CLV_OK && strcmp(type, "profile"))
        return clv_fail(CLV_ERR_FORMAT, "not a cleave profile (general.type is \"%s\")", type);
    if (st) return st;
    uint32_t version;
    if ((st = clv_gguf_get_u32(g, "cleave.profile.version", &version))) return CLV_ERR_FORMAT;
    if (version != PROFILE_VERSION)
        return clv_fail(CLV_ERR_UNSUPPORTED, "profile version %u (this cleave reads version %d)", version,
                        PROFILE_VERSION);
    int64_t per_octave = 0, bins = 0, n_layer = 0, n_embd = 0, n_used = 0;
    int32_t min_exp = 0;
    st = get_count(g, "cleave.profile.hist.per_octave", 1 << 20, &per_octave);
    if (!st) st = get_count(g, "cleave.profile.hist.bins", 1 << 20, &bins);
    if (!st && (st = clv_gguf_get_i32(g, "cleave.profile.hist.min_exp", &min_exp))) st = CLV_ERR_FORMAT;
    if (st) return st;
    if (per_octave != CLV_PROFILE_HIST_PER_OCTAVE || bins != CLV_PROFILE_HIST_BINS || min_exp != CLV_PROFILE_HIST_MIN_EXP)
        return clv_fail(CLV_ERR_UNSUPPORTED, "histogram of %lld bins, %lld per octave from 2^%d (this cleave uses %d, %d, 2^%d)",
                        (long long)bins, (long long)per_octave, (int)min_exp, CLV_PROFILE_HIST_BINS,
                        CLV_PROFILE_HIST_PER_OCTAVE, CLV_PROFILE_HIST_MIN_EXP);
    st = get_count(g, "cleave.profile.block_count", MAX_PROFILE_LAYERS, &n_layer);
    if (!st) st = get_count(g, "cleave.profile.embedding_length", MAX_PROFILE_EMBD, &n_embd);
    if (!st) st = get_count(g, "cleave.profile.expert_used_count", MAX_PROFILE_EXPERTS, &n_used);
    if (st) return st;
    if (n_layer < 1 || n_embd < 1)
        return clv_fail(CLV_ERR_FORMAT, "a profile of %lld layers of width %lld", (long long)n_layer, (long long)n_embd);
    clv_profile *p = NULL;
    if ((st = profile_shell(&p, n_layer, n_embd, n_used))) return st;
    char act[16];
    st = get_string(g, "cleave.profile.arch", p->arch, sizeof p->arch);
    if (!st) st = get_string(g, "cleave.profile.model_name", p->model_name, sizeof p->model_name);
    if (!st) st = get_string(g, "cleave.profile.corpus", p->corpus, sizeof p->corpus);
    if (!st) st = get_string(g, "cleave.profile.activation", act, sizeof act);
    if (!st) {
        if (!strcmp(act, "silu")) p->act = CLV_ACT_SILU;
        else if (!strcmp(act, "gelu")) p->act = CLV_ACT_GELU;
        else if (!strcmp(act, "relu")) p->act = CLV_ACT_RELU;
        else st = clv_fail(CLV_ERR_FORMAT, "key cleave.profile.activation: unknown activation \"%s\"", act);
    }
    if (!st) st = get_count(g, "cleave.profile.n_tokens", INT64_MAX / 2, &p->n_tokens);
    if (!st) st = get_count(g, "cleave.profile.n_calib_tokens", INT64_MAX / 2, &p->n_calib_tokens);
    if (!st) st = get_count(g, "cleave.profile.sample_stride", INT64_MAX / 2, &p->sample_stride);
    if (!st && (st = clv_gguf_get_f32(g, "cleave.profile.sparsity", &p->sparsity))) st = CLV_ERR_FORMAT;
    if (!st && !(p->sparsity >= 0 && p->sparsity < 1))
        st = clv_fail(CLV_ERR_FORMAT, "key cleave.profile.sparsity = %g is out of range [0, 1)", p->sparsity);
    /* absent in files from before per-token top-k: those counted by threshold */
    if (!st && clv_gguf_find(g, "cleave.profile.selection")) {
        char sel[16];
        st = get_string(g, "cleave.profile.selection", sel, sizeof sel);
        if (!st && !strcmp(sel, "top-k")) p->top_k = true;
        else if (!st && strcmp(sel, "threshold"))
            st = clv_fail(CLV_ERR_FORMAT, "key cleave.profile.selection: unknown rule \"%s\"", sel);
    }
    const clv_gguf_value *thr = NULL;
    if (!st && (st = clv_gguf_get_arr(g, "cleave.profile.threshold", CLV_GGUF_F32, &thr))) st = CLV_ERR_FORMAT;
    if (!st && thr->v.arr.count != (uint64_t)n_layer)
        st = clv_fail(CLV_ERR_FORMAT, "key cleave.profile.threshold has %llu entries for %lld layers",
                      (unsigned long long)thr->v.arr.count, (long long)n_layer);
    layer_shape *shapes = st ? NULL : calloc((size_t)n_layer, sizeof *shapes);
    if (!st && !shapes) st = clv_fail(CLV_ERR_NOMEM, "out of memory");
    for (int64_t il = 0; !st && il < n_layer; il++) st = read_shape(g, il, &shapes[il]);
    int64_t max_expert = 0;
    for (int64_t il = 0; !st && il < n_layer; il++)
        if (shapes[il].n_expert > max_expert) max_expert = shapes[il].n_expert;
    if (!st && (max_expert > 0 ? n_used < 1 : n_used != 0))
        st = clv_fail(CLV_ERR_FORMAT, "key cleave.profile.expert_used_count = %lld for layers of at most %lld experts",
                      (long long)n_used, (long long)max_expert);
    if (!st && p->sample_stride == 0)
        for (int64_t il = 0; !st && il < n_layer; il++)
            if (shapes[il].n_samples > 0)
                st = clv_fail(CLV_ERR_FORMAT, "layer %lld has samples but cleave.profile.sample_stride is 0",
                              (long long)il);
    for (int64_t il = 0; !st && il < n_layer; il++) {
        float t = ((const float *)thr->v.arr.data)[il];
        if (!isfinite(t) || t < -1)
            st = clv_fail(CLV_ERR_FORMAT, "key cleave.profile.threshold: layer %lld has %g", (long long)il, t);
        int64_t next = il + 1 < n_layer ? shapes[il + 1].n_expert : 0;
        if (!st) st = load_layer(g, p, il, &shapes[il], next);
        p->layers[il].threshold = t; /* after load_layer, which clears the layer */
    }
    free(shapes);
    if (st) {
        clv_profile_free(p);
        return st;
    }
    *out = p;
    return CLV_OK;
}

clv_status clv_profile_load(const char *path, clv_profile **out) {
    *out = NULL;
    clv_gguf_params gp = clv_gguf_default_params();
    gp.use_mmap = false;
    gp.load_splits = false;
    clv_gguf *g = NULL;
    clv_status st = clv_gguf_open(path, &gp, &g);
    if (st) return st; /* the reader's message names the file */
    st = load_from(g, out);
    if (st) {
        /* every failure past the header is the file's fault */
        if (st == CLV_ERR_TYPE || st == CLV_ERR_RANGE || st == CLV_ERR_NOT_FOUND) st = CLV_ERR_FORMAT;
        /* the reader's messages name the file already; ours do not */
        if (strncmp(clv_last_error(), path, strlen(path))) clv_error_prefix("%s: ", path);
    }
    clv_gguf_free(g);
    return st;
}
