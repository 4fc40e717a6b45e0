/* The CUDA backend: the ops of ops.h on device memory (gpu_state.h), each a
 * call of a kernel of kernels/cuda/ queued on the state's stream. Built with
 * CUDA only (gpu_none.c stands in otherwise).
 *
 * Batches of up to n_batch tokens run through the model's forward pass at
 * once: products of at least CLV_GPU_MATMUL_MIN_TOKENS tokens on tensor
 * cores (clv_cuda_matmul), smaller ones with the decode matvec per token
 * (a GLU's gate and up fused in one launch); attention stores the batch's K
 * and V, then runs every token over the keys it may see in one launch;
 * MoE layers group the batch's assignments by expert on the host and run
 * every chosen expert over its rows in one launch per matrix
 * (clv_cuda_matmul_experts). Decode is launch-bound (a token is a few
 * hundred small kernels), so where the model asks for steps that always go
 * together the backend fuses them: a residual add and the next norm
 * (add_rmsnorm), the heads' norms, rope and the K/V store
 * (rope_attention), and in decode MoE the router's logits with its
 * top-k, and the down product with the weighted sum. Ops
 * return nothing, so the first failure is kept in the state,
 * later ops of the batch are skipped, and clv_gpu_decode returns it.
 *
 * Where a device value steers host work, the value is copied back: the
 * experts the router chose, for batches of CLV_GPU_MATMUL_MIN_TOKENS or
 * more (one small copy and wait per MoE layer, to group the batch by
 * expert). Smaller batches (decode) run the chosen experts with kernels
 * that read the ids on the device. */
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "cuda_attention.h"
#include "cuda_graph.h"
#include "cuda_matmul.h"
#include "cuda_matvec.h"
#include "cuda_ops.h"
#include "gpu_state.h"
#include "types.h"
#include "vram.h"

/* Keeps the first failure (and its message: later ones overwrite it). */
static void keep(clv_gpu_state *g, clv_status st) {
    if (st == CLV_OK || g->error) return;
    g->error = st;
    snprintf(g->error_msg, sizeof g->error_msg, "%s", clv_last_error());
}

static const float *weight_f32(clv_gpu_state *g, const clv_weight *w) {
    CLV_ASSERT(w->type == CLV_TYPE_F32); /* norms, gates and rope factors are F32 (checked at load) */
    return clv_gpu_weight(g, w);
}

/* y = rows [r0, r0 + n_rows) of the 2-D slice at `data` of w's layout, times x. */
static void matvec(clv_gpu_state *g, const clv_weight *w, const void *data, int64_t n_rows, const float *x, float *y) {
    keep(g, clv_cuda_matvec(w->type, data, (size_t)w->row_bytes, w->ne[0], n_rows, x, y, g->stream));
}

/* y [n_tokens][n_rows] = rows of the 2-D slice at `data` (w's layout) times
 * x [n_tokens][w->ne[0]]: on tensor cores for enough tokens, else the
 * decode matvec per token. */
static void product(clv_gpu_state *g, const clv_weight *w, const void *data, int64_t n_rows, const float *x,
                    int64_t n_tokens, float *y) {
    int64_t n_in = w->ne[0];
    if (n_tokens >= CLV_GPU_MATMUL_MIN_TOKENS && g->matmul) {
        keep(g, clv_cuda_matmul(g->matmul, w->type, data, (size_t)w->row_bytes, n_in, n_rows, x, n_in, n_tokens, y,
                                n_rows, g->s.matmul_ws, g->s.matmul_ws_bytes));
    } else {
        for (int64_t t = 0; t < n_tokens; t++) matvec(g, w, data, n_rows, x + t * n_in, y + t * n_rows);
    }
}

static void cuda_embed(clv_context *ctx, float *dst, const clv_weight *emb, const int32_t *tokens, int64_t n_tokens,
                       float scale) {
    clv_gpu_state *g = ctx->gpu;
    (void)tokens; /* clv_gpu_decode uploaded them to s.io */
    if (g->error) return;
    ctx->weight_bytes_read += emb->row_bytes * (uint64_t)n_tokens;
    keep(g, clv_cuda_get_rows(emb->type, clv_gpu_weight(g, emb), (size_t)emb->row_bytes, emb->ne[0], emb->ne[1],
                              g->s.io, n_tokens, dst, scale, g->stream));
}

static void cuda_rmsnorm(clv_context *ctx, float *dst, const float *src, const clv_weight *weight, int64_t n_rows,
                         int64_t n, float eps) {
    clv_gpu_state *g = ctx->gpu;
    if (g->error) return;
    CLV_ASSERT(!weight || weight->ne[0] == n);
    keep(g, clv_cuda_rmsnorm(dst, src, weight ? weight_f32(g, weight) : NULL, n_rows, n, eps, g->stream));
}

