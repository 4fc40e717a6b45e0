/* Jinja builtins: the filters, tests and global functions of jinja2 that chat
 * templates use, transformers' additions (raise_exception, strftime_now,
 * tojson with json.dumps options), and the Python methods of str, dict and
 * list that templates call. Each behaves as its Python counterpart does,
 * including its errors; methods that would mutate a value fail as they do in
 * jinja2's ImmutableSandboxedEnvironment. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jinja_internal.h"

#define MAX_RANGE 100000 /* jinja2's sandbox refuses larger ranges */

static jj_value undef(void) { return jj_undef(JJ_S("")); }

static jj_value type_error(jj_render *r, const jj_node *at, const char *fmt, const char *a) {
    clv_jj_error(r, at, CLV_ERR_TYPE, fmt, a);
    return undef();
}

static bool is_int(jj_value v) { return v.kind == JJ_INT || v.kind == JJ_BOOL; }
static int64_t ival(jj_value v) { return v.kind == JJ_BOOL ? v.u.b : v.u.i; }

static jj_value fail_undef(jj_render *r, const jj_node *at, jj_value v) {
    if (v.u.s.n) clv_jj_error(r, at, CLV_ERR_TYPE, "'%.*s' is undefined", (int)v.u.s.n, v.u.s.p);
    else clv_jj_error(r, at, CLV_ERR_TYPE, "an undefined value was used");
    return undef();
}

/* A string argument, or an error naming the function. */
static bool want_str(jj_render *r, const jj_node *at, const char *fname, jj_value v, jj_str *out) {
    if (v.kind == JJ_STR) {
        *out = v.u.s;
        return true;
    }
    if (v.kind == JJ_UNDEF) fail_undef(r, at, v);
    else clv_jj_error(r, at, CLV_ERR_TYPE, "%s: expected a string, got %s", fname, clv_jj_type_name(v));
    return false;
}

/* --- UTF-8 and case --------------------------------------------------------------- */

typedef struct cp_iter {
    jj_str s;
    size_t i;
} cp_iter;

/* Next code point and its byte range; false at the end. */
static bool cp_next(cp_iter *it, uint32_t *cp, size_t *from, size_t *to) {
    if (it->i >= it->s.n) return false;
    *from = it->i;
    size_t n = clv_json_utf8_decode(it->s.p + it->i, it->s.n - it->i, cp);
    if (!n) {
        *cp = 0xFFFD;
        n = 1;
    }
    it->i += n;
    *to = it->i;
    return true;
}

/* Simple case mappings for ASCII, Latin-1, Greek and Cyrillic. */
static uint32_t to_upper(uint32_t c) {
    if (c >= 'a' && c <= 'z') return c - 32;
    if (c < 0x80) return c;
    if ((c >= 0xE0 && c <= 0xFE && c != 0xF7)) return c - 32;
    if (c == 0xFF) return 0x178;
    if (c >= 0x100 && c <= 0x17F && c != 0x130 && c != 0x131 && c != 0x138 && c != 0x149 && c != 0x17F) {
        bool odd_lower = (c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E);
        if (odd_lower ? (c % 2 == 0) : (c % 2 == 1)) return c - 1;
        return c;
    }
    if (c >= 0x3B1 && c <= 0x3C9 && c != 0x3C2) return c - 32;
    if (c == 0x3C2) return 0x3A3;
    if (c >= 0x430 && c <= 0x44F) return c - 32;
    if (c >= 0x450 && c <= 0x45F) return c - 80;
    return c;
}

static uint32_t to_lower(uint32_t c) {
    if (c >= 'A' && c <= 'Z') return c + 32;
    if (c < 0x80) return c;
    if (c >= 0xC0 && c <= 0xDE && c != 0xD7) return c + 32;
    if (c == 0x178) return 0xFF;
    if (c >= 0x100 && c <= 0x17F && c != 0x130 && c != 0x131 && c != 0x138 && c != 0x149 && c != 0x17F) {
        bool odd_lower = (c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E);
        if (odd_lower ? (c % 2 == 1) : (c % 2 == 0)) return c + 1;
        return c;
    }
    if (c >= 0x391 && c <= 0x3A9 && c != 0x3A2) return c + 32;
    if (c >= 0x410 && c <= 0x42F) return c + 32;
    if (c >= 0x400 && c <= 0x40F) return c + 80;
    return c;
}

static bool is_cased(uint32_t c) { return to_upper(c) != c || to_lower(c) != c; }
static bool is_lower_cp(uint32_t c) { return to_upper(c) != c; }
static bool is_upper_cp(uint32_t c) { return to_lower(c) != c; }

typedef enum { CASE_UPPER, CASE_LOWER, CASE_TITLE, CASE_CAPITALIZE, CASE_SWAP } case_mode;

static jj_str change_case(jj_render *r, jj_str s, case_mode mode) {
    clv_strbuf b = {.limit = r->arena.limit};
    clv_strbuf_reserve(&b, s.n + 8);
    cp_iter it = {s, 0};
    uint32_t cp;
    size_t from, to;
    bool prev_cased = false, first = true;
    while (cp_next(&it, &cp, &from, &to)) {
        uint32_t out = cp;
        switch (mode) {
        case CASE_UPPER:
            if (cp == 0xDF) { /* ß has no single upper-case letter */
                clv_strbuf_puts(&b, "SS");
                continue;
            }
            out = to_upper(cp);
            break;
        case CASE_LOWER: out = to_lower(cp); break;
        case CASE_SWAP: out = is_upper_cp(cp) ? to_lower(cp) : to_upper(cp); break;
        case CASE_CAPITALIZE: out = first ? to_upper(cp) : to_lower(cp); break;
        case CASE_TITLE:
            out = prev_cased ? to_lower(cp) : to_upper(cp);
            prev_cased = is_cased(cp);
            break;
        }
        first = false;
        char enc[4];
        clv_strbuf_append(&b, enc, clv_json_utf8_encode(out, enc));
    }
    return clv_jj_take_buf(r, &b);
}

/* --- str.strip and friends ------------------------------------------------------- */

static bool in_chars(uint32_t cp, const jj_str *chars) {
    if (!chars) return clv_jj_isspace(cp);
    cp_iter it = {*chars, 0};
    uint32_t c;
    size_t f, t;
    while (cp_next(&it, &c, &f, &t))
        if (c == cp) return true;
    return false;
}

static jj_str strip(jj_str s, const jj_str *chars, bool left, bool right) {
    size_t b = 0, e = s.n;
    if (left) {
        cp_iter it = {s, 0};
        uint32_t cp;
        size_t from, to;
        b = s.n;
        while (cp_next(&it, &cp, &from, &to)) {
            if (!in_chars(cp, chars)) {
                b = from;
                break;
            }
        }
    }
    if (right) {
        cp_iter it = {s, b};
        uint32_t cp;
        size_t from, to;
        e = b;
        while (cp_next(&it, &cp, &from, &to))
            if (!in_chars(cp, chars)) e = to;
    }
    return (jj_str){s.p + b, e - b};
}

/* --- collections helpers --------------------------------------------------------- */

static jj_value list_of(jj_render *r, jj_value *items, size_t n, bool tuple) {
    jj_list *l = clv_jj_list_new(r, n);
    if (!l) return undef();
    if (n) memcpy(l->items, items, n * sizeof *items);
    return clv_jj_listv(l, tuple);
}

static jj_value pair(jj_render *r, jj_value a, jj_value b) {
    jj_value two[2] = {a, b};
    return list_of(r, two, 2, true);
}

/* jinja2's make_attrgetter: "a.b.0" looks up a, then b, then item 0. */
static jj_value get_attribute_path(jj_render *r, const jj_node *at, jj_value item, jj_value attr) {
    if (attr.kind != JJ_STR) return clv_jj_getitem(r, at, item, attr);
    jj_str path = attr.u.s;
    size_t i = 0;
    while (i <= path.n && !JJ_FAILED(r)) {
        size_t j = i;
        while (j < path.n && path.p[j] != '.') j++;
        jj_str part = {path.p + i, j - i};
        bool digits = part.n > 0;
        int64_t num = 0;
        for (size_t k = 0; k < part.n; k++) {
            if (part.p[k] < '0' || part.p[k] > '9' || num > INT64_MAX / 10) {
                digits = false;
                break;
            }
            num = num * 10 + (part.p[k] - '0');
        }
        item = clv_jj_getitem(r, at, item, digits ? jj_int(num) : jj_strv(part));
        i = j + 1;
    }
    return item;
}

/* A stable merge sort whose comparison may fail (then r is failed). */
typedef struct sort_ctx {
    jj_render *r;
    const jj_node *at;
    jj_value *keys;
    bool reverse;
} sort_ctx;

static int sort_cmp(sort_ctx *c, size_t a, size_t b) {
    int cmp = 0;
    if (JJ_FAILED(c->r)) return 0;
    if (!clv_jj_compare(c->r, c->at, c->keys[a], c->keys[b], "<", &cmp)) return 0;
    if (cmp == 2) cmp = 0;
    return c->reverse ? -cmp : cmp;
}

static void merge_sort(sort_ctx *c, size_t *idx, size_t *tmp, size_t n) {
    if (n < 2) return;
    size_t h = n / 2;
    merge_sort(c, idx, tmp, h);
    merge_sort(c, idx + h, tmp, n - h);
    size_t i = 0, j = h, k = 0;
    while (i < h && j < n) tmp[k++] = sort_cmp(c, idx[j], idx[i]) < 0 ? idx[j++] : idx[i++];
    while (i < h) tmp[k++] = idx[i++];
    while (j < n) tmp[k++] = idx[j++];
    memcpy(idx, tmp, n * sizeof *idx);
}

/* Sort key: the attribute if asked, lower-cased when case-insensitive. */
static jj_value sort_key(jj_render *r, const jj_node *at, jj_value v, jj_value attr, bool case_sensitive) {
    if (attr.kind != JJ_UNDEF && attr.kind != JJ_NONE) v = get_attribute_path(r, at, v, attr);
    if (!case_sensitive && v.kind == JJ_STR) v = jj_strv(change_case(r, v.u.s, CASE_LOWER));
    return v;
}

static bool sorted_index(jj_render *r, const jj_node *at, jj_value *keys, size_t n, bool reverse,
                         size_t **out) {
    size_t *idx = clv_jj_ralloc(r, (n + 1) * sizeof *idx);
    size_t *tmp = clv_jj_ralloc(r, (n + 1) * sizeof *tmp);
    if (!idx || !tmp) return false;
    for (size_t i = 0; i < n; i++) idx[i] = i;
    sort_ctx c = {r, at, keys, reverse};
    merge_sort(&c, idx, tmp, n);
    *out = idx;
    return !JJ_FAILED(r);
}

/* --- filters ---------------------------------------------------------------------- */

#define NOARGS(fname)                                                                        \
    if (a->npos || a->nkw) return type_error(r, at, "%s takes no arguments", fname);

#define BIND(fname, ...)                                                                     \
    static const char *const params_[] = {__VA_ARGS__};                                       \
    enum { NP_ = sizeof params_ / sizeof params_[0] };                                        \
    jj_value p[NP_];                                                                          \
    bool g[NP_];                                                                              \
    if (!clv_jj_bind(r, at, fname, a, params_, NP_, 0, p, g)) return undef();

