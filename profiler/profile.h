/* A profile: what a calibration run learned about one model's FFNs.
 *
 * Per layer: how often each dense-FFN neuron was active and a histogram of
 * its gated activation |h| = |act(gate . x) * (up . x)| (from which the threshold for any target sparsity follows), or,
 * for MoE layers, how often each expert was chosen, its summed routing weight
 * and which experts of the next layer followed; plus a bounded, subsampled set
 * of (FFN input, active mask) and (FFN input, chosen experts) pairs that the
 * predictors are trained from. The same tokens are sampled in every layer, so
 * sample s of layer l and sample s of layer l+1 come from one token.
 *
 * A neuron is active when |h| > threshold of its layer: for ReLU models the
 * threshold is 0 (the ReLU's output > 0); for SwiGLU/GeGLU models it is the
 * per-layer magnitude chosen so that the target sparsity (the share of
 * neurons below it) is reached on the calibration text.
 *
 * On disk a profile is a GGUF file (general.type = "profile"); see
 * docs/profiler.md for its keys and tensors. The structs are plain data: a
 * caller may fill one by hand (tests do) and save it. */
#ifndef CLV_PROFILE_H
#define CLV_PROFILE_H

#include <stdbool.h>
#include <stdint.h>

#include "status.h"

/* |h| histogram: bin 0 holds exact zeros (and values below the first edge);
 * bin b >= 1 holds [2^((b-1)/CLV_PROFILE_HIST_PER_OCTAVE + CLV_PROFILE_HIST_MIN_EXP),
 * next edge); the last bin everything above. */
#define CLV_PROFILE_HIST_PER_OCTAVE 16
#define CLV_PROFILE_HIST_MIN_EXP (-24)
#define CLV_PROFILE_HIST_BINS (1 + 40 * CLV_PROFILE_HIST_PER_OCTAVE) /* 2^-24 .. 2^16 */

typedef struct clv_profile_layer {
    /* dense FFN (n_ff == 0: the layer has none) */
    int64_t n_ff;
    int64_t *neuron_active;  /* [n_ff] tokens in which the neuron was active */
    int64_t *act_hist;       /* [CLV_PROFILE_HIST_BINS] |h| over all neurons and tokens */
    float threshold;         /* the layer's activity threshold (0 for ReLU) */

    /* MoE routing (n_expert == 0: the layer has none) */
    int64_t n_expert;
    int64_t *expert_count;   /* [n_expert] tokens that chose the expert */
    double *expert_weight;   /* [n_expert] summed routing weight it was given */
    int64_t *expert_next;    /* [n_expert][n_expert of layer + 1]: chosen here and
                                there by one token; NULL on the last layer */
    int64_t n_expert_next;   /* experts of the next layer (0 when expert_next is NULL) */

    /* training samples: n_samples rows each */
    int64_t n_samples;
    uint16_t *sample_x;      /* fp16 [n_samples][n_embd] FFN input (after the norm) */
    uint8_t *sample_mask;    /* [n_samples][(n_ff + 7) / 8] active bits, LSB first (dense) */
    int32_t *sample_experts; /* [n_samples][n_expert_used] chosen experts (MoE) */
} clv_profile_layer;

typedef struct clv_profile {
    char arch[32];           /* general.architecture of the profiled model */
    char model_name[128];    /* general.name, may be empty */
    int64_t n_layer, n_embd, n_expert_used;
    int32_t act;             /* clv_ffn_act of the dense FFNs */
    float sparsity;          /* target the thresholds were calibrated for (0 for ReLU) */
    bool top_k;              /* active (counts, sample masks) = among each token's (1 - sparsity) * n_ff
                                largest |h|; false: |h| above the layer's threshold */
    int64_t n_tokens;        /* tokens counted */
    int64_t n_calib_tokens;  /* tokens the thresholds were calibrated on */
    char corpus[256];        /* the calibration files' names, ", "-separated (may be cut short) */
    int64_t sample_stride;   /* sample s of every layer is counted token s * sample_stride
                                (0: no samples) */
    clv_profile_layer *layers; /* [n_layer] */
} clv_profile;

/* An empty profile for a model of these shapes: n_ff[l] and n_expert[l] per
 * layer (either may be 0), n_samples rows of samples reserved per layer.
 * Counts start at zero. CLV_ERR_NOMEM, or CLV_ERR_ARG for nonsense sizes. */
clv_status clv_profile_create(clv_profile **out, int64_t n_layer, int64_t n_embd, const int64_t *n_ff,
                              const int64_t *n_expert, int64_t n_expert_used, int64_t n_samples);
void clv_profile_free(clv_profile *p);

/* Writes p as GGUF to path (through a temporary file renamed into place, so a
 * failed save leaves any old file intact). */
clv_status clv_profile_save(const clv_profile *p, const char *path);

/* Reads a profile; every size is checked against the file, so a corrupt or
 * truncated file gives CLV_ERR_FORMAT with a message naming what is wrong. */
clv_status clv_profile_load(const char *path, clv_profile **out);

/* The |h| threshold at which a share `sparsity` (0..1) of layer il's neuron
 * activations fall at or below it, interpolated from the histogram; -1 when the
 * layer has no dense FFN or no counts. */
float clv_profile_threshold_for(const clv_profile *p, int64_t il, double sparsity);

/* Histogram bin of |v| (v finite). */
int clv_profile_hist_bin(float v);
/* Lower edge of bin b (0 for bin 0). */
double clv_profile_hist_edge(int b);

#endif
