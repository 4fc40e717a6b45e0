/* Mixture of experts on the CPU. Tokens are grouped by expert so that each
 * expert's weights are read once per batch; each stage is one pass of the
 * thread pool over (expert, row chunk) work items. */
#include <math.h>
#include <string.h>

#include "matvec.h"
#include "ops.h"
#include "ops_cpu.h"
#include "types.h"

/* --- routing: softmax, top-k, optional renormalisation -------------------------- */

typedef struct route_args {
    const float *logits;
    int64_t n_expert, k;
    int32_t *ids;
    float *w;
    bool renormalize;
} route_args;

static void route_tokens(void *p, int64_t b, int64_t e) {
    route_args *a = p;
    for (int64_t t = b; t < e; t++) {
        const float *l = a->logits + t * a->n_expert;
        float mx = -INFINITY;
        for (int64_t i = 0; i < a->n_expert; i++) mx = l[i] > mx ? l[i] : mx;
        double sum = 0;
        for (int64_t i = 0; i < a->n_expert; i++) sum += exp((double)l[i] - mx);
        int32_t *ids = a->ids + t * a->k;
        float *w = a->w + t * a->k;
        /* Top-k by selection: k is small. Ties go to the lower index. */
        for (int64_t j = 0; j < a->k; j++) {
            int64_t best = -1;
            for (int64_t i = 0; i < a->n_expert; i++) {
                bool taken = false;
                for (int64_t q = 0; q < j; q++) taken |= ids[q] == i;
                if (!taken && (best < 0 || l[i] > l[best])) best = i;
            }
            ids[j] = (int32_t)best;
            w[j] = (float)(exp((double)l[best] - mx) / sum);
        }
        if (a->renormalize) {
            float s = 0.0f;
            for (int64_t j = 0; j < a->k; j++) s += w[j];
            for (int64_t j = 0; j < a->k; j++) w[j] /= s;
        }
    }
}

/* --- grouped expert products ------------------------------------------------------ */

typedef struct expert_stage {
    clv_context *ctx;
    const clv_weight *w;     /* 3-D {n_in, n_out, n_expert} */
    const uint8_t *xq;       /* grouped quantized inputs */
    size_t xq_stride;
    float *dst;              /* grouped outputs [A][n_out] */
    const int64_t *offsets;  /* [n_expert + 1] */
    const int32_t *active;   /* experts with tokens */
    int64_t n_active;
    int64_t chunk;           /* rows per work item */
    int64_t chunks_per_expert;
} expert_stage;

static void expert_items(void *p, int64_t b, int64_t e) {
    expert_stage *s = p;
    const clv_weight *w = s->w;
    int64_t n_in = w->ne[0], n_out = w->ne[1];
    uint64_t slice = w->row_bytes * (uint64_t)n_out;
    for (int64_t item = b; item < e; item++) {
        int32_t ex = s->active[item / s->chunks_per_expert];
        int64_t r0 = (item % s->chunks_per_expert) * s->chunk;
        int64_t r1 = r0 + s->chunk < n_out ? r0 + s->chunk : n_out;
        int64_t first = s->offsets[ex], n = s->offsets[ex + 1] - first;
        const uint8_t *wd = (const uint8_t *)w->data + (uint64_t)ex * slice;
        const uint8_t *x = s->xq + (size_t)first * s->xq_stride;
        float *y = s->dst + first * n_out + r0;
        if (n == 1) clv_cpu_matvec(w->type, wd, w->row_bytes, n_in, x, y, r0, r1);
        else clv_cpu_matmul(w->type, wd, w->row_bytes, n_in, x, s->xq_stride, n, y, (size_t)n_out, r0, r1);
    }
}

static void run_expert_stage(clv_context *ctx, expert_stage *s) {
    int64_t n_out = s->w->ne[1];
    int64_t nth = clv_threadpool_n_threads(ctx->pool);
    int64_t chunk = n_out * s->n_active / (nth * 4);
    if (chunk < 16) chunk = 16;
    if (chunk > n_out) chunk = n_out;
    s->chunk = chunk;
    s->chunks_per_expert = (n_out + chunk - 1) / chunk;
    clv_cpu_parallel_for(ctx, s->n_active * s->chunks_per_expert, 1, (double)s->w->ne[0] * (double)chunk,
                         expert_items, s);
}