static jj_value f_default(jj_render *r, const jj_node *at, jj_value v, const jj_args *a) {
    BIND("default", "default_value", "boolean");
    jj_value dflt = g[0] ? p[0] : jj_strv(JJ_S(""));
    if (v.kind == JJ_UNDEF || (g[1] && clv_jj_truthy(p[1]) && !clv_jj_truthy(v))) return dflt;
    return v;
}

static jj_value length_of(jj_render *r, const jj_node *at, jj_value v) {
    switch (v.kind) {
    case JJ_UNDEF: return jj_int(0);
    case JJ_STR: return clv_jj_charge(r, v.u.s.n / 64) ? jj_int((int64_t)clv_jj_utf8_len(v.u.s)) : undef();
    case JJ_LIST: return jj_int((int64_t)v.u.list->n);
    case JJ_DICT: return jj_int((int64_t)v.u.dict->n);
    case JJ_LOOP: return jj_int(v.u.loop->length);
    default: return type_error(r, at, "object of type '%s' has no len()", clv_jj_type_name(v));
    }
}

static jj_value f_length(jj_render *r, const jj_node *at, jj_value v, const jj_args *a) {
    NOARGS("length");
    return length_of(r, at, v);
}

static jj_value f_string(jj_render *r, const jj_node *at, jj_value v, const jj_args *a) {
    NOARGS("string");
    return jj_strv(clv_jj_to_str(r, v));
}

static jj_value f_upper(jj_render *r, const jj_node *at, jj_value v, const jj_args *a) {
    NOARGS("upper");
    return jj_strv(change_case(r, clv_jj_to_str(r, v), CASE_UPPER));
}

static jj_value f_lower(jj_render *r, const jj_node *at, jj_value v, const jj_args *a) {
    NOARGS("lower");
    return jj_strv(change_case(r, clv_jj_to_str(r, v), CASE_LOWER));
}

static jj_value f_capitalize(jj_render *r, const jj_node *at, jj_value v, const jj_args *a) {
    NOARGS("capitalize");
    return jj_strv(change_case(r, clv_jj_to_str(r, v), CASE_CAPITALIZE));
}

/* jinja2's title filter: words start after whitespace or one of -({[< . */
static jj_value f_title(jj_render *r, const jj_node *at, jj_value v, const jj_args *a) {
    NOARGS("title");
    jj_str s = clv_jj_to_str(r, v);
    clv_strbuf b = {.limit = r->arena.limit};
    cp_iter it = {s, 0};
    uint32_t cp;
    size_t from, to;
    bool word_start = true;
    while (cp_next(&it, &cp, &from, &to)) {
        bool sep = clv_jj_isspace(cp) || cp == '-' || cp == '(' || cp == '{' || cp == '[' || cp == '<';
        uint32_t out = sep ? cp : word_start ? to_upper(cp) : to_lower(cp);
        word_start = sep;
        char enc[4];
        clv_strbuf_append(&b, enc, clv_json_utf8_encode(out, enc));
    }
    return jj_strv(clv_jj_take_buf(r, &b));
}

static jj_value f_trim(jj_render *r, const jj_node *at, jj_value v, const jj_args *a) {
    BIND("trim", "chars");
    jj_str s = clv_jj_to_str(r, v), chars;
    if (!clv_jj_charge(r, s.n / 64)) return undef();
    if (g[0] && p[0].kind != JJ_NONE) {
        if (!want_str(r, at, "trim", p[0], &chars)) return undef();
        return jj_strv(strip(s, &chars, true, true));
    }
    return jj_strv(strip(s, NULL, true, true));
}

/* str.replace(old, new, count) */
static jj_str replace_str(jj_render *r, jj_str s, jj_str old, jj_str rep, int64_t count) {
    clv_strbuf b = {.limit = r->arena.limit};
    if (old.n == 0) {
        /* Python inserts `rep` before every character and at the end. */
        cp_iter it = {s, 0};
        uint32_t cp;
        size_t from, to;
        int64_t done = 0;
        while (cp_next(&it, &cp, &from, &to)) {
            if (count < 0 || done < count) {
                clv_strbuf_append(&b, rep.p, rep.n);
                done++;
            }
            clv_strbuf_append(&b, s.p + from, to - from);
        }
        if (count < 0 || done < count) clv_strbuf_append(&b, rep.p, rep.n);
        return clv_jj_take_buf(r, &b);
    }
    size_t i = 0;
    int64_t done = 0;
    while (i < s.n) {
        const char *hit = (count < 0 || done < count) ? memmem(s.p + i, s.n - i, old.p, old.n) : NULL;
        if (!hit) break;
        size_t at = (size_t)(hit - s.p);
        clv_strbuf_append(&b, s.p + i, at - i);
        clv_strbuf_append(&b, rep.p, rep.n);
        i = at + old.n;
        done++;
    }
    clv_strbuf_append(&b, s.p + i, s.n - i);
    return clv_jj_take_buf(r, &b);
}

static jj_value f_replace(jj_render *r, const jj_node *at, jj_value v, const jj_args *a) {
    BIND("replace", "old", "new", "count");
    if (!g[0] || !g[1]) return type_error(r, at, "%s needs the old and new strings", "replace");
    jj_str s = clv_jj_to_str(r, v), old = clv_jj_to_str(r, p[0]), rep = clv_jj_to_str(r, p[1]);
    int64_t count = -1;
    if (g[2] && p[2].kind != JJ_NONE) {
        if (!is_int(p[2])) return type_error(r, at, "replace: count must be an integer, not %s", clv_jj_type_name(p[2]));
        count = ival(p[2]);
    }
    return jj_strv(replace_str(r, s, old, rep, count));
}

static jj_value f_join(jj_render *r, const jj_node *at, jj_value v, const jj_args *a) {
    BIND("join", "d", "attribute");
    jj_str sep = g[0] ? clv_jj_to_str(r, p[0]) : JJ_S("");
    jj_list *items;
    if (!clv_jj_iterate(r, at, v, &items)) return undef();
    clv_strbuf b = {.limit = r->arena.limit};
    for (size_t i = 0; i < items->n && !JJ_FAILED(r); i++) {
        if (i) clv_strbuf_append(&b, sep.p, sep.n);
        jj_value item = items->items[i];
        if (g[1] && p[1].kind != JJ_NONE) item = get_attribute_path(r, at, item, p[1]);
        clv_jj_write_str(r, &b, item);
    }
    return jj_strv(clv_jj_take_buf(r, &b));
}

static jj_value f_first(jj_render *r, const jj_node *at, jj_value v, const jj_args *a) {
    NOARGS("first");
    jj_list *items;
    if (!clv_jj_iterate(r, at, v, &items)) return undef();
    return items->n ? items->items[0] : jj_undef(JJ_S("No first item, sequence was empty."));
}

static jj_value f_last(jj_render *r, const jj_node *at, jj_value v, const jj_args *a) {
    NOARGS("last");
    jj_list *items;
    if (!clv_jj_iterate(r, at, v, &items)) return undef();
    return items->n ? items->items[items->n - 1] : jj_undef(JJ_S("No last item, sequence was empty."));
}

static jj_value f_list(jj_render *r, const jj_node *at, jj_value v, const jj_args *a) {
    NOARGS("list");
    jj_list *items;
    if (!clv_jj_iterate(r, at, v, &items)) return undef();
    return list_of(r, items->items, items->n, false);
}

static jj_value f_items(jj_render *r, const jj_node *at, jj_value v, const jj_args *a) {
    NOARGS("items");
    if (v.kind == JJ_UNDEF) return list_of(r, NULL, 0, false);
    if (v.kind != JJ_DICT) return type_error(r, at, "%s", "Can only get item pairs from a mapping.");
    jj_list *l = clv_jj_list_new(r, v.u.dict->n);
    if (!l) return undef();
    for (size_t i = 0; i < l->n; i++) l->items[i] = pair(r, v.u.dict->keys[i], v.u.dict->vals[i]);
    return clv_jj_listv(l, false);
}

static jj_value f_reverse(jj_render *r, const jj_node *at, jj_value v, const jj_args *a) {
    NOARGS("reverse");
    if (v.kind == JJ_STR) {
        clv_strbuf b = {.limit = r->arena.limit};
        clv_strbuf_reserve(&b, v.u.s.n);
        size_t e = v.u.s.n;
        while (e > 0) {
            size_t s = e - 1;
            while (s > 0 && ((unsigned char)v.u.s.p[s] & 0xC0) == 0x80) s--;
            clv_strbuf_append(&b, v.u.s.p + s, e - s);
            e = s;
        }
        return jj_strv(clv_jj_take_buf(r, &b));
    }
    jj_list *items;
    if (!clv_jj_iterate(r, at, v, &items)) return undef();
    jj_list *l = clv_jj_list_new(r, items->n);
    if (!l) return undef();
    for (size_t i = 0; i < items->n; i++) l->items[i] = items->items[items->n - 1 - i];
    return clv_jj_listv(l, false);
}

static jj_value f_tojson(jj_render *r, const jj_node *at, jj_value v, const jj_args *a) {
    BIND("tojson", "ensure_ascii", "indent", "separators", "sort_keys");
    clv_json_write_params wp = clv_json_default_write_params();
    wp.allow_nan = true; /* json.dumps' default */
    wp.ensure_ascii = g[0] && clv_jj_truthy(p[0]);
    if (g[1] && p[1].kind != JJ_NONE) {
        if (!is_int(p[1]))
            return type_error(r, at, "tojson: indent must be an integer (got %s)", clv_jj_type_name(p[1]));
        int64_t ind = ival(p[1]);
        wp.indent = ind < 0 ? 0 : ind > 64 ? 64 : (int)ind;
    }
    char item_sep[64], key_sep[64];
    if (g[2] && p[2].kind != JJ_NONE) {
        jj_value s = p[2];
        if (s.kind != JJ_LIST || s.u.list->n != 2 || s.u.list->items[0].kind != JJ_STR ||
            s.u.list->items[1].kind != JJ_STR || s.u.list->items[0].u.s.n >= sizeof item_sep ||
            s.u.list->items[1].u.s.n >= sizeof key_sep)
            return type_error(r, at, "tojson: separators must be a pair of strings (got %s)", clv_jj_type_name(s));
        memcpy(item_sep, s.u.list->items[0].u.s.p, s.u.list->items[0].u.s.n);
        item_sep[s.u.list->items[0].u.s.n] = '\0';
        memcpy(key_sep, s.u.list->items[1].u.s.p, s.u.list->items[1].u.s.n);
        key_sep[s.u.list->items[1].u.s.n] = '\0';
        wp.item_sep = item_sep;
        wp.key_sep = key_sep;
    }
    wp.sort_keys = g[3] && clv_jj_truthy(p[3]);
    return jj_strv(clv_jj_tojson(r, at, v, &wp));
}

/* int(s, base) for a Python integer literal with optional sign, spaces and
 * underscores; false when s is not one. */
