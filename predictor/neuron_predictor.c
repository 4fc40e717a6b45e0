/* The predictor set: per-layer storage, the engine's view of it, the
 * forward pass with the engine's kernels, and recall/precision on a
 * profile's samples. Training is in predictor_train.c, the file in
 * predictor_file.c. */
#include "neuron_predictor.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fp16.h"
#include "matvec.h"
#include "predictor_internal.h"
#include "threadpool.h"
#include "types.h"

typedef struct matmul_job {
    int32_t wtype;
    const void *w;
    size_t row_bytes;
    int64_t n_in, n_rows;
    const void *xq;   /* activations in W's vec dot type */
    size_t xq_stride; /* bytes */
    int64_t n_batch;
    float *y;
    int64_t y_stride;
} matmul_job;

static void matmul_worker(void *p, int ith, int nth) {
    const matmul_job *j = p;
    int64_t r0, r1;
    clv_threadpool_split(j->n_rows, 16, ith, nth, &r0, &r1);
    if (r0 >= r1) return;
    /* clv_cpu_matmul writes y[b * stride + r - r0]: offset y by r0. */
    clv_cpu_matmul(j->wtype, j->w, j->row_bytes, j->n_in, j->xq, j->xq_stride, j->n_batch, j->y + r0,
                   (size_t)j->y_stride, r0, r1);
}

void clv_pred_matmul_q(struct clv_threadpool *pool, int32_t wtype, const void *w, size_t row_bytes, int64_t n_in,
                       int64_t n_rows, const void *xq, size_t xq_stride, int64_t n_batch, float *y, int64_t y_stride) {
    matmul_job j = {wtype, w, row_bytes, n_in, n_rows, xq, xq_stride, n_batch, y, y_stride};
    if (pool) clv_threadpool_run(pool, matmul_worker, &j);
    else matmul_worker(&j, 0, 1);
}

void clv_pred_matmul(struct clv_threadpool *pool, int32_t wtype, const void *w, size_t row_bytes, int64_t n_in,
                     int64_t n_rows, const float *x, int64_t x_stride, int64_t n_batch, float *y, int64_t y_stride) {
    CLV_ASSERT(clv_cpu_vec_dot_type(wtype) == CLV_TYPE_F32);
    clv_pred_matmul_q(pool, wtype, w, row_bytes, n_in, n_rows, x, (size_t)x_stride * sizeof(float), n_batch, y,
                      y_stride);
}

/* --- the set ------------------------------------------------------------------ */

static void refresh_view(clv_predictor_set *s, int64_t il) {
    clv_predictor_layer *L = &s->layers[il];
    /* top-k: threshold 0 marks the layer sparse, the keep share selects */
    s->thresholds[il] = s->top_k && L->act_threshold >= 0 ? 0.0f : L->act_threshold;
    s->keeps[il] = 1.0f - s->sparsity;
    s->sparsity_view.keep = s->top_k ? s->keeps : NULL;
    clv_neuron_predictor *np = &s->predictors[il];
    if (L->rank > 0) {
        *np = (clv_neuron_predictor){&L->w1, L->b1, &L->w2, L->b2, L->logit_threshold, L->x_mean, L->x_inv_sd,
                                     L->z_limit};
    } else {
        memset(np, 0, sizeof *np);
    }
}

static clv_status set_alloc(int64_t n_layer, int64_t n_embd, clv_predictor_set **out) {
    *out = NULL;
    if (n_layer <= 0 || n_layer > CLV_MAX_LAYERS || n_embd <= 0 || n_embd > (1 << 20)) {
        return clv_fail(CLV_ERR_ARG, "predictor set: bad shape (%lld layers, n_embd %lld)", (long long)n_layer,
                        (long long)n_embd);
    }
    clv_predictor_set *s = calloc(1, sizeof *s);
    if (!s) return clv_fail(CLV_ERR_NOMEM, "predictor set: out of memory");
    s->n_layer = n_layer;
    s->n_embd = n_embd;
    s->layers = calloc((size_t)n_layer, sizeof *s->layers);
    s->thresholds = calloc((size_t)n_layer, sizeof *s->thresholds);
    s->keeps = calloc((size_t)n_layer, sizeof *s->keeps);
    s->predictors = calloc((size_t)n_layer, sizeof *s->predictors);
    if (!s->layers || !s->thresholds || !s->keeps || !s->predictors) {
        clv_predictor_free(s);
        return clv_fail(CLV_ERR_NOMEM, "predictor set: out of memory");
    }
    for (int64_t il = 0; il < n_layer; il++) {
        s->layers[il].act_threshold = -1.0f;
        refresh_view(s, il);
    }
    s->sparsity_view.threshold = s->thresholds;
    s->sparsity_view.predictor = s->predictors;
    *out = s;
    return CLV_OK;
}

