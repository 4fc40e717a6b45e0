/* Tokenizer: loading the vocabulary from GGUF metadata, special tokens,
 * the public encode entry point, and decoding back to text. The two merge
 * algorithms live in tokenizer_spm.c and tokenizer_bpe.c. */
#include "tokenizer_impl.h"

#include <stdlib.h>
#include <string.h>

#include "unicode.h"

#define SPACE_MARK "\xe2\x96\x81" /* U+2581, SentencePiece's stand-in for a space */
#define SPACE_MARK_LEN 3

/* Merged before any scored piece, shorter runs first (see load_spm_space_runs). */
#define SPACE_RUN_SCORE 1.0e6f

clv_status tok_ids_push(tok_ids *v, int32_t id) {
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 256;
        int32_t *d = realloc(v->data, cap * sizeof *d);
        if (!d) return clv_fail(CLV_ERR_NOMEM, "out of memory tokenizing");
        v->data = d;
        v->cap = cap;
    }
    v->data[v->n++] = id;
    return CLV_OK;
}

uint64_t tok_hash(const void *data, size_t len) {
    const uint8_t *p = data;
    uint64_t h = 0x9E3779B97F4A7C15ull ^ (len * 0xff51afd7ed558ccdull);
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = (h ^ w) * 0xbf58476d1ce4e5b9ull;
        h ^= h >> 31;
        p += 8;
        len -= 8;
    }
    uint64_t w = 0;
    memcpy(&w, p, len);
    h = (h ^ w) * 0x94d049bb133111ebull;
    h ^= h >> 29;
    h *= 0xbf58476d1ce4e5b9ull;
    return h ^ (h >> 32);
}

/* --- the text -> id table ------------------------------------------------ */

static inline const char *token_text(const clv_tokenizer *tok, int32_t id, size_t *len) {
    *len = tok->text_off[id + 1] - tok->text_off[id] - 1;
    return tok->text + tok->text_off[id];
}

static bool key_equals(const clv_tokenizer *tok, int32_t id, const char *s, size_t len) {
    size_t tlen;
    const char *t = token_text(tok, id, &tlen);
    if (tok->flags[id] & TOK_SPACE_RUN) {
        if (len != tlen * SPACE_MARK_LEN) return false;
        for (size_t i = 0; i < len; i += SPACE_MARK_LEN)
            if (memcmp(s + i, SPACE_MARK, SPACE_MARK_LEN)) return false;
        return true;
    }
    return len == tlen && !memcmp(s, t, len);
}

int32_t tok_lookup(const clv_tokenizer *tok, const char *s, size_t len) {
    uint64_t i = tok_hash(s, len) & tok->slot_mask;
    for (;;) {
        int32_t id = tok->slots[i];
        if (id < 0) return -1;
        if (key_equals(tok, id, s, len)) return id;
        i = (i + 1) & tok->slot_mask;
    }
}

static clv_status build_lookup(clv_tokenizer *tok) {
    uint64_t cap = 16;
    while (cap < (uint64_t)tok->n_vocab * 2) cap *= 2;
    tok->slots = malloc(cap * sizeof *tok->slots);
    if (!tok->slots) return clv_fail(CLV_ERR_NOMEM, "out of memory for the vocabulary table");
    memset(tok->slots, 0xff, cap * sizeof *tok->slots);
    tok->slot_mask = cap - 1;
    char run[64 * SPACE_MARK_LEN];
    for (int32_t id = 0; id < tok->n_vocab; id++) {
        size_t len;
        const char *s = token_text(tok, id, &len);
        if (len == 0) continue;
        if (tok->flags[id] & TOK_SPACE_RUN) {
            for (size_t i = 0; i < len; i++) memcpy(run + i * SPACE_MARK_LEN, SPACE_MARK, SPACE_MARK_LEN);
            s = run;
            len *= SPACE_MARK_LEN;
        }
        uint64_t i = tok_hash(s, len) & tok->slot_mask;
        /* A spelling given twice maps to its last id, as in other tokenizers. */
        while (tok->slots[i] >= 0 && !key_equals(tok, tok->slots[i], s, len))
            i = (i + 1) & tok->slot_mask;
        tok->slots[i] = id;
    }
    return CLV_OK;
}

