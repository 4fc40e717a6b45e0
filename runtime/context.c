/* Context creation (KV cache and scratch, allocated once) and decode. */
#include "context.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "gemm.h"
#include "dequantize.h"
#include "gpu_state.h"
#include "matvec.h"
#include "numa_memory.h"
#include "quantize.h"
#include "threadpool.h"
#include "types.h"

clv_context_params clv_context_default_params(void) {
    return (clv_context_params){.n_ctx = 0, .n_batch = 512, .n_threads = 0, .kv_type = CLV_TYPE_F16, .logits_all = false};
}

void clv_context_free(clv_context *ctx) {
    if (!ctx) return;
    if (ctx->gpu) {
        /* The scratch pointers are device memory, freed with the state. */
        clv_gpu_state_free(ctx->gpu);
        memset(&ctx->s, 0, sizeof ctx->s);
    }
    if (ctx->k_cache) {
        for (int64_t i = 0; i < ctx->model->hp.n_layer; i++) {
            free(ctx->k_cache[i]);
            free(ctx->v_cache[i]);
        }
    }
    free(ctx->k_cache);
    free(ctx->v_cache);
    clv_scratch *s = &ctx->s;
    void *bufs[] = {s->x, s->xb, s->xb2, s->q, s->k, s->v, s->attn, s->ffn_a, s->ffn_b, s->router, s->expert_ids,
                    s->expert_w, s->expert_rows, s->slot_pos, s->expert_count, s->expert_fill, s->expert_active,
                    s->moe_a, s->moe_b, s->moe_c, ctx->expert_counts, s->xq, s->xq_grouped, s->gemm_panels,
                    s->attn_partial, s->pos, ctx->logits};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) free(bufs[i]);
    if (ctx->sparse) {
        clv_sparse_state *sp = ctx->sparse;
        for (int64_t il = 0; sp->layers && il < ctx->model->hp.n_layer; il++) {
            clv_numa_free(sp->layers[il].down_t, (size_t)ctx->model->hp.n_ff[il] * sp->layers[il].down_t_row_bytes);
            free(sp->layers[il].down_t_scale);
            free(sp->layers[il].down_t_row_scale);
        }
        void *sbufs[] = {sp->layers, sp->pred_hidden, sp->pred_logit, sp->pred_trusted, sp->cand, sp->cand_act, sp->active,
                         sp->active_h, sp->chunk_active, sp->chunk_cand, sp->xq, sp->pred_xq, sp->pred_hq, sp};
        for (size_t i = 0; i < sizeof sbufs / sizeof sbufs[0]; i++) free(sbufs[i]);
    }
    clv_threadpool_free(ctx->pool);
    free(ctx);
}

/* Allocation that counts what it takes; sizes of 0 still get a valid pointer. */
static void *scratch_alloc(clv_context *ctx, size_t count, size_t size, bool *failed) {
    size_t bytes = count * size;
    if (size && bytes / size != count) {
        *failed = true;
        return NULL;
    }
    void *p = calloc(1, bytes ? bytes : 1);
    if (!p) *failed = true;
    ctx->scratch_bytes += bytes;
    return p;
}

static int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

/* --- activation sparsity ---------------------------------------------------------- */

/* A layer the sparse path can run: a dense FFN with a gate. */
static bool has_gated_ffn(const clv_layer *l) { return l->ffn_gate && l->ffn_up && l->ffn_down && !l->ffn_gate_inp; }

static clv_status check_predictor_weight(int64_t il, const char *what, const clv_weight *w, int64_t ne0, int64_t ne1,
                                         const char *want) {
    if (!w) return clv_fail(CLV_ERR_ARG, "sparsity: layer %lld: the predictor has no %s", (long long)il, what);
    if (w->ne[0] != ne0 || (ne1 >= 0 && w->ne[1] != ne1) || w->ne[1] < 1 || w->ne[2] != 1 || w->ne[3] != 1) {
        return clv_fail(CLV_ERR_ARG, "sparsity: layer %lld: predictor %s is {%lld, %lld, %lld, %lld}, want %s",
                        (long long)il, what, (long long)w->ne[0], (long long)w->ne[1], (long long)w->ne[2],
                        (long long)w->ne[3], want);
    }
    if (!clv_cpu_matvec_supports(w->type, w->ne[0])) {
        return clv_fail(CLV_ERR_ARG,
                        "sparsity: layer %lld: predictor %s has type %s, which the CPU kernels do not take for rows "
                        "of %lld",
                        (long long)il, what, clv_type_name(w->type), (long long)w->ne[0]);
    }
    uint64_t row = 0;
    if (!clv_type_bytes(w->type, w->ne[0], &row) || w->row_bytes != row || w->bytes < row * (uint64_t)w->ne[1] ||
        !w->data) {
        return clv_fail(CLV_ERR_ARG,
                        "sparsity: layer %lld: predictor %s has %llu bytes per row and %llu in all (want %llu and "
                        "%llu) or no data",
                        (long long)il, what, (unsigned long long)w->row_bytes, (unsigned long long)w->bytes,
                        (unsigned long long)row, (unsigned long long)(row * (uint64_t)w->ne[1]));
    }
    return CLV_OK;
}