typedef struct gather_args {
    const uint8_t *src;
    uint8_t *dst;
    size_t row;
    const int32_t *rows; /* source row of each grouped row */
} gather_args;

static void gather_rows(void *p, int64_t b, int64_t e) {
    gather_args *a = p;
    for (int64_t i = b; i < e; i++) memcpy(a->dst + (size_t)i * a->row, a->src + (size_t)a->rows[i] * a->row, a->row);
}

typedef struct combine_args {
    float *dst;
    const float *grouped; /* [A][n_embd] */
    const int32_t *slot_pos;
    const float *w;
    int64_t k, n_embd;
} combine_args;

static void combine_tokens(void *p, int64_t b, int64_t e) {
    combine_args *a = p;
    for (int64_t t = b; t < e; t++) {
        float *d = a->dst + t * a->n_embd;
        memset(d, 0, (size_t)a->n_embd * sizeof(float));
        for (int64_t j = 0; j < a->k; j++) {
            const float *src = a->grouped + (int64_t)a->slot_pos[t * a->k + j] * a->n_embd;
            float wj = a->w[t * a->k + j];
            for (int64_t i = 0; i < a->n_embd; i++) d[i] += wj * src[i];
        }
    }
}

/* Gate, up, activation and down for every assignment, grouped by expert,
 * with 8-bit activations; the result lands in moe_b [A][n_embd]. */
static void moe_quantized(clv_context *ctx, const float *x, const clv_layer *l, int64_t n_tokens, int64_t n_assign,
                          const int32_t *active, int64_t n_active, clv_ffn_act act) {
    clv_scratch *s = &ctx->s;
    int64_t n_embd = ctx->model->hp.n_embd, n_ff = l->ffn_up_exps->ne[1];
    const int64_t *off = s->expert_count;
    /* Gate and up: inputs quantized once per token, gathered per expert. */
    size_t xrow = clv_cpu_activation_bytes(l->ffn_gate_exps->type, n_embd);
    clv_cpu_quantize_activations(ctx, l->ffn_gate_exps->type, x, n_tokens, n_embd, s->xq, xrow);
    gather_args ga = {s->xq, s->xq_grouped, xrow, s->expert_rows};
    clv_cpu_parallel_for(ctx, n_assign, 16, (double)xrow, gather_rows, &ga);
    expert_stage st = {ctx, l->ffn_gate_exps, s->xq_grouped, xrow, s->moe_a, off, active, n_active, 0, 0};
    run_expert_stage(ctx, &st);
    if (clv_cpu_vec_dot_type(l->ffn_up_exps->type) != clv_cpu_vec_dot_type(l->ffn_gate_exps->type)) {
        xrow = clv_cpu_activation_bytes(l->ffn_up_exps->type, n_embd);
        clv_cpu_quantize_activations(ctx, l->ffn_up_exps->type, x, n_tokens, n_embd, s->xq, xrow);
        ga.row = xrow;
        clv_cpu_parallel_for(ctx, n_assign, 16, (double)xrow, gather_rows, &ga);
    }
    st.w = l->ffn_up_exps;
    st.xq_stride = xrow;
    st.dst = s->moe_b;
    run_expert_stage(ctx, &st);
    clv_cpu_op_glu(ctx, s->moe_a, s->moe_a, s->moe_b, n_assign, n_ff, act);

    /* Down, in grouped order. */
    size_t hrow = clv_cpu_activation_bytes(l->ffn_down_exps->type, n_ff);
    clv_cpu_quantize_activations(ctx, l->ffn_down_exps->type, s->moe_a, n_assign, n_ff, s->xq_grouped, hrow);
    st.w = l->ffn_down_exps;
    st.xq = s->xq_grouped;
    st.xq_stride = hrow;
    st.dst = s->moe_b; /* [A][n_embd]; moe_b is sized for the wider of the two */
    run_expert_stage(ctx, &st);
}

