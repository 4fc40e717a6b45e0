/* The maths of the planted statistics: Gaussian CDF and its inverse, capped
 * power laws, and the calibration of router logit means so that top-k
 * selection frequencies come out as planned. synthetic_model.c builds the
 * weights from these numbers; docs/synthetic-models.md derives them. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "synthetic_internal.h"

#define PI 3.14159265358979323846

double synth_gauss(synth_rng *r) {
    double u1 = 1.0 - synth_uniform(r); /* (0, 1]: log stays finite */
    double u2 = synth_uniform(r);
    return sqrt(-2.0 * log(u1)) * cos(2.0 * PI * u2);
}

double synth_norm_cdf(double x) { return 0.5 * erfc(-x / sqrt(2.0)); }

static double norm_pdf(double x) { return exp(-0.5 * x * x) / sqrt(2.0 * PI); }

/* Lower-tail start from Abramowitz & Stegun 26.2.23 (|error| < 4.5e-4), then
 * Newton steps on the erfc-based CDF, which is accurate far into the tail. */
double synth_norm_ppf(double p) {
    CLV_ASSERT(p > 0.0 && p < 1.0);
    double q = p < 0.5 ? p : 1.0 - p;
    double t = sqrt(-2.0 * log(q));
    double x = -(t - (2.515517 + 0.802853 * t + 0.010328 * t * t) /
                         (1.0 + 1.432788 * t + 0.189269 * t * t + 0.001308 * t * t * t));
    for (int i = 0; i < 4; i++) {
        double pdf = norm_pdf(x);
        if (pdf < 1e-300) break;
        x -= (synth_norm_cdf(x) - q) / pdf;
    }
    return p < 0.5 ? x : -x;
}

double synth_relu_second_moment(double mu) {
    return (mu * mu + 1.0) * synth_norm_cdf(mu) + mu * norm_pdf(mu);
}

/* Sum of clamp(lambda * w_i, lo, hi) rises with lambda: bisect log lambda. */
void synth_capped_powerlaw(int64_t n, double alpha, double total, double lo, double hi, double *p) {
    CLV_ASSERT(n > 0 && lo <= hi && (double)n * lo <= total * (1 + 1e-12) && total <= (double)n * hi * (1 + 1e-12));
    double log_lo = -200.0, log_hi = 200.0;
    for (int it = 0; it < 200; it++) {
        double mid = 0.5 * (log_lo + log_hi), sum = 0.0;
        for (int64_t i = 0; i < n; i++) {
            double v = exp(mid - alpha * log((double)(i + 1)));
            sum += v < lo ? lo : v > hi ? hi : v;
        }
        if (sum < total) log_lo = mid;
        else log_hi = mid;
    }
    double lambda = 0.5 * (log_lo + log_hi);
    for (int64_t i = 0; i < n; i++) {
        double v = exp(lambda - alpha * log((double)(i + 1)));
        p[i] = v < lo ? lo : v > hi ? hi : v;
    }
}

/* Logit noise is kept as 16-bit fixed point (steps of 1/2048, range +-16):
 * half the memory of floats, and far finer than any frequency it decides. */
#define EPS_SCALE 2048.0f

/* Counts how often each expert is among the k largest logits over the draws. */
static void count_topk(const double *mu, int64_t n_expert, int64_t k, double kappa, const float *g0, const int16_t *eps,
                       int64_t n_samples, int64_t *counts) {
    double topv[64];
    int64_t topi[64];
    memset(counts, 0, (size_t)n_expert * sizeof *counts);
    for (int64_t s = 0; s < n_samples; s++) {
        double scale = 1.0 + kappa * g0[s];
        const int16_t *e = eps + s * n_expert;
        int64_t filled = 0;
        for (int64_t i = 0; i < n_expert; i++) {
            double v = mu[i] * scale + (double)e[i] * (1.0 / EPS_SCALE);
            if (filled == k && v <= topv[k - 1]) continue;
            int64_t j = filled < k ? filled++ : k - 1;
            while (j > 0 && topv[j - 1] < v) {
                topv[j] = topv[j - 1];
                topi[j] = topi[j - 1];
                j--;
            }
            topv[j] = v;
            topi[j] = i;
        }
        for (int64_t j = 0; j < k; j++) counts[topi[j]]++;
    }
}

