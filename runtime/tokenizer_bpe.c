/* Byte-level BPE ("gpt2" vocabularies): the pre-tokenizer cuts text into
 * pieces, each byte of a piece becomes the token of its stand-in character
 * (GPT-2's byte-to-unicode map), and adjacent pairs merge by their rank in
 * tokenizer.ggml.merges, lowest first, leftmost on ties.
 *
 * Merges are found by the ids of the two halves in a hash table, so the
 * merge loop never builds strings; pairs wait in a binary heap and stale ones
 * are skipped when popped, so a piece of n bytes costs O(n log n). */
#include <stdlib.h>
#include <string.h>

#include "tokenizer_impl.h"
#include "unicode.h"

/* GPT-2's stand-ins: printable bytes stand for themselves, the others (the
 * controls, space, DEL, the C1 block, NBSP and soft hyphen) for U+0100 on,
 * in byte order. */
static void init_byte_map(clv_tokenizer *tok) {
    uint32_t next = 256;
    for (int i = 0; i < 256 + 68; i++) tok->char_byte[i] = -1;
    for (uint32_t b = 0; b < 256; b++) {
        bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
        tok->byte_char[b] = printable ? b : next++;
        tok->char_byte[tok->byte_char[b]] = (int16_t)b;
    }
    CLV_ASSERT(next == 256 + 68);
}

size_t tok_bpe_unmap(const clv_tokenizer *tok, const char *s, size_t len, char *out) {
    size_t n = 0;
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        size_t l = clv_utf8_decode((const uint8_t *)s + i, len - i, &cp);
        if (cp < 256 + 68 && tok->char_byte[cp] >= 0) {
            out[n++] = (char)tok->char_byte[cp];
        } else {
            memcpy(out + n, s + i, l);
            n += l;
        }
        i += l;
    }
    return n;
}

static inline uint64_t merge_key(int32_t left, int32_t right) {
    return ((uint64_t)(uint32_t)left << 32) | (uint32_t)right;
}

static inline uint64_t key_slot(uint64_t key) {
    key ^= key >> 29;
    key *= 0xbf58476d1ce4e5b9ull;
    return key ^ (key >> 32);
}

static const tok_merge *find_merge(const clv_tokenizer *tok, int32_t left, int32_t right) {
    uint64_t key = merge_key(left, right);
    for (uint64_t i = key_slot(key) & tok->merge_mask;; i = (i + 1) & tok->merge_mask) {
        const tok_merge *m = &tok->merges[i];
        if (m->key == key) return m;
        if (m->key == UINT64_MAX) return NULL;
    }
}

