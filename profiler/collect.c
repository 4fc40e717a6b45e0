/* The calibration run behind `cleave profile` (see collect.h): an FFN
 * observer that counts, chunk by chunk, what the engine computes. */
#include "collect.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "context.h"
#include "fp16.h"
#include "top_k.h"
#include "types.h"

enum { PASS_CALIBRATE, PASS_COUNT };

typedef struct collector {
    clv_profile *p;
    int pass;
    int64_t first_row;  /* rows of the batch before it are not counted (bos) */
    int64_t batch_token; /* counted-token index of the batch's first counted row */
    int64_t n_rows;     /* counted rows in the batch (a calibration chunk may stop early) */
    int64_t stride, max_samples;
    int64_t *filled;    /* [n_layer] samples written per layer */
    bool top_k;
    float *scratch;     /* [max n_ff] for the top-k selection */
    /* the last MoE layer's choices in this batch, for the follower counts */
    int64_t prev_layer;
    int32_t *prev_ids;  /* [n_batch][n_expert_used] */
} collector;

clv_profiler_params clv_profiler_default_params(void) {
    return (clv_profiler_params){
        .sparsity = 0.5, .top_k = true, .n_samples = 4096, .n_ctx = 512, .n_calib_tokens = 4096, .kv_type = CLV_TYPE_F16, .bos = -1};
}

/* The sample slot of counted token g, or -1. */
static int64_t sample_slot(const collector *c, int64_t g) {
    if (c->pass != PASS_COUNT || c->max_samples == 0 || g % c->stride) return -1;
    int64_t s = g / c->stride;
    return s < c->max_samples ? s : -1;
}

static void keep_x(collector *c, int64_t il, int64_t s, const float *x) {
    clv_profile_layer *l = &c->p->layers[il];
    int64_t n_embd = c->p->n_embd;
    uint16_t *dst = l->sample_x + s * n_embd;
    for (int64_t i = 0; i < n_embd; i++) dst[i] = clv_fp32_to_fp16(x[i]);
    if (s + 1 > c->filled[il]) c->filled[il] = s + 1;
}

static void observe_dense(void *user, int64_t il, const float *x, const float *h, int64_t n_tokens, int64_t n_embd,
                          int64_t n_ff) {
    collector *c = user;
    clv_profile_layer *l = &c->p->layers[il];
    CLV_ASSERT(l->n_ff == n_ff && c->p->n_embd == n_embd);
    float thr = l->threshold;
    int64_t *hist = l->act_hist, *active = l->neuron_active;
    for (int64_t r = 0; r < c->n_rows; r++) {
        int64_t t = c->first_row + r;
        CLV_ASSERT(t < n_tokens);
        const float *a = h + t * n_ff;
        for (int64_t i = 0; i < n_ff; i++) hist[clv_profile_hist_bin(a[i])]++;
        if (c->pass != PASS_COUNT) continue;
        int64_t s = sample_slot(c, c->batch_token + r);
        uint8_t *mask = s >= 0 ? l->sample_mask + s * ((n_ff + 7) / 8) : NULL;
        /* top-k: kept = |h| above the k-th largest, then ties in index order */
        int64_t k = c->top_k ? (int64_t)ceil((1.0 - (double)c->p->sparsity) * (double)n_ff - 1e-6) : n_ff;
        if (k < 1) k = 1;
        int64_t ties = 0;
        if (k < n_ff) thr = clv_top_k_abs(a, n_ff, k, c->scratch, &ties);
        for (int64_t i = 0; i < n_ff; i++) {
            float v = fabsf(a[i]);
            if (v > thr || (v == thr && ties > 0 && ties--)) {
                active[i]++;
                if (mask) mask[i >> 3] |= (uint8_t)(1u << (i & 7));
            }
        }
        thr = l->threshold;
        if (s >= 0) keep_x(c, il, s, x + t * n_embd);
    }
}

static void observe_moe(void *user, int64_t il, const float *x, const int32_t *ids, const float *weights,
                        int64_t n_tokens, int64_t n_embd, int64_t n_used) {
    collector *c = user;
    if (c->pass != PASS_COUNT) return;
    clv_profile *p = c->p;
    clv_profile_layer *l = &p->layers[il];
    CLV_ASSERT(l->n_expert > 0 && n_used == p->n_expert_used && p->n_embd == n_embd);
    for (int64_t r = 0; r < c->n_rows; r++) {
        int64_t t = c->first_row + r;
        CLV_ASSERT(t < n_tokens);
        const int32_t *e = ids + t * n_used;
        for (int64_t k = 0; k < n_used; k++) {
            CLV_ASSERT(e[k] >= 0 && e[k] < l->n_expert);
            l->expert_count[e[k]]++;
            l->expert_weight[e[k]] += weights[t * n_used + k];
        }
        /* which experts here followed the ones chosen in the layer before */
        if (c->prev_layer == il - 1 && il > 0 && p->layers[il - 1].expert_next) {
            clv_profile_layer *prev = &p->layers[il - 1];
            const int32_t *pe = c->prev_ids + t * n_used;
            for (int64_t a = 0; a < n_used; a++)
                for (int64_t b = 0; b < n_used; b++) prev->expert_next[pe[a] * prev->n_expert_next + e[b]]++;
        }
        int64_t s = sample_slot(c, c->batch_token + r);
        if (s >= 0) {
            memcpy(l->sample_experts + s * n_used, e, (size_t)n_used * sizeof *e);
            if (!l->n_ff) keep_x(c, il, s, x + t * n_embd); /* a dense FFN of the layer keeps its own */
        }
    }
    memcpy(c->prev_ids, ids, (size_t)(n_tokens * n_used) * sizeof *ids);
    c->prev_layer = il;
}

