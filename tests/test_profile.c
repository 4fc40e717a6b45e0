/* The profiler (profiler/): exact counts on tiny models against a separate
 * count from raw activations, repeatability, the file's round trip and its
 * refusal of damaged files, and planted statistics of synthetic models
 * measured back (the table in docs/profiler.md comes from this test's
 * output). */
#include <unistd.h>

#include "collect.h"
#include "context.h"
#include "fp16.h"
#include "gguf.h"
#include "model.h"
#include "profile.h"
#include "profile_stats.h"
#include "synthetic_model.h"
#include "test.h"

static uint64_t rng_state = 0x853C49E6748FEA9Bull;

static uint64_t rng(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static void random_tokens(int32_t *t, int64_t n, int32_t lo, int32_t hi) {
    for (int64_t i = 0; i < n; i++) t[i] = lo + (int32_t)(rng() % (uint64_t)(hi - lo));
}

/* --- comparing profiles ----------------------------------------------------------- */

#define SAME_ARRAY(a, b, n) ((a) == (b) || ((a) && (b) && !memcmp((a), (b), (size_t)(n) * sizeof *(a))))

static bool profiles_equal(const clv_profile *a, const clv_profile *b) {
    if (strcmp(a->arch, b->arch) || strcmp(a->model_name, b->model_name) || strcmp(a->corpus, b->corpus)) return false;
    if (a->n_layer != b->n_layer || a->n_embd != b->n_embd || a->n_expert_used != b->n_expert_used ||
        a->act != b->act || a->sparsity != b->sparsity || a->top_k != b->top_k || a->n_tokens != b->n_tokens ||
        a->n_calib_tokens != b->n_calib_tokens || a->sample_stride != b->sample_stride)
        return false;
    for (int64_t il = 0; il < a->n_layer; il++) {
        const clv_profile_layer *x = &a->layers[il], *y = &b->layers[il];
        if (x->n_ff != y->n_ff || x->n_expert != y->n_expert || x->n_expert_next != y->n_expert_next ||
            x->n_samples != y->n_samples || memcmp(&x->threshold, &y->threshold, sizeof x->threshold))
            return false;
        if (!SAME_ARRAY(x->neuron_active, y->neuron_active, x->n_ff)) return false;
        if (x->n_ff && !SAME_ARRAY(x->act_hist, y->act_hist, CLV_PROFILE_HIST_BINS)) return false;
        if (!SAME_ARRAY(x->expert_count, y->expert_count, x->n_expert)) return false;
        if (!SAME_ARRAY(x->expert_weight, y->expert_weight, x->n_expert)) return false;
        if (x->n_expert_next && !SAME_ARRAY(x->expert_next, y->expert_next, x->n_expert * x->n_expert_next)) return false;
        if (x->n_samples) {
            if (!SAME_ARRAY(x->sample_x, y->sample_x, x->n_samples * a->n_embd)) return false;
            if (x->n_ff && !SAME_ARRAY(x->sample_mask, y->sample_mask, x->n_samples * ((x->n_ff + 7) / 8))) return false;
            if (x->n_expert && !SAME_ARRAY(x->sample_experts, y->sample_experts, x->n_samples * a->n_expert_used))
                return false;
        }
    }
    return true;
}

/* --- 1. exact counts against a separate count ------------------------------------ */

/* What the reference observer keeps: every counted row's raw values. */
typedef struct raw_run {
    int64_t n_layer, n_embd, n_tokens, first_row, base;
    int64_t n_ff[16], n_used;
    float *act[16];    /* [n_tokens][n_ff] */
    int32_t *ids[16];  /* [n_tokens][n_used] */
    float *w[16];
    float *x[16];      /* [n_tokens][n_embd] */
    int64_t rows;      /* counted rows of the current chunk */
} raw_run;

static void raw_dense(void *user, int64_t il, const float *x, const float *act, int64_t n_tokens, int64_t n_embd,
                      int64_t n_ff) {
    raw_run *r = user;
    (void)n_tokens;
    if (!r->act[il]) {
        r->n_ff[il] = n_ff;
        r->act[il] = calloc((size_t)(r->n_tokens * n_ff), sizeof(float));
        r->x[il] = calloc((size_t)(r->n_tokens * n_embd), sizeof(float));
    }
    memcpy(r->act[il] + r->base * n_ff, act + r->first_row * n_ff, (size_t)(r->rows * n_ff) * sizeof(float));
    memcpy(r->x[il] + r->base * n_embd, x + r->first_row * n_embd, (size_t)(r->rows * n_embd) * sizeof(float));
}

static void raw_moe(void *user, int64_t il, const float *x, const int32_t *ids, const float *w, int64_t n_tokens,
                    int64_t n_embd, int64_t n_used) {
    raw_run *r = user;
    (void)n_tokens;
    if (!r->ids[il]) {
        r->n_used = n_used;
        r->ids[il] = calloc((size_t)(r->n_tokens * n_used), sizeof(int32_t));
        r->w[il] = calloc((size_t)(r->n_tokens * n_used), sizeof(float));
        r->x[il] = calloc((size_t)(r->n_tokens * n_embd), sizeof(float));
    }
    memcpy(r->ids[il] + r->base * n_used, ids + r->first_row * n_used, (size_t)(r->rows * n_used) * sizeof(int32_t));
    memcpy(r->w[il] + r->base * n_used, w + r->first_row * n_used, (size_t)(r->rows * n_used) * sizeof(float));
    memcpy(r->x[il] + r->base * n_embd, x + r->first_row * n_embd, (size_t)(r->rows * n_embd) * sizeof(float));
}

/* One plain pass over all tokens, chunked as collect.h describes. */
static void raw_capture(clv_model *m, const int32_t *tokens, int64_t n, const clv_profiler_params *pp, raw_run *r) {
    memset(r, 0, sizeof *r);
    r->n_layer = m->hp.n_layer;
    r->n_embd = m->hp.n_embd;
    r->n_tokens = n;
    clv_ffn_observer obs = {.user = r, .dense = raw_dense, .moe = raw_moe};
    clv_context_params cp = clv_context_default_params();
    cp.n_ctx = cp.n_batch = pp->n_ctx;
    cp.n_threads = pp->n_threads;
    cp.observer = &obs;
    clv_context *ctx = NULL;
    CHECK_STATUS(clv_context_create(m, &cp, &ctx), CLV_OK);
    if (!ctx) return;
    int64_t lead = pp->bos >= 0, per = pp->n_ctx - lead;
    int32_t *chunk = malloc((size_t)pp->n_ctx * sizeof *chunk);
    for (int64_t start = 0; start < n; start += per) {
        int64_t take = n - start < per ? n - start : per;
        chunk[0] = pp->bos;
        memcpy(chunk + lead, tokens + start, (size_t)take * sizeof *chunk);
        r->first_row = lead, r->base = start, r->rows = take;
        clv_context_truncate(ctx, 0);
        clv_batch b = {.n_tokens = take + lead, .tokens = chunk};
        CHECK_STATUS(clv_decode(ctx, &b), CLV_OK);
    }
    free(chunk);
    clv_context_free(ctx);
}

static void raw_free(raw_run *r) {
    for (int i = 0; i < 16; i++) free(r->act[i]), free(r->ids[i]), free(r->w[i]), free(r->x[i]);
}

/* Bin of |v| by search over the published edges (not the profiler's method). */
static int ref_bin(float v) {
    double a = fabs((double)v);
    if (!(a < INFINITY)) return CLV_PROFILE_HIST_BINS - 1;
    int lo = 0, hi = CLV_PROFILE_HIST_BINS - 1; /* largest b with edge(b) <= a */
    while (lo < hi) {
        int mid = (lo + hi + 1) / 2;
        if (clv_profile_hist_edge(mid) <= a) lo = mid;
        else hi = mid - 1;
    }
    return a < clv_profile_hist_edge(1) ? 0 : lo;
}

/* The threshold for a share `sparsity` of the histogram at or below it,
 * linear inside the bin where the share is reached. */
static float ref_threshold(const int64_t *hist, double sparsity) {
    double total = 0;
    for (int b = 0; b < CLV_PROFILE_HIST_BINS; b++) total += (double)hist[b];
    double target = sparsity * total, below = 0;
    int b = 0;
    while (below + (double)hist[b] < target) below += (double)hist[b++];
    if (b == 0) return 0.0f;
    double lo = clv_profile_hist_edge(b), hi = clv_profile_hist_edge(b + 1);
    return (float)(lo + (hi - lo) * (target - below) / (double)hist[b]);
}

/* Whether neuron f of a token's row is kept by per-token top-k: its rank by
 * |a| (ties: lower index first) is below k. Quadratic, independent of the
 * profiler's quickselect. */
static bool ref_top_k(const float *row, int64_t F, int64_t f, int64_t k) {
    int64_t rank = 0;
    float v = fabsf(row[f]);
    for (int64_t g = 0; g < F; g++) {
        float w = fabsf(row[g]);
        rank += w > v || (w == v && g < f);
    }
    return rank < k;
}

static void check_exact(const char *fixture, bool top_k) {
    char path[4096];
    snprintf(path, sizeof path, "%s/tests/data/arch/%s.f32.gguf", CLEAVE_SOURCE_DIR, fixture);
    clv_model *m = NULL;
    CHECK_STATUS(clv_model_load(path, NULL, &m), CLV_OK);
    if (!m) return;
    const int64_t n = 700;
    int32_t tokens[700];
    random_tokens(tokens, n, 3, (int32_t)m->hp.n_vocab);
    clv_profiler_params pp = clv_profiler_default_params();
    pp.n_ctx = 64;          /* 11 full chunks of 63 and one of 7 */
    pp.bos = 1;
    pp.n_calib_tokens = 200; /* ends inside the fourth chunk */
    pp.n_samples = 50;       /* every 14th token */
    pp.n_threads = 2;
    pp.sparsity = 0.4;
    pp.top_k = top_k;
    clv_profile *p = NULL, *again = NULL;
    CHECK_STATUS(clv_profile_collect(m, tokens, n, &pp, &p), CLV_OK);
    CHECK_STATUS(clv_profile_collect(m, tokens, n, &pp, &again), CLV_OK);
    raw_run r;
    raw_capture(m, tokens, n, &pp, &r);
    if (!p || !again) goto out;
    CHECK_MSG(profiles_equal(p, again), "%s: two runs differ", fixture);
    CHECK_EQ_INT(p->n_tokens, n);
    CHECK_EQ_INT(p->sample_stride, 14);
    bool relu = m->hp.ffn_act == CLV_ACT_RELU;
    int64_t dense_layers = 0, moe_layers = 0;
    int64_t *hist = calloc(CLV_PROFILE_HIST_BINS, sizeof *hist);
    for (int64_t il = 0; il < p->n_layer; il++) {
        const clv_profile_layer *l = &p->layers[il];
        CHECK_EQ_INT(l->n_samples, 50);
        if (r.act[il]) {
            dense_layers++;
            int64_t F = r.n_ff[il];
            CHECK_EQ_INT(l->n_ff, F);
            if (l->n_ff != F) continue;
            CHECK_MSG(p->top_k == (top_k && !relu), "%s: profile says top_k %d", fixture, p->top_k);
            /* threshold: from the first 200 tokens' histogram */
            memset(hist, 0, CLV_PROFILE_HIST_BINS * sizeof *hist);
            for (int64_t i = 0; i < pp.n_calib_tokens * F; i++) hist[ref_bin(r.act[il][i])]++;
            float thr = relu ? 0.0f : ref_threshold(hist, pp.sparsity);
            CHECK_MSG(l->threshold == thr, "%s layer %lld: threshold %.9g, expected %.9g", fixture, (long long)il,
                      l->threshold, thr);
            if (!relu) {
                /* the threshold reaches the target on the calibration tokens
                   to within the bin it falls in */
                int64_t below = 0, in_bin = hist[ref_bin(thr)];
                for (int64_t i = 0; i < pp.n_calib_tokens * F; i++) below += fabsf(r.act[il][i]) <= thr;
                double want = pp.sparsity * (double)(pp.n_calib_tokens * F);
                CHECK_MSG(fabs((double)below - want) <= (double)in_bin, "%s layer %lld: %lld at or below, want %.0f",
                          fixture, (long long)il, (long long)below, want);
            }
            /* counts and histogram over all tokens; samples */
            memset(hist, 0, CLV_PROFILE_HIST_BINS * sizeof *hist);
            bool counts_ok = true, mask_ok = true, x_ok = true;
            int64_t keep = (int64_t)ceil(0.6 * (double)F - 1e-6);
            uint8_t *on = malloc((size_t)(n * F));
            for (int64_t t = 0; t < n; t++) {
                const float *row = r.act[il] + t * F;
                for (int64_t f = 0; f < F; f++)
                    on[t * F + f] = p->top_k ? ref_top_k(row, F, f, keep) : fabsf(row[f]) > thr;
            }
            for (int64_t f = 0; f < F; f++) {
                int64_t c = 0;
                for (int64_t t = 0; t < n; t++) c += on[t * F + f];
                counts_ok = counts_ok && l->neuron_active[f] == c;
            }
            for (int64_t i = 0; i < n * F; i++) hist[ref_bin(r.act[il][i])]++;
            for (int64_t s = 0; s < 50; s++) {
                int64_t t = s * 14;
                for (int64_t f = 0; f < F; f++) {
                    bool bit = (l->sample_mask[s * ((F + 7) / 8) + f / 8] >> (f % 8)) & 1;
                    mask_ok = mask_ok && bit == on[t * F + f];
                }
                for (int64_t i = 0; i < r.n_embd; i++)
                    x_ok = x_ok && l->sample_x[s * r.n_embd + i] == clv_fp32_to_fp16(r.x[il][t * r.n_embd + i]);
            }
            free(on);
            CHECK_MSG(counts_ok, "%s layer %lld: neuron counts differ (%s)", fixture, (long long)il,
                      p->top_k ? "top-k" : "threshold");
            CHECK_MSG(!memcmp(hist, l->act_hist, CLV_PROFILE_HIST_BINS * sizeof *hist), "%s layer %lld: histogram",
                      fixture, (long long)il);
            CHECK_MSG(mask_ok && x_ok, "%s layer %lld: samples (mask %d, x %d)", fixture, (long long)il, mask_ok, x_ok);
        } else {
            CHECK_EQ_INT(l->n_ff, 0);
        }
        if (r.ids[il]) {
            moe_layers++;
            int64_t E = m->hp.n_expert, k = r.n_used;
            CHECK_EQ_INT(l->n_expert, E);
            int64_t count[64] = {0};
            double weight[64] = {0};
            for (int64_t t = 0; t < n; t++)
                for (int64_t j = 0; j < k; j++) {
                    count[r.ids[il][t * k + j]]++;
                    weight[r.ids[il][t * k + j]] += r.w[il][t * k + j];
                }
            CHECK(!memcmp(count, l->expert_count, (size_t)E * sizeof *count));
            CHECK(!memcmp(weight, l->expert_weight, (size_t)E * sizeof *weight));
            if (il + 1 < p->n_layer && r.ids[il + 1]) {
                int64_t next[64 * 64] = {0};
                for (int64_t t = 0; t < n; t++)
                    for (int64_t a = 0; a < k; a++)
                        for (int64_t b = 0; b < k; b++) next[r.ids[il][t * k + a] * E + r.ids[il + 1][t * k + b]]++;
                CHECK(l->expert_next && l->n_expert_next == E &&
                      !memcmp(next, l->expert_next, (size_t)(E * E) * sizeof *next));
            } else {
                CHECK(!l->expert_next);
            }
            bool ok = true;
            for (int64_t s = 0; s < 50; s++) {
                ok = ok && !memcmp(l->sample_experts + s * k, r.ids[il] + s * 14 * k, (size_t)k * sizeof(int32_t));
                for (int64_t i = 0; i < r.n_embd; i++)
                    ok = ok && l->sample_x[s * r.n_embd + i] == clv_fp32_to_fp16(r.x[il][s * 14 * r.n_embd + i]);
            }
            CHECK_MSG(ok, "%s layer %lld: expert samples", fixture, (long long)il);
        } else {
            CHECK_EQ_INT(l->n_expert, 0);
        }
    }
    free(hist);
    CHECK(dense_layers + moe_layers >= p->n_layer);
    printf("exact counts: %s: %lld dense and %lld MoE layers agree with the raw values\n", fixture,
           (long long)dense_layers, (long long)moe_layers);
    if (!strcmp(fixture, "qwen2moe")) CHECK_EQ_INT(dense_layers, 0); /* the shared expert is not counted */
out:
    raw_free(&r);
    clv_profile_free(p);
    clv_profile_free(again);
    clv_model_free(m);
}

/* --- 2. the file --------------------------------------------------------------------- */

/* A hand-made profile: a dense layer, two MoE layers (with followers), a
 * dense layer without samples' mask width a multiple of 8. */
static clv_profile *handmade(void) {
    const int64_t n_ff[4] = {13, 0, 0, 16}, n_expert[4] = {0, 6, 5, 0};
    clv_profile *p = NULL;
    CHECK_STATUS(clv_profile_create(&p, 4, 8, n_ff, n_expert, 2, 3), CLV_OK);
    if (!p) return NULL;
    snprintf(p->arch, sizeof p->arch, "llama");
    snprintf(p->model_name, sizeof p->model_name, "hand \"made\" <model>");
    snprintf(p->corpus, sizeof p->corpus, "a.txt, b.txt");
    p->act = CLV_ACT_SILU;
    p->sparsity = 0.5f;
    p->n_tokens = 1000;
    p->n_calib_tokens = 500;
    p->sample_stride = 7;
    for (int64_t il = 0; il < 4; il++) {
        clv_profile_layer *l = &p->layers[il];
        l->threshold = l->n_ff ? 0.125f * (float)(il + 1) : -1.0f;
        for (int64_t i = 0; i < l->n_ff; i++) l->neuron_active[i] = (int64_t)(rng() % 1001);
        for (int b = 0; l->n_ff && b < CLV_PROFILE_HIST_BINS; b++) l->act_hist[b] = (int64_t)(rng() % 100000);
        for (int64_t e = 0; e < l->n_expert; e++) {
            l->expert_count[e] = (int64_t)(rng() % 1001);
            l->expert_weight[e] = (double)(rng() % 100000) / 7.0;
        }
        for (int64_t i = 0; l->expert_next && i < l->n_expert * l->n_expert_next; i++)
            l->expert_next[i] = (int64_t)(rng() % 1001);
        for (int64_t i = 0; i < l->n_samples * p->n_embd; i++) l->sample_x[i] = (uint16_t)(rng() & 0x7bff);
        for (int64_t i = 0; l->sample_mask && i < l->n_samples * ((l->n_ff + 7) / 8); i++)
            l->sample_mask[i] = (uint8_t)rng();
        for (int64_t i = 0; l->sample_experts && i < l->n_samples * 2; i++)
            l->sample_experts[i] = (int32_t)(rng() % (uint64_t)l->n_expert);
    }
    p->layers[3].n_samples = 0; /* fewer samples in one layer */
    return p;
}

static uint8_t *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *d = malloc(*n);
    if (d && fread(d, 1, *n, f) != *n) free(d), d = NULL;
    fclose(f);
    return d;
}

