/* libFuzzer target for the tokenizer (built with clang, see tests/CMakeLists.txt):
 * the input's first byte picks a vocabulary and the options, the rest is the
 * text. Vocabularies: every ggml-vocab-*.gguf in $CLEAVE_FIXTURES/vocab (or
 * the shared fixtures beside the source tree) and the GGUF files named in
 * $CLEAVE_FUZZ_VOCABS (colon-separated). Checks: no crash, ids in range,
 * control tokens only with parse_special, streamed decoding equals whole. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer.h"
#include "unicode.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_VOCABS 16

static clv_tokenizer *vocabs[MAX_VOCABS];
static clv_gguf *files[MAX_VOCABS];
static int n_vocabs = -1;

static void add_vocab(const char *path) {
    if (n_vocabs >= MAX_VOCABS) return;
    clv_gguf_params gp = clv_gguf_default_params();
    gp.use_mmap = false;
    clv_gguf *g = NULL;
    clv_tokenizer *tok = NULL;
    if (clv_gguf_open(path, &gp, &g) || clv_tokenizer_load_gguf(g, &tok)) {
        fprintf(stderr, "fuzz_tokenizer: %s\n", clv_last_error());
        clv_gguf_free(g);
        return;
    }
    files[n_vocabs] = g;
    vocabs[n_vocabs++] = tok;
}

static void load_vocabs(void) {
    n_vocabs = 0;
    char dir[4096];
    const char *fx = getenv("CLEAVE_FIXTURES");
    if (fx && *fx) snprintf(dir, sizeof dir, "%.4000s/vocab", fx);
    else snprintf(dir, sizeof dir, "%s/../shared/fixtures/vocab", CLEAVE_SOURCE_DIR);
    DIR *d = opendir(dir);
    for (struct dirent *e; d && (e = readdir(d));) {
        size_t l = strlen(e->d_name);
        if (l > 5 && !strcmp(e->d_name + l - 5, ".gguf")) {
            char path[4400];
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            add_vocab(path);
        }
    }
    if (d) closedir(d);
    const char *extra = getenv("CLEAVE_FUZZ_VOCABS");
    if (extra) {
        char *list = strdup(extra);
        for (char *p = strtok(list, ":"); p; p = strtok(NULL, ":")) add_vocab(p);
        free(list);
    }
    fprintf(stderr, "fuzz_tokenizer: %d vocabularies\n", n_vocabs);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (n_vocabs < 0) load_vocabs();
    if (n_vocabs == 0 || size == 0) return 0;
    clv_tokenizer *tok = vocabs[data[0] % n_vocabs];
    clv_tokenize_params p = {.add_special = (data[0] >> 4) & 1, .parse_special = (data[0] >> 5) & 1};
    const char *text = (const char *)data + 1;
    size_t len = size - 1;

    size_t cap = clv_tokenize_max_tokens(len), n = 0;
    int32_t *ids = malloc(cap * sizeof *ids);
    if (clv_tokenize(tok, text, len, &p, ids, cap, &n) != CLV_OK || n > cap) __builtin_trap();
    int32_t n_vocab = clv_tokenizer_n_vocab(tok);
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= n_vocab) __builtin_trap();
        clv_token_type t = clv_token_get_type(tok, ids[i]);
        bool added = p.add_special && ((i == 0 && ids[i] == clv_tokenizer_bos(tok)) ||
                                       (i + 1 == n && ids[i] == clv_tokenizer_eos(tok)));
        if (!p.parse_special && !added && t == CLV_TOKEN_CONTROL && ids[i] != clv_tokenizer_unk(tok))
            __builtin_trap();
    }

    /* Whole and streamed decoding agree. */
    clv_detok_params dp = clv_detok_default_params();
    dp.special = (data[0] >> 6) & 1;
    size_t out_cap = n * (clv_tokenizer_max_piece(tok) + 1) + 1;
    char *whole = malloc(out_cap), *streamed = malloc(out_cap);
    int64_t wl = clv_detokenize(tok, ids, n, &dp, whole, out_cap);
    clv_detok *d = NULL;
    if (clv_detok_create(tok, &dp, &d)) __builtin_trap();
    size_t sl = 0;
    for (size_t i = 0; i < n; i++) {
        const char *t;
        size_t l;
        if (clv_detok_push(d, ids[i], &t, &l)) __builtin_trap();
        memcpy(streamed + sl, t, l);
        sl += l;
    }
    const char *t;
    size_t l;
    clv_detok_flush(d, &t, &l);
    memcpy(streamed + sl, t, l);
    sl += l;
    if (wl != (int64_t)sl || memcmp(whole, streamed, sl)) __builtin_trap();
    clv_detok_free(d);
    free(whole);
    free(streamed);
    free(ids);
    return 0;
}
