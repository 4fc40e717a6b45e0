/* Sampler: each filter against a direct float64 computation (full sorts, no
 * shortcuts) on random vocabularies and parameters, compared exactly on the
 * kept set and closely on the probabilities; greedy and its ties; penalties,
 * bias and bans as defined; seeded reproducibility; the draw against the
 * distribution (chi-square); invalid parameters; NaN and inf logits. */
#include <float.h>
#include <stdint.h>

#include "sampler.h"
#include "test.h"

/* ---- small helpers -------------------------------------------------------- */

static uint64_t rng_state = 0x243f6a8885a308d3ull;
static uint64_t rnd64(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}
static uint32_t rnd(uint32_t n) { return (uint32_t)(rnd64() % n); }
static double rnd_unit(void) { return (double)(rnd64() >> 11) * 0x1.0p-53; }
static double rnd_normal(void) {
    double u = rnd_unit(), v = rnd_unit();
    if (u < 1e-300) u = 1e-300;
    return sqrt(-2.0 * log(u)) * cos(2.0 * M_PI * v);
}

static clv_sampler *make(const clv_sampler_params *p) {
    clv_sampler *s = NULL;
    clv_status st = clv_sampler_create(p, &s);
    CHECK_MSG(st == CLV_OK, "create: %s", clv_last_error());
    return s;
}

/* ---- the reference chain -------------------------------------------------- */

typedef struct rc {
    int id;
    double v;
    double p;
    double key;
} rc;

static int rc_cmp_v(const void *pa, const void *pb) {
    const rc *a = pa, *b = pb;
    if (a->v != b->v) return a->v > b->v ? -1 : 1;
    return a->id < b->id ? -1 : a->id > b->id;
}

static int rc_cmp_key(const void *pa, const void *pb) {
    const rc *a = pa, *b = pb;
    if (a->key != b->key) return a->key < b->key ? -1 : 1;
    return a->id < b->id ? -1 : a->id > b->id;
}

static void rc_softmax(rc *c, int n, double temp) {
    double mx = -INFINITY, z = 0;
    for (int i = 0; i < n; i++)
        if (c[i].v > mx) mx = c[i].v;
    for (int i = 0; i < n; i++) {
        c[i].p = mx == INFINITY ? (c[i].v == INFINITY) : exp((c[i].v - mx) / temp);
        z += c[i].p;
    }
    for (int i = 0; i < n; i++) c[i].p /= z;
}

/* Writes the final distribution into c[0..return); sets *ambiguous when a
 * cut-off lies so close to a boundary that float rounding may decide it. */
