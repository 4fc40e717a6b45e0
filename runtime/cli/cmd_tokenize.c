/* `cleave tokenize -m FILE.gguf (-p TEXT | -f FILE)`: text to token ids. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "gguf.h"
#include "tokenizer.h"
#include "unicode.h"

static void usage(FILE *f) {
    fprintf(f, "usage: cleave tokenize -m FILE.gguf (-p TEXT | -f FILE) [--ids] [--no-bos] [--special]\n\n"
               "Tokenizes the text with the model's tokenizer and prints one token per line:\n"
               "its id and the text it stands for (control characters escaped).\n\n"
               "  -m, --model FILE   GGUF file whose tokenizer to use\n"
               "  -p, --prompt TEXT  the text\n"
               "  -f, --file FILE    read the text from FILE ('-': standard input)\n"
               "  --ids              print only the ids, on one line, separated by spaces\n"
               "  --no-bos           add no BOS/EOS even where the vocabulary asks for them\n"
               "  --special          turn control-token text (e.g. <|im_start|>) into those\n"
               "                     tokens; without it such text is tokenized as plain text\n");
}

static char *read_all(FILE *f, size_t *len) {
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        n += fread(buf + n, 1, cap - n, f);
        if (n < cap) break;
        cap *= 2;
        char *b = realloc(buf, cap);
        if (!b) {
            free(buf);
            return NULL;
        }
        buf = b;
    }
    if (buf && ferror(f)) {
        free(buf);
        return NULL;
    }
    *len = n;
    return buf;
}

/* A piece on one line, quoted: control bytes and bytes of unfinished UTF-8
 * sequences (byte tokens) as \xHH. */
static void print_piece(const char *s, size_t len) {
    putchar('\'');
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        size_t l = clv_utf8_decode((const uint8_t *)s + i, len - i, &cp);
        unsigned char c = (unsigned char)s[i];
        if (cp >= CLV_UTF8_INVALID_BASE) printf("\\x%02x", c);
        else if (c == '\n') fputs("\\n", stdout);
        else if (c == '\t') fputs("\\t", stdout);
        else if (c == '\r') fputs("\\r", stdout);
        else if (c == '\\' || c == '\'') printf("\\%c", c);
        else if (c < 0x20 || c == 0x7f) printf("\\x%02x", c);
        else fwrite(s + i, 1, l, stdout);
        i += l;
    }
    putchar('\'');
}

int clv_cmd_tokenize(int argc, char **argv) {
    const char *model = NULL, *prompt = NULL, *file = NULL;
    bool ids_only = false;
    clv_tokenize_params tp = clv_tokenize_default_params();
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has_value = i + 1 < argc;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if ((!strcmp(a, "-m") || !strcmp(a, "--model")) && has_value) {
            model = argv[++i];
        } else if ((!strcmp(a, "-p") || !strcmp(a, "--prompt")) && has_value) {
            prompt = argv[++i];
        } else if ((!strcmp(a, "-f") || !strcmp(a, "--file")) && has_value) {
            file = argv[++i];
        } else if (!strcmp(a, "--ids")) {
            ids_only = true;
        } else if (!strcmp(a, "--no-bos")) {
            tp.add_special = false;
        } else if (!strcmp(a, "--special")) {
            tp.parse_special = true;
        } else {
            fprintf(stderr, "cleave tokenize: unknown or incomplete option '%s'\n\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (!model || (!prompt == !file)) {
        fprintf(stderr, "cleave tokenize: give -m FILE.gguf and one of -p TEXT or -f FILE\n\n");
        usage(stderr);
        return 2;
    }

    char *text = NULL;
    size_t len = 0;
    if (file) {
        FILE *f = strcmp(file, "-") ? fopen(file, "rb") : stdin;
        if (!f) {
            perror(file);
            return 1;
        }
        text = read_all(f, &len);
        if (f != stdin) fclose(f);
        if (!text) {
            fprintf(stderr, "cleave tokenize: cannot read %s\n", file);
            return 1;
        }
    } else {
        len = strlen(prompt);
        text = malloc(len + 1);
        if (!text) return 1;
        memcpy(text, prompt, len + 1);
    }

    int rc = 1;
    clv_gguf *g = NULL;
    clv_tokenizer *tok = NULL;
    int32_t *ids = NULL;
    char *piece = NULL;
    clv_gguf_params gp = clv_gguf_default_params();
    gp.use_mmap = false; /* metadata only */
    if (clv_gguf_open(model, &gp, &g) || clv_tokenizer_load_gguf(g, &tok)) {
        fprintf(stderr, "cleave tokenize: %s\n", clv_last_error());
        goto done;
    }
    size_t cap = clv_tokenize_max_tokens(len), n = 0;
    ids = malloc(cap * sizeof *ids);
    piece = malloc(clv_tokenizer_max_piece(tok) + 1);
    if (!ids || !piece) {
        fprintf(stderr, "cleave tokenize: out of memory\n");
        goto done;
    }
    if (clv_tokenize(tok, text, len, &tp, ids, cap, &n)) {
        fprintf(stderr, "cleave tokenize: %s\n", clv_last_error());
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        if (ids_only) {
            printf(i ? " %d" : "%d", ids[i]);
            continue;
        }
        int64_t pl = clv_token_to_piece(tok, ids[i], true, piece, clv_tokenizer_max_piece(tok));
        printf("%6d -> ", ids[i]);
        print_piece(piece, pl > 0 ? (size_t)pl : 0);
        putchar('\n');
    }
    if (ids_only) putchar('\n');
    rc = fflush(stdout) ? 1 : 0;
done:
    free(piece);
    free(ids);
    clv_tokenizer_free(tok);
    clv_gguf_free(g);
    free(text);
    return rc;
}