/* Runs tokens [0, limit) chunk by chunk through ctx; *done counts tokens for
 * the progress callback. */
static clv_status run_pass(clv_context *ctx, collector *c, const int32_t *tokens, int64_t n_tokens, int64_t limit,
                           const clv_profiler_params *pp, int32_t *chunk, int64_t *done, int64_t total) {
    int64_t per = pp->bos >= 0 ? pp->n_ctx - 1 : pp->n_ctx;
    int64_t lead = pp->bos >= 0 ? 1 : 0;
    for (int64_t start = 0; start < limit; start += per) {
        int64_t take = n_tokens - start < per ? n_tokens - start : per;
        if (pp->bos >= 0) chunk[0] = pp->bos;
        memcpy(chunk + lead, tokens + start, (size_t)take * sizeof *chunk);
        c->first_row = lead;
        c->batch_token = start;
        c->n_rows = limit - start < take ? limit - start : take;
        c->prev_layer = -1;
        /* a calibration pass may stop inside a chunk: rows past the limit are
           decoded (causal: earlier rows do not change) but not counted */
        clv_context_truncate(ctx, 0);
        clv_batch b = {.n_tokens = lead + take, .tokens = chunk};
        clv_status st = clv_decode(ctx, &b);
        if (st) return st;
        *done += c->n_rows;
        if (pp->progress) pp->progress(pp->progress_user, c->pass == PASS_CALIBRATE ? "calibrating" : "counting", *done,
                                       total);
    }
    return CLV_OK;
}

static clv_status check_params(const clv_model *m, const int32_t *tokens, int64_t n_tokens,
                               const clv_profiler_params *pp) {
    if (n_tokens < 1) return clv_fail(CLV_ERR_ARG, "profile: no tokens to run");
    if (!(pp->sparsity >= 0 && pp->sparsity < 1))
        return clv_fail(CLV_ERR_ARG, "profile: target sparsity %g is outside [0, 1)", pp->sparsity);
    if (pp->n_samples < 0) return clv_fail(CLV_ERR_ARG, "profile: %lld samples", (long long)pp->n_samples);
    if (pp->n_calib_tokens < 0)
        return clv_fail(CLV_ERR_ARG, "profile: %lld calibration tokens", (long long)pp->n_calib_tokens);
    if (pp->n_ctx < (pp->bos >= 0 ? 2 : 1))
        return clv_fail(CLV_ERR_ARG, "profile: chunks of %lld tokens are too short", (long long)pp->n_ctx);
    if (pp->bos >= m->hp.n_vocab)
        return clv_fail(CLV_ERR_RANGE, "profile: bos token %d is outside the vocabulary of %lld", (int)pp->bos,
                        (long long)m->hp.n_vocab);
    for (int64_t i = 0; i < n_tokens; i++)
        if (tokens[i] < 0 || tokens[i] >= m->hp.n_vocab)
            return clv_fail(CLV_ERR_RANGE, "profile: token %d at %lld is outside the vocabulary of %lld",
                            (int)tokens[i], (long long)i, (long long)m->hp.n_vocab);
    return CLV_OK;
}

/* An empty profile shaped like the model. */
static clv_status profile_for(const clv_model *m, int64_t n_samples, clv_profile **out) {
    const clv_hparams *hp = &m->hp;
    int64_t L = hp->n_layer;
    int64_t *n_ff = calloc((size_t)L, sizeof *n_ff), *n_expert = calloc((size_t)L, sizeof *n_expert);
    clv_status st = n_ff && n_expert ? CLV_OK : clv_fail(CLV_ERR_NOMEM, "out of memory");
    bool any_expert = false;
    for (int64_t il = 0; !st && il < L; il++) {
        const clv_layer *l = &m->layers[il];
        if (l->ffn_gate_inp) {
            n_expert[il] = hp->n_expert;
            any_expert = true;
        } else if (l->ffn_gate && l->ffn_up) {
            n_ff[il] = l->ffn_up->ne[1];
        }
    }
    if (!st) st = clv_profile_create(out, L, hp->n_embd, n_ff, n_expert, any_expert ? hp->n_expert_used : 0, n_samples);
    free(n_ff);
    free(n_expert);
    if (st) return st;
    clv_profile *p = *out;
    snprintf(p->arch, sizeof p->arch, "%s", hp->arch);
    const char *name = NULL;
    if (clv_gguf_get_str(m->gguf, "general.name", &name) == CLV_OK) snprintf(p->model_name, sizeof p->model_name, "%s", name);
    clv_clear_error();
    p->act = (int32_t)hp->ffn_act;
    for (int64_t il = 0; il < L; il++) p->layers[il].threshold = p->layers[il].n_ff > 0 ? 0.0f : -1.0f;
    return CLV_OK;
}

