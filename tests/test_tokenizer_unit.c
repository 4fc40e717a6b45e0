/* Tokenizer pieces on small vocabularies written here: Unicode tables and
 * UTF-8, byte-level BPE merges, SentencePiece merges with byte fallback and
 * space runs, special tokens (parse_special, user-defined, BOS/EOS/EOT),
 * streaming detokenization, and clear errors for malformed vocabularies. */
#include <unistd.h>

#include "gguf_writer.h"
#include "test.h"
#include "tokenizer.h"
#include "unicode.h"

static char tmpdir[64];

/* --- Unicode ----------------------------------------------------------------- */

static void test_unicode(void) {
    static const struct {
        uint32_t cp;
        clv_ucat cat;
        bool space;
    } cases[] = {
        {'A', CLV_UCAT_LU, false},     {'a', CLV_UCAT_LL, false},      {'0', CLV_UCAT_ND, false},
        {0x00B2, CLV_UCAT_NO, false},  {0x0301, CLV_UCAT_MN, false},   {0x4E2D, CLV_UCAT_LO, false},
        {0x00A0, CLV_UCAT_ZS, true},   {'\n', CLV_UCAT_CC, true},      {0x0085, CLV_UCAT_CC, true},
        {0x2028, CLV_UCAT_ZL, true},   {0x200B, CLV_UCAT_CF, false},   {0x1F600, CLV_UCAT_SO, false},
        {0x10FFFF, CLV_UCAT_CN, false}, {0xE000, CLV_UCAT_CO, false},  {0x01C5, CLV_UCAT_LT, false},
        {0x2160, CLV_UCAT_NL, false},  {'_', CLV_UCAT_PC, false},      {'$', CLV_UCAT_SC, false},
        {0x0378, CLV_UCAT_CN, false},  {0x3000, CLV_UCAT_ZS, true},    {0x180E, CLV_UCAT_CF, false},
        {' ', CLV_UCAT_ZS, true},      {0x0664, CLV_UCAT_ND, false},   {0x20000, CLV_UCAT_LO, false},
        {0xAC00, CLV_UCAT_LO, false},  {0x02B0, CLV_UCAT_LM, false},   {0x0903, CLV_UCAT_MC, false},
        {'(', CLV_UCAT_PS, false},     {'+', CLV_UCAT_SM, false},      {'^', CLV_UCAT_SK, false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        CHECK_MSG(clv_unicode_category(cases[i].cp) == cases[i].cat, "U+%04X: category %d, want %d",
                  cases[i].cp, clv_unicode_category(cases[i].cp), cases[i].cat);
        CHECK_MSG(clv_unicode_is_space(cases[i].cp) == cases[i].space, "U+%04X: White_Space",
                  cases[i].cp);
    }
    CHECK(clv_unicode_category(CLV_UTF8_INVALID_BASE + 0xFF) == CLV_UCAT_CN);
    CHECK(clv_unicode_version[0] >= '1');

    static const struct {
        const char *s;
        uint32_t cp;
        size_t len;
    } dec[] = {
        {"A", 'A', 1},
        {"\xE2\x82\xAC", 0x20AC, 3},
        {"\xF0\x9F\x98\x80", 0x1F600, 4},
        {"\xC0\x80", CLV_UTF8_INVALID_BASE + 0xC0, 1},      /* overlong */
        {"\xED\xA0\x80", CLV_UTF8_INVALID_BASE + 0xED, 1},  /* surrogate */
        {"\xF4\x90\x80\x80", CLV_UTF8_INVALID_BASE + 0xF4, 1}, /* above U+10FFFF */
        {"\xE2\x82", CLV_UTF8_INVALID_BASE + 0xE2, 1},      /* truncated */
        {"\x80", CLV_UTF8_INVALID_BASE + 0x80, 1},          /* stray continuation */
    };
    for (size_t i = 0; i < sizeof dec / sizeof dec[0]; i++) {
        uint32_t cp;
        size_t l = clv_utf8_decode((const uint8_t *)dec[i].s, strlen(dec[i].s), &cp);
        CHECK_MSG(cp == dec[i].cp && l == dec[i].len, "decode case %zu: U+%X/%zu", i, cp, l);
        uint8_t enc[4];
        if (cp < CLV_UTF8_INVALID_BASE) {
            CHECK(clv_utf8_encode(cp, enc) == l && !memcmp(enc, dec[i].s, l));
        }
    }
    static const struct {
        const char *s;
        size_t tail;
    } tails[] = {{"a\xE2\x82", 2}, {"a\xE2", 1}, {"\xF0\x9F\x98", 3}, {"\xE2\x82\xAC", 0},
                 {"\x80", 0},      {"a\xED\xA0", 0}, {"\xC3", 1},        {"abc", 0},
                 {"\xF4\x90", 0},  {"\xF0\x9F\x98\x80", 0}};
    for (size_t i = 0; i < sizeof tails / sizeof tails[0]; i++)
        CHECK_MSG(clv_utf8_incomplete_tail((const uint8_t *)tails[i].s, strlen(tails[i].s)) ==
                      tails[i].tail,
                  "tail case %zu", i);
    CHECK(clv_utf8_valid((const uint8_t *)"h\xC3\xA9llo", 6));
    CHECK(!clv_utf8_valid((const uint8_t *)"h\xC3llo", 5));
}

/* --- writing small vocabularies ------------------------------------------------ */

typedef struct vocab {
    const char *model; /* NULL: key left out */
    const char *pre;
    const char *tokens[320];
    int32_t types[320];
    float scores[320];
    int n;
    const char *merges[32];
    int n_merges;
    bool no_merges, no_types, no_scores, scores_as_i32, types_short;
    int64_t bos, eos, unk; /* -1: left out */
    int add_bos, add_eos, add_space_prefix; /* -1: left out */
} vocab;

static int add_token(vocab *v, const char *text, int32_t type, float score) {
    v->tokens[v->n] = text;
    v->types[v->n] = type;
    v->scores[v->n] = score;
    return v->n++;
}

static void vocab_init(vocab *v, const char *model) {
    memset(v, 0, sizeof *v);
    v->model = model;
    v->bos = v->eos = v->unk = -1;
    v->add_bos = v->add_eos = v->add_space_prefix = -1;
}

static clv_status write_vocab(const char *path, const vocab *v) {
    clv_gguf_writer *w = NULL;
    clv_status st = clv_gguf_writer_open(path, NULL, &w);
    if (st) return st;
    if (v->model) st = clv_gguf_writer_set_str(w, "tokenizer.ggml.model", v->model);
    if (!st && v->pre) st = clv_gguf_writer_set_str(w, "tokenizer.ggml.pre", v->pre);
    if (!st && v->n) st = clv_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", v->tokens, (uint64_t)v->n);
    if (!st && !v->no_types)
        st = clv_gguf_writer_set_arr(w, "tokenizer.ggml.token_type", CLV_GGUF_I32, v->types,
                                     (uint64_t)(v->types_short ? v->n - 1 : v->n));
    if (!st && !v->no_scores)
        st = clv_gguf_writer_set_arr(w, "tokenizer.ggml.scores",
                                     v->scores_as_i32 ? CLV_GGUF_I32 : CLV_GGUF_F32, v->scores, (uint64_t)v->n);
    if (!st && !v->no_merges && v->model && !strcmp(v->model, "gpt2"))
        st = clv_gguf_writer_set_arr_str(w, "tokenizer.ggml.merges", v->merges, (uint64_t)v->n_merges);
    if (!st && v->bos >= 0) st = clv_gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)v->bos);
    if (!st && v->eos >= 0) st = clv_gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)v->eos);
    if (!st && v->unk >= 0) st = clv_gguf_writer_set_u32(w, "tokenizer.ggml.unknown_token_id", (uint32_t)v->unk);
    if (!st && v->add_bos >= 0) st = clv_gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", v->add_bos);
    if (!st && v->add_eos >= 0) st = clv_gguf_writer_set_bool(w, "tokenizer.ggml.add_eos_token", v->add_eos);
    if (!st && v->add_space_prefix >= 0)
        st = clv_gguf_writer_set_bool(w, "tokenizer.ggml.add_space_prefix", v->add_space_prefix);
    if (!st) st = clv_gguf_writer_begin_data(w);
    if (st) {
        clv_gguf_writer_free(w);
        return st;
    }
    return clv_gguf_writer_finish(w);
}

