/* JSON parser, tree, builder and writer; see json.h. */
#include "json.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct json_key {
    char *s;
    size_t len;
} json_key;

struct clv_json {
    clv_json_kind kind;
    bool is_int;
    union {
        bool b;
        struct {
            double d;
            int64_t i;
        } num;
        struct {
            char *s;
            size_t len;
        } str;
        struct {
            clv_json **items;
            size_t n, cap;
        } arr;
        struct {
            json_key *keys;
            clv_json **vals;
            size_t n, cap;
            uint32_t *index; /* member positions sorted by key; NULL: search linearly */
        } obj;
    } u;
};

/* Objects at least this large get a sorted index for lookups. */
#define INDEX_MIN 16

/* --- UTF-8 ---------------------------------------------------------------------- */

size_t clv_json_utf8_decode(const char *str, size_t len, uint32_t *cp) {
    const unsigned char *s = (const unsigned char *)str;
    if (len == 0) return 0;
    unsigned c = s[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    size_t n;
    uint32_t v, min;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2, v = c & 0x1F, min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3, v = c & 0x0F, min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4, v = c & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (len < n) return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        v = (v << 6) | (s[i] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return 0;
    *cp = v;
    return n;
}

size_t clv_json_utf8_encode(uint32_t cp, char out[4]) {
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

bool clv_json_utf8_valid(const char *s, size_t len) {
    size_t i = 0;
    while (i < len) {
        if ((unsigned char)s[i] < 0x80) {
            i++;
            continue;
        }
        uint32_t cp;
        size_t n = clv_json_utf8_decode(s + i, len - i, &cp);
        if (!n) return false;
        i += n;
    }
    return true;
}

/* --- nodes ---------------------------------------------------------------------- */

static clv_json *node_new(clv_json_kind kind) {
    clv_json *v = calloc(1, sizeof *v);
    if (v) v->kind = kind;
    return v;
}

clv_json *clv_json_new_null(void) { return node_new(CLV_JSON_NULL); }

clv_json *clv_json_new_bool(bool b) {
    clv_json *v = node_new(CLV_JSON_BOOL);
    if (v) v->u.b = b;
    return v;
}

clv_json *clv_json_new_number(double d) {
    clv_json *v = node_new(CLV_JSON_NUMBER);
    if (v) {
        v->u.num.d = d;
        v->u.num.i = (d >= -9.2e18 && d <= 9.2e18) ? (int64_t)d : 0;
    }
    return v;
}

clv_json *clv_json_new_int(int64_t i) {
    clv_json *v = node_new(CLV_JSON_NUMBER);
    if (v) {
        v->u.num.d = (double)i;
        v->u.num.i = i;
        v->is_int = true;
    }
    return v;
}

clv_json *clv_json_new_string(const char *s, size_t len) {
    clv_json *v = node_new(CLV_JSON_STRING);
    if (!v) return NULL;
    v->u.str.s = malloc(len + 1);
    if (!v->u.str.s) {
        free(v);
        return NULL;
    }
    if (len) memcpy(v->u.str.s, s, len);
    v->u.str.s[len] = '\0';
    v->u.str.len = len;
    return v;
}

clv_json *clv_json_new_cstring(const char *s) { return clv_json_new_string(s, strlen(s)); }

clv_json *clv_json_new_array(void) { return node_new(CLV_JSON_ARRAY); }

clv_json *clv_json_new_object(void) { return node_new(CLV_JSON_OBJECT); }

void clv_json_free(clv_json *v) {
    if (!v) return;
    switch (v->kind) {
    case CLV_JSON_STRING:
        free(v->u.str.s);
        break;
    case CLV_JSON_ARRAY:
        for (size_t i = 0; i < v->u.arr.n; i++) clv_json_free(v->u.arr.items[i]);
        free(v->u.arr.items);
        break;
    case CLV_JSON_OBJECT:
        for (size_t i = 0; i < v->u.obj.n; i++) {
            free(v->u.obj.keys[i].s);
            clv_json_free(v->u.obj.vals[i]);
        }
        free(v->u.obj.keys);
        free(v->u.obj.vals);
        free(v->u.obj.index);
        break;
    default:
        break;
    }
    free(v);
}

static bool array_push(clv_json *a, clv_json *item) {
    if (a->u.arr.n == a->u.arr.cap) {
        size_t cap = a->u.arr.cap ? a->u.arr.cap * 2 : 4;
        clv_json **p = realloc(a->u.arr.items, cap * sizeof *p);
        if (!p) return false;
        a->u.arr.items = p;
        a->u.arr.cap = cap;
    }
    a->u.arr.items[a->u.arr.n++] = item;
    return true;
}

clv_status clv_json_append(clv_json *array, clv_json *item) {
    if (!item) return clv_fail(CLV_ERR_NOMEM, "out of memory building JSON");
    if (!array || array->kind != CLV_JSON_ARRAY) {
        clv_json_free(item);
        return clv_fail(CLV_ERR_TYPE, "JSON append: target is not an array");
    }
    if (!array_push(array, item)) {
        clv_json_free(item);
        return clv_fail(CLV_ERR_NOMEM, "out of memory building JSON");
    }
    return CLV_OK;
}

static int key_cmp(const char *a, size_t alen, const char *b, size_t blen) {
    int c = memcmp(a, b, alen < blen ? alen : blen);
    if (c) return c;
    return alen < blen ? -1 : alen > blen;
}

/* Position of key in the object, or -1. */
static ptrdiff_t object_find(const clv_json *o, const char *key, size_t len) {
    if (o->u.obj.index) {
        size_t lo = 0, hi = o->u.obj.n;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            uint32_t at = o->u.obj.index[mid];
            int c = key_cmp(o->u.obj.keys[at].s, o->u.obj.keys[at].len, key, len);
            if (c == 0) return at;
            if (c < 0) lo = mid + 1;
            else hi = mid;
        }
        return -1;
    }
    for (size_t i = 0; i < o->u.obj.n; i++)
        if (o->u.obj.keys[i].len == len && !memcmp(o->u.obj.keys[i].s, key, len)) return (ptrdiff_t)i;
    return -1;
}

static bool object_push(clv_json *o, char *key, size_t len, clv_json *val) {
    if (o->u.obj.n == o->u.obj.cap) {
        size_t cap = o->u.obj.cap ? o->u.obj.cap * 2 : 4;
        json_key *k = realloc(o->u.obj.keys, cap * sizeof *k);
        if (!k) return false;
        o->u.obj.keys = k;
        clv_json **v = realloc(o->u.obj.vals, cap * sizeof *v);
        if (!v) return false;
        o->u.obj.vals = v;
        o->u.obj.cap = cap;
    }
    o->u.obj.keys[o->u.obj.n].s = key;
    o->u.obj.keys[o->u.obj.n].len = len;
    o->u.obj.vals[o->u.obj.n] = val;
    o->u.obj.n++;
    return true;
}

/* qsort has no context argument: the keys being sorted are passed here. */
static _Thread_local const json_key *sort_keys_base;

static int index_cmp(const void *pa, const void *pb) {
    uint32_t a = *(const uint32_t *)pa, b = *(const uint32_t *)pb;
    int c = key_cmp(sort_keys_base[a].s, sort_keys_base[a].len, sort_keys_base[b].s,
                    sort_keys_base[b].len);
    if (c) return c;
    return a < b ? -1 : a > b; /* equal keys stay in document order */
}

/* Sorts member positions by key. Also merges duplicate keys (keeping the last
 * value at the first position) when `dedupe`. Returns false on OOM. */
static bool object_build_index(clv_json *o, bool dedupe) {
    size_t n = o->u.obj.n;
    free(o->u.obj.index);
    o->u.obj.index = NULL;
    if (n < INDEX_MIN) return true;
    uint32_t *idx = malloc(n * sizeof *idx);
    if (!idx) return false;
    for (size_t i = 0; i < n; i++) idx[i] = (uint32_t)i;
    sort_keys_base = o->u.obj.keys;
    qsort(idx, n, sizeof *idx, index_cmp);
    bool dup = false;
    for (size_t i = 1; i < n && dedupe; i++) {
        json_key *a = &o->u.obj.keys[idx[i - 1]], *b = &o->u.obj.keys[idx[i]];
        if (!key_cmp(a->s, a->len, b->s, b->len)) dup = true;
    }
    if (dup) {
        /* For each run of equal keys, the first position takes the last value;
         * the others are dropped, then the arrays are compacted. */
        bool *drop = calloc(n, sizeof *drop);
        if (!drop) {
            free(idx);
            return false;
        }
        for (size_t i = 0; i < n;) {
            size_t j = i + 1;
            json_key *k = &o->u.obj.keys[idx[i]];
            while (j < n && !key_cmp(k->s, k->len, o->u.obj.keys[idx[j]].s, o->u.obj.keys[idx[j]].len)) j++;
            if (j - i > 1) {
                uint32_t first = idx[i], last = idx[j - 1];
                clv_json_free(o->u.obj.vals[first]);
                o->u.obj.vals[first] = o->u.obj.vals[last];
                o->u.obj.vals[last] = NULL;
                for (size_t t = i + 1; t < j; t++) drop[idx[t]] = true;
            }
            i = j;
        }
        size_t w = 0;
        for (size_t i = 0; i < n; i++) {
            if (drop[i]) {
                free(o->u.obj.keys[i].s);
                clv_json_free(o->u.obj.vals[i]);
                continue;
            }
            o->u.obj.keys[w] = o->u.obj.keys[i];
            o->u.obj.vals[w] = o->u.obj.vals[i];
            w++;
        }
        o->u.obj.n = w;
        free(drop);
        free(idx);
        return object_build_index(o, false);
    }
    o->u.obj.index = idx;
    return true;
}

clv_status clv_json_setn(clv_json *object, const char *key, size_t key_len, clv_json *item) {
    if (!item) return clv_fail(CLV_ERR_NOMEM, "out of memory building JSON");
    if (!object || object->kind != CLV_JSON_OBJECT) {
        clv_json_free(item);
        return clv_fail(CLV_ERR_TYPE, "JSON set: target is not an object");
    }
    ptrdiff_t at = object_find(object, key, key_len);
    if (at >= 0) {
        clv_json_free(object->u.obj.vals[at]);
        object->u.obj.vals[at] = item;
        return CLV_OK;
    }
    char *k = malloc(key_len + 1);
    if (!k || !object_push(object, k, key_len, item)) {
        free(k);
        clv_json_free(item);
        return clv_fail(CLV_ERR_NOMEM, "out of memory building JSON");
    }
    memcpy(k, key, key_len);
    k[key_len] = '\0';
    /* Keep the index exact; rebuilding is O(n log n) but builders stay small. */
    if (object->u.obj.n >= INDEX_MIN && !object_build_index(object, false)) {
        free(object->u.obj.index);
        object->u.obj.index = NULL; /* linear search still works */
    }
    return CLV_OK;
}

clv_status clv_json_set(clv_json *object, const char *key, clv_json *item) {
    return clv_json_setn(object, key, strlen(key), item);
}

clv_json *clv_json_clone(const clv_json *v) {
    if (!v) return NULL;
    switch (v->kind) {
    case CLV_JSON_NULL:
        return clv_json_new_null();
    case CLV_JSON_BOOL:
        return clv_json_new_bool(v->u.b);
    case CLV_JSON_NUMBER: {
        clv_json *c = node_new(CLV_JSON_NUMBER);
        if (c) {
            c->u.num = v->u.num;
            c->is_int = v->is_int;
        }
        return c;
    }
    case CLV_JSON_STRING:
        return clv_json_new_string(v->u.str.s, v->u.str.len);
    case CLV_JSON_ARRAY: {
        clv_json *c = clv_json_new_array();
        for (size_t i = 0; c && i < v->u.arr.n; i++) {
            if (clv_json_append(c, clv_json_clone(v->u.arr.items[i])) != CLV_OK) {
                clv_json_free(c);
                return NULL;
            }
        }
        return c;
    }
    case CLV_JSON_OBJECT: {
        clv_json *c = clv_json_new_object();
        for (size_t i = 0; c && i < v->u.obj.n; i++) {
            char *k = malloc(v->u.obj.keys[i].len + 1);
            clv_json *item = clv_json_clone(v->u.obj.vals[i]);
            if (!k || !item || !object_push(c, k, v->u.obj.keys[i].len, item)) {
                free(k);
                clv_json_free(item);
                clv_json_free(c);
                return NULL;
            }
            memcpy(k, v->u.obj.keys[i].s, v->u.obj.keys[i].len + 1);
        }
        if (c && !object_build_index(c, false)) {
            clv_json_free(c);
            return NULL;
        }
        return c;
    }
    }
    return NULL;
}

/* --- reading -------------------------------------------------------------------- */

clv_json_kind clv_json_kind_of(const clv_json *v) { return v ? v->kind : CLV_JSON_NULL; }

const char *clv_json_kind_name(clv_json_kind kind) {
    switch (kind) {
    case CLV_JSON_NULL: return "null";
    case CLV_JSON_BOOL: return "boolean";
    case CLV_JSON_NUMBER: return "number";
    case CLV_JSON_STRING: return "string";
    case CLV_JSON_ARRAY: return "array";
    case CLV_JSON_OBJECT: return "object";
    }
    return "?";
}

bool clv_json_bool(const clv_json *v) { return v && v->kind == CLV_JSON_BOOL && v->u.b; }

double clv_json_number(const clv_json *v) {
    return v && v->kind == CLV_JSON_NUMBER ? v->u.num.d : 0.0;
}

bool clv_json_is_int(const clv_json *v) { return v && v->kind == CLV_JSON_NUMBER && v->is_int; }

int64_t clv_json_int(const clv_json *v) {
    return v && v->kind == CLV_JSON_NUMBER ? v->u.num.i : 0;
}

const char *clv_json_string(const clv_json *v) {
    return v && v->kind == CLV_JSON_STRING ? v->u.str.s : NULL;
}

size_t clv_json_string_len(const clv_json *v) {
    return v && v->kind == CLV_JSON_STRING ? v->u.str.len : 0;
}

size_t clv_json_count(const clv_json *v) {
    if (!v) return 0;
    if (v->kind == CLV_JSON_ARRAY) return v->u.arr.n;
    if (v->kind == CLV_JSON_OBJECT) return v->u.obj.n;
    return 0;
}

const clv_json *clv_json_at(const clv_json *a, size_t i) {
    if (!a || a->kind != CLV_JSON_ARRAY || i >= a->u.arr.n) return NULL;
    return a->u.arr.items[i];
}

const clv_json *clv_json_getn(const clv_json *o, const char *key, size_t len) {
    if (!o || o->kind != CLV_JSON_OBJECT) return NULL;
    ptrdiff_t at = object_find(o, key, len);
    return at < 0 ? NULL : o->u.obj.vals[at];
}

const clv_json *clv_json_get(const clv_json *o, const char *key) {
    return clv_json_getn(o, key, strlen(key));
}

const char *clv_json_key_at(const clv_json *o, size_t i, size_t *len) {
    if (!o || o->kind != CLV_JSON_OBJECT || i >= o->u.obj.n) return NULL;
    if (len) *len = o->u.obj.keys[i].len;
    return o->u.obj.keys[i].s;
}

const clv_json *clv_json_value_at(const clv_json *o, size_t i) {
    if (!o || o->kind != CLV_JSON_OBJECT || i >= o->u.obj.n) return NULL;
    return o->u.obj.vals[i];
}

const char *clv_json_get_string(const clv_json *o, const char *key, const char *fallback) {
    const char *s = clv_json_string(clv_json_get(o, key));
    return s ? s : fallback;
}

/* --- parsing -------------------------------------------------------------------- */

clv_json_parse_params clv_json_default_parse_params(void) {
    clv_json_parse_params p = {.max_depth = 512, .max_bytes = (size_t)256 << 20};
    return p;
}

typedef struct parser {
    const char *s;
    size_t len, pos;
    size_t depth, max_depth;
    clv_status status; /* CLV_OK until the first error */
} parser;

/* Records the first error with the line and column (in characters) of `at`. */
static void parse_error(parser *p, size_t at, clv_status st, const char *what) {
    if (p->status != CLV_OK) return;
    size_t line = 1, col = 1;
    for (size_t i = 0; i < at && i < p->len; i++) {
        if (p->s[i] == '\n') {
            line++;
            col = 1;
        } else if (((unsigned char)p->s[i] & 0xC0) != 0x80) {
            col++;
        }
    }
    p->status = clv_fail(st, "line %zu, column %zu: %s", line, col, what);
}

static void skip_ws(parser *p) {
    while (p->pos < p->len) {
        char c = p->s[p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
        p->pos++;
    }
}

static int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static bool read_hex4(parser *p, size_t at, uint32_t *out) {
    if (at + 4 > p->len) return false;
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        int d = hex_digit(p->s[at + i]);
        if (d < 0) return false;
        v = v * 16 + (uint32_t)d;
    }
    *out = v;
    return true;
}

/* Parses a string literal starting at the opening quote into a malloc'd
 * buffer. Returns NULL on error (recorded in p). */
static char *parse_string_raw(parser *p, size_t *out_len) {
    size_t start = p->pos++; /* the quote */
    /* First pass finds the end and the exact size, so one allocation does. */
    size_t i = p->pos, size = 0;
    bool has_escape = false;
    for (;;) {
        if (i >= p->len) {
            parse_error(p, start, CLV_ERR_FORMAT, "unterminated string");
            return NULL;
        }
        unsigned char c = (unsigned char)p->s[i];
        if (c == '"') break;
        if (c == '\\') {
            has_escape = true;
            i += 2;
            size += 4; /* no escape expands to more than 4 bytes per 2 input bytes */
            continue;
        }
        if (c < 0x20) {
            parse_error(p, i, CLV_ERR_FORMAT, "control character in string (escape it)");
            return NULL;
        }
        if (c < 0x80) {
            i++;
            size++;
            continue;
        }
        uint32_t cp;
        size_t n = clv_json_utf8_decode(p->s + i, p->len - i, &cp);
        if (!n) {
            parse_error(p, i, CLV_ERR_FORMAT, "invalid UTF-8 in string");
            return NULL;
        }
        i += n;
        size += n;
    }
    char *out = malloc(size + 1);
    if (!out) {
        parse_error(p, start, CLV_ERR_NOMEM, "out of memory reading a string");
        return NULL;
    }
    if (!has_escape) {
        memcpy(out, p->s + p->pos, i - p->pos);
        out[i - p->pos] = '\0';
        *out_len = i - p->pos;
        p->pos = i + 1;
        return out;
    }
    size_t w = 0;
    size_t j = p->pos;
    while (j < i) {
        char c = p->s[j];
        if (c != '\\') {
            out[w++] = c;
            j++;
            continue;
        }
        char e = p->s[j + 1];
        uint32_t cp = 0;
        switch (e) {
        case '"': out[w++] = '"'; j += 2; continue;
        case '\\': out[w++] = '\\'; j += 2; continue;
        case '/': out[w++] = '/'; j += 2; continue;
        case 'b': out[w++] = '\b'; j += 2; continue;
        case 'f': out[w++] = '\f'; j += 2; continue;
        case 'n': out[w++] = '\n'; j += 2; continue;
        case 'r': out[w++] = '\r'; j += 2; continue;
        case 't': out[w++] = '\t'; j += 2; continue;
        case 'u':
            if (!read_hex4(p, j + 2, &cp) || j + 6 > i) {
                parse_error(p, j, CLV_ERR_FORMAT, "bad \\u escape (want 4 hex digits)");
                free(out);
                return NULL;
            }
            j += 6;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                uint32_t lo;
                if (j + 6 <= i && p->s[j] == '\\' && p->s[j + 1] == 'u' && read_hex4(p, j + 2, &lo) &&
                    lo >= 0xDC00 && lo <= 0xDFFF) {
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    j += 6;
                } else {
                    cp = 0xFFFD; /* a lone surrogate has no UTF-8 form */
                }
            } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                cp = 0xFFFD;
            }
            w += clv_json_utf8_encode(cp, out + w);
            continue;
        default:
            parse_error(p, j, CLV_ERR_FORMAT, "unknown escape in string");
            free(out);
            return NULL;
        }
    }
    out[w] = '\0';
    *out_len = w;
    p->pos = i + 1;
    return out;
}

