/* Growable byte buffer; see strbuf.h. */
#include "strbuf.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void clv_strbuf_init(clv_strbuf *b) { memset(b, 0, sizeof *b); }

void clv_strbuf_free(clv_strbuf *b) {
    if (!b) return;
    free(b->data);
    memset(b, 0, sizeof *b);
}

bool clv_strbuf_reserve(clv_strbuf *b, size_t n) {
    if (b->failed) return false;
    if (n > SIZE_MAX / 2 - b->len - 1 || (b->limit && b->len + n > b->limit)) {
        b->failed = true;
        b->over_limit = true;
        return false;
    }
    size_t need = b->len + n + 1;
    if (need <= b->cap) return true;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need) cap *= 2;
    char *p = realloc(b->data, cap);
    if (!p) {
        b->failed = true;
        return false;
    }
    b->data = p;
    b->cap = cap;
    return true;
}

void clv_strbuf_append(clv_strbuf *b, const char *s, size_t n) {
    if (!clv_strbuf_reserve(b, n)) return;
    if (n) memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void clv_strbuf_puts(clv_strbuf *b, const char *s) { clv_strbuf_append(b, s, strlen(s)); }

void clv_strbuf_putc(clv_strbuf *b, char c) { clv_strbuf_append(b, &c, 1); }

void clv_strbuf_printf(clv_strbuf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char small[256];
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->failed = true;
        return;
    }
    if ((size_t)n < sizeof small) {
        clv_strbuf_append(b, small, (size_t)n);
        return;
    }
    if (!clv_strbuf_reserve(b, (size_t)n)) return;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void clv_strbuf_clear(clv_strbuf *b) {
    b->len = 0;
    if (b->data) b->data[0] = '\0';
}

clv_status clv_strbuf_status(const clv_strbuf *b) {
    if (!b->failed) return CLV_OK;
    if (b->over_limit)
        return clv_fail(CLV_ERR_RANGE, "text grew past its limit of %zu bytes", b->limit);
    return clv_fail(CLV_ERR_NOMEM, "out of memory building text (%zu bytes so far)", b->len);
}

char *clv_strbuf_take(clv_strbuf *b, size_t *len) {
    char *p = b->data;
    if (!p) p = calloc(1, 1);
    if (len) *len = b->data ? b->len : 0;
    memset(b, 0, sizeof *b);
    return p;
}