static int ref_chain(const clv_sampler_params *prm, const float *logits, const int32_t *hist,
                     int n_hist, rc *c, bool *ambiguous) {
    const int n_vocab = prm->n_vocab;
    *ambiguous = false;
    float *v = malloc(sizeof *v * (size_t)n_vocab);
    int *count = calloc((size_t)n_vocab, sizeof *count);
    memcpy(v, logits, sizeof *v * (size_t)n_vocab);
    /* bias (summed in the order given), bans, then penalties: float, as defined */
    float *bias = calloc((size_t)n_vocab, sizeof *bias);
    for (int i = 0; i < prm->n_logit_bias; i++) bias[prm->logit_bias[i].token] += prm->logit_bias[i].bias;
    if (prm->ignore_eos)
        for (int i = 0; i < prm->n_eog_tokens; i++) bias[prm->eog_tokens[i]] = -INFINITY;
    for (int i = 0; i < n_vocab; i++)
        if (bias[i] != 0.0f) v[i] = v[i] + bias[i];
    bool pen = prm->penalty_last_n > 0 && (prm->repeat_penalty != 1.0f ||
                                           prm->presence_penalty != 0.0f ||
                                           prm->frequency_penalty != 0.0f);
    if (pen) {
        int from = n_hist > prm->penalty_last_n ? n_hist - prm->penalty_last_n : 0;
        for (int i = from; i < n_hist; i++) count[hist[i]]++;
        for (int t = 0; t < n_vocab; t++) {
            if (!count[t]) continue;
            float x = v[t];
            if (prm->repeat_penalty != 1.0f)
                x = x > 0.0f ? x / prm->repeat_penalty : x * prm->repeat_penalty;
            x -= (float)count[t] * prm->frequency_penalty + prm->presence_penalty;
            v[t] = x;
        }
    }
    int n = 0;
    for (int i = 0; i < n_vocab; i++)
        if (v[i] > -INFINITY) c[n++] = (rc){.id = i, .v = v[i]};
    free(v);
    free(count);
    free(bias);
    if (n == 0) return 0;
    int min_keep = prm->min_keep > 1 ? prm->min_keep : 1;

    if (prm->temperature <= 0.0f) {
        qsort(c, (size_t)n, sizeof *c, rc_cmp_v);
        c[0].p = 1.0;
        return 1;
    }
    if (prm->top_k > 0) {
        int k = prm->top_k > min_keep ? prm->top_k : min_keep;
        qsort(c, (size_t)n, sizeof *c, rc_cmp_v);
        if (k < n) n = k;
    }
    if (prm->typical_p < 1.0f) {
        rc_softmax(c, n, 1.0);
        double h = 0;
        for (int i = 0; i < n; i++)
            if (c[i].p > 0) h -= c[i].p * log(c[i].p);
        for (int i = 0; i < n; i++) c[i].key = c[i].p > 0 ? fabs(-log(c[i].p) - h) : INFINITY;
        qsort(c, (size_t)n, sizeof *c, rc_cmp_key);
        double cum = 0;
        int keep = n;
        for (int i = 0; i < n; i++) {
            cum += c[i].p;
            if (cum > prm->typical_p) {
                keep = i + 1;
                if (fabs(cum - prm->typical_p) < 1e-5) *ambiguous = true;
                break;
            }
        }
        if (fabs(cum - prm->typical_p) < 1e-5) *ambiguous = true;
        if (keep < min_keep) keep = min_keep < n ? min_keep : n;
        if (keep < n && fabs(c[keep].key - c[keep - 1].key) < 1e-4) *ambiguous = true;
        n = keep;
    }
    if (prm->top_p < 1.0f) {
        rc_softmax(c, n, 1.0);
        qsort(c, (size_t)n, sizeof *c, rc_cmp_v);
        double cum = 0;
        int keep = n;
        for (int i = 0; i < n; i++) {
            cum += c[i].p;
            if (fabs(cum - prm->top_p) < 1e-5) *ambiguous = true;
            if (cum >= prm->top_p) {
                keep = i + 1;
                break;
            }
        }
        if (keep < min_keep) keep = min_keep < n ? min_keep : n;
        n = keep;
    }
    if (prm->min_p > 0.0f) {
        double mx = -INFINITY;
        for (int i = 0; i < n; i++)
            if (c[i].v > mx) mx = c[i].v;
        double thr = mx + log(prm->min_p);
        qsort(c, (size_t)n, sizeof *c, rc_cmp_v);
        int keep = 0;
        for (int i = 0; i < n; i++) {
            if (c[i].v != mx && fabs(c[i].v - thr) < 1e-4) *ambiguous = true;
            if (c[i].v >= thr) keep = i + 1;
        }
        if (keep < min_keep) keep = min_keep < n ? min_keep : n;
        n = keep;
    }
    rc_softmax(c, n, prm->temperature);
    return n;
}

/* Compares the sampler's distribution with the reference one. */
static bool same_distribution(const int32_t *ids, const float *probs, int n, const rc *c, int nc,
                              int n_vocab, char *why, size_t why_len) {
    if (n != nc) {
        snprintf(why, why_len, "%d candidates, reference %d", n, nc);
        return false;
    }
    if (n == 0) return true;
    double *want = malloc(sizeof *want * (size_t)n_vocab);
    for (int i = 0; i < n_vocab; i++) want[i] = -1;
    for (int i = 0; i < nc; i++) want[c[i].id] = c[i].p;
    bool ok = true;
    double sum = 0;
    for (int i = 0; i < n && ok; i++) {
        sum += probs[i];
        if (ids[i] < 0 || ids[i] >= n_vocab || want[ids[i]] < 0) {
            snprintf(why, why_len, "token %d is not in the reference set", ids[i]);
            ok = false;
        } else if (fabs(probs[i] - want[ids[i]]) > 2e-6 + 1e-4 * want[ids[i]]) {
            snprintf(why, why_len, "token %d: p = %.9g, reference %.9g", ids[i], probs[i],
                     want[ids[i]]);
            ok = false;
        }
        if (ok) want[ids[i]] = -1; /* each once */
    }
    if (ok && fabs(sum - 1.0) > 1e-4) {
        snprintf(why, why_len, "probabilities sum to %.9g", sum);
        ok = false;
    }
    free(want);
    return ok;
}

/* For sets of thousands of tokens, where float and double sums may move a
 * cut by a few tokens of tiny probability: the tokens kept by only one side
 * must weigh less than 1e-4 together, the common ones must agree. */
static bool close_distribution(const int32_t *ids, const float *probs, int n, const rc *c, int nc,
                               int n_vocab, char *why, size_t why_len) {
    double *want = malloc(sizeof *want * (size_t)n_vocab);
    for (int i = 0; i < n_vocab; i++) want[i] = -1;
    for (int i = 0; i < nc; i++) want[c[i].id] = c[i].p;
    double only_mine = 0, only_ref = 0, worst = 0;
    int common = 0;
    for (int i = 0; i < n; i++) {
        double w = want[ids[i]];
        if (w < 0) {
            only_mine += probs[i];
            continue;
        }
        common++;
        double err = fabs(probs[i] - w) / (2e-6 + 1e-3 * w);
        if (err > worst) worst = err;
        want[ids[i]] = -2;
    }
    for (int i = 0; i < nc; i++)
        if (want[c[i].id] >= 0) only_ref += c[i].p;
    free(want);
    snprintf(why, why_len, "%d vs %d candidates, %d common; mass only here %.3g, only in the "
             "reference %.3g; worst error %.3g of tolerance", n, nc, common, only_mine, only_ref,
             worst);
    return only_mine < 1e-4 && only_ref < 1e-4 && worst <= 1.0;
}

