/* The generation loop shared by `cleave run`, `cleave chat` and the server:
 * prompt in, streamed text out, with stop conditions and timing. */
#ifndef CLV_GENERATE_H
#define CLV_GENERATE_H

#include <stdbool.h>
#include <stdint.h>

#include "context.h"
#include "sampler.h"
#include "tokenizer.h"

/* Receives each piece of text as soon as it is safe to show (complete UTF-8,
 * not part of a possible stop string). Returning false stops generation. */
typedef bool (*clv_generate_text_fn)(void *user, const char *text, size_t len);

typedef struct clv_generate_params {
    int64_t n_predict;          /* most tokens to generate; -1: until EOS or the context is full */
    const char *const *stops;   /* stop strings (not printed) */
    int32_t n_stops;
    bool show_special;          /* print control tokens' text */
    bool ignore_eog;            /* go on past end-of-generation tokens */
    clv_generate_text_fn on_text;
    void *user;
    /* Optional: receives the generated token ids (at most tokens_cap). */
    int32_t *tokens;
    int64_t tokens_cap;
} clv_generate_params;

clv_generate_params clv_generate_default_params(void);

typedef enum clv_stop_reason {
    CLV_STOP_LENGTH,  /* n_predict reached */
    CLV_STOP_EOG,     /* end-of-generation token */
    CLV_STOP_STRING,  /* a stop string */
    CLV_STOP_CONTEXT, /* the context is full */
    CLV_STOP_USER,    /* the callback asked */
} clv_stop_reason;

typedef struct clv_generate_stats {
    int64_t n_prompt, n_generated;
    double prompt_seconds, generate_seconds;
    clv_stop_reason stop;
} clv_generate_stats;

/* Decodes the prompt (appended to what the context holds) and generates. */
clv_status clv_generate(clv_context *ctx, const clv_tokenizer *tok, clv_sampler *sampler, const int32_t *prompt,
                        int64_t n_prompt, const clv_generate_params *params, clv_generate_stats *stats);

double clv_now_seconds(void);

#endif
