/* Jinja values: the arena they live in, and their Python behaviour (str(),
 * repr(), truth, ==, ordering, json.dumps). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jinja_internal.h"

/* --- arena ---------------------------------------------------------------------- */

#define CHUNK_SIZE (64 * 1024)

void *clv_jj_alloc(jj_arena *a, size_t n) {
    if (a->failed) return NULL;
    if (n > ((size_t)1 << 40)) {
        a->failed = true;
        return NULL;
    }
    n = (n + 15) & ~(size_t)15;
    if (n == 0) n = 16;
    jj_chunk *h = a->head;
    if (h && h->cap - h->used >= n) {
        void *p = h->data + h->used;
        h->used += n;
        memset(p, 0, n);
        return p;
    }
    size_t cap = n > CHUNK_SIZE / 2 ? n : CHUNK_SIZE;
    if (a->limit && a->total + cap > a->limit) {
        a->failed = true;
        return NULL;
    }
    jj_chunk *c = malloc(sizeof *c + cap);
    if (!c) {
        a->failed = true;
        return NULL;
    }
    c->cap = cap;
    c->used = n;
    a->total += cap;
    /* A big block goes behind the head so the head keeps serving small ones. */
    if (h && cap != CHUNK_SIZE) {
        c->next = h->next;
        h->next = c;
    } else {
        c->next = h;
        a->head = c;
    }
    memset(c->data, 0, n);
    return c->data;
}

void clv_jj_arena_free(jj_arena *a) {
    jj_chunk *c = a->head;
    while (c) {
        jj_chunk *next = c->next;
        free(c);
        c = next;
    }
    a->head = NULL;
    a->total = 0;
    a->failed = false;
}

void *clv_jj_ralloc(jj_render *r, size_t n) {
    void *p = clv_jj_alloc(&r->arena, n);
    if (!p)
        clv_jj_error(r, NULL, CLV_ERR_RANGE, "the template used more than its %zu MiB of memory",
                     r->arena.limit >> 20);
    return p;
}

/* --- construction ------------------------------------------------------------------ */

jj_str clv_jj_strdup(jj_render *r, const char *p, size_t n) {
    if (!clv_jj_charge(r, n / 64)) return (jj_str){"", 0};
    char *s = clv_jj_ralloc(r, n + 1);
    if (!s) return (jj_str){"", 0};
    if (n) memcpy(s, p, n);
    return (jj_str){s, n};
}

jj_list *clv_jj_list_new(jj_render *r, size_t n) {
    if (!clv_jj_charge(r, n / 16)) return NULL; /* filling it costs steps too */
    jj_list *l = clv_jj_ralloc(r, sizeof *l);
    if (!l) return NULL;
    if (n) {
        l->items = clv_jj_ralloc(r, n * sizeof *l->items);
        if (!l->items) return NULL;
    }
    l->n = n;
    return l;
}

jj_dict *clv_jj_dict_new(jj_render *r, size_t n) {
    if (!clv_jj_charge(r, n / 16)) return NULL;
    jj_dict *d = clv_jj_ralloc(r, sizeof *d);
    if (!d) return NULL;
    if (n) {
        d->keys = clv_jj_ralloc(r, n * sizeof *d->keys);
        d->vals = clv_jj_ralloc(r, n * sizeof *d->vals);
        if (!d->keys || !d->vals) return NULL;
    }
    d->n = n;
    return d;
}

jj_value clv_jj_listv(jj_list *l, bool tuple) {
    if (!l) return jj_undef(JJ_S(""));
    jj_value v = {.kind = JJ_LIST, .tuple = tuple};
    v.u.list = l;
    return v;
}

jj_value clv_jj_dictv(jj_dict *d) {
    if (!d) return jj_undef(JJ_S(""));
    jj_value v = {.kind = JJ_DICT};
    v.u.dict = d;
    return v;
}

