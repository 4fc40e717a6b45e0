/* Synthetic models (`cleave mkmodel`): bad options give clear errors; the
 * fast quantizers decode right; tiny models of several presets and types
 * open with the reader, have the planned size, shapes, types and metadata,
 * decode to finite values and do not depend on the thread count; and a
 * Monte-Carlo run on the generated weights (embedding row -> RMSNorm ->
 * router / ReLU gate, as an engine computes them) measures back the planted
 * statistics.
 *
 *   test_mkmodel                  the checks
 *   test_mkmodel --report FILE [TOKENS]
 *       measured vs planted, per layer, for any file mkmodel wrote, over
 *       TOKENS vocabulary rows (default 8192; docs/synthetic-models.md) */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dequantize.h"
#include "gguf.h"
#include "quantize.h"
#include "synthetic_internal.h"
#include "synthetic_model.h"
#include "tensor_stats.h"
#include "test.h"

/* --- simulation on the generated weights -------------------------------------- */

typedef struct layer_measure {
    /* routers */
    double max_err, mean_err, corr;         /* measured vs planted popularity */
    double top10_planted, top10_measured;   /* share of routings of the top 10% experts */
    /* ReLU gates */
    double fire_planted, fire_measured;     /* mean fraction of neurons firing */
    double neuron_corr, neuron_max_err;
    double hot10_planted, hot10_measured;   /* share of firings of the hottest 10% */
} layer_measure;

static double correlation(const double *a, const double *b, int64_t n) {
    double ma = 0, mb = 0, sab = 0, saa = 0, sbb = 0;
    for (int64_t i = 0; i < n; i++) {
        ma += a[i];
        mb += b[i];
    }
    ma /= (double)n;
    mb /= (double)n;
    for (int64_t i = 0; i < n; i++) {
        sab += (a[i] - ma) * (b[i] - mb);
        saa += (a[i] - ma) * (a[i] - ma);
        sbb += (b[i] - mb) * (b[i] - mb);
    }
    return saa > 0 && sbb > 0 ? sab / sqrt(saa * sbb) : 1.0;
}

static int cmp_desc(const void *x, const void *y) {
    double a = *(const double *)x, b = *(const double *)y;
    return (a < b) - (a > b);
}

static double top10_share(const double *v, int64_t n) {
    double *s = malloc((size_t)n * sizeof *s), tot = 0, top = 0;
    memcpy(s, v, (size_t)n * sizeof *s);
    qsort(s, (size_t)n, sizeof *s, cmp_desc);
    int64_t m = (int64_t)ceil(0.1 * (double)n);
    for (int64_t i = 0; i < n; i++) {
        tot += s[i];
        if (i < m) top += s[i];
    }
    free(s);
    return tot > 0 ? top / tot : 0;
}

/* Dequantizes a whole 2D tensor (rows of ne[0]) into a new buffer. */
static float *load_matrix(const clv_gguf *g, const char *name, int64_t *rows, int64_t *cols) {
    const clv_gguf_tensor *t = clv_gguf_find_tensor(g, name);
    if (!t) return NULL;
    int64_t n = clv_gguf_tensor_n_elems(t);
    float *m = malloc((size_t)n * sizeof *m);
    if (!m || clv_dequantize_row(t->type, clv_gguf_tensor_data(g, t), m, n)) {
        free(m);
        return NULL;
    }
    *cols = t->ne[0];
    *rows = n / t->ne[0];
    return m;
}

static int64_t get_int(const clv_gguf *g, const char *key) {
    int64_t v = -1;
    if (clv_gguf_get_i64(g, key, &v)) return -1;
    return v;
}

/* Runs every vocabulary token (up to max_tokens) through embedding ->
 * RMSNorm (ffn_norm weights) -> router top-k / gate > 0 in each layer, and
 * compares the frequencies with the planted ones. Returns the layer count,
 * or -1 when the file has no planted statistics. */