/* Writes, opens and loads; returns the load status. */
static clv_status load_vocab(const vocab *v, clv_gguf **g, clv_tokenizer **tok) {
    static int counter;
    char path[128];
    snprintf(path, sizeof path, "%s/vocab%d.gguf", tmpdir, counter++);
    *g = NULL;
    *tok = NULL;
    clv_status st = write_vocab(path, v);
    CHECK_MSG(st == CLV_OK, "writing %s: %s", path, clv_last_error());
    if (st) return st;
    st = clv_gguf_open(path, NULL, g);
    CHECK_MSG(st == CLV_OK, "opening %s: %s", path, clv_last_error());
    if (st) return st;
    clv_tokenizer *t = (clv_tokenizer *)1;
    st = clv_tokenizer_load_gguf(*g, &t);
    *tok = st ? NULL : t;
    CHECK_MSG(st != CLV_OK || t != NULL, "no tokenizer on success");
    CHECK_MSG(st == CLV_OK || t == NULL, "tokenizer pointer set on failure");
    return st;
}

static void expect_ids(const clv_tokenizer *tok, const char *text, bool add_special,
                       bool parse_special, const int32_t *want, size_t n_want) {
    int32_t got[256];
    size_t n = 0;
    clv_tokenize_params p = {.add_special = add_special, .parse_special = parse_special};
    clv_status st = clv_tokenize(tok, text, strlen(text), &p, got, 256, &n);
    bool same = st == CLV_OK && n == n_want && (!n || !memcmp(got, want, n * sizeof *got));
    CHECK_MSG(same, "\"%s\" (add %d, parse %d): %s", text, add_special, parse_special,
              st ? clv_last_error() : "other ids");
    if (!same && st == CLV_OK) {
        fprintf(stderr, "    got:");
        for (size_t i = 0; i < n; i++) fprintf(stderr, " %d", got[i]);
        fprintf(stderr, "\n    want:");
        for (size_t i = 0; i < n_want; i++) fprintf(stderr, " %d", want[i]);
        fprintf(stderr, "\n");
    }
}