/* ---- random chains -------------------------------------------------------- */

static void random_params(clv_sampler_params *p, int n_vocab, clv_logit_bias *bias,
                          int32_t *eog) {
    static const float temps[] = {0.0f, 0.3f, 0.8f, 1.0f, 1.7f};
    static const int ks[] = {0, 1, 3, 40, 1 << 20};
    static const float top_ps[] = {1.0f, 0.95f, 0.7f, 0.3f, 0.0f};
    static const float min_ps[] = {0.0f, 0.05f, 0.2f, 1.0f};
    static const float typs[] = {1.0f, 1.0f, 0.9f, 0.5f, 0.0f};
    static const float rps[] = {1.0f, 1.0f, 1.3f, 0.7f};
    static const float pres[] = {0.0f, 0.0f, 0.5f, -0.4f};
    static const float freqs[] = {0.0f, 0.0f, 0.25f};
    static const int last_ns[] = {0, 3, 64};
    static const int keeps[] = {0, 0, 1, 3};
    static const float biases[] = {-INFINITY, -2.5f, 1.5f, 4.0f, INFINITY};
    *p = clv_sampler_default_params();
    p->n_vocab = n_vocab;
    p->seed = rnd64() >> 1;
    p->temperature = temps[rnd(5)];
    p->top_k = ks[rnd(5)];
    p->top_p = top_ps[rnd(5)];
    p->min_p = min_ps[rnd(4)];
    p->typical_p = typs[rnd(5)];
    p->repeat_penalty = rps[rnd(4)];
    p->presence_penalty = pres[rnd(4)];
    p->frequency_penalty = freqs[rnd(3)];
    p->penalty_last_n = last_ns[rnd(3)];
    p->min_keep = keeps[rnd(4)];
    p->n_logit_bias = (int32_t)rnd(4);
    for (int i = 0; i < p->n_logit_bias; i++) {
        bias[i].token = (int32_t)rnd((uint32_t)n_vocab);
        /* +inf rarely: it takes over the whole distribution */
        bias[i].bias = biases[rnd(40) == 0 ? 4 : rnd(4)];
    }
    p->logit_bias = bias;
    if (rnd(4) == 0) {
        eog[0] = (int32_t)rnd((uint32_t)n_vocab);
        p->eog_tokens = eog;
        p->n_eog_tokens = 1;
        p->ignore_eos = rnd(2);
    }
}

static void random_logits(float *x, int n) {
    static const double scales[] = {0.3, 1.0, 3.0, 8.0};
    double scale = scales[rnd(4)];
    bool quantize = rnd(4) == 0; /* many exact ties */
    for (int i = 0; i < n; i++) {
        double v = rnd_normal() * scale;
        if (quantize) v = floor(v * 2.0) / 2.0;
        x[i] = (float)v;
    }
    if (rnd(6) == 0) {
        int m = 1 + (int)rnd(3);
        for (int j = 0; j < m; j++) {
            /* NaN or -inf; now and then +inf, which takes all the mass */
            static const float specials[] = {NAN, -INFINITY, INFINITY};
            x[rnd((uint32_t)n)] = specials[rnd(20) == 0 ? 2 : rnd(2)];
        }
    }
}