/* --- metadata helpers ------------------------------------------------------- */

static clv_status read_optional_id(const clv_gguf *g, const char *key, int32_t n_vocab,
                                   int32_t *out) {
    *out = -1;
    int64_t v;
    clv_status st = clv_gguf_get_i64(g, key, &v);
    if (st == CLV_ERR_NOT_FOUND) {
        clv_clear_error();
        return CLV_OK;
    }
    if (st != CLV_OK) return st;
    if (v < 0 || v >= n_vocab)
        return clv_fail(CLV_ERR_FORMAT, "%s: %s = %lld is out of range (the vocabulary has %d tokens)",
                        clv_gguf_path(g), key, (long long)v, n_vocab);
    *out = (int32_t)v;
    return CLV_OK;
}

static clv_status read_optional_bool(const clv_gguf *g, const char *key, bool *inout) {
    bool v;
    clv_status st = clv_gguf_get_bool(g, key, &v);
    if (st == CLV_ERR_NOT_FOUND) {
        clv_clear_error();
        return CLV_OK;
    }
    if (st != CLV_OK) return st;
    *inout = v;
    return CLV_OK;
}

/* Element i of a numeric array as int64 (any integer element type). */
static bool arr_int(const clv_gguf_value *v, uint64_t i, int64_t *out) {
    const uint8_t *d = v->v.arr.data;
    switch (v->v.arr.elem_type) {
    case CLV_GGUF_U8: *out = d[i]; return true;
    case CLV_GGUF_I8: *out = (int8_t)d[i]; return true;
    case CLV_GGUF_U16: { uint16_t x; memcpy(&x, d + 2 * i, 2); *out = x; return true; }
    case CLV_GGUF_I16: { int16_t x; memcpy(&x, d + 2 * i, 2); *out = x; return true; }
    case CLV_GGUF_U32: { uint32_t x; memcpy(&x, d + 4 * i, 4); *out = x; return true; }
    case CLV_GGUF_I32: { int32_t x; memcpy(&x, d + 4 * i, 4); *out = x; return true; }
    case CLV_GGUF_I64: { int64_t x; memcpy(&x, d + 8 * i, 8); *out = x; return true; }
    case CLV_GGUF_U64: { uint64_t x; memcpy(&x, d + 8 * i, 8); *out = x > INT64_MAX ? -1 : (int64_t)x; return true; }
    default: return false;
    }
}

/* An optional array that, when present, must have one element per token. */
static clv_status get_token_array(const clv_gguf *g, const char *key, int32_t n_vocab,
                                  const clv_gguf_value **out) {
    *out = NULL;
    clv_status st = clv_gguf_get_arr(g, key, -1, out);
    if (st == CLV_ERR_NOT_FOUND) {
        clv_clear_error();
        *out = NULL;
        return CLV_OK;
    }
    if (st != CLV_OK) return st;
    if ((*out)->v.arr.count != (uint64_t)n_vocab)
        return clv_fail(CLV_ERR_FORMAT, "%s: %s has %llu entries but there are %d tokens",
                        clv_gguf_path(g), key, (unsigned long long)(*out)->v.arr.count, n_vocab);
    return CLV_OK;
}

/* --- loading -------------------------------------------------------------------- */