static int simulate(const clv_gguf *g, int64_t max_tokens, layer_measure *out, int max_layers) {
    const char *arch;
    if (clv_gguf_get_str(g, "general.architecture", &arch)) return -1;
    char key[128];
    snprintf(key, sizeof key, "%s.block_count", arch);
    int64_t L = get_int(g, key);
    snprintf(key, sizeof key, "%s.embedding_length", arch);
    int64_t d = get_int(g, key);
    snprintf(key, sizeof key, "%s.expert_used_count", arch);
    int64_t k = get_int(g, key);
    float eps = 1e-5f;
    snprintf(key, sizeof key, "%s.attention.layer_norm_rms_epsilon", arch);
    clv_gguf_get_f32(g, key, &eps);
    const clv_gguf_value *pop = NULL, *fire = NULL;
    clv_gguf_get_arr(g, "cleave.synthetic.router.popularity", CLV_GGUF_F32, &pop);
    clv_gguf_get_arr(g, "cleave.synthetic.ffn.firing_prob", CLV_GGUF_F32, &fire);
    if ((!pop && !fire) || L < 1 || d < 1 || L > max_layers) return -1;

    int64_t n_vocab, cols;
    float *emb = load_matrix(g, "token_embd.weight", &n_vocab, &cols);
    if (!emb) return -1;
    int64_t n_tok = n_vocab < max_tokens ? n_vocab : max_tokens;
    /* normalized tokens, once */
    float *x = malloc((size_t)(n_tok * d) * sizeof *x);
    for (int64_t t = 0; t < n_tok; t++) {
        /* spread the sample over the whole vocabulary */
        const float *e = emb + (t * (n_vocab / n_tok)) * d;
        double ss = 0;
        for (int64_t j = 0; j < d; j++) ss += (double)e[j] * e[j];
        float inv = (float)(1.0 / sqrt(ss / (double)d + eps));
        for (int64_t j = 0; j < d; j++) x[t * d + j] = e[j] * inv;
    }
    free(emb);
    float *xn = malloc((size_t)d * sizeof *xn);
    for (int l = 0; l < L; l++) {
        layer_measure *m = &out[l];
        memset(m, 0, sizeof *m);
        int64_t r1, c1;
        snprintf(key, sizeof key, "blk.%d.ffn_norm.weight", l);
        float *norm = load_matrix(g, key, &r1, &c1);
        CHECK(norm != NULL);
        if (!norm) continue;
        if (pop) {
            int64_t E, cd;
            snprintf(key, sizeof key, "blk.%d.ffn_gate_inp.weight", l);
            float *router = load_matrix(g, key, &E, &cd);
            CHECK(router != NULL && cd == d);
            if (!router) continue;
            double *count = calloc((size_t)E, sizeof *count), *planted = malloc((size_t)E * sizeof *planted);
            double *logit = malloc((size_t)E * sizeof *logit);
            for (int64_t t = 0; t < n_tok; t++) {
                for (int64_t j = 0; j < d; j++) xn[j] = x[t * d + j] * norm[j];
                for (int64_t e = 0; e < E; e++) {
                    double s = 0;
                    for (int64_t j = 0; j < d; j++) s += (double)router[e * d + j] * xn[j];
                    logit[e] = s;
                }
                for (int64_t sel = 0; sel < k; sel++) { /* top k by repeated argmax */
                    int64_t best = 0;
                    for (int64_t e = 1; e < E; e++) {
                        if (logit[e] > logit[best]) best = e;
                    }
                    count[best] += 1.0;
                    logit[best] = -INFINITY;
                }
            }
            for (int64_t e = 0; e < E; e++) {
                count[e] /= (double)n_tok;
                planted[e] = ((const float *)pop->v.arr.data)[l * E + e];
                double err = fabs(count[e] - planted[e]);
                m->max_err = fmax(m->max_err, err);
                m->mean_err += err / (double)E;
            }
            m->corr = correlation(count, planted, E);
            m->top10_planted = top10_share(planted, E);
            m->top10_measured = top10_share(count, E);
            free(count);
            free(planted);
            free(logit);
            free(router);
        }
        if (fire) {
            int64_t n_ff, cd;
            snprintf(key, sizeof key, "blk.%d.ffn_gate.weight", l);
            float *gate = load_matrix(g, key, &n_ff, &cd);
            CHECK(gate != NULL && cd == d);
            if (!gate) continue;
            double *count = calloc((size_t)n_ff, sizeof *count), *planted = malloc((size_t)n_ff * sizeof *planted);
            for (int64_t t = 0; t < n_tok; t++) {
                for (int64_t j = 0; j < d; j++) xn[j] = x[t * d + j] * norm[j];
                for (int64_t i = 0; i < n_ff; i++) {
                    double s = 0;
                    for (int64_t j = 0; j < d; j++) s += (double)gate[i * d + j] * xn[j];
                    if (s > 0) count[i] += 1.0;
                }
            }
            for (int64_t i = 0; i < n_ff; i++) {
                count[i] /= (double)n_tok;
                planted[i] = ((const float *)fire->v.arr.data)[l * n_ff + i];
                m->fire_planted += planted[i] / (double)n_ff;
                m->fire_measured += count[i] / (double)n_ff;
                m->neuron_max_err = fmax(m->neuron_max_err, fabs(count[i] - planted[i]));
            }
            m->neuron_corr = correlation(count, planted, n_ff);
            m->hot10_planted = top10_share(planted, n_ff);
            m->hot10_measured = top10_share(count, n_ff);
            free(count);
            free(planted);
            free(gate);
        }
        free(norm);
    }
    free(xn);
    free(x);
    return (int)L;
}