static clv_json *parse_number(parser *p) {
    size_t start = p->pos, i = p->pos;
    bool is_int = true;
    if (i < p->len && p->s[i] == '-') i++;
    if (i >= p->len || !(p->s[i] >= '0' && p->s[i] <= '9')) {
        parse_error(p, start, CLV_ERR_FORMAT, "invalid number");
        return NULL;
    }
    if (p->s[i] == '0') {
        i++;
    } else {
        while (i < p->len && p->s[i] >= '0' && p->s[i] <= '9') i++;
    }
    if (i < p->len && p->s[i] == '.') {
        is_int = false;
        i++;
        if (i >= p->len || !(p->s[i] >= '0' && p->s[i] <= '9')) {
            parse_error(p, i, CLV_ERR_FORMAT, "invalid number: digits must follow '.'");
            return NULL;
        }
        while (i < p->len && p->s[i] >= '0' && p->s[i] <= '9') i++;
    }
    if (i < p->len && (p->s[i] == 'e' || p->s[i] == 'E')) {
        is_int = false;
        i++;
        if (i < p->len && (p->s[i] == '+' || p->s[i] == '-')) i++;
        if (i >= p->len || !(p->s[i] >= '0' && p->s[i] <= '9')) {
            parse_error(p, i, CLV_ERR_FORMAT, "invalid number: digits must follow the exponent");
            return NULL;
        }
        while (i < p->len && p->s[i] >= '0' && p->s[i] <= '9') i++;
    }
    /* strtod needs a terminator the input may not have. */
    size_t n = i - start;
    char small[64], *buf = n < sizeof small ? small : malloc(n + 1);
    if (!buf) {
        parse_error(p, start, CLV_ERR_NOMEM, "out of memory reading a number");
        return NULL;
    }
    memcpy(buf, p->s + start, n);
    buf[n] = '\0';
    clv_json *v = node_new(CLV_JSON_NUMBER);
    if (v) {
        v->u.num.d = strtod(buf, NULL);
        if (is_int) {
            errno = 0;
            long long ll = strtoll(buf, NULL, 10);
            if (errno == 0) {
                v->u.num.i = ll;
                v->is_int = true;
            } else {
                v->u.num.i = ll; /* saturated; too large for int64: kept as a double */
            }
        } else {
            double d = v->u.num.d;
            v->u.num.i = (d >= -9.2e18 && d <= 9.2e18) ? (int64_t)d : 0;
        }
    } else {
        parse_error(p, start, CLV_ERR_NOMEM, "out of memory");
    }
    if (buf != small) free(buf);
    p->pos = i;
    return v;
}

