/* Training the neuron predictors from a profile's samples.
 *
 * Per layer: inputs are the sampled FFN inputs, standardised per feature
 * (mean and spread from the training part; folded back into w1 and b1 when
 * exporting, so the engine feeds raw inputs); labels are the samples' active
 * masks. The loss is binary cross-entropy with the active class weighted by
 * pos_weight (missing an active neuron costs more than computing an idle
 * one), minimised by mini-batch Adam with a cosine-decayed step. The last
 * `holdout` share of the samples (later text, so no neighbouring tokens leak
 * into it) is kept out of training; after export to F16 the engine's own
 * forward runs over it and the logit threshold is set to the highest value
 * that still keeps the target recall there.
 *
 * Every product is the project's F32 matmul (kernels/cpu/matvec.h) over
 * mini-batches, split over a thread pool: forward X.W1^T, H.W2^T; backward
 * dZ.W2, and the weight gradients as products of transposed batches. */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dequantize.h"
#include "fp16.h"
#include "neuron_predictor.h"
#include "predictor_internal.h"
#include "quantize.h"
#include "threadpool.h"
#include "types.h"

clv_predictor_train_params clv_predictor_train_default_params(void) {
    return (clv_predictor_train_params){
        .target_recall = 0.99f,
        .rank = 0,
        .epochs = 12,
        .batch = 64,
        .learning_rate = 2e-3f,
        .pos_weight = 0.0f,
        .holdout = 0.15f,
        .seed = 1,
        .n_threads = 0,
        .weight_type = -1,
    };
}

/* The guard's z-score limit is this times the largest z-score in the samples. */
#define GUARD_MARGIN 1.25f

static int cmp_i64_desc(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x < y) - (x > y);
}

int64_t clv_predictor_auto_rank(const clv_profile *p, int64_t il) {
    const clv_profile_layer *pl = &p->layers[il];
    if (pl->n_ff <= 0 || !pl->neuron_active) return 0;
    int64_t f = pl->n_ff, d = p->n_embd;
    int64_t *c = malloc((size_t)f * sizeof *c);
    if (!c) return 32 < d ? 32 : d;
    memcpy(c, pl->neuron_active, (size_t)f * sizeof *c);
    qsort(c, (size_t)f, sizeof *c, cmp_i64_desc);
    double total = 0, run = 0;
    for (int64_t j = 0; j < f; j++) total += (double)c[j];
    int64_t n90 = f;
    for (int64_t j = 0; j < f && total > 0; j++) {
        run += (double)c[j];
        if (run >= 0.9 * total) {
            n90 = j + 1;
            break;
        }
    }
    free(c);
    if (total <= 0) return 0;
    int64_t r = ((n90 / 4) + 31) / 32 * 32;
    /* The predictor is read every token, against rows it saves: at most a
     * thirtieth of gate + up + down's 3 d f multiply-adds (in bytes, Q4_0
     * against a 4-bit FFN about the same share), as a gated FFN at top-k
     * 0.5 and recall 0.99 rules out only 3-4% of gate and up. On SmolLM2
     * and Gemma 3, ranks 64 to 224 predicted no fewer neurons than 32 at
     * the same recall, and SmolLM2 decoded 1.10x of dense at rank 32
     * against 1.01-1.05x at 64 (docs/predictor.md). */
    int64_t cap = (int64_t)(0.1 * (double)d * (double)f / (double)(d + f)) / 32 * 32;
    if (r > cap) r = cap;
    if (r > 1024) r = 1024;
    if (r < 32) r = 32;
    if (r > d) r = d;
    return r;
}

/* --- small helpers ----------------------------------------------------------- */

