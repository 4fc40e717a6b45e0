/* The activation-sparse FFN (clv_ffn_sparsity) on the tiny architecture
 * fixtures, with the manifest's 40-token prompt:
 *
 *  (a) every threshold negative: logits bit-identical to a context without
 *      sparsity, batched and token by token;
 *  (b) ReLU with threshold 0 skips only neurons whose act is exactly 0, so
 *      sparse decode equals dense decode up to the down product's numerics:
 *      F32 weights keep an F32 transposed down, and only the order of the
 *      sum differs (bound 1e-5 relative); quantized ones get 8-bit rows in
 *      place of 8-bit activations (bound 0.1: dense decode itself is 7-8%
 *      from the float reference on these fixtures);
 *  (c) SwiGLU / GeGLU with each layer's median |h| as threshold: decode
 *      (only the active rows) and one batched call (dense, masked) make the
 *      same keep-or-skip decisions up to rounding at the threshold and give
 *      the same logits (F32, when no decision differs); both differ clearly
 *      from dense; and every layer's FFN, through dense, sparse decode and
 *      masked paths, against float64 for the act and mask it reported;
 *  (d) a random F16 predictor: as (c), plus its decisions against float64;
 *      one whose bias makes every neuron active gives exactly the
 *      threshold-only logits;
 *  (e) bad thresholds and mis-shaped predictors are refused (CLV_ERR_ARG)
 *      with a message naming the layer;
 *  (f) the bytes a sparse decode counts as read are exactly the rows it
 *      reads (from the observer's active counts), fewer than dense;
 *  (g) when SmolLM2-135M is cached: (c), (d), (f) on a real model with 2
 *      threads and 8-bit transposed down rows;
 *  (h) per-token top-k (threshold 0, keep 0.5 and 0.25, with and without a
 *      predictor, F16, Q4_0 and Q8_0): every layer's FFN through sparse decode and the masked
 *      batch against float64 over exactly the neurons top-k keeps, ties to
 *      the lower index, as in (c); a bad keep share is refused.
 *
 * Errors are relative per position: max |d| / max |reference logit|. */
#include <math.h>

#include "arch_fixtures.h"
#include "context.h"
#include "dequantize.h"
#include "fp16.h"
#include "json.h"
#include "model.h"
#include "ops.h"
#include "quantize.h"
#include "test.h"
#include "types.h"

static char dir[4096];
static int32_t prompt[64];
static int64_t n_prompt;

