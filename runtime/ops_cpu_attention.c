/* Attention on the CPU: keys and values go into the layer's cache, then each
 * (query, head) pair streams over its visible keys with an online softmax, so
 * memory stays linear in the context. When there are fewer (query, head)
 * pairs than threads (decode), the key range is split and the partial results
 * are merged (flash-decoding). */
#include <math.h>
#include <string.h>

#include "ops.h"
#include "ops_cpu.h"
#include "types.h"
#include "vec.h"

/* Smallest key range worth a split of its own. */
#define MIN_KEYS_PER_SPLIT 64

typedef struct kv_store_args {
    clv_context *ctx;
    int64_t il;
    const float *k, *v;
    const int32_t *pos;
    int64_t k_width, v_width;
} kv_store_args;

static void store_row(void *cache, int32_t type, int64_t row, int64_t width, const float *src) {
    if (type == CLV_TYPE_F32) memcpy((float *)cache + row * width, src, (size_t)width * sizeof(float));
    else clv_vec_f32_to_f16((uint16_t *)cache + row * width, src, width);
}

static void kv_store_rows(void *p, int64_t b, int64_t e) {
    kv_store_args *a = p;
    int32_t type = a->ctx->params.kv_type;
    for (int64_t t = b; t < e; t++) {
        store_row(a->ctx->k_cache[a->il], type, a->pos[t], a->k_width, a->k + t * a->k_width);
        store_row(a->ctx->v_cache[a->il], type, a->pos[t], a->v_width, a->v + t * a->v_width);
    }
}

typedef struct attn_args {
    clv_context *ctx;
    int64_t il;
    float *out;
    const float *q;
    const int32_t *pos;
    float scale;
    int64_t window;
    int64_t n_head, n_head_kv, hd_k, hd_v;
    int64_t n_split;
    float *partial; /* [item][2 + hd_v]: max, sum, acc */
} attn_args;

/* Row `row` of a cache, from element `off`, n elements, as floats: F32
 * caches are read in place, F16 ones converted into buf. */
static const float *cache_row(const void *cache, int32_t type, int64_t row, int64_t width, int64_t off, int64_t n,
                              float *buf) {
    if (type == CLV_TYPE_F32) return (const float *)cache + row * width + off;
    clv_vec_f16_to_f32(buf, (const uint16_t *)cache + row * width + off, n);
    return buf;
}

/* One work item: query t, the query heads sharing KV head kvh (GQA group),
 * split sp of the visible key range. Each key and value row is read (and
 * converted from F16) once for the whole group. */
static void attend_items(void *p, int64_t b, int64_t e) {
    attn_args *a = p;
    int32_t type = a->ctx->params.kv_type;
    const void *kc = a->ctx->k_cache[a->il];
    const void *vc = a->ctx->v_cache[a->il];
    int64_t group = a->n_head / a->n_head_kv;
    int64_t k_width = a->n_head_kv * a->hd_k, v_width = a->n_head_kv * a->hd_v;
    float kbuf[CLV_MAX_HEAD_DIM], vbuf[CLV_MAX_HEAD_DIM];
    float mx[CLV_MAX_GQA_GROUP], sum[CLV_MAX_GQA_GROUP];
    for (int64_t item = b; item < e; item++) {
        int64_t sp = item % a->n_split;
        int64_t tk = item / a->n_split;
        int64_t t = tk / a->n_head_kv, kvh = tk % a->n_head_kv;
        int64_t hi = a->pos[t]; /* inclusive */
        int64_t lo = a->window > 0 && hi - a->window + 1 > 0 ? hi - a->window + 1 : 0;
        int64_t len = hi - lo + 1;
        int64_t j0 = lo + len * sp / a->n_split, j1 = lo + len * (sp + 1) / a->n_split;
        int64_t h0 = kvh * group;
        const float *q0 = a->q + (t * a->n_head + h0) * a->hd_k;
        float *part0 = a->partial + ((t * a->n_head + h0) * a->n_split + sp) * (2 + a->hd_v);
        size_t part_stride = (size_t)(a->n_split * (2 + a->hd_v)); /* next head, same split */
        for (int64_t g = 0; g < group; g++) {
            mx[g] = -INFINITY;
            sum[g] = 0.0f;
            memset(part0 + g * part_stride + 2, 0, (size_t)a->hd_v * sizeof(float));
        }
        for (int64_t j = j0; j < j1; j++) {
            const float *kr = cache_row(kc, type, j, k_width, kvh * a->hd_k, a->hd_k, kbuf);
            const float *vr = cache_row(vc, type, j, v_width, kvh * a->hd_v, a->hd_v, vbuf);
            for (int64_t g = 0; g < group; g++) {
                float *acc = part0 + g * part_stride + 2;
                float s = clv_vec_dot(q0 + g * a->hd_k, kr, a->hd_k) * a->scale;
                if (s > mx[g]) {
                    float r = expf(mx[g] - s);
                    sum[g] *= r;
                    clv_vec_scale(acc, acc, r, a->hd_v);
                    mx[g] = s;
                }
                float w = expf(s - mx[g]);
                sum[g] += w;
                clv_vec_axpy(acc, w, vr, a->hd_v);
            }
        }
        for (int64_t g = 0; g < group; g++) {
            part0[g * part_stride] = mx[g];
            part0[g * part_stride + 1] = sum[g];
        }
    }
}

