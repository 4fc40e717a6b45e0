/* The calibration run: tokens through the model, every dense FFN's gated
 * activation h = act(gate) * up
 * and every router's choice counted into a clv_profile.
 *
 * The tokens are cut into chunks of n_ctx - 1 (with bos) or n_ctx tokens;
 * each chunk starts from an empty KV cache (as perplexity runs do), with bos
 * in front when bos >= 0, and is decoded in one call. The bos position is not
 * counted: n_tokens counted tokens are exactly the tokens given.
 *
 * SwiGLU/GeGLU models have no exact zeros, so first a calibration pass over
 * the first n_calib_tokens fills each layer's |h| histogram, from which the
 * layer's threshold is clv_profile_threshold_for(sparsity); then the
 * counting pass over all tokens counts a neuron active when |h| exceeds it
 * (or, with top_k, when it is among the (1 - sparsity) * n_ff largest |h|
 * of its token, as the engine selects with clv_ffn_sparsity.keep) and
 * refills the histogram, so the file's histogram covers the counted tokens.
 * ReLU models need no first pass: the threshold is 0.
 *
 * Samples: counted token g (0-based over all chunks) is sample g / stride of
 * every layer when g % stride == 0, stride = max(1, n_tokens / n_samples),
 * so the same tokens are sampled in every layer and spread over the corpus. */
#ifndef CLV_PROFILER_COLLECT_H
#define CLV_PROFILER_COLLECT_H

#include <stdbool.h>
#include <stdint.h>

#include "model.h"
#include "profile.h"
#include "status.h"

typedef struct clv_profiler_params {
    double sparsity;        /* SwiGLU/GeGLU: share of inactive neurons to calibrate for, [0, 1) (0.5) */
    bool top_k;             /* SwiGLU/GeGLU: active = among each token's largest |h| (true) or above the
                               layer's threshold */
    int64_t n_samples;      /* training samples per layer (4096; 0: none) */
    int64_t n_ctx;          /* chunk length (512) */
    int64_t n_calib_tokens; /* tokens of the threshold pass (4096; 0: all) */
    int n_threads;          /* 0: one per physical core */
    int32_t kv_type;        /* KV cache type (CLV_TYPE_F16) */
    bool f32_activations;   /* reference mode of the engine */
    bool gpu;               /* run the model on the GPU (clv_context_params.gpu) */
    int gpu_device;         /* CUDA device index */
    uint64_t vram_budget;   /* 0: the free memory minus a margin */
    int32_t bos;            /* token put before each chunk, not counted (-1: none) */
    /* Called after every chunk: `done` of `total` tokens (both passes
     * together), phase "calibrating" or "counting". May be NULL. */
    void (*progress)(void *user, const char *phase, int64_t done, int64_t total);
    void *progress_user;
} clv_profiler_params;

clv_profiler_params clv_profiler_default_params(void);

/* Profiles the model on tokens[0..n_tokens). The context is created here:
 * clv_context_default_params() with n_ctx = n_batch = params->n_ctx and the
 * thread count, KV type, reference mode and GPU settings of params. The profile's arch and
 * model_name come from the model; corpus is left empty for the caller.
 * CLV_ERR_ARG for bad parameters or no tokens, CLV_ERR_RANGE for a token
 * outside the vocabulary, and whatever context creation and decoding say. */
clv_status clv_profile_collect(clv_model *model, const int32_t *tokens, int64_t n_tokens,
                               const clv_profiler_params *params, clv_profile **out);

#endif
