/* CPU matrix products: activations are quantized once to the weight type's
 * dot-product partner, then rows of W are split across threads; each thread
 * runs the kernel for its rows over every token (one pass over its rows of W
 * per batch tile). */
#include <string.h>

#include "dequantize.h"
#include "gemm.h"
#include "matvec.h"
#include "ops.h"
#include "ops_cpu.h"
#include "types.h"

typedef struct quant_args {
    int32_t wtype;
    const float *src;
    int64_t n_in;
    uint8_t *xq;
    size_t xq_stride;
} quant_args;

static void quantize_rows(void *p, int64_t b, int64_t e) {
    quant_args *a = p;
    for (int64_t t = b; t < e; t++) {
        clv_cpu_quantize_activation(a->wtype, a->src + t * a->n_in, a->xq + (size_t)t * a->xq_stride, a->n_in);
    }
}

void clv_cpu_quantize_activations(clv_context *ctx, int32_t wtype, const float *src, int64_t n_rows, int64_t n_in,
                                  void *xq, size_t xq_stride) {
    quant_args a = {wtype, src, n_in, xq, xq_stride};
    clv_cpu_parallel_for(ctx, n_rows, 1, (double)n_in * 2, quantize_rows, &a);
}

typedef struct matmul_args {
    const clv_weight *w;
    const uint8_t *xq;
    size_t xq_stride;
    float *dst;
    int64_t n_tokens;
    int64_t n_out;
} matmul_args;

static void matmul_rows(void *p, int64_t r0, int64_t r1) {
    matmul_args *a = p;
    const clv_weight *w = a->w;
    if (a->n_tokens == 1) {
        clv_cpu_matvec(w->type, w->data, w->row_bytes, w->ne[0], a->xq, a->dst + r0, r0, r1);
    } else {
        clv_cpu_matmul(w->type, w->data, w->row_bytes, w->ne[0], a->xq, a->xq_stride, a->n_tokens, a->dst + r0,
                       (size_t)a->n_out, r0, r1);
    }
}

/* Rows per work item: enough to amortize the dispatch, small enough that
 * every thread gets several items. */
static int64_t row_chunk(clv_context *ctx, int64_t n_rows) {
    int64_t nth = clv_threadpool_n_threads(ctx->pool);
    int64_t chunk = n_rows / (nth * 8);
    if (chunk < 4) chunk = 4;
    if (chunk > 256) chunk = 256;
    return chunk;
}

void clv_cpu_matmul_quantized(clv_context *ctx, float *dst, const clv_weight *w, const void *xq, size_t xq_stride,
                              int64_t n_tokens) {
    int64_t n_out = w->ne[1];
    matmul_args a = {w, xq, xq_stride, dst, n_tokens, n_out};
    double cost = (double)w->ne[0] * (double)n_tokens;
    clv_cpu_parallel_for(ctx, n_out, row_chunk(ctx, n_out), cost, matmul_rows, &a);
}

typedef struct bias_args {
    float *dst;
    const float *bias;
    int64_t n;
} bias_args;

static void bias_rows(void *p, int64_t b, int64_t e) {
    bias_args *a = p;
    for (int64_t t = b; t < e; t++) {
        for (int64_t i = 0; i < a->n; i++) a->dst[t * a->n + i] += a->bias[i];
    }
}

/* Reference mode: each row decoded in block-aligned pieces by the scalar
 * dequantizer and dotted with float activations. */
#define REF_PIECE 256

typedef struct ref_args {
    const clv_weight *w;
    const float *src;
    float *dst;
    int64_t n_tokens;
} ref_args;

static void reference_rows(void *p, int64_t r0, int64_t r1) {
    ref_args *a = p;
    const clv_weight *w = a->w;
    int64_t n_in = w->ne[0], n_out = w->ne[1];
    uint64_t piece_bytes = 0;
    float buf[REF_PIECE];
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *row = (const uint8_t *)w->data + (uint64_t)r * w->row_bytes;
        for (int64_t t = 0; t < a->n_tokens; t++) {
            const float *x = a->src + t * n_in;
            double acc = 0;
            for (int64_t i = 0; i < n_in; i += REF_PIECE) {
                int64_t n = n_in - i < REF_PIECE ? n_in - i : REF_PIECE;
                clv_type_bytes(w->type, i, &piece_bytes); /* byte offset of element i */
                clv_status st = clv_dequantize_row(w->type, row + piece_bytes, buf, n);
                CLV_ASSERT(st == CLV_OK);
                for (int64_t k = 0; k < n; k++) acc += (double)buf[k] * x[i + k];
            }
            a->dst[t * n_out + r] = (float)acc;
        }
    }
}

