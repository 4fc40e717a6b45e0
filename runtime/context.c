/* Context creation (KV cache and scratch, allocated once) and decode. */
#include "context.h"

#include <stdlib.h>
#include <string.h>

#include "matvec.h"
#include "threadpool.h"
#include "types.h"

clv_context_params clv_context_default_params(void) {
    return (clv_context_params){.n_ctx = 0, .n_batch = 512, .n_threads = 0, .kv_type = CLV_TYPE_F16, .logits_all = false};
}

void clv_context_free(clv_context *ctx) {
    if (!ctx) return;
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
                    s->moe_a, s->moe_b, s->moe_c, ctx->expert_counts, s->xq, s->xq_grouped, s->attn_partial, s->pos, ctx->logits};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) free(bufs[i]);
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
    if (p.kv_type != CLV_TYPE_F16 && p.kv_type != CLV_TYPE_F32) {
        return clv_fail(CLV_ERR_ARG, "KV cache type %s is not supported (F16 or F32)", clv_type_name(p.kv_type));
    }
    clv_context *ctx = calloc(1, sizeof *ctx);
    if (!ctx) return clv_fail(CLV_ERR_NOMEM, "no memory for a context");
    ctx->model = m;
    ctx->params = p;

    clv_threadpool_params tp = clv_threadpool_default_params();
    tp.n_threads = p.n_threads;
    tp.pin = true;
    clv_status st = clv_threadpool_create(&tp, &ctx->pool);
    if (st) {
        free(ctx);
        return st;
    }

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
    /* Large batches run in pieces of n_batch. */
    for (int64_t done = 0; done < n;) {
        int64_t take = n - done < ctx->params.n_batch ? n - done : ctx->params.n_batch;
        bool last = done + take == n;
        if (batch->logits_all && !last) {
            /* Only one piece's logits fit: callers wanting all logits must
             * keep batches within n_batch. */
            return clv_fail(CLV_ERR_ARG, "a batch that wants every logit may hold at most %lld tokens",
                            (long long)ctx->params.n_batch);
        }
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
