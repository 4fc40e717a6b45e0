/* An inference context: the KV cache and scratch buffers for one sequence,
 * sized once at creation for the requested context and batch, and the thread
 * pool the CPU backend computes with. Nothing is allocated per token. */
#ifndef CLV_CONTEXT_H
#define CLV_CONTEXT_H

#include <stdbool.h>
#include <stdint.h>

#include "model.h"
#include "status.h"

struct clv_threadpool;

typedef struct clv_context_params {
    int64_t n_ctx;   /* positions the KV cache holds (0: the model's, capped at 4096) */
    int64_t n_batch; /* most tokens per forward call (default 512) */
    int n_threads;   /* 0: one per physical core */
    int32_t kv_type; /* CLV_TYPE_F16 (default) or CLV_TYPE_F32 */
    bool logits_all; /* allow batches that want logits for every token */
    /* Reference mode: products with quantized weights use the activations in
     * float (weights decoded by the scalar reference) instead of quantizing
     * them to 8 bits. Slow; for checking the engine against other
     * implementations. */
    bool f32_activations;
    /* Count how often each expert of each layer is chosen (expert_counts). */
    bool count_experts;
} clv_context_params;

clv_context_params clv_context_default_params(void);

struct clv_batch {
    int64_t n_tokens;
    const int32_t *tokens;
    /* logits for every token (needs logits_all at creation) or the last only */
    bool logits_all;
};

/* Scratch for one forward call, sized for n_batch tokens (A = n_batch *
 * n_expert_used expert assignments for MoE models). */
typedef struct clv_scratch {
    float *x;        /* residual stream [n_batch][n_embd] */
    float *xb;       /* normed input [n_batch][max(n_embd, attention width)] */
    float *xb2;      /* block output [n_batch][n_embd] */
    float *q, *k, *v;
    float *attn;     /* attention output [n_batch][max(n_embd, n_head * head_v)] */
    float *ffn_a, *ffn_b; /* dense FFN [n_batch][n_ff] */
    float *router;        /* [n_batch][n_expert] */
    int32_t *expert_ids;  /* [n_batch][n_expert_used] */
    float *expert_w;      /* [n_batch][n_expert_used] */
    int32_t *expert_rows; /* token of each grouped assignment [A] */
    int32_t *slot_pos;    /* grouped position of each (token, slot) [A] */
    int64_t *expert_count; /* group offsets [n_expert + 1] */
    int64_t *expert_fill;  /* [n_expert] */
    int32_t *expert_active; /* [n_expert] */
    float *moe_a, *moe_b, *moe_c; /* [A][max(n_ff_exp, n_embd)] */
    void *xq;              /* quantized activations [A][xq_row_bytes] */
    void *xq_grouped;      /* the same, grouped by expert */
    size_t xq_row_bytes;
    float *attn_partial;   /* split-K attention partials */
    size_t attn_partial_floats;
    int32_t *pos;          /* positions of the batch [n_batch] */
} clv_scratch;

struct clv_context {
    clv_model *model;
    clv_context_params params;
    struct clv_threadpool *pool;
    /* KV cache: per layer [n_ctx][n_head_kv * head_dim] of kv_type */
    void **k_cache, **v_cache;
    int64_t n_past; /* positions filled */
    clv_scratch s;
    float *logits;  /* [n_logits][n_vocab] */
    int64_t n_logits;
    size_t kv_bytes, scratch_bytes;
    /* Weight bytes the forward passes have read since the last reset: what
     * `cleave bench` divides by time for achieved bandwidth. */
    uint64_t weight_bytes_read;
    /* [n_layer][n_expert] routing counts when params.count_experts, else NULL. */
    int64_t *expert_counts;
};

clv_status clv_context_create(clv_model *m, const clv_context_params *params, clv_context **out);
void clv_context_free(clv_context *ctx);

/* Runs tokens at positions n_past, n_past+1, ... and advances n_past.
 * CLV_ERR_RANGE when the cache would overflow; the context is unchanged. */
clv_status clv_decode(clv_context *ctx, const clv_batch *batch);

/* Logits of row i of the last decode: i in [0, n_tokens) with logits_all,
 * otherwise only i = 0 (the last token). */
const float *clv_context_logits(const clv_context *ctx, int64_t i);

/* Forgets positions >= n (n <= n_past), e.g. to start over. */
void clv_context_truncate(clv_context *ctx, int64_t n);

#endif
