/* cleave's tokenizer against Hugging Face's on real models: the ids in
 * tests/data/tokenizer_refs_*.txt (made by tests/gen_tokenizer_refs.py from
 * the same GGUF files) must come out exactly, in three modes (special tokens
 * not parsed; parsed; parsed with BOS/EOS added), and decoding, whole or
 * streamed token by token, must give each string back (where Hugging Face's
 * decoding does: a vocabulary may lack some bytes).
 *
 *   test_tokenizer_models [REFS.txt ...]   default: every refs file in tests/data
 *
 * A model that is not in the cache (scripts/get-model.sh fetches it) is
 * skipped with a message; with none present the test is skipped. */
#include <dirent.h>
#include <sys/stat.h>

#include "test.h"
#include "tokenizer.h"
#include "unicode.h"

#define MAX_SHOWN 8 /* mismatches printed per model and mode */

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

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Undoes the generator's escaping in place; returns the length. */
static size_t unescape(char *s, size_t len) {
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] != '\\' || i + 1 >= len) {
            s[o++] = s[i];
            continue;
        }
        char c = s[++i];
        if (c == 'n') s[o++] = '\n';
        else if (c == 't') s[o++] = '\t';
        else if (c == 'r') s[o++] = '\r';
        else if (c == 'x' && i + 2 < len) {
            s[o++] = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
            i += 2;
        } else s[o++] = c;
    }
    return o;
}

static size_t parse_ids(const char *s, size_t len, int32_t *ids) {
    size_t n = 0;
    for (size_t i = 0; i < len;) {
        while (i < len && s[i] == ' ') i++;
        if (i >= len) break;
        long v = 0;
        while (i < len && s[i] >= '0' && s[i] <= '9') v = v * 10 + (s[i++] - '0');
        ids[n++] = (int32_t)v;
    }
    return n;
}

static void print_text(const char *s, size_t n) {
    fputc('"', stderr);
    for (size_t i = 0; i < n && i < 100; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\n') fputs("\\n", stderr);
        else if (c == '\t') fputs("\\t", stderr);
        else if (c < 0x20) fprintf(stderr, "\\x%02x", c);
        else fputc(c, stderr);
    }
    fputs(n > 100 ? "...\"" : "\"", stderr);
}

static void print_ids(const char *label, const int32_t *ids, size_t n) {
    fprintf(stderr, "\n    %s:", label);
    for (size_t i = 0; i < n; i++) fprintf(stderr, " %d", ids[i]);
}

typedef struct mode {
    const char *name;
    clv_tokenize_params params;
    size_t pass, shown;
} mode;

/* Streams ids through a detokenizer; checks no chunk ends mid-sequence. */
static bool stream_decode(clv_detok *d, const int32_t *ids, size_t n, char *out, size_t cap,
                          size_t *len) {
    bool whole = true;
    size_t total = 0;
    clv_detok_reset(d);
    for (size_t i = 0; i < n; i++) {
        const char *t;
        size_t l;
        if (clv_detok_push(d, ids[i], &t, &l) != CLV_OK) return false;
        if (l && clv_utf8_incomplete_tail((const uint8_t *)t, l)) whole = false;
        if (total + l <= cap) memcpy(out + total, t, l);
        total += l;
    }
    const char *t;
    size_t l;
    clv_detok_flush(d, &t, &l);
    if (total + l <= cap) memcpy(out + total, t, l);
    total += l;
    *len = total;
    return whole;
}