static bool parse_int_str(jj_str s, int base, int64_t *out) {
    s = strip(s, NULL, true, true);
    size_t i = 0;
    bool neg = false;
    if (i < s.n && (s.p[i] == '+' || s.p[i] == '-')) neg = s.p[i++] == '-';
    if (base == 0 || base == 16 || base == 8 || base == 2) {
        if (i + 1 < s.n && s.p[i] == '0') {
            char k = (char)(s.p[i + 1] | 0x20);
            int pb = k == 'x' ? 16 : k == 'o' ? 8 : k == 'b' ? 2 : 0;
            if (pb && (base == 0 || base == pb)) {
                base = pb;
                i += 2;
                if (i < s.n && s.p[i] == '_') i++;
            }
        }
        if (base == 0) base = 10;
    }
    if (i >= s.n) return false;
    uint64_t v = 0;
    bool prev_digit = false;
    for (; i < s.n; i++) {
        char c = s.p[i];
        if (c == '_' && prev_digit && i + 1 < s.n) {
            prev_digit = false;
            continue;
        }
        int d = c >= '0' && c <= '9' ? c - '0' : (c | 0x20) >= 'a' && (c | 0x20) <= 'z' ? (c | 0x20) - 'a' + 10 : 99;
        if (d >= base) return false;
        if (v > (UINT64_MAX - (uint64_t)d) / (uint64_t)base) return false;
        v = v * (uint64_t)base + (uint64_t)d;
        prev_digit = true;
    }
    if (!prev_digit || v > (uint64_t)INT64_MAX + neg) return false;
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return true;
}

/* float(s): Python accepts surrounding spaces, underscores between digits,
 * inf/nan words; strtod accepts a superset, so check the rest is empty. */
static bool parse_float_str(jj_str s, double *out) {
    s = strip(s, NULL, true, true);
    if (s.n == 0 || s.n > 200) return false;
    char buf[256];
    size_t w = 0;
    for (size_t i = 0; i < s.n; i++) {
        if (s.p[i] == '_') {
            if (i == 0 || i + 1 == s.n || !(s.p[i - 1] >= '0' && s.p[i - 1] <= '9') ||
                !(s.p[i + 1] >= '0' && s.p[i + 1] <= '9'))
                return false;
            continue;
        }
        if (s.p[i] == 'x' || s.p[i] == 'X' || s.p[i] == 'p' || s.p[i] == 'P') return false; /* no hex floats */
        buf[w++] = s.p[i];
    }
    buf[w] = '\0';
    char *end;
    double d = strtod(buf, &end);
    if (*end != '\0' || end == buf) return false;
    *out = d;
    return true;
}

static jj_value f_int(jj_render *r, const jj_node *at, jj_value v, const jj_args *a) {
    BIND("int", "default", "base");
    jj_value dflt = g[0] ? p[0] : jj_int(0);
    int base = g[1] && is_int(p[1]) ? (int)ival(p[1]) : 10;
    int64_t i;
    double d;
    switch (v.kind) {
    case JJ_UNDEF: return fail_undef(r, at, v);
    case JJ_INT: case JJ_BOOL: return jj_int(ival(v));
    case JJ_FLOAT:
        if (!isfinite(v.u.f) || fabs(v.u.f) >= 9.2e18) return dflt;
        return jj_int((int64_t)v.u.f);
    case JJ_STR:
        if (parse_int_str(v.u.s, base, &i)) return jj_int(i);
        if (parse_float_str(v.u.s, &d) && isfinite(d) && fabs(d) < 9.2e18) return jj_int((int64_t)d);
        return dflt;
    default: return dflt;
    }
}

static jj_value f_float(jj_render *r, const jj_node *at, jj_value v, const jj_args *a) {
    BIND("float", "default");
    jj_value dflt = g[0] ? p[0] : jj_float(0.0);
    double d;
    switch (v.kind) {
    case JJ_UNDEF: return fail_undef(r, at, v);
    case JJ_INT: case JJ_BOOL: return jj_float((double)ival(v));
    case JJ_FLOAT: return v;
    case JJ_STR: return parse_float_str(v.u.s, &d) ? jj_float(d) : dflt;
    default: return dflt;
    }
}

static jj_value f_abs(jj_render *r, const jj_node *at, jj_value v, const jj_args *a) {
    NOARGS("abs");
    if (v.kind == JJ_FLOAT) return jj_float(fabs(v.u.f));
    if (is_int(v)) {
        int64_t i = ival(v);
        if (i == INT64_MIN) {
            clv_jj_error(r, at, CLV_ERR_UNSUPPORTED, "integer overflow");
            return undef();
        }
        return jj_int(i < 0 ? -i : i);
    }
    if (v.kind == JJ_UNDEF) return fail_undef(r, at, v);
    return type_error(r, at, "bad operand type for abs(): '%s'", clv_jj_type_name(v));
}

static jj_value f_round(jj_render *r, const jj_node *at, jj_value v, const jj_args *a) {
    BIND("round", "precision", "method");
    int64_t prec = g[0] && is_int(p[0]) ? ival(p[0]) : 0;
    jj_str method = g[1] && p[1].kind == JJ_STR ? p[1].u.s : JJ_S("common");
    if (!jj_str_is(method, "common") && !jj_str_is(method, "floor") && !jj_str_is(method, "ceil"))
        return type_error(r, at, "%s", "round: method must be common, ceil or floor");
    if (v.kind == JJ_UNDEF) return fail_undef(r, at, v);
    if (is_int(v) && jj_str_is(method, "common") && prec >= 0) return jj_int(ival(v));
    if (!is_int(v) && v.kind != JJ_FLOAT) return type_error(r, at, "round: expected a number, got %s", clv_jj_type_name(v));
    double x = v.kind == JJ_FLOAT ? v.u.f : (double)ival(v);
    if (prec > 300) prec = 300;
    if (prec < -300) prec = -300;
    if (jj_str_is(method, "common")) {
        if (!isfinite(x)) return jj_float(x);
        if (prec >= 0) {
            /* printf rounds the exact binary value half-to-even, like Python. */
            char buf[400];
            snprintf(buf, sizeof buf, "%.*f", (int)prec, x);
            return jj_float(strtod(buf, NULL));
        }
        double m = pow(10.0, (double)-prec);
        double q = x / m, f = floor(q), diff = q - f;
        if (diff > 0.5 || (diff == 0.5 && fmod(f, 2.0) != 0.0)) f += 1.0;
        return jj_float(f * m);
    }
    double m = pow(10.0, (double)prec);
    return jj_float((jj_str_is(method, "floor") ? floor(x * m) : ceil(x * m)) / m);
}

static jj_value f_safe(jj_render *r, const jj_node *at, jj_value v, const jj_args *a) {
    NOARGS("safe");
    return jj_strv(clv_jj_to_str(r, v));
}

static jj_value f_escape(jj_render *r, const jj_node *at, jj_value v, const jj_args *a) {
    NOARGS("escape");
    jj_str s = clv_jj_to_str(r, v);
    clv_strbuf b = {.limit = r->arena.limit};
    for (size_t i = 0; i < s.n; i++) {
        switch (s.p[i]) {
        case '&': clv_strbuf_puts(&b, "&amp;"); break;
        case '<': clv_strbuf_puts(&b, "&lt;"); break;
        case '>': clv_strbuf_puts(&b, "&gt;"); break;
        case '"': clv_strbuf_puts(&b, "&#34;"); break;
        case '\'': clv_strbuf_puts(&b, "&#39;"); break;
        default: clv_strbuf_putc(&b, s.p[i]);
        }
    }
    return jj_strv(clv_jj_take_buf(r, &b));
}

static jj_value f_attr(jj_render *r, const jj_node *at, jj_value v, const jj_args *a) {
    BIND("attr", "name");
    jj_str name;
    if (!want_str(r, at, "attr", p[0], &name)) return undef();
    return clv_jj_getattr(r, at, v, name);
}

static jj_value f_format(jj_render *r, const jj_node *at, jj_value v, const jj_args *a) {
    jj_str fmt = clv_jj_to_str(r, v);
    if (a->nkw && a->npos) return type_error(r, at, "%s", "format: positional and keyword arguments cannot be mixed");
    if (a->nkw) {
        jj_dict *d = clv_jj_dict_new(r, a->nkw);
        if (!d) return undef();
        for (size_t i = 0; i < a->nkw; i++) {
            d->keys[i] = jj_strv(a->kw_names[i]);
            d->vals[i] = a->kw_vals[i];
        }
        return clv_jj_percent_format(r, at, fmt, clv_jj_dictv(d));
    }
    return clv_jj_percent_format(r, at, fmt, list_of(r, a->pos, a->npos, true));
}

static jj_value splitlines(jj_render *r, jj_str s, bool keepends);

/* jinja2's indent: it appends "\n" and splits lines, so a trailing newline
 * leaves an empty last line. */
static jj_value f_indent(jj_render *r, const jj_node *at, jj_value v, const jj_args *a) {
    BIND("indent", "width", "first", "blank");
    jj_str ind;
    char spaces[256];
    if (g[0] && p[0].kind == JJ_STR) {
        ind = p[0].u.s;
    } else {
        int64_t w = g[0] && is_int(p[0]) ? ival(p[0]) : 4;
        if (w < 0) w = 0;
        if (w > 255) w = 255;
        memset(spaces, ' ', (size_t)w);
        ind = (jj_str){spaces, (size_t)w};
    }
    bool first = g[1] && clv_jj_truthy(p[1]), blank = g[2] && clv_jj_truthy(p[2]);
    jj_str s = clv_jj_to_str(r, v);
    char *tmp = clv_jj_ralloc(r, s.n + 2);
    if (!tmp) return undef();
    memcpy(tmp, s.p, s.n);
    tmp[s.n] = '\n';
    jj_value lines = splitlines(r, (jj_str){tmp, s.n + 1}, false);
    if (lines.kind != JJ_LIST) return undef();
    clv_strbuf b = {.limit = r->arena.limit};
    if (first) clv_strbuf_append(&b, ind.p, ind.n);
    for (size_t i = 0; i < lines.u.list->n; i++) {
        jj_str line = lines.u.list->items[i].u.s;
        if (i > 0) {
            clv_strbuf_putc(&b, '\n');
            if (blank || line.n) clv_strbuf_append(&b, ind.p, ind.n);
        }
        clv_strbuf_append(&b, line.p, line.n);
    }
    return jj_strv(clv_jj_take_buf(r, &b));
}

/* map(attribute='x', default=...) or map('filter', args...). */
static jj_value f_map(jj_render *r, const jj_node *at, jj_value v, const jj_args *a) {
    jj_list *items;
    if (!clv_jj_iterate(r, at, v, &items)) return undef();
    jj_list *out = clv_jj_list_new(r, items->n);
    if (!out) return undef();
    if (a->npos == 0) {
        jj_value attr = undef(), dflt = jj_none();
        for (size_t k = 0; k < a->nkw; k++) {
            if (jj_str_is(a->kw_names[k], "attribute")) attr = a->kw_vals[k];
            else if (jj_str_is(a->kw_names[k], "default")) dflt = a->kw_vals[k];
            else return type_error(r, at, "%s", "map: unexpected keyword argument");
        }
        if (attr.kind == JJ_UNDEF) return type_error(r, at, "%s", "map needs a filter name or attribute=");
        for (size_t i = 0; i < items->n && !JJ_FAILED(r); i++) {
            jj_value x = get_attribute_path(r, at, items->items[i], attr);
            out->items[i] = x.kind == JJ_UNDEF && dflt.kind != JJ_NONE ? dflt : x;
        }
        return clv_jj_listv(out, false);
    }
    jj_str name;
    if (!want_str(r, at, "map", a->pos[0], &name)) return undef();
    if (!clv_jj_filter_known(name)) {
        clv_jj_error(r, at, CLV_ERR_UNSUPPORTED, "no filter named '%.*s'", (int)name.n, name.p);
        return undef();
    }
    jj_args rest = *a;
    rest.pos++;
    rest.npos--;
    for (size_t i = 0; i < items->n && !JJ_FAILED(r); i++)
        out->items[i] = clv_jj_apply_filter(r, at, name, items->items[i], &rest);
    return clv_jj_listv(out, false);
}

