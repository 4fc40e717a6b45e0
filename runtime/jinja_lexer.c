/* Jinja lexer: template source -> tokens.
 *
 * Mirrors jinja2's lexer with the settings transformers uses for chat
 * templates: trim_blocks (the first newline after a block or comment tag is
 * dropped), lstrip_blocks (spaces and tabs before a block or comment tag on
 * its own line are dropped), `-` and `+` whitespace control, newlines
 * normalized to "\n" and one trailing newline removed. Whitespace means
 * Python's str.isspace(), as in jinja2's regular expressions. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jinja_internal.h"

#define MAX_BRACKETS 256

bool clv_jj_isspace(uint32_t cp) {
    if (cp < 0x80) return cp == ' ' || (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x1F);
    return cp == 0x85 || cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) ||
           cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

typedef struct lexer {
    const char *s; /* normalized source */
    size_t n;
    size_t pos;
    size_t loc_pos; /* line/col below are those of loc_pos */
    uint32_t line, col;
    jj_token *toks;
    size_t ntok, cap;
    jj_arena *arena;
    char brackets[MAX_BRACKETS];
    int depth;
    bool line_starting; /* the previous match ended with a newline */
    clv_status st;
} lexer;

/* Line and column (in characters) of any position, from the start. */
static void locate(const char *s, size_t at, uint32_t *line, uint32_t *col) {
    uint32_t l = 1, c = 1;
    for (size_t i = 0; i < at; i++) {
        if (s[i] == '\n') {
            l++;
            c = 1;
        } else if (((unsigned char)s[i] & 0xC0) != 0x80) {
            c++;
        }
    }
    *line = l;
    *col = c;
}

