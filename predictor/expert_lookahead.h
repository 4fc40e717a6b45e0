/* Expert look-ahead: which experts layer l+1 will choose, known while layer
 * l runs, so that experts kept on SSD or in RAM can be fetched one layer
 * early.
 *
 * Training-free: the residual stream changes little from one layer to the
 * next, so layer l+1's router applied to layer l's FFN input already points
 * at most of the experts l+1 will pick. No trained correction is applied
 * (see docs/predictor.md). Evaluated on a profile's samples as the top-k hit
 * rate |predicted ∩ actual| / k per layer pair, beside two baselines: k
 * experts at random (k / n_expert) and layer l+1's k most popular experts
 * (from the same profile's counts). */
#ifndef CLV_EXPERT_LOOKAHEAD_H
#define CLV_EXPERT_LOOKAHEAD_H

#include <stdint.h>

#include "model.h"
#include "profile.h"
#include "status.h"

/* The model's routers as floats, [n_layer][n_expert][n_embd] (NULL for
 * layers without one). Owns its memory. */
typedef struct clv_expert_lookahead {
    int64_t n_layer, n_embd, n_expert, n_expert_used;
    float **router; /* [n_layer] */
} clv_expert_lookahead;

/* CLV_ERR_ARG when the model has no MoE layer; CLV_ERR_UNSUPPORTED when a
 * router's type cannot be dequantized. */
clv_status clv_expert_lookahead_create(const clv_model *m, clv_expert_lookahead **out);
void clv_expert_lookahead_free(clv_expert_lookahead *la); /* accepts NULL */

/* The k experts layer dst's router ranks highest for x [n_embd] (ties to the
 * lower index, as the engine's routing), in decreasing order; k <= n_expert.
 * scratch holds n_expert floats. Layer dst must have a router. */
void clv_expert_lookahead_predict(const clv_expert_lookahead *la, int64_t dst, const float *x, int64_t k,
                                  float *scratch, int32_t *ids);

typedef struct clv_lookahead_result {
    int64_t src, dst;      /* samples of layer src, router and choices of layer dst */
    int64_t n_samples;
    double hit_rate;       /* mean |predicted ∩ actual| / k */
    double all_hit_rate;   /* share of tokens whose k experts were all predicted */
    double popular_rate;   /* hit rate of dst's k most popular experts */
    double random_rate;    /* k / n_expert */
} clv_lookahead_result;

/* Router of layer dst applied to the samples of layer src, against the
 * experts layer dst chose for the same tokens. CLV_ERR_ARG when a layer has
 * no router, the profile has no expert samples there, or the profile does
 * not match the model. */
clv_status clv_expert_lookahead_eval_pair(const clv_expert_lookahead *la, const clv_profile *p, int64_t src,
                                          int64_t dst, clv_lookahead_result *out);

/* Every pair (l, l+1) that has routers and samples in both layers, in order;
 * *n_out pairs written to out (room for n_layer - 1). CLV_ERR_ARG when there
 * is none. */
clv_status clv_expert_lookahead_eval(const clv_expert_lookahead *la, const clv_profile *p,
                                     clv_lookahead_result *out, int64_t *n_out);

#endif