static void merge_items(void *p, int64_t b, int64_t e) {
    attn_args *a = p;
    for (int64_t th = b; th < e; th++) {
        float *out = a->out + th * a->hd_v;
        const float *parts = a->partial + th * a->n_split * (2 + a->hd_v);
        float mx = -INFINITY;
        for (int64_t sp = 0; sp < a->n_split; sp++) {
            float m = parts[sp * (2 + a->hd_v)];
            if (m > mx) mx = m;
        }
        float total = 0.0f;
        memset(out, 0, (size_t)a->hd_v * sizeof(float));
        for (int64_t sp = 0; sp < a->n_split; sp++) {
            const float *part = parts + sp * (2 + a->hd_v);
            if (part[1] == 0.0f) continue; /* an empty split */
            float r = expf(part[0] - mx);
            total += part[1] * r;
            for (int64_t i = 0; i < a->hd_v; i++) out[i] += part[2 + i] * r;
        }
        float inv = total > 0.0f ? 1.0f / total : 0.0f;
        for (int64_t i = 0; i < a->hd_v; i++) out[i] *= inv;
    }
}

void clv_cpu_op_attention(clv_context *ctx, int64_t il, float *out, const float *q, const float *k, const float *v,
                          int64_t n_tokens, const int32_t *pos, float scale, int64_t window) {
    const clv_hparams *hp = &ctx->model->hp;
    int64_t n_head = hp->n_head, n_head_kv = hp->n_head_kv[il];
    int64_t hd_k = hp->n_embd_head_k, hd_v = hp->n_embd_head_v;
    kv_store_args st = {ctx, il, k, v, pos, n_head_kv * hd_k, n_head_kv * hd_v};
    clv_cpu_parallel_for(ctx, n_tokens, 8, (double)(st.k_width + st.v_width), kv_store_rows, &st);

    /* Split the key range when there are too few (query, KV head) items to
     * keep every thread busy. */
    int64_t nth = clv_threadpool_n_threads(ctx->pool);
    int64_t items = n_tokens * n_head_kv;
    int64_t n_split = 1;
    int64_t max_keys = pos[n_tokens - 1] + 1;
    if (window > 0 && max_keys > window) max_keys = window;
    if (items < 4 * nth) {
        n_split = (4 * nth + items - 1) / items;
        int64_t by_len = max_keys / MIN_KEYS_PER_SPLIT;
        if (n_split > by_len) n_split = by_len;
        if (n_split < 1) n_split = 1;
    }
    int64_t pairs = n_tokens * n_head;
    CLV_ASSERT(n_head / n_head_kv <= CLV_MAX_GQA_GROUP); /* checked at load */
    CLV_ASSERT((size_t)(pairs * n_split * (2 + hd_v)) <= ctx->s.attn_partial_floats);
    attn_args a = {ctx, il, out, q, pos, scale, window, n_head, n_head_kv, hd_k, hd_v, n_split, ctx->s.attn_partial};
    clv_cpu_parallel_for(ctx, items * n_split, 1,
                         (double)max_keys * (double)(hd_k + hd_v) * (double)(n_head / n_head_kv) / (double)n_split * 2,
                         attend_items, &a);
    clv_cpu_parallel_for(ctx, pairs, 4, (double)(n_split * hd_v), merge_items, &a);
}
