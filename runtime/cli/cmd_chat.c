/* `cleave chat -m FILE.gguf`: an interactive chat with the model's own
 * template. Reads one user message per line (a terminal or a pipe); each turn
 * renders the whole conversation, reuses the cached prefix, and streams the
 * answer. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chat_template.h"
#include "commands.h"
#include "generate.h"
#include "options.h"
#include "tokenizer.h"

static void usage(FILE *f) {
    fprintf(f, "usage: cleave chat -m FILE.gguf [-sys TEXT] [-n N] [options]\n\n"
               "Chats using the model's chat template (tokenizer.chat_template; ChatML when\n"
               "the file has none or cleave cannot run it). One message per input line;\n"
               "end with Ctrl-D (or the end of a piped input).\n\n"
               "  -sys, --system TEXT     system prompt\n"
               "  -n, --n-predict N       most tokens per answer (default -1: until end of turn)\n");
    clv_options_usage(f);
}

static bool print_text(void *user, const char *text, size_t len) {
    clv_strbuf *reply = user;
    clv_strbuf_append(reply, text, len);
    fwrite(text, 1, len, stdout);
    fflush(stdout);
    return !ferror(stdout);
}

static clv_status add_message(clv_json *messages, const char *role, const char *content, size_t len) {
    clv_json *m = clv_json_new_object();
    if (!m) return clv_fail(CLV_ERR_NOMEM, "out of memory");
    clv_status st = clv_json_set(m, "role", clv_json_new_cstring(role));
    if (!st) st = clv_json_set(m, "content", clv_json_new_string(content, len));
    if (!st) st = clv_json_append(messages, m);
    else clv_json_free(m);
    return st;
}

int clv_cmd_chat(int argc, char **argv) {
    clv_options o;
    clv_options_init(&o);
    const char *system = NULL;
    int64_t n_predict = -1;
    for (int i = 1; i < argc; i++) {
        int r = clv_options_parse_one(&o, argc, argv, &i);
        if (r < 0) return 2;
        if (r > 0) continue;
        if ((!strcmp(argv[i], "-sys") || !strcmp(argv[i], "--system")) && i + 1 < argc) system = argv[++i];
        else if ((!strcmp(argv[i], "-n") || !strcmp(argv[i], "--n-predict")) && i + 1 < argc) n_predict = strtoll(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "cleave chat: unknown option '%s'\n\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    if (!o.model) {
        usage(stderr);
        return 2;
    }
    int rc = 1;
    bool interactive = isatty(STDIN_FILENO);
    clv_model *model = NULL;
    clv_context *ctx = NULL;
    clv_tokenizer *tok = NULL;
    clv_sampler *sampler = NULL;
    clv_chat_template *tmpl = NULL;
    clv_json *messages = clv_json_new_array();
    int32_t *history = NULL, *ids = NULL, *gen = NULL;
    int64_t n_history = 0;
    clv_strbuf prompt, reply;
    clv_strbuf_init(&prompt);
    clv_strbuf_init(&reply);
    char *line = NULL;
    size_t line_cap = 0;

    clv_status st = clv_options_load(&o, &model, &ctx, NULL);
    if (!st) st = clv_tokenizer_load_gguf(model->gguf, &tok);
    if (st) goto fail;
    clv_chat_template_params tp = clv_chat_template_params_from_gguf(model->gguf);
    clv_gguf_str src = {0, NULL};
    if (clv_gguf_get_str_len(model->gguf, "tokenizer.chat_template", &src) == CLV_OK) {
        if (clv_chat_template_new(src.data, (size_t)src.len, &tp, &tmpl) != CLV_OK) {
            fprintf(stderr, "cleave chat: warning: the model's chat template cannot be used (%s); using ChatML\n",
                    clv_last_error());
        }
    } else {
        fprintf(stderr, "cleave chat: warning: the model has no chat template; using ChatML\n");
    }
    if (!tmpl && (st = clv_chat_template_chatml(&tp, &tmpl))) goto fail;
    int32_t eog[2];
    clv_options_sampler_params(&o, model, tok, eog);
    if ((st = clv_sampler_create(&o.sampling, &sampler))) goto fail;
    int64_t n_ctx = ctx->params.n_ctx;
    history = malloc((size_t)n_ctx * sizeof *history);
    gen = malloc((size_t)n_ctx * sizeof *gen);
    if (!messages || !history || !gen) {
        st = clv_fail(CLV_ERR_NOMEM, "out of memory");
        goto fail;
    }
    if (system && (st = add_message(messages, "system", system, strlen(system)))) goto fail;

    for (;;) {
        if (interactive) {
            printf("> ");
            fflush(stdout);
        }
        ssize_t n = getline(&line, &line_cap, stdin);
        if (n < 0) break;
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = '\0';
        if (n == 0) continue;
        if ((st = add_message(messages, "user", line, (size_t)n))) goto fail;

        clv_chat_render_params rp = clv_chat_default_render_params();
        rp.add_generation_prompt = true;
        clv_strbuf_clear(&prompt);
        if ((st = clv_chat_template_render(tmpl, messages, &rp, &prompt))) goto fail;
        size_t cap = clv_tokenize_max_tokens(prompt.len), n_ids = 0;
        free(ids);
        ids = malloc(cap * sizeof *ids);
        clv_tokenize_params tkp = clv_tokenize_default_params();
        tkp.add_special = false; /* the template writes BOS itself where the model wants it */
        tkp.parse_special = true;
        if (!ids) {
            st = clv_fail(CLV_ERR_NOMEM, "out of memory");
            goto fail;
        }
        if ((st = clv_tokenize(tok, prompt.data, prompt.len, &tkp, ids, cap, &n_ids))) goto fail;
        /* Keep the cached prefix that the new rendering shares. */
        int64_t keep = 0;
        while (keep < n_history && keep < (int64_t)n_ids - 1 && history[keep] == ids[keep]) keep++;
        if ((int64_t)n_ids + 1 >= n_ctx) {
            fprintf(stderr, "\ncleave chat: the conversation (%zu tokens) no longer fits the context (%lld)\n", n_ids,
                    (long long)n_ctx);
            break;
        }
        clv_context_truncate(ctx, keep);
        clv_generate_params gp = clv_generate_default_params();
        gp.n_predict = n_predict;
        gp.stops = o.stops;
        gp.n_stops = o.n_stops;
        gp.on_text = print_text;
        gp.user = &reply;
        gp.tokens = gen;
        gp.tokens_cap = n_ctx;
        clv_strbuf_clear(&reply);
        clv_generate_stats gs;
        if ((st = clv_generate(ctx, tok, sampler, ids + keep, (int64_t)n_ids - keep, &gp, &gs))) goto fail;
        printf("\n");
        if (o.verbose) {
            fprintf(stderr, "[%lld prompt tokens (%lld reused), %lld generated, %.1f tok/s]\n", (long long)n_ids,
                    (long long)keep, (long long)gs.n_generated,
                    gs.generate_seconds > 0 ? (double)gs.n_generated / gs.generate_seconds : 0.0);
        }
        /* What the cache now holds: the prompt and all but the last sampled token. */
        memcpy(history, ids, n_ids * sizeof *ids);
        n_history = (int64_t)n_ids;
        for (int64_t i = 0; i + 1 < gs.n_generated && n_history < n_ctx; i++) history[n_history++] = gen[i];
        if ((st = add_message(messages, "assistant", reply.data ? reply.data : "", reply.len))) goto fail;
    }
    rc = 0;
    goto done;
fail:
    fprintf(stderr, "cleave chat: %s\n", clv_last_error());
done:
    free(line);
    free(ids);
    free(history);
    free(gen);
    clv_strbuf_free(&prompt);
    clv_strbuf_free(&reply);
    clv_json_free(messages);
    clv_chat_template_free(tmpl);
    clv_sampler_free(sampler);
    clv_tokenizer_free(tok);
    clv_context_free(ctx);
    clv_model_free(model);
    clv_options_release(&o);
    return rc;
}