/* select/reject/selectattr/rejectattr share one walk. */
static jj_value select_common(jj_render *r, const jj_node *at, jj_value v, const jj_args *a,
                              bool by_attr, bool keep) {
    jj_list *items;
    if (!clv_jj_iterate(r, at, v, &items)) return undef();
    size_t first_arg = 0;
    jj_value attr = undef();
    if (by_attr) {
        if (a->npos < 1) return type_error(r, at, "%s", "selectattr/rejectattr need an attribute name");
        attr = a->pos[0];
        first_arg = 1;
    }
    bool has_test = a->npos > first_arg;
    jj_str test = JJ_S("");
    if (has_test && !want_str(r, at, "select", a->pos[first_arg], &test)) return undef();
    if (has_test && !clv_jj_test_known(test)) {
        clv_jj_error(r, at, CLV_ERR_UNSUPPORTED, "no test named '%.*s'", (int)test.n, test.p);
        return undef();
    }
    jj_args rest = {0};
    if (has_test) {
        rest.pos = a->pos + first_arg + 1;
        rest.npos = a->npos - first_arg - 1;
        rest.kw_names = a->kw_names;
        rest.kw_vals = a->kw_vals;
        rest.nkw = a->nkw;
    }
    jj_list *out = clv_jj_list_new(r, items->n);
    if (!out) return undef();
    size_t w = 0;
    for (size_t i = 0; i < items->n && !JJ_FAILED(r); i++) {
        jj_value x = by_attr ? get_attribute_path(r, at, items->items[i], attr) : items->items[i];
        bool hit = has_test ? clv_jj_apply_test(r, at, test, x, &rest) : clv_jj_truthy(x);
        if (hit == keep) out->items[w++] = items->items[i];
    }
    out->n = w;
    return clv_jj_listv(out, false);
}

static jj_value f_select(jj_render *r, const jj_node *at, jj_value v, const jj_args *a) {
    return select_common(r, at, v, a, false, true);
}
static jj_value f_reject(jj_render *r, const jj_node *at, jj_value v, const jj_args *a) {
    return select_common(r, at, v, a, false, false);
}
static jj_value f_selectattr(jj_render *r, const jj_node *at, jj_value v, const jj_args *a) {
    return select_common(r, at, v, a, true, true);
}
static jj_value f_rejectattr(jj_render *r, const jj_node *at, jj_value v, const jj_args *a) {
    return select_common(r, at, v, a, true, false);
}

static jj_value f_sort(jj_render *r, const jj_node *at, jj_value v, const jj_args *a) {
    BIND("sort", "reverse", "case_sensitive", "attribute");
    jj_list *items;
    if (!clv_jj_iterate(r, at, v, &items)) return undef();
    jj_value *keys = clv_jj_ralloc(r, (items->n + 1) * sizeof *keys);
    if (!keys) return undef();
    bool cs = g[1] && clv_jj_truthy(p[1]);
    for (size_t i = 0; i < items->n; i++) keys[i] = sort_key(r, at, items->items[i], p[2], cs);
    size_t *idx;
    if (!sorted_index(r, at, keys, items->n, g[0] && clv_jj_truthy(p[0]), &idx)) return undef();
    jj_list *out = clv_jj_list_new(r, items->n);
    if (!out) return undef();
    for (size_t i = 0; i < items->n; i++) out->items[i] = items->items[idx[i]];
    return clv_jj_listv(out, false);
}

static jj_value f_dictsort(jj_render *r, const jj_node *at, jj_value v, const jj_args *a) {
    BIND("dictsort", "case_sensitive", "by", "reverse");
    if (v.kind != JJ_DICT) return type_error(r, at, "dictsort: expected a mapping, got %s", clv_jj_type_name(v));
    bool by_value = g[1] && p[1].kind == JJ_STR && jj_str_is(p[1].u.s, "value");
    size_t n = v.u.dict->n;
    jj_value *keys = clv_jj_ralloc(r, (n + 1) * sizeof *keys);
    if (!keys) return undef();
    bool cs = g[0] && clv_jj_truthy(p[0]);
    for (size_t i = 0; i < n; i++)
        keys[i] = sort_key(r, at, by_value ? v.u.dict->vals[i] : v.u.dict->keys[i], undef(), cs);
    size_t *idx;
    if (!sorted_index(r, at, keys, n, g[2] && clv_jj_truthy(p[2]), &idx)) return undef();
    jj_list *out = clv_jj_list_new(r, n);
    if (!out) return undef();
    for (size_t i = 0; i < n; i++) out->items[i] = pair(r, v.u.dict->keys[idx[i]], v.u.dict->vals[idx[i]]);
    return clv_jj_listv(out, false);
}

static jj_value f_unique(jj_render *r, const jj_node *at, jj_value v, const jj_args *a) {
    BIND("unique", "case_sensitive", "attribute");
    jj_list *items;
    if (!clv_jj_iterate(r, at, v, &items)) return undef();
    bool cs = g[0] && clv_jj_truthy(p[0]);
    jj_value *keys = clv_jj_ralloc(r, (items->n + 1) * sizeof *keys);
    jj_list *out = clv_jj_list_new(r, items->n);
    if (!keys || !out) return undef();
    size_t w = 0;
    for (size_t i = 0; i < items->n; i++) {
        jj_value k = sort_key(r, at, items->items[i], p[1], cs);
        bool seen = false;
        for (size_t j = 0; j < w && !seen && !JJ_FAILED(r); j++) seen = clv_jj_equal(r, keys[j], k);
        if (seen) continue;
        keys[w] = k;
        out->items[w++] = items->items[i];
    }
    out->n = w;
    return clv_jj_listv(out, false);
}

static jj_value minmax(jj_render *r, const jj_node *at, jj_value v, const jj_args *a, bool want_max) {
    BIND(want_max ? "max" : "min", "case_sensitive", "attribute");
    jj_list *items;
    if (!clv_jj_iterate(r, at, v, &items)) return undef();
    if (!items->n) return jj_undef(JJ_S("No aggregated item, sequence was empty."));
    if (!clv_jj_charge(r, items->n / 16)) return undef();
    bool cs = g[0] && clv_jj_truthy(p[0]);
    size_t best = 0;
    jj_value best_key = sort_key(r, at, items->items[0], p[1], cs);
    for (size_t i = 1; i < items->n && !JJ_FAILED(r); i++) {
        jj_value k = sort_key(r, at, items->items[i], p[1], cs);
        int c;
        if (!clv_jj_compare(r, at, k, best_key, want_max ? ">" : "<", &c)) return undef();
        if (c != 2 && (want_max ? c > 0 : c < 0)) {
            best = i;
            best_key = k;
        }
    }
    return items->items[best];
}

static jj_value f_min(jj_render *r, const jj_node *at, jj_value v, const jj_args *a) {
    return minmax(r, at, v, a, false);
}
static jj_value f_max(jj_render *r, const jj_node *at, jj_value v, const jj_args *a) {
    return minmax(r, at, v, a, true);
}

static jj_value f_sum(jj_render *r, const jj_node *at, jj_value v, const jj_args *a) {
    BIND("sum", "attribute", "start");
    jj_list *items;
    if (!clv_jj_iterate(r, at, v, &items)) return undef();
    jj_value total = g[1] ? p[1] : jj_int(0);
    if (!clv_jj_charge(r, items->n / 16)) return undef();
    for (size_t i = 0; i < items->n && !JJ_FAILED(r); i++) {
        jj_value x = items->items[i];
        if (g[0] && p[0].kind != JJ_NONE) x = get_attribute_path(r, at, x, p[0]);
        bool ints = is_int(total) && is_int(x);
        if (ints) {
            int64_t z;
            if (__builtin_add_overflow(ival(total), ival(x), &z)) {
                clv_jj_error(r, at, CLV_ERR_UNSUPPORTED, "integer overflow");
                return undef();
            }
            total = jj_int(z);
        } else if ((is_int(total) || total.kind == JJ_FLOAT) && (is_int(x) || x.kind == JJ_FLOAT)) {
            total = jj_float((total.kind == JJ_FLOAT ? total.u.f : (double)ival(total)) +
                             (x.kind == JJ_FLOAT ? x.u.f : (double)ival(x)));
        } else {
            clv_jj_error(r, at, CLV_ERR_TYPE, "unsupported operand type(s) for +: '%s' and '%s'",
                         clv_jj_type_name(total), clv_jj_type_name(x));
            return undef();
        }
    }
    return total;
}

typedef jj_value (*filter_fn)(jj_render *, const jj_node *, jj_value, const jj_args *);

static const struct {
    const char *name;
    filter_fn fn;
} filters[] = {
    {"abs", f_abs}, {"attr", f_attr}, {"capitalize", f_capitalize}, {"count", f_length},
    {"d", f_default}, {"default", f_default}, {"dictsort", f_dictsort}, {"e", f_escape},
    {"escape", f_escape}, {"first", f_first}, {"float", f_float}, {"forceescape", f_escape},
    {"format", f_format}, {"indent", f_indent}, {"int", f_int}, {"items", f_items},
    {"join", f_join}, {"last", f_last}, {"length", f_length}, {"list", f_list},
    {"lower", f_lower}, {"map", f_map}, {"max", f_max}, {"min", f_min},
    {"reject", f_reject}, {"rejectattr", f_rejectattr}, {"replace", f_replace},
    {"reverse", f_reverse}, {"round", f_round}, {"safe", f_safe}, {"select", f_select},
    {"selectattr", f_selectattr}, {"sort", f_sort}, {"string", f_string}, {"sum", f_sum},
    {"title", f_title}, {"tojson", f_tojson}, {"trim", f_trim}, {"unique", f_unique},
    {"upper", f_upper},
};

bool clv_jj_filter_known(jj_str name) {
    for (size_t i = 0; i < sizeof filters / sizeof filters[0]; i++)
        if (jj_str_is(name, filters[i].name)) return true;
    return false;
}

jj_value clv_jj_apply_filter(jj_render *r, const jj_node *at, jj_str name, jj_value v,
                             const jj_args *args) {
    for (size_t i = 0; i < sizeof filters / sizeof filters[0]; i++)
        if (jj_str_is(name, filters[i].name)) return filters[i].fn(r, at, v, args);
    clv_jj_error(r, at, CLV_ERR_UNSUPPORTED, "no filter named '%.*s'", (int)name.n, name.p);
    return undef();
}

