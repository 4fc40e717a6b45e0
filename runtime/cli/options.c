#include "options.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "generate.h"
#include "sparsity_setup.h"
#include "types.h"

void clv_options_init(clv_options *o) {
    memset(o, 0, sizeof *o);
    o->n_batch = 512;
    o->kv_type = CLV_TYPE_F16;
    o->sampling = clv_sampler_default_params();
    o->sparsity = -1;
}

clv_status clv_options_sparsity(clv_options *o, const clv_model *model, const clv_ffn_sparsity **out) {
    *out = NULL;
    if (o->sparsity < 0 && !o->profile && !o->predictor) return CLV_OK;
    if (!o->sparse) {
        clv_status st = clv_sparsity_setup_load(model, o->sparsity, o->profile, o->predictor, &o->sparse);
        if (st) return st;
        if (o->verbose) fprintf(stderr, "cleave: sparse FFNs: %s\n", clv_sparsity_setup_describe(o->sparse));
    }
    *out = clv_sparsity_setup_get(o->sparse);
    return CLV_OK;
}

void clv_options_release(clv_options *o) {
    clv_sparsity_setup_free(o->sparse);
    o->sparse = NULL;
}

void clv_options_usage(FILE *f) {
    fprintf(f, "model and context:\n"
               "  -m, --model FILE        GGUF model file (required)\n"
               "  -c, --ctx-size N        context length (default: the model's, at most 4096)\n"
               "  -b, --batch-size N      most tokens per forward pass (default 512)\n"
               "  -t, --threads N         CPU threads (default: one per physical core)\n"
               "  --kv-type f16|f32       KV cache precision (default f16)\n"
               "  -v, --verbose           say what is loaded\n"
               "  --f32-activations       reference mode: float activations, weights decoded by\n"
               "                          the scalar dequantizer (slow; for checking results)\n"
               "GPU (CUDA builds):\n"
               "  --gpu all|none          run every layer on the GPU, or none (default)\n"
               "  -ngl, --n-gpu-layers N|all  the same in llama.cpp's spelling (all, or N >= the\n"
               "                          model's layers; a partial split is not available yet)\n"
               "  --gpu-device N          CUDA device index (default 0)\n"
               "  --vram SIZE             GPU memory budget, e.g. 8G (default: free memory minus\n"
               "                          a margin); a model that does not fit is refused\n"
               "sparse FFNs (docs/profiler.md, docs/predictor.md):\n"
               "  --sparsity S            skip the share S of each token's FFN neurons with the\n"
               "                          smallest |act(gate) * up|\n"
               "  --profile FILE          with --sparsity: per-layer thresholds from a profile\n"
               "                          (`cleave profile`) instead of per-token selection\n"
               "  --predictor FILE        neuron predictor from `cleave predictor train`: skip\n"
               "                          the neurons it predicts inactive, gate rows included\n"
               "sampling:\n"
               "  --temp T                temperature (default 0.8; 0 = greedy)\n"
               "  --top-k N               (default 40; 0 = off)\n"
               "  --top-p P               (default 0.95; 1 = off)\n"
               "  --min-p P               (default 0.05; 0 = off)\n"
               "  --typical P             locally typical sampling (default 1 = off)\n"
               "  --repeat-penalty X      (default 1 = off)\n"
               "  --repeat-last-n N       tokens the penalties look at (default 64)\n"
               "  --presence-penalty X    (default 0)\n"
               "  --frequency-penalty X   (default 0)\n"
               "  --logit-bias ID(+|-)X   add X to token ID's logit (-inf bans it); repeatable\n"
               "  -s, --seed N            random seed (default: random)\n"
               "  --stop TEXT             stop when TEXT appears; repeatable\n"
               "  --ignore-eos            keep generating past end-of-generation tokens\n");
}

double clv_parse_size(const char *s) {
    char *end;
    double v = strtod(s, &end);
    if (end == s || !(v >= 0) || isinf(v)) return -1;
    switch (*end) {
    case 'k': case 'K': v *= 1024.0; end++; break;
    case 'm': case 'M': v *= 1024.0 * 1024; end++; break;
    case 'g': case 'G': v *= 1024.0 * 1024 * 1024; end++; break;
    case 't': case 'T': v *= 1024.0 * 1024 * 1024 * 1024; end++; break;
    default: break;
    }
    if (*end == 'i' || *end == 'B') end++;
    if (*end == 'B') end++;
    return *end ? -1 : v;
}

static bool parse_i64(const char *s, int64_t *out);

bool clv_parse_gpu_layers(const char *opt, const char *val, int64_t *out) {
    int64_t n;
    if (!strcmp(val, "all")) *out = INT64_MAX;
    else if (!strcmp(val, "none")) *out = 0;
    else if (strcmp(opt, "--gpu") && parse_i64(val, &n) && n >= 0) *out = n; /* -ngl N */
    else return false;
    return true;
}

