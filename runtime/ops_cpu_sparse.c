/* Activation-sparse dense FFN (clv_ffn_sparsity in context.h) on the CPU.
 *
 * Decode (one token, quantized products): the predictor, when the layer has
 * one (not at position 0, and only for inputs that pass its
 * out-of-distribution guard: predictor_trusted), picks the candidate
 * neurons, otherwise all are candidates; only their gate and up rows are read;
 * h = act(gate) * up is computed for them; neurons with |h| <= threshold
 * are dropped, and of the rest only the layer's `keep` largest |h| stay
 * (per-token top-k); the output is sum_i h_i * down_t[i] over the survivors,
 * with ffn_down transposed at context creation so that a neuron is one
 * contiguous row. Each thread owns a slice of the output, so the sum needs
 * no reduction.
 *
 * Batches and reference mode compute gate and up densely, zero the skipped
 * neurons and run down densely: the same neurons, the same numbers up to
 * rounding (and the transposed down's 8-bit requantization).
 *
 * The observer sees h for every neuron whose rows were computed (including
 * those then dropped by the threshold) and 0 for the neurons the predictor
 * skipped, in both modes. */
#include <math.h>
#include <string.h>

#include "matvec.h"
#include "ops.h"
#include "ops_cpu.h"
#include "top_k.h"
#include "types.h"
#include "vec.h"

/* act in place on n values */
static void apply_act(float *v, int64_t n, clv_ffn_act act) {
    switch (act) {
    case CLV_ACT_SILU: clv_vec_silu(v, v, n); break;
    case CLV_ACT_GELU: clv_vec_gelu(v, v, n); break;
    case CLV_ACT_RELU:
        for (int64_t i = 0; i < n; i++) v[i] = v[i] > 0.0f ? v[i] : 0.0f;
        break;
    }
}

/* The predictor's hidden layer in place: relu(h + b1) over n rows of rank. */
static void hidden_relu(float *h, const float *b1, int64_t rank, int64_t n) {
    for (int64_t i = 0; i < n * rank; i++) {
        float v = h[i] + (b1 ? b1[i % rank] : 0.0f);
        h[i] = v > 0.0f ? v : 0.0f;
    }
}

/* Predictor logits for n_tokens rows of x into sp->pred_logit [n_tokens][n_ff],
 * without b2 (the callers add it where they compare). */
static void predict(clv_context *ctx, const clv_neuron_predictor *p, const float *x, int64_t n_tokens) {
    clv_sparse_state *sp = ctx->sparse;
    int64_t rank = p->w1->ne[1];
    clv_op_matmul(ctx, sp->pred_hidden, p->w1, NULL, x, n_tokens);
    hidden_relu(sp->pred_hidden, p->b1, rank, n_tokens);
    clv_op_matmul(ctx, sp->pred_logit, p->w2, NULL, sp->pred_hidden, n_tokens);
    ctx->weight_bytes_read += (uint64_t)((p->b1 ? rank : 0) + (p->b2 ? p->w2->ne[1] : 0)) * sizeof(float);
}

static inline bool predicted_active(const clv_neuron_predictor *p, const float *logit, int64_t i) {
    return logit[i] + (p->b2 ? p->b2[i] : 0.0f) > p->logit_threshold;
}

/* Whether the predictor may pick the candidates of a token at position pos
 * with FFN input x. Never at position 0: profiles do not sample the first
 * token (the BOS), which is the attention sink of most models and unlike
 * any other; a predictor mispredicting it there damages what every later
 * token attends to (Gemma 3 270M: +3.7% perplexity at recall 0.99, against
 * +0.1% with the first token left to top-k alone). Otherwise the guard
 * (context.h): false when some feature of x lies further from its training
 * mean, in training standard deviations, than any training sample's did
 * (times a margin, in z_limit). */
static bool predictor_trusted(const clv_neuron_predictor *p, int32_t pos, const float *x, int64_t n) {
    if (pos == 0) return false;
    if (!p->x_mean || !(p->z_limit > 0)) return true;
    float zmax = 0.0f;
    for (int64_t i = 0; i < n; i++) {
        float z = fabsf(x[i] - p->x_mean[i]) * p->x_inv_sd[i];
        zmax = z > zmax ? z : zmax;
    }
    return zmax <= p->z_limit; /* NaN inputs fail it too */
}

/* --- per-token top-k (top_k.h) --------------------------------------------------------- */

/* The same on a list of (id, h) in id order, compacted; returns its new
 * length. Without branches: about half the entries are kept, in no pattern a
 * predictor could learn, and a mispredicted branch per entry cost more than
 * the copies (perf: the loop was most of the sparse FFN's own time). */
