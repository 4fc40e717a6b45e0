/* A growable byte buffer for building text (JSON output, rendered prompts).
 *
 * Allocation failure is sticky: after one, every append is a no-op and
 * clv_strbuf_status() returns CLV_ERR_NOMEM, so callers can append freely
 * and check once at the end. The bytes are always NUL-terminated (after
 * `len`), which makes the buffer usable as a C string when it holds no NULs. */
#ifndef CLV_STRBUF_H
#define CLV_STRBUF_H

#include <stdbool.h>
#include <stddef.h>

#include "status.h"

typedef struct clv_strbuf {
    char *data;   /* NULL until the first append */
    size_t len;   /* bytes used, excluding the terminator */
    size_t cap;   /* bytes allocated */
    size_t limit; /* appends past this many bytes fail (0: no limit) */
    bool failed;  /* an append could not allocate or hit the limit */
    bool over_limit; /* ... and it was the limit */
} clv_strbuf;

/* A zero-initialised clv_strbuf is empty and ready; this is the same. */
void clv_strbuf_init(clv_strbuf *b);
void clv_strbuf_free(clv_strbuf *b); /* accepts NULL; leaves b empty */

void clv_strbuf_append(clv_strbuf *b, const char *s, size_t n);
void clv_strbuf_puts(clv_strbuf *b, const char *s);
void clv_strbuf_putc(clv_strbuf *b, char c);
void clv_strbuf_printf(clv_strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Makes room for n more bytes; returns false (and marks failure) if it cannot. */
bool clv_strbuf_reserve(clv_strbuf *b, size_t n);
void clv_strbuf_clear(clv_strbuf *b); /* len = 0, keeps the memory */

/* CLV_OK, or CLV_ERR_NOMEM / CLV_ERR_RANGE (limit) after a failed append;
 * the message says which. */
clv_status clv_strbuf_status(const clv_strbuf *b);

/* Hands the bytes to the caller (malloc'd, NUL-terminated, never NULL unless
 * allocation failed) and leaves b empty. */
char *clv_strbuf_take(clv_strbuf *b, size_t *len);

#endif