static void spit(const char *path, const uint8_t *d, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return;
    fwrite(d, 1, n, f);
    fclose(f);
}

/* Whatever loads must be usable: ids in range, counts within the tokens. */
static bool usable(const clv_profile *p) {
    for (int64_t il = 0; il < p->n_layer; il++) {
        const clv_profile_layer *l = &p->layers[il];
        for (int64_t i = 0; i < l->n_ff; i++)
            if (l->neuron_active[i] < 0 || l->neuron_active[i] > p->n_tokens) return false;
        for (int64_t i = 0; l->sample_experts && i < l->n_samples * p->n_expert_used; i++)
            if (l->sample_experts[i] < 0 || l->sample_experts[i] >= l->n_expert) return false;
        if (l->expert_next && l->n_expert_next != p->layers[il + 1].n_expert) return false;
        clv_profile_layer_summary s;
        if (clv_profile_summarize(p, il, &s)) return false;
    }
    return true;
}

static void check_load_fails(const char *path, const char *what, const char *needle) {
    clv_profile *q = NULL;
    clv_status st = clv_profile_load(path, &q);
    CHECK_MSG(st == CLV_ERR_FORMAT && !q && strstr(clv_last_error(), needle), "%s: got %s (%s), want a format error naming %s",
              what, clv_status_str(st), clv_last_error(), needle);
    clv_profile_free(q);
}

