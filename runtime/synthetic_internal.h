/* Pieces of the synthetic model generator shared by its files (not public):
 * the random streams, the fast quantizers, the planted-statistics maths and
 * the generated vocabulary. See synthetic_model.h for the public side. */
#ifndef CLV_SYNTHETIC_INTERNAL_H
#define CLV_SYNTHETIC_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "status.h"
#include "synthetic_model.h"

/* --- random streams: xoshiro256++ seeded through splitmix64. A row's stream
 * depends only on (seed, tensor, row), so the bytes written do not depend on
 * threads or chunking. */

typedef struct synth_rng {
    uint64_t s[4];
} synth_rng;

static inline uint64_t synth_mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static inline synth_rng synth_rng_at(uint64_t seed, uint64_t stream, uint64_t index) {
    uint64_t z = synth_mix64(seed ^ synth_mix64(stream + 0x632be59bd9b4e019ULL)) ^ synth_mix64(index);
    synth_rng r;
    for (int i = 0; i < 4; i++) {
        z += 0x9e3779b97f4a7c15ULL;
        r.s[i] = synth_mix64(z);
    }
    return r;
}

static inline uint64_t synth_rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static inline uint64_t synth_next(synth_rng *r) {
    uint64_t *s = r->s;
    uint64_t out = synth_rotl(s[0] + s[3], 23) + s[0], t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = synth_rotl(s[3], 45);
    return out;
}

/* Uniform in [0, 1). */
static inline double synth_uniform(synth_rng *r) { return (double)(synth_next(r) >> 11) * 0x1.0p-53; }

/* Approximately standard normal: the sum of four 16-bit uniforms (Irwin-Hall),
 * one 64-bit draw per value. Bounded by +-3.47, which suits weights: every
 * projection over many of them is Gaussian by the central limit theorem. */
static inline float synth_gauss_fast(synth_rng *r) {
    uint64_t x = synth_next(r);
    uint32_t s = (uint32_t)(x & 0xffff) + (uint32_t)((x >> 16) & 0xffff) + (uint32_t)((x >> 32) & 0xffff) +
                 (uint32_t)(x >> 48);
    return ((float)s + 2.0f) * (1.7320508f / 65536.0f) - 2.0f * 1.7320508f;
}

/* Exactly standard normal (Box-Muller), for calibration where tails matter. */
double synth_gauss(synth_rng *r);

/* --- fast quantizers ------------------------------------------------------ */

/* Quantizes n values (a multiple of the block size) with plain min/max and
 * max-abs scales (no search): weight values do not matter for speed, only
 * their statistics, and this is ~20x faster than clv_quantize_row. Q4_0,
 * Q4_K, Q5_K and Q6_K here; every other type goes to clv_quantize_row. */
clv_status synth_quantize_row(int32_t type, const float *x, void *dst, int64_t n);

/* --- planted statistics ----------------------------------------------------- */

double synth_norm_cdf(double x);
/* Inverse of synth_norm_cdf for p in (0, 1). */
double synth_norm_ppf(double p);

/* Fills p[0..n) with values proportional to rank^-alpha (rank = i + 1),
 * clipped to [lo, hi], whose sum is `total` (water-filling: entries that
 * would pass hi are held at hi and the rest rescaled). alpha = 0 gives equal
 * values. Needs n * lo <= total <= n * hi. */
void synth_capped_powerlaw(int64_t n, double alpha, double total, double lo, double hi, double *p);

/* Logit means mu[e] such that expert e is among the top k of
 *   l_e = mu_e * (1 + kappa * g0) + eps_e   (g0, eps_e independent N(0,1))
 * with probability pi[e] (sum pi = k). Monte Carlo with common random
 * numbers: n_samples draws, fixed-point updates on the probit scale.
 * achieved[e] (may be NULL) receives the selection frequency on a fresh set
 * of draws. Returns the largest |achieved - pi|, or -1 when out of memory. */
double synth_calibrate_topk(const double *pi, int64_t n_expert, int64_t k, double kappa, uint64_t seed,
                            int64_t n_samples, double *mu, double *achieved);

/* Mean of relu(N(mu, 1))^2: the second moment of a ReLU unit. */
double synth_relu_second_moment(double mu);

/* --- generated vocabulary --------------------------------------------------- */

typedef struct synth_vocab {
    int64_t n_tokens;
    char **tokens;      /* n_tokens strings, as the file stores them */
    float *scores;      /* SPM ("llama") only, else NULL */
    int32_t *types;     /* 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte */
    char **merges;      /* BPE ("gpt2") only: "a b", in rank order */
    int64_t n_merges;
    const char *model;  /* tokenizer.ggml.model */
    const char *pre;    /* tokenizer.ggml.pre, or NULL */
    int64_t bos, eos, eot, unk, pad; /* -1: none */
    bool add_bos, add_space_prefix;
    const char *chat_template;
    void *arena;        /* owns every string above */
} synth_vocab;

/* Builds a vocabulary of exactly shape->n_vocab tokens for the shape's
 * family: byte-level BPE with the 256 byte tokens and one merge per further
 * token, or SentencePiece-style pieces with scores and <0xNN> byte tokens;
 * special tokens, bos/eos and a chat template as the real model has them. */
clv_status synth_vocab_build(const clv_synth_shape *shape, uint64_t seed, synth_vocab *out);
void synth_vocab_free(synth_vocab *v);

#endif
