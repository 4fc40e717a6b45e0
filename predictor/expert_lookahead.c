/* Expert look-ahead by applying the next layer's router to this layer's
 * FFN input (see expert_lookahead.h). */
#include "expert_lookahead.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "dequantize.h"
#include "fp16.h"
#include "matvec.h"
#include "types.h"

void clv_expert_lookahead_free(clv_expert_lookahead *la) {
    if (!la) return;
    if (la->router) {
        for (int64_t il = 0; il < la->n_layer; il++) free(la->router[il]);
    }
    free(la->router);
    free(la);
}

clv_status clv_expert_lookahead_create(const clv_model *m, clv_expert_lookahead **out) {
    *out = NULL;
    const clv_hparams *hp = &m->hp;
    if (hp->n_expert <= 0 || hp->n_expert_used <= 0) {
        return clv_fail(CLV_ERR_ARG, "the model (%s) has no experts: expert look-ahead is for MoE models", hp->arch);
    }
    clv_expert_lookahead *la = calloc(1, sizeof *la);
    if (!la) return clv_fail(CLV_ERR_NOMEM, "expert look-ahead: out of memory");
    la->n_layer = hp->n_layer, la->n_embd = hp->n_embd;
    la->n_expert = hp->n_expert, la->n_expert_used = hp->n_expert_used;
    la->router = calloc((size_t)hp->n_layer, sizeof *la->router);
    if (!la->router) {
        clv_expert_lookahead_free(la);
        return clv_fail(CLV_ERR_NOMEM, "expert look-ahead: out of memory");
    }
    int64_t n_routers = 0;
    for (int64_t il = 0; il < hp->n_layer; il++) {
        const clv_weight *w = m->layers[il].ffn_gate_inp;
        if (!w) continue;
        if (w->ne[0] != hp->n_embd || w->ne[1] != hp->n_expert) {
            clv_expert_lookahead_free(la);
            return clv_fail(CLV_ERR_FORMAT, "%s is {%lld, %lld}, expected {%lld, %lld}", w->name, (long long)w->ne[0],
                            (long long)w->ne[1], (long long)hp->n_embd, (long long)hp->n_expert);
        }
        float *r = malloc((size_t)(hp->n_expert * hp->n_embd) * sizeof *r);
        if (!r) {
            clv_expert_lookahead_free(la);
            return clv_fail(CLV_ERR_NOMEM, "expert look-ahead: out of memory");
        }
        la->router[il] = r;
        for (int64_t e = 0; e < hp->n_expert; e++) {
            clv_status st = clv_dequantize_row(w->type, (const uint8_t *)w->data + (uint64_t)e * w->row_bytes,
                                               r + e * hp->n_embd, hp->n_embd);
            if (st) {
                clv_error_prefix("%s: ", w->name);
                clv_expert_lookahead_free(la);
                return st;
            }
        }
        n_routers++;
    }
    if (n_routers == 0) {
        clv_expert_lookahead_free(la);
        return clv_fail(CLV_ERR_ARG, "the model (%s) has no router (ffn_gate_inp) in any layer", hp->arch);
    }
    *out = la;
    return CLV_OK;
}

/* Top k of v[n] by selection (k is small), ties to the lower index. */
static void top_k(const float *v, int64_t n, int64_t k, int32_t *ids) {
    for (int64_t j = 0; j < k; j++) {
        int64_t best = -1;
        for (int64_t i = 0; i < n; i++) {
            bool taken = false;
            for (int64_t q = 0; q < j; q++) taken |= ids[q] == i;
            if (!taken && (best < 0 || v[i] > v[best])) best = i;
        }
        ids[j] = (int32_t)best;
    }
}

void clv_expert_lookahead_predict(const clv_expert_lookahead *la, int64_t dst, const float *x, int64_t k,
                                  float *scratch, int32_t *ids) {
    CLV_ASSERT(dst >= 0 && dst < la->n_layer && la->router[dst] && k > 0 && k <= la->n_expert);
    /* The engine's F32 product, so that a layer's own router reproduces its
     * choices bit for bit. */
    clv_cpu_matvec(CLV_TYPE_F32, la->router[dst], (size_t)la->n_embd * sizeof(float), la->n_embd, x, scratch, 0,
                   la->n_expert);
    top_k(scratch, la->n_expert, k, ids);
}

static bool has_expert_samples(const clv_profile *p, int64_t il) {
    const clv_profile_layer *pl = &p->layers[il];
    return pl->n_expert > 0 && pl->n_samples > 0 && pl->sample_experts;
}

