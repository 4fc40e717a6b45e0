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

/* Weight rows the oneDNN prompt path decodes to float at a time, per thread. */
#define CLV_GEMM_PANEL_ROWS 64

/* What a calibration run (the profiler) sees of each layer's FFN while the
 * forward pass runs. Called on the thread that runs clv_decode, after the
 * values exist and before they are used further; the pointers are valid only
 * during the call. Either callback may be NULL. */
typedef struct clv_ffn_observer {
    void *user;
    /* Layer il's dense FFN (not a shared expert): x is its input (after the
     * norm) [n_tokens][n_embd], h = act(gate . x) * (up . x) [n_tokens][n_ff],
     * each neuron's gated activation, the value down multiplies. */
    void (*dense)(void *user, int64_t il, const float *x, const float *h, int64_t n_tokens, int64_t n_embd,
                  int64_t n_ff);
    /* Layer il's routing: x as above, ids and weights [n_tokens][n_used] the
     * chosen experts and the weights their outputs are summed with. */
    void (*moe)(void *user, int64_t il, const float *x, const int32_t *ids, const float *weights, int64_t n_tokens,
                int64_t n_embd, int64_t n_used);
} clv_ffn_observer;

/* A layer's neuron predictor (predictor/ trains and loads them): a two-layer
 * low-rank network, logit = w2 . relu(w1 . x + b1) + b2, that says which FFN
 * neurons will be active for FFN input x; a neuron is predicted active when
 * its logit exceeds logit_threshold. */
typedef struct clv_neuron_predictor {
    const clv_weight *w1; /* {n_embd, rank} */
    const float *b1;      /* [rank], or NULL for zeros */
    const clv_weight *w2; /* {rank, n_ff} */
    const float *b2;      /* [n_ff], or NULL for zeros */
    float logit_threshold;
    /* Out-of-distribution guard: an input with some |x_i - x_mean_i| *
     * x_inv_sd_i above z_limit is unlike every training sample (the
     * attention-sink first token of Gemma 3, with its massive activations,
     * is one), so the predictor is not trusted and every neuron is a
     * candidate. x_mean NULL or z_limit <= 0: no guard. */
    const float *x_mean, *x_inv_sd; /* [n_embd] */
    float z_limit;
} clv_neuron_predictor;

/* Activation sparsity for dense FFNs. Neuron i of layer il is kept when its
 * gated activation h_i = act(gate_i . x) * (up_i . x) has |h_i| >
 * threshold[il] and, with `keep`, when it is also among the
 * ceil(keep[il] * n_ff) largest |h| of its token (per-token top-k); with a
 * predictor, only neurons the predictor says are active are considered at
 * all (their gate and up rows are the only ones read). Decode computes only
 * the predicted rows of gate and up and the kept rows of down; batches
 * compute densely and zero the skipped neurons, which gives the same
 * neurons. Thresholding the product rather than act(gate) alone (CATS)
 * keeps far more quality at the same sparsity on small models; per-token
 * top-k (threshold 0, keep 1 - S) holds every token to the same sparsity,
 * which some models need (docs/profiler.md). Borrowed: must outlive the
 * context. */
typedef struct clv_ffn_sparsity {
    const float *threshold;                 /* [n_layer]; a negative entry leaves the layer dense (its
                                               predictor unused) */
    const float *keep;                      /* [n_layer] shares in (0, 1], or NULL: no per-token cap */
    const clv_neuron_predictor *predictor;  /* [n_layer] or NULL; entries with w1 == NULL have none */
} clv_ffn_sparsity;

/* What the sparse FFN path (runtime/ops_cpu_sparse.c) builds at creation. */
typedef struct clv_sparse_layer {
    bool sparse; /* threshold >= 0 */
    float threshold;
    int64_t keep; /* most neurons a token keeps (n_ff: no cap) */
    const clv_neuron_predictor *predictor; /* NULL: none */
    /* ffn_down transposed: [n_ff] rows of n_embd, so that an active neuron
     * is one contiguous row to accumulate. F32 rows for float sources; for
     * quantized ones I8 rows, weight = down_t_scale[e] * down_t_row_scale[i]
     * * q[i][e]: dividing by each output channel's largest |weight| first
     * keeps residual-stream outlier channels from setting the scale of a
     * whole row, and one scale per row leaves the accumulation a bare
     * multiply-add per weight. */
    void *down_t;
    int32_t down_t_type;
    size_t down_t_row_bytes;
    float *down_t_scale;     /* [n_embd] (I8) */
    float *down_t_row_scale; /* [n_ff] (I8) */
} clv_sparse_layer;