static clv_status load_tokens(clv_tokenizer *tok, const clv_gguf *g) {
    const char *path = clv_gguf_path(g);
    const clv_gguf_value *tokens;
    clv_status st = clv_gguf_get_arr(g, "tokenizer.ggml.tokens", CLV_GGUF_STRING, &tokens);
    if (st == CLV_ERR_NOT_FOUND)
        return clv_fail(st, "%s: tokenizer.ggml.tokens is missing", path);
    if (st != CLV_OK) return st;
    uint64_t n = tokens->v.arr.count;
    if (n == 0 || n > (1u << 30))
        return clv_fail(CLV_ERR_FORMAT, "%s: tokenizer.ggml.tokens has %llu tokens", path,
                        (unsigned long long)n);
    tok->n_vocab = (int32_t)n;

    uint64_t total = 0;
    for (uint64_t i = 0; i < n; i++) total += tokens->v.arr.strs[i].len + 1;
    tok->text = malloc(total);
    tok->text_off = malloc((n + 1) * sizeof *tok->text_off);
    tok->type = malloc(n);
    tok->flags = calloc(n, 1);
    tok->score = calloc(n, sizeof *tok->score);
    if (!tok->text || !tok->text_off || !tok->type || !tok->flags || !tok->score)
        return clv_fail(CLV_ERR_NOMEM, "%s: out of memory for %llu tokens", path,
                        (unsigned long long)n);
    uint64_t off = 0;
    for (uint64_t i = 0; i < n; i++) {
        const clv_gguf_str *s = &tokens->v.arr.strs[i];
        if (!clv_utf8_valid((const uint8_t *)s->data, s->len))
            return clv_fail(CLV_ERR_FORMAT, "%s: token %llu of tokenizer.ggml.tokens is not valid UTF-8",
                            path, (unsigned long long)i);
        tok->text_off[i] = off;
        memcpy(tok->text + off, s->data, s->len);
        off += s->len;
        tok->text[off++] = '\0';
    }
    tok->text_off[n] = off;

    const clv_gguf_value *types;
    if ((st = get_token_array(g, "tokenizer.ggml.token_type", tok->n_vocab, &types))) return st;
    for (uint64_t i = 0; i < n; i++) {
        int64_t t = CLV_TOKEN_NORMAL;
        if (types && !arr_int(types, i, &t))
            return clv_fail(CLV_ERR_TYPE, "%s: tokenizer.ggml.token_type holds %s, not integers",
                            path, clv_gguf_value_type_name(types->v.arr.elem_type));
        if (t < CLV_TOKEN_UNDEFINED || t > CLV_TOKEN_BYTE)
            return clv_fail(CLV_ERR_FORMAT, "%s: token %llu has type %lld (valid: 0 to 6)", path,
                            (unsigned long long)i, (long long)t);
        tok->type[i] = (uint8_t)t;
    }

    const clv_gguf_value *scores;
    if ((st = get_token_array(g, "tokenizer.ggml.scores", tok->n_vocab, &scores))) return st;
    if (scores) {
        if (scores->v.arr.elem_type != CLV_GGUF_F32)
            return clv_fail(CLV_ERR_TYPE, "%s: tokenizer.ggml.scores holds %s, not f32", path,
                            clv_gguf_value_type_name(scores->v.arr.elem_type));
        memcpy(tok->score, scores->v.arr.data, n * sizeof(float));
    }
    return CLV_OK;
}

/* SentencePiece text has no spaces (they become U+2581), so a user-defined
 * token made of spaces could never match. Such tokens are runs of U+2581 to
 * the merges, taken before any scored piece and shorter ones first, which is
 * how Hugging Face's tokenizer built from the same file ranks them. */
static void load_spm_space_runs(clv_tokenizer *tok) {
    for (int32_t id = 0; id < tok->n_vocab; id++) {
        if (tok->type[id] != CLV_TOKEN_USER_DEFINED) continue;
        size_t len;
        const char *s = token_text(tok, id, &len);
        if (len == 0 || len > 64) continue;
        size_t k = 0;
        while (k < len && s[k] == ' ') k++;
        if (k != len) continue;
        tok->flags[id] |= TOK_SPACE_RUN;
        tok->score[id] = SPACE_RUN_SCORE - (float)len;
    }
}