static uint64_t rng_state = 0x5eedull;
static uint64_t rng_u64(void) {
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static float rng_uniform(void) { return (float)((double)(rng_u64() >> 11) * 0x1.0p-53) * 2.0f - 1.0f; }

static clv_model *load(const char *name) {
    char path[8192];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    clv_model *m = NULL;
    clv_status st = clv_model_load(path, NULL, &m);
    CHECK_MSG(st == CLV_OK, "%s: %s", name, clv_last_error());
    return st ? NULL : m;
}

static clv_context *make_ctx(clv_model *m, const clv_ffn_sparsity *sp, const clv_ffn_observer *obs, int64_t n_ctx) {
    clv_context_params cp = clv_context_default_params();
    cp.n_ctx = n_ctx;
    cp.n_batch = n_ctx;
    cp.kv_type = CLV_TYPE_F32;
    cp.logits_all = true;
    cp.n_threads = 2;
    cp.sparsity = sp;
    cp.observer = obs;
    clv_context *ctx = NULL;
    clv_status st = clv_context_create(m, &cp, &ctx);
    CHECK_MSG(st == CLV_OK, "context: %s", clv_last_error());
    return st ? NULL : ctx;
}

/* Logits [n][n_vocab]: one batch, or token by token. */
static float *run(clv_context *ctx, const int32_t *tokens, int64_t n, bool one_by_one) {
    int64_t V = ctx->model->hp.n_vocab;
    float *out = calloc((size_t)(n * V), sizeof(float));
    clv_context_truncate(ctx, 0);
    if (one_by_one) {
        for (int64_t t = 0; t < n; t++) {
            clv_batch b = {.n_tokens = 1, .tokens = tokens + t};
            CHECK_STATUS(clv_decode(ctx, &b), CLV_OK);
            memcpy(out + t * V, clv_context_logits(ctx, 0), (size_t)V * sizeof(float));
        }
    } else {
        clv_batch b = {.n_tokens = n, .tokens = tokens, .logits_all = true};
        CHECK_STATUS(clv_decode(ctx, &b), CLV_OK);
        for (int64_t t = 0; t < n && ctx->n_logits == n; t++) {
            memcpy(out + t * V, clv_context_logits(ctx, t), (size_t)V * sizeof(float));
        }
    }
    return out;
}

static double rel_err(const float *got, const float *want, int64_t n, int64_t V) {
    double worst = 0;
    for (int64_t t = 0; t < n; t++) {
        double maxdiff = 0, maxref = 0;
        for (int64_t i = 0; i < V; i++) {
            double d = fabs((double)got[t * V + i] - want[t * V + i]);
            if (!(d <= maxdiff)) maxdiff = d; /* NaN counts as worst */
            if (fabs(want[t * V + i]) > maxref) maxref = fabs(want[t * V + i]);
        }
        double e = maxdiff / (maxref > 0 ? maxref : 1);
        if (!(e <= worst)) worst = e;
    }
    return worst;
}

/* --- observer: |h| = |act(gate) * up| per layer (for median thresholds), skipped counts --------- */

typedef struct act_log {
    int64_t n_layer;
    float *vals[CLV_MAX_LAYERS]; /* |h| of every (token, neuron) seen */
    int64_t n[CLV_MAX_LAYERS], cap[CLV_MAX_LAYERS];
    int64_t zeros[CLV_MAX_LAYERS];  /* act exactly 0 */
    int64_t above[CLV_MAX_LAYERS];  /* |h| > thr[il] */
    const float *thr;
    uint8_t *bits[CLV_MAX_LAYERS]; /* with thr: |h| > thr[il] per (token, neuron), in call order */
    int64_t nbits[CLV_MAX_LAYERS], bits_cap[CLV_MAX_LAYERS];
} act_log;

static void log_dense(void *user, int64_t il, const float *x, const float *act, int64_t n_tokens, int64_t n_embd,
                      int64_t n_ff) {
    (void)x;
    (void)n_embd;
    act_log *g = user;
    for (int64_t k = 0; k < n_tokens * n_ff; k++) {
        float a = fabsf(act[k]);
        if (g->n[il] < g->cap[il]) g->vals[il][g->n[il]++] = a;
        g->zeros[il] += a == 0.0f;
        g->above[il] += g->thr && a > g->thr[il];
        if (g->bits[il] && g->nbits[il] < g->bits_cap[il]) g->bits[il][g->nbits[il]++] = g->thr && a > g->thr[il];
    }
}

static void log_init(act_log *g, const clv_model *m, int64_t cap) {
    memset(g, 0, sizeof *g);
    g->n_layer = m->hp.n_layer;
    for (int64_t il = 0; il < g->n_layer; il++) {
        g->vals[il] = malloc((size_t)cap * sizeof(float));
        g->cap[il] = cap;
    }
}

static void log_reset(act_log *g) {
    for (int64_t il = 0; il < g->n_layer; il++) g->n[il] = g->zeros[il] = g->above[il] = g->nbits[il] = 0;
}

static void log_free(act_log *g) {
    for (int64_t il = 0; il < g->n_layer; il++) {
        free(g->vals[il]);
        free(g->bits[il]);
    }
}

/* Keep-or-skip decisions of n tokens per layer, to compare two runs. */
static void log_bits(act_log *g, const clv_model *m, int64_t n) {
    for (int64_t il = 0; il < g->n_layer; il++) {
        g->bits[il] = calloc((size_t)(n * m->hp.n_ff[il]), 1);
        g->bits_cap[il] = n * m->hp.n_ff[il];
    }
}

/* Decisions that differ between the run logged now and `saved` (an
 * earlier log's bits); *total gets the count compared. */
static int64_t count_flips(const act_log *g, uint8_t *const *saved, int64_t *total) {
    int64_t flips = 0;
    *total = 0;
    for (int64_t il = 0; il < g->n_layer; il++) {
        for (int64_t k = 0; k < g->nbits[il]; k++) flips += g->bits[il][k] != saved[il][k];
        *total += g->nbits[il];
    }
    return flips;
}

static int cmp_float(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* thr[il] = median |h| of layer il over the prompt, dense. */
static void median_thresholds(clv_model *m, const int32_t *tokens, int64_t n, float *thr) {
    act_log g;
    log_init(&g, m, n * 65536);
    clv_ffn_observer obs = {.user = &g, .dense = log_dense};
    clv_context *ctx = make_ctx(m, NULL, &obs, n);
    if (ctx) free(run(ctx, tokens, n, false));
    for (int64_t il = 0; il < m->hp.n_layer; il++) {
        qsort(g.vals[il], (size_t)g.n[il], sizeof(float), cmp_float);
        thr[il] = g.n[il] ? g.vals[il][g.n[il] / 2] : -1.0f;
    }
    clv_context_free(ctx);
    log_free(&g);
}

/* --- (a) -------------------------------------------------------------------------------------- */

static void check_all_dense(const char *name) {
    clv_model *m = load(name);
    if (!m) return;
    float thr[CLV_MAX_LAYERS];
    for (int64_t il = 0; il < m->hp.n_layer; il++) thr[il] = -1.0f;
    clv_ffn_sparsity sp = {.threshold = thr};
    clv_context *dense = make_ctx(m, NULL, NULL, n_prompt), *sparse = make_ctx(m, &sp, NULL, n_prompt);
    if (dense && sparse) {
        int64_t V = m->hp.n_vocab;
        for (int one = 0; one < 2; one++) {
            float *a = run(dense, prompt, n_prompt, one), *b = run(sparse, prompt, n_prompt, one);
            CHECK_MSG(memcmp(a, b, (size_t)(n_prompt * V) * sizeof(float)) == 0,
                      "%s: thresholds -1 change the %s logits", name, one ? "token-by-token" : "batch");
            free(a);
            free(b);
        }
        CHECK_EQ_INT(dense->weight_bytes_read, sparse->weight_bytes_read);
    }
    clv_context_free(dense);
    clv_context_free(sparse);
    clv_model_free(m);
}

/* --- (b) -------------------------------------------------------------------------------------- */

static void check_relu_exact(const char *name, double tol) {
    clv_model *m = load(name);
    if (!m) return;
    CHECK(m->hp.ffn_act == CLV_ACT_RELU);
    float thr[CLV_MAX_LAYERS];
    for (int64_t il = 0; il < m->hp.n_layer; il++) thr[il] = 0.0f;
    clv_ffn_sparsity sp = {.threshold = thr};
    act_log g;
    log_init(&g, m, 1);
    clv_ffn_observer obs = {.user = &g, .dense = log_dense};
    clv_context *dense = make_ctx(m, NULL, NULL, n_prompt), *sparse = make_ctx(m, &sp, &obs, n_prompt);
    if (dense && sparse) {
        int64_t V = m->hp.n_vocab;
        float *d1 = run(dense, prompt, n_prompt, true), *s1 = run(sparse, prompt, n_prompt, true);
        int64_t zeros = 0, total = 0;
        for (int64_t il = 0; il < m->hp.n_layer; il++) {
            zeros += g.zeros[il];
            total += n_prompt * m->hp.n_ff[il];
        }
        double e1 = rel_err(s1, d1, n_prompt, V);
        CHECK_MSG(e1 <= tol, "%s: ReLU threshold 0, token by token vs dense: %.3g > %.3g", name, e1, tol);
        /* Batched, the masking is a no-op for ReLU at 0. */
        float *db = run(dense, prompt, n_prompt, false), *sb = run(sparse, prompt, n_prompt, false);
        double eb = rel_err(sb, db, n_prompt, V);
        CHECK_MSG(eb == 0, "%s: ReLU threshold 0, batched vs dense: %.3g", name, eb);
        CHECK_MSG(zeros > total / 5, "%s: only %lld of %lld neurons skipped", name, (long long)zeros, (long long)total);
        printf("(b) %-22s ReLU thr 0: %4.1f%% skipped; decode vs dense %.2e (bound %.0e), batch %.1e\n", name,
               100.0 * zeros / total, e1, tol, eb);
        free(d1);
        free(s1);
        free(db);
        free(sb);
    }
    clv_context_free(dense);
    clv_context_free(sparse);
    log_free(&g);
    clv_model_free(m);
}

/* --- (c), layer by layer: each FFN against float64 ------------------------------------------ */

typedef struct layer_capture {
    int64_t il;                  /* the layer whose act is kept; -1: keep every layer's input */
    float *act;                  /* [2 * max n_ff] */
    float *x[CLV_MAX_LAYERS];    /* the last token's FFN input, per layer */
} layer_capture;

static void capture(void *user, int64_t il, const float *x, const float *act, int64_t n_tokens, int64_t n_embd,
                    int64_t n_ff) {
    layer_capture *c = user;
    if (c->il < 0) memcpy(c->x[il], x + (n_tokens - 1) * n_embd, (size_t)n_embd * sizeof(float));
    else if (il == c->il) memcpy(c->act, act, (size_t)(n_tokens * n_ff) * sizeof(float));
}

/* Whether neuron i is among the keep largest |act| (ties: lower index
 * first), counted directly. */
static bool in_top(const float *act, int64_t n_ff, int64_t i, int64_t keep) {
    int64_t rank = 0;
    for (int64_t j = 0; j < n_ff && rank < keep; j++)
        rank += fabsf(act[j]) > fabsf(act[i]) || (fabsf(act[j]) == fabsf(act[i]) && j < i);
    return rank < keep;
}

/* out = sum over neurons with |h_i| > thr, among the keep largest |h|, of
 * h_i down[:, i], in double from the scalar dequantizer: the down product
 * for the h = act(gate) * up and mask the engine reports. Returns
 * max |out - got| / max |out|. */
static double ffn_error(const clv_layer *l, const float *act, float thr, int64_t keep, const float *got) {
    int64_t n_embd = l->ffn_up->ne[0], n_ff = l->ffn_up->ne[1];
    float *row = malloc((size_t)(n_embd > n_ff ? n_embd : n_ff) * sizeof(float));
    double *h = calloc((size_t)n_ff, sizeof(double)), maxref = 0, maxdiff = 0;
    for (int64_t i = 0; i < n_ff; i++) {
        if (!(fabsf(act[i]) > thr) || (keep < n_ff && !in_top(act, n_ff, i, keep))) continue;
        h[i] = act[i];
    }
    for (int64_t j = 0; j < n_embd; j++) {
        CHECK(clv_dequantize_row(l->ffn_down->type, (const uint8_t *)l->ffn_down->data + j * l->ffn_down->row_bytes,
                                 row, n_ff) == CLV_OK);
        double o = 0;
        for (int64_t i = 0; i < n_ff; i++) o += (double)row[i] * h[i];
        maxref = fmax(maxref, fabs(o));
        double d = fabs(o - got[j]);
        if (!(d <= maxdiff)) maxdiff = d;
    }
    free(row);
    free(h);
    return maxdiff / (maxref > 0 ? maxref : 1);
}

/* Neurons the predictor (weights decoded by the scalar reference) keeps,
 * in double, that the engine skipped (act 0), or the other way round. */
static int64_t predictor_mismatches(const clv_neuron_predictor *p, const float *x, const float *act, int64_t n_embd,
                                    int64_t n_ff) {
    int64_t rank = p->w1->ne[1], bad = 0;
    double *hid = malloc((size_t)rank * sizeof(double));
    float *row = malloc((size_t)(n_embd > rank ? n_embd : rank) * sizeof(float));
    for (int64_t r = 0; r < rank; r++) {
        clv_dequantize_row(p->w1->type, (const uint8_t *)p->w1->data + r * p->w1->row_bytes, row, n_embd);
        double s = p->b1 ? p->b1[r] : 0;
        for (int64_t k = 0; k < n_embd; k++) s += (double)row[k] * x[k];
        hid[r] = s > 0 ? s : 0;
    }
    for (int64_t i = 0; i < n_ff; i++) {
        clv_dequantize_row(p->w2->type, (const uint8_t *)p->w2->data + i * p->w2->row_bytes, row, rank);
        double s = p->b2 ? p->b2[i] : 0;
        for (int64_t r = 0; r < rank; r++) s += (double)row[r] * hid[r];
        bad += (s > p->logit_threshold) != (act[i] != 0.0f);
    }
    free(hid);
    free(row);
    return bad;
}

/* Every layer's FFN, for its real input (the last prompt token's, from a
 * dense run), through the dense op, the sparse decode path (one token) and
 * the masked path (two tokens), each against float64 for the h and mask
 * it reports (so this measures the down product). The sparse paths may err
 * at most twice as much as dense does (8-bit activations) plus 1e-6, and
 * with quantized weights 0.02 more: the transposed down's int8 rows with
 * one scale per row are 0.8-1.1% from the weights they copy (Frobenius, on
 * SmolLM2's and Gemma 3's down matrices), and a sum over fewer neurons
 * averages that less. */
static void check_layers(clv_model *m, const char *name, const float *thr, const float *keep,
                         const clv_neuron_predictor *pred, const int32_t *tokens, int64_t n) {
    int64_t L = m->hp.n_layer, n_embd = m->hp.n_embd, max_ff = 0;
    for (int64_t il = 0; il < L; il++) max_ff = m->hp.n_ff[il] > max_ff ? m->hp.n_ff[il] : max_ff;
    layer_capture c = {.il = -1, .act = malloc((size_t)(2 * max_ff) * sizeof(float))};
    for (int64_t il = 0; il < L; il++) c.x[il] = malloc((size_t)n_embd * sizeof(float));
    clv_ffn_observer obs = {.user = &c, .dense = capture};
    clv_ffn_sparsity sp = {.threshold = thr, .keep = keep, .predictor = pred};
    clv_context *dense = make_ctx(m, NULL, &obs, n), *sparse = make_ctx(m, &sp, &obs, n);
    float *xx = malloc((size_t)(2 * n_embd) * sizeof(float)), *out = malloc((size_t)(2 * n_embd) * sizeof(float));
    double worst[3] = {0, 0, 0};
    int64_t mismatches = 0, total = 0;
    if (dense && sparse) {
        free(run(dense, tokens, n, false));
        /* the FFN calls below stand for tokens after the first (at position 0
         * the predictor is never used) */
        sparse->s.pos[0] = 1, sparse->s.pos[1] = 2;
        for (int64_t il = 0; il < L; il++) {
            const clv_layer *l = &m->layers[il];
            c.il = il;
            clv_op_ffn(dense, il, out, c.x[il], l->ffn_gate, l->ffn_up, l->ffn_down, 1, m->hp.ffn_act);
            int64_t F = m->hp.n_ff[il], k = keep ? (int64_t)ceil((double)keep[il] * (double)F - 1e-6) : F;
            worst[0] = fmax(worst[0], ffn_error(l, c.act, -1.0f, F, out));
            clv_op_ffn(sparse, il, out, c.x[il], l->ffn_gate, l->ffn_up, l->ffn_down, 1, m->hp.ffn_act);
            worst[1] = fmax(worst[1], ffn_error(l, c.act, thr[il], k, out));
            if (pred) mismatches += predictor_mismatches(&pred[il], c.x[il], c.act, n_embd, m->hp.n_ff[il]);
            total += m->hp.n_ff[il];
            memcpy(xx, c.x[il], (size_t)n_embd * sizeof(float));
            memcpy(xx + n_embd, c.x[il], (size_t)n_embd * sizeof(float));
            clv_op_ffn(sparse, il, out, xx, l->ffn_gate, l->ffn_up, l->ffn_down, 2, m->hp.ffn_act);
            worst[2] = fmax(worst[2], ffn_error(l, c.act, thr[il], k, out));
        }
        bool quantized = false;
        for (int64_t il = 0; il < L; il++) quantized = quantized || m->layers[il].ffn_down->type != CLV_TYPE_F32;
        double bound = 2 * worst[0] + 1e-6 + (quantized ? 0.02 : 0.0);
        CHECK_MSG(worst[1] <= bound, "%s: sparse decode FFN error %.3g > %.3g", name, worst[1], bound);
        CHECK_MSG(worst[2] <= bound, "%s: masked FFN error %.3g > %.3g", name, worst[2], bound);
        CHECK_MSG(mismatches * 100 <= total, "%s: %lld of %lld predictor decisions differ from float64", name,
                  (long long)mismatches, (long long)total);
        printf("    %-22s FFN vs float64%s%s: dense %.2e, sparse decode %.2e, masked %.2e", name,
               keep ? " (top-k)" : "", pred ? " (predictor)" : "", worst[0], worst[1], worst[2]);
        if (pred) printf("; predictor decisions off %lld of %lld", (long long)mismatches, (long long)total);
        printf("\n");
    }
    clv_context_free(dense);
    clv_context_free(sparse);
    for (int64_t il = 0; il < L; il++) free(c.x[il]);
    free(c.act);
    free(xx);
    free(out);
}

/* --- (c), (d), (f) ------------------------------------------------------------------------------ */

/* A random predictor with F16 weights for every layer of m. */
typedef struct rand_predictor {
    clv_weight w1[CLV_MAX_LAYERS], w2[CLV_MAX_LAYERS];
    uint16_t *d1[CLV_MAX_LAYERS], *d2[CLV_MAX_LAYERS];
    float *b1[CLV_MAX_LAYERS], *b2[CLV_MAX_LAYERS];
    clv_neuron_predictor p[CLV_MAX_LAYERS];
} rand_predictor;

/* Random weights of `type` (F16, or Q4_0 / Q8_0 quantized from random
 * floats: what trained predictor files hold). */
static void rand_weight(clv_weight *w, uint16_t **data, int32_t type, int64_t ne0, int64_t ne1, float scale) {
    uint64_t row_bytes = 0;
    clv_type_bytes(type, ne0, &row_bytes);
    *data = malloc((size_t)(row_bytes * (uint64_t)ne1));
    float *src = malloc((size_t)ne0 * sizeof(float));
    for (int64_t r = 0; r < ne1; r++) {
        for (int64_t i = 0; i < ne0; i++) src[i] = rng_uniform() * scale;
        clv_quantize_row(type, src, (uint8_t *)*data + (size_t)(r * (int64_t)row_bytes), ne0);
    }
    free(src);
    *w = (clv_weight){.name = "predictor", .type = type, .ne = {ne0, ne1, 1, 1}, .row_bytes = row_bytes,
                      .bytes = row_bytes * (uint64_t)ne1, .data = *data};
}

static rand_predictor *make_predictor_typed(const clv_model *m, int64_t rank, float bias2, int32_t type) {
    rand_predictor *r = calloc(1, sizeof *r);
    int64_t n_embd = m->hp.n_embd;
    for (int64_t il = 0; il < m->hp.n_layer; il++) {
        int64_t n_ff = m->hp.n_ff[il];
        rand_weight(&r->w1[il], &r->d1[il], type, n_embd, rank, 1.0f / sqrtf((float)n_embd));
        rand_weight(&r->w2[il], &r->d2[il], type, rank, n_ff, 1.0f / sqrtf((float)rank));
        r->b1[il] = malloc((size_t)rank * sizeof(float));
        r->b2[il] = malloc((size_t)n_ff * sizeof(float));
        for (int64_t i = 0; i < rank; i++) r->b1[il][i] = 0.1f * rng_uniform();
        for (int64_t i = 0; i < n_ff; i++) r->b2[il][i] = bias2 + 0.1f * rng_uniform();
        r->p[il] = (clv_neuron_predictor){.w1 = r->w1 + il, .b1 = r->b1[il], .w2 = r->w2 + il, .b2 = r->b2[il]};
    }
    return r;
}

static rand_predictor *make_predictor(const clv_model *m, int64_t rank, float bias2) {
    return make_predictor_typed(m, rank, bias2, CLV_TYPE_F16);
}

static void free_predictor(const clv_model *m, rand_predictor *r) {
    for (int64_t il = 0; r && il < m->hp.n_layer; il++) {
        free(r->d1[il]);
        free(r->d2[il]);
        free(r->b1[il]);
        free(r->b2[il]);
    }
    free(r);
}

/* End to end, decode against the masked batch. Their keep-or-skip decisions
 * (from the observer) must agree but for neurons a rounding puts across the
 * threshold: none or a handful with F32 weights (at most 0.2%), more with
 * quantized ones, where 8-bit activations (decode; the batch uses oneDNN's
 * float or the int8 kernels) and the 8-bit transposed down make x drift
 * apart layer by layer (measured 0.3-2% on the fixtures, 6% on SmolLM2
 * at its median |h|, 12% with a random predictor whose logits crowd its
 * threshold; bound 20%, where a wrong rule would give ~50%). With F32 weights and no
 * decision apart, logits agree within tol (1e-5); a decision apart moves
 * them by about one neuron's share, and on quantized weights these tiny
 * random nets turn 8-bit noise alone into logit changes of tens of percent,
 * so there check_layers holds the numbers to float64 layer by layer. Sparse
 * differs from dense by at least 10 tol (0.1 quantized). */
static void check_decisions(const char *what, const char *name, act_log *g, uint8_t **saved, double tol,
                            double e_decode) {
    int64_t total = 0, flips = count_flips(g, saved, &total);
    double max_flips = (tol > 0 ? 0.002 : 0.2) * (double)total;
    CHECK_MSG(total > 0 && (double)flips <= max_flips, "%s %s: %lld of %lld decisions differ between decode and batch",
              name, what, (long long)flips, (long long)total);
    if (tol > 0 && flips == 0) {
        CHECK_MSG(e_decode <= tol, "%s %s: token by token vs batch: %.3g > %.3g", name, what, e_decode, tol);
    }
    printf("    %-22s %s: %lld of %lld decisions apart; decode vs batch logits %.2e%s\n", name, what, (long long)flips,
           (long long)total, e_decode, tol > 0 && flips == 0 ? " (bound 1e-5)" : "");
}

static void save_bits(act_log *g, uint8_t **saved) {
    for (int64_t il = 0; il < g->n_layer; il++) {
        uint8_t *t = saved[il];
        saved[il] = g->bits[il];
        g->bits[il] = t;
    }
}

static void check_median(clv_model *m, const char *name, const int32_t *tokens, int64_t n_tok, double tol) {
    int64_t V = m->hp.n_vocab, L = m->hp.n_layer;
    float thr[CLV_MAX_LAYERS];
    median_thresholds(m, tokens, n_tok, thr);
    clv_ffn_sparsity sp = {.threshold = thr};
    act_log g, saved;
    log_init(&g, m, 1);
    log_bits(&g, m, n_tok);
    log_init(&saved, m, 1);
    log_bits(&saved, m, n_tok);
    g.thr = thr;
    clv_ffn_observer obs = {.user = &g, .dense = log_dense};
    clv_context *dense = make_ctx(m, NULL, NULL, n_tok), *sparse = make_ctx(m, &sp, &obs, n_tok);
    if (!dense || !sparse) goto done;

    float *db = run(dense, tokens, n_tok, false);
    float *sb = run(sparse, tokens, n_tok, false);
    save_bits(&g, saved.bits);
    log_reset(&g);
    uint64_t bytes0 = sparse->weight_bytes_read;
    float *s1 = run(sparse, tokens, n_tok, true);
    uint64_t sparse_bytes = sparse->weight_bytes_read - bytes0;
    bytes0 = dense->weight_bytes_read;
    free(run(dense, tokens, n_tok, true));
    uint64_t dense_bytes = dense->weight_bytes_read - bytes0;
    double e_decode = rel_err(s1, sb, n_tok, V), e_dense = rel_err(sb, db, n_tok, V);
    check_decisions("median |h|", name, &g, saved.bits, tol, e_decode);
    CHECK_MSG(e_dense >= (tol > 0 ? 10 * tol : 0.1), "%s: median threshold barely changes the logits (%.3g vs dense)",
              name, e_dense);

    /* (f) Dense reads every FFN row; sparse (no predictor) reads all gate
     * and up rows, and transposed-down rows of the active neurons only. */
    uint64_t want = dense_bytes;
    int64_t active = 0, total = 0;
    for (int64_t il = 0; il < L; il++) {
        const clv_layer *l = &m->layers[il];
        want -= l->ffn_down->bytes * (uint64_t)n_tok;
        want += (uint64_t)g.above[il] * sparse->sparse->layers[il].down_t_row_bytes;
        active += g.above[il];
        total += n_tok * m->hp.n_ff[il];
    }
    CHECK_MSG(sparse_bytes == want, "%s: sparse decode counted %llu bytes, its rows make %llu", name,
              (unsigned long long)sparse_bytes, (unsigned long long)want);
    CHECK_MSG(sparse_bytes < dense_bytes, "%s: sparse decode reads %llu bytes, dense %llu", name,
              (unsigned long long)sparse_bytes, (unsigned long long)dense_bytes);
    CHECK(active > total / 4 && active < 3 * total / 4);
    printf("(c) %-22s median |h|: %4.1f%% active, vs dense %.2e; bytes/token %.0f vs dense %.0f\n", name,
           100.0 * active / total, e_dense, (double)sparse_bytes / n_tok, (double)dense_bytes / n_tok);
    check_layers(m, name, thr, NULL, NULL, tokens, n_tok);
    free(db);
    free(sb);
    free(s1);

    /* (d) A random predictor on top of the threshold. */
    rand_predictor *rp = make_predictor(m, 16, 0.0f);
    clv_ffn_sparsity spp = {.threshold = thr, .predictor = rp->p};
    clv_context *pctx = make_ctx(m, &spp, &obs, n_tok);
    if (pctx) {
        log_reset(&g);
        float *pb = run(pctx, tokens, n_tok, false);
        save_bits(&g, saved.bits);
        log_reset(&g);
        float *p1 = run(pctx, tokens, n_tok, true);
        int64_t zeros = 0;
        for (int64_t il = 0; il < L; il++) zeros += g.zeros[il];
        double e_p = rel_err(p1, pb, n_tok, V);
        s1 = run(sparse, tokens, n_tok, true);
        double e_vs_thr = rel_err(p1, s1, n_tok, V);
        check_decisions("predictor", name, &g, saved.bits, tol, e_p);
        CHECK_MSG(zeros > total / 5 && zeros < 4 * total / 5, "%s: the predictor skipped %lld of %lld", name,
                  (long long)zeros, (long long)total);
        CHECK_MSG(e_vs_thr >= (tol > 0 ? 10 * tol : 0.1), "%s: the predictor changes nothing (%.3g)", name, e_vs_thr);
        printf("(d) %-22s predictor: %4.1f%% skipped by it; vs threshold only %.2e\n", name, 100.0 * zeros / total,
               e_vs_thr);
        free(pb);
        free(p1);
        free(s1);
        check_layers(m, name, thr, NULL, rp->p, tokens, n_tok);
    }
    clv_context_free(pctx);
    free_predictor(m, rp);

    /* A predictor that lets every neuron through: the threshold-only logits. */
    rp = make_predictor(m, 8, 1e6f);
    spp.predictor = rp->p;
    pctx = make_ctx(m, &spp, NULL, n_tok);
    if (pctx) {
        for (int one = 0; one < 2; one++) {
            float *a = run(pctx, tokens, n_tok, one), *b = run(sparse, tokens, n_tok, one);
            CHECK_MSG(memcmp(a, b, (size_t)(n_tok * V) * sizeof(float)) == 0,
                      "%s: an all-active predictor changes the %s logits (%.3g)", name, one ? "decode" : "batch",
                      rel_err(a, b, n_tok, V));
            free(a);
            free(b);
        }
    }
    clv_context_free(pctx);
    free_predictor(m, rp);
done:
    clv_context_free(dense);
    clv_context_free(sparse);
    log_free(&g);
    log_free(&saved);
}

static void check_median_file(const char *name, double tol) {
    clv_model *m = load(name);
    if (!m) return;
    check_median(m, name, prompt, n_prompt, tol);
    clv_model_free(m);
}

/* --- (e) -------------------------------------------------------------------------------------- */

static void expect_refused(clv_model *m, const clv_ffn_sparsity *sp, const char *what, const char *needle) {
    clv_context_params cp = clv_context_default_params();
    cp.n_ctx = 16;
    cp.n_threads = 1;
    cp.sparsity = sp;
    clv_context *ctx = (clv_context *)1;
    clv_status st = clv_context_create(m, &cp, &ctx);
    CHECK_MSG(st == CLV_ERR_ARG && ctx == NULL, "%s: got %s", what, clv_status_str(st));
    CHECK_MSG(strstr(clv_last_error(), needle) != NULL, "%s: message \"%s\" lacks \"%s\"", what, clv_last_error(),
              needle);
    if (st == CLV_OK) clv_context_free(ctx);
}

static void check_errors(void) {
    clv_model *m = load("qwen3.f32.gguf");
    if (!m) return;
    int64_t L = m->hp.n_layer, n_embd = m->hp.n_embd, n_ff = m->hp.n_ff[1];
    float thr[CLV_MAX_LAYERS];
    for (int64_t il = 0; il < L; il++) thr[il] = 0.1f;
    clv_ffn_sparsity sp = {.threshold = NULL};
    expect_refused(m, &sp, "no thresholds", "no threshold array");
    sp.threshold = thr;
    thr[1] = NAN;
    expect_refused(m, &sp, "NaN threshold", "layer 1: threshold nan is not a finite number");
    thr[1] = INFINITY;
    expect_refused(m, &sp, "infinite threshold", "layer 1: threshold inf");
    thr[1] = 0.1f;

    rand_predictor *rp = make_predictor(m, 8, 0.0f);
    sp.predictor = rp->p;
    clv_weight good1 = rp->w1[1], good2 = rp->w2[1];
    rp->w1[1].ne[0] = n_embd + 32;
    expect_refused(m, &sp, "w1 too wide", "layer 1: predictor w1 is {64, 8, 1, 1}, want {32 (n_embd), rank}");
    rp->w1[1] = good1;
    rp->w2[1].ne[1] = n_ff - 32;
    expect_refused(m, &sp, "w2 too narrow", "layer 1: predictor w2 is {8, 224, 1, 1}, want {8 (rank), 256 (n_ff)}");
    rp->w2[1] = good2;
    rp->w2[1].ne[0] = 16;
    expect_refused(m, &sp, "w2 of another rank", "layer 1: predictor w2 is {16, 256, 1, 1}, want {8 (rank)");
    rp->w2[1] = good2;
    rp->w1[1].type = CLV_TYPE_Q8_K;
    expect_refused(m, &sp, "w1 of an activation type", "layer 1: predictor w1 has type Q8_K");
    rp->w1[1] = good1;
    rp->w1[1].row_bytes = 4 * (uint64_t)n_embd;
    expect_refused(m, &sp, "w1 row bytes", "layer 1: predictor w1 has 128 bytes per row");
    rp->w1[1] = good1;
    rp->p[1].w2 = NULL;
    expect_refused(m, &sp, "no w2", "layer 1: the predictor has no w2");
    rp->p[1].w2 = &rp->w2[1];
    rp->p[1].logit_threshold = NAN;
    expect_refused(m, &sp, "NaN logit threshold", "layer 1: predictor logit threshold is NaN");
    rp->p[1].logit_threshold = 0;
    /* All good again: accepted. */
    clv_context *ctx = make_ctx(m, &sp, NULL, 8);
    CHECK(ctx && ctx->sparse && ctx->sparse_bytes > 0);
    clv_context_free(ctx);
    free_predictor(m, rp);
    clv_model_free(m);

    /* Mixture-of-experts layers have no dense FFN to make sparse. */
    m = load("mixtral.q8_0.gguf");
    if (!m) return;
    for (int64_t il = 0; il < m->hp.n_layer; il++) thr[il] = -1.0f;
    thr[m->hp.n_layer - 1] = 0.5f;
    sp = (clv_ffn_sparsity){.threshold = thr};
    char needle[128];
    snprintf(needle, sizeof needle, "layer %lld has no dense gated FFN (mixture of experts)",
             (long long)m->hp.n_layer - 1);
    expect_refused(m, &sp, "MoE layer", needle);
    clv_model_free(m);
}

/* --- (g) -------------------------------------------------------------------------------------- */

static void check_real_model(void) {
    char path[4096];
    test_model_path("SmolLM2-135M-Instruct.Q4_1.gguf", path, sizeof path);
    FILE *f = fopen(path, "rb");
    if (!f) {
        printf("(g) SmolLM2-135M-Instruct.Q4_1.gguf not cached: skipped\n");
        return;
    }
    fclose(f);
    clv_model *m = NULL;
    CHECK_STATUS(clv_model_load(path, NULL, &m), CLV_OK);
    if (!m) return;
    /* "The capital of France is Paris. The capital of Germany" (ids of its tokenizer) */
    static const int32_t tok[] = {504, 3575, 282, 4649, 314, 7042, 30, 378, 3575, 282, 4521};
    check_median(m, "SmolLM2-135M Q4_1", tok, (int64_t)(sizeof tok / sizeof tok[0]), 0);
    clv_model_free(m);
}

/* --- (h) -------------------------------------------------------------------------------------- */

/* Logits of the prompt under sp, as one batch and token by token. */
static void run_both(clv_model *m, const clv_ffn_sparsity *sp, float **batch, float **single) {
    clv_context *ctx = make_ctx(m, sp, NULL, n_prompt);
    *batch = ctx ? run(ctx, prompt, n_prompt, false) : NULL;
    *single = ctx ? run(ctx, prompt, n_prompt, true) : NULL;
    clv_context_free(ctx);
}

static bool same_logits(const float *a, const float *b, const clv_model *m) {
    return a && b && !memcmp(a, b, sizeof(float) * (size_t)(n_prompt * m->hp.n_vocab));
}

/* The predictor's out-of-distribution guard: a z-score limit no input meets
 * leaves every neuron a candidate, which is exactly top-k without a
 * predictor; a limit every input meets is exactly the predictor without a
 * guard. In batches and in decode. */
static void check_guard(clv_model *m, const char *name, const float *thr, const float *keep) {
    int64_t n_embd = m->hp.n_embd;
    rand_predictor *rp = make_predictor(m, 16, 0.0f); /* lets about half through */
    float *mean = calloc((size_t)n_embd, sizeof(float)), *inv_sd = malloc((size_t)n_embd * sizeof(float));
    for (int64_t i = 0; i < n_embd; i++) inv_sd[i] = 1.0f;
    clv_ffn_sparsity plain = {.threshold = thr, .keep = keep};
    clv_ffn_sparsity with = {.threshold = thr, .keep = keep, .predictor = rp->p};
    float *want_b, *want_s, *got_b, *got_s;
    run_both(m, &plain, &want_b, &want_s);
    for (int64_t il = 0; il < m->hp.n_layer; il++) {
        rp->p[il].x_mean = mean, rp->p[il].x_inv_sd = inv_sd, rp->p[il].z_limit = 1e-30f;
    }
    run_both(m, &with, &got_b, &got_s);
    CHECK_MSG(same_logits(got_b, want_b, m) && same_logits(got_s, want_s, m),
              "%s: an untrusted predictor changes the result of top-k", name);
    free(got_b), free(got_s), free(want_b), free(want_s);
    for (int64_t il = 0; il < m->hp.n_layer; il++) rp->p[il].z_limit = 0.0f;
    run_both(m, &with, &want_b, &want_s);
    for (int64_t il = 0; il < m->hp.n_layer; il++) rp->p[il].z_limit = 1e30f;
    run_both(m, &with, &got_b, &got_s);
    CHECK_MSG(same_logits(got_b, want_b, m) && same_logits(got_s, want_s, m),
              "%s: a predictor every input passes the guard of differs from one without a guard", name);
    /* and the predictor does change something here, so the first check could fail */
    float *top_b, *top_s;
    run_both(m, &plain, &top_b, &top_s);
    CHECK_MSG(!same_logits(got_b, top_b, m), "%s: the predictor selects nothing", name);
    /* position 0 never uses the predictor: its logits are top-k's */
    size_t row = sizeof(float) * (size_t)m->hp.n_vocab;
    CHECK_MSG(got_b && top_b && !memcmp(got_b, top_b, row) && got_s && top_s && !memcmp(got_s, top_s, row),
              "%s: the predictor was used at position 0", name);
    printf("    guard: untrusted = plain top-k, always trusted = no guard\n");
    free(got_b), free(got_s), free(want_b), free(want_s), free(top_b), free(top_s);
    free(mean), free(inv_sd);
    free_predictor(m, rp);
}

static void check_top_k(const char *name) {
    clv_model *m = load(name);
    if (!m) return;
    float thr[CLV_MAX_LAYERS], keep[CLV_MAX_LAYERS];
    const float shares[] = {0.5f, 0.25f};
    for (int si = 0; si < 2; si++) {
        for (int64_t il = 0; il < m->hp.n_layer; il++) thr[il] = 0.0f, keep[il] = shares[si];
        printf("(h) %-22s keep %.2f:\n", name, (double)shares[si]);
        check_layers(m, name, thr, keep, NULL, prompt, n_prompt);
        /* a predictor that lets about 80% through, top-k among those */
        rand_predictor *rp = make_predictor(m, 16, 0.8f);
        check_layers(m, name, thr, keep, rp->p, prompt, n_prompt);
        free_predictor(m, rp);
        /* Q4_0 and Q8_0, as trained files hold them: the engine's block
         * matvec over the hidden layer quantized to 8 bits */
        if (m->hp.n_embd % 32 == 0) {
            const int32_t types[] = {CLV_TYPE_Q4_0, CLV_TYPE_Q8_0};
            for (int k = 0; k < 2; k++) {
                rp = make_predictor_typed(m, 32, 0.8f, types[k]);
                printf("    %s predictor:\n", clv_type_name(types[k]));
                check_layers(m, name, thr, keep, rp->p, prompt, n_prompt);
                free_predictor(m, rp);
            }
        }
    }
    check_guard(m, name, thr, keep);
    keep[0] = 0.0f;
    clv_ffn_sparsity sp = {.threshold = thr, .keep = keep};
    expect_refused(m, &sp, "keep 0", "keep share");
    keep[0] = 1.5f;
    expect_refused(m, &sp, "keep 1.5", "keep share");
    clv_model_free(m);
}

int main(void) {
    snprintf(dir, sizeof dir, "%s", arch_fixture_dir());
    clv_json *manifest = arch_fixture_manifest();
    if (!manifest) return 1;
    const clv_json *ids = clv_json_get(manifest, "prompt_token_ids");
    n_prompt = (int64_t)clv_json_count(ids);
    CHECK(n_prompt > 8 && n_prompt <= 64);
    if (n_prompt > 64) n_prompt = 64;
    for (int64_t t = 0; t < n_prompt; t++) prompt[t] = (int32_t)clv_json_int(clv_json_at(ids, (size_t)t));
    clv_json_free(manifest);

    const char *all[] = {"llama_relu.f32.gguf", "llama_relu.q4_k_m.gguf", "qwen3.f32.gguf", "qwen3.q4_k_m.gguf",
                         "llama.q8_0.gguf",     "gemma3.f32.gguf",        "gemma3.q8_0.gguf"};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) check_all_dense(all[i]);

    check_relu_exact("llama_relu.f32.gguf", 1e-5);
    check_relu_exact("llama_relu.q4_k_m.gguf", 0.1);

    check_median_file("qwen3.f32.gguf", 1e-5);
    check_median_file("gemma3.f32.gguf", 1e-5);
    check_median_file("qwen3.q4_k_m.gguf", 0);
    check_median_file("llama.q8_0.gguf", 0);

    check_errors();
    check_real_model();

    check_top_k("qwen3.f32.gguf");
    check_top_k("gemma3.f32.gguf");
    check_top_k("qwen3.q4_k_m.gguf");
    check_top_k("llama.q8_0.gguf");
    return test_finish("test_sparse_ffn");
}