bool clv_jj_dict_get(jj_render *r, const jj_dict *d, jj_value key, jj_value *out) {
    /* Later entries win, as when a dict literal repeats a key. */
    for (size_t i = d->n; i-- > 0 && !JJ_FAILED(r);) {
        if (clv_jj_equal(r, d->keys[i], key)) {
            *out = d->vals[i];
            return true;
        }
    }
    *out = jj_undef(key.kind == JJ_STR ? key.u.s : JJ_S(""));
    return false;
}

jj_value clv_jj_from_json(jj_render *r, const clv_json *j) {
    switch (clv_json_kind_of(j)) {
    case CLV_JSON_NULL:
        return jj_none();
    case CLV_JSON_BOOL:
        return jj_bool(clv_json_bool(j));
    case CLV_JSON_NUMBER:
        return clv_json_is_int(j) ? jj_int(clv_json_int(j)) : jj_float(clv_json_number(j));
    case CLV_JSON_STRING:
        return jj_strv((jj_str){clv_json_string(j), clv_json_string_len(j)});
    case CLV_JSON_ARRAY: {
        size_t n = clv_json_count(j);
        jj_list *l = clv_jj_list_new(r, n);
        if (!l) return jj_undef(JJ_S(""));
        for (size_t i = 0; i < n && !JJ_FAILED(r); i++) l->items[i] = clv_jj_from_json(r, clv_json_at(j, i));
        return clv_jj_listv(l, false);
    }
    case CLV_JSON_OBJECT: {
        size_t n = clv_json_count(j);
        jj_dict *d = clv_jj_dict_new(r, n);
        if (!d) return jj_undef(JJ_S(""));
        for (size_t i = 0; i < n && !JJ_FAILED(r); i++) {
            size_t klen;
            const char *k = clv_json_key_at(j, i, &klen);
            d->keys[i] = jj_strv((jj_str){k, klen});
            d->vals[i] = clv_jj_from_json(r, clv_json_value_at(j, i));
        }
        return clv_jj_dictv(d);
    }
    }
    return jj_none();
}

/* --- Python behaviour ------------------------------------------------------------- */

bool clv_jj_truthy(jj_value v) {
    switch (v.kind) {
    case JJ_UNDEF: case JJ_NONE: return false;
    case JJ_BOOL: return v.u.b;
    case JJ_INT: return v.u.i != 0;
    case JJ_FLOAT: return v.u.f != 0.0;
    case JJ_STR: return v.u.s.n > 0;
    case JJ_LIST: return v.u.list->n > 0;
    case JJ_DICT: return v.u.dict->n > 0;
    default: return true;
    }
}

const char *clv_jj_type_name(jj_value v) {
    switch (v.kind) {
    case JJ_UNDEF: return "Undefined";
    case JJ_NONE: return "NoneType";
    case JJ_BOOL: return "bool";
    case JJ_INT: return "int";
    case JJ_FLOAT: return "float";
    case JJ_STR: return "str";
    case JJ_LIST: return v.tuple ? "tuple" : "list";
    case JJ_DICT: return "dict";
    case JJ_NS: return "Namespace";
    case JJ_LOOP: return "LoopContext";
    case JJ_FUNC:
        return v.u.fn->kind == JF_MACRO ? "Macro" : v.u.fn->kind == JF_METHOD ? "builtin_function_or_method" : "function";
    }
    return "object";
}

static bool is_number(jj_value v) { return v.kind == JJ_BOOL || v.kind == JJ_INT || v.kind == JJ_FLOAT; }

static int64_t as_int(jj_value v) { return v.kind == JJ_BOOL ? v.u.b : v.u.i; }

static double as_double(jj_value v) { return v.kind == JJ_FLOAT ? v.u.f : (double)as_int(v); }

static int cmp_numbers(jj_value a, jj_value b) {
    if (a.kind != JJ_FLOAT && b.kind != JJ_FLOAT) {
        int64_t x = as_int(a), y = as_int(b);
        return x < y ? -1 : x > y;
    }
    double x = as_double(a), y = as_double(b);
    return x < y ? -1 : x > y ? 1 : 0;
}

