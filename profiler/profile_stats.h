/* What a profile says in a few numbers: shares held by the hottest units,
 * fitted power laws, and a per-layer summary (for `cleave profile --show`,
 * the picture and the planted-vs-measured tests). */
#ifndef CLV_PROFILE_STATS_H
#define CLV_PROFILE_STATS_H

#include <stdbool.h>
#include <stdint.h>

#include "profile.h"

/* Share of sum(v) held by the ceil(frac * n) largest entries (0 when the sum is 0). */
double clv_profile_top_share(const double *v, int64_t n, double frac);

/* Exponent alpha of v ~ rank^-alpha: least squares of log v on log rank over
 * the positive entries, largest first (0 with fewer than two). */
double clv_profile_fit_power_law(const double *v, int64_t n);

/* The power-law curve: curve[i] = share of sum(v) held by the largest
 * round(i / (n_points - 1) * n) entries, i in [0, n_points). */
void clv_profile_coverage(const double *v, int64_t n, double *curve, int n_points);

/* Pearson correlation of a and b (0 when either is constant). */
double clv_profile_correlation(const double *a, const double *b, int64_t n);

typedef struct clv_profile_layer_summary {
    bool dense, moe;
    /* dense FFN */
    double active_mean;    /* mean share of the layer's neurons active per token */
    double active_top10;   /* share of activations made by the hottest 10% of neurons */
    double active_alpha;   /* power law fitted to per-neuron activity */
    int64_t never_active;  /* neurons never active */
    /* MoE */
    double expert_top10;   /* share of routings taken by the 10% most chosen experts */
    double expert_alpha;   /* Zipf exponent fitted to expert shares */
    double expert_max, expert_min; /* P(chosen) of the most and the least chosen expert */
    double mean_weight;    /* mean routing weight of a choice */
    /* share of the next layer's choices that are among the n_expert_used
     * experts that most often followed the expert chosen here (-1: no next
     * MoE layer); what a prefetcher keyed on this layer's choice would hit */
    double follow_hit;
} clv_profile_layer_summary;

/* Summary of layer il (CLV_ERR_NOMEM only). */
clv_status clv_profile_summarize(const clv_profile *p, int64_t il, clv_profile_layer_summary *out);

/* Per-unit rates of layer il as doubles (count / n_tokens): neurons or
 * experts; *n gets the count. NULL (and *n = 0) when the layer has none or
 * memory is short. The caller frees. */
double *clv_profile_neuron_rates(const clv_profile *p, int64_t il, int64_t *n);
double *clv_profile_expert_rates(const clv_profile *p, int64_t il, int64_t *n);

#endif
