/* Tokenizers from GGUF metadata: SentencePiece-style BPE with scores
 * (`tokenizer.ggml.model = "llama"`) and byte-level BPE with merges ("gpt2"),
 * text to token ids and back.
 *
 * Special tokens: control and unknown tokens come from text only when the
 * caller asks (parse_special); user-defined tokens (type 4) are always matched
 * whole, as the tokenizers that define them do. Where a text matches several,
 * the leftmost, then longest, wins.
 *
 * A loaded tokenizer is immutable: any number of threads may use it at once. */
#ifndef CLV_TOKENIZER_H
#define CLV_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gguf.h"
#include "status.h"

typedef struct clv_tokenizer clv_tokenizer;

/* tokenizer.ggml.token_type values. */
typedef enum clv_token_type {
    CLV_TOKEN_UNDEFINED = 0,
    CLV_TOKEN_NORMAL = 1,
    CLV_TOKEN_UNKNOWN = 2,
    CLV_TOKEN_CONTROL = 3,
    CLV_TOKEN_USER_DEFINED = 4,
    CLV_TOKEN_UNUSED = 5,
    CLV_TOKEN_BYTE = 6,
} clv_token_type;

typedef enum clv_tokenizer_kind {
    CLV_TOKENIZER_SPM = 1, /* "llama": scores, byte fallback, space prefix */
    CLV_TOKENIZER_BPE = 2, /* "gpt2": byte-level, merges, pre-tokenizer */
} clv_tokenizer_kind;

/* Reads tokenizer.ggml.* from an open GGUF file and builds the tokenizer; it
 * keeps no reference to `g`. A missing or malformed vocabulary (no merges
 * for BPE, ids out of range, bad UTF-8, unknown model or pre-tokenizer) is
 * an error whose message names the key and the token. */
clv_status clv_tokenizer_load_gguf(const clv_gguf *g, clv_tokenizer **out);
void clv_tokenizer_free(clv_tokenizer *tok);

typedef struct clv_tokenize_params {
    bool add_special;   /* BOS/EOS where the vocabulary asks for them (default true) */
    bool parse_special; /* control-token text in the input becomes that token (default false) */
} clv_tokenize_params;

clv_tokenize_params clv_tokenize_default_params(void);

/* Tokenizes text[0, len). Writes at most `cap` ids to out and the count to
 * *n_out. When cap is too small: CLV_ERR_RANGE, with *n_out the count needed
 * (out then holds the first cap ids). clv_tokenize_max_tokens(len) ids always
 * suffice. Invalid UTF-8 is tokenized byte by byte, never rejected. */
clv_status clv_tokenize(const clv_tokenizer *tok, const char *text, size_t len,
                        const clv_tokenize_params *params, int32_t *out, size_t cap,
                        size_t *n_out);

/* An upper bound on the ids tokenizing len bytes gives. */
static inline size_t clv_tokenize_max_tokens(size_t len) { return len + 3; }

/* --- vocabulary -------------------------------------------------------------- */

clv_tokenizer_kind clv_tokenizer_get_kind(const clv_tokenizer *tok);
int32_t clv_tokenizer_n_vocab(const clv_tokenizer *tok);
/* tokenizer.ggml.pre ("default" when absent). */
const char *clv_tokenizer_pre(const clv_tokenizer *tok);

/* Special ids, -1 when the vocabulary has none. EOT comes from
 * tokenizer.ggml.eot_token_id, or else from a control token with a known
 * end-of-turn spelling (<|eot_id|>, <|im_end|>, <end_of_turn>, ...). */
int32_t clv_tokenizer_bos(const clv_tokenizer *tok);
int32_t clv_tokenizer_eos(const clv_tokenizer *tok);
int32_t clv_tokenizer_eot(const clv_tokenizer *tok);
int32_t clv_tokenizer_unk(const clv_tokenizer *tok);
int32_t clv_tokenizer_pad(const clv_tokenizer *tok);
bool clv_tokenizer_add_bos(const clv_tokenizer *tok);
bool clv_tokenizer_add_eos(const clv_tokenizer *tok);
/* End of generation: EOS, EOT or another end marker of the vocabulary. */
bool clv_tokenizer_is_eog(const clv_tokenizer *tok, int32_t id);

/* Type of a token (CLV_TOKEN_UNDEFINED for an id out of range). */
clv_token_type clv_token_get_type(const clv_tokenizer *tok, int32_t id);
/* The token's text as the vocabulary spells it (NULL for an id out of
 * range); *len gets its length. */
const char *clv_token_text(const clv_tokenizer *tok, int32_t id, size_t *len);
/* The id whose vocabulary text is text[0, len), or -1. */
int32_t clv_tokenizer_find(const clv_tokenizer *tok, const char *text, size_t len);

/* --- back to text ----------------------------------------------------------- */

/* The bytes a token stands for. Control, unknown and unused tokens give
 * their text only when `special` is set, and nothing otherwise. Copies at most
 * cap bytes (no terminator) and returns the full length; -1 for an id out of
 * range. */
int64_t clv_token_to_piece(const clv_tokenizer *tok, int32_t id, bool special, char *buf,
                           size_t cap);

/* The longest piece any token gives, for sizing buffers. */
size_t clv_tokenizer_max_piece(const clv_tokenizer *tok);

/* Streaming detokenizer: feed ids one at a time, get text that never ends
 * inside a UTF-8 sequence (an unfinished sequence is held back until the
 * next token completes it, or until clv_detok_flush). A SentencePiece
 * vocabulary's added leading space is dropped from the first text. */
typedef struct clv_detok clv_detok;

typedef struct clv_detok_params {
    bool special;     /* show control tokens' text (default false) */
    bool strip_space; /* drop the leading space a space-prefix vocabulary adds (default true) */
} clv_detok_params;

clv_detok_params clv_detok_default_params(void);

clv_status clv_detok_create(const clv_tokenizer *tok, const clv_detok_params *params,
                            clv_detok **out);
void clv_detok_free(clv_detok *d);
/* Starts a new text (held bytes are dropped). */
void clv_detok_reset(clv_detok *d);

/* Adds one token. *text points at the bytes now complete (valid until the
 * next call on d), *len is their count (possibly 0). An id out of range is
 * CLV_ERR_RANGE. */
clv_status clv_detok_push(clv_detok *d, int32_t id, const char **text, size_t *len);
/* The held-back bytes of an unfinished sequence, as they are. */
void clv_detok_flush(clv_detok *d, const char **text, size_t *len);

/* Whole-sequence convenience: detokenizes ids into buf (at most cap bytes,
 * no terminator) and returns the full length; -1 if an id is out of range. */
int64_t clv_detokenize(const clv_tokenizer *tok, const int32_t *ids, size_t n,
                       const clv_detok_params *params, char *buf, size_t cap);

#endif