static int64_t keep_top_list(int32_t *ids, float *h, int64_t n, int64_t k, float *scratch) {
    if (k >= n) return n;
    int64_t ties, m = 0;
    float t = clv_top_k_abs(h, n, k, scratch, &ties);
    for (int64_t i = 0; i < n; i++) {
        float v = h[i], a = fabsf(v);
        int64_t gt = a > t, eq = a == t;
        int64_t take = gt | (eq & (ties > 0)); /* the first `ties` entries equal to t */
        ties -= eq;
        ids[m] = ids[i]; /* m <= i: read before written */
        h[m] = v;
        m += take;
    }
    return m;
}

/* --- batches and reference mode: dense, masked ------------------------------------------ */

typedef struct mask_args {
    float *a;             /* gate -> act, [n_tokens][n_ff] */
    const float *b;       /* up */
    const float *logit;   /* predictor logits or NULL */
    const uint8_t *trusted; /* [n_tokens]: the guard's verdict per token */
    const clv_neuron_predictor *p;
    float *scratch;       /* [n_tokens][n_ff] */
    int64_t n_ff, keep;
    float threshold;
    clv_ffn_act act;
} mask_args;

static void act_mask_range(void *arg, int64_t b, int64_t e) {
    mask_args *m = arg;
    apply_act(m->a + b, e - b, m->act);
    if (!m->logit) return;
    for (int64_t k = b; k < e; k++) {
        int64_t t = k / m->n_ff;
        if (m->trusted[t] && !predicted_active(m->p, m->logit + t * m->n_ff, k % m->n_ff)) m->a[k] = 0.0f;
    }
}

static void mul_range(void *arg, int64_t b, int64_t e) {
    mask_args *m = arg;
    clv_vec_mul(m->a + b, m->a + b, m->b + b, e - b);
}

static void threshold_range(void *arg, int64_t b, int64_t e) {
    mask_args *m = arg;
    for (int64_t k = b; k < e; k++)
        if (!(fabsf(m->a[k]) > m->threshold)) m->a[k] = 0.0f;
}

static void top_range(void *arg, int64_t b, int64_t e) {
    mask_args *m = arg;
    for (int64_t t = b; t < e; t++) clv_top_k_abs_keep(m->a + t * m->n_ff, m->n_ff, m->keep, m->scratch + t * m->n_ff);
}

static void ffn_masked(clv_context *ctx, int64_t il, float *dst, const float *x, const clv_weight *gate,
                       const clv_weight *up, const clv_weight *down, int64_t n_tokens, clv_ffn_act act) {
    const clv_sparse_layer *sl = &ctx->sparse->layers[il];
    clv_scratch *s = &ctx->s;
    int64_t n_ff = up->ne[1], n_embd = gate->ne[0];
    clv_op_matmul(ctx, s->ffn_a, gate, NULL, x, n_tokens);
    clv_op_matmul(ctx, s->ffn_b, up, NULL, x, n_tokens);
    if (sl->predictor) {
        predict(ctx, sl->predictor, x, n_tokens);
        for (int64_t t = 0; t < n_tokens; t++)
            ctx->sparse->pred_trusted[t] = predictor_trusted(sl->predictor, s->pos[t], x + t * n_embd, n_embd);
    }
    mask_args m = {s->ffn_a, s->ffn_b, sl->predictor ? ctx->sparse->pred_logit : NULL, ctx->sparse->pred_trusted,
                   sl->predictor, s->ffn_b, n_ff, sl->keep, sl->threshold, act};
    clv_cpu_parallel_for(ctx, n_tokens * n_ff, 2048, 20, act_mask_range, &m);
    clv_cpu_parallel_for(ctx, n_tokens * n_ff, 2048, 2, mul_range, &m);
    const clv_ffn_observer *obs = ctx->params.observer;
    if (obs && obs->dense) obs->dense(obs->user, il, x, s->ffn_a, n_tokens, n_embd, n_ff);
    clv_cpu_parallel_for(ctx, n_tokens * n_ff, 2048, 2, threshold_range, &m);
    /* up is spent: its rows are the selection's scratch */
    if (sl->keep < n_ff) clv_cpu_parallel_for(ctx, n_tokens, 1, (double)n_ff * 8, top_range, &m);
    clv_op_matmul(ctx, dst, down, NULL, s->ffn_a, n_tokens);
}

/* --- decode: only the active rows -------------------------------------------------------- */

typedef struct rows_args {
    const clv_weight *gate, *up;
    const void *xq_gate, *xq_up;
    const clv_neuron_predictor *p; /* NULL: every neuron is a candidate */
    clv_sparse_state *sp;
    float *h_out, *up_out; /* h by neuron (ffn_a); up by candidate (ffn_b) */
    int64_t chunk;
    float threshold;
    clv_ffn_act act;
} rows_args;