/* dst[t] += bias for each of n_tokens rows of the bias' width. */
static void add_bias(clv_gpu_state *g, float *dst, const clv_weight *bias, int64_t n_tokens) {
    int64_t n_out = bias->ne[0];
    const float *bd = weight_f32(g, bias);
    for (int64_t t = 0; t < n_tokens; t++)
        keep(g, clv_cuda_add(dst + t * n_out, dst + t * n_out, bd, n_out, g->stream));
}

static void cuda_matmul(clv_context *ctx, float *dst, const clv_weight *w, const clv_weight *bias, const float *src,
                        int64_t n_tokens) {
    clv_gpu_state *g = ctx->gpu;
    if (g->error) return;
    int64_t n_out = w->ne[1];
    ctx->weight_bytes_read += w->bytes;
    CLV_ASSERT(!bias || bias->ne[0] == n_out);
    product(g, w, clv_gpu_weight(g, w), n_out, src, n_tokens, dst);
    if (bias) add_bias(g, dst, bias, n_tokens);
}

/* Decode: the products of one type in one launch per token (q, k and v
 * share x); batches on tensor cores as cuda_matmul does. */
static void cuda_matmul_multi(clv_context *ctx, int n, float *const *dst, const clv_weight *const *w,
                              const clv_weight *const *bias, const float *src, int64_t n_tokens) {
    clv_gpu_state *g = ctx->gpu;
    if (n_tokens >= CLV_GPU_MATMUL_MIN_TOKENS && g->matmul) {
        for (int i = 0; i < n; i++) cuda_matmul(ctx, dst[i], w[i], bias[i], src, n_tokens);
        return;
    }
    if (g->error) return;
    bool done[CLV_OP_MATMUL_MULTI_MAX] = {false};
    for (int i = 0; i < n; i++) {
        if (done[i]) continue;
        /* this product and the later ones of its type and row layout */
        const void *wd[CLV_CUDA_MATVEC_MAX_PARTS];
        int64_t rows[CLV_CUDA_MATVEC_MAX_PARTS];
        int idx[CLV_CUDA_MATVEC_MAX_PARTS], m = 0;
        for (int j = i; j < n && m < CLV_CUDA_MATVEC_MAX_PARTS; j++) {
            if (done[j] || w[j]->type != w[i]->type || w[j]->row_bytes != w[i]->row_bytes || w[j]->ne[0] != w[i]->ne[0])
                continue;
            done[j] = true;
            idx[m] = j, wd[m] = clv_gpu_weight(g, w[j]), rows[m] = w[j]->ne[1];
            ctx->weight_bytes_read += w[j]->bytes;
            m++;
        }
        int64_t n_in = w[i]->ne[0];
        for (int64_t t = 0; t < n_tokens; t++) {
            float *y[CLV_CUDA_MATVEC_MAX_PARTS];
            for (int p = 0; p < m; p++) y[p] = dst[idx[p]] + t * rows[p];
            keep(g, clv_cuda_matvec_multi(w[i]->type, m, wd, rows, y, (size_t)w[i]->row_bytes, n_in, src + t * n_in,
                                          g->stream));
        }
    }
    for (int i = 0; i < n; i++) {
        CLV_ASSERT(!bias[i] || bias[i]->ne[0] == w[i]->ne[1]);
        if (bias[i]) add_bias(g, dst[i], bias[i], n_tokens);
    }
}

static void cuda_rope(clv_context *ctx, float *x, int64_t n_tokens, int64_t n_heads, int64_t head_dim,
                      const int32_t *pos, const clv_rope_params *rp) {
    clv_gpu_state *g = ctx->gpu;
    if (g->error || rp->type == CLV_ROPE_NONE || rp->n_rot == 0) return;
    clv_cuda_rope_params cp = {.mode = (int32_t)rp->type,
                               .n_rot = rp->n_rot,
                               .freq_base = rp->freq_base,
                               .freq_scale = rp->freq_scale,
                               .freq_factors = rp->freq_factors ? weight_f32(g, rp->freq_factors) : NULL};
    /* pos is ctx->s.pos: the device copy of the position (s.io[1]). */
    keep(g, clv_cuda_rope(x, n_tokens, n_heads, head_dim, pos, &cp, g->stream));
}

/* Every query of the batch over the keys it may see in layer il's cache,
 * which already holds the batch's own K and V. */