static clv_status lex_error(lexer *lx, size_t at, clv_status st, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static clv_status lex_error(lexer *lx, size_t at, clv_status st, const char *fmt, ...) {
    if (lx->st != CLV_OK) return lx->st;
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    uint32_t line, col;
    locate(lx->s, at, &line, &col);
    lx->st = clv_fail(st, "template line %u, column %u: %s", line, col, msg);
    return lx->st;
}

/* Tokens are emitted in source order, so their positions only move forward. */
static void advance_loc(lexer *lx, size_t to) {
    for (size_t i = lx->loc_pos; i < to; i++) {
        if (lx->s[i] == '\n') {
            lx->line++;
            lx->col = 1;
        } else if (((unsigned char)lx->s[i] & 0xC0) != 0x80) {
            lx->col++;
        }
    }
    lx->loc_pos = to;
}

static jj_token *emit(lexer *lx, jj_tok_kind kind, size_t at) {
    if (lx->ntok == lx->cap) {
        size_t cap = lx->cap ? lx->cap * 2 : 256;
        jj_token *t = realloc(lx->toks, cap * sizeof *t);
        if (!t) {
            lex_error(lx, at, CLV_ERR_NOMEM, "out of memory");
            return NULL;
        }
        lx->toks = t;
        lx->cap = cap;
    }
    advance_loc(lx, at);
    jj_token *t = &lx->toks[lx->ntok++];
    memset(t, 0, sizeof *t);
    t->kind = (uint8_t)kind;
    t->line = lx->line;
    t->col = lx->col;
    return t;
}

/* Python-whitespace code point at i: its byte length, or 0. */
static size_t space_at(const char *s, size_t n, size_t i) {
    uint32_t cp;
    size_t len = clv_json_utf8_decode(s + i, n - i, &cp);
    return len && clv_jj_isspace(cp) ? len : 0;
}

static size_t skip_space(const char *s, size_t n, size_t i) {
    size_t k;
    while (i < n && (k = space_at(s, n, i)) > 0) i += k;
    return i;
}

/* End of s[from:to] with trailing whitespace removed (str.rstrip()). */
static size_t rstrip_end(const char *s, size_t from, size_t to) {
    size_t end = from, i = from;
    while (i < to) {
        size_t k = space_at(s, to, i);
        if (k) {
            i += k;
        } else {
            uint32_t cp;
            size_t len = clv_json_utf8_decode(s + i, to - i, &cp);
            i += len ? len : 1;
            end = i;
        }
    }
    return end;
}

/* The text before a tag, with the tag's whitespace control applied; `sign` is
 * '-', '+' or 0; `lstrip` says whether lstrip_blocks applies to this tag. */
static void emit_text(lexer *lx, size_t from, size_t to, char sign, bool lstrip) {
    if (sign == '-') {
        to = rstrip_end(lx->s, from, to);
    } else if (sign != '+' && lstrip) {
        size_t l_pos = from;
        bool had_newline = false;
        for (size_t i = to; i > from; i--) {
            if (lx->s[i - 1] == '\n') {
                l_pos = i;
                had_newline = true;
                break;
            }
        }
        if ((had_newline || lx->line_starting) && l_pos < to && skip_space(lx->s, to, l_pos) == to)
            to = l_pos;
    }
    if (to > from) {
        jj_token *t = emit(lx, JT_DATA, from);
        if (t) t->s = (jj_str){lx->s + from, to - from};
    }
}

/* "{%" [-+] ws "raw" ws ("-%}" ws | "%}") at i: the end of the match, or 0. */
static size_t match_raw_begin(const char *s, size_t n, size_t i, char *sign) {
    size_t p = i + 2;
    *sign = 0;
    if (p < n && (s[p] == '-' || s[p] == '+')) *sign = s[p++];
    p = skip_space(s, n, p);
    if (p + 3 > n || memcmp(s + p, "raw", 3)) return 0;
    p = skip_space(s, n, p + 3);
    if (p + 3 <= n && !memcmp(s + p, "-%}", 3)) return skip_space(s, n, p + 3);
    if (p + 2 <= n && !memcmp(s + p, "%}", 2)) return p + 2;
    return 0;
}

/* "{%" [-+] ws "endraw" ws ("+%}" | "-%}" ws | "%}" "\n"?) at i. */
static size_t match_raw_end(const char *s, size_t n, size_t i, char *sign) {
    size_t p = i + 2;
    *sign = 0;
    if (p < n && (s[p] == '-' || s[p] == '+')) *sign = s[p++];
    p = skip_space(s, n, p);
    if (p + 6 > n || memcmp(s + p, "endraw", 6)) return 0;
    p = skip_space(s, n, p + 6);
    if (p + 3 <= n && !memcmp(s + p, "+%}", 3)) return p + 3;
    if (p + 3 <= n && !memcmp(s + p, "-%}", 3)) return skip_space(s, n, p + 3);
    if (p + 2 <= n && !memcmp(s + p, "%}", 2)) return p + 2 + (p + 2 < n && s[p + 2] == '\n');
    return 0;
}

static bool is_digit(char c) { return c >= '0' && c <= '9'; }

/* (\d+_)*\d+ at i: its end, or i when there is no digit. */
static size_t scan_digits(const char *s, size_t n, size_t i) {
    if (i >= n || !is_digit(s[i])) return i;
    size_t p = i;
    for (;;) {
        while (p < n && is_digit(s[p])) p++;
        if (p + 1 < n && s[p] == '_' && is_digit(s[p + 1])) {
            p++;
            continue;
        }
        return p;
    }
}

/* e[+-]?digits at i: its end, or i. */
static size_t scan_exponent(const char *s, size_t n, size_t i) {
    if (i >= n || (s[i] != 'e' && s[i] != 'E')) return i;
    size_t p = i + 1;
    if (p < n && (s[p] == '+' || s[p] == '-')) p++;
    size_t q = scan_digits(s, n, p);
    return q > p ? q : i;
}

static int digit_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'z') return c - 'a' + 10;
    if (c >= 'A' && c <= 'Z') return c - 'A' + 10;
    return 99;
}