/* One chunk [b, e) of neurons: the predictor's logits for them (its w2
 * rows b..e against the hidden layer already in sp->pred_hq) pick the
 * candidates, or all are; then gate and up of the candidates (gathered
 * rows, compact), h = act(gate) * up, threshold. Candidates and survivors
 * go to cand and active / active_h from the chunk's first position on;
 * every candidate's h also goes to h_out by neuron, for the observer. Doing
 * the predictor here rather than as its own pass spares two rounds of
 * waking and waiting for the threads per layer. */
static void rows_chunk(rows_args *a, int64_t b, int64_t e) {
    clv_sparse_state *sp = a->sp;
    int32_t *cand = sp->cand + b;
    int64_t n = 0;
    if (a->p) {
        const clv_weight *w2 = a->p->w2;
        float *z = sp->pred_logit;
        clv_cpu_matvec(w2->type, w2->data, w2->row_bytes, w2->ne[0], sp->pred_hq, z + b, b, e);
        for (int64_t i = b; i < e; i++)
            if (predicted_active(a->p, z, i)) cand[n++] = (int32_t)i;
    } else {
        for (int64_t i = b; i < e; i++) cand[n++] = (int32_t)i;
    }
    float *g = sp->cand_act + b, *u = a->up_out + b;
    clv_cpu_matvec_ids(a->gate->type, a->gate->data, a->gate->row_bytes, a->gate->ne[0], a->xq_gate, cand, n, g);
    clv_cpu_matvec_ids(a->up->type, a->up->data, a->up->row_bytes, a->up->ne[0], a->xq_up, cand, n, u);
    apply_act(g, n, a->act);
    int32_t *ids = sp->active + b;
    float *h = sp->active_h + b;
    int64_t n_active = 0;
    for (int64_t k = 0; k < n; k++) {
        float v = g[k] * u[k];
        a->h_out[cand[k]] = v;
        if (fabsf(v) > a->threshold) {
            ids[n_active] = cand[k];
            h[n_active++] = v;
        }
    }
    sp->chunk_cand[b / a->chunk] = n;
    sp->chunk_active[b / a->chunk] = n_active;
}

static void rows_range(void *arg, int64_t b, int64_t e) {
    rows_args *a = arg;
    /* Whole chunks even when one thread takes the whole range, so that the
     * per-chunk counts line up. */
    for (int64_t c = b; c < e; c += a->chunk) rows_chunk(a, c, c + a->chunk < e ? c + a->chunk : e);
}

typedef struct down_args {
    const clv_sparse_layer *sl;
    const int32_t *ids;
    const float *h;
    int64_t n_active, n_embd;
    float *dst;
} down_args;

/* Output elements are handed out in units of 32 (whole cache lines of y). */
#define DOWN_UNIT 32

static void down_range(void *arg, int64_t b, int64_t e) {
    down_args *a = arg;
    int64_t e0 = b * DOWN_UNIT, e1 = e * DOWN_UNIT < a->n_embd ? e * DOWN_UNIT : a->n_embd;
    float *y = a->dst + e0;
    memset(y, 0, (size_t)(e1 - e0) * sizeof(float));
    const uint8_t *rows = a->sl->down_t;
    if (a->sl->down_t_type == CLV_TYPE_I8) {
        /* a->h already carries each row's scale */
        clv_vec_axpy_i8_rows(y, e1 - e0, (const int8_t *)(const void *)rows + e0, a->sl->down_t_row_bytes, a->ids,
                             a->h, a->n_active);
        clv_vec_mul(y, y, a->sl->down_t_scale + e0, e1 - e0);
    } else {
        for (int64_t k = 0; k < a->n_active; k++) {
            const float *row = (const float *)(const void *)(rows + (size_t)a->ids[k] * a->sl->down_t_row_bytes);
            clv_vec_axpy(y, a->h[k], row + e0, e1 - e0);
        }
    }
}

/* The predictor's hidden layer relu(w1 . x + b1), quantized for w2, into
 * sp->pred_hq: small (rank rows), so the calling thread does it alone. */
static void predict_hidden(clv_context *ctx, const clv_neuron_predictor *p, const float *x, int64_t n_embd) {
    clv_sparse_state *sp = ctx->sparse;
    const clv_weight *w1 = p->w1, *w2 = p->w2;
    int64_t rank = w1->ne[1];
    clv_cpu_quantize_activation(w1->type, x, sp->pred_xq, n_embd);
    clv_cpu_matvec(w1->type, w1->data, w1->row_bytes, n_embd, sp->pred_xq, sp->pred_hidden, 0, rank);
    hidden_relu(sp->pred_hidden, p->b1, rank, 1);
    clv_cpu_quantize_activation(w2->type, sp->pred_hidden, sp->pred_hq, rank);
    ctx->weight_bytes_read += w1->bytes + w2->bytes +
                              (uint64_t)((p->b1 ? rank : 0) + (p->b2 ? w2->ne[1] : 0)) * sizeof(float);
}