#define EXPECT(tok, text, add, parse, ...)                                              \
    do {                                                                                \
        const int32_t want_[] = {__VA_ARGS__};                                          \
        expect_ids(tok, text, add, parse, want_, sizeof want_ / sizeof want_[0]);       \
    } while (0)

static void expect_text(const clv_tokenizer *tok, const int32_t *ids, size_t n, bool special,
                        const char *want) {
    char buf[256];
    clv_detok_params p = clv_detok_default_params();
    p.special = special;
    int64_t len = clv_detokenize(tok, ids, n, &p, buf, sizeof buf);
    CHECK_MSG(len == (int64_t)strlen(want) && !memcmp(buf, want, (size_t)len),
              "decoded \"%.*s\", want \"%s\"", (int)(len > 0 ? len : 0), buf, want);
}

/* --- byte-level BPE ------------------------------------------------------------------ */

static char byte_chars[256][4]; /* GPT-2's stand-in characters, in byte order */

static void make_byte_chars(void) {
    uint32_t next = 256;
    for (uint32_t b = 0; b < 256; b++) {
        bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
        uint32_t cp = printable ? b : next++;
        uint8_t u[4];
        size_t l = clv_utf8_encode(cp, u);
        memcpy(byte_chars[b], u, l);
        byte_chars[b][l] = '\0';
    }
}

