/* Token sampling: the chain llama.cpp users know, with its defaults.
 *
 *   logits -> logit bias -> repetition / presence / frequency penalties
 *          -> top-k -> typical-p -> top-p -> min-p -> temperature
 *          -> draw from the softmax with a seeded PRNG
 *
 * temperature <= 0 is greedy: the argmax after bias and penalties (ties go
 * to the lowest token id). Each filter sees the distribution the previous
 * one left, renormalised, as in llama.cpp. NaN logits are never chosen;
 * -inf (or a bias of -INFINITY) bans a token; +inf logits share all the
 * probability between them.
 *
 * Everything is allocated by clv_sampler_create; sampling a token allocates
 * nothing and never modifies the caller's logits. The PRNG is xoshiro256**
 * seeded by splitmix64, so the same seed, logits and history give the same
 * tokens on every machine (up to the last-ulp behaviour of expf/logf of the
 * C library, which only matters for a draw landing exactly on a boundary).
 *
 * End of generation: the caller asks clv_sampler_is_eog() about the sampled
 * token; with ignore_eos the EOG tokens are banned instead. Stop strings are
 * matched on the detokenized text by clv_stop_matcher (stop_strings.h). */
#ifndef CLV_SAMPLER_H
#define CLV_SAMPLER_H

#include <stdbool.h>
#include <stdint.h>

#include "status.h"

typedef struct clv_sampler clv_sampler;

typedef struct clv_logit_bias {
    int32_t token;
    float bias; /* added to the logit; -INFINITY bans the token */
} clv_logit_bias;

/* seed: pick one at create (clv_sampler_seed() tells which, to reproduce). */
#define CLV_SAMPLER_SEED_RANDOM UINT64_MAX

typedef struct clv_sampler_params {
    int32_t n_vocab;           /* required, > 0 */
    uint64_t seed;             /* CLV_SAMPLER_SEED_RANDOM */
    float temperature;         /* 0.8; <= 0: greedy */
    int32_t top_k;             /* 40; <= 0: off */
    float top_p;               /* 0.95; in [0, 1], 1: off */
    float min_p;               /* 0.05; in [0, 1], 0: off */
    float typical_p;           /* 1.0 (off); in [0, 1] */
    float repeat_penalty;      /* 1.0 (off); > 0 */
    float presence_penalty;    /* 0 (off) */
    float frequency_penalty;   /* 0 (off) */
    int32_t penalty_last_n;    /* 64: penalties look at the last n accepted tokens; 0: off */
    int32_t min_keep;          /* 0: filters keep at least max(min_keep, 1) tokens */
    /* Copied at create; several entries for one token add up. */
    const clv_logit_bias *logit_bias;
    int32_t n_logit_bias;
    /* End-of-generation tokens (EOS, EOT, ...), copied at create. */
    const int32_t *eog_tokens;
    int32_t n_eog_tokens;
    bool ignore_eos; /* ban the EOG tokens */
} clv_sampler_params;

clv_sampler_params clv_sampler_default_params(void);

/* CLV_ERR_ARG with a message for a parameter out of its range (NaN
 * included), n_vocab <= 0, or a bias / EOG token outside [0, n_vocab). */
clv_status clv_sampler_create(const clv_sampler_params *params, clv_sampler **out);
void clv_sampler_free(clv_sampler *s); /* accepts NULL */

/* Samples the next token from logits[n_vocab]. Returns the token id, or -1
 * (with a message, see clv_last_error) when no token can be chosen because
 * every logit is NaN or -inf after bias and penalties. Does not record the
 * token: call clv_sampler_accept for that. */
int32_t clv_sampler_sample(clv_sampler *s, const float *logits);

/* The distribution the next draw would use: the candidates left by the
 * chain and their final probabilities (after temperature, summing to 1), in
 * no particular order. Returns their count (0 when none is left) and points
 * *ids / *probs into the sampler's memory, valid until the next call.
 * Greedy gives one candidate with probability 1. Does not advance the PRNG. */
int32_t clv_sampler_candidates(clv_sampler *s, const float *logits, const int32_t **ids,
                               const float **probs);

/* Records a token (generated, or from the prompt) in the penalty history.
 * CLV_ERR_ARG for a token outside [0, n_vocab). */
clv_status clv_sampler_accept(clv_sampler *s, int32_t token);

/* Forgets the history and restarts the PRNG from the seed. */
void clv_sampler_reset(clv_sampler *s);

uint64_t clv_sampler_seed(const clv_sampler *s);

bool clv_sampler_is_eog(const clv_sampler *s, int32_t token);

#endif