static int cmp_strings(jj_str a, jj_str b) {
    int c = memcmp(a.p, b.p, a.n < b.n ? a.n : b.n);
    if (c) return c < 0 ? -1 : 1;
    return a.n < b.n ? -1 : a.n > b.n;
}

bool clv_jj_equal(jj_render *r, jj_value a, jj_value b) {
    if (!clv_jj_charge(r, 1)) return false;
    if (is_number(a) && is_number(b)) {
        if (a.kind == JJ_FLOAT || b.kind == JJ_FLOAT) return as_double(a) == as_double(b);
        return as_int(a) == as_int(b);
    }
    if (a.kind != b.kind) return false;
    switch (a.kind) {
    case JJ_UNDEF: case JJ_NONE: return true;
    case JJ_STR: return clv_jj_charge(r, a.u.s.n / 64) && jj_str_eq(a.u.s, b.u.s);
    case JJ_LIST:
        if (a.tuple != b.tuple || a.u.list->n != b.u.list->n) return false;
        for (size_t i = 0; i < a.u.list->n; i++)
            if (!clv_jj_equal(r, a.u.list->items[i], b.u.list->items[i])) return false;
        return true;
    case JJ_DICT: {
        if (a.u.dict->n != b.u.dict->n) return false;
        for (size_t i = 0; i < a.u.dict->n; i++) {
            jj_value other;
            if (!clv_jj_dict_get(r, b.u.dict, a.u.dict->keys[i], &other) ||
                !clv_jj_equal(r, a.u.dict->vals[i], other))
                return false;
        }
        return true;
    }
    case JJ_NS: return a.u.ns == b.u.ns;
    case JJ_LOOP: return a.u.loop == b.u.loop;
    case JJ_FUNC: return a.u.fn == b.u.fn;
    default: return false;
    }
}

bool clv_jj_compare(jj_render *r, const jj_node *at, jj_value a, jj_value b, const char *op,
                    int *cmp) {
    if (!clv_jj_charge(r, 1)) return false;
    if (is_number(a) && is_number(b)) {
        if ((a.kind == JJ_FLOAT && isnan(a.u.f)) || (b.kind == JJ_FLOAT && isnan(b.u.f))) {
            *cmp = 2; /* unordered: every ordering comparison is false */
            return true;
        }
        *cmp = cmp_numbers(a, b);
        return true;
    }
    if (a.kind == JJ_STR && b.kind == JJ_STR) {
        if (!clv_jj_charge(r, a.u.s.n / 64)) return false;
        *cmp = cmp_strings(a.u.s, b.u.s);
        return true;
    }
    if (a.kind == JJ_LIST && b.kind == JJ_LIST && a.tuple == b.tuple) {
        size_t n = a.u.list->n < b.u.list->n ? a.u.list->n : b.u.list->n;
        for (size_t i = 0; i < n; i++) {
            jj_value x = a.u.list->items[i], y = b.u.list->items[i];
            if (clv_jj_equal(r, x, y)) continue;
            return clv_jj_compare(r, at, x, y, op, cmp);
        }
        *cmp = a.u.list->n < b.u.list->n ? -1 : a.u.list->n > b.u.list->n;
        return true;
    }
    if (a.kind == JJ_UNDEF || b.kind == JJ_UNDEF) {
        jj_str name = a.kind == JJ_UNDEF ? a.u.s : b.u.s;
        clv_jj_error(r, at, CLV_ERR_TYPE, "'%.*s' is undefined", (int)name.n, name.p);
        return false;
    }
    clv_jj_error(r, at, CLV_ERR_TYPE, "'%s' not supported between instances of '%s' and '%s'", op,
                 clv_jj_type_name(a), clv_jj_type_name(b));
    return false;
}

/* --- str() and repr() ------------------------------------------------------------- */

