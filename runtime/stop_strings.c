#include "stop_strings.h"

#include <stdlib.h>
#include <string.h>

struct clv_stop_matcher {
    int32_t n_states;
    int32_t *next;      /* [n_states * 256]: the state after a byte */
    int32_t *depth;     /* [n_states]: length of the prefix a state stands for */
    int32_t *match_len; /* [n_states]: longest stop string ending here, 0: none */
    int32_t *match_idx; /* [n_states]: its index */

    int32_t state;
    uint64_t n_fed;
    bool stopped;
    int32_t stop_index;
    uint64_t stop_offset;
};

void clv_stop_matcher_free(clv_stop_matcher *m) {
    if (!m) return;
    free(m->next);
    free(m->depth);
    free(m->match_len);
    free(m->match_idx);
    free(m);
}

/* Builds the automaton: a trie of the strings, then failure links in
 * breadth-first order, which turn every missing edge into the edge of the
 * longest proper suffix that is still a prefix of some stop string. */
static bool build(clv_stop_matcher *m, const char *const *stops, int32_t n_stops,
                  size_t total) {
    const int32_t cap = (int32_t)total + 1;
    m->next = malloc(sizeof *m->next * (size_t)cap * 256);
    m->depth = malloc(sizeof *m->depth * (size_t)cap);
    m->match_len = calloc((size_t)cap, sizeof *m->match_len);
    m->match_idx = malloc(sizeof *m->match_idx * (size_t)cap);
    int32_t *fail = malloc(sizeof *fail * (size_t)cap);
    int32_t *queue = malloc(sizeof *queue * (size_t)cap);
    bool ok = m->next && m->depth && m->match_len && m->match_idx && fail && queue;
    if (ok) {
        for (size_t i = 0; i < (size_t)cap * 256; i++) m->next[i] = -1;
        m->n_states = 1;
        m->depth[0] = 0;
        m->match_idx[0] = -1;
        for (int32_t s = 0; s < n_stops; s++) {
            int32_t u = 0;
            for (const unsigned char *c = (const unsigned char *)stops[s]; *c; c++) {
                int32_t *edge = &m->next[(size_t)u * 256 + *c];
                if (*edge < 0) {
                    int32_t v = m->n_states++;
                    m->depth[v] = m->depth[u] + 1;
                    m->match_idx[v] = -1;
                    *edge = v;
                }
                u = *edge;
            }
            if (m->match_len[u] == 0) { /* a repeated string keeps its first index */
                m->match_len[u] = m->depth[u];
                m->match_idx[u] = s;
            }
        }
        int32_t head = 0, tail = 0;
        fail[0] = 0;
        for (int c = 0; c < 256; c++) {
            int32_t *edge = &m->next[c];
            if (*edge < 0) {
                *edge = 0;
            } else {
                fail[*edge] = 0;
                queue[tail++] = *edge;
            }
        }
        while (head < tail) {
            int32_t u = queue[head++];
            /* A state's own string is longer than its suffix's. */
            if (m->match_len[u] == 0) {
                m->match_len[u] = m->match_len[fail[u]];
                m->match_idx[u] = m->match_idx[fail[u]];
            }
            for (int c = 0; c < 256; c++) {
                int32_t *edge = &m->next[(size_t)u * 256 + c];
                int32_t via_fail = m->next[(size_t)fail[u] * 256 + c];
                if (*edge < 0) {
                    *edge = via_fail;
                } else {
                    fail[*edge] = via_fail;
                    queue[tail++] = *edge;
                }
            }
        }
    }
    free(fail);
    free(queue);
    return ok;
}

clv_status clv_stop_matcher_create(const char *const *stops, int32_t n_stops,
                                   clv_stop_matcher **out) {
    *out = NULL;
    if (n_stops < 0 || (n_stops > 0 && !stops))
        return clv_fail(CLV_ERR_ARG, "stop strings: %d strings at %p", (int)n_stops,
                        (const void *)stops);
    size_t total = 0;
    for (int32_t i = 0; i < n_stops; i++) {
        if (!stops[i]) return clv_fail(CLV_ERR_ARG, "stop strings: string %d is NULL", (int)i);
        size_t len = strlen(stops[i]);
        if (len == 0) return clv_fail(CLV_ERR_ARG, "stop strings: string %d is empty", (int)i);
        total += len;
        if (total > CLV_STOP_STRINGS_MAX_BYTES)
            return clv_fail(CLV_ERR_ARG, "stop strings: more than %d bytes in all",
                            CLV_STOP_STRINGS_MAX_BYTES);
    }
    clv_stop_matcher *m = calloc(1, sizeof *m);
    if (!m || !build(m, stops, n_stops, total)) {
        clv_stop_matcher_free(m);
        return clv_fail(CLV_ERR_NOMEM, "stop strings: out of memory");
    }
    clv_stop_matcher_reset(m);
    *out = m;
    return CLV_OK;
}

void clv_stop_matcher_reset(clv_stop_matcher *m) {
    m->state = 0;
    m->n_fed = 0;
    m->stopped = false;
    m->stop_index = -1;
    m->stop_offset = 0;
}

clv_stop_result clv_stop_matcher_state(const clv_stop_matcher *m) {
    clv_stop_result r;
    r.stopped = m->stopped;
    r.stop_index = m->stop_index;
    r.stop_offset = m->stop_offset;
    r.n_fed = m->n_fed;
    /* Not stopped: the bytes of the current state could begin a stop string. */
    r.n_safe = m->stopped ? m->stop_offset : m->n_fed - (uint64_t)m->depth[m->state];
    r.n_hold = r.n_fed - r.n_safe;
    return r;
}

clv_stop_result clv_stop_matcher_feed(clv_stop_matcher *m, const char *piece, size_t len) {
    const unsigned char *b = (const unsigned char *)piece;
    size_t i = 0;
    if (!m->stopped) {
        int32_t state = m->state;
        for (; i < len; i++) {
            state = m->next[(size_t)state * 256 + b[i]];
            if (m->match_len[state] > 0) {
                i++;
                m->stopped = true;
                m->stop_index = m->match_idx[state];
                m->stop_offset = m->n_fed + i - (uint64_t)m->match_len[state];
                break;
            }
        }
        m->state = state;
    }
    m->n_fed += len;
    return clv_stop_matcher_state(m);
}
