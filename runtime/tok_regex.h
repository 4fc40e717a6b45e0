/* A small backtracking regex engine over decoded code points, for the
 * pre-tokenizer splits that tokenizers define as regular expressions.
 *
 * Semantics follow Perl/Oniguruma (leftmost match, first alternative that
 * succeeds, greedy quantifiers), which is what Hugging Face tokenizers use.
 * Supported: literals, `.`, classes `[...]` with ranges and negation,
 * \s \S \d \D \w \W \p{X} \P{X} (general categories, one or two letters, and
 * LC), \r \n \t \f \v \xHH \x{H...} \uHHHH, escaped punctuation, groups
 * (...) and (?:...), (?i:...) (ASCII case folding), lookahead (?=...) and
 * (?!...), alternation, greedy * + ? {n} {n,} {n,m}, anchors ^ $ (start and
 * end of the text being split). Not supported: lookbehind, backreferences,
 * lazy or possessive quantifiers. \s is the Unicode White_Space property.
 *
 * Matching never reads outside [begin, end), so a split applied to a piece
 * sees only that piece, as in a sequence of split pre-tokenizers. */
#ifndef CLV_TOK_REGEX_H
#define CLV_TOK_REGEX_H

#include <stddef.h>
#include <stdint.h>

#include "status.h"

typedef struct clv_regex clv_regex;

/* A piece of split text: code point positions [start, end). */
typedef struct clv_span {
    uint32_t start, end;
} clv_span;

/* A growable array of spans. */
typedef struct clv_span_vec {
    clv_span *data;
    size_t n, cap;
} clv_span_vec;

clv_status clv_span_vec_push(clv_span_vec *v, uint32_t start, uint32_t end);
void clv_span_vec_free(clv_span_vec *v);

/* Compiles a pattern (UTF-8). A syntax error or an unsupported construct is
 * CLV_ERR_ARG with a message naming the offset. */
clv_status clv_regex_compile(const char *pattern, clv_regex **out);
void clv_regex_free(clv_regex *re);

/* Splits cps[begin, end) into matches and the gaps between them, appending
 * both, in order, to `out` (the "isolated" split behaviour). Empty matches
 * split nothing. */
clv_status clv_regex_split(const clv_regex *re, const uint32_t *cps, uint32_t begin,
                           uint32_t end, clv_span_vec *out);

#endif
