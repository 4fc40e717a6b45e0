/* Stop strings on streamed text.
 *
 * The generation loop feeds the detokenized text piece by piece. The matcher
 * says when a stop string has appeared and how many trailing bytes must be
 * held back because they could be the start of one, so that streamed output
 * never shows part of a stop string:
 *
 *     r = clv_stop_matcher_feed(m, piece, len);   // text so far: n_fed bytes
 *     show text[shown .. r.n_safe); shown = r.n_safe;
 *     if (r.stopped) finish (the text ends at r.stop_offset == r.n_safe)
 *
 * Matching is on bytes, case-sensitive. It stops at the first byte that
 * completes a stop string (when several complete there, the longest one), so
 * the answer does not depend on how the text was split into pieces. One
 * automaton (Aho-Corasick, a full table of transitions) is built at create;
 * a byte costs one table look-up and nothing is allocated while feeding. */
#ifndef CLV_STOP_STRINGS_H
#define CLV_STOP_STRINGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "status.h"

typedef struct clv_stop_matcher clv_stop_matcher;

/* Limit on the summed length of the stop strings (the table grows with it). */
#define CLV_STOP_STRINGS_MAX_BYTES 4096

/* n_stops may be 0 (never stops). CLV_ERR_ARG for a NULL or empty string or
 * a total length over CLV_STOP_STRINGS_MAX_BYTES. The strings are copied. */
clv_status clv_stop_matcher_create(const char *const *stops, int32_t n_stops,
                                   clv_stop_matcher **out);
void clv_stop_matcher_free(clv_stop_matcher *m); /* accepts NULL */

/* Back to no text fed (for the next request). */
void clv_stop_matcher_reset(clv_stop_matcher *m);

typedef struct clv_stop_result {
    bool stopped;         /* a stop string has appeared (in this piece or before) */
    int32_t stop_index;   /* which one (index given at create), -1 when not stopped */
    uint64_t stop_offset; /* where it begins, in bytes since reset (valid when stopped) */
    uint64_t n_fed;       /* bytes fed since reset */
    uint64_t n_safe;      /* the text before this offset can be shown */
    uint64_t n_hold;      /* trailing bytes not to show yet: n_fed - n_safe */
} clv_stop_result;

/* Feeds one piece. After a stop, further pieces are counted in n_fed (and
 * n_hold) but not matched. */
clv_stop_result clv_stop_matcher_feed(clv_stop_matcher *m, const char *piece, size_t len);

/* The state after the last feed, without feeding. */
clv_stop_result clv_stop_matcher_state(const clv_stop_matcher *m);

#endif