void clv_cpu_matmul_reference(clv_context *ctx, float *dst, const clv_weight *w, const float *src, int64_t n_tokens) {
    ref_args a = {w, src, dst, n_tokens};
    clv_cpu_parallel_for(ctx, w->ne[1], 4, (double)w->ne[0] * (double)n_tokens * 4, reference_rows, &a);
}

typedef struct gemm_job {
    clv_work_counter counter;
    const clv_weight *w;
    const float *src;
    float *dst;
    int64_t n_tokens;
    float *panels;
    size_t panel_floats;
    _Atomic int failed;
} gemm_job;

/* Each thread decodes CLV_GEMM_PANEL_ROWS weight rows at a time into its own
 * panel and multiplies every token with it. */
static void gemm_worker(void *p, int ith, int nth) {
    (void)nth;
    gemm_job *job = p;
    const clv_weight *w = job->w;
    int64_t n_in = w->ne[0], n_out = w->ne[1];
    float *panel = job->panels + (size_t)ith * job->panel_floats;
    clv_dnnl_single_thread();
    int64_t r0, r1;
    while (clv_work_counter_next(&job->counter, &r0, &r1)) {
        for (int64_t r = r0; r < r1; r++) {
            const uint8_t *row = (const uint8_t *)w->data + (uint64_t)r * w->row_bytes;
            clv_status st = clv_dequantize_row(w->type, row, panel + (r - r0) * n_in, n_in);
            CLV_ASSERT(st == CLV_OK); /* types are checked at load */
        }
        if (clv_dnnl_gemm_f32(job->n_tokens, r1 - r0, n_in, job->src, n_in, panel, n_in, job->dst + r0, n_out))
            job->failed = 1;
    }
}

/* The oneDNN path; false when it is off or not built, or oneDNN refused
 * (then the caller computes the product its own way). */
static bool matmul_dnnl(clv_context *ctx, float *dst, const clv_weight *w, const float *src, int64_t n_tokens) {
    int64_t min_batch = ctx->params.gemm_min_batch;
    if (min_batch <= 0 || n_tokens < min_batch || !ctx->s.gemm_panel_floats) return false;
    if ((size_t)(CLV_GEMM_PANEL_ROWS * w->ne[0]) > ctx->s.gemm_panel_floats) return false;
    gemm_job job = {.w = w, .src = src, .dst = dst, .n_tokens = n_tokens, .panels = ctx->s.gemm_panels,
                    .panel_floats = ctx->s.gemm_panel_floats};
    clv_work_counter_init(&job.counter, w->ne[1], CLV_GEMM_PANEL_ROWS);
    clv_threadpool_run(ctx->pool, gemm_worker, &job);
    return !job.failed;
}

void clv_cpu_op_matmul(clv_context *ctx, float *dst, const clv_weight *w, const clv_weight *bias, const float *src,
                       int64_t n_tokens) {
    CLV_ASSERT(n_tokens <= ctx->params.n_batch * (ctx->model->hp.n_expert_used ? ctx->model->hp.n_expert_used : 1));
    int64_t n_in = w->ne[0];
    ctx->weight_bytes_read += w->bytes;
    if (ctx->params.f32_activations) {
        clv_cpu_matmul_reference(ctx, dst, w, src, n_tokens);
    } else if (matmul_dnnl(ctx, dst, w, src, n_tokens)) {
        /* done */
    } else {
        size_t stride = clv_cpu_activation_bytes(w->type, n_in);
        CLV_ASSERT(stride <= ctx->s.xq_row_bytes);
        clv_cpu_quantize_activations(ctx, w->type, src, n_tokens, n_in, ctx->s.xq, stride);
        clv_cpu_matmul_quantized(ctx, dst, w, ctx->s.xq, stride, n_tokens);
    }
    if (bias) {
        CLV_ASSERT(bias->type == CLV_TYPE_F32 && bias->ne[0] == w->ne[1]);
        bias_args b = {dst, bias->data, w->ne[1]};
        clv_cpu_parallel_for(ctx, n_tokens, 8, (double)w->ne[1], bias_rows, &b);
    }
}