static void check_file(const clv_profile *p, const char *name) {
    char path[256], bad[256];
    snprintf(path, sizeof path, "/tmp/cleave-test-profile-%d.profile", (int)getpid());
    snprintf(bad, sizeof bad, "/tmp/cleave-test-profile-%d.bad", (int)getpid());
    CHECK_STATUS(clv_profile_save(p, path), CLV_OK);
    clv_profile *q = NULL;
    CHECK_STATUS(clv_profile_load(path, &q), CLV_OK);
    CHECK_MSG(q && profiles_equal(p, q), "%s: the loaded profile differs from the saved one", name);
    clv_profile_free(q);

    size_t size = 0;
    uint8_t *data = slurp(path, &size);
    CHECK(data && size > 64);
    if (!data) return;
    /* every truncation fails */
    int truncations_ok = 0, n_trunc = 0;
    for (size_t cut = 0; cut < size; cut += 1 + cut / 16, n_trunc++) {
        spit(bad, data, cut);
        q = NULL;
        clv_status st = clv_profile_load(bad, &q);
        truncations_ok += st != CLV_OK && !q;
        clv_profile_free(q);
    }
    CHECK_EQ_INT(truncations_ok, n_trunc);
    /* random damage: an error or a profile that is safe to use */
    uint8_t *copy = malloc(size);
    int loaded = 0, refused = 0, unsafe = 0;
    for (int it = 0; it < 1500; it++) {
        memcpy(copy, data, size);
        int n_flips = 1 + (int)(rng() % 4);
        for (int k = 0; k < n_flips; k++) {
            size_t at = (size_t)(rng() % size);
            if (rng() % 2) copy[at] ^= (uint8_t)(1u << (rng() % 8));
            else copy[at] = (uint8_t)rng();
        }
        spit(bad, copy, size);
        q = NULL;
        if (clv_profile_load(bad, &q) == CLV_OK) {
            loaded++;
            unsafe += !usable(q);
        } else {
            refused++;
            CHECK(!q && clv_last_error()[0]);
        }
        clv_profile_free(q);
    }
    CHECK_EQ_INT(unsafe, 0);
    printf("file: %s: %zu bytes round-trip; %d truncations refused; 1500 damaged copies: %d refused, %d still valid\n",
           name, size, n_trunc, refused, loaded);
    free(copy);
    free(data);
    remove(bad);
    remove(path);
}