/* Two standard normals from one accepted point of the polar method (no
 * trigonometry: drawing is most of a calibration's time). */
static void normal_pair(synth_rng *r, double *x, double *y) {
    for (;;) {
        double a = 2.0 * synth_uniform(r) - 1.0, b = 2.0 * synth_uniform(r) - 1.0, q = a * a + b * b;
        if (q >= 1.0 || q == 0.0) continue;
        double f = sqrt(-2.0 * log(q) / q);
        *x = a * f;
        *y = b * f;
        return;
    }
}

static int16_t to_fixed(double x) {
    double v = x * EPS_SCALE;
    return (int16_t)(v > 32767.0 ? 32767 : v < -32767.0 ? -32767 : lrint(v));
}

static void draw_normals(uint64_t seed, uint64_t stream, int64_t n_expert, int64_t n_samples, float *g0, int16_t *eps) {
    synth_rng r = synth_rng_at(seed, stream, 0);
    double x, y;
    for (int64_t s = 0; s < n_samples; s += 2) {
        normal_pair(&r, &x, &y);
        g0[s] = (float)x;
        if (s + 1 < n_samples) g0[s + 1] = (float)y;
    }
    int64_t n = n_samples * n_expert;
    for (int64_t i = 0; i < n; i += 2) {
        normal_pair(&r, &x, &y);
        eps[i] = to_fixed(x);
        if (i + 1 < n) eps[i + 1] = to_fixed(y);
    }
}

double synth_calibrate_topk(const double *pi, int64_t n_expert, int64_t k, double kappa, uint64_t seed,
                            int64_t n_samples, double *mu, double *achieved) {
    CLV_ASSERT(k >= 1 && k <= 64 && k <= n_expert && n_samples > 0);
    float *g0 = malloc((size_t)n_samples * sizeof *g0);
    int16_t *eps = malloc((size_t)(n_samples * n_expert) * sizeof *eps);
    int64_t *counts = malloc((size_t)n_expert * sizeof *counts);
    double *target = malloc((size_t)n_expert * sizeof *target);
    if (!g0 || !eps || !counts || !target) {
        free(g0);
        free(eps);
        free(counts);
        free(target);
        return -1.0;
    }

    /* Start from the threshold model: expert e is picked when its logit
     * passes a common threshold (0), so P = Phi(mu_e); then correct the
     * coupling between experts on the probit scale. */
    for (int64_t i = 0; i < n_expert; i++) {
        target[i] = synth_norm_ppf(pi[i]);
        mu[i] = target[i];
    }
    draw_normals(seed, 1, n_expert, n_samples, g0, eps);
    /* most iterations run on a sixteenth, then a quarter of the draws;
     * the full set only polishes */
    for (int64_t n = n_samples >= 4096 ? n_samples / 16 : n_samples;; n *= 4) {
        if (n > n_samples) n = n_samples;
        double floor_n = 0.5 / (double)n;
        for (int it = 0; it < 60; it++) {
            count_topk(mu, n_expert, k, kappa, g0, eps, n, counts);
            double worst = 0.0;
            for (int64_t i = 0; i < n_expert; i++) {
                double f = (double)counts[i] / (double)n;
                worst = fmax(worst, fabs(f - pi[i]));
                f = fmin(fmax(f, floor_n), 1.0 - floor_n);
                mu[i] += 0.8 * (target[i] - synth_norm_ppf(f));
            }
            if (worst < 0.25 / sqrt((double)n)) break;
        }
        if (n == n_samples) break;
    }

    /* What the calibrated means give on draws they were not fitted to. */
    draw_normals(seed, 2, n_expert, n_samples, g0, eps);
    count_topk(mu, n_expert, k, kappa, g0, eps, n_samples, counts);
    double worst = 0.0;
    for (int64_t i = 0; i < n_expert; i++) {
        double f = (double)counts[i] / (double)n_samples;
        if (achieved) achieved[i] = f;
        worst = fmax(worst, fabs(f - pi[i]));
    }
    free(g0);
    free(eps);
    free(counts);
    free(target);
    return worst;
}
