/* Per-layer neuron predictors: which dense-FFN neurons will be active for a
 * given FFN input, before any FFN row is read.
 *
 * Each layer's predictor is the network runtime/context.h describes
 * (clv_neuron_predictor): logit = w2 . relu(w1 . x + b1) + b2, w1 {n_embd,
 * rank} and w2 {rank, n_ff} in Q8_0 (by default, where n_embd and the rank
 * are multiples of 32) or F16, multiplied with the engine's own matvec
 * kernels, biases F32; neuron j is predicted active when logit_j >
 * logit_threshold. cleave trains them itself from a profile's samples
 * (predictor_train.c), stores them in a GGUF side file (predictor_file.c,
 * docs/predictor.md) and measures recall and precision (this file).
 *
 * A clv_predictor_set owns everything the engine needs for sparse FFNs:
 * clv_predictor_sparsity() gives a clv_ffn_sparsity whose threshold array
 * holds each layer's |h| threshold copied from the profile and whose
 * predictor array points into the set, so `--predictor FILE` alone is
 * enough. */
#ifndef CLV_NEURON_PREDICTOR_H
#define CLV_NEURON_PREDICTOR_H

#include <stdbool.h>
#include <stdint.h>

#include "context.h"
#include "model.h"
#include "profile.h"
#include "status.h"

typedef struct clv_predictor_layer {
    int64_t n_ff;          /* the layer's dense FFN width (0: none) */
    int64_t rank;          /* 0: no predictor for this layer */
    clv_weight w1;         /* F16 {n_embd, rank} */
    clv_weight w2;         /* F16 {rank, n_ff} */
    float *b1;             /* [rank] */
    float *b2;             /* [n_ff] */
    /* the out-of-distribution guard (clv_neuron_predictor in context.h):
     * the training inputs' per-feature mean and 1 / standard deviation, and
     * the z-score limit (0: no guard, as in files written before it) */
    float *x_mean, *x_inv_sd; /* [n_embd] */
    float z_limit;
    float logit_threshold; /* tuned on held-out samples for the target recall */
    float act_threshold;   /* the profile's |h| threshold; -1: leave the layer dense */
    /* measured on the held-out samples at training time */
    float recall;          /* truly active neurons predicted active */
    float precision;       /* predicted active neurons truly active */
    float predicted_share; /* neurons predicted active (what the engine computes) */
    float active_share;    /* neurons truly active */
    int64_t n_train, n_holdout;
    char w1_name[CLV_GGUF_MAX_NAME + 1], w2_name[CLV_GGUF_MAX_NAME + 1];
    void *storage;         /* one allocation behind w1, w2, b1, b2 */
} clv_predictor_layer;

typedef struct clv_predictor_set {
    char arch[32];          /* architecture of the model it was trained for */
    char model_name[128];
    int64_t n_layer, n_embd;
    int32_t act;            /* clv_ffn_act of the profiled model */
    float target_recall;
    float sparsity;         /* the profile's target sparsity */
    bool top_k;             /* the profile's selection rule: the engine keeps each token's
                               (1 - sparsity) * n_ff largest |h| among the predicted neurons */
    clv_predictor_layer *layers; /* [n_layer] */
    /* the engine's view, pointing into layers */
    float *thresholds;                /* [n_layer] */
    float *keeps;                     /* [n_layer] 1 - sparsity, the view's keep when top_k */
    clv_neuron_predictor *predictors; /* [n_layer]; w1 == NULL where none */
    clv_ffn_sparsity sparsity_view;
} clv_predictor_set;

/* --- training (predictor_train.c) ----------------------------------------- */

typedef struct clv_predictor_train_params {
    float target_recall;  /* recall the threshold is tuned for (default 0.99) */
    int64_t rank;         /* 0: per layer by the rule in clv_predictor_auto_rank */
    int epochs;           /* passes over the training samples (default 12) */
    int64_t batch;        /* samples per Adam step (default 64) */
    float learning_rate;  /* Adam step size, cosine-decayed to 10% (default 2e-3) */
    float pos_weight;     /* weight of the active class in the loss; 0: per layer
                             sqrt(inactive / active), clamped to [1, 10] */
    float holdout;        /* share of samples (the last ones) held out (default 0.15) */
    uint64_t seed;        /* initialisation and shuffling (default 1) */
    int n_threads;        /* 0: one per physical core */
    int32_t weight_type;  /* CLV_TYPE_Q4_0, CLV_TYPE_Q8_0 or CLV_TYPE_F16 for w1 and
                             w2; -1 (default): Q4_0 where the shapes allow it, else
                             F16. Each halves what the engine reads per token against
                             the next; the logit threshold is tuned after rounding,
                             so recall holds for any of them. */
} clv_predictor_train_params;