static void print_measures(const clv_gguf *g, const layer_measure *m, int L) {
    bool router = clv_gguf_find(g, "cleave.synthetic.router.popularity") != NULL;
    if (router) {
        printf("layer  popularity: max |err|  mean |err|  corr   top-10%% share planted  measured\n");
        for (int l = 0; l < L; l++) {
            printf("%5d  %21.4f %11.4f %6.3f %22.3f %9.3f\n", l, m[l].max_err, m[l].mean_err, m[l].corr,
                   m[l].top10_planted, m[l].top10_measured);
        }
    } else {
        printf("layer  firing planted  measured  neuron corr  max |err|  hottest-10%% share planted  measured\n");
        for (int l = 0; l < L; l++) {
            printf("%5d  %14.4f %9.4f %12.4f %10.4f %26.3f %9.3f\n", l, m[l].fire_planted, m[l].fire_measured,
                   m[l].neuron_corr, m[l].neuron_max_err, m[l].hot10_planted, m[l].hot10_measured);
        }
    }
}

static int report(const char *path, int64_t max_tokens) {
    clv_gguf *g;
    if (clv_gguf_open(path, NULL, &g)) {
        fprintf(stderr, "%s\n", clv_last_error());
        return 1;
    }
    layer_measure m[256];
    int L = simulate(g, max_tokens, m, 256);
    if (L < 0) fprintf(stderr, "%s: no planted statistics to measure\n", path);
    else print_measures(g, m, L);
    clv_gguf_free(g);
    return L < 0;
}

/* --- checks --------------------------------------------------------------------- */

