/* Random input for every vocabulary at hand (the fixture vocabularies and the
 * cached real models): random bytes, random text of many scripts, and pieces
 * of the vocabulary's own special tokens. Nothing may crash or fail; every id
 * must be in range; control tokens must never come from text unless asked
 * (parse_special); decoding must give the text back where the vocabulary
 * allows: no user-defined token in the ids (they decode to their own text; in
 * SentencePiece the text after one gets a space prefix), byte-level BPE text
 * of bytes the vocabulary can spell (many lack some, e.g. those UTF-8 never
 * uses), SentencePiece text without U+2581 (it decodes as a space); streamed
 * decoding of random ids must equal whole decoding.
 *
 *   test_tokenizer_random [SEED] [ROUNDS]                         */
#include <dirent.h>
#include <sys/stat.h>

#include "test.h"
#include "tokenizer.h"
#include "unicode.h"

static uint64_t rng_state;

static uint64_t rnd(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static uint32_t rnd_below(uint32_t n) { return (uint32_t)(rnd() % n); }

/* Code points of many kinds, the splits and merges treat differently. */
static const uint32_t pool[] = {
    'a', 'b', 'e', 'o', 't', 'A', 'Z', 'x', '0', '1', '7', '9', ' ', ' ', ' ', '\t', '\n', '\r',
    '.', ',', '!', '?', '\'', '"', '-', '_', '<', '>', '|', '/', '\\', '$', '+', '=', '^', '~',
    '`', '(', ')', '[', ']', '{', '}', '#', '@', '%', '&', '*', ':', ';', 0x00, 0x01, 0x1B, 0x7F,
    0x00A0, 0x00AD, 0x00E9, 0x00C4, 0x00DF, 0x00B2, 0x00BD, 0x0301, 0x0308, 0x0391, 0x03C9,
    0x0416, 0x0436, 0x05D0, 0x0627, 0x0664, 0x0915, 0x094D, 0x0E01, 0x1100, 0x1E9E, 0x2003,
    0x200B, 0x200D, 0x2018, 0x2019, 0x201C, 0x2026, 0x2028, 0x20AC, 0x2160, 0x2581, 0x3000,
    0x3002, 0x3042, 0x30A2, 0x4E00, 0x4E2D, 0x6587, 0x9FA5, 0xAC00, 0xD7A3, 0xE000, 0xFB01,
    0xFEFF, 0xFF01, 0xFF21, 0xFFFD, 0x1D11E, 0x1F1EB, 0x1F600, 0x1F44D, 0x1F3FD, 0x20000,
    0x10FFFF,
};

typedef struct buf {
    char *data;
    size_t n, cap;
} buf;

static void put(buf *b, const void *p, size_t n) {
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->data = realloc(b->data, b->cap);
    }
    memcpy(b->data + b->n, p, n);
    b->n += n;
}

/* Text of a vocabulary's control and user-defined tokens, to mix in. */
static void special_piece(const clv_tokenizer *tok, buf *b) {
    int32_t n = clv_tokenizer_n_vocab(tok);
    for (int tries = 0; tries < 64; tries++) {
        int32_t id = (int32_t)rnd_below((uint32_t)n);
        clv_token_type t = clv_token_get_type(tok, id);
        if (tries < 63 && t != CLV_TOKEN_CONTROL && t != CLV_TOKEN_USER_DEFINED &&
            t != CLV_TOKEN_UNKNOWN)
            continue;
        size_t len;
        const char *s = clv_token_text(tok, id, &len);
        if (rnd_below(4) == 0 && len > 1) len = 1 + rnd_below((uint32_t)len - 1); /* a part */
        put(b, s, len);
        return;
    }
}

static void random_text(const clv_tokenizer *tok, buf *b, size_t max_len) {
    b->n = 0;
    size_t len = rnd_below((uint32_t)max_len + 1);
    int style = (int)rnd_below(4);
    while (b->n < len) {
        uint32_t r = rnd_below(100);
        if (style == 0 || r < 5) { /* raw bytes, valid or not */
            uint8_t c = (uint8_t)rnd();
            put(b, &c, 1);
        } else if (r < 12) {
            special_piece(tok, b);
        } else if (r < 20) { /* a run */
            uint32_t cp = pool[rnd_below(sizeof pool / sizeof pool[0])];
            uint8_t u[4];
            size_t l = clv_utf8_encode(cp, u);
            for (uint32_t k = rnd_below(40); k-- > 0;) put(b, u, l);
        } else {
            uint32_t cp = pool[rnd_below(sizeof pool / sizeof pool[0])];
            uint8_t u[4];
            put(b, u, clv_utf8_encode(cp, u));
        }
    }
}

