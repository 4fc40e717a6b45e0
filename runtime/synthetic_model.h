/* Synthetic models: full-size GGUF files with the shapes, tensor types and
 * tokenizers of real models, random weights, and planted statistics.
 *
 * Speed does not depend on weight values, only on shapes, types and how
 * often each neuron and expert fires. So a model of the real shape, with
 * expert popularity and neuron firing frequencies planted in the weights
 * themselves (any engine running the file sees them) and recorded in the
 * file's `cleave.synthetic.*` metadata, stands in for a download we cannot
 * make. docs/synthetic-models.md explains the construction and compares each
 * preset with the real model.
 *
 * Generation is multi-threaded and streamed: workers generate and quantize
 * row blocks, one writer streams them in file order through a bounded queue,
 * so memory stays small whatever the model's size. */
#ifndef CLV_SYNTHETIC_MODEL_H
#define CLV_SYNTHETIC_MODEL_H

#include <stdbool.h>
#include <stdint.h>

#include "status.h"
#include "types.h"

/* Tokenizer, special tokens and chat template follow the real model family. */
typedef enum clv_synth_family {
    CLV_SYNTH_FAMILY_QWEN3,   /* byte-level BPE, pre "qwen2", ChatML */
    CLV_SYNTH_FAMILY_LLAMA3,  /* byte-level BPE, pre "llama-bpe", header template */
    CLV_SYNTH_FAMILY_LLAMA2,  /* SentencePiece with scores, [INST] <<SYS>> template */
    CLV_SYNTH_FAMILY_MISTRAL, /* SentencePiece with scores, [INST] template */
    CLV_SYNTH_FAMILY_OLMOE,   /* byte-level BPE, pre "olmo", Tulu template */
} clv_synth_family;

/* The hyper-parameters of one model. For archs "llama" and "olmoe" with
 * experts the expert width n_ff_exp is written as feed_forward_length (as
 * Mixtral and OLMoE files do); qwen3moe keeps n_ff as its unused dense width. */
typedef struct clv_synth_shape {
    char name[32];      /* preset it came from */
    char arch[16];      /* general.architecture: "llama", "qwen3moe", "olmoe" */
    int family;         /* clv_synth_family */
    int64_t n_vocab, n_ctx, n_embd, n_layer;
    int64_t n_head, n_head_kv, head_dim;
    int64_t n_ff;                          /* dense FFN width */
    int64_t n_expert, n_expert_used, n_ff_exp; /* n_expert 0: dense */
    double rope_base, rms_eps;
    bool relu;          /* ReLU FFN (ReLU-fied Llama) instead of SiLU */
    char overrides[256]; /* the --set assignments applied, for the record */
} clv_synth_shape;

/* A preset and the real model it copies. */
typedef struct clv_synth_preset_info {
    const char *name;
    const char *real_model;     /* Hugging Face id of the original */
    double real_params;         /* published total parameter count */
    double real_q4km_bytes;     /* a published Q4_K_M file's size, bytes (0: none) */
    const char *real_q4km_file; /* which file */
    int real_q4km_recipe;       /* clv_synth_recipe that file was quantized with */
    const char *unavailable;    /* non-NULL: not generated yet, and why */
} clv_synth_preset_info;

int clv_synth_n_presets(void);
const clv_synth_preset_info *clv_synth_preset(int i);

/* The shape of a preset. Unknown name: CLV_ERR_NOT_FOUND (the message lists
 * the presets); a preset whose architecture is not there yet:
 * CLV_ERR_UNSUPPORTED. */
clv_status clv_synth_shape_from_preset(const char *name, clv_synth_shape *out);

/* Applies "key=value" (keys: clv_synth_shape_key; GGUF-style names such as
 * block_count or short ones such as n_layer). Unknown key or bad value:
 * CLV_ERR_ARG and the shape is left as it was. */
clv_status clv_synth_shape_set(clv_synth_shape *shape, const char *assignment);

/* The settable keys, for help texts: NULL past the end. */
const char *clv_synth_shape_key(int i, const char **alias, const char **description);

/* Which of llama.cpp's quantization mixes decides per-tensor types. */
typedef enum clv_synth_recipe {
    CLV_SYNTH_RECIPE_LLAMA_CPP = 0,      /* llama.cpp's current llama_tensor_get_type */
    CLV_SYNTH_RECIPE_LLAMA_CPP_2023 = 1, /* before llama.cpp PR #4872 (Jan 2024): the mix
                                            skipped MoE experts and the 8-expert rules */
} clv_synth_recipe;

typedef enum clv_synth_law {
    CLV_SYNTH_LAW_NONE = 0,  /* nothing planted */
    CLV_SYNTH_LAW_UNIFORM,   /* every expert / neuron alike */
    CLV_SYNTH_LAW_ZIPF,      /* expert popularity ~ rank^-alpha */
    CLV_SYNTH_LAW_POWERLAW,  /* neuron firing probability ~ rank^-alpha */
} clv_synth_law;

typedef struct clv_synth_params {
    clv_synth_shape shape;  /* required: from clv_synth_shape_from_preset */
    uint32_t file_type;     /* general.file_type: 0 F32, 1 F16, 2 Q4_0, 7 Q8_0,
                               15 Q4_K_M (default), 17 Q5_K_M, 18 Q6_K, 32 BF16 */
    int recipe;             /* clv_synth_recipe */
    uint64_t seed;
    int n_threads;          /* generator threads; 0: one per online CPU */
    /* MoE routers: uniform spread (default) or Zipf popularity per layer,
     * each layer with its own expert ranking and alpha * (1 +- jitter). */
    int router_law;
    double router_alpha, router_jitter;
    /* ReLU FFN: mean fraction of neurons that fire per token (0: not
     * planted, every neuron fires half the time) and the law of per-neuron
     * firing probabilities (uniform or power law in rank). */
    double ffn_sparsity;
    int hot_law;
    double hot_alpha;
    bool progress;          /* percent, GB written and ETA on stderr */
} clv_synth_params;

clv_synth_params clv_synth_default_params(void);

/* "Q4_K_M", "q8_0", ... -> general.file_type; unknown: CLV_ERR_ARG. */
clv_status clv_synth_parse_type(const char *name, uint32_t *file_type);
/* Name of a file type this generator writes, or NULL. */
const char *clv_synth_type_name(uint32_t file_type);
/* "llama.cpp" or "llama.cpp-2023". */
clv_status clv_synth_parse_recipe(const char *name, int *recipe);
/* "uniform", "zipf:ALPHA". */
clv_status clv_synth_parse_router_skew(const char *spec, clv_synth_params *p);
/* "uniform", "powerlaw:ALPHA". */
clv_status clv_synth_parse_hot_law(const char *spec, clv_synth_params *p);

typedef struct clv_synth_report {
    uint64_t n_params;   /* elements of every tensor */
    uint64_t file_bytes; /* exact size of the file */
    int64_t n_tensors;
    uint64_t params_by_type[CLV_TYPE_COUNT];
    uint64_t bytes_by_type[CLV_TYPE_COUNT];
    double seconds;      /* generation wall time (0 for a plan) */
    int n_threads;
} clv_synth_report;

/* Plans the model without writing it: checks the parameters, builds the
 * vocabulary and the tensor list, and reports counts and the exact file
 * size. */
clv_status clv_synth_plan(const clv_synth_params *p, clv_synth_report *out);

/* Writes the model to `path` (through path.tmp, renamed at the end). */
clv_status clv_synth_generate(const char *path, const clv_synth_params *p, clv_synth_report *out);

#endif