static void attend(clv_context *ctx, int64_t il, float *out, const float *q, int64_t n_tokens, const int32_t *pos,
                   float scale, int64_t window) {
    clv_gpu_state *g = ctx->gpu;
    const clv_hparams *hp = &ctx->model->hp;
    if (g->error) return;
    int64_t n_head_kv = hp->n_head_kv[il], hd = hp->n_embd_head_k;
    int32_t kv_type = g->params.kv_type;
    clv_cuda_attention_shape shape = {kv_type, hp->n_head, n_head_kv, hd};
    int64_t q_width = hp->n_head * hd, o_width = hp->n_head * hp->n_embd_head_v;
    if (g->capturing) {
        /* a graph serves every position: the range comes from the device */
        int64_t n_max = window > 0 && window < g->params.n_ctx ? window : g->params.n_ctx;
        for (int64_t t = 0; t < n_tokens && !g->error; t++) {
            const float *qt = q + t * q_width;
            float *ot = out + t * o_width;
            if (clv_cuda_attention_fast_head_dim(hd)) {
                keep(g, clv_cuda_attention_decode_at(&shape, qt, g->k_cache[il], g->v_cache[il], pos + t, window,
                                                     n_max, scale, 0.0f, ot, g->s.attn_partial,
                                                     g->s.attn_partial_bytes, g->stream));
            } else {
                keep(g, clv_cuda_attention_decode_generic_at(&shape, qt, g->k_cache[il], g->v_cache[il], pos + t,
                                                             window, scale, 0.0f, ot, g->stream));
            }
        }
        return;
    }
    if (n_tokens > 1 && clv_cuda_attention_fast_head_dim(hd)) { /* a prompt: one launch */
        keep(g, clv_cuda_attention_batch(&shape, q, g->k_cache[il], g->v_cache[il], pos, n_tokens, window, scale, 0.0f,
                                         out, g->stream));
        return;
    }
    for (int64_t t = 0; t < n_tokens && !g->error; t++) {
        int64_t kv_start, n_kv;
        clv_cuda_attention_range(g->pos + t, window, &kv_start, &n_kv);
        const float *qt = q + t * q_width;
        float *ot = out + t * o_width;
        if (clv_cuda_attention_fast_head_dim(hd)) {
            keep(g, clv_cuda_attention_decode(&shape, qt, g->k_cache[il], g->v_cache[il], kv_start, n_kv, scale, 0.0f,
                                              ot, g->s.attn_partial, g->s.attn_partial_bytes, g->stream));
        } else {
            keep(g, clv_cuda_attention_decode_generic(&shape, qt, g->k_cache[il], g->v_cache[il], kv_start, n_kv,
                                                      scale, 0.0f, ot, g->stream));
        }
    }
}

static void cuda_attention(clv_context *ctx, int64_t il, float *out, const float *q, const float *k, const float *v,
                           int64_t n_tokens, const int32_t *pos, float scale, int64_t window) {
    clv_gpu_state *g = ctx->gpu;
    const clv_hparams *hp = &ctx->model->hp;
    if (g->error) return;
    int64_t n_head_kv = hp->n_head_kv[il], hd = hp->n_embd_head_k;
    /* the whole batch's K and V first: token t sees the batch's tokens before it */
    keep(g, clv_cuda_kv_store_pair(g->k_cache[il], g->v_cache[il], g->params.kv_type, n_head_kv * hd,
                                   n_head_kv * hp->n_embd_head_v, pos, k, v, n_tokens, g->stream));
    attend(ctx, il, out, q, n_tokens, pos, scale, window);
}

/* The heads' norms, the rope and the K/V store in one launch, then attention. */
static void cuda_rope_attention(clv_context *ctx, int64_t il, float *out, float *q, float *k, const float *v,
                                int64_t n_tokens, const int32_t *pos, float scale, int64_t window,
                                const clv_qk_prep *prep) {
    clv_gpu_state *g = ctx->gpu;
    const clv_hparams *hp = &ctx->model->hp;
    if (g->error) return;
    int64_t n_head_kv = hp->n_head_kv[il], hd = hp->n_embd_head_k;
    const clv_rope_params *rp = &prep->rope;
    clv_cuda_qk_prep cp = {
        .q_norm = prep->q_norm ? weight_f32(g, prep->q_norm) : NULL,
        .k_norm = prep->k_norm ? weight_f32(g, prep->k_norm) : NULL,
        .eps = prep->eps,
        .rope = {.mode = (int32_t)rp->type,
                 .n_rot = rp->n_rot,
                 .freq_base = rp->freq_base,
                 .freq_scale = rp->freq_scale,
                 .freq_factors = rp->freq_factors ? weight_f32(g, rp->freq_factors) : NULL},
    };
    CLV_ASSERT((!prep->q_norm || prep->q_norm->ne[0] == hd) && (!prep->k_norm || prep->k_norm->ne[0] == hd));
    keep(g, clv_cuda_qk_rope_store(q, k, v, n_tokens, hp->n_head, n_head_kv, hd, n_head_kv * hp->n_embd_head_v, pos,
                                   &cp, g->k_cache[il], g->v_cache[il], g->params.kv_type, g->stream));
    attend(ctx, il, out, q, n_tokens, pos, scale, window);
}

static void cuda_add_rmsnorm(clv_context *ctx, float *x, const float *delta, float *dst, const clv_weight *weight,
                             int64_t n_tokens, int64_t n, float eps) {
    clv_gpu_state *g = ctx->gpu;
    if (g->error) return;
    CLV_ASSERT(!weight || weight->ne[0] == n);
    keep(g, clv_cuda_add_rmsnorm(dst, x, delta, weight ? weight_f32(g, weight) : NULL, n_tokens, n, eps, g->stream));
}