/* Python's str.isprintable() for one non-ASCII code point, for the blocks
 * that text in chat messages uses; anything unusual is printed as is. */
static bool py_printable(uint32_t cp) {
    if (cp < 0xA0) return cp >= 0x20 && cp < 0x7F;
    if (cp == 0xA0 || cp == 0xAD) return false;
    if (cp == 0x061C || cp == 0x1680 || cp == 0x180E) return false;
    if (cp >= 0x2000 && cp <= 0x200F) return false;
    if (cp >= 0x2028 && cp <= 0x202F) return false;
    if (cp >= 0x205F && cp <= 0x206F) return false;
    if (cp == 0x3000 || cp == 0xFEFF) return false;
    if (cp >= 0xD800 && cp <= 0xF8FF) return false; /* surrogates and private use */
    if (cp >= 0xFFF0 && cp <= 0xFFFB) return false;
    if (cp == 0xFFFE || cp == 0xFFFF) return false;
    if (cp >= 0xE0000) return false;
    return true;
}

static void write_str_repr(clv_strbuf *b, jj_str s) {
    bool has_single = memchr(s.p, '\'', s.n) != NULL, has_double = memchr(s.p, '"', s.n) != NULL;
    char q = has_single && !has_double ? '"' : '\'';
    clv_strbuf_putc(b, q);
    size_t i = 0;
    while (i < s.n) {
        unsigned char c = (unsigned char)s.p[i];
        if (c < 0x80) {
            if (c == (unsigned char)q || c == '\\') {
                clv_strbuf_putc(b, '\\');
                clv_strbuf_putc(b, (char)c);
            } else if (c == '\n') {
                clv_strbuf_puts(b, "\\n");
            } else if (c == '\r') {
                clv_strbuf_puts(b, "\\r");
            } else if (c == '\t') {
                clv_strbuf_puts(b, "\\t");
            } else if (c < 0x20 || c == 0x7F) {
                clv_strbuf_printf(b, "\\x%02x", c);
            } else {
                clv_strbuf_putc(b, (char)c);
            }
            i++;
            continue;
        }
        uint32_t cp;
        size_t n = clv_json_utf8_decode(s.p + i, s.n - i, &cp);
        if (!n) {
            cp = 0xFFFD;
            n = 1;
        }
        if (py_printable(cp)) clv_strbuf_append(b, s.p + i, n);
        else if (cp <= 0xFF) clv_strbuf_printf(b, "\\x%02x", cp);
        else if (cp <= 0xFFFF) clv_strbuf_printf(b, "\\u%04x", cp);
        else clv_strbuf_printf(b, "\\U%08x", cp);
        i += n;
    }
    clv_strbuf_putc(b, q);
}

static void write_repr(jj_render *r, clv_strbuf *b, jj_value v, int depth);

static void write_str(jj_render *r, clv_strbuf *b, jj_value v, int depth) {
    char num[32];
    switch (v.kind) {
    case JJ_UNDEF: return;
    case JJ_NONE: clv_strbuf_puts(b, "None"); return;
    case JJ_BOOL: clv_strbuf_puts(b, v.u.b ? "True" : "False"); return;
    case JJ_INT: clv_strbuf_printf(b, "%lld", (long long)v.u.i); return;
    case JJ_FLOAT: clv_strbuf_append(b, num, clv_json_format_double(num, v.u.f)); return;
    case JJ_STR: clv_strbuf_append(b, v.u.s.p, v.u.s.n); return;
    default: write_repr(r, b, v, depth); return;
    }
}