clv_status clv_check_gpu_layers(int64_t gpu_layers, const clv_model *m) {
    if (gpu_layers <= 0 || gpu_layers >= m->hp.n_layer) return CLV_OK;
    return clv_fail(CLV_ERR_UNSUPPORTED,
                    "-ngl %lld: the GPU runs all %lld layers of this model or none; a partial split is not "
                    "available yet (use -ngl all or --gpu all)",
                    (long long)gpu_layers, (long long)m->hp.n_layer);
}

static bool parse_i64(const char *s, int64_t *out) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end) return false;
    *out = v;
    return true;
}

static bool parse_float(const char *s, float *out) {
    char *end;
    errno = 0;
    float v = strtof(s, &end);
    if (errno || end == s || *end || isnan(v)) return false;
    *out = v;
    return true;
}

int clv_options_parse_one(clv_options *o, int argc, char **argv, int *i) {
    const char *a = argv[*i];
    const char *val = *i + 1 < argc ? argv[*i + 1] : NULL;
#define NEED_VALUE()                                                      \
    do {                                                                  \
        if (!val) {                                                       \
            fprintf(stderr, "cleave: option %s needs a value\n", a);      \
            return -1;                                                    \
        }                                                                 \
        (*i)++;                                                           \
    } while (0)
#define BAD_VALUE()                                                       \
    do {                                                                  \
        fprintf(stderr, "cleave: bad value '%s' for %s\n", val, a);       \
        return -1;                                                        \
    } while (0)
    int64_t n;
    float f;
    if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
        NEED_VALUE();
        o->model = val;
    } else if (!strcmp(a, "-c") || !strcmp(a, "--ctx-size")) {
        NEED_VALUE();
        if (!parse_i64(val, &n) || n < 0) BAD_VALUE();
        o->n_ctx = n;
    } else if (!strcmp(a, "-b") || !strcmp(a, "--batch-size")) {
        NEED_VALUE();
        if (!parse_i64(val, &n) || n < 1) BAD_VALUE();
        o->n_batch = n;
    } else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
        NEED_VALUE();
        if (!parse_i64(val, &n) || n < 0 || n > 1024) BAD_VALUE();
        o->n_threads = (int)n;
    } else if (!strcmp(a, "--kv-type")) {
        NEED_VALUE();
        if (!strcmp(val, "f16")) o->kv_type = CLV_TYPE_F16;
        else if (!strcmp(val, "f32")) o->kv_type = CLV_TYPE_F32;
        else BAD_VALUE();
    } else if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) {
        o->verbose = true;
    } else if (!strcmp(a, "--f32-activations")) {
        o->f32_activations = true;
    } else if (!strcmp(a, "--gpu") || !strcmp(a, "-ngl") || !strcmp(a, "--n-gpu-layers")) {
        NEED_VALUE();
        if (!clv_parse_gpu_layers(a, val, &o->gpu_layers)) BAD_VALUE();
    } else if (!strcmp(a, "--gpu-device")) {
        NEED_VALUE();
        if (!parse_i64(val, &n) || n < 0 || n > 1024) BAD_VALUE();
        o->gpu_device = (int)n;
    } else if (!strcmp(a, "--vram")) {
        NEED_VALUE();
        double size = clv_parse_size(val);
        if (size < 1) BAD_VALUE();
        o->vram_budget = (uint64_t)size;
    } else if (!strcmp(a, "--sparsity")) {
        NEED_VALUE();
        if (!parse_float(val, &f) || !(f >= 0.0f && f < 1.0f)) BAD_VALUE();
        o->sparsity = f;
    } else if (!strcmp(a, "--profile")) {
        NEED_VALUE();
        o->profile = val;
    } else if (!strcmp(a, "--predictor")) {
        NEED_VALUE();
        o->predictor = val;
    } else if (!strcmp(a, "--temp")) {
        NEED_VALUE();
        if (!parse_float(val, &f)) BAD_VALUE();
        o->sampling.temperature = f;
    } else if (!strcmp(a, "--top-k")) {
        NEED_VALUE();
        if (!parse_i64(val, &n) || n < 0 || n > INT32_MAX) BAD_VALUE();
        o->sampling.top_k = (int32_t)n;
    } else if (!strcmp(a, "--top-p")) {
        NEED_VALUE();
        if (!parse_float(val, &f)) BAD_VALUE();
        o->sampling.top_p = f;
    } else if (!strcmp(a, "--min-p")) {
        NEED_VALUE();
        if (!parse_float(val, &f)) BAD_VALUE();
        o->sampling.min_p = f;
    } else if (!strcmp(a, "--typical")) {
        NEED_VALUE();
        if (!parse_float(val, &f)) BAD_VALUE();
        o->sampling.typical_p = f;
    } else if (!strcmp(a, "--repeat-penalty")) {
        NEED_VALUE();
        if (!parse_float(val, &f)) BAD_VALUE();
        o->sampling.repeat_penalty = f;
    } else if (!strcmp(a, "--repeat-last-n")) {
        NEED_VALUE();
        if (!parse_i64(val, &n) || n < 0 || n > INT32_MAX) BAD_VALUE();
        o->sampling.penalty_last_n = (int32_t)n;
    } else if (!strcmp(a, "--presence-penalty")) {
        NEED_VALUE();
        if (!parse_float(val, &f)) BAD_VALUE();
        o->sampling.presence_penalty = f;
    } else if (!strcmp(a, "--frequency-penalty")) {
        NEED_VALUE();
        if (!parse_float(val, &f)) BAD_VALUE();
        o->sampling.frequency_penalty = f;
    } else if (!strcmp(a, "-s") || !strcmp(a, "--seed")) {
        NEED_VALUE();
        if (!parse_i64(val, &n) || n < 0) BAD_VALUE();
        o->sampling.seed = (uint64_t)n;
    } else if (!strcmp(a, "--stop")) {
        NEED_VALUE();
        if (o->n_stops == CLV_MAX_STOPS) {
            fprintf(stderr, "cleave: at most %d stop strings\n", CLV_MAX_STOPS);
            return -1;
        }
        o->stops[o->n_stops++] = val;
    } else if (!strcmp(a, "--ignore-eos")) {
        o->sampling.ignore_eos = true;
    } else if (!strcmp(a, "--logit-bias")) {
        NEED_VALUE();
        char *end;
        long id = strtol(val, &end, 10);
        if (end == val || (*end != '+' && *end != '-') || id < 0 || o->n_bias == CLV_MAX_LOGIT_BIAS) BAD_VALUE();
        float bias;
        if (!strcmp(end, "-inf")) bias = -INFINITY;
        else if (!parse_float(end, &bias)) BAD_VALUE();
        o->bias[o->n_bias++] = (clv_logit_bias){.token = (int32_t)id, .bias = bias};
    } else {
        return 0;
    }
    return 1;