static void ffn_decode(clv_context *ctx, int64_t il, float *dst, const float *x, const clv_weight *gate,
                       const clv_weight *up, int64_t n_ff, clv_ffn_act act) {
    clv_sparse_state *sp = ctx->sparse;
    const clv_sparse_layer *sl = &sp->layers[il];
    clv_scratch *s = &ctx->s;
    int64_t n_embd = gate->ne[0];

    /* Candidates: what the predictor lets through, or every neuron. */
    const clv_neuron_predictor *p =
        sl->predictor && predictor_trusted(sl->predictor, s->pos[0], x, n_embd) ? sl->predictor : NULL;
    if (p) predict_hidden(ctx, p, x, n_embd);

    /* x quantized once for gate and, when its partner type differs, for up. */
    uint8_t *xq_gate = sp->xq, *xq_up = xq_gate;
    clv_cpu_quantize_activation(gate->type, x, xq_gate, n_embd);
    if (clv_cpu_vec_dot_type(up->type) != clv_cpu_vec_dot_type(gate->type)) {
        xq_up = xq_gate + s->xq_row_bytes;
        clv_cpu_quantize_activation(up->type, x, xq_up, n_embd);
    }

    memset(s->ffn_a, 0, (size_t)n_ff * sizeof(float)); /* h of skipped neurons reads 0 */
    int64_t nth = clv_threadpool_n_threads(ctx->pool);
    /* whole tiles of eight rows for the predictor's w2 */
    int64_t chunk = (n_ff / (nth * 8) + 7) / 8 * 8;
    chunk = chunk < 16 ? 16 : chunk > 256 ? 256 : chunk;
    rows_args ra = {gate, up, xq_gate, xq_up, p, sp, s->ffn_a, s->ffn_b, chunk, sl->threshold, act};
    clv_cpu_parallel_for(ctx, n_ff, chunk, (double)n_embd * 2, rows_range, &ra);
    const clv_ffn_observer *obs = ctx->params.observer;
    if (obs && obs->dense) obs->dense(obs->user, il, x, s->ffn_a, 1, n_embd, n_ff);

    /* Survivors of every chunk, packed to the front. */
    int64_t n_active = 0, n_cand = 0;
    for (int64_t c = 0; c * chunk < n_ff; c++) {
        int64_t cnt = sp->chunk_active[c];
        n_cand += sp->chunk_cand[c];
        memmove(sp->active + n_active, sp->active + c * chunk, (size_t)cnt * sizeof(int32_t));
        memmove(sp->active_h + n_active, sp->active_h + c * chunk, (size_t)cnt * sizeof(float));
        n_active += cnt;
    }
    if (n_active > sl->keep) n_active = keep_top_list(sp->active, sp->active_h, n_active, sl->keep, sp->cand_act);
    ctx->weight_bytes_read += (uint64_t)n_cand * (gate->row_bytes + up->row_bytes) +
                              (uint64_t)n_active * sl->down_t_row_bytes;

    if (sl->down_t_type == CLV_TYPE_I8)
        for (int64_t k = 0; k < n_active; k++) sp->active_h[k] *= sl->down_t_row_scale[sp->active[k]];
    down_args da = {sl, sp->active, sp->active_h, n_active, n_embd, dst};
    int64_t n_units = (n_embd + DOWN_UNIT - 1) / DOWN_UNIT;
    /* One slice per thread: a row's slice then spans as few cache lines as it can. */
    int64_t unit_chunk = (n_units + nth - 1) / nth;
    clv_cpu_parallel_for(ctx, n_units, unit_chunk, (double)(n_active + 1) * DOWN_UNIT, down_range, &da);
}

bool clv_cpu_ffn_sparse(clv_context *ctx, int64_t il, float *dst, const float *x, const clv_weight *gate,
                        const clv_weight *up, const clv_weight *down, int64_t n_tokens, clv_ffn_act act) {
    if (il < 0 || !ctx->sparse || !ctx->sparse->layers[il].sparse) return false;
    CLV_ASSERT(gate && up->ne[1] == down->ne[0] && gate->ne[1] == up->ne[1]);
    if (n_tokens == 1 && !ctx->params.f32_activations) {
        ffn_decode(ctx, il, dst, x, gate, up, up->ne[1], act);
    } else {
        ffn_masked(ctx, il, dst, x, gate, up, down, n_tokens, act);
    }
    return true;
}