static void cuda_add(clv_context *ctx, float *dst, const float *src, int64_t n_tokens, int64_t n) {
    clv_gpu_state *g = ctx->gpu;
    if (g->error) return;
    keep(g, clv_cuda_add(dst, dst, src, n_tokens * n, g->stream));
}

static void cuda_glu(clv_context *ctx, float *dst, const float *gate, const float *up, int64_t n_tokens, int64_t n,
                     clv_ffn_act act) {
    clv_gpu_state *g = ctx->gpu;
    if (g->error) return;
    keep(g, clv_cuda_glu(dst, gate, up, n_tokens * n, (clv_cuda_act)act, g->stream));
}

/* Whether gate and up can run as one fused product (same type and layout). */
static bool fusable(const clv_weight *gate, const clv_weight *up) {
    return gate->type == up->type && gate->row_bytes == up->row_bytes && gate->ne[0] == up->ne[0] &&
           gate->ne[1] == up->ne[1];
}

/* Copies `bytes` of device memory to an observer's host buffer (waits for
 * the stream); false after a failure (kept in the state). */
static bool observe_copy(clv_gpu_state *g, void *host, const void *dev, uint64_t bytes) {
    if (g->error) return false;
    keep(g, clv_vram_to_host(host, dev, bytes, g->stream));
    return !g->error;
}

static void cuda_ffn(clv_context *ctx, int64_t il, float *dst, const float *x, const clv_weight *gate,
                     const clv_weight *up, const clv_weight *down, int64_t n_tokens, clv_ffn_act act) {
    clv_gpu_state *g = ctx->gpu;
    int64_t n_ff = up->ne[1], n_embd = gate->ne[0];
    if ((n_tokens < CLV_GPU_MATMUL_MIN_TOKENS || !g->matmul) && fusable(gate, up)) {
        /* decode: gate, up and the GLU in one launch per token */
        if (g->error) return;
        ctx->weight_bytes_read += gate->bytes + up->bytes;
        const void *gd = clv_gpu_weight(g, gate), *ud = clv_gpu_weight(g, up);
        for (int64_t t = 0; t < n_tokens; t++) {
            keep(g, clv_cuda_matvec_glu(gate->type, gd, ud, (size_t)gate->row_bytes, n_embd, n_ff, x + t * n_embd,
                                        g->s.ffn_a + t * n_ff, (clv_cuda_act)act, g->stream));
        }
    } else {
        cuda_matmul(ctx, g->s.ffn_a, gate, NULL, x, n_tokens);
        cuda_matmul(ctx, g->s.ffn_b, up, NULL, x, n_tokens);
        cuda_glu(ctx, g->s.ffn_a, g->s.ffn_a, g->s.ffn_b, n_tokens, n_ff, act);
    }
    const clv_ffn_observer *obs = ctx->params.observer;
    if (il >= 0 && obs && obs->dense) { /* the observer sees h on the host */
        uint64_t f = sizeof(float);
        if (observe_copy(g, g->obs_x, x, (uint64_t)(n_tokens * n_embd) * f) &&
            observe_copy(g, g->obs_h, g->s.ffn_a, (uint64_t)(n_tokens * n_ff) * f))
            obs->dense(obs->user, il, g->obs_x, g->obs_h, n_tokens, n_embd, n_ff);
    }
    cuda_matmul(ctx, dst, down, NULL, g->s.ffn_a, n_tokens);
}

/* Expert ex's 2-D slice of a 3-D expert tensor {n_in, n_out, n_expert}. */
static const void *expert_slice(clv_gpu_state *g, const clv_weight *w, int32_t ex) {
    return (const uint8_t *)clv_gpu_weight(g, w) + (uint64_t)ex * w->row_bytes * (uint64_t)w->ne[1];
}

/* A few tokens' routed experts, chosen and run on the device: each token's
 * k experts in one launch per matrix (clv_cuda_matvec_experts reads the
 * router's ids where they are), outputs in assignment order, so decode
 * never waits for the router. */