static void check_bad_values(void) {
    char path[256];
    snprintf(path, sizeof path, "/tmp/cleave-test-profile-%d.values", (int)getpid());
    clv_profile *p = handmade();
    if (!p) return;
    /* a count above the tokens counted */
    p->layers[0].neuron_active[3] = p->n_tokens + 1;
    CHECK_STATUS(clv_profile_save(p, path), CLV_OK);
    check_load_fails(path, "count above n_tokens", "blk.0.neuron_active");
    p->layers[0].neuron_active[3] = 0;
    /* an expert id outside the layer */
    p->layers[2].sample_experts[1] = 5;
    CHECK_STATUS(clv_profile_save(p, path), CLV_OK);
    check_load_fails(path, "expert id out of range", "blk.2.sample_experts");
    p->layers[2].sample_experts[1] = 0;
    /* a negative routing weight */
    p->layers[1].expert_weight[2] = -1;
    CHECK_STATUS(clv_profile_save(p, path), CLV_OK);
    check_load_fails(path, "negative weight", "blk.1.expert_weight");
    p->layers[1].expert_weight[2] = 1;
    /* not a profile at all */
    char model[4096];
    snprintf(model, sizeof model, "%s/tests/data/arch/llama.f32.gguf", CLEAVE_SOURCE_DIR);
    check_load_fails(model, "a model file", "general.type");
    /* bad sizes to create */
    clv_profile *q = NULL;
    const int64_t ff[1] = {-1}, ex[1] = {4};
    CHECK_STATUS(clv_profile_create(&q, 1, 8, ff, NULL, 0, 0), CLV_ERR_ARG);
    CHECK_STATUS(clv_profile_create(&q, 0, 8, NULL, NULL, 0, 0), CLV_ERR_ARG);
    CHECK_STATUS(clv_profile_create(&q, 1, 8, NULL, ex, 5, 0), CLV_ERR_ARG);
    CHECK(!q);
    clv_profile_free(NULL);
    clv_profile_free(p);
    remove(path);
}

