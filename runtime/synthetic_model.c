/* Synthetic models: presets, the tensor list and its llama.cpp type recipe,
 * metadata (with exact byte accounting, so a plan knows the file size), the
 * weight generators with planted statistics, and the threaded streaming
 * writer. docs/synthetic-models.md explains the construction. */
#include "synthetic_model.h"

#include <math.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "dequantize.h"
#include "gguf_writer.h"
#include "synthetic_internal.h"

/* Construction constants (docs/synthetic-models.md, "How statistics are planted"). */
#define COMMON_ENERGY 0.10   /* rho: share of the residual's energy along the common direction u */
#define ROUTER_NOISE 1.0     /* std of a router logit over tokens */
#define OUTPUT_BUDGET 0.05   /* all layers' outputs together add at most this residual variance */
#define NORM_JITTER 0.02     /* norm weights are 1 + N(0, jitter^2) */
#define LOGIT_STD 2.0        /* std of output logits */
#define ROUTER_P_MIN 1e-4    /* planted expert selection probabilities stay in [min, max] */
#define ROUTER_P_MAX 0.98
#define NEURON_P_MIN 1e-5    /* and neuron firing probabilities in theirs */
#define NEURON_P_MAX 0.995
#define CAL_SAMPLES 65536    /* Monte Carlo draws per layer for router calibration */
#define CHUNK_BYTES (4u << 20) /* output bytes per work item */

/* Random streams; each tensor then uses its own index as the stream. */
#define STREAM_U 0x7501ULL
#define STREAM_ALPHA 0xa1fULL
#define STREAM_PERM 0x9e7ULL
#define STREAM_CAL 0xca1ULL
#define STREAM_TENSOR 0x1000000ULL

/* ------------------------------------------------------------------------------ */
/* presets                                                                          */
/* ------------------------------------------------------------------------------ */

typedef struct preset {
    clv_synth_preset_info info;
    clv_synth_shape shape;
} preset;

/* Hyper-parameters from each model's config.json on Hugging Face; real sizes
 * and sources are in docs/synthetic-models.md. */
static const preset presets[] = {
    {{"qwen3-30b-a3b", "Qwen/Qwen3-30B-A3B", 30.5e9, 18.6e9, "Qwen/Qwen3-30B-A3B-GGUF Qwen3-30B-A3B-Q4_K_M.gguf",
      CLV_SYNTH_RECIPE_LLAMA_CPP, NULL},
     {.name = "qwen3-30b-a3b", .arch = "qwen3moe", .family = CLV_SYNTH_FAMILY_QWEN3, .n_vocab = 151936,
      .n_ctx = 40960, .n_embd = 2048, .n_layer = 48, .n_head = 32, .n_head_kv = 4, .head_dim = 128, .n_ff = 6144,
      .n_expert = 128, .n_expert_used = 8, .n_ff_exp = 768, .rope_base = 1e6, .rms_eps = 1e-6}},
    {{"qwen3-235b-a22b", "Qwen/Qwen3-235B-A22B", 235e9, 142.6e9,
      "Qwen/Qwen3-235B-A22B-GGUF Q4_K_M (split files, total)", CLV_SYNTH_RECIPE_LLAMA_CPP, NULL},
     {.name = "qwen3-235b-a22b", .arch = "qwen3moe", .family = CLV_SYNTH_FAMILY_QWEN3, .n_vocab = 151936,
      .n_ctx = 40960, .n_embd = 4096, .n_layer = 94, .n_head = 64, .n_head_kv = 4, .head_dim = 128, .n_ff = 12288,
      .n_expert = 128, .n_expert_used = 8, .n_ff_exp = 1536, .rope_base = 1e6, .rms_eps = 1e-6}},
    {{"mixtral-8x7b", "mistralai/Mixtral-8x7B-v0.1", 46.7e9, 26.4e9,
      "TheBloke/Mixtral-8x7B-v0.1-GGUF mixtral-8x7b-v0.1.Q4_K_M.gguf", CLV_SYNTH_RECIPE_LLAMA_CPP_2023, NULL},
     {.name = "mixtral-8x7b", .arch = "llama", .family = CLV_SYNTH_FAMILY_MISTRAL, .n_vocab = 32000,
      .n_ctx = 32768, .n_embd = 4096, .n_layer = 32, .n_head = 32, .n_head_kv = 8, .head_dim = 128, .n_ff = 14336,
      .n_expert = 8, .n_expert_used = 2, .n_ff_exp = 14336, .rope_base = 1e6, .rms_eps = 1e-5}},
    {{"olmoe-1b-7b", "allenai/OLMoE-1B-7B-0924", 6.92e9, 4.21e9,
      "allenai/OLMoE-1B-7B-0924-GGUF olmoe-1b-7b-0924-q4_k_m.gguf", CLV_SYNTH_RECIPE_LLAMA_CPP, NULL},
     {.name = "olmoe-1b-7b", .arch = "olmoe", .family = CLV_SYNTH_FAMILY_OLMOE, .n_vocab = 50304, .n_ctx = 4096,
      .n_embd = 2048, .n_layer = 16, .n_head = 16, .n_head_kv = 16, .head_dim = 128, .n_ff = 1024, .n_expert = 64,
      .n_expert_used = 8, .n_ff_exp = 1024, .rope_base = 10000, .rms_eps = 1e-5}},
    {{"llama-3-8b", "meta-llama/Meta-Llama-3-8B", 8.03e9, 4.92e9,
      "QuantFactory/Meta-Llama-3-8B-GGUF Meta-Llama-3-8B.Q4_K_M.gguf", CLV_SYNTH_RECIPE_LLAMA_CPP, NULL},
     {.name = "llama-3-8b", .arch = "llama", .family = CLV_SYNTH_FAMILY_LLAMA3, .n_vocab = 128256, .n_ctx = 8192,
      .n_embd = 4096, .n_layer = 32, .n_head = 32, .n_head_kv = 8, .head_dim = 128, .n_ff = 14336,
      .rope_base = 500000, .rms_eps = 1e-5}},
    {{"llama-2-13b", "meta-llama/Llama-2-13b-hf", 13.0e9, 7.87e9, "TheBloke/Llama-2-13B-GGUF llama-2-13b.Q4_K_M.gguf",
      CLV_SYNTH_RECIPE_LLAMA_CPP_2023, NULL},
     {.name = "llama-2-13b", .arch = "llama", .family = CLV_SYNTH_FAMILY_LLAMA2, .n_vocab = 32000, .n_ctx = 4096,
      .n_embd = 5120, .n_layer = 40, .n_head = 40, .n_head_kv = 40, .head_dim = 128, .n_ff = 13824,
      .rope_base = 10000, .rms_eps = 1e-5}},
    {{"relu-llama-13b", "SparseLLM/ReluLLaMA-13B", 13.0e9, 7.87e9,
      "none published; Llama-2-13B's (same tensors): TheBloke llama-2-13b.Q4_K_M.gguf",
      CLV_SYNTH_RECIPE_LLAMA_CPP_2023, NULL},
     {.name = "relu-llama-13b", .arch = "llama", .family = CLV_SYNTH_FAMILY_LLAMA2, .n_vocab = 32000, .n_ctx = 4096,
      .n_embd = 5120, .n_layer = 40, .n_head = 40, .n_head_kv = 40, .head_dim = 128, .n_ff = 13824,
      .rope_base = 10000, .rms_eps = 1e-5, .relu = true}},
    {{"deepseek-v2-lite", "deepseek-ai/DeepSeek-V2-Lite", 15.7e9, 0, NULL, CLV_SYNTH_RECIPE_LLAMA_CPP,
      "needs the deepseek2 architecture (MLA attention, shared experts), not in cleave yet"},
     {.name = "deepseek-v2-lite"}},
    {{"gpt-oss-20b", "openai/gpt-oss-20b", 20.9e9, 0, NULL, CLV_SYNTH_RECIPE_LLAMA_CPP,
      "needs the gpt-oss architecture (attention sinks, MXFP4 experts), not in cleave yet"},
     {.name = "gpt-oss-20b"}},
};

#define N_PRESETS ((int)(sizeof presets / sizeof presets[0]))

int clv_synth_n_presets(void) { return N_PRESETS; }

const clv_synth_preset_info *clv_synth_preset(int i) { return i >= 0 && i < N_PRESETS ? &presets[i].info : NULL; }

clv_status clv_synth_shape_from_preset(const char *name, clv_synth_shape *out) {
    for (int i = 0; i < N_PRESETS; i++) {
        if (strcasecmp(name, presets[i].info.name)) continue;
        if (presets[i].info.unavailable) {
            return clv_fail(CLV_ERR_UNSUPPORTED, "shape '%s' is not available yet: %s", name, presets[i].info.unavailable);
        }
        *out = presets[i].shape;
        return CLV_OK;
    }
    char list[512];
    size_t n = 0;
    for (int i = 0; i < N_PRESETS && n < sizeof list; i++) {
        if (!presets[i].info.unavailable)
            n += (size_t)snprintf(list + n, sizeof list - n, "%s%s", n ? ", " : "", presets[i].info.name);
    }
    return clv_fail(CLV_ERR_NOT_FOUND, "unknown shape '%s' (presets: %s)", name, list);
}

/* --- --set keys ----------------------------------------------------------------- */

enum { KEY_I64, KEY_F64, KEY_ACT };