static bool match_word(parser *p, const char *w) {
    size_t n = strlen(w);
    if (p->pos + n > p->len || memcmp(p->s + p->pos, w, n)) return false;
    p->pos += n;
    return true;
}

static clv_json *parse_value(parser *p);

static clv_json *parse_array(parser *p) {
    size_t start = p->pos++;
    clv_json *a = node_new(CLV_JSON_ARRAY);
    if (!a) {
        parse_error(p, start, CLV_ERR_NOMEM, "out of memory");
        return NULL;
    }
    skip_ws(p);
    if (p->pos < p->len && p->s[p->pos] == ']') {
        p->pos++;
        return a;
    }
    for (;;) {
        clv_json *item = parse_value(p);
        if (!item) break;
        if (!array_push(a, item)) {
            clv_json_free(item);
            parse_error(p, p->pos, CLV_ERR_NOMEM, "out of memory");
            break;
        }
        skip_ws(p);
        if (p->pos >= p->len) {
            parse_error(p, start, CLV_ERR_FORMAT, "unterminated array (missing ']')");
            break;
        }
        char c = p->s[p->pos];
        if (c == ',') {
            p->pos++;
            skip_ws(p);
            if (p->pos < p->len && p->s[p->pos] == ']') {
                parse_error(p, p->pos, CLV_ERR_FORMAT, "trailing comma in array");
                break;
            }
            continue;
        }
        if (c == ']') {
            p->pos++;
            return a;
        }
        parse_error(p, p->pos, CLV_ERR_FORMAT, "expected ',' or ']' in array");
        break;
    }
    clv_json_free(a);
    return NULL;
}