/* --- tests ------------------------------------------------------------------------ */

static bool one_arg(jj_render *r, const jj_node *at, const char *name, const jj_args *a, jj_value *out) {
    static const char *const params[] = {"other"};
    bool given;
    return clv_jj_bind(r, at, name, a, params, 1, 1, out, &given);
}

static bool str_case_test(jj_value v, bool upper) {
    if (v.kind != JJ_STR) return false;
    cp_iter it = {v.u.s, 0};
    uint32_t cp;
    size_t f, t;
    bool any = false;
    while (cp_next(&it, &cp, &f, &t)) {
        if (!is_cased(cp)) continue;
        if (upper ? is_lower_cp(cp) : is_upper_cp(cp)) return false;
        any = true;
    }
    return any;
}

static bool int_mod_test(jj_render *r, const jj_node *at, jj_value v, int64_t by, int64_t want) {
    if (v.kind == JJ_UNDEF) {
        fail_undef(r, at, v);
        return false;
    }
    if (is_int(v)) {
        int64_t m = ival(v) % by;
        if (m < 0) m += by < 0 ? -by : by;
        return m == want;
    }
    if (v.kind == JJ_FLOAT) {
        double m = fmod(v.u.f, (double)by);
        if (m < 0) m += fabs((double)by);
        return m == (double)want;
    }
    clv_jj_error(r, at, CLV_ERR_TYPE, "unsupported operand type(s) for %%: '%s' and 'int'", clv_jj_type_name(v));
    return false;
}

bool clv_jj_test_known(jj_str name) {
    static const char *const names[] = {
        "defined", "undefined", "none", "boolean", "true", "false", "integer", "float",
        "number", "string", "mapping", "iterable", "sequence", "callable", "odd", "even",
        "divisibleby", "eq", "equalto", "==", "ne", "!=", "lt", "<", "lessthan", "le", "<=",
        "gt", ">", "greaterthan", "ge", ">=", "in", "sameas", "lower", "upper", "escaped", NULL};
    for (const char *const *n = names; *n; n++)
        if (jj_str_is(name, *n)) return true;
    return false;
}

bool clv_jj_apply_test(jj_render *r, const jj_node *at, jj_str name, jj_value v, const jj_args *a) {
    jj_value o;
    int c;
#define T(n) jj_str_is(name, n)
    if (T("defined")) return v.kind != JJ_UNDEF;
    if (T("undefined")) return v.kind == JJ_UNDEF;
    if (T("none")) return v.kind == JJ_NONE;
    if (T("boolean")) return v.kind == JJ_BOOL;
    if (T("true")) return v.kind == JJ_BOOL && v.u.b;
    if (T("false")) return v.kind == JJ_BOOL && !v.u.b;
    if (T("integer")) return v.kind == JJ_INT;
    if (T("float")) return v.kind == JJ_FLOAT;
    if (T("number")) return v.kind == JJ_INT || v.kind == JJ_FLOAT || v.kind == JJ_BOOL;
    if (T("string")) return v.kind == JJ_STR;
    if (T("mapping")) return v.kind == JJ_DICT;
    /* Python's duck typing: Undefined iterates (empty), has len() and [],
     * and is callable (raising when called). */
    if (T("iterable"))
        return v.kind == JJ_LIST || v.kind == JJ_DICT || v.kind == JJ_STR || v.kind == JJ_UNDEF || v.kind == JJ_LOOP;
    if (T("sequence")) return v.kind == JJ_LIST || v.kind == JJ_DICT || v.kind == JJ_STR || v.kind == JJ_UNDEF;
    if (T("callable")) return v.kind == JJ_FUNC || v.kind == JJ_UNDEF || v.kind == JJ_LOOP;
    if (T("lower")) return str_case_test(v, false);
    if (T("upper")) return str_case_test(v, true);
    if (T("escaped")) return false;
    if (T("odd")) return int_mod_test(r, at, v, 2, 1);
    if (T("even")) return int_mod_test(r, at, v, 2, 0);
    if (!one_arg(r, at, "test", a, &o)) return false;
    if (T("divisibleby")) {
        if (!is_int(o)) {
            clv_jj_error(r, at, CLV_ERR_TYPE, "divisibleby needs an integer");
            return false;
        }
        if (ival(o) == 0) {
            clv_jj_error(r, at, CLV_ERR_TYPE, "integer division or modulo by zero");
            return false;
        }
        return int_mod_test(r, at, v, ival(o), 0);
    }
    if (T("eq") || T("equalto") || T("==")) return clv_jj_equal(r, v, o);
    if (T("ne") || T("!=")) return !clv_jj_equal(r, v, o);
    if (T("lt") || T("<") || T("lessthan")) return clv_jj_compare(r, at, v, o, "<", &c) && c == -1;
    if (T("le") || T("<=")) return clv_jj_compare(r, at, v, o, "<=", &c) && (c == -1 || c == 0);
    if (T("gt") || T(">") || T("greaterthan")) return clv_jj_compare(r, at, v, o, ">", &c) && c == 1;
    if (T("ge") || T(">=")) return clv_jj_compare(r, at, v, o, ">=", &c) && (c == 1 || c == 0);
    if (T("in")) {
        if (o.kind == JJ_STR) {
            if (v.kind != JJ_STR) {
                clv_jj_error(r, at, CLV_ERR_TYPE, "'in <string>' requires string as left operand");
                return false;
            }
            if (!clv_jj_charge(r, o.u.s.n / 64)) return false;
            return v.u.s.n == 0 || memmem(o.u.s.p, o.u.s.n, v.u.s.p, v.u.s.n) != NULL;
        }
        jj_list *items;
        if (!clv_jj_iterate(r, at, o, &items)) return false;
        for (size_t i = 0; i < items->n && !JJ_FAILED(r); i++)
            if (clv_jj_equal(r, items->items[i], v)) return true;
        return false;
    }
    if (T("sameas")) {
        /* Python identity: singletons, CPython's cached small ints, and the
         * same object. */
        if (v.kind != o.kind) return false;
        switch (v.kind) {
        case JJ_NONE: case JJ_UNDEF: return v.kind == JJ_NONE;
        case JJ_BOOL: return v.u.b == o.u.b;
        case JJ_INT: return v.u.i == o.u.i && v.u.i >= -5 && v.u.i <= 256;
        case JJ_STR: return v.u.s.p == o.u.s.p && v.u.s.n == o.u.s.n;
        case JJ_LIST: return v.u.list == o.u.list;
        case JJ_DICT: return v.u.dict == o.u.dict;
        default: return clv_jj_equal(r, v, o);
        }
    }
#undef T
    clv_jj_error(r, at, CLV_ERR_UNSUPPORTED, "no test named '%.*s'", (int)name.n, name.p);
    return false;
}

/* --- printf-style formatting --------------------------------------------------------- */

jj_value clv_jj_percent_format(jj_render *r, const jj_node *at, jj_str fmt, jj_value args) {
    jj_value *items = &args;
    size_t n_items = 1, next = 0;
    bool mapping = args.kind == JJ_DICT;
    if (args.kind == JJ_LIST && args.tuple) {
        items = args.u.list->items;
        n_items = args.u.list->n;
    }
    clv_strbuf b = {.limit = r->arena.limit};
    size_t i = 0;
    while (i < fmt.n && !JJ_FAILED(r)) {
        char c = fmt.p[i];
        if (c != '%') {
            clv_strbuf_putc(&b, c);
            i++;
            continue;
        }
        i++;
        jj_value arg = undef();
        bool have_arg = false;
        if (i < fmt.n && fmt.p[i] == '(') {
            size_t close = i + 1;
            while (close < fmt.n && fmt.p[close] != ')') close++;
            if (close >= fmt.n || !mapping) {
                clv_jj_error(r, at, CLV_ERR_TYPE, close >= fmt.n ? "incomplete format key" : "format requires a mapping");
                break;
            }
            jj_value key = jj_strv((jj_str){fmt.p + i + 1, close - i - 1});
            if (!clv_jj_dict_get(r, args.u.dict, key, &arg)) {
                clv_jj_error(r, at, CLV_ERR_TYPE, "format key '%.*s' not found", (int)key.u.s.n, key.u.s.p);
                break;
            }
            have_arg = true;
            i = close + 1;
        }
        char spec[48];
        size_t sw = 0;
        spec[sw++] = '%';
        while (i < fmt.n && strchr("-+ #0", fmt.p[i]) && sw < 10) spec[sw++] = fmt.p[i++];
        int width = 0;
        bool left = memchr(spec, '-', sw) != NULL;
        while (i < fmt.n && fmt.p[i] >= '0' && fmt.p[i] <= '9' && width < 10000) width = width * 10 + (fmt.p[i++] - '0');
        int prec = -1;
        if (i < fmt.n && fmt.p[i] == '.') {
            i++;
            prec = 0;
            while (i < fmt.n && fmt.p[i] >= '0' && fmt.p[i] <= '9' && prec < 10000) prec = prec * 10 + (fmt.p[i++] - '0');
        }
        while (i < fmt.n && strchr("hlL", fmt.p[i])) i++;
        if (i >= fmt.n) {
            clv_jj_error(r, at, CLV_ERR_TYPE, "incomplete format");
            break;
        }
        char conv = fmt.p[i++];
        if (conv == '%') {
            clv_strbuf_putc(&b, '%');
            continue;
        }
        if (!have_arg) {
            if (mapping) {
                arg = args; /* '%s' % {'a': 1} formats the dict itself */
            } else if (next >= n_items) {
                clv_jj_error(r, at, CLV_ERR_TYPE, "not enough arguments for format string");
                break;
            } else {
                arg = items[next++];
            }
        }
        if (width > 1000 || prec > 1000) {
            clv_jj_error(r, at, CLV_ERR_RANGE, "format width or precision too large");
            break;
        }
        char num[1100];
        if (conv == 's' || conv == 'r' || conv == 'a') {
            clv_strbuf t = {.limit = r->arena.limit};
            if (conv == 's') clv_jj_write_str(r, &t, arg);
            else clv_jj_write_repr(r, &t, arg);
            jj_str s = clv_jj_take_buf(r, &t);
            if (prec >= 0) s.n = clv_jj_utf8_offset(s, (size_t)prec);
            size_t len = clv_jj_utf8_len(s);
            size_t pad = (size_t)width > len ? (size_t)width - len : 0;
            if (!left)
                for (size_t k = 0; k < pad; k++) clv_strbuf_putc(&b, ' ');
            clv_strbuf_append(&b, s.p, s.n);
            if (left)
                for (size_t k = 0; k < pad; k++) clv_strbuf_putc(&b, ' ');
            continue;
        }
        if (arg.kind == JJ_UNDEF) {
            fail_undef(r, at, arg);
            break;
        }
        bool numeric = is_int(arg) || arg.kind == JJ_FLOAT;
        if (strchr("diuxXoc", conv)) {
            int64_t iv;
            if (conv == 'c' && arg.kind == JJ_STR && clv_jj_utf8_len(arg.u.s) == 1) {
                clv_strbuf_append(&b, arg.u.s.p, arg.u.s.n);
                continue;
            }
            if (!numeric || (arg.kind == JJ_FLOAT && strchr("xXoc", conv))) {
                clv_jj_error(r, at, CLV_ERR_TYPE, "%%%c format: a number is required, not %s", conv,
                             clv_jj_type_name(arg));
                break;
            }
            iv = arg.kind == JJ_FLOAT ? (int64_t)arg.u.f : ival(arg);
            if (conv == 'c') {
                char enc[4];
                if (iv < 0 || iv > 0x10FFFF) {
                    clv_jj_error(r, at, CLV_ERR_TYPE, "%%c arg not in range(0x110000)");
                    break;
                }
                clv_strbuf_append(&b, enc, clv_json_utf8_encode((uint32_t)iv, enc));
                continue;
            }
            sw += (size_t)snprintf(spec + sw, sizeof spec - sw, "%d", width);
            if (prec >= 0) sw += (size_t)snprintf(spec + sw, sizeof spec - sw, ".%d", prec);
            spec[sw++] = 'l';
            spec[sw++] = 'l';
            spec[sw++] = conv == 'i' || conv == 'u' ? 'd' : conv;
            spec[sw] = '\0';
            snprintf(num, sizeof num, spec, (long long)iv);
            clv_strbuf_puts(&b, num);
            continue;
        }
        if (strchr("eEfFgG", conv)) {
            if (!numeric) {
                clv_jj_error(r, at, CLV_ERR_TYPE, "must be real number, not %s", clv_jj_type_name(arg));
                break;
            }
            double d = arg.kind == JJ_FLOAT ? arg.u.f : (double)ival(arg);
            sw += (size_t)snprintf(spec + sw, sizeof spec - sw, "%d.%d%c", width, prec < 0 ? 6 : prec, conv);
            snprintf(num, sizeof num, spec, d);
            clv_strbuf_puts(&b, num);
            continue;
        }
        clv_jj_error(r, at, CLV_ERR_UNSUPPORTED, "unsupported format character '%c'", conv);
        break;
    }
    if (!JJ_FAILED(r) && !mapping && next < n_items)
        clv_jj_error(r, at, CLV_ERR_TYPE, "not all arguments converted during string formatting");
    if (JJ_FAILED(r)) {
        clv_strbuf_free(&b);
        return undef();
    }
    return jj_strv(clv_jj_take_buf(r, &b));
}

