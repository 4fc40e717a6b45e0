/* CPU implementation of the small ops: embedding, norms, elementwise ops,
 * logits. Matmul, attention and MoE have files of their own. */
#include <math.h>
#include <string.h>

#include "backend.h"
#include "dequantize.h"
#include "ops.h"
#include "ops_cpu.h"
#include "types.h"
#include "vec.h"

/* Below this much work (in element operations) a loop is not worth waking
 * the other threads for. */
#define PARALLEL_THRESHOLD 32768.0

typedef struct parallel_job {
    clv_work_counter counter;
    clv_range_fn fn;
    void *arg;
} parallel_job;

static void parallel_worker(void *p, int ith, int nth) {
    (void)ith;
    (void)nth;
    parallel_job *job = p;
    int64_t b, e;
    while (clv_work_counter_next(&job->counter, &b, &e)) job->fn(job->arg, b, e);
}

void clv_cpu_parallel_for(clv_context *ctx, int64_t n, int64_t chunk, double cost_per_item, clv_range_fn fn,
                          void *arg) {
    if (n <= 0) return;
    if (chunk < 1) chunk = 1;
    if ((double)n * cost_per_item < PARALLEL_THRESHOLD || clv_threadpool_n_threads(ctx->pool) == 1 || n <= chunk) {
        fn(arg, 0, n);
        return;
    }
    parallel_job job = {.fn = fn, .arg = arg};
    clv_work_counter_init(&job.counter, n, chunk);
    clv_threadpool_run(ctx->pool, parallel_worker, &job);
}

/* --- embedding ------------------------------------------------------------------- */

typedef struct embed_args {
    float *dst;
    const clv_weight *emb;
    const int32_t *tokens;
    float scale;
} embed_args;

static void embed_rows(void *p, int64_t b, int64_t e) {
    embed_args *a = p;
    int64_t n = a->emb->ne[0];
    for (int64_t t = b; t < e; t++) {
        float *row = a->dst + t * n;
        const uint8_t *src = (const uint8_t *)a->emb->data + (uint64_t)a->tokens[t] * a->emb->row_bytes;
        clv_status st = clv_dequantize_row(a->emb->type, src, row, n);
        CLV_ASSERT(st == CLV_OK); /* types are checked at load */
        if (a->scale != 1.0f) {
            for (int64_t i = 0; i < n; i++) row[i] *= a->scale;
        }
    }
}

void clv_cpu_op_embed(clv_context *ctx, float *dst, const clv_weight *emb, const int32_t *tokens, int64_t n_tokens,
                      float scale) {
    ctx->weight_bytes_read += emb->row_bytes * (uint64_t)n_tokens;
    embed_args a = {dst, emb, tokens, scale};
    clv_cpu_parallel_for(ctx, n_tokens, 1, (double)emb->ne[0] * 4, embed_rows, &a);
}

/* --- RMS norm --------------------------------------------------------------------- */

typedef struct norm_args {
    float *dst;
    const float *src;
    const float *w;
    int64_t n;
    float eps;
} norm_args;

static void norm_rows(void *p, int64_t b, int64_t e) {
    norm_args *a = p;
    for (int64_t r = b; r < e; r++) clv_vec_rmsnorm(a->dst + r * a->n, a->src + r * a->n, a->w, a->n, a->eps);
}

void clv_cpu_op_rmsnorm(clv_context *ctx, float *dst, const float *src, const clv_weight *weight, int64_t n_rows,
                        int64_t n, float eps) {
    CLV_ASSERT(!weight || (weight->type == CLV_TYPE_F32 && weight->ne[0] == n));
    norm_args a = {dst, src, weight ? weight->data : NULL, n, eps};
    clv_cpu_parallel_for(ctx, n_rows, 4, (double)n * 3, norm_rows, &a);
}

/* --- elementwise ---------------------------------------------------------------------- */

typedef struct add_args {
    float *dst;
    const float *src;
} add_args;

static void add_range(void *p, int64_t b, int64_t e) {
    add_args *a = p;
    clv_vec_add(a->dst + b, a->dst + b, a->src + b, e - b);
}

void clv_cpu_op_add(clv_context *ctx, float *dst, const float *src, int64_t n_tokens, int64_t n) {
    add_args a = {dst, src};
    clv_cpu_parallel_for(ctx, n_tokens * n, 4096, 1, add_range, &a);
}

typedef struct glu_args {
    float *dst;
    const float *gate, *up;
    clv_ffn_act act;
} glu_args;