static clv_json *parse_object(parser *p) {
    size_t start = p->pos++;
    clv_json *o = node_new(CLV_JSON_OBJECT);
    if (!o) {
        parse_error(p, start, CLV_ERR_NOMEM, "out of memory");
        return NULL;
    }
    skip_ws(p);
    if (p->pos < p->len && p->s[p->pos] == '}') {
        p->pos++;
        return o;
    }
    for (;;) {
        skip_ws(p);
        if (p->pos >= p->len || p->s[p->pos] != '"') {
            parse_error(p, p->pos, CLV_ERR_FORMAT,
                        p->pos < p->len && p->s[p->pos] == '}' ? "trailing comma in object"
                                                               : "expected a string key in object");
            break;
        }
        size_t klen;
        char *key = parse_string_raw(p, &klen);
        if (!key) break;
        skip_ws(p);
        if (p->pos >= p->len || p->s[p->pos] != ':') {
            free(key);
            parse_error(p, p->pos, CLV_ERR_FORMAT, "expected ':' after object key");
            break;
        }
        p->pos++;
        clv_json *val = parse_value(p);
        if (!val) {
            free(key);
            break;
        }
        /* Small objects merge duplicates here; large ones when indexed below. */
        ptrdiff_t at = o->u.obj.n < INDEX_MIN ? object_find(o, key, klen) : -1;
        if (at >= 0) {
            free(key);
            clv_json_free(o->u.obj.vals[at]);
            o->u.obj.vals[at] = val;
        } else if (!object_push(o, key, klen, val)) {
            free(key);
            clv_json_free(val);
            parse_error(p, p->pos, CLV_ERR_NOMEM, "out of memory");
            break;
        }
        skip_ws(p);
        if (p->pos >= p->len) {
            parse_error(p, start, CLV_ERR_FORMAT, "unterminated object (missing '}')");
            break;
        }
        char c = p->s[p->pos];
        if (c == ',') {
            p->pos++;
            continue;
        }
        if (c == '}') {
            p->pos++;
            if (!object_build_index(o, true)) {
                parse_error(p, start, CLV_ERR_NOMEM, "out of memory");
                break;
            }
            return o;
        }
        parse_error(p, p->pos, CLV_ERR_FORMAT, "expected ',' or '}' in object");
        break;
    }
    clv_json_free(o);
    return NULL;
}