clv_status clv_pred_set_alloc(int64_t n_layer, int64_t n_embd, clv_predictor_set **out) {
    return set_alloc(n_layer, n_embd, out);
}

void clv_pred_refresh_view(clv_predictor_set *s, int64_t il) { refresh_view(s, il); }

clv_status clv_predictor_set_create(const clv_profile *p, clv_predictor_set **out) {
    CLV_ASSERT(p && out);
    clv_status st = set_alloc(p->n_layer, p->n_embd, out);
    if (st) return st;
    clv_predictor_set *s = *out;
    snprintf(s->arch, sizeof s->arch, "%s", p->arch);
    snprintf(s->model_name, sizeof s->model_name, "%s", p->model_name);
    s->act = p->act;
    s->sparsity = p->sparsity;
    s->top_k = p->top_k;
    for (int64_t il = 0; il < p->n_layer; il++) {
        const clv_profile_layer *pl = &p->layers[il];
        s->layers[il].n_ff = pl->n_ff;
        s->layers[il].act_threshold = pl->n_ff > 0 ? pl->threshold : -1.0f;
        refresh_view(s, il);
    }
    return CLV_OK;
}

bool clv_predictor_weight_type_ok(int32_t type, int64_t n_embd, int64_t rank) {
    if (type == CLV_TYPE_F16) return true;
    if (type != CLV_TYPE_Q8_0 && type != CLV_TYPE_Q4_0) return false;
    int64_t blk = clv_type_get(type)->block_elems;
    return n_embd % blk == 0 && rank % blk == 0;
}

clv_status clv_predictor_layer_alloc(clv_predictor_set *s, int64_t il, int64_t rank, int32_t wtype) {
    CLV_ASSERT(s && il >= 0 && il < s->n_layer);
    clv_predictor_layer *L = &s->layers[il];
    if (rank <= 0 || rank > 65536 || L->n_ff <= 0) {
        return clv_fail(CLV_ERR_ARG, "layer %lld: cannot give a predictor of rank %lld to a layer with n_ff %lld",
                        (long long)il, (long long)rank, (long long)L->n_ff);
    }
    int64_t d = s->n_embd, f = L->n_ff;
    if (!clv_predictor_weight_type_ok(wtype, d, rank)) {
        return clv_fail(CLV_ERR_ARG,
                        "layer %lld: predictor weights of type %s need F16, or Q8_0 or Q4_0 with n_embd (%lld) and the "
                        "rank (%lld) multiples of 32",
                        (long long)il, clv_type_name(wtype), (long long)d, (long long)rank);
    }
    /* w1, w2 (F16, Q8_0 or Q4_0 rows), then b1, b2, x_mean, x_inv_sd (float, 64-byte aligned). */
    uint64_t w1_row = 0, w2_row = 0;
    clv_type_bytes(wtype, d, &w1_row);
    clv_type_bytes(wtype, rank, &w2_row);
    size_t w1b = (size_t)(w1_row * (uint64_t)rank), w2b = (size_t)(w2_row * (uint64_t)f);
    size_t off_b1 = (w1b + w2b + 63) & ~(size_t)63, total = off_b1 + (size_t)(rank + f + 2 * d) * sizeof(float);
    uint8_t *mem = calloc(1, total);
    if (!mem) return clv_fail(CLV_ERR_NOMEM, "layer %lld: out of memory for a rank-%lld predictor", (long long)il,
                              (long long)rank);
    free(L->storage);
    L->storage = mem;
    L->rank = rank;
    snprintf(L->w1_name, sizeof L->w1_name, "blk.%lld.pred_w1", (long long)il);
    snprintf(L->w2_name, sizeof L->w2_name, "blk.%lld.pred_w2", (long long)il);
    L->w1 = (clv_weight){.name = L->w1_name, .type = wtype, .ne = {d, rank, 1, 1}, .row_bytes = w1_row,
                         .bytes = w1b, .data = mem};
    L->w2 = (clv_weight){.name = L->w2_name, .type = wtype, .ne = {rank, f, 1, 1}, .row_bytes = w2_row,
                         .bytes = w2b, .data = mem + w1b};
    L->b1 = (float *)(void *)(mem + off_b1);
    L->b2 = L->b1 + rank;
    L->x_mean = L->b2 + f;
    L->x_inv_sd = L->x_mean + d;
    L->z_limit = 0.0f;
    refresh_view(s, il);
    return CLV_OK;
}