static void moe_on_device(clv_gpu_state *g, float *dst, const float *x, const clv_layer *l, int64_t n_tokens,
                          int64_t n_expert, int64_t k, int64_t n_embd, clv_ffn_act act) {
    clv_gpu_scratch *s = &g->s;
    const clv_weight *gate = l->ffn_gate_exps, *up = l->ffn_up_exps, *down = l->ffn_down_exps;
    int64_t n_ff = up->ne[1], A = n_tokens * k;
    bool fused = fusable(gate, up);
    for (int64_t t = 0; t < n_tokens; t++) {
        const int32_t *ids = s->expert_ids + t * k;
        const float *xt = x + t * n_embd;
        if (fused) {
            keep(g, clv_cuda_matvec_experts_glu(gate->type, clv_gpu_weight(g, gate), clv_gpu_weight(g, up),
                                                (size_t)gate->row_bytes, n_embd, n_ff, n_expert, ids, k, xt, 0,
                                                s->moe_a + t * k * n_ff, n_ff, (clv_cuda_act)act, g->stream));
            continue;
        }
        keep(g, clv_cuda_matvec_experts(gate->type, clv_gpu_weight(g, gate), (size_t)gate->row_bytes, n_embd, n_ff,
                                        n_expert, ids, k, xt, 0, s->moe_a + t * k * n_ff, n_ff, g->stream));
        keep(g, clv_cuda_matvec_experts(up->type, clv_gpu_weight(g, up), (size_t)up->row_bytes, n_embd, n_ff, n_expert,
                                        ids, k, xt, 0, s->moe_b + t * k * n_ff, n_ff, g->stream));
    }
    if (!fused) keep(g, clv_cuda_glu(s->moe_a, s->moe_a, s->moe_b, A * n_ff, (clv_cuda_act)act, g->stream));
    /* down and the weighted sum in one launch */
    keep(g, clv_cuda_matvec_experts_combine(down->type, clv_gpu_weight(g, down), (size_t)down->row_bytes, n_ff,
                                            n_embd, n_expert, s->expert_ids, s->expert_w, n_tokens, k, s->moe_a, n_ff,
                                            dst, n_embd, g->stream));
}

/* The batch's routed experts, grouped by expert: the router's choices come
 * back to the host (one wait per layer and batch), which groups the
 * assignments, uploads the grouping, and runs each chosen expert once over
 * the rows gathered for it (on tensor cores when it has enough of them);
 * the outputs are combined per token in slot order. */