static void check_histogram(void) {
    /* edges are exact powers of two every 16 bins, and bins follow them */
    CHECK(clv_profile_hist_edge(1) == ldexp(1.0, CLV_PROFILE_HIST_MIN_EXP));
    CHECK(clv_profile_hist_edge(1 + 16 * 24) == 1.0);
    CHECK_EQ_INT(clv_profile_hist_bin(0.0f), 0);
    CHECK_EQ_INT(clv_profile_hist_bin(1e-30f), 0);
    CHECK_EQ_INT(clv_profile_hist_bin(-1.0f), 1 + 16 * 24);
    CHECK_EQ_INT(clv_profile_hist_bin(nextafterf(1.0f, 0.0f)), 16 * 24);
    CHECK_EQ_INT(clv_profile_hist_bin(1e30f), CLV_PROFILE_HIST_BINS - 1);
    CHECK_EQ_INT(clv_profile_hist_bin(INFINITY), CLV_PROFILE_HIST_BINS - 1);
    int mismatches = 0;
    for (int i = 0; i < 200000; i++) {
        float v = ldexpf((float)(rng() % (1u << 24)) / (float)(1u << 24), (int)(rng() % 48) - 28);
        mismatches += clv_profile_hist_bin(v) != ref_bin(v);
    }
    for (int b = 1; b < CLV_PROFILE_HIST_BINS; b++) {
        float e = (float)clv_profile_hist_edge(b);
        mismatches += clv_profile_hist_bin(e) != b || clv_profile_hist_bin(nextafterf(e, 0)) != b - 1;
    }
    CHECK_EQ_INT(mismatches, 0);
    /* threshold of a two-bin histogram: interpolated inside the bin */
    const int64_t n_ff[1] = {4};
    clv_profile *p = NULL;
    CHECK_STATUS(clv_profile_create(&p, 1, 4, n_ff, NULL, 0, 0), CLV_OK);
    if (!p) return;
    CHECK(clv_profile_threshold_for(p, 0, 0.5) == -1.0f); /* no counts yet */
    int b1 = clv_profile_hist_bin(1.0f);
    p->layers[0].act_hist[0] = 50;
    p->layers[0].act_hist[b1] = 50;
    CHECK(clv_profile_threshold_for(p, 0, 0.3) == 0.0f);
    double lo = clv_profile_hist_edge(b1), hi = clv_profile_hist_edge(b1 + 1);
    CHECK(fabsf(clv_profile_threshold_for(p, 0, 0.75) - (float)(lo + 0.5 * (hi - lo))) < 1e-6f);
    CHECK(clv_profile_threshold_for(p, 1, 0.5) == -1.0f);
    clv_profile_free(p);
}

