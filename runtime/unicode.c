/* UTF-8 decoding and encoding for the tokenizer (categories: unicode.h). */
#include "unicode.h"

/* Expected sequence length for a lead byte (0: not a lead byte), and the
 * allowed range of the second byte, which rules out overlong forms,
 * surrogates and code points above U+10FFFF. */
static size_t utf8_lead(uint8_t b, uint8_t *lo, uint8_t *hi) {
    *lo = 0x80;
    *hi = 0xBF;
    if (b < 0x80) return 1;
    if (b < 0xC2) return 0;
    if (b < 0xE0) return 2;
    if (b < 0xF0) {
        if (b == 0xE0) *lo = 0xA0;
        if (b == 0xED) *hi = 0x9F;
        return 3;
    }
    if (b < 0xF5) {
        if (b == 0xF0) *lo = 0x90;
        if (b == 0xF4) *hi = 0x8F;
        return 4;
    }
    return 0;
}

size_t clv_utf8_decode(const uint8_t *s, size_t n, uint32_t *cp) {
    uint8_t lo, hi;
    size_t len = utf8_lead(s[0], &lo, &hi);
    if (len == 1) {
        *cp = s[0];
        return 1;
    }
    if (len == 0 || len > n || s[1] < lo || s[1] > hi) goto invalid;
    for (size_t i = 2; i < len; i++)
        if ((s[i] & 0xC0) != 0x80) goto invalid;
    uint32_t c = s[0] & (0x7F >> len);
    for (size_t i = 1; i < len; i++) c = (c << 6) | (s[i] & 0x3F);
    *cp = c;
    return len;
invalid:
    *cp = CLV_UTF8_INVALID_BASE + s[0];
    return 1;
}

size_t clv_utf8_encode(uint32_t cp, uint8_t out[4]) {
    if (cp >= CLV_UTF8_INVALID_BASE) {
        out[0] = (uint8_t)(cp - CLV_UTF8_INVALID_BASE);
        return 1;
    }
    if (cp < 0x80) {
        out[0] = (uint8_t)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (uint8_t)(0xC0 | (cp >> 6));
        out[1] = (uint8_t)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (uint8_t)(0xE0 | (cp >> 12));
        out[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (uint8_t)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (uint8_t)(0xF0 | (cp >> 18));
    out[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (uint8_t)(0x80 | (cp & 0x3F));
    return 4;
}

bool clv_utf8_valid(const uint8_t *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        uint32_t cp;
        size_t len = clv_utf8_decode(s + i, n - i, &cp);
        if (cp >= CLV_UTF8_INVALID_BASE) return false;
        i += len;
    }
    return true;
}

size_t clv_utf8_incomplete_tail(const uint8_t *s, size_t n) {
    /* The lead byte of an unfinished sequence is at most 3 bytes back. */
    for (size_t back = 1; back <= 3 && back <= n; back++) {
        uint8_t b = s[n - back];
        if ((b & 0xC0) == 0x80) continue; /* continuation: look further back */
        uint8_t lo, hi;
        size_t len = utf8_lead(b, &lo, &hi);
        if (len <= back) return 0; /* complete, or not a lead byte */
        if (back >= 2 && (s[n - back + 1] < lo || s[n - back + 1] > hi)) return 0;
        return back;
    }
    return 0;
}