static clv_status load_special_ids(clv_tokenizer *tok, const clv_gguf *g) {
    static const struct {
        const char *key;
        size_t field;
    } ids[] = {
        {"tokenizer.ggml.bos_token_id", offsetof(clv_tokenizer, bos)},
        {"tokenizer.ggml.eos_token_id", offsetof(clv_tokenizer, eos)},
        {"tokenizer.ggml.eot_token_id", offsetof(clv_tokenizer, eot)},
        {"tokenizer.ggml.eom_token_id", offsetof(clv_tokenizer, eom)},
        {"tokenizer.ggml.unknown_token_id", offsetof(clv_tokenizer, unk)},
        {"tokenizer.ggml.padding_token_id", offsetof(clv_tokenizer, pad)},
    };
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
        int32_t *field = (int32_t *)((char *)tok + ids[i].field);
        clv_status st = read_optional_id(g, ids[i].key, tok->n_vocab, field);
        if (st) return st;
    }

    /* Defaults as llama.cpp has them; the file's flags win. */
    tok->add_bos = tok->kind == CLV_TOKENIZER_SPM;
    tok->add_eos = false;
    tok->add_space_prefix = tok->kind == CLV_TOKENIZER_SPM;
    if (tok->kind == CLV_TOKENIZER_BPE && clv_pretok_ignore_merges(tok->pretok)) tok->add_bos = true;
    clv_status st;
    if ((st = read_optional_bool(g, "tokenizer.ggml.add_bos_token", &tok->add_bos))) return st;
    if ((st = read_optional_bool(g, "tokenizer.ggml.add_eos_token", &tok->add_eos))) return st;
    if (tok->kind == CLV_TOKENIZER_SPM &&
        (st = read_optional_bool(g, "tokenizer.ggml.add_space_prefix", &tok->add_space_prefix)))
        return st;
    return CLV_OK;
}

/* Control tokens that end a turn, in the order an EOT is guessed from when
 * the file names none, then other end-of-generation markers. */
static const char *const eot_spellings[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<EOT>",
    "<|end_of_text|>", "<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>",
};
static const char *const eog_spellings[] = {"<|eom_id|>", "<|return|>", "<|call|>"};

#define N_EOT_SPELLINGS (sizeof eot_spellings / sizeof eot_spellings[0])
#define N_EOG_SPELLINGS (sizeof eog_spellings / sizeof eog_spellings[0])

static int32_t find_marker(const clv_tokenizer *tok, const char *s) {
    int32_t id = tok_lookup(tok, s, strlen(s));
    bool marker = id >= 0 && (tok->type[id] == CLV_TOKEN_CONTROL ||
                              tok->type[id] == CLV_TOKEN_USER_DEFINED);
    return marker ? id : -1;
}

static void add_eog(clv_tokenizer *tok, int32_t id) {
    if (id < 0) return;
    for (int32_t j = 0; j < tok->n_eog; j++)
        if (tok->eog[j] == id) return;
    tok->eog[tok->n_eog++] = id;
}

static clv_status load_eog(clv_tokenizer *tok) {
    for (size_t i = 0; i < N_EOT_SPELLINGS && tok->eot < 0; i++)
        tok->eot = find_marker(tok, eot_spellings[i]);
    tok->eog = malloc((N_EOT_SPELLINGS + N_EOG_SPELLINGS + 3) * sizeof *tok->eog);
    if (!tok->eog) return clv_fail(CLV_ERR_NOMEM, "out of memory");
    add_eog(tok, tok->eos);
    add_eog(tok, tok->eot);
    add_eog(tok, tok->eom);
    for (size_t i = 0; i < N_EOT_SPELLINGS; i++) add_eog(tok, find_marker(tok, eot_spellings[i]));
    for (size_t i = 0; i < N_EOG_SPELLINGS; i++) add_eog(tok, find_marker(tok, eog_spellings[i]));
    return CLV_OK;
}