/* str.format with {} {0} {name} fields and !s/!r conversions. */
static jj_value str_format(jj_render *r, const jj_node *at, jj_str fmt, const jj_args *a) {
    clv_strbuf b = {.limit = r->arena.limit};
    size_t i = 0, auto_index = 0;
    while (i < fmt.n && !JJ_FAILED(r)) {
        char c = fmt.p[i];
        if (c == '}' && i + 1 < fmt.n && fmt.p[i + 1] == '}') {
            clv_strbuf_putc(&b, '}');
            i += 2;
            continue;
        }
        if (c != '{') {
            clv_strbuf_putc(&b, c);
            i++;
            continue;
        }
        if (i + 1 < fmt.n && fmt.p[i + 1] == '{') {
            clv_strbuf_putc(&b, '{');
            i += 2;
            continue;
        }
        size_t close = i + 1;
        while (close < fmt.n && fmt.p[close] != '}') close++;
        if (close >= fmt.n) {
            clv_jj_error(r, at, CLV_ERR_TYPE, "Single '{' encountered in format string");
            break;
        }
        jj_str field = {fmt.p + i + 1, close - i - 1};
        char conv = 's';
        for (size_t k = 0; k < field.n; k++) {
            if (field.p[k] == ':') {
                clv_jj_error(r, at, CLV_ERR_UNSUPPORTED, "format specs in str.format are not supported");
                break;
            }
            if (field.p[k] == '!' && k + 1 < field.n) {
                conv = field.p[k + 1];
                field.n = k;
                break;
            }
        }
        if (JJ_FAILED(r)) break;
        jj_value v = undef();
        if (field.n == 0) {
            if (auto_index >= a->npos) {
                clv_jj_error(r, at, CLV_ERR_TYPE, "Replacement index %zu out of range", auto_index);
                break;
            }
            v = a->pos[auto_index++];
        } else if (field.p[0] >= '0' && field.p[0] <= '9') {
            size_t idx = (size_t)strtoul(field.p, NULL, 10);
            if (idx >= a->npos) {
                clv_jj_error(r, at, CLV_ERR_TYPE, "Replacement index %zu out of range", idx);
                break;
            }
            v = a->pos[idx];
        } else {
            bool found = false;
            for (size_t k = 0; k < a->nkw && !found; k++) {
                if (jj_str_eq(a->kw_names[k], field)) {
                    v = a->kw_vals[k];
                    found = true;
                }
            }
            if (!found) {
                clv_jj_error(r, at, CLV_ERR_TYPE, "format: missing key '%.*s'", (int)field.n, field.p);
                break;
            }
        }
        if (conv == 'r') clv_jj_write_repr(r, &b, v);
        else clv_jj_write_str(r, &b, v);
        i = close + 1;
    }
    if (JJ_FAILED(r)) {
        clv_strbuf_free(&b);
        return undef();
    }
    return jj_strv(clv_jj_take_buf(r, &b));
}

/* --- methods ---------------------------------------------------------------------- */

/* Byte range of the code-point slice [start:end] of s (Python clamping). */
static void cp_range(jj_render *r, const jj_node *at, jj_str s, const jj_value *p, const bool *g,
                     size_t *from, size_t *to) {
    int64_t n = (int64_t)clv_jj_utf8_len(s), b = 0, e = n;
    if (g[0] && p[0].kind != JJ_NONE) {
        if (!is_int(p[0])) {
            type_error(r, at, "slice indices must be integers or None, not %s", clv_jj_type_name(p[0]));
            return;
        }
        b = ival(p[0]);
        if (b < 0) b = b + n < 0 ? 0 : b + n;
        if (b > n) b = n;
    }
    if (g[1] && p[1].kind != JJ_NONE) {
        if (!is_int(p[1])) {
            type_error(r, at, "slice indices must be integers or None, not %s", clv_jj_type_name(p[1]));
            return;
        }
        e = ival(p[1]);
        if (e < 0) e = e + n < 0 ? 0 : e + n;
        if (e > n) e = n;
    }
    if (e < b) e = b;
    *from = clv_jj_utf8_offset(s, (size_t)b);
    *to = clv_jj_utf8_offset(s, (size_t)e);
}

static size_t cp_index_of(jj_str s, size_t byte_off) {
    return clv_jj_utf8_len((jj_str){s.p, byte_off});
}

/* Python's str.split / rsplit. */
static jj_value split(jj_render *r, const jj_node *at, jj_str s, const jj_value *p, const bool *g, bool from_right) {
    bool by_space = !g[0] || p[0].kind == JJ_NONE;
    jj_str sep = {0};
    if (!by_space) {
        if (!want_str(r, at, "split", p[0], &sep)) return undef();
        if (sep.n == 0) return type_error(r, at, "%s", "empty separator");
    }
    int64_t maxsplit = g[1] && is_int(p[1]) ? ival(p[1]) : -1;
    /* Collect byte ranges; split from the right fills them backwards. */
    size_t cap = 16, n = 0;
    jj_str *parts = malloc(cap * sizeof *parts);
    if (!parts) return type_error(r, at, "%s", "out of memory");
#define PUSH(a_, b_)                                                                   \
    do {                                                                               \
        if (n == cap) {                                                                \
            cap *= 2;                                                                  \
            jj_str *np_ = realloc(parts, cap * sizeof *parts);                         \
            if (!np_) {                                                                \
                free(parts);                                                           \
                return type_error(r, at, "%s", "out of memory");                       \
            }                                                                          \
            parts = np_;                                                               \
        }                                                                              \
        parts[n++] = (jj_str){s.p + (a_), (b_) - (a_)};                                \
    } while (0)
    if (by_space) {
        if (!from_right) {
            size_t i = 0;
            int64_t done = 0;
            for (;;) {
                while (i < s.n) {
                    uint32_t cp;
                    size_t k = clv_json_utf8_decode(s.p + i, s.n - i, &cp);
                    if (!k || !clv_jj_isspace(cp)) break;
                    i += k;
                }
                if (i >= s.n) break;
                if (maxsplit >= 0 && done >= maxsplit) {
                    PUSH(i, s.n);
                    break;
                }
                size_t j = i;
                while (j < s.n) {
                    uint32_t cp;
                    size_t k = clv_json_utf8_decode(s.p + j, s.n - j, &cp);
                    if (k && clv_jj_isspace(cp)) break;
                    j += k ? k : 1;
                }
                PUSH(i, j);
                done++;
                i = j;
            }
        } else {
            /* Walk code points backwards by their start offsets. */
            size_t e = s.n;
            int64_t done = 0;
            for (;;) {
                while (e > 0) {
                    size_t st = e - 1;
                    while (st > 0 && ((unsigned char)s.p[st] & 0xC0) == 0x80) st--;
                    uint32_t cp;
                    size_t k = clv_json_utf8_decode(s.p + st, e - st, &cp);
                    if (!k || !clv_jj_isspace(cp)) break;
                    e = st;
                }
                if (e == 0) break;
                if (maxsplit >= 0 && done >= maxsplit) {
                    PUSH(0, e);
                    break;
                }
                size_t b = e;
                while (b > 0) {
                    size_t st = b - 1;
                    while (st > 0 && ((unsigned char)s.p[st] & 0xC0) == 0x80) st--;
                    uint32_t cp;
                    size_t k = clv_json_utf8_decode(s.p + st, b - st, &cp);
                    if (k && clv_jj_isspace(cp)) break;
                    b = st;
                }
                PUSH(b, e);
                done++;
                e = b;
            }
        }
    } else if (!from_right) {
        size_t i = 0;
        int64_t done = 0;
        for (;;) {
            const char *hit = (maxsplit < 0 || done < maxsplit) ? memmem(s.p + i, s.n - i, sep.p, sep.n) : NULL;
            if (!hit) {
                PUSH(i, s.n);
                break;
            }
            size_t at_ = (size_t)(hit - s.p);
            PUSH(i, at_);
            i = at_ + sep.n;
            done++;
        }
    } else {
        size_t e = s.n;
        int64_t done = 0;
        for (;;) {
            size_t hit = SIZE_MAX;
            if ((maxsplit < 0 || done < maxsplit) && e >= sep.n) {
                for (size_t k = e - sep.n + 1; k-- > 0;) {
                    if (!memcmp(s.p + k, sep.p, sep.n)) {
                        hit = k;
                        break;
                    }
                }
            }
            if (hit == SIZE_MAX) {
                PUSH(0, e);
                break;
            }
            PUSH(hit + sep.n, e);
            e = hit;
            done++;
        }
    }
#undef PUSH
    jj_list *l = clv_jj_list_new(r, n);
    if (l)
        for (size_t k = 0; k < n; k++) l->items[k] = jj_strv(parts[from_right ? n - 1 - k : k]);
    free(parts);
    return clv_jj_listv(l, false);
}

static bool is_line_break(uint32_t cp) {
    return cp == '\n' || cp == '\r' || cp == 0x0B || cp == 0x0C || cp == 0x1C || cp == 0x1D ||
           cp == 0x1E || cp == 0x85 || cp == 0x2028 || cp == 0x2029;
}