static const struct shape_key {
    const char *name, *alias, *help;
    int kind;
    size_t offset;
} shape_keys[] = {
    {"vocab_size", "n_vocab", "tokens in the vocabulary", KEY_I64, offsetof(clv_synth_shape, n_vocab)},
    {"context_length", "n_ctx", "training context length", KEY_I64, offsetof(clv_synth_shape, n_ctx)},
    {"embedding_length", "n_embd", "hidden size (multiple of 32)", KEY_I64, offsetof(clv_synth_shape, n_embd)},
    {"block_count", "n_layer", "layers", KEY_I64, offsetof(clv_synth_shape, n_layer)},
    {"attention.head_count", "n_head", "query heads", KEY_I64, offsetof(clv_synth_shape, n_head)},
    {"attention.head_count_kv", "n_head_kv", "key/value heads", KEY_I64, offsetof(clv_synth_shape, n_head_kv)},
    {"attention.key_length", "head_dim", "dimension of one head", KEY_I64, offsetof(clv_synth_shape, head_dim)},
    {"feed_forward_length", "n_ff", "dense FFN width", KEY_I64, offsetof(clv_synth_shape, n_ff)},
    {"expert_count", "n_expert", "experts per layer (0: dense)", KEY_I64, offsetof(clv_synth_shape, n_expert)},
    {"expert_used_count", "n_expert_used", "experts per token", KEY_I64, offsetof(clv_synth_shape, n_expert_used)},
    {"expert_feed_forward_length", "n_ff_exp", "width of one expert", KEY_I64, offsetof(clv_synth_shape, n_ff_exp)},
    {"rope.freq_base", "rope_base", "RoPE base frequency", KEY_F64, offsetof(clv_synth_shape, rope_base)},
    {"attention.layer_norm_rms_epsilon", "rms_eps", "RMSNorm epsilon", KEY_F64, offsetof(clv_synth_shape, rms_eps)},
    {"ffn_activation", "ffn_act", "silu or relu", KEY_ACT, offsetof(clv_synth_shape, relu)},
};

#define N_SHAPE_KEYS ((int)(sizeof shape_keys / sizeof shape_keys[0]))

const char *clv_synth_shape_key(int i, const char **alias, const char **description) {
    if (i < 0 || i >= N_SHAPE_KEYS) return NULL;
    if (alias) *alias = shape_keys[i].alias;
    if (description) *description = shape_keys[i].help;
    return shape_keys[i].name;
}

clv_status clv_synth_shape_set(clv_synth_shape *shape, const char *assignment) {
    const char *eq = strchr(assignment, '=');
    if (!eq || eq == assignment || !eq[1]) {
        return clv_fail(CLV_ERR_ARG, "--set '%s': expected KEY=VALUE", assignment);
    }
    size_t klen = (size_t)(eq - assignment);
    const char *value = eq + 1;
    for (int i = 0; i < N_SHAPE_KEYS; i++) {
        const struct shape_key *k = &shape_keys[i];
        bool match = (strlen(k->name) == klen && !strncmp(k->name, assignment, klen)) ||
                     (strlen(k->alias) == klen && !strncmp(k->alias, assignment, klen));
        if (!match) continue;
        char *end = NULL;
        if (k->kind == KEY_I64) {
            long long v = strtoll(value, &end, 10);
            if (*end || v < 0 || v > (1LL << 40)) {
                return clv_fail(CLV_ERR_ARG, "--set %s: '%s' is not a non-negative integer", k->name, value);
            }
            *(int64_t *)((char *)shape + k->offset) = v;
        } else if (k->kind == KEY_F64) {
            double v = strtod(value, &end);
            if (*end || !(v > 0) || !isfinite(v)) {
                return clv_fail(CLV_ERR_ARG, "--set %s: '%s' is not a positive number", k->name, value);
            }
            *(double *)((char *)shape + k->offset) = v;
        } else {
            if (!strcasecmp(value, "relu")) shape->relu = true;
            else if (!strcasecmp(value, "silu")) shape->relu = false;
            else return clv_fail(CLV_ERR_ARG, "--set %s: '%s' is not silu or relu", k->name, value);
        }
        size_t n = strlen(shape->overrides);
        snprintf(shape->overrides + n, sizeof shape->overrides - n, "%s%s", n ? "," : "", assignment);
        return CLV_OK;
    }
    return clv_fail(CLV_ERR_ARG, "--set: unknown key '%.*s' (`cleave mkmodel --set help` lists the keys)", (int)klen,
                    assignment);
}

/* --- parameters --------------------------------------------------------------------- */

static const struct file_type_info {
    const char *name;
    uint32_t file_type;
    int32_t base;         /* type of most weights */
    bool mixed;           /* the _M mixes of llama.cpp */
} file_types[] = {
    {"F32", 0, CLV_TYPE_F32, false},     {"F16", 1, CLV_TYPE_F16, false},       {"BF16", 32, CLV_TYPE_BF16, false},
    {"Q8_0", 7, CLV_TYPE_Q8_0, false},   {"Q6_K", 18, CLV_TYPE_Q6_K, false},    {"Q5_K_M", 17, CLV_TYPE_Q5_K, true},
    {"Q4_K_M", 15, CLV_TYPE_Q4_K, true}, {"Q4_0", 2, CLV_TYPE_Q4_0, false},
};

#define N_FILE_TYPES ((int)(sizeof file_types / sizeof file_types[0]))
#define FILE_TYPE_Q4_K_M 15

static const struct file_type_info *file_type_get(uint32_t ft) {
    for (int i = 0; i < N_FILE_TYPES; i++) {
        if (file_types[i].file_type == ft) return &file_types[i];
    }
    return NULL;
}

const char *clv_synth_type_name(uint32_t file_type) {
    const struct file_type_info *f = file_type_get(file_type);
    return f ? f->name : NULL;
}

clv_status clv_synth_parse_type(const char *name, uint32_t *file_type) {
    for (int i = 0; i < N_FILE_TYPES; i++) {
        if (!strcasecmp(name, file_types[i].name)) {
            *file_type = file_types[i].file_type;
            return CLV_OK;
        }
    }
    return clv_fail(CLV_ERR_ARG, "unknown type '%s' (types: Q4_K_M, Q5_K_M, Q6_K, Q8_0, Q4_0, F16, BF16, F32)", name);
}

clv_status clv_synth_parse_recipe(const char *name, int *recipe) {
    if (!strcasecmp(name, "llama.cpp")) *recipe = CLV_SYNTH_RECIPE_LLAMA_CPP;
    else if (!strcasecmp(name, "llama.cpp-2023")) *recipe = CLV_SYNTH_RECIPE_LLAMA_CPP_2023;
    else return clv_fail(CLV_ERR_ARG, "unknown recipe '%s' (llama.cpp or llama.cpp-2023)", name);
    return CLV_OK;
}

/* "LAW" or "LAW:ALPHA" with ALPHA a number in [0, 10]. */
static clv_status parse_law(const char *opt, const char *spec, const char *power_name, int power_law, int *law,
                            double *alpha) {
    const char *colon = strchr(spec, ':');
    size_t n = colon ? (size_t)(colon - spec) : strlen(spec);
    if (n == 7 && !strncasecmp(spec, "uniform", 7) && !colon) {
        *law = CLV_SYNTH_LAW_UNIFORM;
        *alpha = 0.0;
        return CLV_OK;
    }
    if (n == strlen(power_name) && !strncasecmp(spec, power_name, n) && colon) {
        char *end = NULL;
        double a = strtod(colon + 1, &end);
        if (*end || !(a >= 0.0 && a <= 10.0)) {
            return clv_fail(CLV_ERR_ARG, "%s '%s': alpha must be a number in [0, 10]", opt, spec);
        }
        *law = power_law;
        *alpha = a;
        return CLV_OK;
    }
    return clv_fail(CLV_ERR_ARG, "%s '%s': expected uniform or %s:ALPHA", opt, spec, power_name);
}

clv_status clv_synth_parse_router_skew(const char *spec, clv_synth_params *p) {
    return parse_law("--router-skew", spec, "zipf", CLV_SYNTH_LAW_ZIPF, &p->router_law, &p->router_alpha);
}

clv_status clv_synth_parse_hot_law(const char *spec, clv_synth_params *p) {
    return parse_law("--hot-law", spec, "powerlaw", CLV_SYNTH_LAW_POWERLAW, &p->hot_law, &p->hot_alpha);
}

clv_synth_params clv_synth_default_params(void) {
    clv_synth_params p;
    memset(&p, 0, sizeof p);
    p.file_type = FILE_TYPE_Q4_K_M;
    p.recipe = CLV_SYNTH_RECIPE_LLAMA_CPP;
    p.seed = 1;
    p.router_law = CLV_SYNTH_LAW_UNIFORM;
    p.router_jitter = 0.1;
    p.hot_law = CLV_SYNTH_LAW_POWERLAW;
    p.hot_alpha = 1.0;
    return p;
}

static bool is_moe_arch(const char *arch) { return !strcmp(arch, "qwen3moe") || !strcmp(arch, "olmoe"); }