/* --- 3. planted statistics measured back ------------------------------------------ */

static double *planted_array(const clv_gguf *g, const char *key, int64_t il, int64_t n) {
    const clv_gguf_value *v = NULL;
    if (clv_gguf_get_arr(g, key, CLV_GGUF_F32, &v) || v->v.arr.count < (uint64_t)((il + 1) * n)) return NULL;
    double *d = malloc((size_t)n * sizeof *d);
    for (int64_t i = 0; i < n; i++) d[i] = ((const float *)v->v.arr.data)[il * n + i];
    return d;
}

static void check_planted(const char *what, const char *preset, const char *const *sets, const char *skew,
                          const char *hot, double sparsity, int64_t n_tokens) {
    char path[256];
    snprintf(path, sizeof path, "/tmp/cleave-test-profile-%d-%s.gguf", (int)getpid(), what);
    clv_synth_params sp = clv_synth_default_params();
    bool ok = clv_synth_shape_from_preset(preset, &sp.shape) == CLV_OK && clv_synth_parse_type("Q8_0", &sp.file_type) == CLV_OK;
    for (int i = 0; ok && sets[i]; i++) ok = clv_synth_shape_set(&sp.shape, sets[i]) == CLV_OK;
    if (ok && skew) ok = clv_synth_parse_router_skew(skew, &sp) == CLV_OK;
    if (ok && hot) ok = clv_synth_parse_hot_law(hot, &sp) == CLV_OK;
    sp.ffn_sparsity = sparsity;
    sp.n_threads = 2;
    CHECK(ok);
    clv_synth_report rep;
    CHECK_STATUS(clv_synth_generate(path, &sp, &rep), CLV_OK);
    clv_model *m = NULL;
    CHECK_STATUS(clv_model_load(path, NULL, &m), CLV_OK);
    if (!m) return;
    int32_t *tokens = malloc((size_t)n_tokens * sizeof *tokens);
    random_tokens(tokens, n_tokens, 0, (int32_t)m->hp.n_vocab);
    clv_profiler_params pp = clv_profiler_default_params();
    pp.n_threads = 2;
    pp.n_samples = 256;
    clv_profile *p = NULL;
    CHECK_STATUS(clv_profile_collect(m, tokens, n_tokens, &pp, &p), CLV_OK);
    if (!p) goto out;
    bool moe = m->hp.n_expert > 0;
    printf("\nplanted vs measured: %s (%s, %lld tokens)\n", what, preset, (long long)n_tokens);
    if (moe)
        printf("| layer | correlation | max abs error | top-10%% share planted / measured | Zipf fit planted / measured |\n"
               "|---|---:|---:|---|---|\n");
    else
        printf("| layer | firing planted / measured | per-neuron correlation | hottest-10%% share planted / measured | "
               "power-law fit planted / measured |\n|---|---|---:|---|---|\n");
    for (int64_t il = 0; il < p->n_layer; il++) {
        int64_t n = 0;
        double *meas = moe ? clv_profile_expert_rates(p, il, &n) : clv_profile_neuron_rates(p, il, &n);
        double *plant = planted_array(m->gguf, moe ? "cleave.synthetic.router.popularity" : "cleave.synthetic.ffn.firing_prob",
                                      il, n);
        CHECK(meas && plant && n > 0);
        if (!meas || !plant) {
            free(meas), free(plant);
            continue;
        }
        double corr = clv_profile_correlation(plant, meas, n), max_err = 0, mp = 0, mm = 0;
        for (int64_t i = 0; i < n; i++) {
            max_err = fmax(max_err, fabs(plant[i] - meas[i]));
            mp += plant[i] / (double)n, mm += meas[i] / (double)n;
        }
        double top_p = clv_profile_top_share(plant, n, 0.1), top_m = clv_profile_top_share(meas, n, 0.1);
        double fit_p = clv_profile_fit_power_law(plant, n), fit_m = clv_profile_fit_power_law(meas, n);
        if (moe)
            printf("| %lld | %.4f | %.4f | %.3f / %.3f | %.3f / %.3f |\n", (long long)il, corr, max_err, top_p, top_m,
                   fit_p, fit_m);
        else
            printf("| %lld | %.4f / %.4f | %.4f | %.3f / %.3f | %.3f / %.3f |\n", (long long)il, mp, mm, corr, top_p,
                   top_m, fit_p, fit_m);
        /* binomial noise of n_tokens draws is at most 0.5 / sqrt(n_tokens) per unit */
        double noise = 0.5 / sqrt((double)n_tokens);
        CHECK_MSG(corr > 0.95, "%s layer %lld: correlation %.4f", what, (long long)il, corr);
        CHECK_MSG(max_err < 6 * noise + 0.02, "%s layer %lld: largest error %.4f", what, (long long)il, max_err);
        CHECK_MSG(fabs(top_m - top_p) < 0.03, "%s layer %lld: top-10%% share %.3f vs %.3f", what, (long long)il, top_m,
                  top_p);
        if (!moe) CHECK_MSG(fabs(mm - mp) < 0.01, "%s layer %lld: firing %.4f vs %.4f", what, (long long)il, mm, mp);
        free(meas);
        free(plant);
    }
out:
    clv_profile_free(p);
    free(tokens);
    clv_model_free(m);
    remove(path);
}