static jj_value splitlines(jj_render *r, jj_str s, bool keepends) {
    jj_list *l = clv_jj_list_new(r, clv_jj_utf8_len(s) + 1);
    if (!l) return undef();
    size_t n = 0, start = 0;
    cp_iter it = {s, 0};
    uint32_t cp;
    size_t from, to;
    while (cp_next(&it, &cp, &from, &to)) {
        if (!is_line_break(cp)) continue;
        size_t end = to;
        if (cp == '\r' && to < s.n && s.p[to] == '\n') {
            end = to + 1;
            it.i = end;
        }
        l->items[n++] = jj_strv((jj_str){s.p + start, (keepends ? end : from) - start});
        start = end;
    }
    if (start < s.n) l->items[n++] = jj_strv((jj_str){s.p + start, s.n - start});
    l->n = n;
    return clv_jj_listv(l, false);
}

/* startswith/endswith: prefix may be a tuple of strings. */
static jj_value starts_ends(jj_render *r, const jj_node *at, jj_str s, const jj_value *p, const bool *g, bool ends) {
    size_t from = 0, to = s.n;
    cp_range(r, at, s, p + 1, g + 1, &from, &to);
    if (JJ_FAILED(r)) return undef();
    jj_str hay = {s.p + from, to - from};
    jj_value cand = p[0];
    jj_value *list = &cand;
    size_t n = 1;
    if (cand.kind == JJ_LIST && cand.tuple) {
        list = cand.u.list->items;
        n = cand.u.list->n;
    }
    for (size_t i = 0; i < n; i++) {
        jj_str x;
        if (!want_str(r, at, ends ? "endswith" : "startswith", list[i], &x)) return undef();
        if (x.n <= hay.n && !memcmp(ends ? hay.p + hay.n - x.n : hay.p, x.p, x.n)) return jj_bool(true);
    }
    return jj_bool(false);
}

static jj_value find(jj_render *r, const jj_node *at, jj_str s, const jj_value *p, const bool *g, bool right,
                     bool raise) {
    jj_str sub;
    if (!want_str(r, at, right ? "rfind" : "find", p[0], &sub)) return undef();
    size_t from = 0, to = s.n;
    cp_range(r, at, s, p + 1, g + 1, &from, &to);
    if (JJ_FAILED(r)) return undef();
    size_t hit = SIZE_MAX;
    if (sub.n <= to - from) {
        if (!right) {
            const char *h = memmem(s.p + from, to - from, sub.p, sub.n);
            if (h) hit = (size_t)(h - s.p);
        } else {
            for (size_t k = to - sub.n + 1; k-- > from;) {
                if (!memcmp(s.p + k, sub.p, sub.n)) {
                    hit = k;
                    break;
                }
            }
        }
    }
    if (hit == SIZE_MAX) {
        if (raise) return type_error(r, at, "%s", "substring not found");
        return jj_int(-1);
    }
    return jj_int((int64_t)cp_index_of(s, hit));
}

static jj_value str_method(jj_render *r, const jj_node *at, jj_str name, jj_str s, const jj_args *a) {
#define M(n) jj_str_is(name, n)
#define ARGS(fname, ...)                                                                     \
    static const char *const params_[] = {__VA_ARGS__};                                       \
    enum { NP_ = sizeof params_ / sizeof params_[0] };                                        \
    jj_value p[NP_];                                                                          \
    bool g[NP_];                                                                              \
    if (!clv_jj_bind(r, at, fname, a, params_, NP_, 0, p, g)) return undef();
    if (!clv_jj_charge(r, s.n / 64)) return undef(); /* every method below scans s */
    if (M("strip") || M("lstrip") || M("rstrip")) {
        ARGS("strip", "chars");
        jj_str chars;
        bool l = !M("rstrip"), rt = !M("lstrip");
        if (g[0] && p[0].kind != JJ_NONE) {
            if (!want_str(r, at, "strip", p[0], &chars)) return undef();
            return jj_strv(strip(s, &chars, l, rt));
        }
        return jj_strv(strip(s, NULL, l, rt));
    }
    if (M("split") || M("rsplit")) {
        ARGS("split", "sep", "maxsplit");
        return split(r, at, s, p, g, M("rsplit"));
    }
    if (M("splitlines")) {
        ARGS("splitlines", "keepends");
        return splitlines(r, s, g[0] && clv_jj_truthy(p[0]));
    }
    if (M("startswith") || M("endswith")) {
        ARGS("startswith", "prefix", "start", "end");
        if (!g[0]) return type_error(r, at, "%s", "startswith/endswith need an argument");
        return starts_ends(r, at, s, p, g, M("endswith"));
    }
    if (M("upper")) return jj_strv(change_case(r, s, CASE_UPPER));
    if (M("lower")) return jj_strv(change_case(r, s, CASE_LOWER));
    if (M("title")) return jj_strv(change_case(r, s, CASE_TITLE));
    if (M("capitalize")) return jj_strv(change_case(r, s, CASE_CAPITALIZE));
    if (M("swapcase")) return jj_strv(change_case(r, s, CASE_SWAP));
    if (M("replace")) {
        ARGS("replace", "old", "new", "count");
        jj_str old, rep;
        if (!want_str(r, at, "replace", p[0], &old) || !want_str(r, at, "replace", p[1], &rep)) return undef();
        return jj_strv(replace_str(r, s, old, rep, g[2] && is_int(p[2]) ? ival(p[2]) : -1));
    }
    if (M("find") || M("rfind") || M("index") || M("rindex")) {
        ARGS("find", "sub", "start", "end");
        return find(r, at, s, p, g, name.p[0] == 'r', name.p[name.p[0] == 'r'] == 'i');
    }
    if (M("count")) {
        ARGS("count", "sub", "start", "end");
        jj_str sub;
        if (!want_str(r, at, "count", p[0], &sub)) return undef();
        size_t from = 0, to = s.n;
        cp_range(r, at, s, p + 1, g + 1, &from, &to);
        if (JJ_FAILED(r)) return undef();
        if (sub.n == 0) return jj_int((int64_t)clv_jj_utf8_len((jj_str){s.p + from, to - from}) + 1);
        int64_t n = 0;
        size_t i = from;
        const char *h;
        while (i < to && (h = memmem(s.p + i, to - i, sub.p, sub.n))) {
            n++;
            i = (size_t)(h - s.p) + sub.n;
        }
        return jj_int(n);
    }
    if (M("join")) {
        ARGS("join", "iterable");
        jj_list *items;
        if (!clv_jj_iterate(r, at, p[0], &items)) return undef();
        clv_strbuf b = {.limit = r->arena.limit};
        for (size_t i = 0; i < items->n; i++) {
            if (items->items[i].kind != JJ_STR) {
                clv_strbuf_free(&b);
                clv_jj_error(r, at, CLV_ERR_TYPE, "sequence item %zu: expected str instance, %s found", i,
                             clv_jj_type_name(items->items[i]));
                return undef();
            }
            if (i) clv_strbuf_append(&b, s.p, s.n);
            clv_strbuf_append(&b, items->items[i].u.s.p, items->items[i].u.s.n);
        }
        return jj_strv(clv_jj_take_buf(r, &b));
    }
    if (M("removeprefix") || M("removesuffix")) {
        ARGS("removeprefix", "affix");
        jj_str x;
        if (!want_str(r, at, "removeprefix", p[0], &x)) return undef();
        bool pre = M("removeprefix");
        if (x.n <= s.n && !memcmp(pre ? s.p : s.p + s.n - x.n, x.p, x.n))
            return jj_strv(pre ? (jj_str){s.p + x.n, s.n - x.n} : (jj_str){s.p, s.n - x.n});
        return jj_strv(s);
    }
    if (M("partition") || M("rpartition")) {
        ARGS("partition", "sep");
        jj_str sep;
        if (!want_str(r, at, "partition", p[0], &sep)) return undef();
        if (!sep.n) return type_error(r, at, "%s", "empty separator");
        size_t hit = SIZE_MAX;
        if (M("partition")) {
            const char *h = memmem(s.p, s.n, sep.p, sep.n);
            if (h) hit = (size_t)(h - s.p);
        } else if (sep.n <= s.n) {
            for (size_t k = s.n - sep.n + 1; k-- > 0;)
                if (!memcmp(s.p + k, sep.p, sep.n)) {
                    hit = k;
                    break;
                }
        }
        jj_value three[3];
        if (hit == SIZE_MAX) {
            bool left = M("partition");
            three[0] = jj_strv(left ? s : JJ_S(""));
            three[1] = jj_strv(JJ_S(""));
            three[2] = jj_strv(left ? JJ_S("") : s);
        } else {
            three[0] = jj_strv((jj_str){s.p, hit});
            three[1] = jj_strv(sep);
            three[2] = jj_strv((jj_str){s.p + hit + sep.n, s.n - hit - sep.n});
        }
        return list_of(r, three, 3, true);
    }
    if (M("format")) return str_format(r, at, s, a);
    if (M("isdigit") || M("isalpha") || M("isalnum") || M("isspace") || M("islower") || M("isupper")) {
        if (M("islower")) return jj_bool(str_case_test(jj_strv(s), false));
        if (M("isupper")) return jj_bool(str_case_test(jj_strv(s), true));
        if (!s.n) return jj_bool(false);
        cp_iter it = {s, 0};
        uint32_t cp;
        size_t f, t;
        while (cp_next(&it, &cp, &f, &t)) {
            bool digit = cp >= '0' && cp <= '9';
            bool alpha = (cp < 0x80 && ((cp | 0x20) >= 'a' && (cp | 0x20) <= 'z')) || (cp >= 0xC0 && is_cased(cp));
            bool ok = M("isdigit") ? digit : M("isalpha") ? alpha : M("isalnum") ? (alpha || digit) : clv_jj_isspace(cp);
            if (!ok) return jj_bool(false);
        }
        return jj_bool(true);
    }
#undef ARGS
#undef M
    clv_jj_error(r, at, CLV_ERR_UNSUPPORTED, "str.%.*s() is not supported", (int)name.n, name.p);
    return undef();
}

/* Python attribute names of each type that templates may reach. */
static const char *const str_methods[] = {
    "capitalize", "casefold", "center", "count", "encode", "endswith", "expandtabs", "find",
    "format", "format_map", "index", "isalnum", "isalpha", "isascii", "isdecimal", "isdigit",
    "isidentifier", "islower", "isnumeric", "isprintable", "isspace", "istitle", "isupper",
    "join", "ljust", "lower", "lstrip", "maketrans", "partition", "removeprefix",
    "removesuffix", "replace", "rfind", "rindex", "rjust", "rpartition", "rsplit", "rstrip",
    "split", "splitlines", "startswith", "strip", "swapcase", "title", "translate", "upper",
    "zfill", NULL};
static const char *const dict_methods[] = {"clear", "copy", "fromkeys", "get", "items", "keys",
                                           "pop", "popitem", "setdefault", "update", "values", NULL};
static const char *const list_methods[] = {"append", "clear", "copy", "count", "extend", "index",
                                           "insert", "pop", "remove", "reverse", "sort", NULL};
static const char *const loop_methods[] = {"cycle", "changed", NULL};