static clv_status check_params(const clv_synth_params *p) {
    const clv_synth_shape *s = &p->shape;
    if (!s->name[0] || !s->arch[0]) return clv_fail(CLV_ERR_ARG, "no shape: start from a preset (--shape)");
    if (strcmp(s->arch, "llama") && !is_moe_arch(s->arch)) {
        return clv_fail(CLV_ERR_UNSUPPORTED, "architecture '%s' is not generated", s->arch);
    }
#define NEED(cond, ...)                                            \
    do {                                                           \
        if (!(cond)) return clv_fail(CLV_ERR_ARG, __VA_ARGS__);    \
    } while (0)
    NEED(s->n_vocab >= 512 && s->n_vocab <= (1 << 24), "vocab_size %lld: must be 512 to 16777216", (long long)s->n_vocab);
    NEED(s->n_ctx >= 1 && s->n_ctx <= (1LL << 31), "context_length %lld: must be 1 to 2^31", (long long)s->n_ctx);
    NEED(s->n_embd >= 32 && s->n_embd % 32 == 0 && s->n_embd <= 65536,
         "embedding_length %lld: must be a multiple of 32 up to 65536", (long long)s->n_embd);
    NEED(s->n_layer >= 1 && s->n_layer <= 1024, "block_count %lld: must be 1 to 1024", (long long)s->n_layer);
    NEED(s->n_head >= 1 && s->n_head_kv >= 1 && s->n_head % s->n_head_kv == 0 && s->n_head <= 1024,
         "attention.head_count %lld must be a multiple of head_count_kv %lld", (long long)s->n_head,
         (long long)s->n_head_kv);
    NEED(s->head_dim >= 2 && s->head_dim % 2 == 0 && s->head_dim <= 1024, "attention.key_length %lld: must be even, 2 to 1024",
         (long long)s->head_dim);
    NEED((s->n_head * s->head_dim) % 32 == 0 && (s->n_head_kv * s->head_dim) % 32 == 0,
         "heads x key_length must be a multiple of 32");
    bool moe = s->n_expert > 0;
    if (is_moe_arch(s->arch)) NEED(moe, "%s needs expert_count > 0", s->arch);
    if (moe) {
        NEED(s->n_expert >= 2 && s->n_expert <= 4096, "expert_count %lld: must be 2 to 4096", (long long)s->n_expert);
        NEED(s->n_expert_used >= 1 && s->n_expert_used < s->n_expert && s->n_expert_used <= 64,
             "expert_used_count %lld: must be 1 to 64 and below expert_count", (long long)s->n_expert_used);
        NEED(s->n_ff_exp >= 32 && s->n_ff_exp % 32 == 0 && s->n_ff_exp <= (1 << 20),
             "expert_feed_forward_length %lld: must be a multiple of 32", (long long)s->n_ff_exp);
    } else {
        NEED(s->n_ff >= 32 && s->n_ff % 32 == 0 && s->n_ff <= (1 << 20), "feed_forward_length %lld: must be a multiple of 32",
             (long long)s->n_ff);
    }
    NEED(s->rope_base > 0 && s->rms_eps > 0, "rope.freq_base and rms epsilon must be positive");
    NEED(file_type_get(p->file_type), "file type %u is not written by mkmodel", p->file_type);
    NEED(p->recipe == CLV_SYNTH_RECIPE_LLAMA_CPP || p->recipe == CLV_SYNTH_RECIPE_LLAMA_CPP_2023, "bad recipe");
    NEED(p->n_threads >= 0 && p->n_threads <= 1024, "threads %d: must be 0 to 1024", p->n_threads);
    if (p->router_law == CLV_SYNTH_LAW_ZIPF) {
        NEED(moe, "--router-skew needs a Mixture-of-Experts shape (%s has no experts)", s->name);
        NEED(p->router_alpha >= 0 && p->router_alpha <= 10, "router alpha %g: must be 0 to 10", p->router_alpha);
        NEED(p->router_jitter >= 0 && p->router_jitter <= 0.9, "alpha jitter %g: must be 0 to 0.9", p->router_jitter);
    } else {
        NEED(p->router_law == CLV_SYNTH_LAW_UNIFORM || p->router_law == CLV_SYNTH_LAW_NONE, "bad router law");
    }
    if (p->ffn_sparsity != 0.0) {
        NEED(p->ffn_sparsity >= 0.001 && p->ffn_sparsity <= 0.99, "--ffn-sparsity %g: must be 0.001 to 0.99",
             p->ffn_sparsity);
        NEED(s->relu, "--ffn-sparsity needs a ReLU FFN (preset relu-llama-13b, or --set ffn_activation=relu)");
        NEED(!moe, "--ffn-sparsity plants dense FFN neurons; %s is a Mixture-of-Experts shape", s->name);
        NEED(p->hot_law == CLV_SYNTH_LAW_UNIFORM || p->hot_law == CLV_SYNTH_LAW_POWERLAW, "bad hot-neuron law");
        NEED(p->hot_alpha >= 0 && p->hot_alpha <= 10, "hot-law alpha %g: must be 0 to 10", p->hot_alpha);
    }
#undef NEED
    return CLV_OK;
}

/* ------------------------------------------------------------------------------ */
/* the plan: tensors, types, planted numbers                                         */
/* ------------------------------------------------------------------------------ */

typedef enum role {
    R_EMBD, R_OUTPUT, R_NORM, R_Q, R_K, R_V, R_O, R_ROUTER, R_GATE, R_UP, R_DOWN,
} role;

typedef struct tensor_plan {
    char name[64];
    int role;
    int layer;          /* -1 outside blocks */
    bool expert;        /* 3D expert tensor */
    int32_t type;
    uint32_t n_dims;
    int64_t ne[3];
    uint64_t row_bytes, bytes;
    int64_t n_rows;     /* ne1 * ne2 */
    float scale;        /* std of plain Gaussian rows */
    int norm;           /* tensor whose weights multiply this one's input (-1: none) */
    int64_t rows_per_chunk, first_chunk;
} tensor_plan;

typedef struct layer_plan {
    float router_alpha;
    float *router_pi;   /* [n_expert] planted P(expert among the top k) */
    float *router_mu;   /* [n_expert] logit means, in units of ROUTER_NOISE */
    float router_error; /* calibration: largest |achieved - planted| on fresh draws */
    float *ffn_p;       /* [n_ff] planted P(gate > 0), ReLU shapes only */
    float *ffn_mu;      /* [n_ff] gate means, in units of the gate's noise */
} layer_plan;

typedef struct plan {
    clv_synth_params p;
    const clv_synth_shape *s;
    const struct file_type_info *ft;
    int n_threads;
    tensor_plan *t;
    int n_tensors;
    layer_plan *layers;
    float *u;           /* the common direction, unit length */
    double kappa;       /* relative token-to-token spread of the u-projection */
    double emb_common, emb_noise;
    double mean_gain;   /* sqrt(1 + eps^2): makes up for the embedding's quantization noise */
    double ffn_m2;      /* E[h^2] of an FFN hidden unit, for the down scale */
    synth_vocab vocab;
    clv_gguf_writer *w; /* NULL while only counting */
    uint64_t kv_bytes, info_bytes, data_bytes;
    int64_t n_kv;
    int64_t n_chunks;
    int32_t *chunk_tensor;
    int64_t *chunk_row;
    uint64_t max_chunk_bytes;
    int64_t max_row;    /* longest row, elements */
} plan;

static void plan_free(plan *pl) {
    if (!pl) return;
    if (pl->layers) {
        for (int64_t l = 0; l < pl->s->n_layer; l++) {
            free(pl->layers[l].router_pi);
            free(pl->layers[l].router_mu);
            free(pl->layers[l].ffn_p);
            free(pl->layers[l].ffn_mu);
        }
    }
    free(pl->layers);
    free(pl->t);
    free(pl->u);
    free(pl->chunk_tensor);
    free(pl->chunk_row);
    synth_vocab_free(&pl->vocab);
    clv_gguf_writer_free(pl->w);
    memset(pl, 0, sizeof *pl);
}