clv_status clv_profile_collect(clv_model *model, const int32_t *tokens, int64_t n_tokens,
                               const clv_profiler_params *params, clv_profile **out) {
    *out = NULL;
    clv_profiler_params pp = params ? *params : clv_profiler_default_params();
    clv_status st = check_params(model, tokens, n_tokens, &pp);
    if (st) return st;
    int64_t n_samples = pp.n_samples < n_tokens ? pp.n_samples : n_tokens;
    clv_profile *p = NULL;
    if ((st = profile_for(model, n_samples, &p))) return st;
    const clv_hparams *hp = &model->hp;
    bool has_dense = false;
    for (int64_t il = 0; il < p->n_layer; il++) has_dense = has_dense || p->layers[il].n_ff > 0;
    bool calibrate = has_dense && hp->ffn_act != CLV_ACT_RELU;
    int64_t n_calib = calibrate ? (pp.n_calib_tokens && pp.n_calib_tokens < n_tokens ? pp.n_calib_tokens : n_tokens) : 0;
    p->sparsity = calibrate ? (float)pp.sparsity : 0.0f;
    p->top_k = calibrate && pp.top_k && pp.sparsity > 0;
    p->n_calib_tokens = n_calib;

    collector c = {.p = p, .prev_layer = -1, .max_samples = n_samples};
    c.stride = n_samples > 0 ? n_tokens / n_samples : 0;
    p->sample_stride = c.stride;
    c.filled = calloc((size_t)p->n_layer, sizeof *c.filled);
    c.top_k = p->top_k;
    int64_t max_ff = 1;
    for (int64_t il = 0; il < p->n_layer; il++) max_ff = p->layers[il].n_ff > max_ff ? p->layers[il].n_ff : max_ff;
    c.scratch = malloc((size_t)max_ff * sizeof *c.scratch);
    c.prev_ids = calloc((size_t)(pp.n_ctx * (hp->n_expert_used > 0 ? hp->n_expert_used : 1)), sizeof *c.prev_ids);
    int32_t *chunk = malloc((size_t)pp.n_ctx * sizeof *chunk);
    if (!c.filled || !c.prev_ids || !chunk || !c.scratch) st = clv_fail(CLV_ERR_NOMEM, "out of memory");

    clv_ffn_observer obs = {.user = &c, .dense = observe_dense, .moe = observe_moe};
    clv_context_params cp = clv_context_default_params();
    cp.n_ctx = pp.n_ctx;
    cp.n_batch = pp.n_ctx;
    cp.n_threads = pp.n_threads;
    cp.kv_type = pp.kv_type;
    cp.f32_activations = pp.f32_activations;
    cp.gpu = pp.gpu;
    cp.gpu_device = pp.gpu_device;
    cp.vram_budget = pp.vram_budget;
    cp.observer = &obs;
    clv_context *ctx = NULL;
    if (!st) st = clv_context_create(model, &cp, &ctx);

    int64_t done = 0, total = n_calib + n_tokens;
    if (!st && calibrate) {
        c.pass = PASS_CALIBRATE;
        st = run_pass(ctx, &c, tokens, n_tokens, n_calib, &pp, chunk, &done, total);
        for (int64_t il = 0; !st && il < p->n_layer; il++) {
            clv_profile_layer *l = &p->layers[il];
            if (l->n_ff == 0) continue;
            l->threshold = clv_profile_threshold_for(p, il, pp.sparsity);
            if (l->threshold < 0) l->threshold = 0; /* cannot happen: the pass counted every neuron */
            memset(l->act_hist, 0, CLV_PROFILE_HIST_BINS * sizeof *l->act_hist);
        }
    }
    if (!st) {
        c.pass = PASS_COUNT;
        st = run_pass(ctx, &c, tokens, n_tokens, n_tokens, &pp, chunk, &done, total);
    }
    if (!st) {
        p->n_tokens = n_tokens;
        for (int64_t il = 0; il < p->n_layer; il++) p->layers[il].n_samples = c.filled[il];
    }
    clv_context_free(ctx);
    free(chunk);
    free(c.filled);
    free(c.prev_ids);
    free(c.scratch);
    if (st) {
        clv_profile_free(p);
        return st;
    }
    *out = p;
    return CLV_OK;
}
