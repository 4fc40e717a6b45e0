/* JSON: a parser into a tree, a tree builder, and a writer whose output is
 * byte-identical to Python's json.dumps for the same options (chat-template
 * `tojson`, `cleave inspect --json`, the HTTP server).
 *
 * Input is treated as hostile: the parser is strict RFC 8259 (no comments,
 * trailing commas or NaN), rejects invalid UTF-8 and control characters in
 * strings, bounds nesting depth and input size, and reports the line and
 * column of the first error through clv_last_error(). Duplicate object keys
 * keep the last value at the first key's position, as Python's dict does. */
#ifndef CLV_JSON_H
#define CLV_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "status.h"
#include "strbuf.h"

typedef enum clv_json_kind {
    CLV_JSON_NULL = 0,
    CLV_JSON_BOOL,
    CLV_JSON_NUMBER,
    CLV_JSON_STRING,
    CLV_JSON_ARRAY,
    CLV_JSON_OBJECT,
} clv_json_kind;

/* A node of a tree. Freeing the root frees everything below it. */
typedef struct clv_json clv_json;

/* --- parsing ----------------------------------------------------------------- */

typedef struct clv_json_parse_params {
    size_t max_depth; /* nesting of arrays/objects (default 512) */
    size_t max_bytes; /* input size (default 256 MiB) */
} clv_json_parse_params;

clv_json_parse_params clv_json_default_parse_params(void);

/* Parses exactly one JSON value (surrounded by optional whitespace and an
 * optional UTF-8 byte order mark). params may be NULL for the defaults. On
 * failure *out is NULL and the message reads "line L, column C: ...". */
clv_status clv_json_parse(const char *text, size_t len, const clv_json_parse_params *params,
                          clv_json **out);
/* The same for a whole file; messages start with the path. */
clv_status clv_json_parse_file(const char *path, const clv_json_parse_params *params,
                               clv_json **out);

void clv_json_free(clv_json *v); /* accepts NULL */

/* --- reading ----------------------------------------------------------------- */

clv_json_kind clv_json_kind_of(const clv_json *v); /* NULL reads as CLV_JSON_NULL */
const char *clv_json_kind_name(clv_json_kind kind); /* "null", "object", ... */

bool clv_json_bool(const clv_json *v);       /* false unless v is true */
double clv_json_number(const clv_json *v);   /* 0 unless v is a number */
/* True for a number written without fraction or exponent that fits int64
 * (Python's json gives such numbers type int). */
bool clv_json_is_int(const clv_json *v);
int64_t clv_json_int(const clv_json *v);     /* the integer, or the number truncated */
/* NUL-terminated string (it may hold NULs: see the length), NULL unless v is
 * a string. */
const char *clv_json_string(const clv_json *v);
size_t clv_json_string_len(const clv_json *v);

/* Elements of an array or members of an object; 0 for anything else. */
size_t clv_json_count(const clv_json *v);
/* Element i of an array, NULL when out of range or not an array. */
const clv_json *clv_json_at(const clv_json *array, size_t i);
/* Member by key, NULL when absent or not an object. */
const clv_json *clv_json_get(const clv_json *object, const char *key);
const clv_json *clv_json_getn(const clv_json *object, const char *key, size_t key_len);
/* Member i of an object in document order. */
const char *clv_json_key_at(const clv_json *object, size_t i, size_t *key_len);
const clv_json *clv_json_value_at(const clv_json *object, size_t i);

/* Convenience: the string member `key`, or `fallback` when it is absent or
 * not a string. */
const char *clv_json_get_string(const clv_json *object, const char *key, const char *fallback);

/* --- building ---------------------------------------------------------------- */

/* Each returns NULL when allocation fails; the adders accept NULL items and
 * then return CLV_ERR_NOMEM, so calls can be nested without checks. */
clv_json *clv_json_new_null(void);
clv_json *clv_json_new_bool(bool b);
clv_json *clv_json_new_number(double d);
clv_json *clv_json_new_int(int64_t i);
clv_json *clv_json_new_string(const char *s, size_t len);
clv_json *clv_json_new_cstring(const char *s);
clv_json *clv_json_new_array(void);
clv_json *clv_json_new_object(void);
/* A deep copy of v (NULL on allocation failure). */
clv_json *clv_json_clone(const clv_json *v);

/* Take ownership of item, also on failure (then item is freed). */
clv_status clv_json_append(clv_json *array, clv_json *item);
/* Replaces the value of an existing key in place, else adds the key last. */
clv_status clv_json_set(clv_json *object, const char *key, clv_json *item);
clv_status clv_json_setn(clv_json *object, const char *key, size_t key_len, clv_json *item);