static uint64_t align_up(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

/* llama.cpp's rule for which layers get more bits in the _M mixes. */
static bool use_more_bits(int64_t i, int64_t n) { return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2; }

/* The type llama.cpp's quantizer would give this tensor (llama-quant.cpp,
 * llama_tensor_get_type for the file types here), then its fallback when the
 * row length does not fit the block. */
static int32_t pick_type(const plan *pl, int r, int64_t layer, bool expert, int64_t ne0) {
    const struct file_type_info *ft = pl->ft;
    if (r == R_NORM || r == R_ROUTER) return CLV_TYPE_F32; /* never quantized */
    int32_t t = ft->base;
    if (t == CLV_TYPE_F32 || t == CLV_TYPE_F16 || t == CLV_TYPE_BF16) return t;
    bool current = pl->p.recipe == CLV_SYNTH_RECIPE_LLAMA_CPP;
    bool eight = current && pl->s->n_expert == 8; /* rules written for Mixtral-8x7B */
    int64_t n_layer = pl->s->n_layer;
    switch (r) {
    case R_OUTPUT:
        if (ne0 % clv_type_get(t)->block_elems) t = CLV_TYPE_Q8_0;
        else if (t != CLV_TYPE_Q8_0) t = CLV_TYPE_Q6_K;
        break;
    case R_V:
        if (ft->mixed && use_more_bits(layer, n_layer)) t = CLV_TYPE_Q6_K;
        if (eight) t = CLV_TYPE_Q8_0;
        break;
    case R_K:
        if (eight) t = CLV_TYPE_Q8_0;
        break;
    case R_DOWN:
        /* before 2024 the mix did not reach expert tensors */
        if (ft->mixed && use_more_bits(layer, n_layer) && (current || !expert)) t = CLV_TYPE_Q6_K;
        break;
    case R_O:
        if (eight && pl->p.file_type == FILE_TYPE_Q4_K_M) t = CLV_TYPE_Q5_K;
        break;
    default: break;
    }
    if (ne0 % clv_type_get(t)->block_elems) {
        t = t == CLV_TYPE_Q4_K ? CLV_TYPE_Q5_0 : t == CLV_TYPE_Q5_K ? CLV_TYPE_Q5_1 : t == CLV_TYPE_Q6_K ? CLV_TYPE_Q8_0 : t;
        if (ne0 % clv_type_get(t)->block_elems) t = CLV_TYPE_F16;
    }
    return t;
}

static int add_tensor(plan *pl, int r, int layer, const char *suffix, bool expert, int64_t ne0, int64_t ne1,
                      int64_t ne2, float scale, int norm) {
    tensor_plan *t = &pl->t[pl->n_tensors];
    memset(t, 0, sizeof *t);
    if (layer >= 0) snprintf(t->name, sizeof t->name, "blk.%d.%s", layer, suffix);
    else snprintf(t->name, sizeof t->name, "%s", suffix);
    t->role = r;
    t->layer = layer;
    t->expert = expert;
    t->n_dims = ne2 > 1 || expert ? 3 : ne1 > 1 || r != R_NORM ? 2 : 1;
    t->ne[0] = ne0;
    t->ne[1] = ne1;
    t->ne[2] = ne2;
    t->n_rows = ne1 * ne2;
    t->type = pick_type(pl, r, layer, expert, ne0);
    bool ok = clv_type_bytes(t->type, ne0, &t->row_bytes);
    CLV_ASSERT(ok); /* shapes were checked; fallback types fit every row */
    t->bytes = t->row_bytes * (uint64_t)t->n_rows;
    t->scale = scale;
    t->norm = norm;
    return pl->n_tensors++;
}

/* Second moment of silu(g) for g ~ N(0, 1), by quadrature. */
static double silu_second_moment(void) {
    double sum = 0.0, h = 0.001;
    for (double x = -12.0; x <= 12.0; x += h) {
        double s = x / (1.0 + exp(-x));
        sum += s * s * exp(-0.5 * x * x);
    }
    return sum * h / sqrt(2.0 * 3.14159265358979323846);
}

static void build_tensors(plan *pl) {
    const clv_synth_shape *s = pl->s;
    int64_t d = s->n_embd, L = s->n_layer, q_dim = s->n_head * s->head_dim, kv_dim = s->n_head_kv * s->head_dim;
    bool moe = s->n_expert > 0;
    int64_t ff = moe ? s->n_ff_exp : s->n_ff;
    /* Each block's outputs add OUTPUT_BUDGET / (2 L) of the residual's
     * (unit) per-element variance: attention averages unit-variance values,
     * the FFN's hidden units have second moment ffn_m2. */
    double per_block = OUTPUT_BUDGET / (2.0 * (double)L);
    float s_in = (float)(1.0 / sqrt((double)d));
    float s_o = (float)sqrt(per_block / (double)q_dim);
    float s_down = (float)sqrt(per_block / ((double)ff * pl->ffn_m2));

    add_tensor(pl, R_EMBD, -1, "token_embd.weight", false, d, s->n_vocab, 1, 0, -1);
    for (int l = 0; l < (int)L; l++) {
        int attn_norm = add_tensor(pl, R_NORM, l, "attn_norm.weight", false, d, 1, 1, 0, -1);
        add_tensor(pl, R_Q, l, "attn_q.weight", false, d, q_dim, 1, s_in, -1);
        add_tensor(pl, R_K, l, "attn_k.weight", false, d, kv_dim, 1, s_in, -1);
        add_tensor(pl, R_V, l, "attn_v.weight", false, d, kv_dim, 1, s_in, attn_norm);
        add_tensor(pl, R_O, l, "attn_output.weight", false, q_dim, d, 1, s_o, -1);
        if (!strcmp(s->arch, "qwen3moe")) { /* per-head q/k norms */
            add_tensor(pl, R_NORM, l, "attn_q_norm.weight", false, s->head_dim, 1, 1, 0, -1);
            add_tensor(pl, R_NORM, l, "attn_k_norm.weight", false, s->head_dim, 1, 1, 0, -1);
        } else if (!strcmp(s->arch, "olmoe")) { /* q/k norms over the full width */
            add_tensor(pl, R_NORM, l, "attn_q_norm.weight", false, q_dim, 1, 1, 0, -1);
            add_tensor(pl, R_NORM, l, "attn_k_norm.weight", false, kv_dim, 1, 1, 0, -1);
        }
        int ffn_norm = add_tensor(pl, R_NORM, l, "ffn_norm.weight", false, d, 1, 1, 0, -1);
        if (moe) {
            add_tensor(pl, R_ROUTER, l, "ffn_gate_inp.weight", false, d, s->n_expert, 1, 0, ffn_norm);
            add_tensor(pl, R_GATE, l, "ffn_gate_exps.weight", true, d, ff, s->n_expert, s_in, ffn_norm);
            add_tensor(pl, R_UP, l, "ffn_up_exps.weight", true, d, ff, s->n_expert, s_in, ffn_norm);
            add_tensor(pl, R_DOWN, l, "ffn_down_exps.weight", true, ff, d, s->n_expert, s_down, -1);
        } else {
            add_tensor(pl, R_GATE, l, "ffn_gate.weight", false, d, ff, 1, s_in, ffn_norm);
            add_tensor(pl, R_UP, l, "ffn_up.weight", false, d, ff, 1, s_in, ffn_norm);
            add_tensor(pl, R_DOWN, l, "ffn_down.weight", false, ff, d, 1, s_down, -1);
        }
    }
    add_tensor(pl, R_NORM, -1, "output_norm.weight", false, d, 1, 1, 0, -1);
    add_tensor(pl, R_OUTPUT, -1, "output.weight", false, d, s->n_vocab, 1, (float)(LOGIT_STD / sqrt((double)d)), -1);
}

/* Planted numbers of one layer: router popularity and calibrated logit
 * means; ReLU firing probabilities and gate means. */
static bool plan_layer(plan *pl, int64_t l) {
    const clv_synth_shape *s = pl->s;
    const clv_synth_params *p = &pl->p;
    layer_plan *lp = &pl->layers[l];
    bool ok = true;
    if (s->n_expert > 0) {
        int64_t E = s->n_expert, k = s->n_expert_used;
        double *pi = malloc((size_t)E * sizeof *pi), *mu = malloc((size_t)E * sizeof *mu);
        double *sorted = malloc((size_t)E * sizeof *sorted);
        int64_t *perm = malloc((size_t)E * sizeof *perm);
        if (!pi || !mu || !sorted || !perm) {
            ok = false;
        } else if (p->router_law == CLV_SYNTH_LAW_ZIPF) {
            synth_rng r = synth_rng_at(p->seed, STREAM_ALPHA, (uint64_t)l);
            double alpha = p->router_alpha * (1.0 + p->router_jitter * (2.0 * synth_uniform(&r) - 1.0));
            synth_capped_powerlaw(E, alpha, (double)k, ROUTER_P_MIN, ROUTER_P_MAX, sorted);
            /* each layer ranks its experts differently (Fisher-Yates) */
            synth_rng pr = synth_rng_at(p->seed, STREAM_PERM, (uint64_t)l);
            for (int64_t i = 0; i < E; i++) perm[i] = i;
            for (int64_t i = E - 1; i > 0; i--) {
                int64_t j = (int64_t)(synth_uniform(&pr) * (double)(i + 1));
                int64_t tmp = perm[i];
                perm[i] = perm[j];
                perm[j] = tmp;
            }
            for (int64_t rank = 0; rank < E; rank++) pi[perm[rank]] = sorted[rank];
            lp->router_alpha = (float)alpha;
            double err = synth_calibrate_topk(pi, E, k, pl->kappa, p->seed ^ synth_mix64(STREAM_CAL + (uint64_t)l),
                                              CAL_SAMPLES, mu, NULL);
            lp->router_error = (float)err;
            if (err < 0) ok = false;
        } else {
            /* equal experts: zero means are exact by symmetry */
            for (int64_t i = 0; i < E; i++) {
                pi[i] = (double)k / (double)E;
                mu[i] = 0.0;
            }
        }
        for (int64_t i = 0; ok && i < E; i++) {
            lp->router_pi[i] = (float)pi[i];
            lp->router_mu[i] = (float)mu[i];
        }
        free(pi);
        free(mu);
        free(sorted);
        free(perm);
    }
    if (ok && s->relu && s->n_expert == 0) {
        int64_t n = s->n_ff;
        double *prob = malloc((size_t)n * sizeof *prob), *sorted = malloc((size_t)n * sizeof *sorted);
        if (!prob || !sorted) {
            free(prob);
            free(sorted);
            return false;
        }
        if (p->ffn_sparsity == 0.0 || p->hot_law == CLV_SYNTH_LAW_UNIFORM) {
            double v = p->ffn_sparsity == 0.0 ? 0.5 : p->ffn_sparsity;
            for (int64_t i = 0; i < n; i++) prob[i] = v;
        } else {
            synth_capped_powerlaw(n, p->hot_alpha, p->ffn_sparsity * (double)n, NEURON_P_MIN, NEURON_P_MAX, sorted);
            synth_rng pr = synth_rng_at(p->seed, STREAM_PERM + 1, (uint64_t)l);
            for (int64_t i = 0; i < n; i++) prob[i] = sorted[i];
            for (int64_t i = n - 1; i > 0; i--) { /* shuffle: hot neurons anywhere in the layer */
                int64_t j = (int64_t)(synth_uniform(&pr) * (double)(i + 1));
                double tmp = prob[i];
                prob[i] = prob[j];
                prob[j] = tmp;
            }
        }
        /* P(mu (1 + kappa g0) + eps > 0) = Phi(mu / sqrt(1 + mu^2 kappa^2)) */
        double k2 = pl->kappa * pl->kappa;
        for (int64_t i = 0; i < n; i++) {
            double t = synth_norm_ppf(prob[i]);
            lp->ffn_p[i] = (float)prob[i];
            lp->ffn_mu[i] = (float)(t / sqrt(fmax(1.0 - t * t * k2, 0.1)));
        }
        free(prob);
        free(sorted);
    }
    return ok;
}

typedef struct layer_job {
    plan *pl;
    int worker, n_workers;
    bool ok;
} layer_job;

static void *layer_worker(void *arg) {
    layer_job *j = arg;
    j->ok = true;
    for (int64_t l = j->worker; l < j->pl->s->n_layer; l += j->n_workers) j->ok &= plan_layer(j->pl, l);
    return NULL;
}

static clv_status plan_layers(plan *pl) {
    const clv_synth_shape *s = pl->s;
    pl->layers = calloc((size_t)s->n_layer, sizeof *pl->layers);
    if (!pl->layers) return clv_fail(CLV_ERR_NOMEM, "no memory for %lld layers", (long long)s->n_layer);
    for (int64_t l = 0; l < s->n_layer; l++) {
        layer_plan *lp = &pl->layers[l];
        if (s->n_expert > 0) {
            lp->router_pi = malloc((size_t)s->n_expert * sizeof *lp->router_pi);
            lp->router_mu = malloc((size_t)s->n_expert * sizeof *lp->router_mu);
            if (!lp->router_pi || !lp->router_mu) return clv_fail(CLV_ERR_NOMEM, "no memory for router plans");
        }
        if (s->relu && s->n_expert == 0) {
            lp->ffn_p = malloc((size_t)s->n_ff * sizeof *lp->ffn_p);
            lp->ffn_mu = malloc((size_t)s->n_ff * sizeof *lp->ffn_mu);
            if (!lp->ffn_p || !lp->ffn_mu) return clv_fail(CLV_ERR_NOMEM, "no memory for neuron plans");
        }
    }
    /* layers calibrate independently: share them out, the caller taking
     * share 0 and any share whose thread did not start */
    int n = pl->n_threads < s->n_layer ? pl->n_threads : (int)s->n_layer;
    if (n > 8) n = 8; /* a router calibration holds ~17 MB of draws per thread */
    if (n < 1) n = 1;
    pthread_t th[8];
    bool started[8] = {false};
    layer_job jobs[8];
    for (int i = 0; i < n; i++) jobs[i] = (layer_job){pl, i, n, false};
    for (int i = 1; i < n; i++) started[i] = pthread_create(&th[i], NULL, layer_worker, &jobs[i]) == 0;
    layer_worker(&jobs[0]);
    bool ok = jobs[0].ok;
    for (int i = 1; i < n; i++) {
        if (started[i]) pthread_join(th[i], NULL);
        else layer_worker(&jobs[i]);
        ok &= jobs[i].ok;
    }
    return ok ? CLV_OK : clv_fail(CLV_ERR_NOMEM, "no memory to plan the planted statistics");
}

/* An engine reads embedding rows back from their quantized form, whose error
 * adds to the token-to-token noise (relative variance eps^2) but not to the
 * common direction; planted means are scaled by sqrt(1 + eps^2) so the
 * mean-to-noise ratios stay as calibrated. eps^2 from a few decoded rows. */
static clv_status measure_embedding_noise(plan *pl) {
    const tensor_plan *t = &pl->t[0];
    CLV_ASSERT(t->role == R_EMBD);
    pl->mean_gain = 1.0;
    if (t->type == CLV_TYPE_F32) return CLV_OK;
    int64_t d = t->ne[0];
    float *x = malloc((size_t)d * sizeof *x), *y = malloc((size_t)d * sizeof *y);
    void *q = malloc(t->row_bytes);
    if (!x || !y || !q) {
        free(x);
        free(y);
        free(q);
        return clv_fail(CLV_ERR_NOMEM, "no memory");
    }
    double err = 0.0;
    int rows = 16;
    for (int r = 0; r < rows; r++) {
        synth_rng rng = synth_rng_at(pl->p.seed, STREAM_U + 1, (uint64_t)r);
        for (int64_t j = 0; j < d; j++) x[j] = (float)(pl->emb_common * pl->u[j] + pl->emb_noise * synth_gauss_fast(&rng));
        clv_status st = synth_quantize_row(t->type, x, q, d);
        if (!st) st = clv_dequantize_row(t->type, q, y, d);
        CLV_ASSERT(!st);
        for (int64_t j = 0; j < d; j++) err += (double)(y[j] - x[j]) * (y[j] - x[j]);
    }
    double eps2 = err / ((double)rows * (double)d * (1.0 - COMMON_ENERGY));
    pl->mean_gain = sqrt(1.0 + eps2);
    free(x);
    free(y);
    free(q);
    return CLV_OK;
}

/* ------------------------------------------------------------------------------ */
/* metadata, counted byte for byte                                                  */
/* ------------------------------------------------------------------------------ */

static clv_status md_value(plan *pl, const char *key, const clv_gguf_value *v, uint64_t value_bytes) {
    pl->kv_bytes += 8 + strlen(key) + 4 + value_bytes;
    pl->n_kv++;
    return pl->w ? clv_gguf_writer_set_value(pl->w, key, v) : CLV_OK;
}

static clv_status md_u32(plan *pl, const char *key, uint32_t x) {
    clv_gguf_value v = {.type = CLV_GGUF_U32};
    v.v.u32 = x;
    return md_value(pl, key, &v, 4);
}

static clv_status md_u64(plan *pl, const char *key, uint64_t x) {
    clv_gguf_value v = {.type = CLV_GGUF_U64};
    v.v.u64 = x;
    return md_value(pl, key, &v, 8);
}

static clv_status md_f32(plan *pl, const char *key, float x) {
    clv_gguf_value v = {.type = CLV_GGUF_F32};
    v.v.f32 = x;
    return md_value(pl, key, &v, 4);
}

static clv_status md_bool(plan *pl, const char *key, bool x) {
    clv_gguf_value v = {.type = CLV_GGUF_BOOL};
    v.v.b = x;
    return md_value(pl, key, &v, 1);
}

static clv_status md_str(plan *pl, const char *key, const char *x) {
    clv_gguf_value v = {.type = CLV_GGUF_STRING};
    v.v.str.data = x;
    v.v.str.len = strlen(x);
    return md_value(pl, key, &v, 8 + v.v.str.len);
}

static clv_status md_arr(plan *pl, const char *key, int32_t elem_type, const void *data, uint64_t count) {
    clv_gguf_value v = {.type = CLV_GGUF_ARRAY};
    v.v.arr.elem_type = elem_type;
    v.v.arr.count = count;
    v.v.arr.data = data;
    return md_value(pl, key, &v, 4 + 8 + count * clv_gguf_value_type_size(elem_type));
}

static clv_status md_arr_str(plan *pl, const char *key, char *const *strs, uint64_t count) {
    uint64_t bytes = 4 + 8;
    for (uint64_t i = 0; i < count; i++) bytes += 8 + strlen(strs[i]);
    if (!pl->w) return md_value(pl, key, NULL, bytes);
    clv_status st = clv_gguf_writer_set_arr_str(pl->w, key, (const char *const *)strs, count);
    pl->kv_bytes += 8 + strlen(key) + 4 + bytes;
    pl->n_kv++;
    return st;
}

static int cmp_float_desc(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x < y) - (x > y);
}