static void test_random_chains(void) {
    static const int vocabs[] = {1, 2, 5, 17, 64, 300, 2000};
    enum { MAX_V = 2000 };
    static float logits[MAX_V], before[MAX_V];
    static rc ref[MAX_V];
    int failures = 0, compared = 0, skipped = 0;
    for (int trial = 0; trial < 4000; trial++) {
        int n_vocab = vocabs[rnd(7)];
        clv_sampler_params prm;
        clv_logit_bias bias[4];
        int32_t eog[1];
        random_params(&prm, n_vocab, bias, eog);
        clv_sampler *s = make(&prm);
        if (!s) return;
        int32_t hist[100];
        int n_hist = (int)rnd(100);
        for (int i = 0; i < n_hist; i++) {
            /* repeats are likely: tokens near the top of a small range */
            hist[i] = (int32_t)rnd((uint32_t)(n_vocab < 20 ? n_vocab : 20));
            CHECK_STATUS(clv_sampler_accept(s, hist[i]), CLV_OK);
        }
        for (int step = 0; step < 3; step++) {
            random_logits(logits, n_vocab);
            memcpy(before, logits, sizeof *logits * (size_t)n_vocab);
            bool ambiguous;
            int nref = ref_chain(&prm, logits, hist, n_hist, ref, &ambiguous);
            const int32_t *ids;
            const float *probs;
            int n = clv_sampler_candidates(s, logits, &ids, &probs);
            char why[256];
            if (memcmp(before, logits, sizeof *logits * (size_t)n_vocab) != 0) {
                CHECK_MSG(0, "the sampler changed the caller's logits");
                failures++;
            }
            if (ambiguous) {
                skipped++;
            } else {
                compared++;
                if (!same_distribution(ids, probs, n, ref, nref, n_vocab, why, sizeof why)) {
                    if (failures++ < 10)
                        CHECK_MSG(0,
                                  "trial %d: V=%d temp=%g k=%d p=%g min_p=%g typ=%g rp=%g pres=%g "
                                  "freq=%g last_n=%d keep=%d bias=%d eog=%d/%d: %s",
                                  trial, n_vocab, prm.temperature, prm.top_k, prm.top_p,
                                  prm.min_p, prm.typical_p, prm.repeat_penalty,
                                  prm.presence_penalty, prm.frequency_penalty,
                                  prm.penalty_last_n, prm.min_keep, prm.n_logit_bias,
                                  prm.n_eog_tokens, prm.ignore_eos, why);
                }
            }
            /* sample: a token of the distribution, or -1 exactly when it is empty */
            int32_t t = clv_sampler_sample(s, logits);
            if (n == 0) {
                CHECK(t == -1);
                CHECK(strstr(clv_last_error(), "NaN or -inf") != NULL);
            } else {
                bool found = false;
                for (int i = 0; i < n; i++) found |= ids[i] == t && probs[i] > 0.0f;
                CHECK_MSG(found, "sampled token %d is not a candidate", t);
                CHECK(!isnan(logits[t]));
            }
        }
        clv_sampler_free(s);
    }
    printf("random chains: %d compared, %d skipped (cut-off within rounding of a boundary)\n",
           compared, skipped);
    CHECK(skipped < compared / 20);
    CHECK_EQ_INT(failures, 0);
}

/* Big vocabulary: the partial selections (heap, mass quickselect, min-p
 * pre-partition) against full sorts. */
static void test_large_vocab(void) {
    enum { V = 262144 };
    float *logits = malloc(sizeof *logits * V);
    rc *ref = malloc(sizeof *ref * V);
    struct {
        int k;
        float top_p, min_p, typ, temp, rp;
    } cases[] = {
        {40, 0.95f, 0.05f, 1.0f, 0.8f, 1.0f},  /* the defaults */
        {40, 0.95f, 0.05f, 1.0f, 0.8f, 1.1f},  /* with a repeat penalty */
        {0, 0.95f, 0.05f, 1.0f, 0.8f, 1.0f},   /* no top-k */
        {0, 0.9f, 0.0f, 1.0f, 1.0f, 1.0f},     /* top-p alone */
        {0, 0.999f, 0.0f, 1.0f, 1.0f, 1.3f},   /* top-p alone, most of the vocabulary */
        {0, 1.0f, 0.0f, 1.0f, 1.0f, 1.0f},     /* the full softmax */
        {0, 1.0f, 0.0f, 0.9f, 0.7f, 1.0f},     /* typical alone */
        {0, 0.8f, 0.02f, 0.95f, 1.0f, 1.2f},   /* typical, then top-p and min-p */
        {5000, 0.95f, 0.0f, 1.0f, 1.0f, 1.0f}, /* a large k */
    };
    int32_t hist[64];
    for (size_t ci = 0; ci < sizeof cases / sizeof *cases; ci++) {
        for (int i = 0; i < V; i++) logits[i] = (float)(rnd_normal() * (ci % 2 ? 2.0 : 4.0));
        for (int i = 0; i < 20; i++) logits[rnd(V)] += 12.0f; /* a few standouts */
        clv_sampler_params prm = clv_sampler_default_params();
        prm.n_vocab = V;
        prm.seed = 7;
        prm.top_k = cases[ci].k;
        prm.top_p = cases[ci].top_p;
        prm.min_p = cases[ci].min_p;
        prm.typical_p = cases[ci].typ;
        prm.temperature = cases[ci].temp;
        prm.repeat_penalty = cases[ci].rp;
        clv_sampler *s = make(&prm);
        if (!s) break;
        /* history: the current top tokens, so the penalty changes the top-k */
        int n_hist = 0;
        for (int i = 0; i < V && n_hist < 64; i++)
            if (logits[i] > 9.0f) hist[n_hist++] = i;
        for (int i = 0; i < n_hist; i++) clv_sampler_accept(s, hist[i]);
        bool ambiguous;
        int nref = ref_chain(&prm, logits, hist, n_hist, ref, &ambiguous);
        const int32_t *ids;
        const float *probs;
        int n = clv_sampler_candidates(s, logits, &ids, &probs);
        char why[256];
        bool same = same_distribution(ids, probs, n, ref, nref, V, why, sizeof why);
        if (!same && ambiguous) {
            same = close_distribution(ids, probs, n, ref, nref, V, why, sizeof why);
            printf("262144 vocabulary, case %zu: cut within rounding: %s\n", ci, why);
        }
        CHECK_MSG(same, "case %zu: %s", ci, why);
        printf("262144 vocabulary, case %zu: %d candidates (reference %d)%s\n", ci, n, nref,
               same ? "" : " DIFFERENT");
        clv_sampler_free(s);
    }
    free(logits);
    free(ref);
}