static void test_bad_options(void) {
    clv_synth_shape s;
    CHECK_STATUS(clv_synth_shape_from_preset("no-such-model", &s), CLV_ERR_NOT_FOUND);
    CHECK(strstr(clv_last_error(), "unknown shape 'no-such-model'") && strstr(clv_last_error(), "qwen3-30b-a3b"));
    CHECK_STATUS(clv_synth_shape_from_preset("deepseek-v2-lite", &s), CLV_ERR_UNSUPPORTED);
    CHECK(strstr(clv_last_error(), "not available yet"));
    CHECK_STATUS(clv_synth_shape_from_preset("Qwen3-30B-A3B", &s), CLV_OK); /* case does not matter */

    uint32_t ft;
    CHECK_STATUS(clv_synth_parse_type("Q3_Z", &ft), CLV_ERR_ARG);
    CHECK(strstr(clv_last_error(), "unknown type 'Q3_Z'"));
    CHECK_STATUS(clv_synth_parse_type("q8_0", &ft), CLV_OK);
    CHECK_EQ_INT(ft, 7);

    clv_synth_shape before = s;
    CHECK_STATUS(clv_synth_shape_set(&s, "n_bogus=3"), CLV_ERR_ARG);
    CHECK(strstr(clv_last_error(), "unknown key 'n_bogus'"));
    CHECK_STATUS(clv_synth_shape_set(&s, "n_layer=abc"), CLV_ERR_ARG);
    CHECK_STATUS(clv_synth_shape_set(&s, "n_layer"), CLV_ERR_ARG);
    CHECK_STATUS(clv_synth_shape_set(&s, "ffn_activation=gelu"), CLV_ERR_ARG);
    CHECK(!memcmp(&s, &before, sizeof s)); /* left as it was */
    CHECK_STATUS(clv_synth_shape_set(&s, "block_count=3"), CLV_OK);
    CHECK_EQ_INT(s.n_layer, 3);
    CHECK_STATUS(clv_synth_shape_set(&s, "n_layer=2"), CLV_OK);
    CHECK(!strcmp(s.overrides, "block_count=3,n_layer=2"));

    clv_synth_params p = clv_synth_default_params();
    CHECK_STATUS(clv_synth_parse_router_skew("zipf", &p), CLV_ERR_ARG);
    CHECK_STATUS(clv_synth_parse_router_skew("zipf:abc", &p), CLV_ERR_ARG);
    CHECK_STATUS(clv_synth_parse_router_skew("zipf:1.5", &p), CLV_OK);
    CHECK(p.router_law == CLV_SYNTH_LAW_ZIPF && p.router_alpha == 1.5);
    CHECK_STATUS(clv_synth_parse_hot_law("powerlaw:0.8", &p), CLV_OK);
    CHECK_STATUS(clv_synth_parse_hot_law("gauss", &p), CLV_ERR_ARG);
    CHECK_STATUS(clv_synth_parse_recipe("llama.cpp-1999", &p.recipe), CLV_ERR_ARG);

    /* no shape; output directory missing; plants that do not fit the shape */
    clv_synth_params q = clv_synth_default_params();
    clv_synth_report r;
    CHECK_STATUS(clv_synth_plan(&q, &r), CLV_ERR_ARG);
    CHECK(strstr(clv_last_error(), "no shape"));
    CHECK_STATUS(clv_synth_shape_from_preset("llama-3-8b", &q.shape), CLV_OK);
    CHECK_STATUS(clv_synth_generate("/nonexistent-dir-of-cleave/x.gguf", &q, &r), CLV_ERR_IO);
    CHECK(strstr(clv_last_error(), "output directory '/nonexistent-dir-of-cleave' does not exist"));
    CHECK_STATUS(clv_synth_parse_router_skew("zipf:1", &q), CLV_OK);
    CHECK_STATUS(clv_synth_plan(&q, &r), CLV_ERR_ARG);
    CHECK(strstr(clv_last_error(), "Mixture-of-Experts"));
    q.router_law = CLV_SYNTH_LAW_UNIFORM;
    q.ffn_sparsity = 0.1;
    CHECK_STATUS(clv_synth_plan(&q, &r), CLV_ERR_ARG);
    CHECK(strstr(clv_last_error(), "ReLU"));
    q.ffn_sparsity = 0;
    CHECK_STATUS(clv_synth_shape_set(&q.shape, "n_embd=100"), CLV_OK);
    CHECK_STATUS(clv_synth_plan(&q, &r), CLV_ERR_ARG);
    CHECK(strstr(clv_last_error(), "embedding_length 100"));
}

/* The fast quantizers decode (through the reference dequantizer) to nearly
 * what went in, within a small factor of the searching quantizers' error. */
static void test_fast_quantizers(void) {
    const int32_t types[] = {CLV_TYPE_Q4_0, CLV_TYPE_Q4_K, CLV_TYPE_Q5_K, CLV_TYPE_Q6_K};
    const double max_rel[] = {0.15, 0.12, 0.06, 0.04};
    int64_t n = 4096;
    float *x = malloc((size_t)n * sizeof *x), *y = malloc((size_t)n * sizeof *y);
    uint8_t *q = malloc((size_t)n * 2);
    synth_rng r = synth_rng_at(7, 1, 2);
    double ss = 0;
    for (int64_t i = 0; i < n; i++) {
        x[i] = 0.02f * synth_gauss_fast(&r) + (i % 97 == 0 ? 0.1f : 0.0f); /* some outliers */
        ss += (double)x[i] * x[i];
    }
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
        double e_fast = 0, e_ref = 0;
        CHECK_STATUS(synth_quantize_row(types[t], x, q, n), CLV_OK);
        CHECK_STATUS(clv_dequantize_row(types[t], q, y, n), CLV_OK);
        for (int64_t i = 0; i < n; i++) e_fast += (double)(y[i] - x[i]) * (y[i] - x[i]);
        CHECK_STATUS(clv_quantize_row(types[t], x, q, n), CLV_OK);
        CHECK_STATUS(clv_dequantize_row(types[t], q, y, n), CLV_OK);
        for (int64_t i = 0; i < n; i++) e_ref += (double)(y[i] - x[i]) * (y[i] - x[i]);
        double rel = sqrt(e_fast / ss);
        CHECK_MSG(rel < max_rel[t] && e_fast < 2.0 * e_ref, "%s: relative error %.4f (reference %.4f)",
                  clv_type_name(types[t]), rel, sqrt(e_ref / ss));
    }
    CHECK_STATUS(synth_quantize_row(CLV_TYPE_Q4_K, x, q, 100), CLV_ERR_ARG);
    free(x);
    free(y);
    free(q);
}