static void cuda_moe(clv_context *ctx, float *dst, const float *x, const clv_layer *l, int64_t n_tokens,
                     clv_ffn_act act, bool renormalize) {
    clv_gpu_state *g = ctx->gpu;
    clv_gpu_scratch *s = &g->s;
    const clv_hparams *hp = &ctx->model->hp;
    int64_t n_expert = hp->n_expert, k = hp->n_expert_used, n_embd = hp->n_embd, A = n_tokens * k;
    CLV_ASSERT(k <= CLV_GPU_MAX_EXPERT_USED && n_tokens <= g->params.n_batch);
    /* The router goes on tensor cores with the rest: computing it in float a
     * token at a time cost qwen3-30b-a3b's pp512 a fifth (664 -> 525 tok/s)
     * and did not remove the near-tie flips of the random fixtures, which
     * come from the (then bf16) expert outputs of the layer before. */
    const clv_weight *router = l->ffn_gate_inp;
    bool on_device = (n_tokens < CLV_GPU_MATMUL_MIN_TOKENS || !g->matmul) && !ctx->expert_counts;
    if (on_device && router->type == CLV_TYPE_F32 && clv_cuda_moe_router_fits(n_embd, n_expert, k)) {
        /* decode: logits and routing in one launch */
        if (g->error) return;
        ctx->weight_bytes_read += router->bytes;
        keep(g, clv_cuda_moe_router(clv_gpu_weight(g, router), (size_t)router->row_bytes, n_embd, n_expert, x,
                                    n_tokens, s->router, s->expert_ids, s->expert_w, k, renormalize, s->route_done,
                                    g->stream));
    } else {
        cuda_matmul(ctx, s->router, router, NULL, x, n_tokens);
        if (g->error) return;
        keep(g, clv_cuda_moe_route(s->expert_ids, s->expert_w, s->router, n_tokens, n_expert, k, renormalize,
                                   g->stream));
    }
    const clv_ffn_observer *obs = ctx->params.observer;
    if (obs && obs->moe) {
        uint64_t f = sizeof(float);
        if (observe_copy(g, g->obs_x, x, (uint64_t)(n_tokens * n_embd) * f) &&
            observe_copy(g, g->moe_ids_host, s->expert_ids, (uint64_t)A * sizeof(int32_t)) &&
            observe_copy(g, g->obs_w, s->expert_w, (uint64_t)A * f))
            obs->moe(obs->user, l - ctx->model->layers, g->obs_x, g->moe_ids_host, g->obs_w, n_tokens, n_embd, k);
    }
    /* Decode-sized batches stay on the device, unless the profiler counts
     * experts (on the host). Bytes read: each assignment's expert, an upper
     * bound when tokens share one. */
    const clv_weight *mats[3] = {l->ffn_gate_exps, l->ffn_up_exps, l->ffn_down_exps};
    if (on_device) {
        moe_on_device(g, dst, x, l, n_tokens, n_expert, k, n_embd, act);
        int64_t used = A < n_expert ? A : n_expert;
        for (int i = 0; i < 3; i++) ctx->weight_bytes_read += mats[i]->bytes / (uint64_t)n_expert * (uint64_t)used;
        return;
    }
    keep(g, clv_vram_to_host(g->moe_ids_host, s->expert_ids, (uint64_t)A * sizeof(int32_t), g->stream));
    if (g->error) return;

    /* Group: offsets by expert, then each assignment's grouped row. */
    int64_t *off = g->moe_offset;
    int32_t *rows = g->moe_map_host, *slot = g->moe_map_host + A;
    memset(off, 0, (size_t)(n_expert + 1) * sizeof *off);
    for (int64_t a = 0; a < A; a++) {
        int32_t ex = g->moe_ids_host[a];
        CLV_ASSERT(ex >= 0 && ex < n_expert); /* top-k gives distinct ids in range */
        off[ex + 1]++;
    }
    for (int64_t e = 0; e < n_expert; e++) off[e + 1] += off[e];
    for (int64_t a = 0; a < A; a++) {
        int32_t ex = g->moe_ids_host[a];
        int64_t r = off[ex]++; /* off[e] walks to the start of e + 1 ... */
        rows[r] = (int32_t)(a / k);
        slot[a] = (int32_t)r;
    }
    for (int64_t e = n_expert; e > 0; e--) off[e] = off[e - 1]; /* ... and back */
    off[0] = 0;
    if (ctx->expert_counts) {
        int64_t il = l - ctx->model->layers;
        for (int64_t e = 0; e < n_expert; e++) ctx->expert_counts[il * n_expert + e] += off[e + 1] - off[e];
    }
    const clv_weight *gate = l->ffn_gate_exps, *up = l->ffn_up_exps, *down = l->ffn_down_exps;
    int64_t n_ff = up->ne[1], used = 0;
    /* The tiles of the grouping ride along after it (one upload). */
    clv_cuda_expert_tile *tiles = (clv_cuda_expert_tile *)(void *)(g->moe_map_host + 2 * A);
    int64_t n_tiles = clv_cuda_expert_tiles(off, n_expert, tiles);
    keep(g, clv_vram_to_device(s->moe_map, g->moe_map_host, (uint64_t)(2 * A + 3 * n_tiles) * sizeof(int32_t),
                               g->stream));
    for (int64_t e = 0; e < n_expert; e++) used += off[e + 1] > off[e];
    if (clv_gpu_moe_one_launch(n_embd, n_ff, n_tiles)) {
        /* every expert's rows in one launch per matrix, gate and up reading
         * the batch's rows through the grouping */
        const clv_cuda_expert_tile *td = (const clv_cuda_expert_tile *)(const void *)(s->moe_map + 2 * A);
        keep(g, clv_cuda_matmul_experts(gate->type, clv_gpu_weight(g, gate), (size_t)gate->row_bytes, n_embd, n_ff,
                                        n_expert, td, n_tiles, x, s->moe_map, n_embd, s->moe_a, n_ff, g->stream));
        keep(g, clv_cuda_matmul_experts(up->type, clv_gpu_weight(g, up), (size_t)up->row_bytes, n_embd, n_ff,
                                        n_expert, td, n_tiles, x, s->moe_map, n_embd, s->moe_b, n_ff, g->stream));
        keep(g, clv_cuda_glu(s->moe_a, s->moe_a, s->moe_b, A * n_ff, (clv_cuda_act)act, g->stream));
        keep(g, clv_cuda_matmul_experts(down->type, clv_gpu_weight(g, down), (size_t)down->row_bytes, n_ff, n_embd,
                                        n_expert, td, n_tiles, s->moe_a, NULL, n_ff, s->moe_c, n_embd, g->stream));
        keep(g, clv_cuda_moe_combine(dst, s->moe_c, s->moe_map + A, s->expert_w, n_tokens, k, n_embd, g->stream));
        for (int i = 0; i < 3; i++) ctx->weight_bytes_read += mats[i]->bytes / (uint64_t)n_expert * (uint64_t)used;
        return;
    }
    CLV_ASSERT(s->moe_x); /* sized for this model (gpu_state.c) */
    keep(g, clv_cuda_get_rows(CLV_TYPE_F32, x, (size_t)n_embd * sizeof(float), n_embd, n_tokens, s->moe_map, A,
                              s->moe_x, 1.0f, g->stream));
    for (int64_t e = 0; e < n_expert && !g->error; e++) {
        int64_t r0 = off[e], n = off[e + 1] - r0;
        if (n == 0) continue;
        product(g, gate, expert_slice(g, gate, (int32_t)e), n_ff, s->moe_x + r0 * n_embd, n, s->moe_a + r0 * n_ff);
        product(g, up, expert_slice(g, up, (int32_t)e), n_ff, s->moe_x + r0 * n_embd, n, s->moe_b + r0 * n_ff);
    }
    keep(g, clv_cuda_glu(s->moe_a, s->moe_a, s->moe_b, A * n_ff, (clv_cuda_act)act, g->stream));
    for (int64_t e = 0; e < n_expert && !g->error; e++) {
        int64_t r0 = off[e], n = off[e + 1] - r0;
        if (n > 0)
            product(g, down, expert_slice(g, down, (int32_t)e), n_embd, s->moe_a + r0 * n_ff, n,
                    s->moe_c + r0 * n_embd);
    }
    keep(g, clv_cuda_moe_combine(dst, s->moe_c, s->moe_map + A, s->expert_w, n_tokens, k, n_embd, g->stream));
    for (int i = 0; i < 3; i++) ctx->weight_bytes_read += mats[i]->bytes / (uint64_t)n_expert * (uint64_t)used;
}

