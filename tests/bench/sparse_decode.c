/* Decode speed, dense against activation-sparse (clv_ffn_sparsity):
 *
 *   bench_sparse_decode MODEL.gguf [n_tokens (64)] [threads (0: one per core)] [repeats (3)]
 *
 * A 64-token English prompt runs densely once with an observer that keeps
 * every layer's |act| and FFN input. From them: per-layer thresholds at the
 * median |act| (about half the neurons skipped), and random rank-64 F16
 * predictors whose logit thresholds are each layer's 40th percentile on the
 * prompt (about 60% predicted active). Then, for each configuration, the
 * prompt is prefilled and n_tokens single-token decode steps are timed
 * (best of the repeats), teacher-forced with dense greedy tokens so every
 * configuration runs the same sequence; top-1 agreement with dense is
 * reported beside the speed. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "context.h"
#include "fp16.h"
#include "model.h"
#include "tokenizer.h"
#include "types.h"

#define RANK 64

static const char *text =
    "The history of the city begins with a small settlement on the river, where traders stopped to rest their "
    "horses and exchange goods. Over the following centuries it grew into a market town, then a regional capital "
    "with a university, a cathedral and a busy port. Today it is known for its old bridges, its museums and the "
    "festival that fills its streets every summer.";

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct calib {
    int64_t n_layer;
    float *act[CLV_MAX_LAYERS]; /* |act| [n_tokens * n_ff] */
    float *x[CLV_MAX_LAYERS];   /* FFN input [n_tokens * n_embd] */
    int64_t n_act[CLV_MAX_LAYERS], n_x[CLV_MAX_LAYERS];
    /* while timing-free passes count: neurons with |act| > thr, and zeros */
    const float *thr;
    int64_t above, zeros, total;
    bool keep;
} calib;

static void observe(void *user, int64_t il, const float *x, const float *act, int64_t n_tokens, int64_t n_embd,
                    int64_t n_ff) {
    calib *c = user;
    if (c->keep) {
        c->act[il] = realloc(c->act[il], (size_t)(c->n_act[il] + n_tokens * n_ff) * sizeof(float));
        c->x[il] = realloc(c->x[il], (size_t)(c->n_x[il] + n_tokens * n_embd) * sizeof(float));
        for (int64_t k = 0; k < n_tokens * n_ff; k++) c->act[il][c->n_act[il]++] = fabsf(act[k]);
        memcpy(c->x[il] + c->n_x[il], x, (size_t)(n_tokens * n_embd) * sizeof(float));
        c->n_x[il] += n_tokens * n_embd;
    }
    for (int64_t k = 0; k < n_tokens * n_ff; k++) {
        c->zeros += act[k] == 0.0f;
        c->above += fabsf(act[k]) > (c->thr ? c->thr[il] : 0.0f);
    }
    c->total += n_tokens * n_ff;
}