static void write_repr(jj_render *r, clv_strbuf *b, jj_value v, int depth) {
    /* Values can share parts (a list holding one list twice, many times
     * over), so stop as soon as the buffer is full or the budget is spent. */
    if (b->failed || !clv_jj_charge(r, 1)) return;
    if (depth > 100) {
        clv_strbuf_puts(b, "...");
        return;
    }
    switch (v.kind) {
    case JJ_UNDEF: clv_strbuf_puts(b, "Undefined"); return;
    case JJ_STR: write_str_repr(b, v.u.s); return;
    case JJ_LIST: {
        clv_strbuf_putc(b, v.tuple ? '(' : '[');
        for (size_t i = 0; i < v.u.list->n; i++) {
            if (i) clv_strbuf_puts(b, ", ");
            write_repr(r, b, v.u.list->items[i], depth + 1);
        }
        if (v.tuple && v.u.list->n == 1) clv_strbuf_putc(b, ',');
        clv_strbuf_putc(b, v.tuple ? ')' : ']');
        return;
    }
    case JJ_DICT:
        clv_strbuf_putc(b, '{');
        for (size_t i = 0; i < v.u.dict->n; i++) {
            if (i) clv_strbuf_puts(b, ", ");
            write_repr(r, b, v.u.dict->keys[i], depth + 1);
            clv_strbuf_puts(b, ": ");
            write_repr(r, b, v.u.dict->vals[i], depth + 1);
        }
        clv_strbuf_putc(b, '}');
        return;
    case JJ_NS:
        clv_strbuf_puts(b, "<Namespace {");
        for (size_t i = 0; i < v.u.ns->n; i++) {
            if (i) clv_strbuf_puts(b, ", ");
            write_str_repr(b, v.u.ns->keys[i]);
            clv_strbuf_puts(b, ": ");
            write_repr(r, b, v.u.ns->vals[i], depth + 1);
        }
        clv_strbuf_puts(b, "}>");
        return;
    case JJ_LOOP:
        clv_strbuf_printf(b, "<LoopContext %lld/%lld>", (long long)v.u.loop->index0 + 1,
                          (long long)v.u.loop->length);
        return;
    case JJ_FUNC:
        if (v.u.fn->kind == JF_MACRO)
            clv_strbuf_printf(b, "<Macro '%.*s'>", (int)v.u.fn->name.n, v.u.fn->name.p);
        else if (v.u.fn->kind == JF_METHOD)
            clv_strbuf_printf(b, "<built-in method %.*s of %s object>", (int)v.u.fn->name.n,
                              v.u.fn->name.p, clv_jj_type_name(v.u.fn->self));
        else
            clv_strbuf_printf(b, "<function %.*s>", (int)v.u.fn->name.n, v.u.fn->name.p);
        return;
    default: write_str(r, b, v, depth); return;
    }
}

void clv_jj_write_str(jj_render *r, clv_strbuf *b, jj_value v) { write_str(r, b, v, 0); }
void clv_jj_write_repr(jj_render *r, clv_strbuf *b, jj_value v) { write_repr(r, b, v, 0); }

jj_str clv_jj_take_buf(jj_render *r, clv_strbuf *b) {
    if (b->failed) {
        if (b->over_limit)
            clv_jj_error(r, NULL, CLV_ERR_RANGE, "a string grew past the template's %zu MiB limit",
                         r->arena.limit >> 20);
        else
            clv_jj_error(r, NULL, CLV_ERR_NOMEM, "out of memory");
        clv_strbuf_free(b);
        return (jj_str){"", 0};
    }
    jj_str s = clv_jj_strdup(r, b->data ? b->data : "", b->len);
    clv_strbuf_free(b);
    return s;
}

jj_str clv_jj_to_str(jj_render *r, jj_value v) {
    if (v.kind == JJ_STR) return v.u.s;
    if (v.kind == JJ_UNDEF) return (jj_str){"", 0};
    clv_strbuf b = {.limit = r->arena.limit};
    write_str(r, &b, v, 0);
    return clv_jj_take_buf(r, &b);
}

/* --- json.dumps ------------------------------------------------------------------- */

typedef struct keyed {
    jj_str key;
    size_t index;
} keyed;

static int keyed_cmp(const void *pa, const void *pb) {
    const keyed *a = pa, *b = pb;
    int c = cmp_strings(a->key, b->key);
    if (c) return c;
    return a->index < b->index ? -1 : a->index > b->index;
}