/* A number token at lx->pos (a digit). */
static void lex_number(lexer *lx) {
    const char *s = lx->s;
    size_t n = lx->n, i = lx->pos;
    bool after_dot = i > 0 && s[i - 1] == '.';
    size_t int_end = scan_digits(s, n, i);
    size_t float_end = 0;
    if (!after_dot) {
        size_t frac = int_end < n && s[int_end] == '.' ? scan_digits(s, n, int_end + 1) : int_end;
        if (frac > int_end + 1) {
            float_end = scan_exponent(s, n, frac);
        } else {
            size_t e = scan_exponent(s, n, int_end);
            if (e > int_end) float_end = e;
        }
    }
    if (float_end) {
        char buf[128];
        size_t w = 0;
        for (size_t k = i; k < float_end && w < sizeof buf - 1; k++)
            if (s[k] != '_') buf[w++] = s[k];
        buf[w] = '\0';
        jj_token *t = emit(lx, JT_FLOAT, i);
        if (t) t->f = strtod(buf, NULL);
        lx->pos = float_end;
        return;
    }
    /* Integers: 0b/0o/0x prefixes, decimal without leading zeros, or zeros. */
    int base = 10;
    size_t p = i, digits_from;
    if (s[i] == '0' && i + 1 < n && strchr("bBoOxX", s[i + 1]) && s[i + 1]) {
        char k = (char)(s[i + 1] | 0x20);
        base = k == 'b' ? 2 : k == 'o' ? 8 : 16;
        p = i + 2;
        digits_from = p;
        for (;;) {
            size_t q = p < n && s[p] == '_' ? p + 1 : p;
            if (q < n && digit_value(s[q]) < base) p = q + 1;
            else break;
        }
        if (p == digits_from) { /* "0x" without digits: just the zero */
            base = 10;
            p = i + 1;
            digits_from = i;
        }
    } else if (s[i] == '0') {
        p = i + 1;
        while (p + 1 < n && s[p] == '_' && s[p + 1] == '0') p += 2;
        while (p < n && s[p] == '0') p++;
        digits_from = i;
    } else {
        p = scan_digits(s, n, i);
        digits_from = i;
    }
    jj_token *t = emit(lx, JT_INT, i);
    if (t) {
        uint64_t v = 0;
        for (size_t k = digits_from; k < p; k++) {
            if (s[k] == '_') continue;
            uint64_t d = (uint64_t)digit_value(s[k]);
            if (v > (UINT64_MAX - d) / (uint64_t)base) {
                t->big = true;
                break;
            }
            v = v * (uint64_t)base + d;
        }
        if (v > (uint64_t)INT64_MAX) t->big = true;
        t->i = (int64_t)v;
    }
    lx->pos = p;
}