static int cmp_float(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

static float quantile(float *v, int64_t n, double q) {
    qsort(v, (size_t)n, sizeof(float), cmp_float);
    int64_t i = (int64_t)(q * (double)n);
    return v[i < n ? i : n - 1];
}

static uint64_t rng_state = 42;
static float rng_uniform(void) {
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return (float)((double)(z >> 11) * 0x1.0p-53) * 2.0f - 1.0f;
}

typedef struct predictors {
    clv_weight w1[CLV_MAX_LAYERS], w2[CLV_MAX_LAYERS];
    clv_neuron_predictor p[CLV_MAX_LAYERS];
} predictors;

static clv_weight f16_weight(int64_t ne0, int64_t ne1, float scale) {
    uint16_t *d = malloc((size_t)(ne0 * ne1) * 2);
    for (int64_t i = 0; i < ne0 * ne1; i++) d[i] = clv_fp32_to_fp16(rng_uniform() * scale);
    return (clv_weight){.name = "predictor", .type = CLV_TYPE_F16, .ne = {ne0, ne1, 1, 1},
                        .row_bytes = (uint64_t)ne0 * 2, .bytes = (uint64_t)(ne0 * ne1) * 2, .data = d};
}

/* Random predictors; logit thresholds at the 40th percentile of their
 * logits on the calibration inputs. */
static void make_predictors(const clv_model *m, calib *c, predictors *pr) {
    int64_t n_embd = m->hp.n_embd;
    for (int64_t il = 0; il < m->hp.n_layer; il++) {
        int64_t n_ff = m->hp.n_ff[il], n_tok = c->n_x[il] / n_embd;
        pr->w1[il] = f16_weight(n_embd, RANK, 1.0f / sqrtf((float)n_embd));
        pr->w2[il] = f16_weight(RANK, n_ff, 1.0f / sqrtf((float)RANK));
        float *logits = malloc((size_t)(n_tok * n_ff) * sizeof(float)), h[RANK];
        const uint16_t *w1 = pr->w1[il].data, *w2 = pr->w2[il].data;
        for (int64_t t = 0; t < n_tok; t++) {
            const float *x = c->x[il] + t * n_embd;
            for (int64_t r = 0; r < RANK; r++) {
                double s = 0;
                for (int64_t i = 0; i < n_embd; i++) s += clv_fp16_to_fp32(w1[r * n_embd + i]) * x[i];
                h[r] = s > 0 ? (float)s : 0.0f;
            }
            for (int64_t j = 0; j < n_ff; j++) {
                double s = 0;
                for (int64_t r = 0; r < RANK; r++) s += clv_fp16_to_fp32(w2[j * RANK + r]) * h[r];
                logits[t * n_ff + j] = (float)s;
            }
        }
        pr->p[il] = (clv_neuron_predictor){.w1 = &pr->w1[il], .w2 = &pr->w2[il],
                                           .logit_threshold = quantile(logits, n_tok * n_ff, 0.4)};
        free(logits);
    }
}

static int32_t argmax(const float *v, int64_t n) {
    int64_t best = 0;
    for (int64_t i = 1; i < n; i++) best = v[i] > v[best] ? i : best;
    return (int32_t)best;
}

typedef struct result {
    double tok_s, bytes_per_tok, active;
    int64_t agree;
} result;

/* Prefill, then n decode steps of `seq` (tokens after the prompt), best of r. */
static int run_config(clv_model *m, const clv_ffn_sparsity *sp, calib *c, const int32_t *prompt, int64_t n_prompt,
                      int32_t *seq, int64_t n, int threads, int repeats, bool greedy, result *res) {
    clv_context_params cp = clv_context_default_params();
    cp.n_ctx = n_prompt + n + 1;
    cp.n_batch = n_prompt;
    cp.n_threads = threads;
    cp.sparsity = sp;
    clv_context *ctx = NULL;
    if (clv_context_create(m, &cp, &ctx)) {
        fprintf(stderr, "bench_sparse_decode: %s\n", clv_last_error());
        return 1;
    }
    int64_t V = m->hp.n_vocab;
    double best = 1e30;
    for (int r = 0; r < repeats + 1; r++) {
        bool count = r == repeats; /* a last, untimed pass counts active neurons */
        clv_ffn_observer obs = {.user = c, .dense = observe};
        ctx->params.observer = count ? &obs : NULL;
        c->above = c->zeros = c->total = 0;
        clv_context_truncate(ctx, 0);
        clv_batch pb = {.n_tokens = n_prompt, .tokens = prompt};
        if (clv_decode(ctx, &pb)) return 1;
        c->above = c->zeros = c->total = 0;
        int32_t next = argmax(clv_context_logits(ctx, 0), V);
        uint64_t b0 = ctx->weight_bytes_read;
        int64_t agree = 0;
        double t0 = now();
        for (int64_t i = 0; i < n; i++) {
            if (greedy) seq[i] = next;
            agree += next == seq[i];
            clv_batch b = {.n_tokens = 1, .tokens = &seq[i]};
            if (clv_decode(ctx, &b)) return 1;
            next = argmax(clv_context_logits(ctx, 0), V);
        }
        double dt = now() - t0;
        if (!count && dt < best) best = dt;
        if (count) {
            res->active = c->total ? (double)c->above / (double)c->total : 1.0;
            res->bytes_per_tok = (double)(ctx->weight_bytes_read - b0) / (double)n;
            res->agree = agree;
        }
        greedy = false; /* the sequence is fixed after the first pass */
    }
    res->tok_s = (double)n / best;
    clv_context_free(ctx);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s MODEL.gguf [n_tokens] [threads] [repeats]\n", argv[0]);
        return 2;
    }
    int64_t n = argc > 2 ? atoll(argv[2]) : 64;
    int threads = argc > 3 ? atoi(argv[3]) : 0, repeats = argc > 4 ? atoi(argv[4]) : 3;
    clv_model *m = NULL;
    clv_tokenizer *tok = NULL;
    if (clv_model_load(argv[1], NULL, &m) || clv_tokenizer_load_gguf(m->gguf, &tok)) {
        fprintf(stderr, "bench_sparse_decode: %s\n", clv_last_error());
        return 1;
    }
    int32_t prompt[512];
    size_t n_prompt = 0;
    clv_tokenize_params tp = clv_tokenize_default_params();
    if (clv_tokenize(tok, text, strlen(text), &tp, prompt, 512, &n_prompt) || n_prompt < 8) {
        fprintf(stderr, "bench_sparse_decode: tokenizing: %s\n", clv_last_error());
        return 1;
    }
    if (n_prompt > 64) n_prompt = 64;
    int64_t L = m->hp.n_layer;

    /* Calibration: a dense pass over the prompt, observed. */
    calib c = {.n_layer = L, .keep = true};
    {
        clv_context_params cp = clv_context_default_params();
        cp.n_ctx = (int64_t)n_prompt;
        clv_ffn_observer obs = {.user = &c, .dense = observe};
        cp.observer = &obs;
        clv_context *ctx = NULL;
        clv_batch b = {.n_tokens = (int64_t)n_prompt, .tokens = prompt};
        if (clv_context_create(m, &cp, &ctx) || clv_decode(ctx, &b)) {
            fprintf(stderr, "bench_sparse_decode: %s\n", clv_last_error());
            return 1;
        }
        clv_context_free(ctx);
        c.keep = false;
    }
    float median[CLV_MAX_LAYERS], zero[CLV_MAX_LAYERS];
    for (int64_t il = 0; il < L; il++) {
        float *tmp = malloc((size_t)c.n_act[il] * sizeof(float));
        memcpy(tmp, c.act[il], (size_t)c.n_act[il] * sizeof(float));
        median[il] = quantile(tmp, c.n_act[il], 0.5);
        zero[il] = 0.0f;
        free(tmp);
    }
    predictors *pr = calloc(1, sizeof *pr);
    make_predictors(m, &c, pr);

    clv_ffn_sparsity s_median = {.threshold = median};
    clv_ffn_sparsity s_pred = {.threshold = zero, .predictor = pr->p};
    clv_ffn_sparsity s_both = {.threshold = median, .predictor = pr->p};
    struct {
        const char *name;
        const clv_ffn_sparsity *sp;
    } configs[] = {
        {"dense", NULL},
        {"threshold (median |act|)", &s_median},
        {"predictor r64 (~60% active)", &s_pred},
        {"predictor + median", &s_both},
    };
    int32_t *seq = malloc((size_t)n * sizeof(int32_t));
    result res[4];
    printf("%s: %lld-token prompt, %lld decode steps, %d threads, best of %d\n", argv[1], (long long)n_prompt,
           (long long)n, threads, repeats);
    printf("| configuration | active neurons | tok/s | vs dense | weight MB/token | top-1 = dense |\n");
    printf("|---|---|---|---|---|---|\n");
    for (int i = 0; i < 4; i++) {
        c.thr = configs[i].sp ? configs[i].sp->threshold : zero;
        if (run_config(m, configs[i].sp, &c, prompt, (int64_t)n_prompt, seq, n, threads, repeats, i == 0, &res[i])) {
            fprintf(stderr, "bench_sparse_decode: %s\n", clv_last_error());
            return 1;
        }
        printf("| %s | %.1f%% | %.1f | %.2fx | %.1f | %lld/%lld |\n", configs[i].name,
               100.0 * (configs[i].sp ? res[i].active : 1.0), res[i].tok_s, res[i].tok_s / res[0].tok_s,
               res[i].bytes_per_tok / 1e6, (long long)res[i].agree, (long long)n);
        fflush(stdout);
    }
    free(seq);
    for (int64_t il = 0; il < L; il++) {
        free(c.act[il]);
        free(c.x[il]);
        free((void *)pr->w1[il].data);
        free((void *)pr->w2[il].data);
    }
    free(pr);
    clv_tokenizer_free(tok);
    clv_model_free(m);
    return 0;
}
