/* SentencePiece-style BPE ("llama" vocabularies): spaces become U+2581
 * (with one added in front when the vocabulary asks), the text starts as one
 * symbol per character, and the adjacent pair whose concatenation is the
 * best-scoring token merges first (ties: leftmost), until no pair is a
 * token. Characters that are not tokens fall back to <0xNN> byte tokens.
 *
 * Pairs wait in a binary heap; a popped pair that a neighbouring merge has
 * changed is stale and skipped, so the loop is O(n log n). */
#include <stdlib.h>
#include <string.h>

#include "tokenizer_impl.h"
#include "unicode.h"

typedef struct spm_pair {
    float score;
    int32_t left, right;
    uint32_t size; /* bytes of left + right when pushed */
} spm_pair;

typedef struct spm_state {
    const clv_tokenizer *tok;
    const char *text;
    uint32_t *off, *len; /* symbol bytes in text; len 0: merged away */
    int32_t *prev, *next;
    spm_pair *heap;
    size_t n_heap;
} spm_state;

static inline bool pair_before(const spm_pair *a, const spm_pair *b) {
    return a->score > b->score || (a->score == b->score && a->left < b->left);
}

static void heap_push(spm_state *s, spm_pair p) {
    size_t i = s->n_heap++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!pair_before(&p, &s->heap[parent])) break;
        s->heap[i] = s->heap[parent];
        i = parent;
    }
    s->heap[i] = p;
}

static spm_pair heap_pop(spm_state *s) {
    spm_pair top = s->heap[0];
    spm_pair last = s->heap[--s->n_heap];
    size_t i = 0, n = s->n_heap;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && pair_before(&s->heap[c + 1], &s->heap[c])) c++;
        if (!pair_before(&s->heap[c], &last)) break;
        s->heap[i] = s->heap[c];
        i = c;
    }
    if (n) s->heap[i] = last;
    return top;
}

static void try_pair(spm_state *s, int32_t left, int32_t right) {
    if (left < 0 || right < 0) return;
    uint32_t size = s->off[right] + s->len[right] - s->off[left];
    int32_t id = tok_lookup(s->tok, s->text + s->off[left], size);
    if (id < 0 || !tok_mergeable(s->tok, id)) return;
    heap_push(s, (spm_pair){.score = s->tok->score[id], .left = left, .right = right, .size = size});
}

static clv_status emit_symbol(const clv_tokenizer *tok, const char *sym, size_t len, tok_ids *out) {
    int32_t id = tok_lookup(tok, sym, len);
    if (id >= 0 && tok_mergeable(tok, id)) return tok_ids_push(out, id);
    /* Not a token: its bytes, or one unknown token if there are no byte tokens. */
    bool all_bytes = true;
    for (size_t i = 0; i < len; i++) all_bytes &= tok->byte_token[(uint8_t)sym[i]] >= 0;
    if (!all_bytes) return tok->unk >= 0 ? tok_ids_push(out, tok->unk) : CLV_OK;
    for (size_t i = 0; i < len; i++) {
        clv_status st = tok_ids_push(out, tok->byte_token[(uint8_t)sym[i]]);
        if (st) return st;
    }
    return CLV_OK;
}

static bool is_glue(const clv_tokenizer *tok, uint32_t cp) {
    for (int32_t i = 0; i < tok->n_spm_glue; i++)
        if (tok->spm_glue[i] == cp) return true;
    return false;
}

/* Merges symbols [first, last) as a unit and emits their tokens. */
static clv_status merge_word(spm_state *s, int32_t first, int32_t last, tok_ids *out) {
    s->prev[first] = -1;
    s->next[last - 1] = -1;
    s->n_heap = 0;
    for (int32_t i = first + 1; i < last; i++) try_pair(s, i - 1, i);
    while (s->n_heap) {
        spm_pair p = heap_pop(s);
        /* Stale: one side was merged into something else since the push. */
        if (!s->len[p.left] || !s->len[p.right] || s->len[p.left] + s->len[p.right] != p.size)
            continue;
        s->len[p.left] += s->len[p.right];
        s->len[p.right] = 0;
        s->next[p.left] = s->next[p.right];
        if (s->next[p.right] >= 0) s->prev[s->next[p.right]] = p.left;
        try_pair(s, s->prev[p.left], p.left);
        try_pair(s, p.left, s->next[p.left]);
    }
    clv_status st = CLV_OK;
    for (int32_t i = first; i >= 0 && st == CLV_OK; i = s->next[i])
        st = emit_symbol(s->tok, s->text + s->off[i], s->len[i], out);
    return st;
}