/* Python's unicode-escape decoding of a string literal's body into the arena. */
static bool unescape(lexer *lx, size_t from, size_t to, jj_str *out) {
    char *buf = clv_jj_alloc(lx->arena, (to - from) * 2 + 1);
    if (!buf) {
        lex_error(lx, from, CLV_ERR_NOMEM, "out of memory");
        return false;
    }
    const char *s = lx->s;
    size_t w = 0, i = from;
    while (i < to) {
        if (s[i] != '\\') {
            buf[w++] = s[i++];
            continue;
        }
        char e = s[i + 1]; /* the string scanner guarantees a character here */
        size_t esc_at = i;
        i += 2;
        uint32_t cp;
        int want = 0;
        switch (e) {
        case '\n': continue; /* line continuation */
        case '\\': buf[w++] = '\\'; continue;
        case '\'': buf[w++] = '\''; continue;
        case '"': buf[w++] = '"'; continue;
        case 'a': buf[w++] = '\a'; continue;
        case 'b': buf[w++] = '\b'; continue;
        case 'f': buf[w++] = '\f'; continue;
        case 'n': buf[w++] = '\n'; continue;
        case 'r': buf[w++] = '\r'; continue;
        case 't': buf[w++] = '\t'; continue;
        case 'v': buf[w++] = '\v'; continue;
        case 'x': want = 2; break;
        case 'u': want = 4; break;
        case 'U': want = 8; break;
        case 'N':
            lex_error(lx, esc_at, CLV_ERR_UNSUPPORTED, "\\N{...} escapes are not supported");
            return false;
        default:
            if (e >= '0' && e <= '7') {
                cp = (uint32_t)(e - '0');
                for (int k = 0; k < 2 && i < to && s[i] >= '0' && s[i] <= '7'; k++)
                    cp = cp * 8 + (uint32_t)(s[i++] - '0');
                w += clv_json_utf8_encode(cp, buf + w);
                continue;
            }
            if ((unsigned char)e >= 0x80) {
                /* jinja2 first rewrites non-ASCII characters as \x.. / \u.. / \U..
                 * escapes, so a backslash before one stays a backslash and the
                 * character comes out as its escape text. */
                size_t len = clv_json_utf8_decode(s + i - 1, to - (i - 1), &cp);
                i += len - 1;
                buf[w++] = '\\';
                w += (size_t)sprintf(buf + w, cp <= 0xFF ? "x%02x" : cp <= 0xFFFF ? "u%04x" : "U%08x", cp);
                continue;
            }
            buf[w++] = '\\'; /* unknown escapes are kept */
            buf[w++] = e;
            continue;
        }
        cp = 0;
        for (int k = 0; k < want; k++) {
            int d = i < to ? digit_value(s[i]) : 99;
            if (d >= 16) {
                lex_error(lx, esc_at, CLV_ERR_FORMAT, "truncated \\%c escape in string", e);
                return false;
            }
            cp = cp * 16 + (uint32_t)d;
            i++;
        }
        if (cp > 0x10FFFF) {
            lex_error(lx, esc_at, CLV_ERR_FORMAT, "illegal Unicode character in string escape");
            return false;
        }
        if (cp >= 0xD800 && cp <= 0xDFFF) cp = 0xFFFD; /* no UTF-8 form */
        w += clv_json_utf8_encode(cp, buf + w);
    }
    buf[w] = '\0';
    out->p = buf;
    out->n = w;
    return true;
}

static void lex_string(lexer *lx) {
    const char *s = lx->s;
    size_t start = lx->pos, i = start + 1;
    char q = s[start];
    while (i < lx->n && s[i] != q) i += s[i] == '\\' ? 2 : 1;
    if (i >= lx->n) {
        lex_error(lx, start, CLV_ERR_FORMAT, "unterminated string literal");
        return;
    }
    jj_token *t = emit(lx, JT_STRING, start);
    if (t) unescape(lx, start + 1, i, &t->s);
    lx->pos = i + 1;
}

static const struct {
    const char *text;
    uint8_t op;
} operators[] = {
    {"//", JO_FLOORDIV}, {"**", JO_POW}, {"==", JO_EQ}, {"!=", JO_NE}, {">=", JO_GTEQ},
    {"<=", JO_LTEQ}, {"+", JO_ADD}, {"-", JO_SUB}, {"/", JO_DIV}, {"*", JO_MUL},
    {"%", JO_MOD}, {"~", JO_TILDE}, {"[", JO_LBRACKET}, {"]", JO_RBRACKET},
    {"(", JO_LPAREN}, {")", JO_RPAREN}, {"{", JO_LBRACE}, {"}", JO_RBRACE},
    {">", JO_GT}, {"<", JO_LT}, {"=", JO_ASSIGN}, {".", JO_DOT}, {":", JO_COLON},
    {"|", JO_PIPE}, {",", JO_COMMA}, {";", JO_SEMICOLON},
};