static clv_status check_sparsity(const clv_model *m, const clv_ffn_sparsity *sp) {
    const clv_hparams *hp = &m->hp;
    if (!sp->threshold) return clv_fail(CLV_ERR_ARG, "sparsity: no threshold array (one per layer; negative: dense)");
    for (int64_t il = 0; il < hp->n_layer; il++) {
        float t = sp->threshold[il];
        const clv_layer *l = &m->layers[il];
        if (isnan(t) || isinf(t)) {
            return clv_fail(CLV_ERR_ARG, "sparsity: layer %lld: threshold %g is not a finite number", (long long)il,
                            (double)t);
        }
        if (t >= 0 && !has_gated_ffn(l)) {
            return clv_fail(CLV_ERR_ARG,
                            "sparsity: layer %lld has no dense gated FFN (%s), so its threshold must be negative, not %g",
                            (long long)il, l->ffn_gate_inp ? "mixture of experts" : "no gate", (double)t);
        }
        if (t >= 0 && sp->keep && !(sp->keep[il] > 0.0f && sp->keep[il] <= 1.0f)) {
            return clv_fail(CLV_ERR_ARG, "sparsity: layer %lld: keep share %g is not in (0, 1]", (long long)il,
                            (double)sp->keep[il]);
        }
        const clv_neuron_predictor *p = sp->predictor ? &sp->predictor[il] : NULL;
        if (!p || !p->w1) continue;
        if (!has_gated_ffn(l)) {
            return clv_fail(CLV_ERR_ARG, "sparsity: layer %lld has a predictor but no dense gated FFN", (long long)il);
        }
        char want[96];
        snprintf(want, sizeof want, "{%lld (n_embd), rank}", (long long)hp->n_embd);
        clv_status st = check_predictor_weight(il, "w1", p->w1, hp->n_embd, -1, want);
        if (st) return st;
        int64_t rank = p->w1->ne[1];
        snprintf(want, sizeof want, "{%lld (rank), %lld (n_ff)}", (long long)rank, (long long)hp->n_ff[il]);
        if ((st = check_predictor_weight(il, "w2", p->w2, rank, hp->n_ff[il], want))) return st;
        if (isnan(p->logit_threshold)) {
            return clv_fail(CLV_ERR_ARG, "sparsity: layer %lld: predictor logit threshold is NaN", (long long)il);
        }
    }
    return CLV_OK;
}

static void *sparse_alloc(clv_context *ctx, size_t count, size_t size, bool *failed) {
    void *p = NULL;
    if (!size || count <= SIZE_MAX / size) p = calloc(1, count * size > 0 ? count * size : 1);
    if (!p) *failed = true;
    ctx->sparse_bytes += count * size;
    return p;
}

/* Neurons are transposed in pieces of this many: a multiple of every block
 * size, so each piece of a down row starts on a block. */
#define DOWN_T_PIECE 256

/* Row i of the I8 copy: col / max |col| * 127, rounded. */
static void quantize_i8_row(const float *col, int64_t n, int8_t *dst, float *row_scale) {
    float amax = 0;
    for (int64_t e = 0; e < n; e++) amax = fabsf(col[e]) > amax ? fabsf(col[e]) : amax;
    float s = amax > 0 && isfinite(amax) ? amax / 127.0f : 1.0f, inv = 1.0f / s;
    for (int64_t e = 0; e < n; e++) {
        float q = roundf(col[e] * inv);
        dst[e] = (int8_t)(q > 127 ? 127 : q < -127 ? -127 : q);
    }
    *row_scale = s;
}