/* Tokens matched whole in text: control, unknown and user-defined ones. */
static clv_status build_trie(clv_tokenizer *tok) {
    uint64_t nodes = 1;
    for (int32_t id = 0; id < tok->n_vocab; id++) {
        uint8_t t = tok->type[id];
        if ((t == CLV_TOKEN_CONTROL || t == CLV_TOKEN_UNKNOWN || t == CLV_TOKEN_USER_DEFINED) &&
            !(tok->flags[id] & TOK_SPACE_RUN))
            nodes += tok->text_off[id + 1] - tok->text_off[id];
    }
    if (nodes > UINT32_MAX) return clv_fail(CLV_ERR_FORMAT, "too many special tokens");
    tok->trie = malloc(nodes * sizeof *tok->trie);
    if (!tok->trie) return clv_fail(CLV_ERR_NOMEM, "out of memory for special tokens");
    tok->n_trie = 1; /* node 0 stands for "none" */
    for (int32_t id = 0; id < tok->n_vocab; id++) {
        uint8_t t = tok->type[id];
        if (!(t == CLV_TOKEN_CONTROL || t == CLV_TOKEN_UNKNOWN || t == CLV_TOKEN_USER_DEFINED) ||
            (tok->flags[id] & TOK_SPACE_RUN))
            continue;
        size_t len;
        const uint8_t *s = (const uint8_t *)token_text(tok, id, &len);
        if (len == 0) continue;
        uint32_t *link = &tok->trie_root[s[0]];
        uint32_t node = 0;
        for (size_t i = 0; i < len; i++) {
            if (i > 0) {
                link = &tok->trie[node].child;
                while (*link && tok->trie[*link].byte != s[i]) link = &tok->trie[*link].sibling;
            }
            if (!*link) {
                uint32_t nn = tok->n_trie++;
                tok->trie[nn] = (tok_trie_node){.token = -1, .byte = s[i]};
                *link = nn;
            }
            node = *link;
        }
        tok->trie[node].token = id; /* a spelling given twice: the last id */
    }
    return CLV_OK;
}

/* Longest allowed whole-match token at s[0, len), or -1. */
static int32_t trie_match(const clv_tokenizer *tok, const uint8_t *s, size_t len,
                          bool parse_special, size_t *match_len) {
    uint32_t node = tok->trie_root[s[0]];
    int32_t best = -1;
    for (size_t i = 0; node; ) {
        int32_t id = tok->trie[node].token;
        if (id >= 0 && (parse_special || tok->type[id] == CLV_TOKEN_USER_DEFINED)) {
            best = id;
            *match_len = i + 1;
        }
        if (++i >= len) break;
        node = tok->trie[node].child;
        while (node && tok->trie[node].byte != s[i]) node = tok->trie[node].sibling;
    }
    return best;
}

static int hexdigit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