/* Which bytes a byte-level vocabulary can spell (GPT-2's stand-ins). */
static bool byte_ok[256];

static void find_byte_tokens(const clv_tokenizer *tok) {
    uint32_t next = 256;
    for (uint32_t b = 0; b < 256; b++) {
        bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
        uint8_t u[4];
        size_t l = clv_utf8_encode(printable ? b : next++, u);
        byte_ok[b] = clv_tokenizer_find(tok, (const char *)u, l) >= 0;
    }
}

static bool spellable(const buf *text) {
    for (size_t i = 0; i < text->n; i++)
        if (!byte_ok[(uint8_t)text->data[i]]) return false;
    return true;
}

typedef struct stats {
    size_t inputs, tokens, round_trips, round_trip_checked;
} stats;

static void check_text(const clv_tokenizer *tok, const char *name, const buf *text, bool add,
                       bool parse, stats *s) {
    size_t cap = clv_tokenize_max_tokens(text->n), n = 0;
    int32_t *ids = malloc(cap * sizeof *ids);
    clv_tokenize_params p = {.add_special = add, .parse_special = parse};
    clv_status st = clv_tokenize(tok, text->data, text->n, &p, ids, cap, &n);
    CHECK_MSG(st == CLV_OK, "%s: %s", name, clv_last_error());
    CHECK_MSG(n <= cap, "%s: %zu ids, more than the bound %zu", name, n, cap);
    s->inputs++;
    s->tokens += n;
    int32_t n_vocab = clv_tokenizer_n_vocab(tok);
    bool spm = clv_tokenizer_get_kind(tok) == CLV_TOKENIZER_SPM, user_defined = false;
    for (size_t i = 0; i < n && i < cap; i++) {
        CHECK_MSG(ids[i] >= 0 && ids[i] < n_vocab, "%s: id %d out of range", name, ids[i]);
        clv_token_type t = clv_token_get_type(tok, ids[i]);
        user_defined |= t == CLV_TOKEN_USER_DEFINED;
        bool added = add && ((i == 0 && ids[i] == clv_tokenizer_bos(tok)) ||
                             (i + 1 == n && ids[i] == clv_tokenizer_eos(tok)));
        /* SentencePiece's unknown token is its answer for unspellable text. */
        added |= spm && ids[i] == clv_tokenizer_unk(tok);
        if (!parse && !added)
            CHECK_MSG(t != CLV_TOKEN_CONTROL && t != CLV_TOKEN_UNKNOWN,
                      "%s: control token %d made from plain text", name, ids[i]);
    }
    bool lossless = !user_defined && (spm ? !memmem(text->data, text->n, "\xe2\x96\x81", 3)
                                          : spellable(text));
    if (!parse && st == CLV_OK && lossless) {
        s->round_trip_checked++;
        char *back = malloc(text->n + 64);
        int64_t bl = clv_detokenize(tok, ids, n, NULL, back, text->n + 64);
        bool same = bl == (int64_t)text->n && !memcmp(back, text->data, text->n);
        s->round_trips += same;
        CHECK_MSG(same, "%s: decoding %zu bytes gave %lld other bytes", name, text->n, (long long)bl);
        if (!same && getenv("DEBUG_RT")) {
            for (size_t i = 0; i < text->n; i++) fprintf(stderr, "%02x", (uint8_t)text->data[i]);
            fprintf(stderr, "\n");
            for (int64_t i = 0; i < bl; i++) fprintf(stderr, "%02x", (uint8_t)back[i]);
            fprintf(stderr, "\nids:");
            for (size_t i = 0; i < n; i++) fprintf(stderr, " %d", ids[i]);
            fprintf(stderr, "\n");
            exit(1);
        }
        free(back);
    }
    free(ids);
}