static void json_value(jj_render *r, const jj_node *at, clv_json_writer *w, jj_value v) {
    if (JJ_FAILED(r) || w->status != CLV_OK || (w->buf && w->buf->failed) || !clv_jj_charge(r, 1)) return;
    switch (v.kind) {
    case JJ_NONE: clv_json_null(w); return;
    case JJ_BOOL: clv_json_bool_value(w, v.u.b); return;
    case JJ_INT: clv_json_int_value(w, v.u.i); return;
    case JJ_FLOAT: clv_json_double_value(w, v.u.f); return;
    case JJ_STR: clv_json_stringn_value(w, v.u.s.p, v.u.s.n); return;
    case JJ_LIST:
        clv_json_begin_array(w);
        for (size_t i = 0; i < v.u.list->n; i++) json_value(r, at, w, v.u.list->items[i]);
        clv_json_end_array(w);
        return;
    case JJ_DICT: {
        size_t n = v.u.dict->n;
        keyed *keys = n ? malloc(n * sizeof *keys) : NULL;
        if (n && !keys) {
            clv_jj_error(r, at, CLV_ERR_NOMEM, "out of memory");
            return;
        }
        for (size_t i = 0; i < n; i++) {
            jj_value k = v.u.dict->keys[i];
            keys[i].index = i;
            switch (k.kind) {
            case JJ_STR: keys[i].key = k.u.s; break;
            case JJ_BOOL: keys[i].key = k.u.b ? JJ_S("true") : JJ_S("false"); break;
            case JJ_NONE: keys[i].key = JJ_S("null"); break;
            case JJ_INT: case JJ_FLOAT: keys[i].key = clv_jj_to_str(r, k); break;
            default:
                clv_jj_error(r, at, CLV_ERR_TYPE, "tojson: keys must be str, int, float, bool or None, not %s",
                             clv_jj_type_name(k));
                free(keys);
                return;
            }
        }
        if (w->params.sort_keys && n > 1) qsort(keys, n, sizeof *keys, keyed_cmp);
        clv_json_begin_object(w);
        for (size_t i = 0; i < n && !JJ_FAILED(r); i++) {
            clv_json_keyn(w, keys[i].key.p, keys[i].key.n);
            json_value(r, at, w, v.u.dict->vals[keys[i].index]);
        }
        clv_json_end_object(w);
        free(keys);
        return;
    }
    default:
        clv_jj_error(r, at, CLV_ERR_TYPE, "tojson: object of type %s is not JSON serializable",
                     clv_jj_type_name(v));
        return;
    }
}

jj_str clv_jj_tojson(jj_render *r, const jj_node *at, jj_value v,
                     const clv_json_write_params *params) {
    clv_strbuf b = {.limit = r->arena.limit};
    clv_json_writer w;
    clv_json_writer_init_buf(&w, &b, params);
    json_value(r, at, &w, v);
    if (JJ_FAILED(r)) {
        clv_strbuf_free(&b);
        return (jj_str){"", 0};
    }
    if (clv_json_writer_finish(&w) != CLV_OK) {
        clv_jj_error(r, at, CLV_ERR_RANGE, "tojson: %s", clv_last_error());
        clv_strbuf_free(&b);
        return (jj_str){"", 0};
    }
    return clv_jj_take_buf(r, &b);
}

/* --- UTF-8 ------------------------------------------------------------------------ */

size_t clv_jj_utf8_len(jj_str s) {
    size_t n = 0;
    for (size_t i = 0; i < s.n; i++) n += ((unsigned char)s.p[i] & 0xC0) != 0x80;
    return n;
}

size_t clv_jj_utf8_offset(jj_str s, size_t index) {
    size_t i = 0;
    while (index > 0 && i < s.n) {
        i++;
        while (i < s.n && ((unsigned char)s.p[i] & 0xC0) == 0x80) i++;
        index--;
    }
    return i;
}