/* ffn_down {n_ff, n_embd} -> [n_ff][n_embd] rows of sl->down_t_type. tile
 * holds [n_embd][DOWN_T_PIECE] floats, col n_embd. */
static clv_status build_down_t(const clv_weight *down, clv_sparse_layer *sl, float *tile, float *col) {
    int64_t n_ff = down->ne[0], n_embd = down->ne[1];
    float *scale = sl->down_t_scale;
    /* I8: each output channel's largest |weight| first (down row r is channel r). */
    for (int64_t i0 = 0; scale && i0 < n_ff; i0 += DOWN_T_PIECE) {
        int64_t n = n_ff - i0 < DOWN_T_PIECE ? n_ff - i0 : DOWN_T_PIECE;
        uint64_t off = 0;
        CLV_ASSERT(clv_type_bytes(down->type, i0, &off));
        for (int64_t r = 0; r < n_embd; r++) {
            const uint8_t *src = (const uint8_t *)down->data + (uint64_t)r * down->row_bytes + off;
            clv_status st = clv_dequantize_row(down->type, src, tile, n);
            if (st) return st;
            for (int64_t j = 0; j < n; j++) scale[r] = fabsf(tile[j]) > scale[r] ? fabsf(tile[j]) : scale[r];
        }
    }
    for (int64_t r = 0; scale && r < n_embd; r++) {
        if (!(scale[r] > 0) || !isfinite(scale[r])) scale[r] = 1.0f;
    }
    for (int64_t i0 = 0; i0 < n_ff; i0 += DOWN_T_PIECE) {
        int64_t n = n_ff - i0 < DOWN_T_PIECE ? n_ff - i0 : DOWN_T_PIECE;
        uint64_t off = 0;
        CLV_ASSERT(clv_type_bytes(down->type, i0, &off)); /* byte offset of element i0 */
        for (int64_t r = 0; r < n_embd; r++) {
            const uint8_t *src = (const uint8_t *)down->data + (uint64_t)r * down->row_bytes + off;
            clv_status st = clv_dequantize_row(down->type, src, tile + r * DOWN_T_PIECE, n);
            if (st) return st;
        }
        for (int64_t j = 0; j < n; j++) {
            uint8_t *dst = (uint8_t *)sl->down_t + (size_t)(i0 + j) * sl->down_t_row_bytes;
            for (int64_t r = 0; r < n_embd; r++) col[r] = tile[r * DOWN_T_PIECE + j] / (scale ? scale[r] : 1.0f);
            if (sl->down_t_type == CLV_TYPE_F32) memcpy(dst, col, (size_t)n_embd * sizeof(float));
            else quantize_i8_row(col, n_embd, (int8_t *)dst, &sl->down_t_row_scale[i0 + j]);
        }
    }
    return CLV_OK;
}

/* Buffers for the sparse path and the transposed ffn_down of each sparse
 * layer (the sparsity is already checked). */