static clv_json *parse_value(parser *p) {
    skip_ws(p);
    if (p->pos >= p->len) {
        parse_error(p, p->pos, CLV_ERR_FORMAT, "unexpected end of input (expected a value)");
        return NULL;
    }
    char c = p->s[p->pos];
    if (c == '[' || c == '{') {
        if (p->depth >= p->max_depth) {
            char msg[96];
            snprintf(msg, sizeof msg, "nesting deeper than %zu levels", p->max_depth);
            parse_error(p, p->pos, CLV_ERR_RANGE, msg);
            return NULL;
        }
        p->depth++;
        clv_json *v = c == '[' ? parse_array(p) : parse_object(p);
        p->depth--;
        return v;
    }
    if (c == '"') {
        size_t len;
        char *s = parse_string_raw(p, &len);
        if (!s) return NULL;
        clv_json *v = node_new(CLV_JSON_STRING);
        if (!v) {
            free(s);
            parse_error(p, p->pos, CLV_ERR_NOMEM, "out of memory");
            return NULL;
        }
        v->u.str.s = s;
        v->u.str.len = len;
        return v;
    }
    if (c == '-' || (c >= '0' && c <= '9')) return parse_number(p);
    size_t at = p->pos;
    if (match_word(p, "true")) return clv_json_new_bool(true);
    if (match_word(p, "false")) return clv_json_new_bool(false);
    if (match_word(p, "null")) return clv_json_new_null();
    parse_error(p, at, CLV_ERR_FORMAT, "unexpected character (expected a value)");
    return NULL;
}

