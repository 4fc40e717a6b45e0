/* `cleave detokenize -m FILE.gguf IDS...`: token ids back to text. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "gguf.h"
#include "tokenizer.h"

static void usage(FILE *f) {
    fprintf(f, "usage: cleave detokenize -m FILE.gguf [--special] [--keep-space] IDS...\n\n"
               "Prints the text the token ids stand for, exactly (no newline is added).\n"
               "IDS are separated by spaces or commas, in one argument or several; with\n"
               "none given they are read from standard input.\n\n"
               "  -m, --model FILE  GGUF file whose tokenizer to use\n"
               "  --special         print control tokens (BOS, <|im_end|>, ...) as their text\n"
               "  --keep-space      keep the space a SentencePiece vocabulary puts in front\n");
}

/* Appends the ids in s to *ids; returns false on a malformed one. */
static bool parse_ids(const char *s, int32_t **ids, size_t *n, size_t *cap) {
    while (*s) {
        while (*s == ' ' || *s == ',' || *s == '\n' || *s == '\t' || *s == '\r') s++;
        if (!*s) break;
        char *end;
        errno = 0;
        long v = strtol(s, &end, 10);
        if (end == s || errno || v < INT32_MIN || v > INT32_MAX ||
            (*end && *end != ' ' && *end != ',' && *end != '\n' && *end != '\t' && *end != '\r')) {
            fprintf(stderr, "cleave detokenize: '%.*s' is not a token id\n", (int)strcspn(s, " ,\n"), s);
            return false;
        }
        if (*n == *cap) {
            *cap = *cap ? *cap * 2 : 256;
            int32_t *p = realloc(*ids, *cap * sizeof **ids);
            if (!p) return false;
            *ids = p;
        }
        (*ids)[(*n)++] = (int32_t)v;
        s = end;
    }
    return true;
}

int clv_cmd_detokenize(int argc, char **argv) {
    const char *model = NULL;
    clv_detok_params dp = clv_detok_default_params();
    int32_t *ids = NULL;
    size_t n = 0, cap = 0;
    bool any_ids = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            free(ids);
            return 0;
        } else if ((!strcmp(a, "-m") || !strcmp(a, "--model")) && i + 1 < argc) {
            model = argv[++i];
        } else if (!strcmp(a, "--special")) {
            dp.special = true;
        } else if (!strcmp(a, "--keep-space")) {
            dp.strip_space = false;
        } else if (a[0] == '-' && !(a[1] >= '0' && a[1] <= '9')) {
            fprintf(stderr, "cleave detokenize: unknown or incomplete option '%s'\n\n", a);
            usage(stderr);
            free(ids);
            return 2;
        } else {
            any_ids = true;
            if (!parse_ids(a, &ids, &n, &cap)) {
                free(ids);
                return 2;
            }
        }
    }
    if (!model) {
        fprintf(stderr, "cleave detokenize: give -m FILE.gguf\n\n");
        usage(stderr);
        free(ids);
        return 2;
    }
    if (!any_ids) {
        size_t scap = 1 << 16, sn = 0;
        char *buf = malloc(scap);
        while (buf) {
            sn += fread(buf + sn, 1, scap - 1 - sn, stdin);
            if (sn < scap - 1) break;
            scap *= 2;
            char *b = realloc(buf, scap);
            if (!b) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = b;
        }
        if (!buf) {
            fprintf(stderr, "cleave detokenize: cannot read standard input\n");
            free(ids);
            return 1;
        }
        buf[sn] = '\0';
        bool ok = parse_ids(buf, &ids, &n, &cap);
        free(buf);
        if (!ok) {
            free(ids);
            return 2;
        }
    }

    int rc = 1;
    clv_gguf *g = NULL;
    clv_tokenizer *tok = NULL;
    clv_detok *d = NULL;
    clv_gguf_params gp = clv_gguf_default_params();
    gp.use_mmap = false; /* metadata only */
    if (clv_gguf_open(model, &gp, &g) || clv_tokenizer_load_gguf(g, &tok) ||
        clv_detok_create(tok, &dp, &d)) {
        fprintf(stderr, "cleave detokenize: %s\n", clv_last_error());
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        const char *text;
        size_t len;
        if (clv_detok_push(d, ids[i], &text, &len)) {
            fprintf(stderr, "cleave detokenize: %s\n", clv_last_error());
            goto done;
        }
        fwrite(text, 1, len, stdout);
    }
    const char *text;
    size_t len;
    clv_detok_flush(d, &text, &len);
    fwrite(text, 1, len, stdout);
    rc = fflush(stdout) ? 1 : 0;
done:
    clv_detok_free(d);
    clv_tokenizer_free(tok);
    clv_gguf_free(g);
    free(ids);
    return rc;
}
