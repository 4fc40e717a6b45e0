#include "generate.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "stop_strings.h"

double clv_now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

clv_generate_params clv_generate_default_params(void) {
    return (clv_generate_params){.n_predict = -1};
}

/* Generated text, kept whole so that stop strings spanning pieces are seen;
 * grown geometrically (amortised, not per token). */
typedef struct text_buf {
    char *data;
    size_t len, cap;
} text_buf;

static bool text_append(text_buf *b, const char *s, size_t n) {
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n) cap *= 2;
        char *d = realloc(b->data, cap);
        if (!d) return false;
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
    return true;
}

clv_status clv_generate(clv_context *ctx, const clv_tokenizer *tok, clv_sampler *sampler, const int32_t *prompt,
                        int64_t n_prompt, const clv_generate_params *params, clv_generate_stats *stats) {
    clv_generate_params p = params ? *params : clv_generate_default_params();
    memset(stats, 0, sizeof *stats);
    stats->n_prompt = n_prompt;
    if (n_prompt < 1) return clv_fail(CLV_ERR_ARG, "empty prompt");
    if (ctx->n_past + n_prompt >= ctx->params.n_ctx) {
        return clv_fail(CLV_ERR_RANGE, "the prompt (%lld tokens) does not fit the context (%lld, %lld used)",
                        (long long)n_prompt, (long long)ctx->params.n_ctx, (long long)ctx->n_past);
    }
    clv_detok_params dp = clv_detok_default_params();
    dp.special = p.show_special;
    clv_detok *detok = NULL;
    clv_stop_matcher *stops = NULL;
    text_buf out = {0};
    clv_status st = clv_detok_create(tok, &dp, &detok);
    if (!st) st = clv_stop_matcher_create(p.stops, p.n_stops, &stops);
    if (st) goto done;
    for (int64_t i = 0; i < n_prompt; i++) clv_sampler_accept(sampler, prompt[i]);

    double t0 = clv_now_seconds();
    clv_batch batch = {.n_tokens = n_prompt, .tokens = prompt, .logits_all = false};
    if ((st = clv_decode(ctx, &batch))) goto done;
    double t1 = clv_now_seconds();
    stats->prompt_seconds = t1 - t0;

    uint64_t shown = 0;
    stats->stop = CLV_STOP_LENGTH;
    for (int64_t n = 0; p.n_predict < 0 || n < p.n_predict; n++) {
        int32_t id = clv_sampler_sample(sampler, clv_context_logits(ctx, 0));
        if (id < 0) {
            st = clv_fail(CLV_ERR_RANGE, "sampling failed after %lld tokens: %s", (long long)n, clv_last_error());
            goto done;
        }
        clv_sampler_accept(sampler, id);
        if (p.tokens && stats->n_generated < p.tokens_cap) p.tokens[stats->n_generated] = id;
        stats->n_generated++;
        if (!p.ignore_eog && clv_tokenizer_is_eog(tok, id)) {
            stats->stop = CLV_STOP_EOG;
            break;
        }
        const char *text;
        size_t len;
        if ((st = clv_detok_push(detok, id, &text, &len))) goto done;
        if (len) {
            if (!text_append(&out, text, len)) {
                st = clv_fail(CLV_ERR_NOMEM, "no memory for generated text");
                goto done;
            }
            clv_stop_result r = clv_stop_matcher_feed(stops, text, len);
            uint64_t upto = r.stopped ? r.stop_offset : r.n_safe;
            if (upto > shown && p.on_text && !p.on_text(p.user, out.data + shown, (size_t)(upto - shown))) {
                stats->stop = CLV_STOP_USER;
                shown = upto;
                break;
            }
            if (upto > shown) shown = upto;
            if (r.stopped) {
                stats->stop = CLV_STOP_STRING;
                break;
            }
        }
        if (ctx->n_past + 1 >= ctx->params.n_ctx) {
            stats->stop = CLV_STOP_CONTEXT;
            break;
        }
        clv_batch one = {.n_tokens = 1, .tokens = &id, .logits_all = false};
        if ((st = clv_decode(ctx, &one))) goto done;
    }
    /* Whatever is still held back (no stop string came) is shown now. */
    if (stats->stop != CLV_STOP_STRING && stats->stop != CLV_STOP_USER) {
        const char *text;
        size_t len;
        clv_detok_flush(detok, &text, &len);
        if (len && !text_append(&out, text, len)) {
            st = clv_fail(CLV_ERR_NOMEM, "no memory for generated text");
            goto done;
        }
        if (out.len > shown && p.on_text) p.on_text(p.user, out.data + shown, out.len - shown);
    }
    stats->generate_seconds = clv_now_seconds() - t1;
done:
    free(out.data);
    clv_stop_matcher_free(stops);
    clv_detok_free(detok);
    return st;
}