void clv_predictor_free(clv_predictor_set *s) {
    if (!s) return;
    if (s->layers) {
        for (int64_t il = 0; il < s->n_layer; il++) free(s->layers[il].storage);
    }
    free(s->layers);
    free(s->thresholds);
    free(s->keeps);
    free(s->predictors);
    free(s);
}

const clv_ffn_sparsity *clv_predictor_sparsity(const clv_predictor_set *s) { return &s->sparsity_view; }

uint64_t clv_predictor_layer_bytes(const clv_predictor_set *s, int64_t il) {
    const clv_predictor_layer *L = &s->layers[il];
    if (L->rank <= 0) return 0;
    uint64_t guard = L->z_limit > 0 ? (uint64_t)(2 * s->n_embd) * sizeof(float) : 0;
    return L->w1.bytes + L->w2.bytes + (uint64_t)(L->rank + L->n_ff) * sizeof(float) + guard;
}

/* y = W x for n rows of x (n_in floats each, x_stride apart), with x
 * quantized first as the engine's matvec wants it for W's type. */
static clv_status pred_matmul(struct clv_threadpool *pool, const clv_weight *w, const float *x, int64_t x_stride,
                              int64_t n, float *y, int64_t y_stride) {
    int64_t n_in = w->ne[0];
    if (clv_cpu_vec_dot_type(w->type) == CLV_TYPE_F32) {
        clv_pred_matmul(pool, w->type, w->data, w->row_bytes, n_in, w->ne[1], x, x_stride, n, y, y_stride);
        return CLV_OK;
    }
    size_t xq_row = clv_cpu_activation_bytes(w->type, n_in);
    uint8_t *xq = malloc(xq_row * (size_t)n);
    if (!xq) return clv_fail(CLV_ERR_NOMEM, "predictor: out of memory for %lld quantized inputs", (long long)n);
    for (int64_t b = 0; b < n; b++) clv_cpu_quantize_activation(w->type, x + b * x_stride, xq + xq_row * (size_t)b, n_in);
    clv_pred_matmul_q(pool, w->type, w->data, w->row_bytes, n_in, w->ne[1], xq, xq_row, n, y, y_stride);
    free(xq);
    return CLV_OK;
}

clv_status clv_predictor_forward(const clv_predictor_set *s, int64_t il, const float *x, int64_t n, float *h,
                                 float *logits, struct clv_threadpool *pool) {
    const clv_predictor_layer *L = &s->layers[il];
    CLV_ASSERT(L->rank > 0);
    int64_t d = s->n_embd, r = L->rank, f = L->n_ff;
    clv_status st = pred_matmul(pool, &L->w1, x, d, n, h, r);
    if (st) return st;
    for (int64_t i = 0; i < n * r; i++) {
        float v = h[i] + L->b1[i % r];
        h[i] = v > 0 ? v : 0;
    }
    if ((st = pred_matmul(pool, &L->w2, h, r, n, logits, f))) return st;
    for (int64_t b = 0; b < n; b++) {
        float *z = logits + b * f;
        for (int64_t j = 0; j < f; j++) z[j] += L->b2[j];
    }
    return CLV_OK;
}

clv_status clv_predictor_check_model(const clv_predictor_set *s, const clv_model *m) {
    const clv_hparams *hp = &m->hp;
    if (s->n_layer != hp->n_layer) {
        return clv_fail(CLV_ERR_ARG, "the predictor has %lld layers, the model (%s) %lld", (long long)s->n_layer,
                        hp->arch, (long long)hp->n_layer);
    }
    if (s->n_embd != hp->n_embd) {
        return clv_fail(CLV_ERR_ARG, "the predictor is for n_embd %lld, the model (%s) has %lld", (long long)s->n_embd,
                        hp->arch, (long long)hp->n_embd);
    }
    for (int64_t il = 0; il < s->n_layer; il++) {
        if (s->layers[il].n_ff != hp->n_ff[il]) {
            return clv_fail(CLV_ERR_ARG, "layer %lld: the predictor is for n_ff %lld, the model's FFN has %lld",
                            (long long)il, (long long)s->layers[il].n_ff, (long long)hp->n_ff[il]);
        }
    }
    return CLV_OK;
}