/* ---- specific behaviours -------------------------------------------------- */

static void test_greedy(void) {
    float x[] = {0.5f, 2.0f, -1.0f, 2.0f, 1.9f};
    clv_sampler_params p = clv_sampler_default_params();
    p.n_vocab = 5;
    p.temperature = 0.0f;
    clv_sampler *s = make(&p);
    if (!s) return;
    CHECK_EQ_INT(clv_sampler_sample(s, x), 1); /* tie between 1 and 3: the lowest id */
    const int32_t *ids;
    const float *probs;
    CHECK_EQ_INT(clv_sampler_candidates(s, x, &ids, &probs), 1);
    CHECK(ids[0] == 1 && probs[0] == 1.0f);
    x[1] = NAN; /* a NaN is never chosen */
    CHECK_EQ_INT(clv_sampler_sample(s, x), 3);
    x[0] = INFINITY;
    CHECK_EQ_INT(clv_sampler_sample(s, x), 0);
    clv_sampler_free(s);

    /* temperature < 0 is greedy too; top-k = 1 picks the argmax at any temperature */
    for (int mode = 0; mode < 2; mode++) {
        clv_sampler_params q = clv_sampler_default_params();
        q.n_vocab = 1000;
        q.seed = 3;
        if (mode == 0)
            q.temperature = -1.0f;
        else {
            q.top_k = 1;
            q.temperature = 1.5f;
        }
        clv_sampler *g = make(&q);
        if (!g) return;
        static float y[1000];
        int bad = 0;
        for (int trial = 0; trial < 200; trial++) {
            for (int i = 0; i < 1000; i++) y[i] = (float)rnd_normal();
            if (trial % 3 == 0) y[rnd(1000)] = y[rnd(1000)] = 5.0f; /* ties */
            int best = 0;
            for (int i = 1; i < 1000; i++)
                if (y[i] > y[best]) best = i;
            bad += clv_sampler_sample(g, y) != best;
        }
        CHECK_MSG(bad == 0, "mode %d: %d of 200 not the argmax", mode, bad);
        clv_sampler_free(g);
    }
}

/* Filters off, temperature 1: the probabilities are softmax(changed logits). */
static void expect_softmax(clv_sampler *s, const float *x, const double *want_logits, int n,
                           const char *what) {
    double mx = -INFINITY, z = 0, want[16];
    for (int i = 0; i < n; i++)
        if (want_logits[i] > mx) mx = want_logits[i];
    for (int i = 0; i < n; i++) z += want[i] = want_logits[i] == -INFINITY ? 0 : exp(want_logits[i] - mx);
    const int32_t *ids;
    const float *probs;
    int m = clv_sampler_candidates(s, x, &ids, &probs);
    int expect_m = 0;
    for (int i = 0; i < n; i++) expect_m += want[i] > 0;
    CHECK_MSG(m == expect_m, "%s: %d candidates, want %d", what, m, expect_m);
    for (int i = 0; i < m; i++) {
        double w = want[ids[i]] / z;
        CHECK_MSG(fabs(probs[i] - w) < 1e-6, "%s: token %d: p = %g, want %g", what, ids[i],
                  probs[i], w);
    }
}

static clv_sampler_params plain_params(int n_vocab) {
    clv_sampler_params p = clv_sampler_default_params();
    p.n_vocab = n_vocab;
    p.seed = 11;
    p.temperature = 1.0f;
    p.top_k = 0;
    p.top_p = 1.0f;
    p.min_p = 0.0f;
    return p;
}