/* Random ids, streamed and whole, with and without special text. */
static void check_stream(const clv_tokenizer *tok, const char *name) {
    int32_t ids[64];
    uint32_t n_vocab = (uint32_t)clv_tokenizer_n_vocab(tok);
    for (int round = 0; round < 50; round++) {
        size_t n = 1 + rnd_below(64);
        for (size_t i = 0; i < n; i++) ids[i] = (int32_t)rnd_below(n_vocab);
        clv_detok_params p = clv_detok_default_params();
        p.special = rnd_below(2);
        size_t cap = n * (clv_tokenizer_max_piece(tok) + 1);
        char *whole = malloc(cap), *streamed = malloc(cap);
        int64_t wl = clv_detokenize(tok, ids, n, &p, whole, cap);
        clv_detok *d = NULL;
        CHECK_STATUS(clv_detok_create(tok, &p, &d), CLV_OK);
        size_t sl = 0;
        for (size_t i = 0; i < n; i++) {
            const char *t;
            size_t l;
            CHECK_STATUS(clv_detok_push(d, ids[i], &t, &l), CLV_OK);
            CHECK_MSG(!l || !clv_utf8_incomplete_tail((const uint8_t *)t, l),
                      "%s: a chunk ends inside a UTF-8 sequence", name);
            memcpy(streamed + sl, t, l);
            sl += l;
        }
        const char *t;
        size_t l;
        clv_detok_flush(d, &t, &l);
        memcpy(streamed + sl, t, l);
        sl += l;
        CHECK_MSG(wl == (int64_t)sl && !memcmp(whole, streamed, sl), "%s: streamed decoding differs",
                  name);
        clv_detok_free(d);
        free(whole);
        free(streamed);
    }
}

static void run_vocab(const char *path, int rounds) {
    clv_gguf *g = NULL;
    clv_tokenizer *tok = NULL;
    clv_gguf_params gp = clv_gguf_default_params();
    gp.use_mmap = false;
    clv_status st = clv_gguf_open(path, &gp, &g);
    if (st == CLV_OK) st = clv_tokenizer_load_gguf(g, &tok);
    CHECK_MSG(st == CLV_OK, "%s: %s", path, clv_last_error());
    if (st) {
        clv_gguf_free(g);
        return;
    }
    const char *name = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    stats s = {0};
    buf text = {0};
    find_byte_tokens(tok);
    for (int r = 0; r < rounds; r++) {
        random_text(tok, &text, r % 50 == 49 ? 20000 : 300);
        bool add = rnd_below(2);
        check_text(tok, name, &text, add, false, &s);
        check_text(tok, name, &text, add, true, &s);
    }
    check_stream(tok, name);
    printf("%-36s %zu inputs, %zu tokens, decoded back %zu/%zu\n", name, s.inputs, s.tokens,
           s.round_trips, s.round_trip_checked);
    free(text.data);
    clv_tokenizer_free(tok);
    clv_gguf_free(g);
}

int main(int argc, char **argv) {
    uint64_t seed = argc > 1 ? strtoull(argv[1], NULL, 0) : 0x5EED;
    int rounds = argc > 2 ? atoi(argv[2]) : 400;
    rng_state = seed ? seed : 1;
    printf("seed %llu, %d rounds per vocabulary\n", (unsigned long long)seed, rounds);

    char paths[32][4200];
    int n = 0;
    const char *fx = test_fixtures_dir();
    char dir[4100];
    snprintf(dir, sizeof dir, "%.4000s/vocab", fx ? fx : ".");
    DIR *d = fx ? opendir(dir) : NULL;
    for (struct dirent *e; d && (e = readdir(d)) && n < 30;) {
        size_t l = strlen(e->d_name);
        if (l > 5 && !strcmp(e->d_name + l - 5, ".gguf"))
            snprintf(paths[n++], sizeof paths[0], "%s/%s", dir, e->d_name);
    }
    if (d) closedir(d);
    static const char *models[] = {"SmolLM2-135M-Instruct.Q4_1.gguf", "gemma-3-270m-q4_k_m.gguf"};
    for (size_t i = 0; i < 2; i++) {
        struct stat sb;
        test_model_path(models[i], paths[n], sizeof paths[0]);
        if (stat(paths[n], &sb) == 0) n++;
    }
    if (n == 0) TEST_SKIP("no vocabulary fixtures and no cached models");
    const char *only = getenv("CLEAVE_TEST_ONLY"); /* a part of a file name, for debugging */
    for (int i = 0; i < n; i++)
        if (!only || strstr(paths[i], only)) run_vocab(paths[i], rounds);
    return test_finish("test_tokenizer_random");
}
