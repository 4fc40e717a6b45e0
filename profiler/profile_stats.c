/* Shares, fitted laws and per-layer summaries of a profile. */
#include "profile_stats.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int cmp_desc(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x < y) - (x > y);
}

static double *sorted_desc(const double *v, int64_t n) {
    double *s = malloc((size_t)(n > 0 ? n : 1) * sizeof *s);
    if (!s) return NULL;
    memcpy(s, v, (size_t)n * sizeof *s);
    qsort(s, (size_t)n, sizeof *s, cmp_desc);
    return s;
}

double clv_profile_top_share(const double *v, int64_t n, double frac) {
    double *s = sorted_desc(v, n);
    if (!s) return 0;
    int64_t m = (int64_t)ceil(frac * (double)n - 1e-9);
    double top = 0, total = 0;
    for (int64_t i = 0; i < n; i++) {
        total += s[i];
        if (i < m) top += s[i];
    }
    free(s);
    return total > 0 ? top / total : 0;
}

double clv_profile_fit_power_law(const double *v, int64_t n) {
    double *s = sorted_desc(v, n);
    if (!s) return 0;
    double sx = 0, sy = 0, sxx = 0, sxy = 0;
    int64_t m = 0;
    for (int64_t r = 0; r < n && s[r] > 0; r++) {
        double x = log((double)(r + 1)), y = log(s[r]);
        sx += x, sy += y, sxx += x * x, sxy += x * y;
        m++;
    }
    free(s);
    double den = (double)m * sxx - sx * sx;
    return m >= 2 && den > 0 ? -((double)m * sxy - sx * sy) / den : 0;
}

void clv_profile_coverage(const double *v, int64_t n, double *curve, int n_points) {
    double *s = sorted_desc(v, n);
    double total = 0;
    for (int64_t i = 0; s && i < n; i++) total += s[i];
    double cum = 0;
    int64_t at = 0;
    for (int i = 0; i < n_points; i++) {
        int64_t upto = n_points > 1 ? (int64_t)llround((double)i / (n_points - 1) * (double)n) : n;
        while (s && at < upto) cum += s[at++];
        curve[i] = total > 0 ? cum / total : 0;
    }
    free(s);
}

double clv_profile_correlation(const double *a, const double *b, int64_t n) {
    if (n < 2) return 0;
    double ma = 0, mb = 0;
    for (int64_t i = 0; i < n; i++) ma += a[i], mb += b[i];
    ma /= (double)n, mb /= (double)n;
    double sab = 0, saa = 0, sbb = 0;
    for (int64_t i = 0; i < n; i++) {
        double x = a[i] - ma, y = b[i] - mb;
        sab += x * y, saa += x * x, sbb += y * y;
    }
    return saa > 0 && sbb > 0 ? sab / sqrt(saa * sbb) : 0;
}

static double *rates(const int64_t *counts, int64_t n, int64_t n_tokens) {
    double *r = malloc((size_t)n * sizeof *r);
    if (!r) return NULL;
    for (int64_t i = 0; i < n; i++) r[i] = n_tokens > 0 ? (double)counts[i] / (double)n_tokens : 0;
    return r;
}

double *clv_profile_neuron_rates(const clv_profile *p, int64_t il, int64_t *n) {
    const clv_profile_layer *l = &p->layers[il];
    double *r = l->n_ff > 0 ? rates(l->neuron_active, l->n_ff, p->n_tokens) : NULL;
    *n = r ? l->n_ff : 0;
    return r;
}

double *clv_profile_expert_rates(const clv_profile *p, int64_t il, int64_t *n) {
    const clv_profile_layer *l = &p->layers[il];
    double *r = l->n_expert > 0 ? rates(l->expert_count, l->n_expert, p->n_tokens) : NULL;
    *n = r ? l->n_expert : 0;
    return r;
}

/* Sum of the k largest entries of row[0..n). */
static double top_k_sum(const int64_t *row, int64_t n, int64_t k, double *scratch) {
    for (int64_t i = 0; i < n; i++) scratch[i] = (double)row[i];
    qsort(scratch, (size_t)n, sizeof *scratch, cmp_desc);
    double s = 0;
    for (int64_t i = 0; i < k && i < n; i++) s += scratch[i];
    return s;
}

clv_status clv_profile_summarize(const clv_profile *p, int64_t il, clv_profile_layer_summary *out) {
    const clv_profile_layer *l = &p->layers[il];
    memset(out, 0, sizeof *out);
    out->follow_hit = -1;
    int64_t n;
    if (l->n_ff > 0) {
        double *r = clv_profile_neuron_rates(p, il, &n);
        if (!r) return clv_fail(CLV_ERR_NOMEM, "out of memory");
        out->dense = true;
        double sum = 0;
        for (int64_t i = 0; i < n; i++) {
            sum += r[i];
            out->never_active += l->neuron_active[i] == 0;
        }
        out->active_mean = sum / (double)n;
        out->active_top10 = clv_profile_top_share(r, n, 0.1);
        out->active_alpha = clv_profile_fit_power_law(r, n);
        free(r);
    }
    if (l->n_expert > 0) {
        double *r = clv_profile_expert_rates(p, il, &n);
        double *scratch = l->expert_next ? malloc((size_t)l->n_expert_next * sizeof *scratch) : NULL;
        if (!r || (l->expert_next && !scratch)) {
            free(r);
            free(scratch);
            return clv_fail(CLV_ERR_NOMEM, "out of memory");
        }
        out->moe = true;
        out->expert_top10 = clv_profile_top_share(r, n, 0.1);
        out->expert_alpha = clv_profile_fit_power_law(r, n);
        out->expert_max = 0, out->expert_min = 1;
        double weight = 0;
        int64_t choices = 0;
        for (int64_t e = 0; e < n; e++) {
            out->expert_max = fmax(out->expert_max, r[e]);
            out->expert_min = fmin(out->expert_min, r[e]);
            weight += l->expert_weight[e];
            choices += l->expert_count[e];
        }
        out->mean_weight = choices > 0 ? weight / (double)choices : 0;
        if (l->expert_next) {
            double hit = 0, all = 0;
            for (int64_t e = 0; e < l->n_expert; e++) {
                const int64_t *row = l->expert_next + e * l->n_expert_next;
                for (int64_t f = 0; f < l->n_expert_next; f++) all += (double)row[f];
                hit += top_k_sum(row, l->n_expert_next, p->n_expert_used, scratch);
            }
            out->follow_hit = all > 0 ? hit / all : 0;
        }
        free(r);
        free(scratch);
    }
    return CLV_OK;
}