clv_predictor_train_params clv_predictor_train_default_params(void);

/* Called after every epoch of every layer (and with epoch 0 before a layer
 * starts); loss is the epoch's mean weighted cross-entropy per neuron. */
typedef void (*clv_predictor_progress_fn)(void *user, int64_t layer, int64_t n_layer, int epoch, int n_epochs,
                                          double loss);

/* The rank rule: n90 / 4 rounded up to a multiple of 32, where n90 is the
 * number of most-active neurons that together account for 90% of the layer's
 * activations; clamped to [32, min(1024, n_embd)] and so that the predictor
 * costs at most a thirtieth of the dense FFN's multiply-adds. 0 when the layer
 * has no dense FFN or no counts. */
int64_t clv_predictor_auto_rank(const clv_profile *p, int64_t il);

/* Trains a predictor for every dense layer of p that has samples.
 * CLV_ERR_ARG when the profile has no samples or the parameters are bad. */
clv_status clv_predictor_train(const clv_profile *p, const clv_predictor_train_params *params,
                               clv_predictor_progress_fn progress, void *user, clv_predictor_set **out);

/* --- the set (neuron_predictor.c) ------------------------------------------- */

/* An empty set for a model of these shapes: every layer without a predictor,
 * thresholds from the profile. */
clv_status clv_predictor_set_create(const clv_profile *p, clv_predictor_set **out);

/* Whether w1 and w2 of a predictor of this shape can be stored as `type`:
 * F16 always, Q8_0 and Q4_0 when n_embd and rank are whole blocks (32). */
bool clv_predictor_weight_type_ok(int32_t type, int64_t n_embd, int64_t rank);

/* Gives layer il a zero predictor of this rank with weights of wtype
 * (F16 or Q8_0; to be filled in). */
clv_status clv_predictor_layer_alloc(clv_predictor_set *s, int64_t il, int64_t rank, int32_t wtype);

void clv_predictor_free(clv_predictor_set *s); /* accepts NULL */

/* What the engine takes: thresholds and predictors, valid while s lives. */
const clv_ffn_sparsity *clv_predictor_sparsity(const clv_predictor_set *s);

/* Bytes of layer il's predictor tensors (weights and biases). */
uint64_t clv_predictor_layer_bytes(const clv_predictor_set *s, int64_t il);

/* Layer il's logits for n inputs x [n][n_embd] into logits [n][n_ff], with
 * the engine's kernels (x quantized as the engine does for the weights'
 * type), on pool's threads (NULL: the caller's only); h is scratch
 * [n][rank]. CLV_ERR_NOMEM when the quantized inputs find no memory. */
clv_status clv_predictor_forward(const clv_predictor_set *s, int64_t il, const float *x, int64_t n, float *h,
                                 float *logits, struct clv_threadpool *pool);

/* Checks the set against a model: n_layer, n_embd and every layer's n_ff.
 * CLV_ERR_ARG with a message naming what differs. */
clv_status clv_predictor_check_model(const clv_predictor_set *s, const clv_model *m);

typedef struct clv_predictor_eval_layer {
    int64_t n_samples;
    double recall, precision;
    double predicted_share, active_share;
} clv_predictor_eval_layer;

/* Runs every predictor over all of p's samples (p from another text, say)
 * and measures, per layer, recall and precision against the samples' masks.
 * Layers without a predictor or without samples get n_samples 0. The profile
 * must match the set's shapes (CLV_ERR_ARG otherwise). */
clv_status clv_predictor_eval(const clv_predictor_set *s, const clv_profile *p, int n_threads,
                              clv_predictor_eval_layer *out /* [n_layer] */);

/* --- the side file (predictor_file.c) ---------------------------------------- */

/* Writes s as GGUF (through PATH.tmp renamed into place). */
clv_status clv_predictor_save(const clv_predictor_set *s, const char *path);

/* Reads a predictor file; with m non-NULL also checks it against the model.
 * A corrupt or truncated file gives CLV_ERR_FORMAT naming what is wrong. */
clv_status clv_predictor_load(const char *path, const clv_model *m, clv_predictor_set **out);

#endif