static void test_penalties(void) {
    const float x[8] = {1.0f, -1.0f, 2.0f, 0.5f, -0.5f, 3.0f, 0.0f, 1.5f};
    clv_sampler_params p = plain_params(8);
    p.repeat_penalty = 2.0f;
    p.penalty_last_n = 3;
    clv_sampler *s = make(&p);
    if (!s) return;
    int32_t seq[] = {2, 2, 5, 1, 1, 4};
    for (int i = 0; i < 6; i++) clv_sampler_accept(s, seq[i]);
    /* window: 1, 1, 4: positive logits divided, negative multiplied */
    double w[8] = {1.0, -2.0, 2.0, 0.5, -1.0, 3.0, 0.0, 1.5};
    expect_softmax(s, x, w, 8, "repetition");
    clv_sampler_accept(s, 5); /* window: 1, 4, 5 */
    double w2[8] = {1.0, -2.0, 2.0, 0.5, -1.0, 1.5, 0.0, 1.5};
    expect_softmax(s, x, w2, 8, "repetition, window moved");
    clv_sampler_reset(s);
    double w0[8] = {1.0, -1.0, 2.0, 0.5, -0.5, 3.0, 0.0, 1.5};
    expect_softmax(s, x, w0, 8, "after reset");
    CHECK_STATUS(clv_sampler_accept(s, 8), CLV_ERR_ARG);
    CHECK_STATUS(clv_sampler_accept(s, -1), CLV_ERR_ARG);
    clv_sampler_free(s);

    p = plain_params(8);
    p.presence_penalty = 0.5f;
    p.frequency_penalty = 0.25f;
    p.penalty_last_n = 64;
    s = make(&p);
    if (!s) return;
    int32_t seq2[] = {7, 7, 7, 0, 3};
    for (int i = 0; i < 5; i++) clv_sampler_accept(s, seq2[i]);
    double w3[8] = {1.0 - 0.75, -1.0, 2.0, 0.5 - 0.75, -0.5, 3.0, 0.0, 1.5 - 0.5 - 0.75};
    expect_softmax(s, x, w3, 8, "presence and frequency");
    clv_sampler_free(s);

    /* penalties off when last_n = 0 */
    p.penalty_last_n = 0;
    s = make(&p);
    if (!s) return;
    for (int i = 0; i < 5; i++) clv_sampler_accept(s, seq2[i]);
    expect_softmax(s, x, w0, 8, "penalty_last_n = 0");
    clv_sampler_free(s);

    /* greedy follows the penalty: the argmax drops below the next one */
    p = plain_params(8);
    p.temperature = 0.0f;
    p.repeat_penalty = 1.5f;
    s = make(&p);
    if (!s) return;
    CHECK_EQ_INT(clv_sampler_sample(s, x), 5);
    clv_sampler_accept(s, 5); /* 3.0 / 1.5 = 2.0 ties token 2: the lower id wins */
    CHECK_EQ_INT(clv_sampler_sample(s, x), 2);
    clv_sampler_free(s);
}

static void test_bias(void) {
    const float x[6] = {0.0f, 1.0f, 2.0f, 3.0f, -1.0f, 0.5f};
    clv_logit_bias b[] = {{4, 10.0f}, {3, -INFINITY}, {0, 1.0f}, {0, 0.5f}};
    clv_sampler_params p = plain_params(6);
    p.logit_bias = b;
    p.n_logit_bias = 4;
    clv_sampler *s = make(&p);
    if (!s) return;
    double w[6] = {1.5, 1.0, 2.0, -INFINITY, 9.0, 0.5};
    expect_softmax(s, x, w, 6, "bias");
    int hits = 0;
    for (int i = 0; i < 2000; i++) {
        int32_t t = clv_sampler_sample(s, x);
        CHECK(t != 3);
        hits += t == 4;
    }
    CHECK(hits > 1900);
    clv_sampler_free(s);

    /* greedy with a ban: the next best */
    p.temperature = 0.0f;
    p.n_logit_bias = 0;
    clv_logit_bias ban = {3, -INFINITY};
    p.logit_bias = &ban;
    p.n_logit_bias = 1;
    s = make(&p);
    if (!s) return;
    CHECK_EQ_INT(clv_sampler_sample(s, x), 2);
    clv_sampler_free(s);

    /* everything banned: -1 and a message */
    clv_logit_bias all[6];
    for (int i = 0; i < 6; i++) all[i] = (clv_logit_bias){i, -INFINITY};
    p = plain_params(6);
    p.logit_bias = all;
    p.n_logit_bias = 6;
    s = make(&p);
    if (!s) return;
    CHECK_EQ_INT(clv_sampler_sample(s, x), -1);
    CHECK(strstr(clv_last_error(), "NaN or -inf") != NULL);
    clv_sampler_free(s);

    /* EOG tokens: reported; banned with ignore_eos */
    int32_t eog[] = {3, 5};
    p = plain_params(6);
    p.temperature = 0.0f;
    p.eog_tokens = eog;
    p.n_eog_tokens = 2;
    s = make(&p);
    if (!s) return;
    CHECK(clv_sampler_is_eog(s, 3) && clv_sampler_is_eog(s, 5) && !clv_sampler_is_eog(s, 2));
    CHECK_EQ_INT(clv_sampler_sample(s, x), 3);
    clv_sampler_free(s);
    p.ignore_eos = true;
    s = make(&p);
    if (!s) return;
    CHECK_EQ_INT(clv_sampler_sample(s, x), 2);
    CHECK(clv_sampler_is_eog(s, 3));
    clv_sampler_free(s);
}

