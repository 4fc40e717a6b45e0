/* A loaded model: hyper-parameters and weight tensors bound from a GGUF file.
 *
 * The architecture's file under models/ reads its hyper-parameters and names
 * its tensors (through the helpers below, which check every shape and name
 * the tensor in any error); the forward pass lives there too. */
#ifndef CLV_MODEL_H
#define CLV_MODEL_H

#include <stdbool.h>
#include <stdint.h>

#include "gguf.h"
#include "status.h"

#define CLV_MAX_LAYERS 512
#define CLV_MAX_EXPERTS 1024
#define CLV_MAX_HEAD_DIM 1024
#define CLV_MAX_GQA_GROUP 256 /* query heads per KV head */

typedef enum clv_rope_type {
    CLV_ROPE_NONE = 0,
    CLV_ROPE_NORMAL, /* rotate adjacent pairs (2i, 2i+1) */
    CLV_ROPE_NEOX,   /* rotate (i, i + d/2) */
} clv_rope_type;

typedef enum clv_ffn_act {
    CLV_ACT_SILU = 0, /* SwiGLU: silu(gate) * up */
    CLV_ACT_GELU,     /* GeGLU with tanh-approximated GELU */
    CLV_ACT_RELU,     /* relu(gate) * up (ReLU-fied Llama) */
} clv_ffn_act;

/* A weight tensor as the compute backend sees it. */
typedef struct clv_weight {
    const char *name;
    int32_t type;      /* clv_type */
    int64_t ne[4];     /* ne[0]: elements per row */
    uint64_t row_bytes;
    uint64_t bytes;
    const void *data;  /* host memory (mmap) for the CPU backend */
} clv_weight;

typedef struct clv_hparams {
    char arch[32];
    int64_t n_vocab;
    int64_t n_ctx_train;
    int64_t n_embd;
    int64_t n_layer;
    int64_t n_head;
    int64_t n_head_kv[CLV_MAX_LAYERS];
    int64_t n_embd_head_k; /* per head */
    int64_t n_embd_head_v;
    int64_t n_ff[CLV_MAX_LAYERS]; /* dense FFN width (0 for MoE layers) */
    float norm_eps;

    /* attention */
    float attn_scale;                    /* multiplies q.k; default 1/sqrt(head dim) */
    int64_t sliding_window;              /* 0: none */
    bool layer_swa[CLV_MAX_LAYERS];      /* layer uses the sliding window */
    clv_rope_type rope_type;
    int64_t n_rot;                       /* rotated dimensions per head */
    float rope_freq_base;
    float rope_freq_base_swa;            /* for sliding-window layers */
    float rope_freq_scale;               /* 1 / linear scaling factor */
    float rope_freq_scale_swa;

    /* feed-forward */
    clv_ffn_act ffn_act;
    int64_t n_expert;
    int64_t n_expert_used;
    int64_t n_ff_exp;
    int64_t n_ff_shexp;
    bool expert_weights_norm; /* renormalise the top-k routing weights */

    float embd_scale; /* multiplies token embeddings (gemma: sqrt(n_embd)) */
} clv_hparams;

/* Per-layer weights; NULL where the architecture has none. */
typedef struct clv_layer {
    const clv_weight *attn_norm, *attn_q_norm, *attn_k_norm, *attn_post_norm;
    const clv_weight *wq, *wk, *wv, *wo;
    const clv_weight *bq, *bk, *bv, *bo;
    const clv_weight *ffn_norm, *ffn_post_norm;
    const clv_weight *ffn_gate, *ffn_up, *ffn_down;
    const clv_weight *ffn_gate_inp;                       /* router {n_embd, n_expert} */
    const clv_weight *ffn_gate_exps, *ffn_up_exps, *ffn_down_exps;
    const clv_weight *ffn_gate_inp_shexp;                 /* shared-expert gate {n_embd} */
    const clv_weight *ffn_gate_shexp, *ffn_up_shexp, *ffn_down_shexp;
} clv_layer;

typedef struct clv_arch clv_arch;
typedef struct clv_model clv_model;

struct clv_model {
    clv_gguf *gguf;
    const clv_arch *arch;
    clv_hparams hp;
    const clv_weight *token_embd, *output_norm, *output, *rope_freqs;
    clv_layer *layers; /* hp.n_layer */
    clv_weight *weights; /* every bound tensor */
    int64_t n_weights, cap_weights;
    uint64_t weight_bytes;
};

typedef struct clv_model_params {
    bool use_mmap; /* default true */
    bool verbose;
} clv_model_params;

clv_model_params clv_model_default_params(void);

/* Opens a GGUF file and loads the model; a clear status for an unknown
 * architecture, a missing or mis-shaped tensor, or a bad hyper-parameter. */
clv_status clv_model_load(const char *path, const clv_model_params *params, clv_model **out);
void clv_model_free(clv_model *m);

/* --- for architecture files ----------------------------------------------- */

/* "<arch>.<suffix>" getters. Required ones fail with a message naming the key;
 * optional ones leave *out untouched when the key is absent. */
clv_status clv_model_u32(clv_model *m, const char *suffix, bool required, int64_t *out);
clv_status clv_model_f32(clv_model *m, const char *suffix, bool required, float *out);
/* A scalar or a per-layer array (e.g. attention.head_count_kv). */
clv_status clv_model_per_layer(clv_model *m, const char *suffix, bool required, int64_t *out);

/* Reads what nearly every decoder shares: context, widths, heads, norm eps,
 * rope base and scaling, sliding window, experts. */
clv_status clv_model_common_hparams(clv_model *m);

/* Binds tensor `name` (printf-style with the layer index), checking its
 * shape: ne[i] must equal want[i] for i < n_dims (want -1: any). Missing and
 * required: CLV_ERR_NOT_FOUND naming the tensor; wrong shape: CLV_ERR_FORMAT
 * with both shapes. */
clv_status clv_model_tensor(clv_model *m, const clv_weight **out, bool required, int n_dims, const int64_t *want,
                            const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/* Binds the standard attention tensors of layer il (q, k, v, o; optional
 * biases; norms bound by the caller). */
clv_status clv_model_bind_attention(clv_model *m, int64_t il, bool biases);
/* Dense FFN (gate optional for archs without one) or MoE FFN of layer il. */
clv_status clv_model_bind_ffn(clv_model *m, int64_t il);
/* Embedding, output norm, output (tied to the embedding when absent). */
clv_status clv_model_bind_io(clv_model *m);

/* --- the architecture registry (models/registry.c) -------------------------- */

typedef struct clv_context clv_context;
typedef struct clv_batch clv_batch;

struct clv_arch {
    const char *name;
    /* Reads hyper-parameters and binds tensors into m. */
    clv_status (*load)(clv_model *m);
    /* Runs the batch through the model, writing logits where the batch asks. */
    clv_status (*forward)(clv_context *ctx, const clv_batch *batch);
};

/* NULL when cleave does not support the architecture. */
const clv_arch *clv_arch_find(const char *name);
/* Comma-separated list of supported architectures, for messages. */
const char *clv_arch_list(void);

#endif