static void cuda_sigmoid_gate(clv_context *ctx, float *dst, const float *x, const clv_weight *gate, int64_t n_tokens,
                              int64_t n_dst) {
    clv_gpu_state *g = ctx->gpu;
    if (g->error) return;
    keep(g, clv_cuda_sigmoid_gate(dst, x, weight_f32(g, gate), n_tokens, gate->ne[0], n_dst, g->stream));
}

/* The logits of `rows` tokens, device to ctx->logits (waits for the stream). */
static clv_status logits_to_host(clv_context *ctx, int64_t rows) {
    clv_gpu_state *g = ctx->gpu;
    uint64_t bytes = (uint64_t)(rows * ctx->model->hp.n_vocab) * sizeof(float);
    clv_status st = clv_vram_to_host(ctx->logits, g->s.logits, bytes, g->stream);
    if (!st) ctx->n_logits = rows;
    return st;
}

static void cuda_logits(clv_context *ctx, const float *x, int64_t n_tokens, bool all) {
    clv_gpu_state *g = ctx->gpu;
    const clv_model *m = ctx->model;
    int64_t n_embd = m->hp.n_embd;
    if (g->error) return;
    CLV_ASSERT(!all || g->params.logits_all);
    int64_t rows = all ? n_tokens : 1;
    const float *first = x + (n_tokens - rows) * n_embd;
    cuda_rmsnorm(ctx, g->s.xb, first, m->output_norm, rows, n_embd, m->hp.norm_eps);
    cuda_matmul(ctx, g->s.logits, m->output, NULL, g->s.xb, rows);
    if (g->error || g->capturing) return; /* a replay's logits are copied after it */
    keep(g, logits_to_host(ctx, rows));
}

static const clv_backend clv_backend_cuda = {
    .name = "cuda",
    .embed = cuda_embed,
    .rmsnorm = cuda_rmsnorm,
    .matmul = cuda_matmul,
    .rope = cuda_rope,
    .attention = cuda_attention,
    .add = cuda_add,
    .matmul_multi = cuda_matmul_multi,
    .rope_attention = cuda_rope_attention,
    .add_rmsnorm = cuda_add_rmsnorm,
    .glu = cuda_glu,
    .ffn = cuda_ffn,
    .moe = cuda_moe,
    .sigmoid_gate = cuda_sigmoid_gate,
    .logits = cuda_logits,
};

/* What the CUDA ops cannot run, named; CLV_OK when they cover the model. */
static clv_status check_model(const clv_model *m) {
    const clv_hparams *hp = &m->hp;
    int64_t hd = hp->n_embd_head_k;
    if (hp->n_embd_head_v != hd) {
        return clv_fail(CLV_ERR_UNSUPPORTED, "GPU backend: K head size %lld differs from V head size %lld; run on "
                                             "the CPU", (long long)hd, (long long)hp->n_embd_head_v);
    }
    if (hd > 256) {
        return clv_fail(CLV_ERR_UNSUPPORTED, "GPU backend: head size %lld is above 256; run on the CPU",
                        (long long)hd);
    }
    if (hp->rope_type != CLV_ROPE_NONE && (hp->n_rot % 2 || hp->n_rot > hd)) {
        return clv_fail(CLV_ERR_UNSUPPORTED, "GPU backend: %lld rotated dimensions of heads of %lld; run on the CPU",
                        (long long)hp->n_rot, (long long)hd);
    }
    if (hp->n_expert && (hp->n_expert_used < 1 || hp->n_expert_used > CLV_GPU_MAX_EXPERT_USED)) {
        return clv_fail(CLV_ERR_UNSUPPORTED, "GPU backend: %lld experts per token (at most %d); run on the CPU",
                        (long long)hp->n_expert_used, CLV_GPU_MAX_EXPERT_USED);
    }
    return CLV_OK;
}