clv_status clv_json_parse(const char *text, size_t len, const clv_json_parse_params *params,
                          clv_json **out) {
    *out = NULL;
    clv_json_parse_params dp = clv_json_default_parse_params();
    if (!params) params = &dp;
    if (!text && len) return clv_fail(CLV_ERR_ARG, "JSON parse: no text");
    if (len > params->max_bytes)
        return clv_fail(CLV_ERR_RANGE, "JSON text of %zu bytes is larger than the limit of %zu",
                        len, params->max_bytes);
    parser p = {.s = text, .len = len, .max_depth = params->max_depth ? params->max_depth : 512};
    if (len >= 3 && !memcmp(text, "\xEF\xBB\xBF", 3)) p.pos = 3;
    clv_json *v = parse_value(&p);
    if (v) {
        skip_ws(&p);
        if (p.pos < p.len) {
            parse_error(&p, p.pos, CLV_ERR_FORMAT, "extra data after the JSON value");
            clv_json_free(v);
            v = NULL;
        }
    }
    if (!v) return p.status != CLV_OK ? p.status : clv_fail(CLV_ERR_NOMEM, "out of memory");
    *out = v;
    return CLV_OK;
}

clv_status clv_json_parse_file(const char *path, const clv_json_parse_params *params,
                               clv_json **out) {
    *out = NULL;
    clv_json_parse_params dp = clv_json_default_parse_params();
    if (!params) params = &dp;
    FILE *f = fopen(path, "rb");
    if (!f) return clv_fail(CLV_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode) && (uint64_t)st.st_size > params->max_bytes) {
        fclose(f);
        return clv_fail(CLV_ERR_RANGE, "%s: %lld bytes is larger than the JSON limit of %zu", path,
                        (long long)st.st_size, params->max_bytes);
    }
    /* Read in chunks: pipes and /dev/stdin have no size. */
    clv_strbuf buf = {.limit = params->max_bytes};
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) clv_strbuf_append(&buf, chunk, n);
    bool read_err = ferror(f);
    fclose(f);
    if (read_err) {
        clv_strbuf_free(&buf);
        return clv_fail(CLV_ERR_IO, "%s: read error", path);
    }
    if (buf.failed) {
        clv_status s = clv_strbuf_status(&buf);
        clv_strbuf_free(&buf);
        clv_error_prefix("%s: ", path);
        return s;
    }
    clv_status s = clv_json_parse(buf.data ? buf.data : "", buf.len, params, out);
    clv_strbuf_free(&buf);
    if (s != CLV_OK) clv_error_prefix("%s: ", path);
    return s;
}

/* --- writing -------------------------------------------------------------------- */

clv_json_write_params clv_json_default_write_params(void) {
    clv_json_write_params p = {.indent = -1};
    return p;
}

size_t clv_json_format_double(char buf[32], double d) {
    if (isnan(d)) return (size_t)snprintf(buf, 32, "nan");
    if (isinf(d)) return (size_t)snprintf(buf, 32, d < 0 ? "-inf" : "inf");
    if (d == 0) return (size_t)snprintf(buf, 32, signbit(d) ? "-0.0" : "0.0");
    /* Shortest round-tripping digits, as Python's repr finds them. */
    char e[40];
    int prec;
    for (prec = 1; prec <= 17; prec++) {
        snprintf(e, sizeof e, "%.*e", prec - 1, d);
        if (strtod(e, NULL) == d) break;
    }
    /* e is "-d.ddde+XX": split into sign, digits and decimal exponent. */
    const char *q = e;
    bool neg = false;
    if (*q == '-') {
        neg = true;
        q++;
    }
    char digits[24];
    int nd = 0;
    for (; *q && *q != 'e'; q++)
        if (*q != '.') digits[nd++] = *q;
    while (nd > 1 && digits[nd - 1] == '0') nd--;
    int exp10 = atoi(q + 1); /* value = 0.d1d2... * 10^(exp10+1) */
    char *w = buf;
    if (neg) *w++ = '-';
    if (exp10 < -4 || exp10 >= 16) {
        *w++ = digits[0];
        if (nd > 1) {
            *w++ = '.';
            for (int i = 1; i < nd; i++) *w++ = digits[i];
        }
        w += sprintf(w, "e%c%02d", exp10 < 0 ? '-' : '+', exp10 < 0 ? -exp10 : exp10);
    } else if (exp10 < 0) {
        *w++ = '0';
        *w++ = '.';
        for (int i = 0; i < -exp10 - 1; i++) *w++ = '0';
        for (int i = 0; i < nd; i++) *w++ = digits[i];
    } else {
        for (int i = 0; i <= exp10; i++) *w++ = i < nd ? digits[i] : '0';
        *w++ = '.';
        if (nd > exp10 + 1) {
            for (int i = exp10 + 1; i < nd; i++) *w++ = digits[i];
        } else {
            *w++ = '0';
        }
    }
    *w = '\0';
    return (size_t)(w - buf);
}

static const char hexdig[] = "0123456789abcdef";

static void put_u4(clv_strbuf *out, uint32_t v) {
    char t[6] = {'\\', 'u', hexdig[(v >> 12) & 15], hexdig[(v >> 8) & 15], hexdig[(v >> 4) & 15],
                 hexdig[v & 15]};
    clv_strbuf_append(out, t, 6);
}