enum { B_HE = 256, B_LL, B_HELL, B_HELLO, B_GW, B_OR, B_GWOR, B_LD, B_GWORLD, B_END, B_THINK,
       B_IMEND, B_BOS };

static void bpe_vocab(vocab *v) {
    vocab_init(v, "gpt2");
    v->pre = "gpt-2";
    v->no_scores = true;
    for (int b = 0; b < 256; b++) add_token(v, byte_chars[b], CLV_TOKEN_NORMAL, 0);
    static const char *const merged[][3] = {
        {"h", "e", "he"}, {"l", "l", "ll"}, {"he", "ll", "hell"}, {"hell", "o", "hello"},
        {"\xc4\xa0", "w", "\xc4\xa0w"}, {"o", "r", "or"}, {"\xc4\xa0w", "or", "\xc4\xa0wor"},
        {"l", "d", "ld"}, {"\xc4\xa0wor", "ld", "\xc4\xa0world"},
    };
    static char merge_text[9][32];
    for (int i = 0; i < 9; i++) {
        add_token(v, merged[i][2], CLV_TOKEN_NORMAL, 0);
        snprintf(merge_text[i], sizeof merge_text[i], "%s %s", merged[i][0], merged[i][1]);
        v->merges[v->n_merges++] = merge_text[i];
    }
    add_token(v, "<|end|>", CLV_TOKEN_CONTROL, 0);
    add_token(v, "<think>", CLV_TOKEN_USER_DEFINED, 0);
    add_token(v, "<|im_end|>", CLV_TOKEN_CONTROL, 0);
    add_token(v, "<s>", CLV_TOKEN_CONTROL, 0);
    v->bos = B_BOS;
    v->eos = B_END;
}

