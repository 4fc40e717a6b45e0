/* `cleave template -m FILE.gguf --messages FILE.json`: renders a conversation
 * with the model's chat template, as transformers' apply_chat_template does. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat_template.h"
#include "commands.h"
#include "gguf.h"
#include "json.h"

#define MAX_VARS 32

static void usage(FILE *f) {
    fprintf(f,
            "usage: cleave template (-m FILE.gguf | --template FILE.jinja) --messages FILE.json [options]\n\n"
            "Renders a conversation with the model's chat template (tokenizer.chat_template)\n"
            "the way Hugging Face transformers' apply_chat_template does, and prints the\n"
            "prompt text exactly, with no newline added. A model without a usable template\n"
            "gets ChatML, with a warning on stderr.\n\n"
            "  -m, --model FILE        GGUF file: its chat template and special tokens\n"
            "  --template FILE         use this Jinja template instead of the model's\n"
            "  --messages FILE         the conversation ('-': standard input): a JSON array of\n"
            "                          {\"role\": ..., \"content\": ...} messages, or an object\n"
            "                          {\"messages\": [...], \"tools\": [...], \"documents\": [...],\n"
            "                          \"chat_template_kwargs\": {...}}\n"
            "  --no-generation-prompt  do not end with the assistant's header\n"
            "                          (add_generation_prompt=False)\n"
            "  --var NAME=JSON         one more template variable, e.g. --var enable_thinking=false\n"
            "                          or --var 'date_string=\"26 Jul 2024\"' (repeatable)\n"
            "  --bos TEXT, --eos TEXT  special tokens to pass (default: the model's)\n"
            "  --json                  print the prompt as a JSON string on one line\n");
}

static char *read_file(const char *path, size_t *len) {
    FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
    if (!f) return NULL;
    clv_strbuf b = {0};
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) clv_strbuf_append(&b, chunk, n);
    bool bad = ferror(f) || b.failed;
    if (f != stdin) fclose(f);
    if (bad) {
        clv_strbuf_free(&b);
        return NULL;
    }
    return clv_strbuf_take(&b, len);
}

int clv_cmd_template(int argc, char **argv) {
    const char *model = NULL, *template_path = NULL, *messages_path = NULL;
    const char *bos = NULL, *eos = NULL;
    const char *vars[MAX_VARS];
    int n_vars = 0;
    bool gen_prompt = true, as_json = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has_value = i + 1 < argc;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if ((!strcmp(a, "-m") || !strcmp(a, "--model")) && has_value) {
            model = argv[++i];
        } else if (!strcmp(a, "--template") && has_value) {
            template_path = argv[++i];
        } else if (!strcmp(a, "--messages") && has_value) {
            messages_path = argv[++i];
        } else if (!strcmp(a, "--no-generation-prompt")) {
            gen_prompt = false;
        } else if (!strcmp(a, "--var") && has_value) {
            if (n_vars == MAX_VARS) {
                fprintf(stderr, "cleave template: at most %d --var options\n", MAX_VARS);
                return 2;
            }
            vars[n_vars++] = argv[++i];
        } else if (!strcmp(a, "--bos") && has_value) {
            bos = argv[++i];
        } else if (!strcmp(a, "--eos") && has_value) {
            eos = argv[++i];
        } else if (!strcmp(a, "--json")) {
            as_json = true;
        } else {
            fprintf(stderr, "cleave template: unknown or incomplete option '%s'\n\n", a);
            usage(stderr);
            return 2;
        }
    }
    if ((!model && !template_path) || !messages_path) {
        fprintf(stderr, "cleave template: give -m FILE.gguf (or --template FILE) and --messages FILE.json\n\n");
        usage(stderr);
        return 2;
    }

    int rc = 1;
    clv_gguf *g = NULL;
    clv_json *input = NULL, *extra = NULL;
    char *source = NULL, *warning = NULL;
    size_t source_len = 0;
    clv_strbuf out = {0};
    clv_chat_template *tmpl = NULL;
    clv_chat_template_params tp = clv_chat_template_default_params();

    if (model) {
        clv_gguf_params gp = clv_gguf_default_params();
        gp.use_mmap = false; /* metadata only */
        if (clv_gguf_open(model, &gp, &g) != CLV_OK) {
            fprintf(stderr, "cleave template: %s\n", clv_last_error());
            goto done;
        }
        tp = clv_chat_template_params_from_gguf(g);
        clv_gguf_str s;
        if (!template_path && clv_gguf_get_str_len(g, "tokenizer.chat_template", &s) == CLV_OK) {
            source = malloc(s.len + 1);
            if (!source) goto oom;
            memcpy(source, s.data, s.len);
            source[s.len] = '\0';
            source_len = s.len;
        }
    }
    if (bos) tp.bos_token = bos;
    if (eos) tp.eos_token = eos;
    if (template_path && !(source = read_file(template_path, &source_len))) {
        fprintf(stderr, "cleave template: cannot read %s\n", template_path);
        goto done;
    }

    if (clv_json_parse_file(strcmp(messages_path, "-") ? messages_path : "/dev/stdin", NULL, &input) != CLV_OK) {
        fprintf(stderr, "cleave template: %s\n", clv_last_error());
        goto done;
    }
    const clv_json *messages = input;
    clv_chat_render_params rp = clv_chat_default_render_params();
    rp.add_generation_prompt = gen_prompt;
    if (clv_json_kind_of(input) == CLV_JSON_OBJECT) {
        messages = clv_json_get(input, "messages");
        rp.tools = clv_json_get(input, "tools");
        rp.documents = clv_json_get(input, "documents");
        const clv_json *kw = clv_json_get(input, "chat_template_kwargs");
        if (kw) extra = clv_json_clone(kw);
        if (!messages) {
            fprintf(stderr, "cleave template: %s: the object has no \"messages\" member\n", messages_path);
            goto done;
        }
    }
    if (!extra) extra = clv_json_new_object();
    if (!extra || clv_json_kind_of(extra) != CLV_JSON_OBJECT) {
        fprintf(stderr, "cleave template: %s: chat_template_kwargs must be an object\n", messages_path);
        goto done;
    }
    for (int i = 0; i < n_vars; i++) {
        const char *eq = strchr(vars[i], '=');
        clv_json *v = NULL;
        if (!eq || eq == vars[i]) {
            fprintf(stderr, "cleave template: --var wants NAME=JSON, got '%s'\n", vars[i]);
            goto done;
        }
        if (clv_json_parse(eq + 1, strlen(eq + 1), NULL, &v) != CLV_OK) {
            fprintf(stderr, "cleave template: --var %.*s: the value is not JSON (%s); quote strings, e.g. "
                            "--var 'name=\"text\"'\n", (int)(eq - vars[i]), vars[i], clv_last_error());
            goto done;
        }
        if (clv_json_setn(extra, vars[i], (size_t)(eq - vars[i]), v) != CLV_OK) goto oom;
    }
    rp.extra_vars = extra;

    clv_status st;
    if (template_path) {
        /* A template given by hand is used as it is: no fallback. */
        st = clv_chat_template_new(source, source_len, &tp, &tmpl);
        if (st == CLV_OK) st = clv_chat_template_render(tmpl, messages, &rp, &out);
    } else {
        st = clv_chat_render(source, source_len, &tp, messages, &rp, &out, &warning);
        if (warning) fprintf(stderr, "cleave template: warning: %s\n", warning);
    }
    if (st != CLV_OK) {
        fprintf(stderr, "cleave template: %s\n", clv_last_error());
        goto done;
    }
    if (as_json) {
        if (clv_json_fwrite_string(stdout, out.data ? out.data : "", out.len, false) != CLV_OK) goto done;
        putchar('\n');
    } else if (out.len && fwrite(out.data, 1, out.len, stdout) != out.len) {
        goto done;
    }
    rc = fflush(stdout) ? 1 : 0;
    goto done;
oom:
    fprintf(stderr, "cleave template: out of memory\n");
done:
    clv_strbuf_free(&out);
    clv_chat_template_free(tmpl);
    clv_json_free(input);
    clv_json_free(extra);
    free(source);
    free(warning);
    clv_gguf_free(g);
    return rc;
}