clv_status clv_gpu_context_init(clv_context *ctx) {
    clv_status st = check_model(ctx->model);
    if (st) return st;
    clv_gpu_params gp = clv_gpu_default_params();
    gp.device = ctx->params.gpu_device;
    gp.vram_budget = ctx->params.vram_budget;
    gp.n_ctx = ctx->params.n_ctx;
    gp.kv_type = ctx->params.kv_type;
    gp.n_batch = ctx->params.n_batch;
    gp.logits_all = ctx->params.logits_all;
    clv_gpu_state *g = NULL;
    if ((st = clv_gpu_state_create(ctx->model, &gp, &g))) return st;
    ctx->gpu = g;
    /* No decode graph while the profiler counts experts (the MoE layers
     * then group on the host) or an observer watches (it is called from the
     * host), or when switched off. Sparsity is refused before this. */
    const char *graphs = getenv("CLEAVE_CUDA_GRAPHS");
    g->graph_off = (ctx->params.count_experts && ctx->model->hp.n_expert) || ctx->params.observer ||
                   (graphs && !strcmp(graphs, "0"));
    if (ctx->params.observer) {
        const clv_hparams *hp = &ctx->model->hp;
        int64_t max_ff = 1, B = g->params.n_batch, A = hp->n_expert ? B * hp->n_expert_used : 1;
        for (int64_t il = 0; il < hp->n_layer; il++) max_ff = hp->n_ff[il] > max_ff ? hp->n_ff[il] : max_ff;
        g->obs_x = malloc(sizeof(float) * (size_t)(B * hp->n_embd));
        g->obs_h = malloc(sizeof(float) * (size_t)(B * max_ff));
        g->obs_w = malloc(sizeof(float) * (size_t)A);
        if (!g->obs_x || !g->obs_h || !g->obs_w) { /* the caller frees the state with the context */
            return clv_fail(CLV_ERR_NOMEM, "no memory for the observer's copies of GPU activations");
        }
    }
    ctx->backend = &clv_backend_cuda;
    ctx->params.gemm_min_batch = -1;
    /* Models pass these to the ops; here they are device buffers. */
    clv_scratch *s = &ctx->s;
    memset(s, 0, sizeof *s);
    s->x = g->s.x;
    s->xb = g->s.xb;
    s->xb2 = g->s.xb2;
    s->q = g->s.q;
    s->k = g->s.k;
    s->v = g->s.v;
    s->attn = g->s.attn;
    s->ffn_a = g->s.ffn_a;
    s->ffn_b = g->s.ffn_b;
    s->router = g->s.router;
    s->expert_ids = g->s.expert_ids;
    s->expert_w = g->s.expert_w;
    s->moe_a = g->s.moe_a;
    s->moe_b = g->s.moe_b;
    s->moe_c = g->s.moe_c;
    s->pos = g->s.io + g->params.n_batch;
    return CLV_OK;
}

/* One token through the decode graph, capturing it the first time; false
 * when the graph cannot be had (the capture failed: graphs are switched off
 * for the context and the caller runs the ops directly; nothing has run). */
static bool decode_with_graph(clv_context *ctx, const clv_batch *piece, clv_status *st) {
    clv_gpu_state *g = ctx->gpu;
    if (!g->decode_graph) {
        uint64_t bytes0 = ctx->weight_bytes_read;
        if (clv_cuda_graph_begin(g->stream)) {
            g->graph_off = true;
            return false;
        }
        g->capturing = true;
        clv_status fst = ctx->model->arch->forward(ctx, piece);
        g->capturing = false;
        clv_cuda_graph *graph = NULL;
        clv_status gst = clv_cuda_graph_end(g->stream, &graph);
        g->graph_weight_bytes = ctx->weight_bytes_read - bytes0;
        ctx->weight_bytes_read = bytes0;
        if (fst || gst || g->error) {
            clv_cuda_graph_free(graph);
            g->error = CLV_OK;
            g->graph_off = true;
            return false;
        }
        g->decode_graph = graph;
    }
    *st = clv_cuda_graph_launch(g->decode_graph, g->stream);
    if (!*st) *st = logits_to_host(ctx, 1);
    if (!*st) ctx->weight_bytes_read += g->graph_weight_bytes;
    return true;
}

clv_status clv_gpu_decode(clv_context *ctx, const clv_batch *batch) {
    clv_gpu_state *g = ctx->gpu;
    int64_t n = batch->n_tokens, B = g->params.n_batch;
    int32_t *io = g->io_host;
    clv_status st = CLV_OK;
    /* In pieces of n_batch; clv_decode has checked that a batch wanting
     * every logit fits one piece. */
    for (int64_t done = 0; done < n && !st;) {
        int64_t take = n - done < B ? n - done : B;
        for (int64_t i = 0; i < take; i++) {
            io[i] = batch->tokens[done + i];
            io[B + i] = (int32_t)(ctx->n_past + i);
        }
        g->error = CLV_OK;
        g->pos = ctx->n_past;
        if ((st = clv_vram_to_device(g->s.io, io, sizeof(int32_t) * 2 * (size_t)B, g->stream))) break;
        clv_batch piece = {.n_tokens = take, .tokens = batch->tokens + done, .logits_all = batch->logits_all};
        if (take == 1 && !g->graph_off && decode_with_graph(ctx, &piece, &st)) {
            if (st) break;
            ctx->n_past += take;
            done += take;
            continue;
        }
        if ((st = ctx->model->arch->forward(ctx, &piece))) break;
        /* the logits' copy to the host waits for the piece; an error of any op shows here */
        if (g->error) {
            st = clv_fail(g->error, "%s", g->error_msg);
            break;
        }
        ctx->n_past += take;
        done += take;
    }
    return st;
}