static clv_status load_merges(clv_tokenizer *tok, const clv_gguf *g) {
    const char *path = clv_gguf_path(g);
    const clv_gguf_value *arr;
    clv_status st = clv_gguf_get_arr(g, "tokenizer.ggml.merges", CLV_GGUF_STRING, &arr);
    if (st == CLV_ERR_NOT_FOUND)
        return clv_fail(CLV_ERR_FORMAT,
                        "%s: tokenizer.ggml.merges is missing (a byte-level BPE vocabulary needs its merges)",
                        path);
    if (st) return st;
    uint64_t n = arr->v.arr.count;
    if (n > (1u << 30))
        return clv_fail(CLV_ERR_FORMAT, "%s: %llu merges", path, (unsigned long long)n);
    uint64_t cap = 16;
    while (cap < n * 2) cap *= 2;
    tok->merges = malloc(cap * sizeof *tok->merges);
    if (!tok->merges) return clv_fail(CLV_ERR_NOMEM, "%s: out of memory for merges", path);
    for (uint64_t i = 0; i < cap; i++) tok->merges[i].key = UINT64_MAX;
    tok->merge_mask = cap - 1;
    tok->n_merges = (int32_t)n;

    char *joined = NULL;
    size_t joined_cap = 0;
    for (uint64_t r = 0; r < n; r++) {
        const char *s = arr->v.arr.strs[r].data;
        size_t len = arr->v.arr.strs[r].len;
        /* The halves are split at the first space after the first byte. */
        const char *sp = len > 1 ? memchr(s + 1, ' ', len - 1) : NULL;
        if (!sp) {
            free(joined);
            return clv_fail(CLV_ERR_FORMAT,
                            "%s: merge %llu ('%.*s') of tokenizer.ggml.merges is not two tokens "
                            "separated by a space",
                            path, (unsigned long long)r, (int)(len < 64 ? len : 64), s);
        }
        size_t ll = (size_t)(sp - s), rl = len - ll - 1;
        if (ll + rl > joined_cap) {
            joined_cap = (ll + rl) * 2;
            char *j = realloc(joined, joined_cap);
            if (!j) {
                free(joined);
                return clv_fail(CLV_ERR_NOMEM, "out of memory");
            }
            joined = j;
        }
        memcpy(joined, s, ll);
        memcpy(joined + ll, sp + 1, rl);
        int32_t left = tok_lookup(tok, s, ll), right = tok_lookup(tok, sp + 1, rl);
        int32_t result = tok_lookup(tok, joined, ll + rl);
        if (left < 0 || right < 0 || result < 0) {
            const char *which = left < 0 ? "its left half" : right < 0 ? "its right half" : "the merged token";
            free(joined);
            return clv_fail(CLV_ERR_FORMAT,
                            "%s: merge %llu ('%.*s') of tokenizer.ggml.merges: %s is not in the vocabulary",
                            path, (unsigned long long)r, (int)(len < 64 ? len : 64), s, which);
        }
        uint64_t key = merge_key(left, right);
        uint64_t i = key_slot(key) & tok->merge_mask;
        while (tok->merges[i].key != UINT64_MAX && tok->merges[i].key != key)
            i = (i + 1) & tok->merge_mask;
        if (tok->merges[i].key == key) continue; /* listed twice: the first rank counts */
        tok->merges[i] = (tok_merge){.key = key, .rank = (int32_t)r, .result = result};
    }
    free(joined);
    return CLV_OK;
}

clv_status tok_bpe_load(clv_tokenizer *tok, const clv_gguf *g) {
    init_byte_map(tok);
    for (int b = 0; b < 256; b++) {
        uint8_t u[4];
        size_t l = clv_utf8_encode(tok->byte_char[b], u);
        tok->byte_token[b] = tok_lookup(tok, (const char *)u, l);
    }
    return load_merges(tok, g);
}

/* --- merging ------------------------------------------------------------------ */

typedef struct bpe_pair {
    int32_t rank;
    int32_t left, right;
    int32_t left_id, right_id; /* ids when pushed: a change makes the pair stale */
} bpe_pair;

typedef struct bpe_work {
    int32_t *id, *prev, *next;
    bpe_pair *heap;
    size_t n_heap;
    char *mapped; /* a piece spelled in stand-ins, for whole-piece lookups */
} bpe_work;

static inline bool pair_before(const bpe_pair *a, const bpe_pair *b) {
    return a->rank < b->rank || (a->rank == b->rank && a->left < b->left);
}

static void heap_push(bpe_work *w, bpe_pair p) {
    size_t i = w->n_heap++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!pair_before(&p, &w->heap[parent])) break;
        w->heap[i] = w->heap[parent];
        i = parent;
    }
    w->heap[i] = p;
}

static bpe_pair heap_pop(bpe_work *w) {
    bpe_pair top = w->heap[0];
    bpe_pair last = w->heap[--w->n_heap];
    size_t i = 0, n = w->n_heap;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && pair_before(&w->heap[c + 1], &w->heap[c])) c++;
        if (!pair_before(&w->heap[c], &last)) break;
        w->heap[i] = w->heap[c];
        i = c;
    }
    if (n) w->heap[i] = last;
    return top;
}

static void try_pair(const clv_tokenizer *tok, bpe_work *w, int32_t left, int32_t right) {
    if (left < 0 || right < 0 || w->id[left] < 0 || w->id[right] < 0) return;
    const tok_merge *m = find_merge(tok, w->id[left], w->id[right]);
    if (!m) return;
    heap_push(w, (bpe_pair){.rank = m->rank, .left = left, .right = right,
                            .left_id = w->id[left], .right_id = w->id[right]});
}