static void test_nonfinite(void) {
    float x[6] = {NAN, 1.0f, NAN, 0.5f, -INFINITY, 0.0f};
    clv_sampler_params p = plain_params(6);
    clv_sampler *s = make(&p);
    if (!s) return;
    for (int i = 0; i < 5000; i++) {
        int32_t t = clv_sampler_sample(s, x);
        CHECK(t == 1 || t == 3 || t == 5);
    }
    /* +inf: only those, evenly */
    float y[6] = {1.0f, INFINITY, NAN, INFINITY, 5.0f, -INFINITY};
    int c1 = 0, c3 = 0;
    for (int i = 0; i < 20000; i++) {
        int32_t t = clv_sampler_sample(s, y);
        CHECK(t == 1 || t == 3);
        c1 += t == 1;
        c3 += t == 3;
    }
    CHECK(abs(c1 - c3) < 800);
    float z[6] = {NAN, NAN, NAN, NAN, NAN, NAN};
    CHECK_EQ_INT(clv_sampler_sample(s, z), -1);
    clv_sampler_free(s);

    /* the default chain too */
    p = clv_sampler_default_params();
    p.n_vocab = 6;
    s = make(&p);
    if (!s) return;
    for (int i = 0; i < 2000; i++) {
        int32_t t = clv_sampler_sample(s, y);
        CHECK(t == 1 || t == 3);
        t = clv_sampler_sample(s, x);
        CHECK(t == 1 || t == 3 || t == 5);
    }
    CHECK_EQ_INT(clv_sampler_sample(s, z), -1);
    clv_sampler_free(s);
}

static void test_invalid(void) {
    clv_sampler *s = (clv_sampler *)1;
    clv_sampler_params p;
#define EXPECT_ARG(stmt, word)                                                     \
    do {                                                                           \
        p = clv_sampler_default_params();                                          \
        p.n_vocab = 100;                                                           \
        stmt;                                                                      \
        s = (clv_sampler *)1;                                                      \
        CHECK_STATUS(clv_sampler_create(&p, &s), CLV_ERR_ARG);                     \
        CHECK(s == NULL);                                                          \
        CHECK_MSG(strstr(clv_last_error(), word) != NULL, "message: %s", clv_last_error()); \
    } while (0)
    EXPECT_ARG(p.n_vocab = 0, "n_vocab");
    EXPECT_ARG(p.n_vocab = -5, "n_vocab");
    EXPECT_ARG(p.temperature = NAN, "temperature");
    EXPECT_ARG(p.temperature = INFINITY, "temperature");
    EXPECT_ARG(p.top_p = -0.1f, "top_p");
    EXPECT_ARG(p.top_p = 1.5f, "top_p");
    EXPECT_ARG(p.top_p = NAN, "top_p");
    EXPECT_ARG(p.min_p = -1.0f, "min_p");
    EXPECT_ARG(p.typical_p = NAN, "typical_p");
    EXPECT_ARG(p.repeat_penalty = 0.0f, "repeat_penalty");
    EXPECT_ARG(p.repeat_penalty = NAN, "repeat_penalty");
    EXPECT_ARG(p.presence_penalty = NAN, "presence_penalty");
    EXPECT_ARG(p.frequency_penalty = INFINITY, "frequency_penalty");
    EXPECT_ARG(p.penalty_last_n = -1, "penalty_last_n");
    EXPECT_ARG(p.min_keep = -1, "min_keep");
    clv_logit_bias out_of_range = {100, 1.0f}, negative = {-1, 1.0f}, nan_bias = {5, NAN};
    EXPECT_ARG((p.logit_bias = &out_of_range, p.n_logit_bias = 1), "outside the vocabulary");
    EXPECT_ARG((p.logit_bias = &negative, p.n_logit_bias = 1), "outside the vocabulary");
    EXPECT_ARG((p.logit_bias = &nan_bias, p.n_logit_bias = 1), "NaN");
    EXPECT_ARG((p.logit_bias = NULL, p.n_logit_bias = 2), "logit bias");
    int32_t bad_eog = 100;
    EXPECT_ARG((p.eog_tokens = &bad_eog, p.n_eog_tokens = 1), "end-of-generation");
#undef EXPECT_ARG
    CHECK_STATUS(clv_sampler_create(NULL, &s), CLV_ERR_ARG);
    clv_sampler_free(NULL);

    /* the edges are fine */
    p = clv_sampler_default_params();
    p.n_vocab = 1;
    p.top_p = 0.0f;
    p.min_p = 1.0f;
    p.typical_p = 0.0f;
    p.temperature = -3.0f;
    CHECK_STATUS(clv_sampler_create(&p, &s), CLV_OK);
    float one = 0.25f;
    CHECK_EQ_INT(clv_sampler_sample(s, &one), 0);
    clv_sampler_free(s);
}