static void test_bpe(void) {
    vocab v;
    bpe_vocab(&v);
    v.add_bos = 1;
    clv_gguf *g;
    clv_tokenizer *tok;
    if (load_vocab(&v, &g, &tok)) return;
    CHECK(clv_tokenizer_get_kind(tok) == CLV_TOKENIZER_BPE);
    CHECK_EQ_INT(clv_tokenizer_n_vocab(tok), B_BOS + 1);
    EXPECT(tok, "hello world", false, false, B_HELLO, B_GWORLD);
    EXPECT(tok, "hello world", true, false, B_BOS, B_HELLO, B_GWORLD);
    EXPECT(tok, "hell", false, false, B_HELL);
    EXPECT(tok, "", true, false, B_BOS);
    expect_ids(tok, "", false, false, NULL, 0);

    /* Control tokens only when asked; user-defined ones always. */
    EXPECT(tok, "<|end|>", false, true, B_END);
    EXPECT(tok, "hello<think>x", false, false, B_HELLO, B_THINK, 'x');
    EXPECT(tok, "hello<think>x", false, true, B_HELLO, B_THINK, 'x');
    EXPECT(tok, "<|end|> <think>", false, true, B_END, ' ', B_THINK); /* byte b is token b */
    int32_t ids[64];
    size_t n = 0;
    clv_tokenize_params plain = {.add_special = false, .parse_special = false};
    CHECK_STATUS(clv_tokenize(tok, "<|end|>", 7, &plain, ids, 64, &n), CLV_OK);
    bool has_end = false;
    for (size_t i = 0; i < n; i++) has_end |= ids[i] == B_END;
    CHECK_MSG(!has_end && n > 1, "control text became the control token without parse_special");

    /* Too small an output: the count needed, and a status. */
    CHECK_STATUS(clv_tokenize(tok, "hello world", 11, &plain, ids, 1, &n), CLV_ERR_RANGE);
    CHECK_EQ_INT(n, 2);
    CHECK_EQ_INT(ids[0], B_HELLO);

    /* Ids of the special tokens, and the guessed end of turn. */
    CHECK_EQ_INT(clv_tokenizer_bos(tok), B_BOS);
    CHECK_EQ_INT(clv_tokenizer_eos(tok), B_END);
    CHECK_EQ_INT(clv_tokenizer_eot(tok), B_IMEND);
    CHECK(clv_tokenizer_is_eog(tok, B_END) && clv_tokenizer_is_eog(tok, B_IMEND));
    CHECK(!clv_tokenizer_is_eog(tok, B_HELLO));
    CHECK(clv_tokenizer_add_bos(tok) && !clv_tokenizer_add_eos(tok));
    CHECK_EQ_INT(clv_tokenizer_find(tok, "hello", 5), B_HELLO);
    CHECK_EQ_INT(clv_tokenizer_find(tok, "nope", 4), -1);
    CHECK(clv_token_get_type(tok, B_END) == CLV_TOKEN_CONTROL);
    CHECK(clv_token_get_type(tok, -1) == CLV_TOKEN_UNDEFINED);

    /* Decoding: stand-ins back to bytes, control text only when asked. */
    const int32_t seq[] = {B_BOS, B_HELLO, B_GWORLD, B_END};
    expect_text(tok, seq, 4, false, "hello world");
    expect_text(tok, seq, 4, true, "<s>hello world<|end|>");
    char piece[16];
    CHECK_EQ_INT(clv_token_to_piece(tok, B_GWORLD, false, piece, sizeof piece), 6);
    CHECK(!memcmp(piece, " world", 6));
    CHECK_EQ_INT(clv_token_to_piece(tok, B_END, false, piece, sizeof piece), 0);
    CHECK_EQ_INT(clv_token_to_piece(tok, 99999, false, piece, sizeof piece), -1);
    CHECK_EQ_INT(clv_detokenize(tok, (const int32_t[]){99999}, 1, NULL, piece, sizeof piece), -1);
    clv_tokenizer_free(tok);
    clv_gguf_free(g);

    /* add_eos, and no add_bos. */
    bpe_vocab(&v);
    v.add_bos = 0;
    v.add_eos = 1;
    if (load_vocab(&v, &g, &tok)) return;
    EXPECT(tok, "hell", true, false, B_HELL, B_END);
    clv_tokenizer_free(tok);
    clv_gguf_free(g);
}

/* --- SentencePiece -------------------------------------------------------------------- */

enum { S_UNK = 0, S_BOS, S_EOS, S_BYTE0 = 3, S_MARK = 259, S_A, S_B, S_AB, S_MARK_AB, S_MARK_A,
       S_SPACES2, S_SPECIAL };

static void spm_vocab(vocab *v, bool with_bytes) {
    static char names[256][16];
    vocab_init(v, "llama");
    add_token(v, "<unk>", CLV_TOKEN_UNKNOWN, 0);
    add_token(v, "<s>", CLV_TOKEN_CONTROL, 0);
    add_token(v, "</s>", CLV_TOKEN_CONTROL, 0);
    for (int b = 0; b < 256; b++) {
        snprintf(names[b], sizeof names[b], with_bytes ? "<0x%02X>" : "<unused%d>", b);
        add_token(v, names[b], with_bytes ? CLV_TOKEN_BYTE : CLV_TOKEN_UNUSED, 0);
    }
    add_token(v, "\xe2\x96\x81", CLV_TOKEN_NORMAL, -10);
    add_token(v, "a", CLV_TOKEN_NORMAL, -10);
    add_token(v, "b", CLV_TOKEN_NORMAL, -10);
    add_token(v, "ab", CLV_TOKEN_NORMAL, -1);
    add_token(v, "\xe2\x96\x81" "ab", CLV_TOKEN_NORMAL, -0.5f);
    add_token(v, "\xe2\x96\x81" "a", CLV_TOKEN_NORMAL, -2);
    add_token(v, "  ", CLV_TOKEN_USER_DEFINED, -1000); /* a space run, as Gemma has */
    add_token(v, "<mark>", CLV_TOKEN_USER_DEFINED, 0);
    v->bos = S_BOS;
    v->eos = S_EOS;
    v->unk = S_UNK;
}