typedef struct clv_sparse_state {
    clv_sparse_layer *layers; /* [n_layer] */
    float *pred_hidden;       /* predictor hidden layer [n_batch][max rank] */
    uint8_t *pred_trusted;    /* [n_batch]: the guard passed the token's input */
    float *pred_logit;        /* predictor logits [n_batch][max n_ff] */
    /* Decode, each [max n_ff]: candidate neurons (predicted active, or all)
     * and their act; active neurons and act * up, written per chunk of
     * candidates (chunk_active counts) and then compacted. */
    int32_t *cand;
    float *cand_act;
    int32_t *active;
    float *active_h;
    int64_t *chunk_active, *chunk_cand;
    void *xq; /* the FFN input quantized for gate and for up [2][s.xq_row_bytes] */
    void *pred_xq, *pred_hq; /* decode: x quantized for w1, the hidden layer for w2 */
} clv_sparse_state;

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
    /* Prompt batches of at least this many tokens multiply through oneDNN's
     * float GEMM (weights decoded a panel at a time) when cleave is built
     * with it. 0: the default (32, or the environment's CLEAVE_DNNL_MIN_BATCH);
     * -1: never. After creation it holds what applies (-1 without oneDNN). */
    int64_t gemm_min_batch;
    /* Count how often each expert of each layer is chosen (expert_counts). */
    bool count_experts;
    /* Borrowed, may be NULL: see the structs above. */
    const clv_ffn_observer *observer;
    const clv_ffn_sparsity *sparsity;
    /* Run on the GPU (CUDA): every weight, the KV cache and the scratch in
     * device memory (gpu_state.h), the ops on the CUDA kernels (ops_cuda.c),
     * logits copied back for clv_context_logits; an observer gets host
     * copies of what it watches (one wait per observed layer, no decode
     * graph). CLV_ERR_BUDGET when the model does not fit vram_budget
     * (nothing is left allocated); CLV_ERR_UNSUPPORTED with a sparsity (no
     * GPU path yet), and in a build without CUDA. */
    bool gpu;
    int gpu_device;       /* CUDA device index */
    uint64_t vram_budget; /* device bytes the context may take; 0: the free memory minus a margin */
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
    float *gemm_panels;      /* [n_threads][gemm_panel_floats]: weight rows decoded for oneDNN */
    size_t gemm_panel_floats; /* CLV_GEMM_PANEL_ROWS * widest matmul input; 0 without oneDNN */
    float *attn_partial;   /* split-K attention partials */
    size_t attn_partial_floats;
    int32_t *pos;          /* positions of the batch [n_batch] */
} clv_scratch;

struct clv_backend;
struct clv_gpu_state;

struct clv_context {
    clv_model *model;
    clv_context_params params;
    const struct clv_backend *backend; /* what runs the ops (backend.h) */
    struct clv_threadpool *pool;
    /* Device memory of a GPU context, else NULL. There the scratch pointers
     * of s (and s.pos) are device memory, and k_cache / v_cache are NULL. */
    struct clv_gpu_state *gpu;
    /* KV cache: per layer [n_ctx][n_head_kv * head_dim] of kv_type */
    void **k_cache, **v_cache;
    int64_t n_past; /* positions filled */
    clv_scratch s;
    float *logits;  /* [n_logits][n_vocab] */
    int64_t n_logits;
    size_t kv_bytes, scratch_bytes; /* host memory; a GPU context's device bytes are in gpu->need */
    /* Weight bytes the forward passes have read since the last reset: what
     * `cleave bench` divides by time for achieved bandwidth. */
    uint64_t weight_bytes_read;
    /* [n_layer][n_expert] routing counts when params.count_experts, else NULL. */
    int64_t *expert_counts;
    /* With params.sparsity, else NULL; sparse_bytes is what it holds (the
     * transposed ffn_down copies and its buffers). */
    clv_sparse_state *sparse;
    size_t sparse_bytes;
};

/* CLV_ERR_ARG, naming the layer, for params.sparsity that does not fit the
 * model (threshold NaN or infinite, a threshold on a layer without a dense
 * gated FFN, a predictor of the wrong shape or of a type the CPU kernels do
 * not take). */
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