static uint64_t splitmix64(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static double uniform01(uint64_t *s) { return (double)(splitmix64(s) >> 11) * (1.0 / 9007199254740992.0); }

static float gauss(uint64_t *s) {
    double u1 = 1.0 - uniform01(s), u2 = uniform01(s);
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

static void transpose(const float *src, int64_t rows, int64_t cols, float *dst) {
    /* Tiles keep both sides in cache. */
    for (int64_t i0 = 0; i0 < rows; i0 += 32) {
        for (int64_t j0 = 0; j0 < cols; j0 += 32) {
            int64_t i1 = i0 + 32 < rows ? i0 + 32 : rows, j1 = j0 + 32 < cols ? j0 + 32 : cols;
            for (int64_t i = i0; i < i1; i++) {
                for (int64_t j = j0; j < j1; j++) dst[j * rows + i] = src[i * cols + j];
            }
        }
    }
}

typedef void (*range_fn)(void *ctx, int64_t begin, int64_t end);

typedef struct range_job {
    range_fn fn;
    void *ctx;
    int64_t n, chunk;
} range_job;

static void range_worker(void *p, int ith, int nth) {
    range_job *j = p;
    int64_t b, e;
    clv_threadpool_split(j->n, j->chunk, ith, nth, &b, &e);
    if (b < e) j->fn(j->ctx, b, e);
}

static void parallel_range(clv_threadpool *pool, int64_t n, int64_t chunk, range_fn fn, void *ctx) {
    range_job j = {fn, ctx, n, chunk};
    clv_threadpool_run(pool, range_worker, &j);
}

/* --- one layer's trainer ---------------------------------------------------------- */

typedef struct trainer {
    clv_threadpool *pool;
    int64_t d, r, f, B; /* input width, rank, neurons, batch */
    float pos_weight;
    /* parameters, their gradients and Adam moments: one vector each, laid out
     * W1 [r][d], b1 [r], W2 [f][r], b2 [f] */
    int64_t n_params;
    float *theta, *grad, *m1, *m2;
    float *W1, *b1, *W2, *b2, *gW1, *gb1, *gW2, *gb2;
    /* batch buffers */
    float *X, *XT, *Y, *Hpre, *H, *HT, *Z, *ZT, *W2T, *dH, *dHT;
} trainer;

static void trainer_free(trainer *t) {
    float **bufs[] = {&t->theta, &t->grad, &t->m1, &t->m2, &t->X, &t->XT, &t->Y, &t->Hpre, &t->H,
                      &t->HT, &t->Z, &t->ZT, &t->W2T, &t->dH, &t->dHT};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) {
        free(*bufs[i]);
        *bufs[i] = NULL;
    }
}

static clv_status trainer_init(trainer *t, clv_threadpool *pool, int64_t d, int64_t r, int64_t f, int64_t B) {
    memset(t, 0, sizeof *t);
    t->pool = pool;
    t->d = d, t->r = r, t->f = f, t->B = B;
    t->n_params = r * d + r + f * r + f;
    size_t P = (size_t)t->n_params;
    t->theta = calloc(P, sizeof(float));
    t->grad = calloc(P, sizeof(float));
    t->m1 = calloc(P, sizeof(float));
    t->m2 = calloc(P, sizeof(float));
    t->X = malloc((size_t)(B * d) * sizeof(float));
    t->XT = malloc((size_t)(B * d) * sizeof(float));
    t->Y = malloc((size_t)(B * f) * sizeof(float));
    t->Hpre = malloc((size_t)(B * r) * sizeof(float));
    t->H = malloc((size_t)(B * r) * sizeof(float));
    t->HT = malloc((size_t)(B * r) * sizeof(float));
    t->Z = malloc((size_t)(B * f) * sizeof(float));
    t->ZT = malloc((size_t)(B * f) * sizeof(float));
    t->W2T = malloc((size_t)(r * f) * sizeof(float));
    t->dH = malloc((size_t)(B * r) * sizeof(float));
    t->dHT = malloc((size_t)(B * r) * sizeof(float));
    if (!t->theta || !t->grad || !t->m1 || !t->m2 || !t->X || !t->XT || !t->Y || !t->Hpre || !t->H || !t->HT ||
        !t->Z || !t->ZT || !t->W2T || !t->dH || !t->dHT) {
        trainer_free(t);
        return clv_fail(CLV_ERR_NOMEM, "predictor training: out of memory (rank %lld, n_ff %lld)", (long long)r,
                        (long long)f);
    }
    t->W1 = t->theta, t->b1 = t->W1 + r * d, t->W2 = t->b1 + r, t->b2 = t->W2 + f * r;
    t->gW1 = t->grad, t->gb1 = t->gW1 + r * d, t->gW2 = t->gb1 + r, t->gb2 = t->gW2 + f * r;
    return CLV_OK;
}

/* Sigmoid, weighted cross-entropy and its gradient dL/dz, in place over Z;
 * rows [b, e) of the batch. The gradient is per sample (divided by n). */
typedef struct loss_job {
    trainer *t;
    int64_t n, chunk;
    bool want_loss;
    double *partial; /* [64]: one slot per thread's first chunk */
} loss_job;

static void loss_rows(void *p, int64_t b, int64_t e) {
    loss_job *j = p;
    trainer *t = j->t;
    double loss = 0;
    float pw = t->pos_weight, inv_n = 1.0f / (float)j->n;
    for (int64_t i = b; i < e; i++) {
        float *z = t->Z + i * t->f;
        const float *y = t->Y + i * t->f;
        for (int64_t k = 0; k < t->f; k++) {
            float v = z[k], ex = expf(-fabsf(v)), sig = v >= 0 ? 1.0f / (1.0f + ex) : ex / (1.0f + ex);
            z[k] = (y[k] > 0.5f ? pw * (sig - 1.0f) : sig) * inv_n;
            if (j->want_loss) {
                float l1p = log1pf(ex);
                loss += y[k] > 0.5f ? (double)(pw * ((v < 0 ? -v : 0) + l1p)) : (double)((v > 0 ? v : 0) + l1p);
            }
        }
    }
    j->partial[b / j->chunk] = loss;
}

typedef struct adam_job {
    trainer *t;
    float lr, bc1, bc2;
} adam_job;

static void adam_range(void *p, int64_t b, int64_t e) {
    const adam_job *j = p;
    trainer *t = j->t;
    const float beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f;
    for (int64_t i = b; i < e; i++) {
        float g = t->grad[i];
        float m = t->m1[i] = beta1 * t->m1[i] + (1 - beta1) * g;
        float v = t->m2[i] = beta2 * t->m2[i] + (1 - beta2) * g * g;
        t->theta[i] -= j->lr * (m / j->bc1) / (sqrtf(v / j->bc2) + eps);
    }
}

/* One Adam step on the n samples already in t->X / t->Y; returns the summed
 * loss when want_loss (the logarithms cost a tenth of a step), else 0. */
static double train_step(trainer *t, int64_t n, float lr, int64_t step, bool want_loss) {
    int64_t d = t->d, r = t->r, f = t->f;
    /* forward */
    clv_pred_matmul(t->pool, CLV_TYPE_F32, t->W1, (size_t)d * sizeof(float), d, r, t->X, d, n, t->Hpre, r);
    for (int64_t i = 0; i < n; i++) {
        float *hp = t->Hpre + i * r, *h = t->H + i * r;
        for (int64_t k = 0; k < r; k++) {
            hp[k] += t->b1[k];
            h[k] = hp[k] > 0 ? hp[k] : 0;
        }
    }
    clv_pred_matmul(t->pool, CLV_TYPE_F32, t->W2, (size_t)r * sizeof(float), r, f, t->H, r, n, t->Z, f);
    for (int64_t i = 0; i < n; i++) {
        float *z = t->Z + i * f;
        for (int64_t k = 0; k < f; k++) z[k] += t->b2[k];
    }
    /* loss and dL/dZ (into Z) */
    double partial[64] = {0};
    int64_t chunk = (n + 63) / 64;
    loss_job lj = {t, n, chunk, want_loss, partial};
    parallel_range(t->pool, n, chunk, loss_rows, &lj);
    double loss = 0;
    for (int i = 0; i < 64; i++) loss += partial[i];

    /* b2 and W2 gradients: gW2[j][k] = sum_b dZ[b][j] H[b][k] */
    memset(t->gb2, 0, (size_t)f * sizeof(float));
    for (int64_t i = 0; i < n; i++) {
        const float *z = t->Z + i * f;
        for (int64_t k = 0; k < f; k++) t->gb2[k] += z[k];
    }
    transpose(t->H, n, r, t->HT);
    transpose(t->Z, n, f, t->ZT);
    clv_pred_matmul(t->pool, CLV_TYPE_F32, t->HT, (size_t)n * sizeof(float), n, r, t->ZT, n, f, t->gW2, r);
    /* dH = dZ . W2, through relu */
    transpose(t->W2, f, r, t->W2T);
    clv_pred_matmul(t->pool, CLV_TYPE_F32, t->W2T, (size_t)f * sizeof(float), f, r, t->Z, f, n, t->dH, r);
    memset(t->gb1, 0, (size_t)r * sizeof(float));
    for (int64_t i = 0; i < n; i++) {
        float *dh = t->dH + i * r;
        const float *hp = t->Hpre + i * r;
        for (int64_t k = 0; k < r; k++) {
            dh[k] = hp[k] > 0 ? dh[k] : 0;
            t->gb1[k] += dh[k];
        }
    }
    /* gW1[k][i] = sum_b dHpre[b][k] X[b][i] */
    transpose(t->X, n, d, t->XT);
    transpose(t->dH, n, r, t->dHT);
    clv_pred_matmul(t->pool, CLV_TYPE_F32, t->XT, (size_t)n * sizeof(float), n, d, t->dHT, n, r, t->gW1, d);

    adam_job aj = {t, lr, 1.0f - powf(0.9f, (float)(step + 1)), 1.0f - powf(0.999f, (float)(step + 1))};
    parallel_range(t->pool, t->n_params, 4096, adam_range, &aj);
    return loss;
}

static int cmp_float(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* Trains layer il of s (already given its rank) from pl. */
static clv_status train_layer(clv_predictor_set *s, int64_t il, const clv_profile_layer *pl,
                              const clv_predictor_train_params *prm, clv_threadpool *pool,
                              clv_predictor_progress_fn progress, void *user) {
    clv_predictor_layer *L = &s->layers[il];
    int64_t d = s->n_embd, r = L->rank, f = L->n_ff, N = pl->n_samples, mask_bytes = (f + 7) / 8;
    int64_t n_hold = (int64_t)((double)N * prm->holdout + 0.5);
    if (n_hold < 1) n_hold = 1;
    if (n_hold > N - 1) n_hold = N - 1; /* MIN_SAMPLES >= 2 leaves one to train on */
    int64_t n_train = N - n_hold;
    int64_t B = prm->batch < n_train ? prm->batch : n_train;
    trainer t;
    clv_status st = trainer_init(&t, pool, d, r, f, B);
    if (st) return st;
    float *Xall = malloc((size_t)(N * d) * sizeof(float));
    float *mu = calloc((size_t)d, sizeof(float)), *sd = calloc((size_t)d, sizeof(float));
    float *inv_sd = calloc((size_t)d, sizeof(float));
    int64_t *perm = malloc((size_t)n_train * sizeof *perm);
    float *hbuf = NULL, *zbuf = NULL, *pos = NULL;
    if (!Xall || !mu || !sd || !inv_sd || !perm) {
        st = clv_fail(CLV_ERR_NOMEM, "predictor training: out of memory (layer %lld)", (long long)il);
        goto done;
    }
    for (int64_t i = 0; i < N * d; i++) Xall[i] = clv_fp16_to_fp32(pl->sample_x[i]);

    /* Standardisation from the training part. A floor on the spread keeps
     * w1 / spread inside fp16 for near-constant features. */
    {
        double *s1 = calloc((size_t)d, sizeof(double)), *s2 = calloc((size_t)d, sizeof(double));
        if (!s1 || !s2) {
            free(s1);
            free(s2);
            st = clv_fail(CLV_ERR_NOMEM, "predictor training: out of memory (layer %lld)", (long long)il);
            goto done;
        }
        for (int64_t b = 0; b < n_train; b++) {
            for (int64_t i = 0; i < d; i++) {
                double v = Xall[b * d + i];
                s1[i] += v;
                s2[i] += v * v;
            }
        }
        double mean_sd = 0;
        for (int64_t i = 0; i < d; i++) {
            double m = s1[i] / (double)n_train, var = s2[i] / (double)n_train - m * m;
            mu[i] = (float)m;
            sd[i] = (float)sqrt(var > 0 ? var : 0);
            mean_sd += sd[i];
        }
        mean_sd /= (double)d;
        float floor_sd = (float)(mean_sd > 0 ? 1e-3 * mean_sd : 1.0);
        for (int64_t i = 0; i < d; i++) {
            if (sd[i] < floor_sd) sd[i] = floor_sd;
            inv_sd[i] = 1.0f / sd[i];
        }
        free(s1);
        free(s2);
    }

    /* Per-neuron base rates: b2 starts at their logits, so the network only
     * learns what depends on x. */
    {
        int64_t *cnt = calloc((size_t)f, sizeof *cnt);
        if (!cnt) {
            st = clv_fail(CLV_ERR_NOMEM, "predictor training: out of memory (layer %lld)", (long long)il);
            goto done;
        }
        int64_t tot = 0;
        for (int64_t b = 0; b < n_train; b++) {
            const uint8_t *m = pl->sample_mask + b * mask_bytes;
            for (int64_t j = 0; j < f; j++) cnt[j] += clv_pred_mask_bit(m, j);
        }
        for (int64_t j = 0; j < f; j++) {
            double pj = ((double)cnt[j] + 0.5) / ((double)n_train + 1.0);
            t.b2[j] = (float)log(pj / (1 - pj));
            tot += cnt[j];
        }
        free(cnt);
        double rate = (double)tot / ((double)n_train * (double)f);
        if (prm->pos_weight > 0) t.pos_weight = prm->pos_weight;
        else {
            double w = rate > 0 ? sqrt((1 - rate) / rate) : 10;
            t.pos_weight = (float)(w < 1 ? 1 : w > 10 ? 10 : w);
        }
    }

    uint64_t rng = prm->seed ^ (0xA0761D6478BD642Full * (uint64_t)(il + 1));
    {
        float s1 = sqrtf(2.0f / (float)d), s2 = sqrtf(1.0f / (float)r);
        for (int64_t i = 0; i < r * d; i++) t.W1[i] = s1 * gauss(&rng);
        for (int64_t i = 0; i < f * r; i++) t.W2[i] = s2 * gauss(&rng);
    }
    for (int64_t i = 0; i < n_train; i++) perm[i] = i;

    if (progress) progress(user, il, s->n_layer, 0, prm->epochs, 0);
    int64_t steps_per_epoch = (n_train + B - 1) / B, total_steps = steps_per_epoch * prm->epochs, step = 0;
    for (int ep = 1; ep <= prm->epochs; ep++) {
        for (int64_t i = n_train - 1; i > 0; i--) { /* Fisher-Yates */
            int64_t j = (int64_t)(splitmix64(&rng) % (uint64_t)(i + 1)), tmp = perm[i];
            perm[i] = perm[j];
            perm[j] = tmp;
        }
        double loss = 0;
        int64_t loss_samples = 0;
        for (int64_t b0 = 0; b0 < n_train; b0 += B) {
            int64_t n = n_train - b0 < B ? n_train - b0 : B;
            for (int64_t b = 0; b < n; b++) {
                int64_t src = perm[b0 + b];
                const float *xs = Xall + src * d;
                float *xd = t.X + b * d;
                for (int64_t i = 0; i < d; i++) xd[i] = (xs[i] - mu[i]) * inv_sd[i];
                const uint8_t *m = pl->sample_mask + src * mask_bytes;
                float *y = t.Y + b * f;
                for (int64_t j = 0; j < f; j++) y[j] = (float)clv_pred_mask_bit(m, j);
            }
            double c = 0.5 * (1.0 + cos(3.141592653589793 * (double)step / (double)total_steps));
            float lr = prm->learning_rate * (float)(0.1 + 0.9 * c);
            /* the reported loss is measured on every fourth batch */
            bool want_loss = (b0 / B) % 4 == 0;
            loss += train_step(&t, n, lr, step, want_loss);
            loss_samples += want_loss ? n : 0;
            step++;
        }
        if (progress) progress(user, il, s->n_layer, ep, prm->epochs, loss / ((double)loss_samples * (double)f));
    }

    /* Export: fold the standardisation into w1 and b1 (t.W1 in place), round
     * the rows to the layer's weight type. The bias folds in the rounded
     * weights, so that w1 . mu cancels as the engine computes it. */
    {
        uint8_t *w1 = (uint8_t *)(uintptr_t)L->w1.data, *w2 = (uint8_t *)(uintptr_t)L->w2.data;
        for (int64_t k = 0; k < r && !st; k++) {
            float *wk = t.W1 + k * d;
            for (int64_t i = 0; i < d; i++) wk[i] /= sd[i];
            st = clv_quantize_row(L->w1.type, wk, w1 + (size_t)k * L->w1.row_bytes, d);
            if (!st) st = clv_dequantize_row(L->w1.type, w1 + (size_t)k * L->w1.row_bytes, wk, d);
            double bias = t.b1[k];
            for (int64_t i = 0; i < d; i++) bias -= (double)wk[i] * mu[i];
            L->b1[k] = (float)bias;
        }
        for (int64_t j = 0; j < f && !st; j++)
            st = clv_quantize_row(L->w2.type, t.W2 + j * r, w2 + (size_t)j * L->w2.row_bytes, r);
        memcpy(L->b2, t.b2, (size_t)f * sizeof(float));
        if (st) goto done;
    }

    /* The out-of-distribution guard: the largest z-score of any feature of any
     * sample (held-out ones included), with a margin of a quarter. A new
     * input from the same distribution exceeds the samples' maximum with
     * probability about 1 / (N + 1); inputs the predictor never saw the
     * like of (the first token's massive activations) exceed it by far. */
    {
        float zs = 0.0f;
        for (int64_t b = 0; b < N; b++)
            for (int64_t i = 0; i < d; i++) {
                float z = fabsf(Xall[b * d + i] - mu[i]) * inv_sd[i];
                zs = z > zs ? z : zs;
            }
        memcpy(L->x_mean, mu, (size_t)d * sizeof(float));
        memcpy(L->x_inv_sd, inv_sd, (size_t)d * sizeof(float));
        L->z_limit = GUARD_MARGIN * zs;
    }

    /* Threshold on the held-out samples, through the engine's own forward. */
    hbuf = malloc((size_t)(n_hold * r) * sizeof(float));
    zbuf = malloc((size_t)(n_hold * f) * sizeof(float));
    int64_t n_pos = 0;
    for (int64_t b = n_train; b < N; b++) {
        const uint8_t *m = pl->sample_mask + b * mask_bytes;
        for (int64_t j = 0; j < f; j++) n_pos += clv_pred_mask_bit(m, j);
    }
    pos = malloc((size_t)(n_pos > 0 ? n_pos : 1) * sizeof(float));
    if (!hbuf || !zbuf || !pos) {
        st = clv_fail(CLV_ERR_NOMEM, "predictor training: out of memory (layer %lld)", (long long)il);
        goto done;
    }
    if ((st = clv_predictor_forward(s, il, Xall + n_train * d, n_hold, hbuf, zbuf, pool))) goto done;
    float zmax = -INFINITY;
    int64_t k = 0;
    for (int64_t b = 0; b < n_hold; b++) {
        const uint8_t *m = pl->sample_mask + (n_train + b) * mask_bytes;
        for (int64_t j = 0; j < f; j++) {
            float z = zbuf[b * f + j];
            if (z > zmax) zmax = z;
            if (clv_pred_mask_bit(m, j)) pos[k++] = z;
        }
    }
    if (n_pos > 0) {
        qsort(pos, (size_t)n_pos, sizeof *pos, cmp_float);
        /* At most floor((1 - R) n_pos) positives may fall at or below it. */
        int64_t miss = (int64_t)floor((1.0 - (double)prm->target_recall) * (double)n_pos);
        if (miss >= n_pos) miss = n_pos - 1;
        L->logit_threshold = nextafterf(pos[miss], -INFINITY);
    } else {
        L->logit_threshold = zmax; /* nothing fires here: predict nothing */
    }
    uint64_t tp = 0, fp = 0, fn = 0;
    for (int64_t b = 0; b < n_hold; b++) {
        const uint8_t *m = pl->sample_mask + (n_train + b) * mask_bytes;
        for (int64_t j = 0; j < f; j++) {
            int pred = zbuf[b * f + j] > L->logit_threshold, act = clv_pred_mask_bit(m, j);
            tp += (uint64_t)(pred && act);
            fp += (uint64_t)(pred && !act);
            fn += (uint64_t)(!pred && act);
        }
    }
    double cells = (double)n_hold * (double)f;
    L->recall = tp + fn ? (float)((double)tp / (double)(tp + fn)) : 1.0f;
    L->precision = tp + fp ? (float)((double)tp / (double)(tp + fp)) : 1.0f;
    L->predicted_share = (float)((double)(tp + fp) / cells);
    L->active_share = (float)((double)(tp + fn) / cells);
    L->n_train = n_train;
    L->n_holdout = n_hold;
    clv_pred_refresh_view(s, il);
done:
    free(Xall);
    free(mu);
    free(sd);
    free(inv_sd);
    free(perm);
    free(hbuf);
    free(zbuf);
    free(pos);
    trainer_free(&t);
    return st;
}

/* Fewer samples than this in a layer: no predictor (nothing to hold out). */
#define MIN_SAMPLES 8

clv_status clv_predictor_train(const clv_profile *p, const clv_predictor_train_params *params,
                               clv_predictor_progress_fn progress, void *user, clv_predictor_set **out) {
    *out = NULL;
    clv_predictor_train_params prm = params ? *params : clv_predictor_train_default_params();
    if (prm.weight_type >= 0 && prm.weight_type != CLV_TYPE_F16 && prm.weight_type != CLV_TYPE_Q8_0 &&
        prm.weight_type != CLV_TYPE_Q4_0) {
        return clv_fail(CLV_ERR_ARG, "predictor weights can be F16, Q8_0 or Q4_0, not %s",
                        clv_type_name(prm.weight_type));
    }
    if (!(prm.target_recall > 0 && prm.target_recall <= 1)) {
        return clv_fail(CLV_ERR_ARG, "target recall %g is not in (0, 1]", (double)prm.target_recall);
    }
    if (prm.epochs < 1 || prm.batch < 1 || !(prm.learning_rate > 0) || !(prm.holdout > 0 && prm.holdout < 1) ||
        prm.rank < 0 || prm.rank > 65536 || !(prm.pos_weight >= 0)) {
        return clv_fail(CLV_ERR_ARG, "predictor training: bad parameters (epochs %d, batch %lld, learning rate %g, "
                                     "holdout %g, rank %lld, pos_weight %g)",
                        prm.epochs, (long long)prm.batch, (double)prm.learning_rate, (double)prm.holdout,
                        (long long)prm.rank, (double)prm.pos_weight);
    }
    int64_t n_trainable = 0;
    for (int64_t il = 0; il < p->n_layer; il++) {
        const clv_profile_layer *pl = &p->layers[il];
        if (pl->n_ff > 0 && pl->n_samples >= MIN_SAMPLES && pl->sample_x && pl->sample_mask) n_trainable++;
    }
    if (n_trainable == 0) {
        return clv_fail(CLV_ERR_ARG, "the profile has no dense-FFN layer with at least %d samples to train from "
                                     "(profile the model with samples)",
                        MIN_SAMPLES);
    }
    clv_predictor_set *s = NULL;
    clv_status st = clv_predictor_set_create(p, &s);
    if (st) return st;
    s->target_recall = prm.target_recall;
    clv_threadpool *pool = NULL;
    clv_threadpool_params tp = clv_threadpool_default_params();
    tp.n_threads = prm.n_threads;
    st = clv_threadpool_create(&tp, &pool);
    for (int64_t il = 0; !st && il < p->n_layer; il++) {
        const clv_profile_layer *pl = &p->layers[il];
        if (!(pl->n_ff > 0 && pl->n_samples >= MIN_SAMPLES && pl->sample_x && pl->sample_mask)) continue;
        int64_t rank = prm.rank > 0 ? prm.rank : clv_predictor_auto_rank(p, il);
        if (rank <= 0) rank = 32 < p->n_embd ? 32 : p->n_embd;
        int32_t wtype = prm.weight_type;
        if (wtype < 0) wtype = clv_predictor_weight_type_ok(CLV_TYPE_Q4_0, p->n_embd, rank) ? CLV_TYPE_Q4_0 : CLV_TYPE_F16;
        st = clv_predictor_layer_alloc(s, il, rank, wtype);
        if (!st) st = train_layer(s, il, pl, &prm, pool, progress, user);
        if (st) clv_error_prefix("layer %lld: ", (long long)il);
    }
    clv_threadpool_free(pool);
    if (st) {
        clv_predictor_free(s);
        return st;
    }
    *out = s;
    return CLV_OK;
}
