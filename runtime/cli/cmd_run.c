/* `cleave run -m FILE.gguf -p PROMPT`: complete a prompt, streaming the text. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "generate.h"
#include "options.h"
#include "tokenizer.h"

static void usage(FILE *f) {
    fprintf(f, "usage: cleave run -m FILE.gguf (-p PROMPT | -f FILE) [options]\n\n"
               "Completes the prompt and streams the text, then prints one line of timings\n"
               "(prompt tokens/s, generated tokens/s, load time) to stderr.\n\n"
               "  -p, --prompt TEXT       the prompt\n"
               "  -f, --file FILE         read the prompt from FILE\n"
               "  -n, --n-predict N       tokens to generate (default 128; -1 = until end of text)\n"
               "  --no-bos                do not add the BOS token\n"
               "  --parse-special         control-token text in the prompt becomes those tokens\n"
               "  --special               print control tokens' text\n");
    clv_options_usage(f);
}

static bool print_text(void *user, const char *text, size_t len) {
    (void)user;
    fwrite(text, 1, len, stdout);
    fflush(stdout);
    return !ferror(stdout);
}

int clv_cmd_run(int argc, char **argv) {
    clv_options o;
    clv_options_init(&o);
    const char *prompt = NULL, *prompt_file = NULL;
    int64_t n_predict = 128;
    bool add_bos = true, parse_special = false, show_special = false;
    for (int i = 1; i < argc; i++) {
        int r = clv_options_parse_one(&o, argc, argv, &i);
        if (r < 0) return 2;
        if (r > 0) continue;
        const char *a = argv[i];
        if ((!strcmp(a, "-p") || !strcmp(a, "--prompt")) && i + 1 < argc) prompt = argv[++i];
        else if ((!strcmp(a, "-f") || !strcmp(a, "--file")) && i + 1 < argc) prompt_file = argv[++i];
        else if ((!strcmp(a, "-n") || !strcmp(a, "--n-predict")) && i + 1 < argc) n_predict = strtoll(argv[++i], NULL, 10);
        else if (!strcmp(a, "--no-bos")) add_bos = false;
        else if (!strcmp(a, "--parse-special")) parse_special = true;
        else if (!strcmp(a, "--special")) show_special = true;
        else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "cleave run: unknown option '%s'\n\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (!o.model || (!prompt && !prompt_file)) {
        usage(stderr);
        return 2;
    }
    char *file_text = NULL;
    size_t prompt_len = prompt ? strlen(prompt) : 0;
    if (prompt_file) {
        file_text = clv_read_file(prompt_file, &prompt_len);
        if (!file_text) {
            fprintf(stderr, "cleave run: cannot read %s\n", prompt_file);
            return 1;
        }
        prompt = file_text;
    }

    int rc = 1;
    clv_model *model = NULL;
    clv_context *ctx = NULL;
    clv_tokenizer *tok = NULL;
    clv_sampler *sampler = NULL;
    int32_t *ids = NULL;
    double load_s = 0;
    clv_status st = clv_options_load(&o, &model, &ctx, &load_s);
    if (!st) st = clv_tokenizer_load_gguf(model->gguf, &tok);
    if (st) {
        fprintf(stderr, "cleave run: %s\n", clv_last_error());
        goto done;
    }
    size_t cap = clv_tokenize_max_tokens(prompt_len), n_ids = 0;
    ids = malloc(cap * sizeof *ids);
    clv_tokenize_params tp = clv_tokenize_default_params();
    tp.add_special = add_bos;
    tp.parse_special = parse_special;
    if (!ids || (st = clv_tokenize(tok, prompt, prompt_len, &tp, ids, cap, &n_ids))) {
        fprintf(stderr, "cleave run: %s\n", ids ? clv_last_error() : "out of memory");
        goto done;
    }

    int32_t eog[2];
    clv_options_sampler_params(&o, model, tok, eog);
    if ((st = clv_sampler_create(&o.sampling, &sampler))) {
        fprintf(stderr, "cleave run: %s\n", clv_last_error());
        goto done;
    }
    clv_generate_params gp = clv_generate_default_params();
    gp.n_predict = n_predict;
    gp.stops = o.stops;
    gp.n_stops = o.n_stops;
    gp.show_special = show_special;
    gp.ignore_eog = o.sampling.ignore_eos;
    gp.on_text = print_text;
    fwrite(prompt, 1, prompt_len, stdout);
    fflush(stdout);
    clv_generate_stats gs;
    if ((st = clv_generate(ctx, tok, sampler, ids, (int64_t)n_ids, &gp, &gs))) {
        fprintf(stderr, "\ncleave run: %s\n", clv_last_error());
        goto done;
    }
    printf("\n");
    fprintf(stderr, "cleave: prompt %lld tokens, %.1f tok/s | generated %lld tokens, %.1f tok/s | load %.2f s\n",
            (long long)gs.n_prompt, gs.prompt_seconds > 0 ? (double)gs.n_prompt / gs.prompt_seconds : 0.0,
            (long long)gs.n_generated,
            gs.generate_seconds > 0 ? (double)gs.n_generated / gs.generate_seconds : 0.0, load_s);
    rc = 0;
done:
    free(ids);
    free(file_text);
    clv_sampler_free(sampler);
    clv_tokenizer_free(tok);
    clv_context_free(ctx);
    clv_model_free(model);
    clv_options_release(&o);
    return rc;
}