int main(void) {
    check_histogram();

    static const char *fixtures[] = {"llama_relu", "qwen3", "gemma3", "olmoe", "qwen2moe"};
    for (size_t i = 0; i < sizeof fixtures / sizeof fixtures[0]; i++) {
        check_exact(fixtures[i], true);
        check_exact(fixtures[i], false);
    }

    clv_profile *p = handmade();
    if (p) check_file(p, "hand-made (dense and MoE layers)");
    clv_profile_free(p);
    check_bad_values();
    /* a collected MoE profile through the file, too */
    char path[4096];
    snprintf(path, sizeof path, "%s/tests/data/arch/qwen3moe.f32.gguf", CLEAVE_SOURCE_DIR);
    clv_model *m = NULL;
    CHECK_STATUS(clv_model_load(path, NULL, &m), CLV_OK);
    if (m) {
        int32_t tokens[300];
        random_tokens(tokens, 300, 3, (int32_t)m->hp.n_vocab);
        clv_profiler_params pp = clv_profiler_default_params();
        pp.n_ctx = 100;
        pp.n_samples = 20;
        pp.n_threads = 2;
        CHECK_STATUS(clv_profile_collect(m, tokens, 300, &pp, &p), CLV_OK);
        if (p) check_file(p, "qwen3moe fixture");
        clv_profile_free(p);
        clv_model_free(m);
    }

    static const char *relu_sets[] = {"n_layer=2", "n_embd=256", "n_vocab=1000", "n_ff=1024", "n_head=4",
                                      "n_head_kv=4", "head_dim=64", NULL};
    check_planted("relu", "relu-llama-13b", relu_sets, NULL, "powerlaw:1.0", 0.1, 3000);
    static const char *moe_sets[] = {"n_layer=2", "n_embd=256", "n_vocab=2000", "n_expert=32", "n_expert_used=4",
                                     "n_ff_exp=128", "n_head=4", "n_head_kv=2", "head_dim=64", NULL};
    check_planted("moe", "qwen3-30b-a3b", moe_sets, "zipf:1.2", NULL, 0, 3000);
    return test_finish("test_profile");
}