/* Shares of the total that the top 10% and the bottom 50% of entries hold. */
static bool rank_shares(const float *p, int64_t n, double *top10, double *bottom50) {
    float *v = malloc((size_t)n * sizeof *v);
    if (!v) return false;
    memcpy(v, p, (size_t)n * sizeof *v);
    qsort(v, (size_t)n, sizeof *v, cmp_float_desc);
    double total = 0.0, t = 0.0, b = 0.0;
    int64_t m10 = (int64_t)ceil(0.1 * (double)n), m50 = (int64_t)ceil(0.5 * (double)n);
    for (int64_t i = 0; i < n; i++) {
        total += v[i];
        if (i < m10) t += v[i];
        if (i >= n - m50) b += v[i];
    }
    *top10 = t / total;
    *bottom50 = b / total;
    free(v);
    return true;
}

static clv_status emit_synthetic_md(plan *pl) {
    const clv_synth_shape *s = pl->s;
    const clv_synth_params *p = &pl->p;
    int64_t L = s->n_layer;
    clv_status st = CLV_OK;
    char text[512];
    st = st ? st : md_u32(pl, "cleave.synthetic.version", 1);
    st = st ? st : md_str(pl, "cleave.synthetic.shape", s->name);
    st = st ? st : md_str(pl, "cleave.synthetic.overrides", s->overrides);
    st = st ? st : md_u64(pl, "cleave.synthetic.seed", p->seed);
    st = st ? st : md_str(pl, "cleave.synthetic.file_type", pl->ft->name);
    st = st ? st : md_str(pl, "cleave.synthetic.recipe", p->recipe == CLV_SYNTH_RECIPE_LLAMA_CPP ? "llama.cpp" : "llama.cpp-2023");
    st = st ? st : md_f32(pl, "cleave.synthetic.residual.common_energy", (float)COMMON_ENERGY);
    st = st ? st : md_f32(pl, "cleave.synthetic.residual.output_budget", (float)OUTPUT_BUDGET);
    if (st) return st;

    if (s->n_expert > 0) {
        int64_t E = s->n_expert;
        float *alpha = malloc((size_t)L * sizeof *alpha), *pop = malloc((size_t)(L * E) * sizeof *pop);
        if (!alpha || !pop) {
            free(alpha);
            free(pop);
            return clv_fail(CLV_ERR_NOMEM, "no memory for router metadata");
        }
        double top_sum = 0, bottom_sum = 0, amin = INFINITY, amax = -INFINITY, worst = 0;
        for (int64_t l = 0; l < L; l++) {
            alpha[l] = pl->layers[l].router_alpha;
            memcpy(pop + l * E, pl->layers[l].router_pi, (size_t)E * sizeof *pop);
            double top, bottom;
            if (!rank_shares(pl->layers[l].router_pi, E, &top, &bottom)) st = clv_fail(CLV_ERR_NOMEM, "no memory");
            top_sum += top;
            bottom_sum += bottom;
            amin = fmin(amin, alpha[l]);
            amax = fmax(amax, alpha[l]);
            worst = fmax(worst, pl->layers[l].router_error);
        }
        bool zipf = p->router_law == CLV_SYNTH_LAW_ZIPF;
        /* short enough for `cleave inspect` to show whole */
        if (zipf) {
            snprintf(text, sizeof text, "zipf %.2f (layers %.2f..%.2f): top 10%% of experts get %.1f%% of routings",
                     p->router_alpha, amin, amax, 100.0 * top_sum / (double)L);
        } else {
            snprintf(text, sizeof text, "uniform: each expert gets %.2f%% of tokens in every layer",
                     100.0 * (double)s->n_expert_used / (double)E);
        }
        st = st ? st : md_str(pl, "cleave.synthetic.router.law", zipf ? "zipf" : "uniform");
        st = st ? st : md_f32(pl, "cleave.synthetic.router.alpha", (float)(zipf ? p->router_alpha : 0.0));
        st = st ? st : md_f32(pl, "cleave.synthetic.router.alpha_jitter", (float)(zipf ? p->router_jitter : 0.0));
        st = st ? st : md_f32(pl, "cleave.synthetic.router.logit_noise", (float)ROUTER_NOISE);
        st = st ? st : md_arr(pl, "cleave.synthetic.router.alpha_per_layer", CLV_GGUF_F32, alpha, (uint64_t)L);
        /* [block_count][expert_count]: P(expert among a token's top k); each row sums to k */
        st = st ? st : md_arr(pl, "cleave.synthetic.router.popularity", CLV_GGUF_F32, pop, (uint64_t)(L * E));
        st = st ? st : md_str(pl, "cleave.synthetic.router.summary", text);
        st = st ? st : md_f32(pl, "cleave.synthetic.router.top10_share", (float)(top_sum / (double)L));
        st = st ? st : md_f32(pl, "cleave.synthetic.router.bottom50_share", (float)(bottom_sum / (double)L));
        st = st ? st : md_f32(pl, "cleave.synthetic.router.calibration_error", (float)worst);
        free(alpha);
        free(pop);
        if (st) return st;
    }
    if (s->relu && s->n_expert == 0) {
        int64_t n = s->n_ff;
        float *prob = malloc((size_t)(L * n) * sizeof *prob);
        if (!prob) return clv_fail(CLV_ERR_NOMEM, "no memory for neuron metadata");
        double top_sum = 0.0, total = 0.0;
        for (int64_t l = 0; l < L; l++) {
            memcpy(prob + l * n, pl->layers[l].ffn_p, (size_t)n * sizeof *prob);
            double top = 0, bottom;
            if (!rank_shares(pl->layers[l].ffn_p, n, &top, &bottom)) st = clv_fail(CLV_ERR_NOMEM, "no memory");
            top_sum += top;
            for (int64_t i = 0; i < n; i++) total += pl->layers[l].ffn_p[i];
        }
        const char *law = p->ffn_sparsity == 0.0 ? "none" : p->hot_law == CLV_SYNTH_LAW_UNIFORM ? "uniform" : "powerlaw";
        double mean = total / (double)(L * n);
        if (p->ffn_sparsity == 0.0) snprintf(text, sizeof text, "not planted: every neuron fires for half the tokens");
        else if (!strcmp(law, "uniform")) snprintf(text, sizeof text, "uniform: every neuron fires for %.1f%% of tokens", 100.0 * mean);
        else snprintf(text, sizeof text, "powerlaw %.2f: %.1f%% of neurons fire per token, hottest 10%% get %.1f%% of firings",
                      p->hot_alpha, 100.0 * mean, 100.0 * top_sum / (double)L);
        st = st ? st : md_str(pl, "cleave.synthetic.ffn.law", law);
        st = st ? st : md_f32(pl, "cleave.synthetic.ffn.sparsity", (float)mean);
        st = st ? st : md_f32(pl, "cleave.synthetic.ffn.alpha", (float)(!strcmp(law, "powerlaw") ? p->hot_alpha : 0.0));
        /* [block_count][feed_forward_length]: P(neuron's gate > 0) per token */
        st = st ? st : md_arr(pl, "cleave.synthetic.ffn.firing_prob", CLV_GGUF_F32, prob, (uint64_t)(L * n));
        st = st ? st : md_str(pl, "cleave.synthetic.ffn.summary", text);
        st = st ? st : md_f32(pl, "cleave.synthetic.ffn.top10_share", (float)(top_sum / (double)L));
        free(prob);
    }
    return st;
}