/* --- writing ----------------------------------------------------------------- */

typedef struct clv_json_write_params {
    int indent;           /* < 0: one line (Python's indent=None); >= 0: newline
                             and `indent` spaces per level */
    const char *item_sep; /* NULL: ", " on one line, "," when indenting */
    const char *key_sep;  /* NULL: ": " */
    bool ensure_ascii;    /* escape every non-ASCII character as \uXXXX */
    bool sort_keys;       /* members by key (code point order) */
    bool allow_nan;       /* write NaN/Infinity as Python does (not valid JSON);
                             off: CLV_ERR_RANGE for a non-finite number */
} clv_json_write_params;

/* One line, ", " and ": ", UTF-8 kept as is (json.dumps(ensure_ascii=False)). */
clv_json_write_params clv_json_default_write_params(void);

/* Appends the JSON text of v to out; params may be NULL for the defaults. */
clv_status clv_json_write(clv_strbuf *out, const clv_json *v, const clv_json_write_params *params);
clv_status clv_json_fwrite(FILE *f, const clv_json *v, const clv_json_write_params *params);
/* malloc'd NUL-terminated text, or NULL with clv_last_error() set. */
char *clv_json_to_string(const clv_json *v, const clv_json_write_params *params, size_t *len);

/* One string as a quoted JSON string literal, escaped as json.dumps does.
 * Invalid UTF-8 in s is written as U+FFFD so the output is always valid. */
void clv_json_write_string(clv_strbuf *out, const char *s, size_t len, bool ensure_ascii);
clv_status clv_json_fwrite_string(FILE *f, const char *s, size_t len, bool ensure_ascii);

/* A double as Python's repr(float) writes it ("1.0", "1e-05", "1e+16",
 * "0.1"): the shortest text that reads back to the same value. Non-finite
 * values give "nan", "inf", "-inf". Returns the length; buf needs 32 bytes. */
size_t clv_json_format_double(char buf[32], double d);

/* --- streaming writer -------------------------------------------------------- */

/* Writes a document piece by piece, with the layout of clv_json_write.
 * Errors (a key outside an object, unbalanced ends, allocation or I/O) are
 * sticky and reported by clv_json_writer_finish. */
#define CLV_JSON_WRITER_MAX_DEPTH 128

typedef struct clv_json_writer {
    clv_strbuf *buf; /* exactly one of buf and file */
    FILE *file;
    clv_json_write_params params;
    int depth;
    bool after_key;  /* a key was written; its value comes next */
    bool done;       /* a complete top-level value was written */
    clv_status status;
    uint32_t count[CLV_JSON_WRITER_MAX_DEPTH]; /* items written at each level */
    bool is_object[CLV_JSON_WRITER_MAX_DEPTH];
} clv_json_writer;

void clv_json_writer_init_buf(clv_json_writer *w, clv_strbuf *out, const clv_json_write_params *p);
void clv_json_writer_init_file(clv_json_writer *w, FILE *f, const clv_json_write_params *p);
void clv_json_begin_array(clv_json_writer *w);
void clv_json_end_array(clv_json_writer *w);
void clv_json_begin_object(clv_json_writer *w);
void clv_json_end_object(clv_json_writer *w);
void clv_json_key(clv_json_writer *w, const char *key);
void clv_json_keyn(clv_json_writer *w, const char *key, size_t len);
void clv_json_null(clv_json_writer *w);
void clv_json_bool_value(clv_json_writer *w, bool b);
void clv_json_int_value(clv_json_writer *w, int64_t i);
void clv_json_uint_value(clv_json_writer *w, uint64_t u);
void clv_json_double_value(clv_json_writer *w, double d);
void clv_json_string_value(clv_json_writer *w, const char *s);
void clv_json_stringn_value(clv_json_writer *w, const char *s, size_t len);
/* A whole tree as one value. */
void clv_json_tree_value(clv_json_writer *w, const clv_json *v);
/* CLV_OK when one complete value was written and nothing failed. */
clv_status clv_json_writer_finish(clv_json_writer *w);

/* --- UTF-8 helpers (shared with the chat-template interpreter) ---------------- */

/* Decodes one code point from s[0..len); returns its byte length (1..4) and
 * stores it in *cp, or returns 0 for an invalid or truncated sequence
 * (overlongs and surrogates are invalid). */
size_t clv_json_utf8_decode(const char *s, size_t len, uint32_t *cp);
/* Encodes cp (<= 0x10FFFF) into out; returns 1..4. */
size_t clv_json_utf8_encode(uint32_t cp, char out[4]);
/* True when all of s is valid UTF-8. */
bool clv_json_utf8_valid(const char *s, size_t len);

#endif