static void test_planted_maths(void) {
    CHECK(fabs(synth_norm_ppf(0.975) - 1.959964) < 1e-5);
    CHECK(fabs(synth_norm_ppf(1e-6) + 4.753424) < 1e-5);
    CHECK(fabs(synth_norm_cdf(synth_norm_ppf(0.3)) - 0.3) < 1e-12);
    double p[200], sum = 0;
    synth_capped_powerlaw(200, 1.0, 20.0, 1e-5, 0.9, p);
    for (int i = 0; i < 200; i++) sum += p[i];
    CHECK(fabs(sum - 20.0) < 1e-6 && p[0] == 0.9 && p[199] < p[100] && p[199] >= 1e-5);
    /* calibration hits a skewed top-k target on fresh draws */
    double pi[32], mu[32], got[32];
    synth_capped_powerlaw(32, 1.2, 4.0, 1e-4, 0.98, pi);
    double worst = synth_calibrate_topk(pi, 32, 4, 0.05, 11, 16384, mu, got);
    CHECK_MSG(worst < 0.02, "calibration error %.4f", worst);
}

/* Every preset within 2% of the real model's parameter count and of a
 * published Q4_K_M file (planned with the recipe that file was made with). */
static void test_presets_match_real(void) {
    int available = 0;
    for (int i = 0; i < clv_synth_n_presets(); i++) {
        const clv_synth_preset_info *info = clv_synth_preset(i);
        if (info->unavailable) continue;
        available++;
        clv_synth_params p = clv_synth_default_params();
        p.recipe = info->real_q4km_recipe;
        clv_synth_report r;
        CHECK_STATUS(clv_synth_shape_from_preset(info->name, &p.shape), CLV_OK);
        CHECK_STATUS(clv_synth_plan(&p, &r), CLV_OK);
        double dp = (double)r.n_params / info->real_params - 1.0, ds = (double)r.file_bytes / info->real_q4km_bytes - 1.0;
        CHECK_MSG(fabs(dp) < 0.02 && fabs(ds) < 0.02, "%s: params %+.2f%%, Q4_K_M size %+.2f%%", info->name, 100 * dp,
                  100 * ds);
    }
    CHECK_EQ_INT(available, 7);
}

typedef struct tiny {
    const char *preset;
    const char *type;
    const char *sets[12];
    const char *skew, *hot;
    double sparsity;
} tiny;

static uint64_t file_hash(const char *path) {
    FILE *f = fopen(path, "rb");
    uint64_t h = 0xcbf29ce484222325ULL;
    if (!f) return 0;
    int c;
    while ((c = fgetc(f)) != EOF) h = (h ^ (uint8_t)c) * 0x100000001b3ULL;
    fclose(f);
    return h;
}

static bool make_params(const tiny *t, clv_synth_params *p) {
    *p = clv_synth_default_params();
    bool ok = clv_synth_shape_from_preset(t->preset, &p->shape) == CLV_OK &&
              clv_synth_parse_type(t->type, &p->file_type) == CLV_OK;
    for (int i = 0; ok && t->sets[i]; i++) ok = clv_synth_shape_set(&p->shape, t->sets[i]) == CLV_OK;
    if (ok && t->skew) ok = clv_synth_parse_router_skew(t->skew, p) == CLV_OK;
    if (ok && t->hot) ok = clv_synth_parse_hot_law(t->hot, p) == CLV_OK;
    p->ffn_sparsity = t->sparsity;
    p->n_threads = 2;
    return ok;
}

/* Generates, reopens and checks one tiny model; with `measure`, runs the
 * simulation and checks the planted statistics come back. */