/* Returns 1 when the model was tested, 0 when skipped. */
static int run_refs(const char *refs_path) {
    size_t len;
    char *data = read_file(refs_path, &len);
    CHECK_MSG(data != NULL, "cannot read %s", refs_path);
    if (!data) return 0;

    char model_file[512] = "";
    for (char *line = data; line < data + len;) {
        char *eol = strchr(line, '\n');
        if (!eol) eol = data + len;
        if (!strncmp(line, "# file: ", 8))
            snprintf(model_file, sizeof model_file, "%.*s", (int)(eol - line - 8), line + 8);
        line = eol + 1;
    }
    CHECK_MSG(model_file[0], "%s names no model file", refs_path);
    char path[4096];
    test_model_path(model_file, path, sizeof path);
    struct stat sb;
    if (!model_file[0] || stat(path, &sb) != 0) {
        printf("SKIP %s: %s is not in the model cache (scripts/get-model.sh fetches it)\n",
               refs_path, model_file);
        free(data);
        return 0;
    }

    clv_gguf *g = NULL;
    clv_tokenizer *tok = NULL;
    clv_status st = clv_gguf_open(path, NULL, &g);
    if (st == CLV_OK) st = clv_tokenizer_load_gguf(g, &tok);
    CHECK_MSG(st == CLV_OK, "%s: %s", path, clv_last_error());
    if (st != CLV_OK) {
        clv_gguf_free(g);
        free(data);
        return 1;
    }
    clv_detok *detok = NULL;
    CHECK_STATUS(clv_detok_create(tok, NULL, &detok), CLV_OK);

    mode modes[3] = {
        {"plain", {.add_special = false, .parse_special = false}, 0, 0},
        {"special", {.add_special = false, .parse_special = true}, 0, 0},
        {"full", {.add_special = true, .parse_special = true}, 0, 0},
    };
    size_t n_strings = 0, n_lossless = 0, decode_ok = 0, stream_ok = 0;
    for (char *line = data; line < data + len;) {
        char *eol = strchr(line, '\n');
        if (!eol) eol = data + len;
        *eol = '\0';
        if (line[0] == '#' || line == eol) {
            line = eol + 1;
            continue;
        }
        char *field[5] = {line, NULL, NULL, NULL, NULL};
        for (int f = 1; f < 5; f++) {
            field[f] = field[f - 1] ? strchr(field[f - 1], '\t') : NULL;
            if (field[f]) *field[f]++ = '\0';
        }
        CHECK_MSG(field[4] != NULL, "%s: malformed line", refs_path);
        if (!field[4]) break;
        bool lossless = field[4][0] == '1';
        n_lossless += lossless;
        size_t tlen = unescape(field[0], strlen(field[0]));
        const char *text = field[0];
        n_strings++;

        size_t cap = clv_tokenize_max_tokens(tlen);
        int32_t *got = malloc(cap * sizeof *got);
        int32_t *want = malloc((strlen(field[1]) + strlen(field[2]) + strlen(field[3]) + 2) *
                               sizeof *want);
        for (int m = 0; m < 3; m++) {
            size_t n_want = parse_ids(field[m + 1], strlen(field[m + 1]), want);
            size_t n = 0;
            st = clv_tokenize(tok, text, tlen, &modes[m].params, got, cap, &n);
            bool same = st == CLV_OK && n == n_want && !memcmp(got, want, n * sizeof *got);
            if (same) {
                modes[m].pass++;
            } else if (modes[m].shown++ < MAX_SHOWN) {
                fprintf(stderr, "%s [%s] ", model_file, modes[m].name);
                print_text(text, tlen);
                print_ids("hf    ", want, n_want);
                print_ids("cleave", got, n);
                fprintf(stderr, "\n");
            }
            CHECK(same);
            if (m == 0 && lossless) {
                /* The plain ids decode to the text, whole and streamed. */
                char *back = malloc(tlen + 16);
                int64_t bl = clv_detokenize(tok, want, n_want, NULL, back, tlen + 16);
                bool ok = bl == (int64_t)tlen && !memcmp(back, text, tlen);
                decode_ok += ok;
                CHECK_MSG(ok, "%s: decoding does not give back string %zu", model_file, n_strings);
                size_t sl = 0;
                bool whole = stream_decode(detok, want, n_want, back, tlen + 16, &sl);
                ok = whole && sl == tlen && !memcmp(back, text, tlen);
                stream_ok += ok;
                CHECK_MSG(ok, "%s: streamed decoding of string %zu", model_file, n_strings);
                free(back);
            }
        }
        free(got);
        free(want);
        line = eol + 1;
    }
    CHECK_MSG(n_strings >= 300, "%s: only %zu strings", refs_path, n_strings);
    printf("%s: %zu strings: plain %zu/%zu, special %zu/%zu, full %zu/%zu, decode %zu/%zu, "
           "streamed %zu/%zu\n",
           model_file, n_strings, modes[0].pass, n_strings, modes[1].pass, n_strings,
           modes[2].pass, n_strings, decode_ok, n_lossless, stream_ok, n_lossless);
    clv_detok_free(detok);
    clv_tokenizer_free(tok);
    clv_gguf_free(g);
    free(data);
    return 1;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv) {
    int tested = 0;
    if (argc > 1) {
        for (int i = 1; i < argc; i++) tested += run_refs(argv[i]);
    } else {
        char dir[4096];
        snprintf(dir, sizeof dir, "%s/tests/data", CLEAVE_SOURCE_DIR);
        DIR *d = opendir(dir);
        if (!d) TEST_SKIP("no %s", dir);
        char *names[64];
        size_t n = 0;
        struct dirent *e;
        while ((e = readdir(d)) && n < 64) {
            size_t l = strlen(e->d_name);
            if (!strncmp(e->d_name, "tokenizer_refs_", 15) && l > 4 && !strcmp(e->d_name + l - 4, ".txt")) {
                names[n] = malloc(strlen(dir) + l + 2);
                sprintf(names[n++], "%s/%s", dir, e->d_name);
            }
        }
        closedir(d);
        qsort(names, n, sizeof names[0], cmp_str);
        for (size_t i = 0; i < n; i++) {
            tested += run_refs(names[i]);
            free(names[i]);
        }
    }
    if (!tested && !test_failures) TEST_SKIP("none of the reference models is in the model cache");
    return test_finish("test_tokenizer_models");
}