clv_status tok_spm_encode(const clv_tokenizer *tok, const char *text, size_t len,
                          bool add_prefix, tok_ids *out) {
    static const char mark[] = "\xe2\x96\x81";
    const uint32_t mark_cp = 0x2581;
    size_t cap = (len + 1) * 3;
    char *esc = malloc(cap);
    /* One symbol per character at most, so arrays sized by characters suffice. */
    size_t max_sym = len + 1;
    spm_state s = {.tok = tok, .text = esc};
    s.off = malloc(max_sym * sizeof *s.off);
    s.len = malloc(max_sym * sizeof *s.len);
    s.prev = malloc(max_sym * sizeof *s.prev);
    s.next = malloc(max_sym * sizeof *s.next);
    uint8_t *starts = malloc(max_sym); /* 1: a word starts at this symbol */
    clv_status st = CLV_OK;
    if (!esc || !s.off || !s.len || !s.prev || !s.next || !starts) goto nomem;

    size_t n_esc = 0;
    if (add_prefix) {
        memcpy(esc, mark, 3);
        n_esc = 3;
    }
    for (size_t i = 0; i < len; i++) {
        if (text[i] == ' ') {
            memcpy(esc + n_esc, mark, 3);
            n_esc += 3;
        } else {
            esc[n_esc++] = text[i];
        }
    }

    int32_t n = 0, word = 0, longest = 0;
    uint32_t prev_cp = 0;
    for (size_t i = 0; i < n_esc;) {
        uint32_t cp;
        size_t l = clv_utf8_decode((const uint8_t *)esc + i, n_esc - i, &cp);
        starts[n] = n == 0 || (cp == mark_cp && prev_cp != mark_cp && tok->n_spm_glue >= 0 &&
                               !is_glue(tok, prev_cp));
        if (starts[n]) word = n;
        if (n - word + 1 > longest) longest = n - word + 1;
        s.off[n] = (uint32_t)i;
        s.len[n] = (uint32_t)l;
        s.prev[n] = n - 1;
        s.next[n] = n + 1;
        n++;
        i += l;
        prev_cp = cp;
    }
    /* Each merge pushes at most two pairs: 3 per symbol of the longest word. */
    s.heap = malloc(3 * (size_t)(longest + 1) * sizeof *s.heap);
    if (!s.heap) goto nomem;
    for (int32_t i = 0, first = 0; i <= n && st == CLV_OK; i++) {
        if (i == n || (i > first && starts[i])) {
            if (i > first) st = merge_word(&s, first, i, out);
            first = i;
        }
    }
    goto done;
nomem:
    st = clv_fail(CLV_ERR_NOMEM, "out of memory tokenizing %zu bytes", len);
done:
    free(esc);
    free(s.off);
    free(s.len);
    free(s.prev);
    free(s.next);
    free(s.heap);
    free(starts);
    return st;
}

clv_status tok_spm_load(clv_tokenizer *tok) {
    char name[8];
    for (int b = 0; b < 256; b++) {
        snprintf(name, sizeof name, "<0x%02X>", b);
        int32_t id = tok_lookup(tok, name, 6);
        /* Files without token types mark byte tokens as normal ones. */
        if (id >= 0 && tok->type[id] != CLV_TOKEN_BYTE && tok->type[id] != CLV_TOKEN_NORMAL &&
            tok->type[id] != CLV_TOKEN_UNDEFINED)
            id = -1;
        tok->byte_token[b] = id;
    }

    /* Characters that some mergeable token has right before a U+2581. */
    enum { MAX_GLUE = 64 };
    tok->spm_glue = malloc(MAX_GLUE * sizeof *tok->spm_glue);
    if (!tok->spm_glue) return clv_fail(CLV_ERR_NOMEM, "out of memory");
    for (int32_t id = 0; id < tok->n_vocab && tok->n_spm_glue >= 0; id++) {
        if (!tok_mergeable(tok, id) || (tok->flags[id] & TOK_SPACE_RUN)) continue;
        const uint8_t *t = (const uint8_t *)tok->text + tok->text_off[id];
        size_t len = tok->text_off[id + 1] - tok->text_off[id] - 1;
        uint32_t prev = 0;
        for (size_t i = 0; i < len;) {
            uint32_t cp;
            i += clv_utf8_decode(t + i, len - i, &cp);
            if (i > 3 && cp == 0x2581 && prev != 0x2581 && !is_glue(tok, prev)) {
                if (tok->n_spm_glue == MAX_GLUE) {
                    tok->n_spm_glue = -1;
                    break;
                }
                tok->spm_glue[tok->n_spm_glue++] = prev;
            }
            prev = cp;
        }
    }
    return CLV_OK;
}