static clv_status merge_piece(const clv_tokenizer *tok, bpe_work *w, const uint8_t *b,
                              size_t n, tok_ids *out) {
    if (n == 0) return CLV_OK;
    if (clv_pretok_ignore_merges(tok->pretok)) {
        size_t m = 0;
        for (size_t i = 0; i < n; i++)
            m += clv_utf8_encode(tok->byte_char[b[i]], (uint8_t *)w->mapped + m);
        int32_t id = tok_lookup(tok, w->mapped, m);
        if (id >= 0 && tok_mergeable(tok, id)) return tok_ids_push(out, id);
    }
    for (size_t i = 0; i < n; i++) {
        w->id[i] = tok->byte_token[b[i]];
        w->prev[i] = (int32_t)i - 1;
        w->next[i] = i + 1 < n ? (int32_t)i + 1 : -1;
    }
    w->n_heap = 0;
    for (size_t i = 1; i < n; i++) try_pair(tok, w, (int32_t)i - 1, (int32_t)i);
    while (w->n_heap) {
        bpe_pair p = heap_pop(w);
        if (w->id[p.left] != p.left_id || w->id[p.right] != p.right_id || w->next[p.left] != p.right)
            continue;
        const tok_merge *m = find_merge(tok, p.left_id, p.right_id);
        w->id[p.left] = m->result;
        w->id[p.right] = -2; /* merged away */
        int32_t after = w->next[p.right];
        w->next[p.left] = after;
        if (after >= 0) w->prev[after] = p.left;
        try_pair(tok, w, w->prev[p.left], p.left);
        try_pair(tok, w, p.left, after);
    }
    for (int32_t i = 0; i >= 0; i = w->next[i]) {
        int32_t id = w->id[i];
        /* A byte the vocabulary cannot spell (bytes that never occur in
         * UTF-8 often have no token): the unknown token if the vocabulary has
         * a real one, else nothing, never a control token standing in. */
        if (id < 0 && tok->unk >= 0 && tok->type[tok->unk] == CLV_TOKEN_UNKNOWN) id = tok->unk;
        if (id < 0) continue;
        clv_status st = tok_ids_push(out, id);
        if (st) return st;
    }
    return CLV_OK;
}

clv_status tok_bpe_encode(const clv_tokenizer *tok, const char *text, size_t len, tok_ids *out) {
    uint32_t *cps = malloc((len + 1) * sizeof *cps);
    uint32_t *offs = malloc((len + 1) * sizeof *offs);
    clv_span_vec pieces = {0}, tmp = {0};
    bpe_work w = {0};
    clv_status st = CLV_OK;
    if (!cps || !offs) {
        st = clv_fail(CLV_ERR_NOMEM, "out of memory tokenizing %zu bytes", len);
        goto done;
    }
    uint32_t n = 0;
    for (size_t i = 0; i < len;) {
        offs[n] = (uint32_t)i;
        i += clv_utf8_decode((const uint8_t *)text + i, len - i, &cps[n]);
        n++;
    }
    offs[n] = (uint32_t)len;
    if ((st = clv_pretok_split(tok->pretok, cps, n, &pieces, &tmp))) goto done;

    size_t longest = 0;
    for (size_t i = 0; i < pieces.n; i++) {
        size_t bytes = offs[pieces.data[i].end] - offs[pieces.data[i].start];
        if (bytes > longest) longest = bytes;
    }
    w.id = malloc((longest + 1) * sizeof *w.id);
    w.prev = malloc((longest + 1) * sizeof *w.prev);
    w.next = malloc((longest + 1) * sizeof *w.next);
    w.heap = malloc(3 * (longest + 1) * sizeof *w.heap);
    w.mapped = malloc(2 * longest + 1);
    if (!w.id || !w.prev || !w.next || !w.heap || !w.mapped) {
        st = clv_fail(CLV_ERR_NOMEM, "out of memory tokenizing %zu bytes", len);
        goto done;
    }
    for (size_t i = 0; i < pieces.n && st == CLV_OK; i++) {
        uint32_t a = offs[pieces.data[i].start], b = offs[pieces.data[i].end];
        st = merge_piece(tok, &w, (const uint8_t *)text + a, b - a, out);
    }
done:
    free(cps);
    free(offs);
    clv_span_vec_free(&pieces);
    clv_span_vec_free(&tmp);
    free(w.id);
    free(w.prev);
    free(w.next);
    free(w.heap);
    free(w.mapped);
    return st;
}