/* --- evaluation ----------------------------------------------------------------- */

#define EVAL_CHUNK 128

clv_status clv_predictor_eval(const clv_predictor_set *s, const clv_profile *p, int n_threads,
                              clv_predictor_eval_layer *out) {
    if (p->n_layer != s->n_layer || p->n_embd != s->n_embd) {
        return clv_fail(CLV_ERR_ARG, "the profile is of a model with %lld layers and n_embd %lld, the predictor's has "
                                     "%lld and %lld",
                        (long long)p->n_layer, (long long)p->n_embd, (long long)s->n_layer, (long long)s->n_embd);
    }
    for (int64_t il = 0; il < s->n_layer; il++) {
        if (p->layers[il].n_ff != s->layers[il].n_ff) {
            return clv_fail(CLV_ERR_ARG, "layer %lld: the profile has n_ff %lld, the predictor %lld", (long long)il,
                            (long long)p->layers[il].n_ff, (long long)s->layers[il].n_ff);
        }
    }
    int64_t d = s->n_embd, max_r = 1, max_f = 1;
    for (int64_t il = 0; il < s->n_layer; il++) {
        if (s->layers[il].rank > max_r) max_r = s->layers[il].rank;
        if (s->layers[il].n_ff > max_f) max_f = s->layers[il].n_ff;
    }
    clv_threadpool *pool = NULL;
    clv_threadpool_params tp = clv_threadpool_default_params();
    tp.n_threads = n_threads;
    clv_status st = clv_threadpool_create(&tp, &pool);
    if (st) return st;
    float *x = malloc((size_t)(EVAL_CHUNK * d) * sizeof *x);
    float *h = malloc((size_t)(EVAL_CHUNK * max_r) * sizeof *h);
    float *z = malloc((size_t)(EVAL_CHUNK * max_f) * sizeof *z);
    if (!x || !h || !z) {
        st = clv_fail(CLV_ERR_NOMEM, "predictor eval: out of memory");
        goto done;
    }
    for (int64_t il = 0; il < s->n_layer; il++) {
        const clv_predictor_layer *L = &s->layers[il];
        const clv_profile_layer *pl = &p->layers[il];
        clv_predictor_eval_layer *o = &out[il];
        memset(o, 0, sizeof *o);
        if (L->rank <= 0 || pl->n_samples <= 0 || !pl->sample_x || !pl->sample_mask) continue;
        int64_t f = L->n_ff, mask_bytes = (f + 7) / 8;
        uint64_t tp_n = 0, fp_n = 0, fn_n = 0;
        for (int64_t b0 = 0; b0 < pl->n_samples; b0 += EVAL_CHUNK) {
            int64_t n = pl->n_samples - b0 < EVAL_CHUNK ? pl->n_samples - b0 : EVAL_CHUNK;
            for (int64_t i = 0; i < n * d; i++) x[i] = clv_fp16_to_fp32(pl->sample_x[b0 * d + i]);
            if ((st = clv_predictor_forward(s, il, x, n, h, z, pool))) goto done;
            for (int64_t b = 0; b < n; b++) {
                const uint8_t *mask = pl->sample_mask + (b0 + b) * mask_bytes;
                const float *zb = z + b * f;
                for (int64_t j = 0; j < f; j++) {
                    int pred = zb[j] > L->logit_threshold, act = clv_pred_mask_bit(mask, j);
                    tp_n += (uint64_t)(pred && act);
                    fp_n += (uint64_t)(pred && !act);
                    fn_n += (uint64_t)(!pred && act);
                }
            }
        }
        double cells = (double)pl->n_samples * (double)f;
        o->n_samples = pl->n_samples;
        o->recall = tp_n + fn_n ? (double)tp_n / (double)(tp_n + fn_n) : 1.0;
        o->precision = tp_n + fp_n ? (double)tp_n / (double)(tp_n + fp_n) : 1.0;
        o->predicted_share = (double)(tp_n + fp_n) / cells;
        o->active_share = (double)(tp_n + fn_n) / cells;
    }
done:
    free(x);
    free(h);
    free(z);
    clv_threadpool_free(pool);
    return st;
}