static void check_tiny(const tiny *t, bool measure) {
    char path[256];
    snprintf(path, sizeof path, "/tmp/cleave-test-mkmodel-%d.gguf", (int)getpid());
    clv_synth_params p;
    CHECK(make_params(t, &p));
    clv_synth_report plan, made;
    CHECK_STATUS(clv_synth_plan(&p, &plan), CLV_OK);
    CHECK_STATUS(clv_synth_generate(path, &p, &made), CLV_OK);
    CHECK_EQ_INT(made.file_bytes, plan.file_bytes);
    CHECK_EQ_INT(made.n_params, plan.n_params);

    clv_gguf *g = NULL;
    CHECK_STATUS(clv_gguf_open(path, NULL, &g), CLV_OK);
    if (!g) return;
    const clv_synth_shape *s = &p.shape;
    CHECK_EQ_INT(clv_gguf_split_size(g, 0), plan.file_bytes);
    CHECK_EQ_INT(clv_gguf_n_tensors(g), plan.n_tensors);
    const char *arch = "";
    CHECK_STATUS(clv_gguf_get_str(g, "general.architecture", &arch), CLV_OK);
    CHECK(!strcmp(arch, s->arch));
    char key[128];
    uint32_t v = 0;
    snprintf(key, sizeof key, "%s.block_count", arch);
    CHECK_STATUS(clv_gguf_get_u32(g, key, &v), CLV_OK);
    CHECK_EQ_INT(v, s->n_layer);
    snprintf(key, sizeof key, "%s.embedding_length", arch);
    CHECK_STATUS(clv_gguf_get_u32(g, key, &v), CLV_OK);
    CHECK_EQ_INT(v, s->n_embd);
    CHECK_STATUS(clv_gguf_get_u32(g, "general.file_type", &v), CLV_OK);
    CHECK_EQ_INT(v, p.file_type);

    /* tokenizer: every token, types, merges or scores, special ids in range */
    const clv_gguf_value *arr = NULL;
    CHECK_STATUS(clv_gguf_get_arr(g, "tokenizer.ggml.tokens", CLV_GGUF_STRING, &arr), CLV_OK);
    CHECK(arr && (int64_t)arr->v.arr.count == s->n_vocab);
    CHECK_STATUS(clv_gguf_get_arr(g, "tokenizer.ggml.token_type", CLV_GGUF_I32, &arr), CLV_OK);
    CHECK(arr && (int64_t)arr->v.arr.count == s->n_vocab);
    const char *model = "";
    CHECK_STATUS(clv_gguf_get_str(g, "tokenizer.ggml.model", &model), CLV_OK);
    if (!strcmp(model, "gpt2")) {
        CHECK_STATUS(clv_gguf_get_arr(g, "tokenizer.ggml.merges", CLV_GGUF_STRING, &arr), CLV_OK);
        CHECK(arr && arr->v.arr.count > 100 && strchr(arr->v.arr.strs[0].data, ' '));
    } else {
        CHECK(!strcmp(model, "llama"));
        CHECK_STATUS(clv_gguf_get_arr(g, "tokenizer.ggml.scores", CLV_GGUF_F32, &arr), CLV_OK);
    }
    CHECK_STATUS(clv_gguf_get_u32(g, "tokenizer.ggml.eos_token_id", &v), CLV_OK);
    CHECK(v < s->n_vocab);
    const char *tmpl = "";
    CHECK_STATUS(clv_gguf_get_str(g, "tokenizer.chat_template", &tmpl), CLV_OK);
    CHECK(strstr(tmpl, "messages") != NULL);

    /* planted metadata */
    const char *str = "";
    CHECK_STATUS(clv_gguf_get_str(g, "cleave.synthetic.shape", &str), CLV_OK);
    CHECK(!strcmp(str, t->preset));
    uint64_t seed = 0;
    CHECK_STATUS(clv_gguf_get_u64(g, "cleave.synthetic.seed", &seed), CLV_OK);
    CHECK_EQ_INT(seed, p.seed);
    if (s->n_expert > 0) {
        CHECK_STATUS(clv_gguf_get_arr(g, "cleave.synthetic.router.popularity", CLV_GGUF_F32, &arr), CLV_OK);
        CHECK(arr && (int64_t)arr->v.arr.count == s->n_layer * s->n_expert);
        for (int64_t l = 0; arr && l < s->n_layer; l++) {
            double sum = 0;
            for (int64_t e = 0; e < s->n_expert; e++) sum += ((const float *)arr->v.arr.data)[l * s->n_expert + e];
            CHECK_MSG(fabs(sum - (double)s->n_expert_used) < 1e-3, "layer %lld popularity sums to %f", (long long)l, sum);
        }
        CHECK_STATUS(clv_gguf_get_arr(g, "cleave.synthetic.router.alpha_per_layer", CLV_GGUF_F32, &arr), CLV_OK);
        CHECK_STATUS(clv_gguf_get_str(g, "cleave.synthetic.router.summary", &str), CLV_OK);
    }
    if (s->relu && s->n_expert == 0) {
        CHECK_STATUS(clv_gguf_get_arr(g, "cleave.synthetic.ffn.firing_prob", CLV_GGUF_F32, &arr), CLV_OK);
        CHECK(arr && (int64_t)arr->v.arr.count == s->n_layer * s->n_ff);
        float sp = 0;
        CHECK_STATUS(clv_gguf_get_f32(g, "cleave.synthetic.ffn.sparsity", &sp), CLV_OK);
        if (t->sparsity > 0) CHECK(fabs(sp - t->sparsity) < 1e-4);
    }

    /* shapes and types of the named tensors */
    const clv_gguf_tensor *te = clv_gguf_find_tensor(g, "token_embd.weight");
    CHECK(te && te->ne[0] == s->n_embd && te->ne[1] == s->n_vocab);
    const clv_gguf_tensor *out = clv_gguf_find_tensor(g, "output.weight");
    CHECK(out && out->ne[0] == s->n_embd && out->ne[1] == s->n_vocab);
    const clv_gguf_tensor *norm = clv_gguf_find_tensor(g, "blk.0.attn_norm.weight");
    CHECK(norm && norm->type == CLV_TYPE_F32 && norm->n_dims == 1);
    if (s->n_expert > 0) {
        const clv_gguf_tensor *router = clv_gguf_find_tensor(g, "blk.0.ffn_gate_inp.weight");
        CHECK(router && router->type == CLV_TYPE_F32 && router->ne[1] == s->n_expert);
        const clv_gguf_tensor *down = clv_gguf_find_tensor(g, "blk.0.ffn_down_exps.weight");
        CHECK(down && down->n_dims == 3 && down->ne[0] == s->n_ff_exp && down->ne[1] == s->n_embd &&
              down->ne[2] == s->n_expert);
    } else {
        const clv_gguf_tensor *down = clv_gguf_find_tensor(g, "blk.0.ffn_down.weight");
        CHECK(down && down->ne[0] == s->n_ff && down->ne[1] == s->n_embd);
    }
    if (!strcmp(t->type, "Q4_K_M") && s->n_embd % 256 == 0) {
        /* llama.cpp's mix: output Q6_K; attn_v and ffn_down Q6_K in the
         * layers use_more_bits picks (the last of two), Q4_K elsewhere */
        CHECK(out && out->type == CLV_TYPE_Q6_K);
        CHECK(te && te->type == CLV_TYPE_Q4_K);
        const clv_gguf_tensor *v0 = clv_gguf_find_tensor(g, "blk.0.attn_v.weight");
        const clv_gguf_tensor *v1 = clv_gguf_find_tensor(g, "blk.1.attn_v.weight");
        CHECK(v0 && v0->type == CLV_TYPE_Q4_K && v1 && v1->type == CLV_TYPE_Q6_K);
    }

    /* every tensor decodes to finite values */
    for (int64_t i = 0; i < clv_gguf_n_tensors(g); i++) {
        const clv_gguf_tensor *tt = clv_gguf_tensor_at(g, i);
        clv_tensor_stats ts;
        CHECK_STATUS(clv_tensor_stats_compute(g, tt, &ts), CLV_OK);
        CHECK_MSG(ts.nonfinite == 0 && ts.std > 0, "%s: %lld non-finite, std %g", tt->name, (long long)ts.nonfinite,
                  ts.std);
    }

    if (measure) {
        layer_measure m[16];
        int L = simulate(g, 1 << 30, m, 16);
        CHECK_EQ_INT(L, s->n_layer);
        printf("%s %s, measured vs planted:\n", t->preset, t->type);
        if (L > 0) print_measures(g, m, L);
        for (int l = 0; l < L; l++) {
            if (s->n_expert > 0) {
                CHECK_MSG(m[l].mean_err < 0.012 && m[l].max_err < 0.05 && m[l].corr > 0.97,
                          "layer %d: popularity error mean %.4f max %.4f, corr %.3f", l, m[l].mean_err, m[l].max_err,
                          m[l].corr);
                CHECK(fabs(m[l].top10_measured - m[l].top10_planted) < 0.03);
            } else {
                CHECK_MSG(fabs(m[l].fire_measured - m[l].fire_planted) < 0.01 && m[l].neuron_corr > 0.95,
                          "layer %d: firing %.4f vs %.4f, corr %.3f", l, m[l].fire_measured, m[l].fire_planted,
                          m[l].neuron_corr);
                CHECK(fabs(m[l].hot10_measured - m[l].hot10_planted) < 0.03);
            }
        }
    }
    clv_gguf_free(g);

    /* same seed, other thread count: the same bytes */
    if (measure) {
        uint64_t h1 = file_hash(path);
        p.n_threads = 1;
        CHECK_STATUS(clv_synth_generate(path, &p, &made), CLV_OK);
        CHECK(h1 != 0 && file_hash(path) == h1);
    }
    remove(path);
}

