/* Options shared by the commands that run a model (run, chat, perplexity,
 * bench): model, context, threads, sampling. Each command parses its own
 * options and hands the rest to clv_options_parse_one. */
#ifndef CLV_CLI_OPTIONS_H
#define CLV_CLI_OPTIONS_H

#include <stdbool.h>
#include <stdio.h>

#include "context.h"
#include "sampler.h"
#include "tokenizer.h"

#define CLV_MAX_STOPS 16
#define CLV_MAX_LOGIT_BIAS 64

typedef struct clv_options {
    const char *model;
    int64_t n_ctx, n_batch;
    int n_threads;
    int32_t kv_type;
    bool verbose;
    bool f32_activations;
    clv_sampler_params sampling;
    const char *stops[CLV_MAX_STOPS];
    int n_stops;
    clv_logit_bias bias[CLV_MAX_LOGIT_BIAS];
    int n_bias;
    /* activation sparsity (predictor/sparsity_setup.h); sparsity < 0: not given */
    double sparsity;
    const char *profile, *predictor;
    struct clv_sparsity_setup *sparse; /* loaded by clv_options_sparsity */
    /* GPU: layers on the device (0 or all: INT64_MAX), device index, budget (0: default) */
    int64_t gpu_layers;
    int gpu_device;
    uint64_t vram_budget;
} clv_options;

void clv_options_init(clv_options *o);

/* Parses argv[*i] (and its value). Returns 1 when consumed, 0 when not one of
 * these options, -1 on a bad value (message printed to stderr). */
int clv_options_parse_one(clv_options *o, int argc, char **argv, int *i);

void clv_options_usage(FILE *f);

/* "24G", "512M", "1.5T", "300MiB", plain bytes (binary units); -1 when malformed. */
double clv_parse_size(const char *s);

/* The value of --gpu (all|none) or -ngl/--n-gpu-layers (N|all|none) as
 * layers on the GPU, INT64_MAX for all; false when malformed. */
bool clv_parse_gpu_layers(const char *opt, const char *val, int64_t *out);

/* CLV_ERR_UNSUPPORTED, saying why, for 0 < gpu_layers < the model's layers:
 * the GPU runs a whole model or none until the placement solver splits it. */
clv_status clv_check_gpu_layers(int64_t gpu_layers, const clv_model *m);

/* The context parameters the options ask for (device, budget, context,
 * batch, threads, KV type), sparsity aside: one place, so that every
 * command honours all of them. */
clv_context_params clv_options_context_params(const clv_options *o);

/* Loads the model and creates a context from the options. */
clv_status clv_options_load(clv_options *o, clv_model **model, clv_context **ctx, double *load_seconds);

/* The sparsity the options ask for (--sparsity, --profile, --predictor),
 * loaded and checked against the model once and kept in o; *out is NULL
 * when none was asked for. */
clv_status clv_options_sparsity(clv_options *o, const clv_model *model, const clv_ffn_sparsity **out);

/* Frees what the options loaded; call after the context is freed. */
void clv_options_release(clv_options *o);

/* Completes o->sampling for this model: vocabulary size, the end-of-generation
 * tokens (EOS and EOT, stored in eog, which must outlive the sampler's
 * creation) and the logit biases given on the command line. */
void clv_options_sampler_params(clv_options *o, const clv_model *model, const clv_tokenizer *tok, int32_t eog[2]);

/* The whole file, NUL-terminated (for prompts and texts); NULL on error. */
char *clv_read_file(const char *path, size_t *len);

#endif