/* "<0xAB>" -> 0xAB, or -1. */
static int byte_token_value(const char *s, size_t len) {
    if (len != 6 || memcmp(s, "<0x", 3) || s[5] != '>') return -1;
    int hi = hexdigit(s[3]), lo = hexdigit(s[4]);
    return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

/* What each token decodes to. */
static clv_status build_pieces(clv_tokenizer *tok) {
    uint64_t total = tok->text_off[tok->n_vocab]; /* pieces never outgrow their text */
    tok->piece = malloc(total ? total : 1);
    tok->piece_off = malloc(((size_t)tok->n_vocab + 1) * sizeof *tok->piece_off);
    if (!tok->piece || !tok->piece_off) return clv_fail(CLV_ERR_NOMEM, "out of memory");
    uint64_t off = 0;
    for (int32_t id = 0; id < tok->n_vocab; id++) {
        size_t len;
        const char *s = token_text(tok, id, &len);
        char *out = tok->piece + off;
        size_t n = 0;
        uint8_t t = tok->type[id];
        int byte = byte_token_value(s, len);
        if (byte >= 0 && tok->byte_token[byte] != id && t != CLV_TOKEN_BYTE) byte = -1;
        if (byte >= 0) {
            out[n++] = (char)byte;
        } else if (t == CLV_TOKEN_CONTROL || t == CLV_TOKEN_UNKNOWN || t == CLV_TOKEN_UNUSED ||
                   t == CLV_TOKEN_BYTE) {
            memcpy(out, s, len);
            n = len;
        } else if (tok->kind == CLV_TOKENIZER_SPM) {
            for (size_t i = 0; i < len;) {
                if (i + SPACE_MARK_LEN <= len && !memcmp(s + i, SPACE_MARK, SPACE_MARK_LEN)) {
                    out[n++] = ' ';
                    i += SPACE_MARK_LEN;
                } else {
                    out[n++] = s[i++];
                }
            }
        } else if (t == CLV_TOKEN_USER_DEFINED) {
            memcpy(out, s, len);
            n = len;
        } else {
            n = tok_bpe_unmap(tok, s, len, out);
        }
        tok->piece_off[id] = off;
        off += n;
        if (n > tok->max_piece) tok->max_piece = n;
    }
    tok->piece_off[tok->n_vocab] = off;
    return CLV_OK;
}

static clv_status load(clv_tokenizer *tok, const clv_gguf *g) {
    const char *path = clv_gguf_path(g);
    const char *model;
    clv_status st = clv_gguf_get_str(g, "tokenizer.ggml.model", &model);
    if (st == CLV_ERR_NOT_FOUND)
        return clv_fail(st, "%s: no tokenizer (tokenizer.ggml.model is missing)", path);
    if (st) return st;
    if (!strcmp(model, "llama")) {
        tok->kind = CLV_TOKENIZER_SPM;
    } else if (!strcmp(model, "gpt2")) {
        tok->kind = CLV_TOKENIZER_BPE;
    } else {
        return clv_fail(CLV_ERR_UNSUPPORTED,
                        "%s: tokenizer model '%s' is not supported (cleave reads 'llama', "
                        "SentencePiece-style, and 'gpt2', byte-level BPE)",
                        path, model);
    }
    if ((st = load_tokens(tok, g))) return st;
    if (tok->kind == CLV_TOKENIZER_SPM) load_spm_space_runs(tok);
    if ((st = build_lookup(tok))) return st;

    const char *pre = "default";
    st = clv_gguf_get_str(g, "tokenizer.ggml.pre", &pre);
    if (st == CLV_ERR_NOT_FOUND) {
        clv_clear_error();
        pre = "default";
    } else if (st) {
        return st;
    }
    snprintf(tok->pre, sizeof tok->pre, "%s", pre);

    if (tok->kind == CLV_TOKENIZER_SPM) {
        st = tok_spm_load(tok);
    } else {
        st = clv_pretok_create(pre, &tok->pretok);
        if (st) {
            clv_error_prefix("%s: ", path);
            return st;
        }
        st = tok_bpe_load(tok, g);
    }
    if (st) return st;
    if ((st = load_special_ids(tok, g))) return st;
    if ((st = load_eog(tok))) return st;
    if ((st = build_trie(tok))) return st;
    return build_pieces(tok);
}

clv_status clv_tokenizer_load_gguf(const clv_gguf *g, clv_tokenizer **out) {
    *out = NULL;
    clv_tokenizer *tok = calloc(1, sizeof *tok);
    if (!tok) return clv_fail(CLV_ERR_NOMEM, "out of memory loading the tokenizer");
    tok->bos = tok->eos = tok->eot = tok->eom = tok->unk = tok->pad = -1;
    for (int i = 0; i < 256; i++) tok->byte_token[i] = -1;
    clv_status st = load(tok, g);
    if (st) {
        clv_tokenizer_free(tok);
        return st;
    }
    *out = tok;
    return CLV_OK;
}

void clv_tokenizer_free(clv_tokenizer *tok) {
    if (!tok) return;
    free(tok->text);
    free(tok->text_off);
    free(tok->type);
    free(tok->flags);
    free(tok->score);
    free(tok->piece);
    free(tok->piece_off);
    free(tok->slots);
    free(tok->merges);
    free(tok->trie);
    free(tok->eog);
    free(tok->spm_glue);
    clv_pretok_free(tok->pretok);
    free(tok);
}

/* --- encoding ---------------------------------------------------------------- */

clv_tokenize_params clv_tokenize_default_params(void) {
    return (clv_tokenize_params){.add_special = true, .parse_special = false};
}

static clv_status encode_fragment(const clv_tokenizer *tok, const char *text, size_t len,
                                  bool after_special, tok_ids *ids) {
    if (tok->kind == CLV_TOKENIZER_SPM)
        return tok_spm_encode(tok, text, len, tok->add_space_prefix && after_special, ids);
    return tok_bpe_encode(tok, text, len, ids);
}

clv_status clv_tokenize(const clv_tokenizer *tok, const char *text, size_t len,
                        const clv_tokenize_params *params, int32_t *out, size_t cap,
                        size_t *n_out) {
    clv_tokenize_params p = params ? *params : clv_tokenize_default_params();
    *n_out = 0;
    if (len > (UINT32_MAX >> 2))
        return clv_fail(CLV_ERR_RANGE, "text of %zu bytes is too long to tokenize at once", len);
    tok_ids ids = {0};
    clv_status st = CLV_OK;
    if (p.add_special && tok->add_bos && tok->bos >= 0) st = tok_ids_push(&ids, tok->bos);

    /* Split out whole-match tokens; the text between them is merged. The
     * first fragment and any after a special token get the space prefix. */
    const uint8_t *s = (const uint8_t *)text;
    bool after_special = true;
    size_t raw = 0, i = 0;
    while (i < len && st == CLV_OK) {
        size_t mlen = 0;
        int32_t id = tok->trie_root[s[i]] ? trie_match(tok, s + i, len - i, p.parse_special, &mlen)
                                          : -1;
        if (id < 0) {
            i++;
            continue;
        }
        if (raw < i) {
            st = encode_fragment(tok, text + raw, i - raw, after_special, &ids);
            if (st) break;
        }
        st = tok_ids_push(&ids, id);
        after_special = true;
        i += mlen;
        raw = i;
    }
    if (st == CLV_OK && raw < len) st = encode_fragment(tok, text + raw, len - raw, after_special, &ids);
    if (st == CLV_OK && p.add_special && tok->add_eos && tok->eos >= 0) st = tok_ids_push(&ids, tok->eos);
    if (st == CLV_OK) {
        *n_out = ids.n;
        if (ids.n && cap) memcpy(out, ids.data, (ids.n < cap ? ids.n : cap) * sizeof *out);
        if (ids.n > cap)
            st = clv_fail(CLV_ERR_RANGE, "%zu tokens do not fit the %zu given", ids.n, cap);
    }
    free(ids.data);
    return st;
}

/* --- vocabulary getters ---------------------------------------------------------- */

clv_tokenizer_kind clv_tokenizer_get_kind(const clv_tokenizer *tok) { return tok->kind; }
int32_t clv_tokenizer_n_vocab(const clv_tokenizer *tok) { return tok->n_vocab; }
const char *clv_tokenizer_pre(const clv_tokenizer *tok) { return tok->pre; }
int32_t clv_tokenizer_bos(const clv_tokenizer *tok) { return tok->bos; }
int32_t clv_tokenizer_eos(const clv_tokenizer *tok) { return tok->eos; }
int32_t clv_tokenizer_eot(const clv_tokenizer *tok) { return tok->eot; }
int32_t clv_tokenizer_unk(const clv_tokenizer *tok) { return tok->unk; }
int32_t clv_tokenizer_pad(const clv_tokenizer *tok) { return tok->pad; }
bool clv_tokenizer_add_bos(const clv_tokenizer *tok) { return tok->add_bos; }
bool clv_tokenizer_add_eos(const clv_tokenizer *tok) { return tok->add_eos; }

bool clv_tokenizer_is_eog(const clv_tokenizer *tok, int32_t id) {
    for (int32_t i = 0; i < tok->n_eog; i++)
        if (tok->eog[i] == id) return true;
    return false;
}

clv_token_type clv_token_get_type(const clv_tokenizer *tok, int32_t id) {
    if (id < 0 || id >= tok->n_vocab) return CLV_TOKEN_UNDEFINED;
    return (clv_token_type)tok->type[id];
}

const char *clv_token_text(const clv_tokenizer *tok, int32_t id, size_t *len) {
    if (id < 0 || id >= tok->n_vocab) {
        *len = 0;
        return NULL;
    }
    return token_text(tok, id, len);
}

int32_t clv_tokenizer_find(const clv_tokenizer *tok, const char *text, size_t len) {
    /* By spelling, so also space-run tokens spelled with spaces. */
    int32_t id = tok_lookup(tok, text, len);
    if (id >= 0) return id;
    for (size_t i = 0; i < len; i++)
        if (text[i] != ' ') return -1;
    for (int32_t t = 0; t < tok->n_vocab && len; t++) {
        size_t tl;
        if ((tok->flags[t] & TOK_SPACE_RUN) && (token_text(tok, t, &tl), tl == len)) return t;
    }
    return -1;
}

/* --- decoding ------------------------------------------------------------------ */

static const char *piece_of(const clv_tokenizer *tok, int32_t id, bool special, size_t *len) {
    uint8_t t = tok->type[id];
    if (!special && (t == CLV_TOKEN_CONTROL || t == CLV_TOKEN_UNKNOWN || t == CLV_TOKEN_UNUSED)) {
        *len = 0;
        return "";
    }
    *len = tok->piece_off[id + 1] - tok->piece_off[id];
    return tok->piece + tok->piece_off[id];
}

int64_t clv_token_to_piece(const clv_tokenizer *tok, int32_t id, bool special, char *buf,
                           size_t cap) {
    if (id < 0 || id >= tok->n_vocab) return -1;
    size_t len;
    const char *p = piece_of(tok, id, special, &len);
    if (len && cap) memcpy(buf, p, len < cap ? len : cap);
    return (int64_t)len;
}

size_t clv_tokenizer_max_piece(const clv_tokenizer *tok) { return tok->max_piece; }

struct clv_detok {
    const clv_tokenizer *tok;
    clv_detok_params params;
    bool at_start; /* nothing shown yet: the space prefix may still be dropped */
    char *buf;
    size_t cap;
    size_t shown; /* bytes handed out by the last call, at the front of buf */
    size_t held;  /* bytes of an unfinished sequence after them */
};

clv_detok_params clv_detok_default_params(void) {
    return (clv_detok_params){.special = false, .strip_space = true};
}

clv_status clv_detok_create(const clv_tokenizer *tok, const clv_detok_params *params,
                            clv_detok **out) {
    *out = NULL;
    clv_detok *d = calloc(1, sizeof *d);
    if (!d) return clv_fail(CLV_ERR_NOMEM, "out of memory");
    d->tok = tok;
    d->params = params ? *params : clv_detok_default_params();
    d->cap = tok->max_piece + 8;
    d->buf = malloc(d->cap);
    if (!d->buf) {
        free(d);
        return clv_fail(CLV_ERR_NOMEM, "out of memory");
    }
    d->at_start = true;
    *out = d;
    return CLV_OK;
}

void clv_detok_free(clv_detok *d) {
    if (!d) return;
    free(d->buf);
    free(d);
}

void clv_detok_reset(clv_detok *d) {
    d->at_start = true;
    d->shown = d->held = 0;
}

clv_status clv_detok_push(clv_detok *d, int32_t id, const char **text, size_t *len) {
    *text = d->buf;
    *len = 0;
    if (id < 0 || id >= d->tok->n_vocab)
        return clv_fail(CLV_ERR_RANGE, "token id %d is out of range (vocabulary of %d)", id,
                        d->tok->n_vocab);
    /* Held bytes move to the front; what was shown last time is gone. */
    memmove(d->buf, d->buf + d->shown, d->held);
    d->shown = 0;
    size_t plen;
    const char *p = piece_of(d->tok, id, d->params.special, &plen);
    if (plen && d->at_start) {
        if (d->params.strip_space && d->tok->add_space_prefix && p[0] == ' ') {
            p++;
            plen--;
        }
        d->at_start = false;
    }
    memcpy(d->buf + d->held, p, plen);
    size_t total = d->held + plen;
    d->held = clv_utf8_incomplete_tail((const uint8_t *)d->buf, total);
    d->shown = total - d->held;
    *len = d->shown;
    return CLV_OK;
}

void clv_detok_flush(clv_detok *d, const char **text, size_t *len) {
    memmove(d->buf, d->buf + d->shown, d->held);
    *text = d->buf;
    *len = d->held;
    d->shown = d->held;
    d->held = 0;
}

int64_t clv_detokenize(const clv_tokenizer *tok, const int32_t *ids, size_t n,
                       const clv_detok_params *params, char *buf, size_t cap) {
    clv_detok_params p = params ? *params : clv_detok_default_params();
    bool at_start = true;
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= tok->n_vocab) return -1;
        size_t len;
        const char *s = piece_of(tok, ids[i], p.special, &len);
        if (len && at_start) {
            if (p.strip_space && tok->add_space_prefix && s[0] == ' ') {
                s++;
                len--;
            }
            at_start = false;
        }
        if (len && total < cap) memcpy(buf + total, s, len < cap - total ? len : cap - total);
        total += len;
    }
    return (int64_t)total;
}