static clv_status emit_metadata(plan *pl) {
    const clv_synth_shape *s = pl->s;
    const synth_vocab *v = &pl->vocab;
    const char *a = s->arch;
    char key[128], name[160];
    clv_status st = CLV_OK;
    pl->kv_bytes = 0;
    pl->n_kv = 0;
#define ARCH_KEY(suffix) (snprintf(key, sizeof key, "%s.%s", a, suffix), key)
    const clv_synth_preset_info *info = NULL;
    for (int i = 0; i < N_PRESETS; i++) {
        if (!strcmp(presets[i].info.name, s->name)) info = &presets[i].info;
    }
    snprintf(name, sizeof name, "synthetic %s (cleave mkmodel)", info ? info->real_model : s->name);
    bool quantized = pl->ft->base != CLV_TYPE_F32 && pl->ft->base != CLV_TYPE_F16 && pl->ft->base != CLV_TYPE_BF16;
    bool moe = s->n_expert > 0;
    st = st ? st : md_str(pl, "general.architecture", a);
    st = st ? st : md_str(pl, "general.type", "model");
    st = st ? st : md_str(pl, "general.name", name);
    st = st ? st : md_u32(pl, "general.file_type", pl->ft->file_type);
    if (quantized) st = st ? st : md_u32(pl, "general.quantization_version", 2);
    st = st ? st : md_u32(pl, ARCH_KEY("vocab_size"), (uint32_t)s->n_vocab);
    st = st ? st : md_u32(pl, ARCH_KEY("context_length"), (uint32_t)s->n_ctx);
    st = st ? st : md_u32(pl, ARCH_KEY("embedding_length"), (uint32_t)s->n_embd);
    st = st ? st : md_u32(pl, ARCH_KEY("block_count"), (uint32_t)s->n_layer);
    /* llama (Mixtral) and olmoe files give the expert width as
     * feed_forward_length, and llama.cpp reads it from there */
    bool ff_is_expert = moe && strcmp(a, "qwen3moe");
    st = st ? st : md_u32(pl, ARCH_KEY("feed_forward_length"), (uint32_t)(ff_is_expert ? s->n_ff_exp : s->n_ff));
    st = st ? st : md_u32(pl, ARCH_KEY("attention.head_count"), (uint32_t)s->n_head);
    st = st ? st : md_u32(pl, ARCH_KEY("attention.head_count_kv"), (uint32_t)s->n_head_kv);
    st = st ? st : md_u32(pl, ARCH_KEY("attention.key_length"), (uint32_t)s->head_dim);
    st = st ? st : md_u32(pl, ARCH_KEY("attention.value_length"), (uint32_t)s->head_dim);
    st = st ? st : md_f32(pl, ARCH_KEY("attention.layer_norm_rms_epsilon"), (float)s->rms_eps);
    st = st ? st : md_f32(pl, ARCH_KEY("rope.freq_base"), (float)s->rope_base);
    st = st ? st : md_u32(pl, ARCH_KEY("rope.dimension_count"), (uint32_t)s->head_dim);
    if (moe) {
        st = st ? st : md_u32(pl, ARCH_KEY("expert_count"), (uint32_t)s->n_expert);
        st = st ? st : md_u32(pl, ARCH_KEY("expert_used_count"), (uint32_t)s->n_expert_used);
        if (!ff_is_expert) st = st ? st : md_u32(pl, ARCH_KEY("expert_feed_forward_length"), (uint32_t)s->n_ff_exp);
    }
    /* llama.cpp names no activation for llama FFNs; cleave reads this key
     * (models/arch_common.c), the one other architectures use. */
    if (s->relu) st = st ? st : md_str(pl, ARCH_KEY("hidden_activation"), "relu");
#undef ARCH_KEY

    st = st ? st : md_str(pl, "tokenizer.ggml.model", v->model);
    if (v->pre) st = st ? st : md_str(pl, "tokenizer.ggml.pre", v->pre);
    st = st ? st : md_arr_str(pl, "tokenizer.ggml.tokens", v->tokens, (uint64_t)v->n_tokens);
    if (v->scores) st = st ? st : md_arr(pl, "tokenizer.ggml.scores", CLV_GGUF_F32, v->scores, (uint64_t)v->n_tokens);
    st = st ? st : md_arr(pl, "tokenizer.ggml.token_type", CLV_GGUF_I32, v->types, (uint64_t)v->n_tokens);
    if (v->merges) st = st ? st : md_arr_str(pl, "tokenizer.ggml.merges", v->merges, (uint64_t)v->n_merges);
    if (v->bos >= 0) st = st ? st : md_u32(pl, "tokenizer.ggml.bos_token_id", (uint32_t)v->bos);
    if (v->eos >= 0) st = st ? st : md_u32(pl, "tokenizer.ggml.eos_token_id", (uint32_t)v->eos);
    if (v->eot >= 0) st = st ? st : md_u32(pl, "tokenizer.ggml.eot_token_id", (uint32_t)v->eot);
    if (v->unk >= 0) st = st ? st : md_u32(pl, "tokenizer.ggml.unknown_token_id", (uint32_t)v->unk);
    if (v->pad >= 0) st = st ? st : md_u32(pl, "tokenizer.ggml.padding_token_id", (uint32_t)v->pad);
    st = st ? st : md_bool(pl, "tokenizer.ggml.add_bos_token", v->add_bos);
    st = st ? st : md_bool(pl, "tokenizer.ggml.add_eos_token", false);
    if (!strcmp(v->model, "llama")) st = st ? st : md_bool(pl, "tokenizer.ggml.add_space_prefix", v->add_space_prefix);
    st = st ? st : md_str(pl, "tokenizer.chat_template", v->chat_template);
    return st ? st : emit_synthetic_md(pl);
}

/* ------------------------------------------------------------------------------ */
/* building a plan                                                                   */
/* ------------------------------------------------------------------------------ */

static int online_cpus(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > 256 ? 256 : (int)n;
}