void clv_json_write_string(clv_strbuf *out, const char *s, size_t len, bool ensure_ascii) {
    clv_strbuf_reserve(out, len + 2);
    clv_strbuf_putc(out, '"');
    size_t i = 0, run = 0; /* run: bytes copied verbatim, flushed lazily */
    while (i < len) {
        unsigned char c = (unsigned char)s[i];
        const char *esc = NULL;
        if (c >= 0x20 && c != '"' && c != '\\' && c < 0x7F) {
            i++;
            run++;
            continue;
        }
        clv_strbuf_append(out, s + i - run, run);
        run = 0;
        switch (c) {
        case '"': esc = "\\\""; break;
        case '\\': esc = "\\\\"; break;
        case '\n': esc = "\\n"; break;
        case '\r': esc = "\\r"; break;
        case '\t': esc = "\\t"; break;
        case '\b': esc = "\\b"; break;
        case '\f': esc = "\\f"; break;
        default: break;
        }
        if (esc) {
            clv_strbuf_append(out, esc, 2);
            i++;
            continue;
        }
        if (c < 0x20) {
            put_u4(out, c);
            i++;
            continue;
        }
        if (c == 0x7F) {
            /* Python escapes DEL only when ensure_ascii. */
            if (ensure_ascii) put_u4(out, c);
            else clv_strbuf_putc(out, (char)c);
            i++;
            continue;
        }
        uint32_t cp;
        size_t n = clv_json_utf8_decode(s + i, len - i, &cp);
        if (!n) {
            cp = 0xFFFD;
            n = 1;
        }
        if (ensure_ascii) {
            if (cp >= 0x10000) {
                uint32_t v = cp - 0x10000;
                put_u4(out, 0xD800 + (v >> 10));
                put_u4(out, 0xDC00 + (v & 0x3FF));
            } else {
                put_u4(out, cp);
            }
        } else {
            char enc[4];
            clv_strbuf_append(out, enc, clv_json_utf8_encode(cp, enc));
        }
        i += n;
    }
    clv_strbuf_append(out, s + i - run, run);
    clv_strbuf_putc(out, '"');
}

clv_status clv_json_fwrite_string(FILE *f, const char *s, size_t len, bool ensure_ascii) {
    clv_strbuf b = {0};
    clv_json_write_string(&b, s, len, ensure_ascii);
    clv_status st = clv_strbuf_status(&b);
    if (st == CLV_OK && fwrite(b.data, 1, b.len, f) != b.len)
        st = clv_fail(CLV_ERR_IO, "writing JSON: %s", strerror(errno));
    clv_strbuf_free(&b);
    return st;
}

/* The streaming writer does the layout; clv_json_write drives it over a tree. */

static void w_put(clv_json_writer *w, const char *s, size_t n) {
    if (w->status != CLV_OK) return;
    if (w->buf) {
        clv_strbuf_append(w->buf, s, n);
    } else if (n && fwrite(s, 1, n, w->file) != n) {
        w->status = clv_fail(CLV_ERR_IO, "writing JSON: %s", strerror(errno));
    }
}

static void w_puts(clv_json_writer *w, const char *s) { w_put(w, s, strlen(s)); }

static void w_fail(clv_json_writer *w, clv_status st, const char *msg) {
    if (w->status == CLV_OK) w->status = clv_fail(st, "JSON writer: %s", msg);
}

static void w_newline(clv_json_writer *w, int level) {
    w_put(w, "\n", 1);
    for (int i = 0; i < level * w->params.indent; i++) w_put(w, " ", 1);
}

/* Separator and indentation before a value (or a key) at the current level. */
static bool w_before_item(clv_json_writer *w, bool is_key) {
    if (w->status != CLV_OK) return false;
    if (w->done) {
        w_fail(w, CLV_ERR_ARG, "a second top-level value");
        return false;
    }
    if (w->depth == 0) return true;
    bool in_object = w->is_object[w->depth - 1];
    if (in_object && !is_key && !w->after_key) {
        w_fail(w, CLV_ERR_ARG, "an object member needs a key first");
        return false;
    }
    if (!in_object && is_key) {
        w_fail(w, CLV_ERR_ARG, "a key outside an object");
        return false;
    }
    if (in_object && is_key && w->after_key) {
        w_fail(w, CLV_ERR_ARG, "two keys in a row");
        return false;
    }
    if (w->after_key) { /* value of a member: separator already written */
        w->after_key = false;
        return true;
    }
    const char *sep = w->params.item_sep ? w->params.item_sep : (w->params.indent >= 0 ? "," : ", ");
    if (w->count[w->depth - 1]++ > 0) w_puts(w, sep);
    if (w->params.indent >= 0) w_newline(w, w->depth);
    return true;
}

static void w_after_value(clv_json_writer *w) {
    if (w->depth == 0) w->done = true;
}

void clv_json_writer_init_buf(clv_json_writer *w, clv_strbuf *out, const clv_json_write_params *p) {
    memset(w, 0, sizeof *w);
    w->buf = out;
    w->params = p ? *p : clv_json_default_write_params();
}

void clv_json_writer_init_file(clv_json_writer *w, FILE *f, const clv_json_write_params *p) {
    memset(w, 0, sizeof *w);
    w->file = f;
    w->params = p ? *p : clv_json_default_write_params();
}

static void w_begin(clv_json_writer *w, bool object) {
    if (!w_before_item(w, false)) return;
    if (w->depth >= CLV_JSON_WRITER_MAX_DEPTH) {
        w_fail(w, CLV_ERR_RANGE, "nesting too deep");
        return;
    }
    w_put(w, object ? "{" : "[", 1);
    w->is_object[w->depth] = object;
    w->count[w->depth] = 0;
    w->depth++;
}

static void w_end(clv_json_writer *w, bool object) {
    if (w->status != CLV_OK) return;
    if (w->depth == 0 || w->is_object[w->depth - 1] != object || w->after_key) {
        w_fail(w, CLV_ERR_ARG, object ? "unbalanced end of object" : "unbalanced end of array");
        return;
    }
    w->depth--;
    if (w->count[w->depth] > 0 && w->params.indent >= 0) w_newline(w, w->depth);
    w_put(w, object ? "}" : "]", 1);
    w_after_value(w);
}

void clv_json_begin_array(clv_json_writer *w) { w_begin(w, false); }
void clv_json_end_array(clv_json_writer *w) { w_end(w, false); }
void clv_json_begin_object(clv_json_writer *w) { w_begin(w, true); }
void clv_json_end_object(clv_json_writer *w) { w_end(w, true); }

