/* Tokenizer test vectors: every ggml-vocab-*.gguf in ../shared/fixtures/vocab
 * with its .inp (strings, each followed by a __ggml_vocab_test__ line) and
 * .out (expected ids, one line per string; no BOS, special tokens not
 * parsed). Every string must give exactly the expected ids, and decoding the
 * ids must give the string back. Prints the counts per file.
 *
 *   test_tokenizer_vocab [DIR] [-v]      DIR defaults to the fixtures folder */
#include <dirent.h>
#include <sys/stat.h>

#include "test.h"
#include "tokenizer.h"

#define SEPARATOR "\n__ggml_vocab_test__\n"

static int verbose;

static char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf) buf[n] = '\0';
    *len = (size_t)n;
    return buf;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Parses one line of ids; returns the count. */
static size_t parse_ids(const char *line, size_t len, int32_t *ids, size_t cap) {
    size_t n = 0, i = 0;
    while (i < len) {
        while (i < len && line[i] == ' ') i++;
        if (i >= len) break;
        long v = 0;
        while (i < len && line[i] >= '0' && line[i] <= '9') v = v * 10 + (line[i++] - '0');
        if (n < cap) ids[n] = (int32_t)v;
        n++;
        while (i < len && line[i] != ' ') i++;
    }
    return n;
}

static void print_escaped(FILE *f, const char *s, size_t n) {
    for (size_t i = 0; i < n && i < 120; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\n') fputs("\\n", f);
        else if (c == '\t') fputs("\\t", f);
        else if (c < 0x20) fprintf(f, "\\x%02x", c);
        else fputc(c, f);
    }
}

static void print_ids(FILE *f, const int32_t *ids, size_t n) {
    for (size_t i = 0; i < n; i++) fprintf(f, "%s%d", i ? " " : "", ids[i]);
}

static void run_file(const char *dir, const char *name) {
    char path[4096], inp_path[4200], out_path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    snprintf(inp_path, sizeof inp_path, "%s.inp", path);
    snprintf(out_path, sizeof out_path, "%s.out", path);
    size_t inp_len, out_len;
    char *inp = read_file(inp_path, &inp_len);
    char *out = read_file(out_path, &out_len);
    if (!inp || !out) {
        printf("%s: no .inp/.out beside it, skipped\n", name);
        free(inp);
        free(out);
        return;
    }

    clv_gguf *g = NULL;
    clv_tokenizer *tok = NULL;
    clv_status st = clv_gguf_open(path, NULL, &g);
    if (st == CLV_OK) st = clv_tokenizer_load_gguf(g, &tok);
    CHECK_MSG(st == CLV_OK, "%s: %s", name, clv_last_error());
    if (st != CLV_OK) {
        clv_gguf_free(g);
        free(inp);
        free(out);
        return;
    }

    clv_tokenize_params tp = {.add_special = false, .parse_special = false};
    size_t n_strings = 0, ids_ok = 0, text_ok = 0;
    const char *s = inp, *inp_end = inp + inp_len;
    const char *line = out, *out_end = out + out_len;
    while (s < inp_end) {
        const char *sep = strstr(s, SEPARATOR);
        if (!sep) break;
        size_t slen = (size_t)(sep - s);
        const char *eol = memchr(line, '\n', (size_t)(out_end - line));
        if (!eol) eol = out_end;
        n_strings++;

        size_t cap = clv_tokenize_max_tokens(slen), n = 0;
        int32_t *got = malloc(cap * sizeof *got);
        int32_t *want = malloc((size_t)(eol - line + 1) * sizeof *want);
        size_t n_want = parse_ids(line, (size_t)(eol - line), want, (size_t)(eol - line + 1));
        st = clv_tokenize(tok, s, slen, &tp, got, cap, &n);
        bool same = st == CLV_OK && n == n_want && !memcmp(got, want, n * sizeof *got);
        if (same) {
            ids_ok++;
        } else {
            fprintf(stderr, "%s: string %zu \"", name, n_strings);
            print_escaped(stderr, s, slen);
            fprintf(stderr, "\"\n   want: ");
            print_ids(stderr, want, n_want);
            fprintf(stderr, "\n   got:  ");
            print_ids(stderr, got, n);
            fprintf(stderr, "%s\n", st ? clv_last_error() : "");
        }
        CHECK_MSG(same, "%s: ids of string %zu", name, n_strings);

        /* Decoding the expected ids gives the text back. */
        char *text = malloc(slen + 64);
        int64_t tl = clv_detokenize(tok, want, n_want, NULL, text, slen + 64);
        bool back = tl == (int64_t)slen && !memcmp(text, s, slen);
        if (back) {
            text_ok++;
        } else {
            fprintf(stderr, "%s: string %zu decodes to \"", name, n_strings);
            print_escaped(stderr, text, tl < 0 ? 0 : (size_t)(tl < (int64_t)slen + 64 ? tl : (int64_t)slen + 64));
            fprintf(stderr, "\"\n");
        }
        CHECK_MSG(back, "%s: round trip of string %zu", name, n_strings);
        if (verbose) {
            printf("  %zu \"", n_strings);
            print_escaped(stdout, s, slen);
            printf("\" -> ");
            print_ids(stdout, got, n);
            printf("\n");
        }
        free(text);
        free(got);
        free(want);
        s = sep + strlen(SEPARATOR);
        line = eol < out_end ? eol + 1 : out_end;
    }
    CHECK_MSG(n_strings > 0, "%s: no test strings", name);
    printf("%-34s %-6s pre=%-16s ids %zu/%zu, round trip %zu/%zu\n", name,
           clv_tokenizer_get_kind(tok) == CLV_TOKENIZER_SPM ? "spm" : "bpe",
           clv_tokenizer_pre(tok), ids_ok, n_strings, text_ok, n_strings);
    clv_tokenizer_free(tok);
    clv_gguf_free(g);
    free(inp);
    free(out);
}

int main(int argc, char **argv) {
    char dir[4096] = "";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-v")) verbose = 1;
        else snprintf(dir, sizeof dir, "%s", argv[i]);
    }
    if (!dir[0]) {
        const char *fx = test_fixtures_dir();
        if (!fx) TEST_SKIP("no fixtures folder known");
        snprintf(dir, sizeof dir, "%.4000s/vocab", fx);
    }
    DIR *d = opendir(dir);
    if (!d) TEST_SKIP("no vocabulary fixtures at %s", dir);
    char *names[256];
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < 256) {
        size_t l = strlen(e->d_name);
        if (l > 5 && !strcmp(e->d_name + l - 5, ".gguf")) names[n++] = strdup(e->d_name);
    }
    closedir(d);
    if (n == 0) TEST_SKIP("no ggml-vocab-*.gguf in %s", dir);
    qsort(names, n, sizeof names[0], cmp_str);
    for (size_t i = 0; i < n; i++) {
        run_file(dir, names[i]);
        free(names[i]);
    }
    return test_finish("test_tokenizer_vocab");
}