static clv_status plan_build(const clv_synth_params *params, plan *pl) {
    memset(pl, 0, sizeof *pl);
    clv_status st = check_params(params);
    if (st) return st;
    pl->p = *params;
    pl->s = &pl->p.shape;
    pl->ft = file_type_get(params->file_type);
    pl->n_threads = params->n_threads > 0 ? params->n_threads : online_cpus();
    const clv_synth_shape *s = pl->s;
    int64_t d = s->n_embd;

    /* the common direction u: a random unit vector */
    pl->u = malloc((size_t)d * sizeof *pl->u);
    if (!pl->u) return clv_fail(CLV_ERR_NOMEM, "no memory");
    synth_rng r = synth_rng_at(params->seed, STREAM_U, 0);
    double norm = 0.0;
    for (int64_t j = 0; j < d; j++) {
        pl->u[j] = (float)synth_gauss(&r);
        norm += (double)pl->u[j] * pl->u[j];
    }
    for (int64_t j = 0; j < d; j++) pl->u[j] = (float)(pl->u[j] / sqrt(norm));
    /* embedding rows: sqrt(rho d) u + sqrt(1 - rho) n, unit per-element RMS */
    pl->emb_common = sqrt(COMMON_ENERGY * (double)d);
    pl->emb_noise = sqrt(1.0 - COMMON_ENERGY);
    pl->kappa = pow(1.0 - COMMON_ENERGY, 1.5) / sqrt(COMMON_ENERGY * (double)d);

    st = plan_layers(pl);
    if (st) return st;
    /* an FFN hidden unit: act(gate) * up, up projected off u (variance 1 - rho) */
    double m2 = 0.0;
    if (s->relu && s->n_expert == 0) {
        for (int64_t l = 0; l < s->n_layer; l++) {
            for (int64_t i = 0; i < s->n_ff; i++) m2 += synth_relu_second_moment(pl->layers[l].ffn_mu[i]);
        }
        m2 /= (double)(s->n_layer * s->n_ff);
    } else {
        m2 = silu_second_moment();
    }
    pl->ffn_m2 = fmax(m2 * (1.0 - COMMON_ENERGY), 1e-3);

    st = synth_vocab_build(s, params->seed, &pl->vocab);
    if (st) return st;

    int max_tensors = 2 + 1 + (int)s->n_layer * 12;
    pl->t = calloc((size_t)max_tensors, sizeof *pl->t);
    if (!pl->t) return clv_fail(CLV_ERR_NOMEM, "no memory");
    build_tensors(pl);
    CLV_ASSERT(pl->n_tensors <= max_tensors);
    st = measure_embedding_noise(pl);
    if (st) return st;

    st = emit_metadata(pl);
    if (st) return st;
    pl->info_bytes = 0;
    pl->data_bytes = 0;
    pl->max_row = 0;
    pl->n_chunks = 0;
    pl->max_chunk_bytes = 0;
    for (int i = 0; i < pl->n_tensors; i++) {
        tensor_plan *t = &pl->t[i];
        pl->info_bytes += 8 + strlen(t->name) + 4 + 8 * (uint64_t)t->n_dims + 4 + 8;
        pl->data_bytes += align_up(t->bytes, CLV_GGUF_DEFAULT_ALIGNMENT);
        if (t->ne[0] > pl->max_row) pl->max_row = t->ne[0];
        t->rows_per_chunk = (int64_t)(CHUNK_BYTES / t->row_bytes);
        if (t->rows_per_chunk < 1) t->rows_per_chunk = 1;
        if (t->rows_per_chunk > t->n_rows) t->rows_per_chunk = t->n_rows;
        uint64_t cb = (uint64_t)t->rows_per_chunk * t->row_bytes;
        if (cb > pl->max_chunk_bytes) pl->max_chunk_bytes = cb;
        t->first_chunk = pl->n_chunks;
        pl->n_chunks += (t->n_rows + t->rows_per_chunk - 1) / t->rows_per_chunk;
    }
    return CLV_OK;
}

static void fill_report(const plan *pl, clv_synth_report *out) {
    memset(out, 0, sizeof *out);
    out->n_tensors = pl->n_tensors;
    out->n_threads = pl->n_threads;
    out->file_bytes = align_up(24 + pl->kv_bytes + pl->info_bytes, CLV_GGUF_DEFAULT_ALIGNMENT) + pl->data_bytes;
    for (int i = 0; i < pl->n_tensors; i++) {
        const tensor_plan *t = &pl->t[i];
        uint64_t n = (uint64_t)(t->ne[0] * t->n_rows);
        out->n_params += n;
        out->params_by_type[t->type] += n;
        out->bytes_by_type[t->type] += t->bytes;
    }
}

clv_status clv_synth_plan(const clv_synth_params *p, clv_synth_report *out) {
    plan pl;
    clv_status st = plan_build(p, &pl);
    if (!st) fill_report(&pl, out);
    plan_free(&pl);
    return st;
}

/* ------------------------------------------------------------------------------ */
/* weight rows                                                                        */
/* ------------------------------------------------------------------------------ */

typedef struct scratch {
    float *row, *deq, *inv_g;
    int g_tensor;     /* norm tensor whose inverse weights inv_g holds */
} scratch;

/* Rows with a norm in front are built for the effective row w * g (what the
 * normalized input meets), then divided by g. */
static const float *inverse_norm(const plan *pl, scratch *sc, int norm) {
    if (sc->g_tensor != norm) {
        const tensor_plan *t = &pl->t[norm];
        synth_rng r = synth_rng_at(pl->p.seed, STREAM_TENSOR + (uint64_t)norm, 0);
        for (int64_t j = 0; j < t->ne[0]; j++) sc->inv_g[j] = 1.0f / (1.0f + NORM_JITTER * synth_gauss_fast(&r));
        sc->g_tensor = norm;
    }
    return sc->inv_g;
}

/* z <- z - (z.u) u, and returns |z| afterwards. */
static double project_off_u(const plan *pl, float *z, int64_t d) {
    double dot = 0.0, nn = 0.0;
    for (int64_t j = 0; j < d; j++) dot += (double)z[j] * pl->u[j];
    for (int64_t j = 0; j < d; j++) {
        z[j] -= (float)dot * pl->u[j];
        nn += (double)z[j] * z[j];
    }
    return sqrt(nn);
}

/* A row whose effective version is a u + b zhat, zhat a random unit vector
 * orthogonal to u: over normalized tokens its dot product has mean
 * a sqrt(rho d) and spread b sqrt(1 - rho). */
static void planted_row(const plan *pl, synth_rng *r, double mean, double noise, const float *inv_g, float *out) {
    int64_t d = pl->s->n_embd;
    for (int64_t j = 0; j < d; j++) out[j] = synth_gauss_fast(r);
    double len = project_off_u(pl, out, d);
    float a = (float)(mean / sqrt(COMMON_ENERGY * (double)d));
    float b = (float)(noise / sqrt(1.0 - COMMON_ENERGY) / (len > 0 ? len : 1.0));
    for (int64_t j = 0; j < d; j++) out[j] = (a * pl->u[j] + b * out[j]) * inv_g[j];
}

static void gen_row(const plan *pl, int ti, int64_t row, scratch *sc, float *out) {
    const tensor_plan *t = &pl->t[ti];
    int64_t n = t->ne[0];
    synth_rng r = synth_rng_at(pl->p.seed, STREAM_TENSOR + (uint64_t)ti, (uint64_t)row);
    switch (t->role) {
    case R_NORM:
        for (int64_t j = 0; j < n; j++) out[j] = 1.0f + NORM_JITTER * synth_gauss_fast(&r);
        return;
    case R_EMBD: {
        float c = (float)pl->emb_common, e = (float)pl->emb_noise;
        for (int64_t j = 0; j < n; j++) out[j] = c * pl->u[j] + e * synth_gauss_fast(&r);
        return;
    }
    case R_ROUTER:
        planted_row(pl, &r, ROUTER_NOISE * pl->mean_gain * pl->layers[t->layer].router_mu[row], ROUTER_NOISE,
                    inverse_norm(pl, sc, t->norm), out);
        return;
    case R_GATE:
        if (pl->s->relu && !t->expert) {
            planted_row(pl, &r, pl->mean_gain * pl->layers[t->layer].ffn_mu[row], 1.0, inverse_norm(pl, sc, t->norm), out);
            return;
        }
        break;
    case R_V:
    case R_UP: {
        /* off u: no token-independent part, so layer outputs average to zero */
        const float *inv_g = inverse_norm(pl, sc, t->norm);
        for (int64_t j = 0; j < n; j++) out[j] = synth_gauss_fast(&r);
        project_off_u(pl, out, n);
        for (int64_t j = 0; j < n; j++) out[j] *= t->scale * inv_g[j];
        return;
    }
    default: break;
    }
    for (int64_t j = 0; j < n; j++) out[j] = t->scale * synth_gauss_fast(&r);
}

/* Quantization moves a planted gate row's u-component and adds to its
 * orthogonal noise. Correction passes measure both on the decoded row, set
 * the u-component that gives the planted firing probability for the noise
 * the row really has, and requantize. */
static void correct_planted(const plan *pl, const tensor_plan *t, scratch *sc, float *row, void *dst, int64_t row_idx) {
    int64_t d = t->ne[0];
    const float *inv_g = inverse_norm(pl, sc, t->norm);
    for (int pass = 0; pass < 2; pass++) {
        clv_status st = clv_dequantize_row(t->type, dst, sc->deq, d);
        CLV_ASSERT(!st);
        double proj = 0.0, nn = 0.0;
        for (int64_t j = 0; j < d; j++) {
            double w = (double)sc->deq[j] / inv_g[j]; /* effective weight w * g */
            proj += w * pl->u[j];
            nn += w * w;
        }
        double perp = sqrt(fmax(nn - proj * proj, 0.0));
        double target = pl->layers[t->layer].ffn_mu[row_idx] * pl->mean_gain * perp * sqrt(1.0 - COMMON_ENERGY) /
                        sqrt(COMMON_ENERGY * (double)d);
        float shift = (float)(target - proj);
        for (int64_t j = 0; j < d; j++) row[j] += shift * pl->u[j] * inv_g[j];
        st = synth_quantize_row(t->type, row, dst, d);
        CLV_ASSERT(!st);
    }
}