/* The same in reference mode (float activations); the result lands in moe_c. */
static void moe_reference(clv_context *ctx, const float *x, const clv_layer *l, int64_t n_assign,
                          const int32_t *active, int64_t n_active, clv_ffn_act act) {
    clv_scratch *s = &ctx->s;
    int64_t n_embd = ctx->model->hp.n_embd, n_ff = l->ffn_up_exps->ne[1];
    const int64_t *off = s->expert_count;
    for (int64_t i = 0; i < n_assign; i++) {
        memcpy(s->moe_c + i * n_embd, x + (int64_t)s->expert_rows[i] * n_embd, (size_t)n_embd * sizeof(float));
    }
    const clv_weight *mats[3] = {l->ffn_gate_exps, l->ffn_up_exps, l->ffn_down_exps};
    for (int stage = 0; stage < 3; stage++) {
        if (stage == 2) clv_cpu_op_glu(ctx, s->moe_a, s->moe_a, s->moe_b, n_assign, n_ff, act);
        const clv_weight *w = mats[stage];
        int64_t n_in = w->ne[0], n_out = w->ne[1];
        const float *in = stage == 2 ? s->moe_a : s->moe_c;
        float *out = stage == 0 ? s->moe_a : stage == 1 ? s->moe_b : s->moe_c;
        for (int64_t i = 0; i < n_active; i++) {
            int32_t ex = active[i];
            clv_weight slice = *w;
            slice.ne[2] = 1;
            slice.data = (const uint8_t *)w->data + (uint64_t)ex * w->row_bytes * (uint64_t)n_out;
            int64_t first = off[ex], n = off[ex + 1] - first;
            clv_cpu_matmul_reference(ctx, out + first * n_out, &slice, in + first * n_in, n);
        }
    }
}

void clv_cpu_op_moe(clv_context *ctx, float *dst, const float *x, const clv_layer *l, int64_t n_tokens,
                    clv_ffn_act act, bool renormalize) {
    const clv_hparams *hp = &ctx->model->hp;
    clv_scratch *s = &ctx->s;
    int64_t n_expert = hp->n_expert, k = hp->n_expert_used, n_embd = hp->n_embd;
    int64_t n_assign = n_tokens * k;

    /* Route. */
    clv_cpu_op_matmul(ctx, s->router, l->ffn_gate_inp, NULL, x, n_tokens);
    route_args ra = {s->router, n_expert, k, s->expert_ids, s->expert_w, renormalize};
    clv_cpu_parallel_for(ctx, n_tokens, 1, (double)(n_expert * k), route_tokens, &ra);

    const clv_ffn_observer *obs = ctx->params.observer;
    if (obs && obs->moe) obs->moe(obs->user, l - ctx->model->layers, x, s->expert_ids, s->expert_w, n_tokens, n_embd, k);
    if (ctx->expert_counts) {
        int64_t *counts = ctx->expert_counts + (l - ctx->model->layers) * n_expert;
        for (int64_t i = 0; i < n_assign; i++) counts[s->expert_ids[i]]++;
    }

    /* Group assignments by expert (counting sort; stable in token order). */
    int64_t *off = s->expert_count;
    memset(off, 0, (size_t)(n_expert + 1) * sizeof *off);
    for (int64_t i = 0; i < n_assign; i++) off[s->expert_ids[i] + 1]++;
    for (int64_t ex = 0; ex < n_expert; ex++) off[ex + 1] += off[ex];
    int32_t *active = s->expert_active;
    int64_t n_active = 0;
    for (int64_t ex = 0; ex < n_expert; ex++) {
        if (off[ex + 1] > off[ex]) active[n_active++] = (int32_t)ex;
    }
    int64_t *fill = s->expert_fill;
    memcpy(fill, off, (size_t)n_expert * sizeof *fill);
    for (int64_t i = 0; i < n_assign; i++) {
        int64_t at = fill[s->expert_ids[i]]++;
        s->expert_rows[at] = (int32_t)(i / k); /* token of grouped row `at` */
        s->slot_pos[i] = (int32_t)at;
    }

    /* Each active expert's three matrices are read once for the batch. */
    const clv_weight *mats[3] = {l->ffn_gate_exps, l->ffn_up_exps, l->ffn_down_exps};
    for (int i = 0; i < 3; i++) ctx->weight_bytes_read += mats[i]->bytes / (uint64_t)n_expert * (uint64_t)n_active;
    const float *grouped_out;
    if (ctx->params.f32_activations) {
        moe_reference(ctx, x, l, n_assign, active, n_active, act);
        grouped_out = s->moe_c;
    } else {
        moe_quantized(ctx, x, l, n_tokens, n_assign, active, n_active, act);
        grouped_out = s->moe_b;
    }
    combine_args ca = {dst, grouped_out, s->slot_pos, s->expert_w, k, n_embd};
    clv_cpu_parallel_for(ctx, n_tokens, 1, (double)(k * n_embd), combine_tokens, &ca);
}
