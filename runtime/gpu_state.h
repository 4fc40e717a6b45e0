/* The device side of a GPU context (clv_context_params.gpu): the model's
 * weights, the KV cache and the decode scratch, all taken from one budgeted
 * clv_vram (kernels/cuda/vram.h). The whole need is computed and checked
 * against the budget before anything is allocated, so a model that does not
 * fit leaves no device memory behind; an allocation that fails part-way
 * frees what was taken. The ops that use this memory are in ops_cuda.c.
 *
 * Built with CUDA only (gpu_state.c); without it gpu_none.c answers
 * clv_gpu_state_create with "built without CUDA". */
#ifndef CLV_GPU_STATE_H
#define CLV_GPU_STATE_H

#include <stdbool.h>
#include <stdint.h>

#include "model.h"
#include "status.h"

struct clv_vram;

/* Most experts per token the GPU routes (clv_cuda_moe_route's top-k limit). */
#define CLV_GPU_MAX_EXPERT_USED 32

typedef struct clv_gpu_params {
    int device;           /* CUDA device index */
    uint64_t vram_budget; /* bytes; 0: the device's free memory minus a margin (clv_vram_margin) */
    int64_t n_ctx;        /* positions the KV cache holds (>= 1) */
    int32_t kv_type;      /* CLV_TYPE_F16 or CLV_TYPE_F32 */
    int64_t n_batch;      /* most tokens per forward pass (>= 1): the scratch holds this many */
    bool logits_all;      /* logits for every token of a batch (else the last only) */
    int64_t fail_alloc_at; /* testing: clv_vram_params.fail_at */
} clv_gpu_params;

clv_gpu_params clv_gpu_default_params(void);

/* Device bytes a GPU context needs, as the allocator counts them. */
typedef struct clv_gpu_need {
    uint64_t weights; /* every weight of the model, each CLV_VRAM_ALIGN-aligned */
    uint64_t kv;      /* K and V of every layer for n_ctx positions */
    uint64_t scratch; /* one token's activations, routing, logits, attention partials */
    uint64_t total;
} clv_gpu_need;

/* The scratch: device buffers for a batch of up to n_batch tokens, widths
 * as in clv_scratch (context.h). A = n_batch * n_expert_used: a batch's
 * (token, expert) assignments, grouped by expert. */
typedef struct clv_gpu_scratch {
    float *x, *xb, *xb2, *q, *k, *v, *attn; /* [n_batch][width] */
    float *ffn_a, *ffn_b;  /* [n_batch][max n_ff, shared expert included] */
    float *router;         /* [n_batch][n_expert] */
    int32_t *expert_ids;   /* [n_batch][n_expert_used] */
    float *expert_w;       /* [n_batch][n_expert_used] */
    int32_t *moe_map;      /* [2][A]: the token of each grouped row, then the grouped row of each
                              assignment; then the grouping's tiles (clv_cuda_expert_tile) */
    float *moe_x;          /* [A][n_embd]: the inputs, gathered by expert; NULL where the
                              batch's experts run in one launch (clv_gpu_moe_one_launch) */
    float *moe_a, *moe_b;  /* [A][n_ff_exp] */
    float *moe_c;          /* [A][n_embd] */
    float *logits;         /* [logits_all ? n_batch : 1][n_vocab] */
    int32_t *io;           /* [2][n_batch]: the batch's tokens, then their positions */
    uint32_t *route_done;  /* [n_batch]: clv_cuda_moe_router's counters (zero between launches) */
    void *attn_partial;    /* split-K attention partials for n_ctx keys */
    size_t attn_partial_bytes;
    void *matmul_ws;       /* clv_cuda_matmul's workspace (NULL when n_batch < CLV_GPU_MATMUL_MIN_TOKENS) */
    size_t matmul_ws_bytes;
} clv_gpu_scratch;

/* Batches of at least this many tokens multiply on tensor cores
 * (clv_cuda_matmul); smaller ones a token at a time with the decode matvec,
 * which reads the weights fewer times than a float copy costs. */
#define CLV_GPU_MATMUL_MIN_TOKENS 8