static void gen_chunk(const plan *pl, int64_t c, scratch *sc, uint8_t *dst, uint64_t *bytes) {
    int ti = pl->chunk_tensor[c];
    const tensor_plan *t = &pl->t[ti];
    int64_t r0 = pl->chunk_row[c];
    int64_t r1 = r0 + t->rows_per_chunk < t->n_rows ? r0 + t->rows_per_chunk : t->n_rows;
    bool planted_gate = t->role == R_GATE && pl->s->relu && !t->expert && t->type != CLV_TYPE_F32;
    for (int64_t row = r0; row < r1; row++) {
        uint8_t *out = dst + (uint64_t)(row - r0) * t->row_bytes;
        gen_row(pl, ti, row, sc, sc->row);
        clv_status st = synth_quantize_row(t->type, sc->row, out, t->ne[0]);
        CLV_ASSERT(!st); /* types and row lengths were planned to fit */
        if (planted_gate) correct_planted(pl, t, sc, sc->row, out, row);
    }
    *bytes = (uint64_t)(r1 - r0) * t->row_bytes;
}

/* ------------------------------------------------------------------------------ */
/* threads: workers fill a ring of chunk slots, the caller writes them in order     */
/* ------------------------------------------------------------------------------ */

typedef struct run {
    const plan *pl;
    pthread_mutex_t mu;
    pthread_cond_t can_claim, ready;
    int64_t next, written;
    int n_slots;
    uint8_t **slot;
    uint64_t *slot_bytes;
    bool *slot_ready;
    bool abort;
    bool failed_alloc;
} run;

static void *chunk_worker(void *arg) {
    run *rn = arg;
    const plan *pl = rn->pl;
    scratch sc = {0};
    sc.g_tensor = -1;
    sc.row = malloc((size_t)pl->max_row * sizeof *sc.row);
    sc.deq = malloc((size_t)pl->max_row * sizeof *sc.deq);
    sc.inv_g = malloc((size_t)pl->s->n_embd * sizeof *sc.inv_g);
    pthread_mutex_lock(&rn->mu);
    if (!sc.row || !sc.deq || !sc.inv_g) {
        rn->failed_alloc = rn->abort = true;
        pthread_cond_broadcast(&rn->ready);
    }
    for (;;) {
        while (!rn->abort && rn->next < pl->n_chunks && rn->next >= rn->written + rn->n_slots)
            pthread_cond_wait(&rn->can_claim, &rn->mu);
        if (rn->abort || rn->next >= pl->n_chunks) break;
        int64_t c = rn->next++;
        int s = (int)(c % rn->n_slots);
        pthread_mutex_unlock(&rn->mu);
        uint64_t bytes = 0;
        gen_chunk(pl, c, &sc, rn->slot[s], &bytes);
        pthread_mutex_lock(&rn->mu);
        rn->slot_bytes[s] = bytes;
        rn->slot_ready[s] = true;
        pthread_cond_broadcast(&rn->ready);
    }
    pthread_mutex_unlock(&rn->mu);
    free(sc.row);
    free(sc.deq);
    free(sc.inv_g);
    return NULL;
}

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void progress(double t0, uint64_t done, uint64_t total, bool final) {
    double el = now_seconds() - t0, rate = el > 0 ? (double)done / el : 0.0;
    double eta = rate > 0 ? (double)(total - done) / rate : 0.0;
    bool tty = isatty(2);
    fprintf(stderr, "%smkmodel: %5.1f%%  %.2f of %.2f GB  %.0f MB/s  %s %d:%02d%s", tty ? "\r" : "",
            100.0 * (double)done / (double)(total ? total : 1), (double)done / 1e9, (double)total / 1e9, rate / 1e6,
            final ? "took" : "ETA", (int)((final ? el : eta) / 60), (int)(final ? el : eta) % 60, tty && !final ? "  " : "\n");
}

static clv_status stream_data(plan *pl, double t0) {
    int n_workers = pl->n_threads;
    run rn;
    memset(&rn, 0, sizeof rn);
    rn.pl = pl;
    rn.n_slots = 2 * n_workers + 2;
    rn.slot = calloc((size_t)rn.n_slots, sizeof *rn.slot);
    rn.slot_bytes = calloc((size_t)rn.n_slots, sizeof *rn.slot_bytes);
    rn.slot_ready = calloc((size_t)rn.n_slots, sizeof *rn.slot_ready);
    pthread_t *th = calloc((size_t)n_workers, sizeof *th);
    clv_status st = CLV_OK;
    if (!rn.slot || !rn.slot_bytes || !rn.slot_ready || !th) st = clv_fail(CLV_ERR_NOMEM, "no memory for the chunk queue");
    for (int i = 0; i < rn.n_slots && !st; i++) {
        rn.slot[i] = malloc(pl->max_chunk_bytes);
        if (!rn.slot[i]) st = clv_fail(CLV_ERR_NOMEM, "no memory for the chunk queue");
    }
    int started = 0;
    if (!st) {
        pthread_mutex_init(&rn.mu, NULL);
        pthread_cond_init(&rn.can_claim, NULL);
        pthread_cond_init(&rn.ready, NULL);
        for (; started < n_workers; started++) {
            if (pthread_create(&th[started], NULL, chunk_worker, &rn)) break;
        }
        if (!started) st = clv_fail(CLV_ERR_NOMEM, "cannot start generator threads");
    }
    uint64_t total = pl->data_bytes, done = 0;
    double last = now_seconds();
    for (int64_t c = 0; c < pl->n_chunks && !st; c++) {
        int s = (int)(c % rn.n_slots);
        pthread_mutex_lock(&rn.mu);
        while (!rn.slot_ready[s] && !rn.failed_alloc) pthread_cond_wait(&rn.ready, &rn.mu);
        bool bad = rn.failed_alloc;
        pthread_mutex_unlock(&rn.mu);
        if (bad) {
            st = clv_fail(CLV_ERR_NOMEM, "no memory for generator scratch");
            break;
        }
        st = clv_gguf_writer_write(pl->w, rn.slot[s], rn.slot_bytes[s]);
        done += rn.slot_bytes[s];
        pthread_mutex_lock(&rn.mu);
        rn.slot_ready[s] = false;
        rn.written++;
        pthread_cond_broadcast(&rn.can_claim);
        pthread_mutex_unlock(&rn.mu);
        double t = now_seconds();
        if (pl->p.progress && t - last >= (isatty(2) ? 0.5 : 10.0)) {
            progress(t0, done, total, false);
            last = t;
        }
    }
    if (started) {
        pthread_mutex_lock(&rn.mu);
        rn.abort = true;
        pthread_cond_broadcast(&rn.can_claim);
        pthread_mutex_unlock(&rn.mu);
        for (int i = 0; i < started; i++) pthread_join(th[i], NULL);
        pthread_mutex_destroy(&rn.mu);
        pthread_cond_destroy(&rn.can_claim);
        pthread_cond_destroy(&rn.ready);
    }
    if (!st && pl->p.progress) progress(t0, done, total, true);
    for (int i = 0; rn.slot && i < rn.n_slots; i++) free(rn.slot[i]);
    free(rn.slot);
    free(rn.slot_bytes);
    free(rn.slot_ready);
    free(th);
    return st;
}

/* Fails early, before any planning, when the file cannot be created. */
static clv_status check_output(const char *path) {
    if (!path || !*path) return clv_fail(CLV_ERR_ARG, "no output file given");
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash) snprintf(dir, sizeof dir, ".");
    else if (slash == dir) dir[1] = '\0';
    else *slash = '\0';
    struct stat sb;
    if (stat(dir, &sb) || !S_ISDIR(sb.st_mode)) {
        return clv_fail(CLV_ERR_IO, "%s: output directory '%s' does not exist", path, dir);
    }
    if (access(dir, W_OK)) return clv_fail(CLV_ERR_IO, "%s: output directory '%s' is not writable", path, dir);
    return CLV_OK;
}

clv_status clv_synth_generate(const char *path, const clv_synth_params *p, clv_synth_report *out) {
    double t0 = now_seconds();
    plan pl;
    clv_status st = check_output(path);
    if (st) return st;
    st = plan_build(p, &pl);
    if (!st) {
        pl.chunk_tensor = malloc((size_t)pl.n_chunks * sizeof *pl.chunk_tensor);
        pl.chunk_row = malloc((size_t)pl.n_chunks * sizeof *pl.chunk_row);
        if (!pl.chunk_tensor || !pl.chunk_row) st = clv_fail(CLV_ERR_NOMEM, "no memory for %lld chunks", (long long)pl.n_chunks);
        for (int i = 0; i < pl.n_tensors && !st; i++) {
            const tensor_plan *t = &pl.t[i];
            for (int64_t r = 0, c = t->first_chunk; r < t->n_rows; r += t->rows_per_chunk, c++) {
                pl.chunk_tensor[c] = i;
                pl.chunk_row[c] = r;
            }
        }
    }
    if (!st) st = clv_gguf_writer_open(path, NULL, &pl.w);
    if (!st) {
        uint64_t counted = pl.kv_bytes;
        st = emit_metadata(&pl);
        CLV_ASSERT(st || pl.kv_bytes == counted);
    }
    for (int i = 0; i < pl.n_tensors && !st; i++) {
        const tensor_plan *t = &pl.t[i];
        st = clv_gguf_writer_add_tensor(pl.w, t->name, t->type, t->n_dims, t->ne);
    }
    if (!st) st = clv_gguf_writer_begin_data(pl.w);
    if (!st) st = stream_data(&pl, t0);
    if (!st) {
        clv_gguf_writer *w = pl.w;
        pl.w = NULL;
        st = clv_gguf_writer_finish(w);
    }
    if (!st && out) {
        fill_report(&pl, out);
        out->seconds = now_seconds() - t0;
    }
    plan_free(&pl);
    return st;
}