static void test_spm(void) {
    vocab v;
    spm_vocab(&v, true);
    clv_gguf *g;
    clv_tokenizer *tok;
    if (load_vocab(&v, &g, &tok)) return;
    CHECK(clv_tokenizer_get_kind(tok) == CLV_TOKENIZER_SPM);
    CHECK(clv_tokenizer_add_bos(tok)); /* the SentencePiece default */
    /* "ab" -> "\u2581ab": ab (-1) merges before \u2581a (-2), then \u2581ab. */
    EXPECT(tok, "ab", false, false, S_MARK_AB);
    EXPECT(tok, "ab", true, false, S_BOS, S_MARK_AB);
    EXPECT(tok, "", true, false, S_BOS);
    /* Byte fallback for what the vocabulary lacks. */
    EXPECT(tok, "\xc3\xa9", false, false, S_MARK, S_BYTE0 + 0xC3, S_BYTE0 + 0xA9);
    EXPECT(tok, "\xff", false, false, S_MARK, S_BYTE0 + 0xFF); /* invalid UTF-8 too */
    /* The space-run token merges from U+2581s. */
    EXPECT(tok, "a  b", false, false, S_MARK_A, S_SPACES2, S_B);
    /* User-defined tokens are always whole; the text after one gets a prefix. */
    EXPECT(tok, "a<mark>b", false, false, S_MARK_A, S_SPECIAL, S_MARK, S_B);
    EXPECT(tok, "<s>a", false, true, S_BOS, S_MARK_A);
    int32_t ids[64];
    size_t n = 0;
    clv_tokenize_params plain = {.add_special = false, .parse_special = false};
    CHECK_STATUS(clv_tokenize(tok, "<s>", 3, &plain, ids, 64, &n), CLV_OK);
    for (size_t i = 0; i < n; i++) CHECK(ids[i] != S_BOS);

    const int32_t seq[] = {S_BOS, S_MARK_A, S_SPACES2, S_B, S_BYTE0 + 0xC3, S_BYTE0 + 0xA9};
    expect_text(tok, seq, 6, false, "a  b\xc3\xa9");
    expect_text(tok, seq, 6, true, "<s> a  b\xc3\xa9");

    /* Streaming: an unfinished UTF-8 sequence waits for the rest. */
    clv_detok *d = NULL;
    CHECK_STATUS(clv_detok_create(tok, NULL, &d), CLV_OK);
    const char *t;
    size_t l;
    CHECK_STATUS(clv_detok_push(d, S_MARK_A, &t, &l), CLV_OK);
    CHECK(l == 1 && t[0] == 'a'); /* the prefix space dropped */
    CHECK_STATUS(clv_detok_push(d, S_BYTE0 + 0xC3, &t, &l), CLV_OK);
    CHECK_EQ_INT(l, 0);
    CHECK_STATUS(clv_detok_push(d, S_BYTE0 + 0xA9, &t, &l), CLV_OK);
    CHECK(l == 2 && !memcmp(t, "\xc3\xa9", 2));
    CHECK_STATUS(clv_detok_push(d, S_BYTE0 + 0xE2, &t, &l), CLV_OK);
    CHECK_EQ_INT(l, 0);
    clv_detok_flush(d, &t, &l);
    CHECK(l == 1 && (uint8_t)t[0] == 0xE2);
    CHECK_STATUS(clv_detok_push(d, 99999, &t, &l), CLV_ERR_RANGE);
    clv_detok_reset(d);
    CHECK_STATUS(clv_detok_push(d, S_MARK_AB, &t, &l), CLV_OK);
    CHECK(l == 2 && !memcmp(t, "ab", 2));
    clv_detok_free(d);
    clv_detok_free(NULL);
    clv_tokenizer_free(tok);
    clv_gguf_free(g);

    /* No byte tokens: the unknown token stands in. No space prefix asked. */
    spm_vocab(&v, false);
    v.add_space_prefix = 0;
    if (load_vocab(&v, &g, &tok)) return;
    EXPECT(tok, "ab", false, false, S_AB);
    EXPECT(tok, "a\xc3\xa9", false, false, S_A, S_UNK);
    clv_tokenizer_free(tok);
    clv_gguf_free(g);
    clv_tokenizer_free(NULL);
}