static void lex_operator(lexer *lx) {
    const char *s = lx->s + lx->pos;
    size_t left = lx->n - lx->pos;
    for (size_t k = 0; k < sizeof operators / sizeof operators[0]; k++) {
        size_t len = strlen(operators[k].text);
        if (len > left || memcmp(s, operators[k].text, len)) continue;
        uint8_t op = operators[k].op;
        char c = s[0];
        if (op == JO_LPAREN || op == JO_LBRACKET || op == JO_LBRACE) {
            if (lx->depth >= MAX_BRACKETS) {
                lex_error(lx, lx->pos, CLV_ERR_RANGE, "brackets nest deeper than %d levels", MAX_BRACKETS);
                return;
            }
            lx->brackets[lx->depth++] = op == JO_LPAREN ? ')' : op == JO_LBRACKET ? ']' : '}';
        } else if (op == JO_RPAREN || op == JO_RBRACKET || op == JO_RBRACE) {
            if (lx->depth == 0) {
                lex_error(lx, lx->pos, CLV_ERR_FORMAT, "unexpected '%c'", c);
                return;
            }
            char want = lx->brackets[--lx->depth];
            if (want != c) {
                lex_error(lx, lx->pos, CLV_ERR_FORMAT, "unexpected '%c', expected '%c'", c, want);
                return;
            }
        }
        jj_token *t = emit(lx, JT_OP, lx->pos);
        if (t) {
            t->op = op;
            t->s = (jj_str){s, len};
        }
        lx->pos += len;
        return;
    }
    uint32_t cp = (unsigned char)s[0];
    clv_json_utf8_decode(s, left, &cp);
    if (cp >= 0x20 && cp < 0x7F)
        lex_error(lx, lx->pos, CLV_ERR_FORMAT, "unexpected character '%c' inside a tag", (char)cp);
    else
        lex_error(lx, lx->pos, CLV_ERR_FORMAT, "unexpected character U+%04X inside a tag", cp);
}

/* Tokens of one {{ }} or {% %} tag, after its opener; ends after the closer. */
static void lex_tag(lexer *lx, bool block, size_t opened_at) {
    const char *s = lx->s;
    size_t n = lx->n;
    lx->depth = 0;
    while (lx->st == CLV_OK) {
        size_t i = lx->pos;
        if (i >= n) {
            lex_error(lx, opened_at, CLV_ERR_FORMAT, "unclosed '%s' tag (end of template)",
                      block ? "{%" : "{{");
            return;
        }
        if (lx->depth == 0) {
            size_t end = 0;
            if (block) {
                if (i + 3 <= n && !memcmp(s + i, "+%}", 3)) end = i + 3;
                else if (i + 3 <= n && !memcmp(s + i, "-%}", 3)) end = skip_space(s, n, i + 3);
                else if (i + 2 <= n && !memcmp(s + i, "%}", 2)) end = i + 2 + (i + 2 < n && s[i + 2] == '\n');
            } else {
                if (i + 3 <= n && !memcmp(s + i, "-}}", 3)) end = skip_space(s, n, i + 3);
                else if (i + 2 <= n && !memcmp(s + i, "}}", 2)) end = i + 2;
            }
            if (end) {
                emit(lx, block ? JT_BLOCK_END : JT_VAR_END, i);
                lx->pos = end;
                lx->line_starting = s[end - 1] == '\n';
                return;
            }
        }
        char c = s[i];
        size_t k = space_at(s, n, i);
        if (k) {
            lx->pos = skip_space(s, n, i);
        } else if (is_digit(c)) {
            lex_number(lx);
        } else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_') {
            size_t p = i + 1;
            while (p < n && ((s[p] >= 'a' && s[p] <= 'z') || (s[p] >= 'A' && s[p] <= 'Z') ||
                             is_digit(s[p]) || s[p] == '_'))
                p++;
            jj_token *t = emit(lx, JT_NAME, i);
            if (t) t->s = (jj_str){s + i, p - i};
            lx->pos = p;
        } else if (c == '\'' || c == '"') {
            lex_string(lx);
        } else {
            lex_operator(lx);
        }
    }
}