#undef NEED_VALUE
#undef BAD_VALUE
}

clv_context_params clv_options_context_params(const clv_options *o) {
    clv_context_params cp = clv_context_default_params();
    cp.gpu = o->gpu_layers > 0;
    cp.gpu_device = o->gpu_device;
    cp.vram_budget = o->vram_budget;
    cp.n_ctx = o->n_ctx;
    cp.n_batch = o->n_batch;
    cp.n_threads = o->n_threads;
    cp.kv_type = o->kv_type;
    cp.f32_activations = o->f32_activations;
    return cp;
}

clv_status clv_options_load(clv_options *o, clv_model **model, clv_context **ctx, double *load_seconds) {
    *model = NULL;
    *ctx = NULL;
    if (!o->model) return clv_fail(CLV_ERR_ARG, "no model given (-m FILE.gguf)");
    double t0 = clv_now_seconds();
    clv_model_params mp = clv_model_default_params();
    mp.verbose = o->verbose;
    clv_status st = clv_model_load(o->model, &mp, model);
    if (st) return st;
    if ((st = clv_check_gpu_layers(o->gpu_layers, *model))) {
        clv_model_free(*model);
        *model = NULL;
        return st;
    }
    clv_context_params cp = clv_options_context_params(o);
    st = clv_options_sparsity(o, *model, &cp.sparsity);
    if (!st) st = clv_context_create(*model, &cp, ctx);
    if (st) {
        clv_model_free(*model);
        *model = NULL;
        return st;
    }
    if (load_seconds) *load_seconds = clv_now_seconds() - t0;
    if (o->verbose) {
        fprintf(stderr, "cleave: %s: %s, %lld layers, %.1f MiB of weights; context %lld, KV cache %.1f MiB, scratch %.1f MiB\n",
                o->model, (*model)->hp.arch, (long long)(*model)->hp.n_layer, (double)(*model)->weight_bytes / (1 << 20),
                (long long)(*ctx)->params.n_ctx, (double)(*ctx)->kv_bytes / (1 << 20),
                (double)(*ctx)->scratch_bytes / (1 << 20));
    }
    return CLV_OK;
}

char *clv_read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    while (buf) {
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (n < cap) break;
        cap *= 2;
        char *b = realloc(buf, cap + 1);
        if (!b) {
            free(buf);
            buf = NULL;
        }
        buf = b;
    }
    bool err = ferror(f);
    fclose(f);
    if (!buf || err) {
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

void clv_options_sampler_params(clv_options *o, const clv_model *model, const clv_tokenizer *tok, int32_t eog[2]) {
    int32_t n = 0;
    int32_t eos = clv_tokenizer_eos(tok), eot = clv_tokenizer_eot(tok);
    if (eos >= 0) eog[n++] = eos;
    if (eot >= 0 && eot != eos) eog[n++] = eot;
    o->sampling.n_vocab = (int32_t)model->hp.n_vocab;
    o->sampling.eog_tokens = eog;
    o->sampling.n_eog_tokens = n;
    o->sampling.logit_bias = o->bias;
    o->sampling.n_logit_bias = o->n_bias;
}