static bool in_names(jj_str name, const char *const *names) {
    for (; *names; names++)
        if (jj_str_is(name, *names)) return true;
    return false;
}

bool clv_jj_method_lookup(jj_render *r, jj_value obj, jj_str name, jj_value *out) {
    const char *const *names = NULL;
    switch (obj.kind) {
    case JJ_STR: names = str_methods; break;
    case JJ_DICT: names = dict_methods; break;
    case JJ_LIST: names = obj.tuple ? NULL : list_methods; break;
    case JJ_LOOP: names = loop_methods; break;
    default: break;
    }
    if (obj.kind == JJ_LIST && obj.tuple) {
        static const char *const tuple_methods[] = {"count", "index", NULL};
        names = tuple_methods;
    }
    if (!names || !in_names(name, names)) return false;
    jj_func *fn = clv_jj_ralloc(r, sizeof *fn);
    if (!fn) return false;
    fn->kind = JF_METHOD;
    fn->name = name;
    fn->self = obj;
    *out = (jj_value){.kind = JJ_FUNC};
    out->u.fn = fn;
    return true;
}

static jj_value unsafe(jj_render *r, const jj_node *at, const jj_func *fn) {
    clv_jj_error(r, at, CLV_ERR_TYPE, "access to attribute '%.*s' of '%s' object is unsafe (templates cannot modify values)",
                 (int)fn->name.n, fn->name.p, clv_jj_type_name(fn->self));
    return undef();
}

static jj_value call_method(jj_render *r, const jj_node *at, const jj_func *fn, const jj_args *a) {
    jj_value self = fn->self;
    jj_str name = fn->name;
    if (self.kind == JJ_STR) return str_method(r, at, name, self.u.s, a);
    if (self.kind == JJ_DICT) {
        const jj_dict *d = self.u.dict;
        if (jj_str_is(name, "get")) {
            static const char *const params[] = {"key", "default"};
            jj_value p[2];
            bool g[2];
            if (!clv_jj_bind(r, at, "dict.get", a, params, 2, 1, p, g)) return undef();
            jj_value v;
            if (clv_jj_dict_get(r, d, p[0], &v)) return v;
            return g[1] ? p[1] : jj_none();
        }
        if (a->npos || a->nkw) {
            if (jj_str_is(name, "items") || jj_str_is(name, "keys") || jj_str_is(name, "values") ||
                jj_str_is(name, "copy"))
                return type_error(r, at, "dict.%s() takes no arguments", "method");
        }
        if (jj_str_is(name, "items") || jj_str_is(name, "keys") || jj_str_is(name, "values")) {
            jj_list *l = clv_jj_list_new(r, d->n);
            if (!l) return undef();
            for (size_t i = 0; i < d->n; i++) {
                if (name.p[0] == 'i') l->items[i] = pair(r, d->keys[i], d->vals[i]);
                else l->items[i] = name.p[0] == 'k' ? d->keys[i] : d->vals[i];
            }
            return clv_jj_listv(l, false);
        }
        if (jj_str_is(name, "copy")) return self;
        if (jj_str_is(name, "fromkeys")) {
            clv_jj_error(r, at, CLV_ERR_UNSUPPORTED, "dict.fromkeys() is not supported");
            return undef();
        }
        return unsafe(r, at, fn);
    }
    if (self.kind == JJ_LIST) {
        const jj_list *l = self.u.list;
        if (jj_str_is(name, "count") || jj_str_is(name, "index")) {
            static const char *const params[] = {"value"};
            jj_value p[1];
            bool g[1];
            if (!clv_jj_bind(r, at, "list.index", a, params, 1, 1, p, g)) return undef();
            int64_t count = 0;
            for (size_t i = 0; i < l->n && !JJ_FAILED(r); i++) {
                if (!clv_jj_equal(r, l->items[i], p[0])) continue;
                if (name.p[0] == 'i') return jj_int((int64_t)i);
                count++;
            }
            if (name.p[0] == 'i') return type_error(r, at, "%s", "list.index(x): x not in list");
            return jj_int(count);
        }
        if (jj_str_is(name, "copy")) return self;
        return unsafe(r, at, fn);
    }
    if (self.kind == JJ_LOOP) {
        if (jj_str_is(name, "cycle")) {
            if (a->npos == 0) return type_error(r, at, "%s", "no items for cycling given");
            return a->pos[self.u.loop->index0 % (int64_t)a->npos];
        }
        clv_jj_error(r, at, CLV_ERR_UNSUPPORTED, "loop.%.*s() is not supported", (int)name.n, name.p);
        return undef();
    }
    clv_jj_error(r, at, CLV_ERR_UNSUPPORTED, "method '%.*s' is not supported", (int)name.n, name.p);
    return undef();
}

/* --- global functions ------------------------------------------------------------- */

static const char *const global_names[] = {"range", "namespace", "dict", "raise_exception",
                                           "strftime_now", "lipsum", "cycler", "joiner", NULL};

bool clv_jj_global(jj_str name, jj_value *out, jj_render *r) {
    if (!in_names(name, global_names)) return false;
    jj_func *fn = clv_jj_ralloc(r, sizeof *fn);
    if (!fn) return false;
    fn->kind = JF_GLOBAL;
    fn->name = name;
    *out = (jj_value){.kind = JJ_FUNC};
    out->u.fn = fn;
    return true;
}

static jj_value g_range(jj_render *r, const jj_node *at, const jj_args *a) {
    if (a->nkw) return type_error(r, at, "%s", "range() takes no keyword arguments");
    if (a->npos < 1 || a->npos > 3) return type_error(r, at, "%s", "range expected 1 to 3 arguments");
    int64_t v[3];
    for (size_t i = 0; i < a->npos; i++) {
        if (a->pos[i].kind == JJ_UNDEF) return fail_undef(r, at, a->pos[i]);
        if (!is_int(a->pos[i]))
            return type_error(r, at, "'%s' object cannot be interpreted as an integer", clv_jj_type_name(a->pos[i]));
        v[i] = ival(a->pos[i]);
    }
    int64_t start = a->npos > 1 ? v[0] : 0, stop = a->npos > 1 ? v[1] : v[0], step = a->npos > 2 ? v[2] : 1;
    if (step == 0) return type_error(r, at, "%s", "range() arg 3 must not be zero");
    double count_d = step > 0 ? ((double)stop - (double)start) / (double)step : ((double)start - (double)stop) / (double)-step;
    int64_t count = 0;
    if (count_d > 0) {
        if (count_d > MAX_RANGE + 1) count = MAX_RANGE + 1;
        else count = step > 0 ? (stop - start + step - 1) / step : (start - stop - step - 1) / -step;
    }
    if (count > MAX_RANGE) {
        clv_jj_error(r, at, CLV_ERR_RANGE, "range too big: the sandbox allows at most %d items", MAX_RANGE);
        return undef();
    }
    jj_list *l = clv_jj_list_new(r, (size_t)count);
    if (!l) return undef();
    for (int64_t i = 0; i < count; i++) l->items[i] = jj_int(start + i * step);
    return clv_jj_listv(l, false);
}

static jj_value g_namespace(jj_render *r, const jj_node *at, const jj_args *a, bool as_dict) {
    size_t cap = a->nkw;
    for (size_t i = 0; i < a->npos; i++) {
        if (a->pos[i].kind != JJ_DICT)
            return type_error(r, at, "namespace()/dict() take mappings and keyword arguments, not %s",
                              clv_jj_type_name(a->pos[i]));
        cap += a->pos[i].u.dict->n;
    }
    jj_value *keys = clv_jj_ralloc(r, (cap + 1) * sizeof *keys);
    jj_value *vals = clv_jj_ralloc(r, (cap + 1) * sizeof *vals);
    if (!keys || !vals) return undef();
    size_t n = 0;
    for (size_t i = 0; i < a->npos + a->nkw; i++) {
        size_t m = i < a->npos ? a->pos[i].u.dict->n : 1;
        for (size_t j = 0; j < m; j++) {
            jj_value k = i < a->npos ? a->pos[i].u.dict->keys[j] : jj_strv(a->kw_names[i - a->npos]);
            jj_value v = i < a->npos ? a->pos[i].u.dict->vals[j] : a->kw_vals[i - a->npos];
            if (!as_dict && (k.kind != JJ_STR || (k.u.s.n && k.u.s.p[0] == '_')))
                return type_error(r, at, "%s", "namespace attributes must be strings not starting with '_'");
            size_t at_ = 0;
            while (at_ < n && !clv_jj_equal(r, keys[at_], k)) at_++;
            if (at_ == n) keys[n++] = k;
            vals[at_] = v;
        }
    }
    if (as_dict) {
        jj_dict *d = clv_jj_dict_new(r, 0);
        if (!d) return undef();
        d->keys = keys;
        d->vals = vals;
        d->n = n;
        return clv_jj_dictv(d);
    }
    jj_ns *ns = clv_jj_ralloc(r, sizeof *ns);
    if (!ns) return undef();
    ns->keys = clv_jj_ralloc(r, (n + 1) * sizeof *ns->keys);
    if (!ns->keys) return undef();
    for (size_t i = 0; i < n; i++) ns->keys[i] = keys[i].u.s;
    ns->vals = vals;
    ns->n = n;
    ns->cap = n;
    jj_value v = {.kind = JJ_NS};
    v.u.ns = ns;
    return v;
}

static jj_value g_strftime(jj_render *r, const jj_node *at, const jj_args *a) {
    static const char *const params[] = {"format"};
    jj_value p[1];
    bool g[1];
    if (!clv_jj_bind(r, at, "strftime_now", a, params, 1, 1, p, g)) return undef();
    jj_str fmt;
    if (!want_str(r, at, "strftime_now", p[0], &fmt)) return undef();
    if (fmt.n > 1000) return type_error(r, at, "%s", "strftime_now: format too long");
    char f[1024], out[4096];
    memcpy(f, fmt.p, fmt.n);
    f[fmt.n] = '\0';
    struct tm tm;
    time_t now = r->now;
    localtime_r(&now, &tm);
    size_t n = strftime(out, sizeof out, f, &tm);
    return jj_strv(clv_jj_strdup(r, out, n));
}

jj_value clv_jj_call_builtin(jj_render *r, const jj_node *at, const jj_func *fn, const jj_args *a) {
    if (fn->kind == JF_METHOD) return call_method(r, at, fn, a);
    jj_str name = fn->name;
    if (jj_str_is(name, "range")) return g_range(r, at, a);
    if (jj_str_is(name, "namespace")) return g_namespace(r, at, a, false);
    if (jj_str_is(name, "dict")) return g_namespace(r, at, a, true);
    if (jj_str_is(name, "strftime_now")) return g_strftime(r, at, a);
    if (jj_str_is(name, "raise_exception")) {
        jj_str msg = a->npos ? clv_jj_to_str(r, a->pos[0]) : JJ_S("");
        clv_jj_error(r, at, CLV_ERR_ARG, "raise_exception: %.*s", (int)(msg.n > 400 ? 400 : msg.n), msg.p);
        return undef();
    }
    clv_jj_error(r, at, CLV_ERR_UNSUPPORTED, "%.*s() is not supported", (int)name.n, name.p);
    return undef();
}