/* --- malformed vocabularies -------------------------------------------------------------- */

static void expect_error(const vocab *v, clv_status want, const char *needle, const char *what) {
    clv_gguf *g;
    clv_tokenizer *tok;
    clv_status st = load_vocab(v, &g, &tok);
    CHECK_MSG(st == want, "%s: got %s (%s), want %s", what, clv_status_str(st), clv_last_error(),
              clv_status_str(want));
    CHECK_MSG(strstr(clv_last_error(), needle), "%s: message \"%s\" lacks \"%s\"", what,
              clv_last_error(), needle);
    clv_tokenizer_free(tok);
    clv_gguf_free(g);
}

static void test_malformed(void) {
    vocab v;
    bpe_vocab(&v);
    v.no_merges = true;
    expect_error(&v, CLV_ERR_FORMAT, "tokenizer.ggml.merges is missing", "no merges");

    bpe_vocab(&v);
    v.bos = 99999;
    expect_error(&v, CLV_ERR_FORMAT, "bos_token_id = 99999 is out of range", "bos out of range");

    bpe_vocab(&v);
    v.tokens[B_HE] = "h\xff";
    expect_error(&v, CLV_ERR_FORMAT, "token 256 of tokenizer.ggml.tokens is not valid UTF-8", "bad UTF-8");

    bpe_vocab(&v);
    v.merges[0] = "h zz";
    expect_error(&v, CLV_ERR_FORMAT, "merge 0 ('h zz')", "merge of an unknown token");

    bpe_vocab(&v);
    v.merges[1] = "ll";
    expect_error(&v, CLV_ERR_FORMAT, "not two tokens separated by a space", "merge without a space");

    bpe_vocab(&v);
    v.merges[2] = "w d";
    expect_error(&v, CLV_ERR_FORMAT, "the merged token is not in the vocabulary", "merge result missing");

    bpe_vocab(&v);
    v.pre = "mystery-pre";
    expect_error(&v, CLV_ERR_UNSUPPORTED, "unknown pre-tokenizer 'mystery-pre'", "unknown pre-tokenizer");

    bpe_vocab(&v);
    v.model = "bert";
    expect_error(&v, CLV_ERR_UNSUPPORTED, "tokenizer model 'bert' is not supported", "unknown model");

    bpe_vocab(&v);
    v.model = NULL;
    expect_error(&v, CLV_ERR_NOT_FOUND, "tokenizer.ggml.model is missing", "no model");

    bpe_vocab(&v);
    v.types_short = true;
    expect_error(&v, CLV_ERR_FORMAT, "token_type has", "short token types");

    bpe_vocab(&v);
    v.types[5] = 9;
    expect_error(&v, CLV_ERR_FORMAT, "token 5 has type 9", "bad token type");

    spm_vocab(&v, true);
    v.scores_as_i32 = true;
    expect_error(&v, CLV_ERR_TYPE, "tokenizer.ggml.scores", "integer scores");

    spm_vocab(&v, true);
    v.n = 0;
    v.no_types = v.no_scores = true;
    expect_error(&v, CLV_ERR_NOT_FOUND, "tokenizer.ggml.tokens is missing", "no tokens");

    spm_vocab(&v, true);
    v.eos = 400;
    expect_error(&v, CLV_ERR_FORMAT, "eos_token_id = 400 is out of range", "eos out of range");
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/clv-tokenizer-XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    make_byte_chars();
    test_unicode();
    test_bpe();
    test_spm();
    test_malformed();
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    return test_finish("test_tokenizer_unit");
}
