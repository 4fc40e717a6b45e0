#include "sparsity_setup.h"

#include <stdio.h>
#include <stdlib.h>

#include "neuron_predictor.h"
#include "profile.h"

struct clv_sparsity_setup {
    clv_predictor_set *predictor; /* owned, may be NULL */
    float *threshold;             /* [n_layer] */
    float *keep;                  /* [n_layer] */
    clv_ffn_sparsity view;
    char describe[512];
};

void clv_sparsity_setup_free(clv_sparsity_setup *s) {
    if (!s) return;
    clv_predictor_free(s->predictor);
    free(s->threshold);
    free(s->keep);
    free(s);
}

static clv_status thresholds_from_profile(clv_sparsity_setup *s, const clv_model *m, const char *path,
                                          double sparsity) {
    clv_profile *p = NULL;
    clv_status st = clv_profile_load(path, &p);
    if (st) return st;
    const clv_hparams *hp = &m->hp;
    if (p->n_layer != hp->n_layer || p->n_embd != hp->n_embd) {
        st = clv_fail(CLV_ERR_ARG, "%s: profile of a model with %lld layers of width %lld; this one has %lld of %lld",
                      path, (long long)p->n_layer, (long long)p->n_embd, (long long)hp->n_layer,
                      (long long)hp->n_embd);
        goto done;
    }
    int64_t n_dense = 0;
    for (int64_t il = 0; il < hp->n_layer; il++) {
        if (p->layers[il].n_ff != hp->n_ff[il]) {
            st = clv_fail(CLV_ERR_ARG, "%s: layer %lld has %lld FFN neurons in the profile, %lld in the model", path,
                          (long long)il, (long long)p->layers[il].n_ff, (long long)hp->n_ff[il]);
            goto done;
        }
        if (hp->n_ff[il] == 0) {
            s->threshold[il] = -1.0f;
        } else if (hp->ffn_act == CLV_ACT_RELU) {
            s->threshold[il] = 0.0f;
            n_dense++;
        } else {
            s->threshold[il] = clv_profile_threshold_for(p, il, sparsity);
            if (s->threshold[il] < 0) {
                st = clv_fail(CLV_ERR_ARG, "%s: layer %lld has no activation counts to take a threshold from", path,
                              (long long)il);
                goto done;
            }
            n_dense++;
        }
    }
    if (n_dense == 0) st = clv_fail(CLV_ERR_ARG, "%s: the model has no dense FFN layers to make sparse", path);
done:
    clv_profile_free(p);
    return st;
}

clv_status clv_sparsity_setup_load(const clv_model *m, double sparsity, const char *profile_path,
                                   const char *predictor_path, clv_sparsity_setup **out) {
    *out = NULL;
    if (profile_path && sparsity < 0)
        return clv_fail(CLV_ERR_ARG, "--profile needs --sparsity S (the share of FFN neurons to skip)");
    if (sparsity >= 1.0) return clv_fail(CLV_ERR_ARG, "--sparsity %g: must be in [0, 1)", sparsity);
    if (sparsity < 0 && !predictor_path) return clv_fail(CLV_ERR_ARG, "no sparsity asked for");
    clv_sparsity_setup *s = calloc(1, sizeof *s);
    if (s) s->threshold = malloc(sizeof(float) * (size_t)m->hp.n_layer);
    if (s) s->keep = malloc(sizeof(float) * (size_t)m->hp.n_layer);
    if (!s || !s->threshold || !s->keep) {
        clv_sparsity_setup_free(s);
        return clv_fail(CLV_ERR_NOMEM, "no memory for sparsity settings");
    }
    clv_status st = CLV_OK;
    int n = 0;
    if (predictor_path) {
        if ((st = clv_predictor_load(predictor_path, m, &s->predictor))) goto fail;
        const clv_ffn_sparsity *v = clv_predictor_sparsity(s->predictor);
        for (int64_t il = 0; il < m->hp.n_layer; il++) {
            s->threshold[il] = v->threshold[il];
            s->keep[il] = v->keep ? v->keep[il] : 1.0f;
        }
        if (v->keep) s->view.keep = s->keep;
        s->view.predictor = v->predictor;
        int64_t rank = 0;
        for (int64_t il = 0; il < m->hp.n_layer; il++)
            if (s->predictor->layers[il].rank > rank) rank = s->predictor->layers[il].rank;
        n += snprintf(s->describe + n, sizeof s->describe - (size_t)n,
                      "predictor %s (rank up to %lld, trained for %s at sparsity %.2f)", predictor_path, (long long)rank,
                      s->predictor->top_k ? "per-token top-k" : "thresholds", s->predictor->sparsity);
    }
    if (sparsity >= 0 && !profile_path) {
        /* per-token top-k: every gated dense FFN (or the predictor's layers) keeps 1 - S */
        int64_t n_sparse = 0;
        for (int64_t il = 0; il < m->hp.n_layer; il++) {
            const clv_layer *l = &m->layers[il];
            bool gated = l->ffn_gate && l->ffn_up && l->ffn_down && !l->ffn_gate_inp;
            if (predictor_path) gated = gated && s->threshold[il] >= 0;
            s->threshold[il] = gated ? 0.0f : -1.0f;
            s->keep[il] = (float)(1.0 - sparsity);
            n_sparse += gated;
        }
        if (n_sparse == 0) {
            st = clv_fail(CLV_ERR_ARG, "--sparsity: the model has no dense gated FFN layers to make sparse");
            goto fail;
        }
        s->view.keep = s->keep;
        snprintf(s->describe + n, sizeof s->describe - (size_t)n, "%seach token keeps its %.0f%% largest |h| in %lld layers",
                 n ? ", " : "", 100.0 * (1.0 - sparsity), (long long)n_sparse);
    }
    if (profile_path) {
        if ((st = thresholds_from_profile(s, m, profile_path, sparsity))) goto fail;
        s->view.keep = NULL;
        snprintf(s->describe + n, sizeof s->describe - (size_t)n, "%sthresholds for sparsity %.2f from %s",
                 n ? ", " : "", sparsity, profile_path);
    }
    s->view.threshold = s->threshold;
    *out = s;
    return CLV_OK;
fail:
    clv_sparsity_setup_free(s);
    return st;
}

const clv_ffn_sparsity *clv_sparsity_setup_get(const clv_sparsity_setup *s) { return &s->view; }

const char *clv_sparsity_setup_describe(const clv_sparsity_setup *s) { return s->describe; }