static void w_string_literal(clv_json_writer *w, const char *s, size_t len) {
    if (w->buf) {
        clv_json_write_string(w->buf, s, len, w->params.ensure_ascii);
    } else if (w->status == CLV_OK) {
        clv_status st = clv_json_fwrite_string(w->file, s, len, w->params.ensure_ascii);
        if (st != CLV_OK) w->status = st;
    }
}

void clv_json_keyn(clv_json_writer *w, const char *key, size_t len) {
    if (!w_before_item(w, true)) return;
    w_string_literal(w, key, len);
    w_puts(w, w->params.key_sep ? w->params.key_sep : ": ");
    w->after_key = true;
}

void clv_json_key(clv_json_writer *w, const char *key) { clv_json_keyn(w, key, strlen(key)); }

void clv_json_null(clv_json_writer *w) {
    if (!w_before_item(w, false)) return;
    w_puts(w, "null");
    w_after_value(w);
}

void clv_json_bool_value(clv_json_writer *w, bool b) {
    if (!w_before_item(w, false)) return;
    w_puts(w, b ? "true" : "false");
    w_after_value(w);
}

void clv_json_int_value(clv_json_writer *w, int64_t i) {
    if (!w_before_item(w, false)) return;
    char t[24];
    w_put(w, t, (size_t)snprintf(t, sizeof t, "%lld", (long long)i));
    w_after_value(w);
}

void clv_json_uint_value(clv_json_writer *w, uint64_t u) {
    if (!w_before_item(w, false)) return;
    char t[24];
    w_put(w, t, (size_t)snprintf(t, sizeof t, "%llu", (unsigned long long)u));
    w_after_value(w);
}

void clv_json_double_value(clv_json_writer *w, double d) {
    if (!w_before_item(w, false)) return;
    if (!isfinite(d)) {
        if (!w->params.allow_nan) {
            w_fail(w, CLV_ERR_RANGE, "NaN and infinities have no JSON form");
            return;
        }
        w_puts(w, isnan(d) ? "NaN" : d < 0 ? "-Infinity" : "Infinity");
    } else {
        char t[32];
        w_put(w, t, clv_json_format_double(t, d));
    }
    w_after_value(w);
}

void clv_json_stringn_value(clv_json_writer *w, const char *s, size_t len) {
    if (!w_before_item(w, false)) return;
    w_string_literal(w, s, len);
    w_after_value(w);
}

void clv_json_string_value(clv_json_writer *w, const char *s) {
    clv_json_stringn_value(w, s, strlen(s));
}

static int member_cmp(const void *pa, const void *pb) {
    uint32_t a = *(const uint32_t *)pa, b = *(const uint32_t *)pb;
    return key_cmp(sort_keys_base[a].s, sort_keys_base[a].len, sort_keys_base[b].s,
                   sort_keys_base[b].len);
}

void clv_json_tree_value(clv_json_writer *w, const clv_json *v) {
    if (w->status != CLV_OK) return;
    switch (clv_json_kind_of(v)) {
    case CLV_JSON_NULL:
        clv_json_null(w);
        break;
    case CLV_JSON_BOOL:
        clv_json_bool_value(w, v->u.b);
        break;
    case CLV_JSON_NUMBER:
        if (v->is_int) clv_json_int_value(w, v->u.num.i);
        else clv_json_double_value(w, v->u.num.d);
        break;
    case CLV_JSON_STRING:
        clv_json_stringn_value(w, v->u.str.s, v->u.str.len);
        break;
    case CLV_JSON_ARRAY:
        clv_json_begin_array(w);
        for (size_t i = 0; i < v->u.arr.n; i++) clv_json_tree_value(w, v->u.arr.items[i]);
        clv_json_end_array(w);
        break;
    case CLV_JSON_OBJECT: {
        size_t n = v->u.obj.n;
        uint32_t *order = NULL;
        if (w->params.sort_keys && n > 1) {
            order = malloc(n * sizeof *order);
            if (!order) {
                w_fail(w, CLV_ERR_NOMEM, "out of memory");
                return;
            }
            for (size_t i = 0; i < n; i++) order[i] = (uint32_t)i;
            sort_keys_base = v->u.obj.keys;
            qsort(order, n, sizeof *order, member_cmp);
        }
        clv_json_begin_object(w);
        for (size_t i = 0; i < n; i++) {
            size_t at = order ? order[i] : i;
            clv_json_keyn(w, v->u.obj.keys[at].s, v->u.obj.keys[at].len);
            clv_json_tree_value(w, v->u.obj.vals[at]);
        }
        clv_json_end_object(w);
        free(order);
        break;
    }
    }
}

clv_status clv_json_writer_finish(clv_json_writer *w) {
    if (w->status == CLV_OK && w->buf && w->buf->failed) w->status = clv_strbuf_status(w->buf);
    if (w->status == CLV_OK && (!w->done || w->depth != 0))
        w->status = clv_fail(CLV_ERR_ARG, "JSON writer: document is incomplete");
    return w->status;
}

clv_status clv_json_write(clv_strbuf *out, const clv_json *v, const clv_json_write_params *params) {
    clv_json_writer w;
    clv_json_writer_init_buf(&w, out, params);
    clv_json_tree_value(&w, v);
    return clv_json_writer_finish(&w);
}

clv_status clv_json_fwrite(FILE *f, const clv_json *v, const clv_json_write_params *params) {
    clv_json_writer w;
    clv_json_writer_init_file(&w, f, params);
    clv_json_tree_value(&w, v);
    return clv_json_writer_finish(&w);
}

char *clv_json_to_string(const clv_json *v, const clv_json_write_params *params, size_t *len) {
    clv_strbuf b = {0};
    if (clv_json_write(&b, v, params) != CLV_OK) {
        clv_strbuf_free(&b);
        return NULL;
    }
    return clv_strbuf_take(&b, len);
}