static clv_status create_sparse(clv_context *ctx) {
    const clv_model *m = ctx->model;
    const clv_hparams *hp = &m->hp;
    const clv_ffn_sparsity *spec = ctx->params.sparsity;
    int64_t B = ctx->params.n_batch, max_ff = 1, max_rank = 1, pred_xq = 1, pred_hq = 1;
    bool failed = false;
    clv_sparse_state *sp = ctx->sparse = sparse_alloc(ctx, 1, sizeof *sp, &failed);
    if (!failed) sp->layers = sparse_alloc(ctx, (size_t)hp->n_layer, sizeof *sp->layers, &failed);
    if (failed) return clv_fail(CLV_ERR_NOMEM, "no memory for the sparse FFN state");
    int n_nodes = clv_threadpool_n_threads(ctx->pool);
    int *nodes = malloc(sizeof *nodes * (size_t)n_nodes);
    if (!nodes) return clv_fail(CLV_ERR_NOMEM, "no memory for the sparse FFN state");
    for (int i = 0; i < n_nodes; i++) nodes[i] = clv_threadpool_numa_node(ctx->pool, i);
    for (int64_t il = 0; il < hp->n_layer; il++) {
        clv_sparse_layer *sl = &sp->layers[il];
        if (spec->threshold[il] < 0) continue;
        const clv_neuron_predictor *p = spec->predictor && spec->predictor[il].w1 ? &spec->predictor[il] : NULL;
        const clv_weight *down = m->layers[il].ffn_down;
        sl->sparse = true;
        sl->threshold = spec->threshold[il];
        sl->keep = hp->n_ff[il];
        if (spec->keep) {
            int64_t k = (int64_t)ceil((double)spec->keep[il] * (double)hp->n_ff[il] - 1e-6);
            sl->keep = k < 1 ? 1 : k > hp->n_ff[il] ? hp->n_ff[il] : k;
        }
        sl->predictor = p;
        if (p) {
            max_rank = max64(max_rank, p->w1->ne[1]);
            pred_xq = max64(pred_xq, (int64_t)clv_cpu_activation_bytes(p->w1->type, hp->n_embd));
            pred_hq = max64(pred_hq, (int64_t)clv_cpu_activation_bytes(p->w2->type, p->w1->ne[1]));
        }
        max_ff = max64(max_ff, hp->n_ff[il]);
        /* Float sources stay exact; quantized ones keep 8 bits per weight. */
        bool float_src = down->type == CLV_TYPE_F32 || down->type == CLV_TYPE_F16 || down->type == CLV_TYPE_BF16;
        sl->down_t_type = float_src ? CLV_TYPE_F32 : CLV_TYPE_I8;
        sl->down_t_row_bytes = (size_t)hp->n_embd * (float_src ? sizeof(float) : 1);
        /* Copied weights live on the NUMA nodes of the threads that read them. */
        size_t bytes = (size_t)hp->n_ff[il] * sl->down_t_row_bytes;
        sl->down_t = clv_numa_alloc(bytes, nodes, n_nodes);
        if (!sl->down_t) failed = true;
        ctx->sparse_bytes += bytes;
        if (sl->down_t_type == CLV_TYPE_I8) {
            sl->down_t_scale = sparse_alloc(ctx, (size_t)hp->n_embd, sizeof(float), &failed);
            sl->down_t_row_scale = sparse_alloc(ctx, (size_t)hp->n_ff[il], sizeof(float), &failed);
        }
    }
    sp->pred_hidden = sparse_alloc(ctx, (size_t)(B * max_rank), sizeof(float), &failed);
    sp->pred_logit = sparse_alloc(ctx, (size_t)(B * max_ff), sizeof(float), &failed);
    sp->pred_trusted = sparse_alloc(ctx, (size_t)B, 1, &failed);
    sp->cand = sparse_alloc(ctx, (size_t)max_ff, sizeof(int32_t), &failed);
    sp->cand_act = sparse_alloc(ctx, (size_t)max_ff, sizeof(float), &failed);
    sp->active = sparse_alloc(ctx, (size_t)max_ff, sizeof(int32_t), &failed);
    sp->active_h = sparse_alloc(ctx, (size_t)max_ff, sizeof(float), &failed);
    sp->chunk_active = sparse_alloc(ctx, (size_t)max_ff, sizeof(int64_t), &failed);
    sp->chunk_cand = sparse_alloc(ctx, (size_t)max_ff, sizeof(int64_t), &failed);
    sp->pred_xq = sparse_alloc(ctx, 1, (size_t)pred_xq, &failed);
    sp->pred_hq = sparse_alloc(ctx, 1, (size_t)pred_hq, &failed);
    sp->xq = sparse_alloc(ctx, 2, ctx->s.xq_row_bytes, &failed);
    free(nodes);
    /* Transposing reads a piece of every down row at a time (freed after). */
    float *tile = malloc((size_t)(hp->n_embd * DOWN_T_PIECE) * sizeof(float));
    float *col = malloc((size_t)hp->n_embd * sizeof(float));
    if (failed || !tile || !col) {
        free(tile);
        free(col);
        return clv_fail(CLV_ERR_NOMEM, "no memory for the sparse FFN (%.1f MiB, most of it transposed ffn_down)",
                        (double)ctx->sparse_bytes / (1 << 20));
    }
    clv_status st = CLV_OK;
    for (int64_t il = 0; il < hp->n_layer && !st; il++) {
        if (!sp->layers[il].sparse) continue;
        st = build_down_t(m->layers[il].ffn_down, &sp->layers[il], tile, col);
        if (st) clv_error_prefix("sparsity: layer %lld: transposing %s: ", (long long)il, m->layers[il].ffn_down->name);
    }
    free(tile);
    free(col);
    return st;
}

/* The rest of a GPU context: device memory and ops (ops_cuda.c), logits on
 * the host. */