/* Whether a batch's routed experts, grouped into n_tiles tiles, run in one
 * launch per matrix reading the batch through the grouping; else the rows
 * are gathered into s.moe_x and each expert is a product of its own. */
static inline bool clv_gpu_moe_one_launch(int64_t n_embd, int64_t n_ff_exp, int64_t n_tiles) {
    return n_embd % 32 == 0 && n_ff_exp % 32 == 0 && n_tiles <= 65535;
}

typedef struct clv_gpu_state {
    struct clv_vram *vram;
    const clv_model *model;
    clv_gpu_params params;
    clv_gpu_need need;
    void *weights;              /* one allocation: every weight */
    const void **weight_dev;    /* [model->n_weights]: device copy of model->weights[i] */
    void *kv;                   /* one allocation: every layer's K and V */
    void **k_cache, **v_cache;  /* [n_layer]: rows of [n_head_kv * head_dim] elements of kv_type */
    void *scratch_block;        /* one allocation: the buffers of s */
    clv_gpu_scratch s;
    void *stream;               /* cudaStream_t the ops run on */
    struct clv_cuda_matmul_handle *matmul; /* cuBLAS on stream, with s.matmul_ws (NULL without) */
    int32_t *io_host;           /* [2][n_batch]: host staging of s.io */
    /* The batch being run (ops_cuda.c): the position of its first token
     * (the others follow) and the first failure of an op (ops return
     * nothing; the decode returns it). */
    int64_t pos;
    clv_status error;
    char error_msg[512];
    /* MoE on the host (allocated with the state): the experts the router
     * chose [A], copied back to pick the expert matrices; the grouping
     * and its tiles, uploaded to s.moe_map; the groups' offsets [n_expert + 1]. */
    int32_t *moe_ids_host, *moe_map_host;
    int64_t *moe_offset;
    /* An observer's host copies (ops_cuda.c, allocated with an observer):
     * the FFN input [n_batch][n_embd], the gated activations [n_batch][max
     * n_ff], the routing weights [A] (the ids go to moe_ids_host). */
    float *obs_x, *obs_h, *obs_w;
    /* Decode of one token as a CUDA graph (ops_cuda.c): captured on the
     * first such token, replayed for the next; the weight bytes one replay
     * reads; capturing while the forward pass is being recorded (ops then
     * take positions from the device and leave the logits there); graph_off
     * after a capture failed, while the profiler counts experts, or when
     * CLEAVE_CUDA_GRAPHS=0 (set once, at context creation). */
    struct clv_cuda_graph *decode_graph;
    uint64_t graph_weight_bytes;
    bool capturing, graph_off;
} clv_gpu_state;

/* The need of model m with these params, without touching the device. */
void clv_gpu_need_of(const clv_model *m, const clv_gpu_params *p, clv_gpu_need *out);

/* Checks the need against the budget (CLV_ERR_BUDGET naming both, nothing
 * allocated), then allocates and uploads. CLV_ERR_UNSUPPORTED without a CUDA
 * device (or built without CUDA) and for a weight type the GPU kernels do not
 * decode; CLV_ERR_DEVICE when an allocation or copy fails (all freed). */
clv_status clv_gpu_state_create(const clv_model *m, const clv_gpu_params *p, clv_gpu_state **out);

/* Frees every byte of device memory the state holds. NULL is allowed. */
void clv_gpu_state_free(clv_gpu_state *g);

/* Device copy of w, a weight of the state's model. */
const void *clv_gpu_weight(const clv_gpu_state *g, const clv_weight *w);

/* --- for context.c (ops_cuda.c) -------------------------------------------- */

/* Makes ctx (params set, nothing allocated yet) a GPU context: checks that
 * the CUDA ops cover the model (CLV_ERR_UNSUPPORTED naming what does not),
 * creates the state from ctx->params, points ctx->s at its device buffers
 * and ctx->backend at the CUDA ops. On failure ctx->gpu stays NULL. */
clv_status clv_gpu_context_init(clv_context *ctx);

/* Runs a checked batch (clv_decode) through the model's forward pass in
 * pieces of n_batch tokens, advancing n_past; logits come back to
 * ctx->logits. */
clv_status clv_gpu_decode(clv_context *ctx, const clv_batch *batch);

#endif