static void test_seed(void) {
    enum { V = 500, N = 300 };
    static float x[N][V];
    for (int t = 0; t < N; t++)
        for (int i = 0; i < V; i++) x[t][i] = (float)(rnd_normal() * 1.5);
    clv_sampler_params p = clv_sampler_default_params();
    p.n_vocab = V;
    p.seed = 1234;
    p.repeat_penalty = 1.1f;
    clv_sampler *a = make(&p), *b = make(&p);
    p.seed = 1235;
    clv_sampler *c = make(&p);
    if (!a || !b || !c) return;
    CHECK(clv_sampler_seed(a) == 1234);
    static int32_t seq[N];
    int same_ab = 0, same_ac = 0;
    for (int t = 0; t < N; t++) {
        int32_t ta = clv_sampler_sample(a, x[t]), tb = clv_sampler_sample(b, x[t]);
        int32_t tc = clv_sampler_sample(c, x[t]);
        seq[t] = ta;
        same_ab += ta == tb;
        same_ac += ta == tc;
        clv_sampler_accept(a, ta);
        clv_sampler_accept(b, tb);
        clv_sampler_accept(c, tc);
    }
    CHECK_EQ_INT(same_ab, N);
    CHECK(same_ac < N);
    /* reset: the same sequence again */
    clv_sampler_reset(a);
    int same = 0;
    for (int t = 0; t < N; t++) {
        int32_t ta = clv_sampler_sample(a, x[t]);
        same += ta == seq[t];
        clv_sampler_accept(a, ta);
    }
    CHECK_EQ_INT(same, N);
    clv_sampler_free(a);
    clv_sampler_free(b);
    clv_sampler_free(c);

    /* A random seed is reported and reproduces. */
    p.seed = CLV_SAMPLER_SEED_RANDOM;
    a = make(&p);
    if (!a) return;
    p.seed = clv_sampler_seed(a);
    CHECK(p.seed != CLV_SAMPLER_SEED_RANDOM);
    b = make(&p);
    if (!b) return;
    same = 0;
    for (int t = 0; t < 50; t++) same += clv_sampler_sample(a, x[t]) == clv_sampler_sample(b, x[t]);
    CHECK_EQ_INT(same, 50);
    clv_sampler_free(a);
    clv_sampler_free(b);

    /* Golden: the same seed gives these tokens on every machine. The logits
     * are exact binary fractions and the distribution is far from any
     * boundary, so only the PRNG and the walk decide. */
    float g[8] = {0.0f, 0.5f, 1.0f, -0.5f, 0.25f, 0.75f, -1.0f, 0.125f};
    p = plain_params(8);
    p.seed = 42;
    a = make(&p);
    if (!a) return;
    /* Checked against an independent model of splitmix64 + xoshiro256** and
     * the cumulative walk. */
    static const int32_t golden[24] = {0, 2, 5, 7, 7, 5, 5, 5, 5, 4, 5, 2,
                                       5, 2, 5, 6, 4, 5, 5, 5, 1, 1, 2, 4};
    int32_t got[24];
    bool match = true;
    for (int i = 0; i < 24; i++) {
        got[i] = clv_sampler_sample(a, g);
        match &= got[i] == golden[i];
    }
    if (!match) {
        fprintf(stderr, "seed 42 gave:");
        for (int i = 0; i < 24; i++) fprintf(stderr, " %d,", got[i]);
        fprintf(stderr, "\n");
    }
    CHECK(match);
    clv_sampler_free(a);
}

/* 200k draws against the distribution the chain reports. */
static void test_draw_frequencies(void) {
    enum { V = 12, DRAWS = 200000 };
    float x[V];
    for (int i = 0; i < V; i++) x[i] = (float)(0.4 * i - 0.05 * i * i + 0.3 * sin(i));
    clv_sampler_params p = clv_sampler_default_params();
    p.n_vocab = V;
    p.seed = 99;
    p.top_p = 0.9f;
    p.min_p = 0.1f;
    clv_sampler *s = make(&p);
    if (!s) return;
    const int32_t *ids;
    const float *probs;
    int n = clv_sampler_candidates(s, x, &ids, &probs);
    double want[V] = {0};
    for (int i = 0; i < n; i++) want[ids[i]] = probs[i];
    int count[V] = {0};
    for (int d = 0; d < DRAWS; d++) {
        int32_t t = clv_sampler_sample(s, x);
        if (t >= 0 && t < V) count[t]++;
    }
    double chi2 = 0;
    int outside = 0;
    for (int i = 0; i < V; i++) {
        if (want[i] > 0) {
            double e = want[i] * DRAWS;
            chi2 += (count[i] - e) * (count[i] - e) / e;
        } else {
            outside += count[i];
        }
    }
    int df = n - 1;
    double bound = df + 8.0 * sqrt(2.0 * df) + 1;
    printf("draws: %d candidates, chi-square %.2f (df %d, bound %.1f)\n", n, chi2, df, bound);
    CHECK_EQ_INT(outside, 0);
    CHECK_MSG(chi2 < bound, "chi-square %.2f over %.1f", chi2, bound);
    clv_sampler_free(s);
}

int main(void) {
    /* Another stream of random cases: CLEAVE_TEST_SEED=n. */
    const char *seed = getenv("CLEAVE_TEST_SEED");
    if (seed && *seed) rng_state ^= strtoull(seed, NULL, 0) * 0x9e3779b97f4a7c15ull;
    if (!rng_state) rng_state = 1;
    test_invalid();
    test_greedy();
    test_penalties();
    test_bias();
    test_nonfinite();
    test_seed();
    test_draw_frequencies();
    test_random_chains();
    test_large_vocab();
    return test_finish("test_sampler");
}