/* Normalized copy: \r\n and \r become \n; one trailing newline is dropped. */
static char *normalize(const char *src, size_t len, jj_arena *arena, size_t *out_len) {
    char *s = clv_jj_alloc(arena, len + 1);
    if (!s) return NULL;
    size_t w = 0;
    for (size_t i = 0; i < len; i++) {
        if (src[i] == '\r') {
            s[w++] = '\n';
            if (i + 1 < len && src[i + 1] == '\n') i++;
        } else {
            s[w++] = src[i];
        }
    }
    if (w > 0 && s[w - 1] == '\n') w--;
    s[w] = '\0';
    *out_len = w;
    return s;
}

clv_status clv_jj_lex(const char *src, size_t len, jj_arena *arena, jj_token **tokens,
                      size_t *n_tokens) {
    *tokens = NULL;
    *n_tokens = 0;
    if (!clv_json_utf8_valid(src, len)) {
        size_t bad = 0;
        while (bad < len) {
            uint32_t cp;
            size_t k = clv_json_utf8_decode(src + bad, len - bad, &cp);
            if (!k) break;
            bad += k;
        }
        return clv_fail(CLV_ERR_FORMAT, "template is not valid UTF-8 (byte %zu)", bad);
    }
    lexer lx = {.arena = arena, .line = 1, .col = 1, .line_starting = true};
    lx.s = normalize(src, len, arena, &lx.n);
    if (!lx.s) return clv_fail(CLV_ERR_NOMEM, "out of memory reading the template");
    const char *s = lx.s;
    size_t n = lx.n;
    while (lx.st == CLV_OK && lx.pos < n) {
        /* The next tag opener: "{{", "{%" or "{#". */
        size_t t = lx.pos;
        while (t + 1 < n && !(s[t] == '{' && (s[t + 1] == '{' || s[t + 1] == '%' || s[t + 1] == '#'))) t++;
        if (t + 1 >= n) {
            jj_token *tok = emit(&lx, JT_DATA, lx.pos);
            if (tok) tok->s = (jj_str){s + lx.pos, n - lx.pos};
            break;
        }
        char kind = s[t + 1];
        char sign = 0;
        size_t raw_end = kind == '%' ? match_raw_begin(s, n, t, &sign) : 0;
        if (raw_end) {
            emit_text(&lx, lx.pos, t, sign, true);
            lx.line_starting = s[raw_end - 1] == '\n';
            size_t e = raw_end, close = 0;
            char end_sign = 0;
            for (; e + 1 < n; e++) {
                if (s[e] == '{' && s[e + 1] == '%' && (close = match_raw_end(s, n, e, &end_sign))) break;
            }
            if (!close) {
                lex_error(&lx, t, CLV_ERR_FORMAT, "missing end of raw directive");
                break;
            }
            emit_text(&lx, raw_end, e, end_sign, true);
            lx.pos = close;
            lx.line_starting = s[close - 1] == '\n';
            continue;
        }
        size_t after = t + 2;
        if (after < n && (s[after] == '-' || s[after] == '+')) sign = s[after++];
        emit_text(&lx, lx.pos, t, sign, kind != '{');
        if (kind == '#') {
            size_t h = after;
            while (h + 1 < n && !(s[h] == '#' && s[h + 1] == '}')) h++;
            if (h + 1 >= n) {
                lex_error(&lx, t, CLV_ERR_FORMAT, "missing end of comment tag");
                break;
            }
            size_t end = h + 2;
            char close_sign = h > after ? s[h - 1] : 0;
            if (close_sign == '-') end = skip_space(s, n, end);
            else if (close_sign != '+' && end < n && s[end] == '\n') end++;
            lx.pos = end;
            lx.line_starting = s[end - 1] == '\n';
            continue;
        }
        bool block = kind == '%';
        emit(&lx, block ? JT_BLOCK_BEGIN : JT_VAR_BEGIN, t);
        lx.pos = after;
        lx.line_starting = false;
        lex_tag(&lx, block, t);
    }
    if (lx.st == CLV_OK) emit(&lx, JT_EOF, lx.n);
    if (lx.st != CLV_OK) {
        free(lx.toks);
        return lx.st;
    }
    *tokens = lx.toks;
    *n_tokens = lx.ntok;
    return CLV_OK;
}