static clv_status create_gpu(clv_context *ctx, clv_context **out) {
    const clv_hparams *hp = &ctx->model->hp;
    clv_status st = clv_gpu_context_init(ctx);
    if (st) {
        clv_context_free(ctx);
        return st;
    }
    bool failed = false;
    ctx->logits = scratch_alloc(ctx, (size_t)((ctx->params.logits_all ? ctx->params.n_batch : 1) * hp->n_vocab), 4,
                                &failed);
    if (ctx->params.count_experts && hp->n_expert) {
        ctx->expert_counts = scratch_alloc(ctx, (size_t)(hp->n_layer * hp->n_expert), 8, &failed);
    }
    if (failed) {
        clv_context_free(ctx);
        return clv_fail(CLV_ERR_NOMEM, "no memory for the logits");
    }
    *out = ctx;
    return CLV_OK;
}

clv_status clv_context_create(clv_model *m, const clv_context_params *params, clv_context **out) {
    *out = NULL;
    clv_context_params p = params ? *params : clv_context_default_params();
    const clv_hparams *hp = &m->hp;
    if (p.n_ctx <= 0) p.n_ctx = hp->n_ctx_train < 4096 ? hp->n_ctx_train : 4096;
    if (p.n_ctx > hp->n_ctx_train && hp->n_ctx_train > 0) {
        fprintf(stderr, "cleave: warning: context %lld is longer than the model was trained for (%lld)\n",
                (long long)p.n_ctx, (long long)hp->n_ctx_train);
    }
    if (p.n_ctx < 1 || p.n_ctx > (1ll << 24)) return clv_fail(CLV_ERR_ARG, "context size %lld is out of range", (long long)p.n_ctx);
    if (p.n_batch < 1) p.n_batch = 512;
    if (p.n_batch > p.n_ctx) p.n_batch = p.n_ctx;
    if (p.gemm_min_batch == 0) {
        /* Below 32 tokens, decoding a weight panel to float costs more than
         * the GEMM saves (docs/benchmarks.md). */
        const char *env = getenv("CLEAVE_DNNL_MIN_BATCH");
        p.gemm_min_batch = env && *env ? strtoll(env, NULL, 10) : 32;
        if (p.gemm_min_batch <= 0) p.gemm_min_batch = -1;
    }
    if (!clv_dnnl_available() || p.f32_activations) p.gemm_min_batch = -1;
    if (p.kv_type != CLV_TYPE_F16 && p.kv_type != CLV_TYPE_F32) {
        return clv_fail(CLV_ERR_ARG, "KV cache type %s is not supported (F16 or F32)", clv_type_name(p.kv_type));
    }
    if (p.sparsity) {
        clv_status st = check_sparsity(m, p.sparsity);
        if (st) return st;
    }
    if (p.gpu && p.sparsity) {
        return clv_fail(CLV_ERR_UNSUPPORTED,
                        "the GPU backend has no sparse FFN path (--sparsity, --predictor) yet; run without it or on "
                        "the CPU");
    }
    clv_context *ctx = calloc(1, sizeof *ctx);
    if (!ctx) return clv_fail(CLV_ERR_NOMEM, "no memory for a context");
    ctx->model = m;
    ctx->params = p;
    ctx->backend = &clv_backend_cpu;

    clv_threadpool_params tp = clv_threadpool_default_params();
    tp.n_threads = p.gpu ? 1 : p.n_threads; /* the GPU backend computes nothing on the CPU */
    tp.pin = true;
    clv_status st = clv_threadpool_create(&tp, &ctx->pool);
    if (st) {
        free(ctx);
        return st;
    }
    if (p.gpu) return create_gpu(ctx, out);

    /* KV cache. */
    size_t elem = p.kv_type == CLV_TYPE_F32 ? 4 : 2;
    ctx->k_cache = calloc((size_t)hp->n_layer, sizeof(void *));
    ctx->v_cache = calloc((size_t)hp->n_layer, sizeof(void *));
    bool failed = !ctx->k_cache || !ctx->v_cache;
    for (int64_t il = 0; il < hp->n_layer && !failed; il++) {
        size_t kw = (size_t)(hp->n_head_kv[il] * hp->n_embd_head_k), vw = (size_t)(hp->n_head_kv[il] * hp->n_embd_head_v);
        ctx->k_cache[il] = calloc((size_t)p.n_ctx * kw, elem);
        ctx->v_cache[il] = calloc((size_t)p.n_ctx * vw, elem);
        failed = !ctx->k_cache[il] || !ctx->v_cache[il];
        ctx->kv_bytes += (size_t)p.n_ctx * (kw + vw) * elem;
    }
    if (failed) {
        size_t want = ctx->kv_bytes;
        clv_context_free(ctx);
        return clv_fail(CLV_ERR_NOMEM, "no memory for a KV cache of %lld positions (%.1f MiB so far)", (long long)p.n_ctx,
                        (double)want / (1 << 20));
    }

    /* Scratch, sized for the widest layer. */
    int64_t B = p.n_batch, E = hp->n_expert, K = hp->n_expert_used ? hp->n_expert_used : 1;
    int64_t max_ff = 0, max_kv = 0;
    for (int64_t il = 0; il < hp->n_layer; il++) {
        max_ff = max64(max_ff, hp->n_ff[il]);
        max_kv = max64(max_kv, hp->n_head_kv[il]);
    }
    max_ff = max64(max_ff, hp->n_ff_shexp);
    int64_t q_width = hp->n_head * hp->n_embd_head_k, o_width = hp->n_head * hp->n_embd_head_v;
    int64_t wide = max64(max64(hp->n_embd, q_width), o_width);
    int64_t A = B * K;
    int64_t moe_width = max64(hp->n_ff_exp, hp->n_embd);
    /* The widest activation row any matmul quantizes. */
    int64_t max_in = max64(max64(wide, max_ff), hp->n_ff_exp);
    size_t xq_row = 0;
    for (int64_t i = 0; i < m->n_weights; i++) {
        size_t b = clv_cpu_activation_bytes(m->weights[i].type, max_in - max_in % 256 + 256);
        if (b > xq_row) xq_row = b;
    }
    /* Predictor products go through the same activation buffer. */
    for (int64_t il = 0; p.sparsity && p.sparsity->predictor && il < hp->n_layer; il++) {
        const clv_neuron_predictor *pr = &p.sparsity->predictor[il];
        if (!pr->w1) continue;
        size_t b1 = clv_cpu_activation_bytes(pr->w1->type, pr->w1->ne[0]);
        size_t b2 = clv_cpu_activation_bytes(pr->w2->type, pr->w2->ne[0]);
        if (b1 > xq_row) xq_row = b1;
        if (b2 > xq_row) xq_row = b2;
    }
    xq_row = (xq_row + 63) & ~(size_t)63;
    clv_scratch *s = &ctx->s;
    s->x = scratch_alloc(ctx, (size_t)(B * hp->n_embd), 4, &failed);
    s->xb = scratch_alloc(ctx, (size_t)(B * wide), 4, &failed);
    s->xb2 = scratch_alloc(ctx, (size_t)(B * wide), 4, &failed);
    s->q = scratch_alloc(ctx, (size_t)(B * q_width), 4, &failed);
    s->k = scratch_alloc(ctx, (size_t)(B * max_kv * hp->n_embd_head_k), 4, &failed);
    s->v = scratch_alloc(ctx, (size_t)(B * max_kv * hp->n_embd_head_v), 4, &failed);
    s->attn = scratch_alloc(ctx, (size_t)(B * wide), 4, &failed); /* also the routed-expert sum */
    s->ffn_a = scratch_alloc(ctx, (size_t)(B * max_ff), 4, &failed);
    s->ffn_b = scratch_alloc(ctx, (size_t)(B * max_ff), 4, &failed);
    s->router = scratch_alloc(ctx, (size_t)(B * E), 4, &failed);
    s->expert_ids = scratch_alloc(ctx, (size_t)A, 4, &failed);
    s->expert_w = scratch_alloc(ctx, (size_t)A, 4, &failed);
    s->expert_rows = scratch_alloc(ctx, (size_t)A, 4, &failed);
    s->slot_pos = scratch_alloc(ctx, (size_t)A, 4, &failed);
    s->expert_count = scratch_alloc(ctx, (size_t)(E + 1), 8, &failed);
    s->expert_fill = scratch_alloc(ctx, (size_t)(E + 1), 8, &failed);
    s->expert_active = scratch_alloc(ctx, (size_t)(E + 1), 4, &failed);
    s->moe_a = scratch_alloc(ctx, (size_t)(E ? A * moe_width : 0), 4, &failed);
    s->moe_b = scratch_alloc(ctx, (size_t)(E ? A * moe_width : 0), 4, &failed);
    s->moe_c = scratch_alloc(ctx, (size_t)(E && p.f32_activations ? A * moe_width : 0), 4, &failed);
    s->xq_row_bytes = xq_row;
    s->xq = scratch_alloc(ctx, (size_t)A, xq_row, &failed);
    s->xq_grouped = scratch_alloc(ctx, (size_t)(E ? A : 0), xq_row, &failed);
    int64_t nth = clv_threadpool_n_threads(ctx->pool);
    /* oneDNN prompt path: one panel of decoded weight rows per thread. */
    s->gemm_panel_floats = p.gemm_min_batch > 0 ? (size_t)(CLV_GEMM_PANEL_ROWS * max_in) : 0;
    s->gemm_panels = scratch_alloc(ctx, (size_t)nth * s->gemm_panel_floats, 4, &failed);
    /* Split-K items: at most 4 * nth more than one per (token, KV head),
     * each holding partials for its whole GQA group. */
    s->attn_partial_floats = (size_t)((B + 8 * nth) * hp->n_head * (2 + hp->n_embd_head_v));
    s->attn_partial = scratch_alloc(ctx, s->attn_partial_floats, 4, &failed);
    s->pos = scratch_alloc(ctx, (size_t)B, 4, &failed);
    ctx->logits = scratch_alloc(ctx, (size_t)((p.logits_all ? B : 1) * hp->n_vocab), 4, &failed);
    if (p.count_experts && E) ctx->expert_counts = scratch_alloc(ctx, (size_t)(hp->n_layer * E), 8, &failed);
    if (failed) {
        clv_context_free(ctx);
        return clv_fail(CLV_ERR_NOMEM, "no memory for scratch buffers (batch %lld)", (long long)B);
    }
    if (p.sparsity && (st = create_sparse(ctx))) {
        clv_context_free(ctx);
        return st;
    }
    *out = ctx;
    return CLV_OK;
}