int main(int argc, char **argv) {
    if (argc >= 3 && !strcmp(argv[1], "--report")) return report(argv[2], argc > 3 ? atoll(argv[3]) : 8192);
    test_bad_options();
    test_fast_quantizers();
    test_planted_maths();
    test_presets_match_real();

    /* MoE with Zipf routers: 2 layers, hidden 512, 32 experts (8 used) */
    static const tiny moe = {"qwen3-30b-a3b", "Q4_K_M",
                             {"n_layer=2", "n_embd=512", "n_vocab=8192", "n_expert=32", "n_ff_exp=256", "n_head=8",
                              "n_head_kv=2", "head_dim=64", NULL},
                             "zipf:1.2", NULL, 0};
    check_tiny(&moe, true);
    /* without planted skew the routers spread tokens evenly over all experts */
    static const tiny even = {"olmoe-1b-7b", "Q4_K_M",
                              {"n_layer=2", "n_embd=256", "n_vocab=4096", "n_expert=16", "n_expert_used=4", "n_ff_exp=256",
                               "n_head=4", "n_head_kv=4", "head_dim=64", NULL},
                              "uniform", NULL, 0};
    check_tiny(&even, true);
    /* ReLU FFN with power-law neurons: 2 layers, hidden 512, 1024 neurons */
    static const tiny relu = {"relu-llama-13b", "Q4_K_M",
                              {"n_layer=2", "n_embd=512", "n_vocab=4096", "n_ff=1024", "n_head=8", "n_head_kv=8",
                               "head_dim=64", NULL},
                              NULL, "powerlaw:1.0", 0.1};
    check_tiny(&relu, true);
    /* the other whole-file types, other families and tokenizers */
    static const tiny others[] = {
        {.preset = "mixtral-8x7b", .type = "Q8_0",
         .sets = {"n_layer=2", "n_embd=256", "n_ff_exp=256", "n_head=4", "n_head_kv=2", "head_dim=64", NULL}},
        {.preset = "olmoe-1b-7b", .type = "Q4_0",
         .sets = {"n_layer=2", "n_embd=256", "n_vocab=2048", "n_expert=8", "n_expert_used=2", "n_ff_exp=256",
                  "n_head=4", "n_head_kv=4", "head_dim=64", NULL}},
        {.preset = "llama-3-8b", .type = "F16",
         .sets = {"n_layer=2", "n_embd=256", "n_vocab=3000", "n_ff=512", "n_head=4", "n_head_kv=2", "head_dim=64", NULL}},
        {.preset = "llama-2-13b", .type = "Q6_K",
         .sets = {"n_layer=2", "n_embd=256", "n_vocab=2000", "n_ff=512", "n_head=4", "n_head_kv=4", "head_dim=64", NULL}},
        {.preset = "llama-2-13b", .type = "BF16",
         .sets = {"n_layer=1", "n_embd=96", "n_vocab=600", "n_ff=96", "n_head=2", "n_head_kv=2", "head_dim=48", NULL}},
        {.preset = "relu-llama-13b", .type = "Q5_K_M",
         .sets = {"n_layer=2", "n_embd=256", "n_vocab=1000", "n_ff=512", "n_head=4", "n_head_kv=4", "head_dim=64", NULL},
         .hot = "uniform", .sparsity = 0.25},
    };
    for (size_t i = 0; i < sizeof others / sizeof others[0]; i++) check_tiny(&others[i], false);
    return test_finish("test_mkmodel");
}
