/* From command-line choices to the engine's activation sparsity: which
 * neurons of each dense FFN a token keeps, by |h| = |act(gate) * up|, and
 * which predictor, if any, picks the candidates.
 *
 *   --sparsity S                each token keeps its (1 - S) * n_ff largest |h|
 *   --sparsity S --profile P    per-layer |h| thresholds for target S from P's
 *                               histograms (the same for every token)
 *   --predictor F               the predictor, selecting as it was trained to
 *                               (top-k or thresholds, at its sparsity)
 *   --predictor F --sparsity S  the predictor, each token keeping its (1 - S) * n_ff
 *                               largest |h| among the predicted neurons
 *   all three                   the predictor, with thresholds for S from P
 *
 * With thresholds, ReLU models have threshold 0 whatever S is (a neuron is
 * off when its output is 0). */
#ifndef CLV_SPARSITY_SETUP_H
#define CLV_SPARSITY_SETUP_H

#include "context.h"
#include "model.h"
#include "status.h"

typedef struct clv_sparsity_setup clv_sparsity_setup;

/* sparsity < 0: not given. Paths may be NULL. Every file is checked against
 * the model (layers, widths); a combination that says nothing (only
 * --profile) is CLV_ERR_ARG with a message saying what is missing. */
clv_status clv_sparsity_setup_load(const clv_model *m, double sparsity, const char *profile_path,
                                   const char *predictor_path, clv_sparsity_setup **out);
void clv_sparsity_setup_free(clv_sparsity_setup *s); /* accepts NULL */

/* For clv_context_params.sparsity; valid while s lives. */
const clv_ffn_sparsity *clv_sparsity_setup_get(const clv_sparsity_setup *s);

/* One line for the user: "sparsity 0.50 from P (30 layers), predictor F (rank 224)". */
const char *clv_sparsity_setup_describe(const clv_sparsity_setup *s);

#endif