static void glu_range(void *p, int64_t b, int64_t e) {
    glu_args *a = p;
    switch (a->act) {
    case CLV_ACT_SILU: clv_vec_swiglu(a->dst + b, a->gate + b, a->up + b, e - b); break;
    case CLV_ACT_GELU: clv_vec_geglu(a->dst + b, a->gate + b, a->up + b, e - b); break;
    case CLV_ACT_RELU:
        for (int64_t i = b; i < e; i++) a->dst[i] = (a->gate[i] > 0.0f ? a->gate[i] : 0.0f) * a->up[i];
        break;
    }
}

void clv_cpu_op_glu(clv_context *ctx, float *dst, const float *gate, const float *up, int64_t n_tokens, int64_t n,
                    clv_ffn_act act) {
    glu_args a = {dst, gate, up, act};
    clv_cpu_parallel_for(ctx, n_tokens * n, 2048, 20, glu_range, &a);
}

void clv_cpu_op_ffn(clv_context *ctx, int64_t il, float *dst, const float *x, const clv_weight *gate,
                    const clv_weight *up, const clv_weight *down, int64_t n_tokens, clv_ffn_act act) {
    clv_scratch *s = &ctx->s;
    int64_t n_ff = up->ne[1], n_embd = gate->ne[0];
    const clv_ffn_observer *obs = ctx->params.observer;
    if (clv_cpu_ffn_sparse(ctx, il, dst, x, gate, up, down, n_tokens, act)) return;
    clv_cpu_op_matmul(ctx, s->ffn_a, gate, NULL, x, n_tokens);
    clv_cpu_op_matmul(ctx, s->ffn_b, up, NULL, x, n_tokens);
    clv_cpu_op_glu(ctx, s->ffn_a, s->ffn_a, s->ffn_b, n_tokens, n_ff, act);
    if (il >= 0 && obs && obs->dense) obs->dense(obs->user, il, x, s->ffn_a, n_tokens, n_embd, n_ff);
    clv_cpu_op_matmul(ctx, dst, down, NULL, s->ffn_a, n_tokens);
}

/* --- shared-expert gate ------------------------------------------------------------------ */

typedef struct sgate_args {
    float *dst;
    const float *x, *g;
    int64_t n, n_dst;
} sgate_args;

static void sgate_rows(void *p, int64_t b, int64_t e) {
    sgate_args *a = p;
    for (int64_t t = b; t < e; t++) {
        double d = 0;
        for (int64_t i = 0; i < a->n; i++) d += (double)a->g[i] * a->x[t * a->n + i];
        float s = (float)(1.0 / (1.0 + exp(-d)));
        for (int64_t i = 0; i < a->n_dst; i++) a->dst[t * a->n_dst + i] *= s;
    }
}

void clv_cpu_op_sigmoid_gate(clv_context *ctx, float *dst, const float *x, const clv_weight *gate, int64_t n_tokens,
                             int64_t n_dst) {
    CLV_ASSERT(gate->type == CLV_TYPE_F32);
    sgate_args a = {dst, x, gate->data, gate->ne[0], n_dst};
    clv_cpu_parallel_for(ctx, n_tokens, 1, (double)(gate->ne[0] + n_dst) * 2, sgate_rows, &a);
}

/* --- logits ------------------------------------------------------------------------------ */

void clv_cpu_op_logits(clv_context *ctx, const float *x, int64_t n_tokens, bool all) {
    const clv_model *m = ctx->model;
    int64_t n_embd = m->hp.n_embd;
    const float *rows = all ? x : x + (n_tokens - 1) * n_embd;
    int64_t n = all ? n_tokens : 1;
    clv_cpu_op_rmsnorm(ctx, ctx->s.xb, rows, m->output_norm, n, n_embd, m->hp.norm_eps);
    clv_cpu_op_matmul(ctx, ctx->logits, m->output, NULL, ctx->s.xb, n);
    ctx->n_logits = n;
}

const clv_backend clv_backend_cpu = {
    .name = "cpu",
    .embed = clv_cpu_op_embed,
    .rmsnorm = clv_cpu_op_rmsnorm,
    .matmul = clv_cpu_op_matmul,
    .rope = clv_cpu_op_rope,
    .attention = clv_cpu_op_attention,
    .add = clv_cpu_op_add,
    .glu = clv_cpu_op_glu,
    .ffn = clv_cpu_op_ffn,
    .moe = clv_cpu_op_moe,
    .sigmoid_gate = clv_cpu_op_sigmoid_gate,
    .logits = clv_cpu_op_logits,
};
