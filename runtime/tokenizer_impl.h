/* Internals shared by tokenizer.c (loading, special tokens, decoding),
 * tokenizer_spm.c and tokenizer_bpe.c. Not a public header. */
#ifndef CLV_TOKENIZER_IMPL_H
#define CLV_TOKENIZER_IMPL_H

#include "pretokenize.h"
#include "tokenizer.h"

/* A growable array of ids. */
typedef struct tok_ids {
    int32_t *data;
    size_t n, cap;
} tok_ids;

clv_status tok_ids_push(tok_ids *v, int32_t id);

/* One BPE merge, found by the ids of its two halves. */
typedef struct tok_merge {
    uint64_t key; /* (left << 32) | right; UINT64_MAX marks an empty slot */
    int32_t rank; /* position in tokenizer.ggml.merges: lower merges first */
    int32_t result;
} tok_merge;

/* Trie of the tokens matched whole in text (control, unknown, user-defined). */
typedef struct tok_trie_node {
    int32_t token;    /* token ending here, or -1 */
    uint32_t child;   /* first child, 0 = none (node 0 is the root) */
    uint32_t sibling; /* next child of the same parent, 0 = none */
    uint8_t byte;
} tok_trie_node;

struct clv_tokenizer {
    clv_tokenizer_kind kind;
    int32_t n_vocab;

    /* Vocabulary text as the file spells it, each followed by a NUL. */
    char *text;
    uint64_t *text_off; /* n_vocab + 1 */
    uint8_t *type;      /* clv_token_type */
    float *score;       /* SPM merge priority: higher merges first */

    /* What each token decodes to (for control tokens, their text). */
    char *piece;
    uint64_t *piece_off; /* n_vocab + 1 */
    size_t max_piece;

    /* Text -> id, open addressing. Keys are the spelling merges see: the
     * vocabulary text, except SPM space-run tokens (TOK_SPACE_RUN), which
     * are looked up as runs of U+2581 (see tokenizer.c). */
    int32_t *slots;
    uint64_t slot_mask;
    uint8_t *flags;

    /* BPE: merges by (left, right) ids, and the byte-level alphabet. */
    tok_merge *merges;
    uint64_t merge_mask;
    int32_t n_merges;
    uint32_t byte_char[256];  /* byte -> code point of its stand-in */
    int16_t char_byte[256 + 68]; /* stand-in code point -> byte, -1 none */
    int32_t byte_token[256];  /* BPE: token of a byte's stand-in; SPM: <0xNN>; -1 none */

    /* SPM: characters some token has right before a U+2581. Before any
     * other character, a U+2581 starts a word no merge can cross, so words
     * merge one at a time (same result, small heaps). */
    uint32_t *spm_glue;
    int32_t n_spm_glue; /* -1: too many, merge whole fragments */

    int32_t bos, eos, eot, eom, unk, pad;
    bool add_bos, add_eos, add_space_prefix;

    tok_trie_node *trie; /* node 0 unused: 0 means "none" */
    uint32_t n_trie;
    uint32_t trie_root[256];

    int32_t *eog;
    int32_t n_eog;

    clv_pretok *pretok;
    char pre[64];
};

#define TOK_SPACE_RUN 1u /* flags: SPM user-defined token of spaces only */

/* Id whose lookup spelling is s[0, len), or -1. */
int32_t tok_lookup(const clv_tokenizer *tok, const char *s, size_t len);

/* May text produce this token through merges? (Not control, unknown,
 * unused or byte tokens, which only come from their own markers.) */
static inline bool tok_mergeable(const clv_tokenizer *tok, int32_t id) {
    uint8_t t = tok->type[id];
    return t == CLV_TOKEN_NORMAL || t == CLV_TOKEN_USER_DEFINED || t == CLV_TOKEN_UNDEFINED;
}

/* Hash of a byte string (also used for merge keys). */
uint64_t tok_hash(const void *data, size_t len);

/* SPM: tokenizes one fragment of plain text (no special tokens inside). */
clv_status tok_spm_encode(const clv_tokenizer *tok, const char *text, size_t len,
                          bool add_prefix, tok_ids *out);
/* SPM: byte-fallback tokens. */
clv_status tok_spm_load(clv_tokenizer *tok);

/* BPE: pre-tokenizes and merges one fragment of plain text. */
clv_status tok_bpe_encode(const clv_tokenizer *tok, const char *text, size_t len,
                          tok_ids *out);
/* BPE: byte alphabet, merges (from tokenizer.ggml.merges) and pre-tokenizer. */
clv_status tok_bpe_load(clv_tokenizer *tok, const clv_gguf *g);
/* BPE: the bytes a vocabulary text stands for (inverse of the byte map);
 * characters outside the alphabet are kept as their UTF-8. Writes at most
 * the text's length. */
size_t tok_bpe_unmap(const clv_tokenizer *tok, const char *s, size_t len, char *out);

#endif