clv_status clv_decode(clv_context *ctx, const clv_batch *batch) {
    const clv_hparams *hp = &ctx->model->hp;
    int64_t n = batch->n_tokens;
    if (n < 1) return clv_fail(CLV_ERR_ARG, "empty batch");
    if (batch->logits_all && !ctx->params.logits_all) {
        return clv_fail(CLV_ERR_ARG, "logits for every token need a context created with logits_all");
    }
    for (int64_t i = 0; i < n; i++) {
        if (batch->tokens[i] < 0 || batch->tokens[i] >= hp->n_vocab) {
            return clv_fail(CLV_ERR_ARG, "token %d at batch position %lld is outside the vocabulary (%lld)",
                            batch->tokens[i], (long long)i, (long long)hp->n_vocab);
        }
    }
    if (ctx->n_past + n > ctx->params.n_ctx) {
        return clv_fail(CLV_ERR_RANGE, "context full: %lld positions used, %lld more asked, %lld available",
                        (long long)ctx->n_past, (long long)n, (long long)ctx->params.n_ctx);
    }
    if (batch->logits_all && n > ctx->params.n_batch) {
        /* Only n_batch rows of logits fit: callers wanting all logits must
         * keep batches within n_batch. */
        return clv_fail(CLV_ERR_ARG, "a batch that wants every logit may hold at most %lld tokens",
                        (long long)ctx->params.n_batch);
    }
    if (ctx->gpu) return clv_gpu_decode(ctx, batch);
    /* Large batches run in pieces of n_batch. */
    for (int64_t done = 0; done < n;) {
        int64_t take = n - done < ctx->params.n_batch ? n - done : ctx->params.n_batch;
        for (int64_t i = 0; i < take; i++) ctx->s.pos[i] = (int32_t)(ctx->n_past + i);
        clv_batch piece = {.n_tokens = take, .tokens = batch->tokens + done, .logits_all = batch->logits_all};
        clv_status st = ctx->model->arch->forward(ctx, &piece);
        if (st) return st;
        ctx->n_past += take;
        done += take;
    }
    return CLV_OK;
}

const float *clv_context_logits(const clv_context *ctx, int64_t i) {
    CLV_ASSERT(i >= 0 && i < ctx->n_logits);
    return ctx->logits + i * ctx->model->hp.n_vocab;
}

void clv_context_truncate(clv_context *ctx, int64_t n) {
    CLV_ASSERT(n >= 0 && n <= ctx->n_past);
    ctx->n_past = n;
}
