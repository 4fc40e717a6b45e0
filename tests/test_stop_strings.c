/* Stop strings: stops where a direct search over the whole text says, holds
 * back exactly the bytes that could begin a stop string, and does not depend
 * on how the text is split into pieces. */
#include <stdint.h>

#include "stop_strings.h"
#include "test.h"

static clv_stop_matcher *make(const char *const *stops, int n) {
    clv_stop_matcher *m = NULL;
    clv_status st = clv_stop_matcher_create(stops, n, &m);
    CHECK_STATUS(st, CLV_OK);
    return m;
}

static void test_basic(void) {
    const char *stops[] = {"</s>", "User:"};
    clv_stop_matcher *m = make(stops, 2);
    if (!m) return;
    clv_stop_result r = clv_stop_matcher_feed(m, "Hello", 5);
    CHECK(!r.stopped && r.n_fed == 5 && r.n_safe == 5 && r.n_hold == 0);
    r = clv_stop_matcher_feed(m, " wor<", 5);
    CHECK(!r.stopped && r.n_fed == 10 && r.n_hold == 1 && r.n_safe == 9);
    r = clv_stop_matcher_feed(m, "/", 1);
    CHECK(!r.stopped && r.n_hold == 2);
    r = clv_stop_matcher_feed(m, "x U", 3); /* "</x" cannot continue; " U" can be "User:" */
    CHECK(!r.stopped && r.n_fed == 14 && r.n_hold == 1);
    r = clv_stop_matcher_feed(m, "ser", 3);
    CHECK(!r.stopped && r.n_hold == 4);
    r = clv_stop_matcher_feed(m, ": and more", 10);
    CHECK(r.stopped && r.stop_index == 1 && r.stop_offset == 13 && r.n_safe == 13);
    CHECK(r.n_fed == 27 && r.n_hold == 14);
    /* After the stop: counted, not matched. */
    r = clv_stop_matcher_feed(m, "</s>", 4);
    CHECK(r.stopped && r.stop_index == 1 && r.stop_offset == 13 && r.n_fed == 31);
    clv_stop_result q = clv_stop_matcher_state(m);
    CHECK(q.stopped && q.n_fed == 31 && q.n_safe == 13);

    clv_stop_matcher_reset(m);
    r = clv_stop_matcher_state(m);
    CHECK(!r.stopped && r.n_fed == 0 && r.n_hold == 0 && r.stop_index == -1);
    r = clv_stop_matcher_feed(m, "a</s>b", 6);
    CHECK(r.stopped && r.stop_index == 0 && r.stop_offset == 1 && r.n_safe == 1);
    clv_stop_matcher_free(m);

    /* Overlaps: the first byte that completes one wins; the longest at that byte. */
    const char *s2[] = {"abcd", "c", "xbc"};
    m = make(s2, 3);
    if (!m) return;
    r = clv_stop_matcher_feed(m, "zabcd", 5);
    CHECK(r.stopped && r.stop_index == 1 && r.stop_offset == 3);
    clv_stop_matcher_reset(m);
    r = clv_stop_matcher_feed(m, "xbc", 3);
    CHECK(r.stopped && r.stop_index == 2 && r.stop_offset == 0);
    clv_stop_matcher_free(m);

    /* Bytes >= 0x80 (UTF-8) and a repeated string. */
    const char *s3[] = {"\xe2\x80\x94", "\xe2\x80\x94"};
    m = make(s3, 2);
    if (!m) return;
    r = clv_stop_matcher_feed(m, "a\xe2\x80", 3);
    CHECK(!r.stopped && r.n_hold == 2);
    r = clv_stop_matcher_feed(m, "\x94", 1);
    CHECK(r.stopped && r.stop_index == 0 && r.stop_offset == 1);
    clv_stop_matcher_free(m);

    /* No stop strings: never stops, holds nothing. */
    m = make(NULL, 0);
    if (!m) return;
    r = clv_stop_matcher_feed(m, "anything", 8);
    CHECK(!r.stopped && r.n_hold == 0 && r.n_safe == 8);
    r = clv_stop_matcher_feed(m, "", 0);
    CHECK(!r.stopped && r.n_fed == 8);
    clv_stop_matcher_free(m);
}

