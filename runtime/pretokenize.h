/* Pre-tokenizers of byte-level BPE vocabularies: how text is cut into pieces
 * before merging, by the name in `tokenizer.ggml.pre`. Each is a sequence of
 * regex splits (tok_regex.h); each split cuts every piece of the previous one
 * into its matches and the gaps between them. */
#ifndef CLV_PRETOKENIZE_H
#define CLV_PRETOKENIZE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "status.h"
#include "tok_regex.h"

typedef struct clv_pretok clv_pretok;

/* NULL or "default" gives the GPT-2 split. An unknown name is
 * CLV_ERR_UNSUPPORTED, with a message naming it. */
clv_status clv_pretok_create(const char *name, clv_pretok **out);
void clv_pretok_free(clv_pretok *pt);

/* The canonical name of the split family ("gpt-2", "llama3", ...). */
const char *clv_pretok_family(const clv_pretok *pt);

/* Whether a piece found whole in the vocabulary skips merging (llama3). */
bool clv_pretok_ignore_merges(const clv_pretok *pt);

/* Splits cps[0, n) into pieces, replacing the contents of `out`; `tmp` is
 * scratch space the caller may reuse between calls. */
clv_status clv_pretok_split(const clv_pretok *pt, const uint32_t *cps, uint32_t n,
                            clv_span_vec *out, clv_span_vec *tmp);

/* The i-th name clv_pretok_create accepts, NULL past the last (for tests). */
const char *clv_pretok_name_at(size_t i);

#endif