clv_status clv_expert_lookahead_eval_pair(const clv_expert_lookahead *la, const clv_profile *p, int64_t src,
                                          int64_t dst, clv_lookahead_result *out) {
    memset(out, 0, sizeof *out);
    if (p->n_layer != la->n_layer || p->n_embd != la->n_embd) {
        return clv_fail(CLV_ERR_ARG, "the profile is of a model with %lld layers and n_embd %lld, this one has %lld "
                                     "and %lld",
                        (long long)p->n_layer, (long long)p->n_embd, (long long)la->n_layer, (long long)la->n_embd);
    }
    if (src < 0 || src >= la->n_layer || dst < 0 || dst >= la->n_layer) {
        return clv_fail(CLV_ERR_ARG, "layers %lld -> %lld: out of range", (long long)src, (long long)dst);
    }
    if (!la->router[dst]) return clv_fail(CLV_ERR_ARG, "layer %lld has no router", (long long)dst);
    const clv_profile_layer *ps = &p->layers[src], *pd = &p->layers[dst];
    if (ps->n_samples <= 0 || !ps->sample_x) {
        return clv_fail(CLV_ERR_ARG, "the profile has no samples of layer %lld's FFN input", (long long)src);
    }
    if (!has_expert_samples(p, dst)) {
        return clv_fail(CLV_ERR_ARG, "the profile has no expert samples for layer %lld", (long long)dst);
    }
    if (ps->n_samples != pd->n_samples || pd->n_expert != la->n_expert || p->n_expert_used != la->n_expert_used) {
        return clv_fail(CLV_ERR_ARG, "layers %lld and %lld: the profile's samples (%lld vs %lld, %lld experts, top "
                                     "%lld) do not match the model (%lld experts, top %lld)",
                        (long long)src, (long long)dst, (long long)ps->n_samples, (long long)pd->n_samples,
                        (long long)pd->n_expert, (long long)p->n_expert_used, (long long)la->n_expert,
                        (long long)la->n_expert_used);
    }
    int64_t d = la->n_embd, E = la->n_expert, k = la->n_expert_used, N = ps->n_samples;
    float *x = malloc((size_t)d * sizeof *x), *logits = malloc((size_t)E * sizeof *logits);
    int32_t *pred = malloc((size_t)k * sizeof *pred), *popular = malloc((size_t)k * sizeof *popular);
    float *counts = malloc((size_t)E * sizeof *counts);
    if (!x || !logits || !pred || !popular || !counts) {
        free(x), free(logits), free(pred), free(popular), free(counts);
        return clv_fail(CLV_ERR_NOMEM, "expert look-ahead: out of memory");
    }
    for (int64_t e = 0; e < E; e++) counts[e] = pd->expert_count ? (float)pd->expert_count[e] : 0.0f;
    top_k(counts, E, k, popular);
    int64_t hits = 0, pop_hits = 0, all = 0, bad = 0;
    for (int64_t b = 0; b < N; b++) {
        for (int64_t i = 0; i < d; i++) x[i] = clv_fp16_to_fp32(ps->sample_x[b * d + i]);
        clv_expert_lookahead_predict(la, dst, x, k, logits, pred);
        const int32_t *actual = pd->sample_experts + b * k;
        int64_t h = 0;
        for (int64_t j = 0; j < k; j++) {
            if (actual[j] < 0 || actual[j] >= E) bad++;
            for (int64_t q = 0; q < k; q++) {
                h += pred[q] == actual[j];
                pop_hits += popular[q] == actual[j];
            }
        }
        hits += h;
        all += h == k;
    }
    free(x), free(logits), free(pred), free(popular), free(counts);
    if (bad) {
        return clv_fail(CLV_ERR_FORMAT, "layer %lld: %lld recorded expert ids are outside [0, %lld)", (long long)dst,
                        (long long)bad, (long long)E);
    }
    *out = (clv_lookahead_result){
        .src = src,
        .dst = dst,
        .n_samples = N,
        .hit_rate = (double)hits / ((double)N * (double)k),
        .all_hit_rate = (double)all / (double)N,
        .popular_rate = (double)pop_hits / ((double)N * (double)k),
        .random_rate = (double)k / (double)E,
    };
    return CLV_OK;
}

clv_status clv_expert_lookahead_eval(const clv_expert_lookahead *la, const clv_profile *p,
                                     clv_lookahead_result *out, int64_t *n_out) {
    *n_out = 0;
    for (int64_t l = 0; l + 1 < la->n_layer && l + 1 < p->n_layer; l++) {
        if (!la->router[l] || !la->router[l + 1] || !has_expert_samples(p, l) || !has_expert_samples(p, l + 1)) {
            continue;
        }
        clv_status st = clv_expert_lookahead_eval_pair(la, p, l, l + 1, &out[*n_out]);
        if (st) return st;
        (*n_out)++;
    }
    if (*n_out == 0) {
        return clv_fail(CLV_ERR_ARG, "no pair of consecutive MoE layers with expert samples in the profile");
    }
    return CLV_OK;
}