static void test_invalid(void) {
    clv_stop_matcher *m = (clv_stop_matcher *)1;
    const char *empty[] = {"ok", ""};
    CHECK_STATUS(clv_stop_matcher_create(empty, 2, &m), CLV_ERR_ARG);
    CHECK(m == NULL);
    CHECK(strstr(clv_last_error(), "string 1 is empty") != NULL);
    const char *null[] = {NULL};
    CHECK_STATUS(clv_stop_matcher_create(null, 1, &m), CLV_ERR_ARG);
    CHECK_STATUS(clv_stop_matcher_create(NULL, 2, &m), CLV_ERR_ARG);
    CHECK_STATUS(clv_stop_matcher_create(empty, -1, &m), CLV_ERR_ARG);
    static char big[CLV_STOP_STRINGS_MAX_BYTES + 2];
    memset(big, 'a', sizeof big - 1);
    const char *toobig[] = {big};
    CHECK_STATUS(clv_stop_matcher_create(toobig, 1, &m), CLV_ERR_ARG);
    big[CLV_STOP_STRINGS_MAX_BYTES] = '\0'; /* exactly at the limit: fine */
    CHECK_STATUS(clv_stop_matcher_create(toobig, 1, &m), CLV_OK);
    clv_stop_matcher_free(m);
    clv_stop_matcher_free(NULL);
}

/* ---- random texts against a direct search ------------------------------- */

static uint64_t rng_state = 0x12345678abcdefull;
static uint32_t rnd(uint32_t n) {
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(rng_state >> 33) % n;
}

/* First end (exclusive) where a stop string ends; longest there. */
static bool ref_first_stop(const char *t, size_t n, char stops[][8], int n_stops, size_t *start,
                           int *idx) {
    for (size_t e = 1; e <= n; e++) {
        size_t best_len = 0;
        int best = -1;
        for (int s = 0; s < n_stops; s++) {
            size_t l = strlen(stops[s]);
            if (l <= e && memcmp(t + e - l, stops[s], l) == 0 && l > best_len) {
                best_len = l;
                best = s;
            }
        }
        if (best >= 0) {
            /* a repeated string reports its first index */
            for (int s = 0; s < best; s++)
                if (strcmp(stops[s], stops[best]) == 0) best = s;
            *start = e - best_len;
            *idx = best;
            return true;
        }
    }
    return false;
}

/* Longest suffix of t[0..n) that is a proper prefix of a stop string. */
static size_t ref_hold(const char *t, size_t n, char stops[][8], int n_stops) {
    size_t best = 0;
    for (int s = 0; s < n_stops; s++) {
        size_t l = strlen(stops[s]);
        for (size_t k = l - 1; k > best; k--)
            if (k <= n && memcmp(t + n - k, stops[s], k) == 0) {
                best = k;
                break;
            }
    }
    return best;
}

static void test_random(void) {
    const char alphabet[] = "abc";
    int mismatches = 0;
    for (int trial = 0; trial < 3000; trial++) {
        char stops[4][8];
        const char *ptrs[4];
        int n_stops = 1 + (int)rnd(4);
        for (int s = 0; s < n_stops; s++) {
            int l = 1 + (int)rnd(5);
            for (int i = 0; i < l; i++) stops[s][i] = alphabet[rnd(3)];
            stops[s][l] = '\0';
            ptrs[s] = stops[s];
        }
        char text[64];
        size_t n = 1 + rnd(sizeof text);
        for (size_t i = 0; i < n; i++) text[i] = alphabet[rnd(3)];

        size_t want_start = 0;
        int want_idx = -1;
        bool want_stop = ref_first_stop(text, n, stops, n_stops, &want_start, &want_idx);

        clv_stop_matcher *m = NULL;
        if (clv_stop_matcher_create(ptrs, n_stops, &m) != CLV_OK) {
            CHECK_MSG(0, "create: %s", clv_last_error());
            return;
        }
        /* Two different splits must agree with the reference at every step. */
        for (int split = 0; split < 2; split++) {
            clv_stop_matcher_reset(m);
            size_t pos = 0, shown = 0;
            clv_stop_result r = clv_stop_matcher_state(m);
            while (pos < n) {
                size_t len = split == 0 ? 1 : 1 + rnd(7);
                if (len > n - pos) len = n - pos;
                r = clv_stop_matcher_feed(m, text + pos, len);
                pos += len;
                if (r.n_fed != pos || r.n_safe < shown || r.n_safe + r.n_hold != r.n_fed) mismatches++;
                shown = r.n_safe;
                if (r.stopped) break;
                /* Not stopped yet: no stop string ends in text[0..pos). */
                if (want_stop && want_start + strlen(stops[want_idx]) <= pos) mismatches++;
                if (r.n_hold != ref_hold(text, pos, stops, n_stops)) mismatches++;
            }
            if (r.stopped != want_stop) mismatches++;
            if (want_stop && (r.stop_offset != want_start || r.stop_index != want_idx ||
                              r.n_safe != want_start))
                mismatches++;
        }
        clv_stop_matcher_free(m);
    }
    CHECK_EQ_INT(mismatches, 0);
}

int main(void) {
    test_basic();
    test_invalid();
    test_random();
    return test_finish("test_stop_strings");
}
