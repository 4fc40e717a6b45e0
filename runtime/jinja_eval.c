/* Jinja evaluation: walks the syntax tree with Python semantics, and the
 * public parse/render entry points.
 *
 * Scoping follows jinja2: each for-loop iteration, macro call and with-block
 * gets a fresh scope whose assignments vanish when it ends (hence
 * namespace()), while if-blocks share their enclosing scope. Values built
 * during a render live in one arena that is freed when the render ends. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jinja_internal.h"

struct clv_jinja {
    jj_arena arena; /* source copy, strings and the tree */
    jj_node **body;
    uint32_t n_body;
};

#define MAX_EVAL_DEPTH 1000

clv_jinja_render_params clv_jinja_default_render_params(void) {
    clv_jinja_render_params p = {
        .max_steps = 20u * 1000 * 1000,
        .max_memory = (size_t)256 << 20,
        .max_output = (size_t)64 << 20,
        .max_call_depth = 64,
        .now = 0,
    };
    return p;
}

clv_status clv_jinja_parse(const char *source, size_t len, clv_jinja **out) {
    *out = NULL;
    clv_jinja *t = calloc(1, sizeof *t);
    if (!t) return clv_fail(CLV_ERR_NOMEM, "out of memory");
    t->arena.limit = len * 64 + ((size_t)16 << 20); /* generous, but bounded */
    jj_token *toks;
    size_t ntok;
    clv_status st = clv_jj_lex(source ? source : "", source ? len : 0, &t->arena, &toks, &ntok);
    if (st == CLV_OK) {
        st = clv_jj_parse(toks, ntok, &t->arena, &t->body, &t->n_body);
        free(toks);
    }
    if (st == CLV_OK && t->arena.failed) st = clv_fail(CLV_ERR_RANGE, "template too large to parse");
    if (st != CLV_OK) {
        clv_jinja_free(t);
        return st;
    }
    *out = t;
    return CLV_OK;
}

void clv_jinja_free(clv_jinja *t) {
    if (!t) return;
    clv_jj_arena_free(&t->arena);
    free(t);
}

void clv_jj_error(jj_render *r, const jj_node *at, clv_status st, const char *fmt, ...) {
    if (r->status != CLV_OK) return;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (at) r->status = clv_fail(st, "template line %u, column %u: %s", at->line, at->col, msg);
    else r->status = clv_fail(st, "template: %s", msg);
}

bool clv_jj_charge(jj_render *r, uint64_t units) {
    if (JJ_FAILED(r)) return false;
    r->steps += units;
    if (r->steps > r->max_steps) {
        clv_jj_error(r, NULL, CLV_ERR_RANGE, "the template ran past its limit of %llu steps",
                     (unsigned long long)r->max_steps);
        return false;
    }
    return true;
}

static bool tick(jj_render *r, const jj_node *at) {
    if (JJ_FAILED(r)) return false;
    if (++r->steps > r->max_steps) {
        clv_jj_error(r, at, CLV_ERR_RANGE, "the template ran past its limit of %llu steps",
                     (unsigned long long)r->max_steps);
        return false;
    }
    return true;
}

static jj_value fail_undefined(jj_render *r, const jj_node *at, jj_value v) {
    if (v.u.s.n)
        clv_jj_error(r, at, CLV_ERR_TYPE, "'%.*s' is undefined", (int)v.u.s.n, v.u.s.p);
    else
        clv_jj_error(r, at, CLV_ERR_TYPE, "an undefined value was used");
    return jj_undef(JJ_S(""));
}

/* --- scopes ----------------------------------------------------------------------- */

static jj_scope *scope_new(jj_render *r, jj_scope *parent) {
    jj_scope *s = clv_jj_ralloc(r, sizeof *s);
    if (s) s->parent = parent;
    return s;
}

/* A fresh scope for the next loop iteration. The previous one is emptied and
 * reused, so long loops do not grow the arena, unless a macro defined in it
 * keeps it alive as its closure. */
static jj_scope *scope_renew(jj_render *r, jj_scope *s, jj_scope *parent) {
    if (s && !s->captured) {
        s->n = 0;
        return s;
    }
    return scope_new(r, parent);
}

static void scope_set(jj_render *r, jj_scope *s, jj_str name, jj_value v) {
    if (!s) return;
    for (size_t i = 0; i < s->n; i++) {
        if (jj_str_eq(s->names[i], name)) {
            s->vals[i] = v;
            return;
        }
    }
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 8;
        jj_str *names = clv_jj_ralloc(r, cap * sizeof *names);
        jj_value *vals = clv_jj_ralloc(r, cap * sizeof *vals);
        if (!names || !vals) return;
        if (s->n) {
            memcpy(names, s->names, s->n * sizeof *names);
            memcpy(vals, s->vals, s->n * sizeof *vals);
        }
        s->names = names;
        s->vals = vals;
        s->cap = cap;
    }
    s->names[s->n] = name;
    s->vals[s->n] = v;
    s->n++;
}

static jj_value lookup(jj_render *r, jj_str name) {
    for (jj_scope *s = r->scope; s; s = s->parent)
        for (size_t i = s->n; i-- > 0;)
            if (jj_str_eq(s->names[i], name)) return s->vals[i];
    jj_value g;
    if (clv_jj_global(name, &g, r)) return g;
    return jj_undef(name);
}

/* --- attribute and item access ----------------------------------------------------- */

static jj_value loop_attr(jj_render *r, jj_value obj, jj_str name) {
    const jj_loop *l = obj.u.loop;
    int64_t i = l->index0, n = l->length;
    if (jj_str_is(name, "index")) return jj_int(i + 1);
    if (jj_str_is(name, "index0")) return jj_int(i);
    if (jj_str_is(name, "revindex")) return jj_int(n - i);
    if (jj_str_is(name, "revindex0")) return jj_int(n - i - 1);
    if (jj_str_is(name, "first")) return jj_bool(i == 0);
    if (jj_str_is(name, "last")) return jj_bool(i == n - 1);
    if (jj_str_is(name, "length")) return jj_int(n);
    if (jj_str_is(name, "depth")) return jj_int(1);
    if (jj_str_is(name, "depth0")) return jj_int(0);
    if (jj_str_is(name, "previtem"))
        return i > 0 ? l->items->items[i - 1] : jj_undef(JJ_S("there is no previous item"));
    if (jj_str_is(name, "nextitem"))
        return i + 1 < n ? l->items->items[i + 1] : jj_undef(JJ_S("there is no next item"));
    jj_value m;
    if (clv_jj_method_lookup(r, obj, name, &m)) return m;
    return jj_undef(name);
}

jj_value clv_jj_getattr(jj_render *r, const jj_node *at, jj_value obj, jj_str name) {
    jj_value m;
    switch (obj.kind) {
    case JJ_UNDEF:
        return fail_undefined(r, at, obj);
    case JJ_DICT: {
        /* Python attribute first: `d.items` is the method even when d has an
         * "items" key; then the key. */
        if (clv_jj_method_lookup(r, obj, name, &m)) return m;
        jj_value v;
        clv_jj_dict_get(r, obj.u.dict, jj_strv(name), &v);
        return v.kind == JJ_UNDEF ? jj_undef(name) : v;
    }
    case JJ_NS:
        for (size_t i = 0; i < obj.u.ns->n; i++)
            if (jj_str_eq(obj.u.ns->keys[i], name)) return obj.u.ns->vals[i];
        return jj_undef(name);
    case JJ_LOOP:
        return loop_attr(r, obj, name);
    default:
        if (clv_jj_method_lookup(r, obj, name, &m)) return m;
        return jj_undef(name);
    }
}

/* Python's index normalisation: false when out of range. */
static bool norm_index(int64_t i, size_t n, size_t *out) {
    if (i < 0) i += (int64_t)n;
    if (i < 0 || (uint64_t)i >= n) return false;
    *out = (size_t)i;
    return true;
}

jj_value clv_jj_getitem(jj_render *r, const jj_node *at, jj_value obj, jj_value key) {
    if (obj.kind == JJ_UNDEF) return fail_undefined(r, at, obj);
    bool int_key = key.kind == JJ_INT || key.kind == JJ_BOOL;
    int64_t ki = key.kind == JJ_BOOL ? key.u.b : key.u.i;
    size_t idx;
    switch (obj.kind) {
    case JJ_LIST:
        if (int_key) {
            if (norm_index(ki, obj.u.list->n, &idx)) return obj.u.list->items[idx];
            return jj_undef(JJ_S("list index out of range"));
        }
        break;
    case JJ_STR:
        if (int_key) {
            if (!clv_jj_charge(r, obj.u.s.n / 64)) return jj_undef(JJ_S(""));
            if (!norm_index(ki, clv_jj_utf8_len(obj.u.s), &idx)) return jj_undef(JJ_S("string index out of range"));
            size_t from = clv_jj_utf8_offset(obj.u.s, idx);
            size_t to = clv_jj_utf8_offset(obj.u.s, idx + 1);
            return jj_strv((jj_str){obj.u.s.p + from, to - from});
        }
        break;
    case JJ_DICT: {
        jj_value v;
        if (clv_jj_dict_get(r, obj.u.dict, key, &v)) return v;
        break;
    }
    default:
        break;
    }
    /* jinja2 falls back to an attribute when the item does not exist. */
    if (key.kind == JJ_STR) return clv_jj_getattr(r, at, obj, key.u.s);
    return jj_undef(JJ_S(""));
}

/* Python slice bounds for a sequence of n items. */
static bool slice_bounds(jj_render *r, const jj_node *at, jj_value start, jj_value stop,
                         jj_value step, size_t n, int64_t *o_start, int64_t *o_step, size_t *o_count) {
    int64_t st = 1, len = (int64_t)n;
    jj_value parts[3] = {start, stop, step};
    for (int k = 0; k < 3; k++) {
        jj_kind kind = parts[k].kind;
        if (kind != JJ_NONE && kind != JJ_INT && kind != JJ_BOOL) {
            if (kind == JJ_UNDEF) fail_undefined(r, at, parts[k]);
            else clv_jj_error(r, at, CLV_ERR_TYPE, "slice indices must be integers or None");
            return false;
        }
    }
    if (step.kind != JJ_NONE) st = step.kind == JJ_BOOL ? step.u.b : step.u.i;
    if (st == 0) {
        clv_jj_error(r, at, CLV_ERR_TYPE, "slice step cannot be zero");
        return false;
    }
    int64_t b, e;
    if (st > 0) {
        b = 0;
        e = len;
    } else {
        b = len - 1;
        e = -1;
    }
    if (start.kind != JJ_NONE) {
        b = start.kind == JJ_BOOL ? start.u.b : start.u.i;
        if (b < 0) b += len;
        if (b < 0) b = st < 0 ? -1 : 0;
        if (b >= len) b = st < 0 ? len - 1 : len;
    }
    if (stop.kind != JJ_NONE) {
        e = stop.kind == JJ_BOOL ? stop.u.b : stop.u.i;
        if (e < 0) e += len;
        if (e < 0) e = st < 0 ? -1 : 0;
        if (e >= len) e = st < 0 ? len - 1 : len;
    }
    size_t count = 0;
    if (st > 0 && e > b) count = (size_t)((e - b + st - 1) / st);
    if (st < 0 && b > e) count = (size_t)((b - e - st - 1) / -st);
    *o_start = b;
    *o_step = st;
    *o_count = count;
    return true;
}

static __attribute__((noinline)) jj_value do_slice(jj_render *r, const jj_node *at, jj_value obj, jj_value start,
                         jj_value stop, jj_value step) {
    if (obj.kind == JJ_UNDEF) return fail_undefined(r, at, obj);
    if (obj.kind != JJ_LIST && obj.kind != JJ_STR) return jj_undef(JJ_S("")); /* TypeError -> undefined */
    if (obj.kind == JJ_STR && !clv_jj_charge(r, obj.u.s.n / 64)) return jj_undef(JJ_S(""));
    size_t n = obj.kind == JJ_LIST ? obj.u.list->n : clv_jj_utf8_len(obj.u.s);
    int64_t b, st;
    size_t count;
    if (!slice_bounds(r, at, start, stop, step, n, &b, &st, &count)) return jj_undef(JJ_S(""));
    if (!clv_jj_charge(r, count / 16)) return jj_undef(JJ_S(""));
    if (obj.kind == JJ_LIST) {
        jj_list *l = clv_jj_list_new(r, count);
        if (!l) return jj_undef(JJ_S(""));
        for (size_t i = 0; i < count; i++) l->items[i] = obj.u.list->items[b + (int64_t)i * st];
        return clv_jj_listv(l, obj.tuple);
    }
    /* Strings: index code points once, then copy the chosen ones. */
    size_t *offs = malloc((n + 1) * sizeof *offs);
    if (!offs) {
        clv_jj_error(r, at, CLV_ERR_NOMEM, "out of memory");
        return jj_undef(JJ_S(""));
    }
    size_t k = 0;
    for (size_t i = 0; i < obj.u.s.n; i++)
        if (((unsigned char)obj.u.s.p[i] & 0xC0) != 0x80) offs[k++] = i;
    offs[n] = obj.u.s.n;
    if (st == 1) {
        size_t from = count ? offs[b] : 0, to = count ? offs[b + (int64_t)count] : 0;
        free(offs);
        return jj_strv((jj_str){obj.u.s.p + from, to - from});
    }
    clv_strbuf buf = {.limit = r->arena.limit};
    for (size_t i = 0; i < count; i++) {
        size_t c = (size_t)(b + (int64_t)i * st);
        clv_strbuf_append(&buf, obj.u.s.p + offs[c], offs[c + 1] - offs[c]);
    }
    free(offs);
    return jj_strv(clv_jj_take_buf(r, &buf));
}

bool clv_jj_iterate(jj_render *r, const jj_node *at, jj_value v, jj_list **out) {
    static jj_list empty;
    switch (v.kind) {
    case JJ_UNDEF:
        *out = &empty;
        return true;
    case JJ_LIST:
        *out = v.u.list;
        return true;
    case JJ_DICT: {
        if (!clv_jj_charge(r, v.u.dict->n / 16)) return false;
        jj_list *l = clv_jj_list_new(r, v.u.dict->n);
        if (!l) return false;
        for (size_t i = 0; i < v.u.dict->n; i++) l->items[i] = v.u.dict->keys[i];
        *out = l;
        return true;
    }
    case JJ_STR: {
        size_t n = clv_jj_utf8_len(v.u.s);
        if (!clv_jj_charge(r, n / 16)) return false;
        jj_list *l = clv_jj_list_new(r, n);
        if (!l) return false;
        size_t i = 0;
        for (size_t k = 0; k < n; k++) {
            size_t from = i;
            i++;
            while (i < v.u.s.n && ((unsigned char)v.u.s.p[i] & 0xC0) == 0x80) i++;
            l->items[k] = jj_strv((jj_str){v.u.s.p + from, i - from});
        }
        *out = l;
        return true;
    }
    default:
        clv_jj_error(r, at, CLV_ERR_TYPE, "'%s' object is not iterable", clv_jj_type_name(v));
        return false;
    }
}

/* --- operators -------------------------------------------------------------------- */

static bool is_num(jj_value v) { return v.kind == JJ_INT || v.kind == JJ_BOOL || v.kind == JJ_FLOAT; }
static int64_t ival(jj_value v) { return v.kind == JJ_BOOL ? v.u.b : v.u.i; }
static double fval(jj_value v) { return v.kind == JJ_FLOAT ? v.u.f : (double)ival(v); }

static const char *op_text(jj_op op) {
    switch (op) {
    case JO_ADD: return "+";
    case JO_SUB: return "-";
    case JO_MUL: return "*";
    case JO_DIV: return "/";
    case JO_FLOORDIV: return "//";
    case JO_MOD: return "%";
    case JO_POW: return "** or pow()";
    default: return "?";
    }
}

static jj_value bad_operands(jj_render *r, const jj_node *at, jj_op op, jj_value a, jj_value b) {
    clv_jj_error(r, at, CLV_ERR_TYPE, "unsupported operand type(s) for %s: '%s' and '%s'",
                 op_text(op), clv_jj_type_name(a), clv_jj_type_name(b));
    return jj_undef(JJ_S(""));
}

static jj_value int_overflow(jj_render *r, const jj_node *at) {
    clv_jj_error(r, at, CLV_ERR_UNSUPPORTED, "integer overflow (numbers beyond 64 bits are not supported)");
    return jj_undef(JJ_S(""));
}

static jj_value repeat(jj_render *r, const jj_node *at, jj_value seq, int64_t times) {
    if (times < 0) times = 0;
    if (seq.kind == JJ_STR) {
        if (seq.u.s.n && (uint64_t)times > r->arena.limit / seq.u.s.n) {
            clv_jj_error(r, at, CLV_ERR_RANGE, "string repetition larger than the template's memory limit");
            return jj_undef(JJ_S(""));
        }
        size_t total = seq.u.s.n * (size_t)times;
        if (!clv_jj_charge(r, total / 64)) return jj_undef(JJ_S(""));
        char *p = clv_jj_ralloc(r, total + 1);
        if (!p) return jj_undef(JJ_S(""));
        for (int64_t i = 0; i < times; i++) memcpy(p + (size_t)i * seq.u.s.n, seq.u.s.p, seq.u.s.n);
        return jj_strv((jj_str){p, total});
    }
    size_t n = seq.u.list->n;
    if (n && (uint64_t)times > r->arena.limit / (n * sizeof(jj_value))) {
        clv_jj_error(r, at, CLV_ERR_RANGE, "list repetition larger than the template's memory limit");
        return jj_undef(JJ_S(""));
    }
    if (!clv_jj_charge(r, n * (size_t)times / 16)) return jj_undef(JJ_S(""));
    jj_list *l = clv_jj_list_new(r, n * (size_t)times);
    if (!l) return jj_undef(JJ_S(""));
    for (size_t i = 0; i < l->n; i++) l->items[i] = seq.u.list->items[i % n];
    return clv_jj_listv(l, seq.tuple);
}

static jj_value binop(jj_render *r, const jj_node *at, jj_op op, jj_value a, jj_value b) {
    if (a.kind == JJ_UNDEF) return fail_undefined(r, at, a);
    if (b.kind == JJ_UNDEF) return fail_undefined(r, at, b);
    bool ints = (a.kind == JJ_INT || a.kind == JJ_BOOL) && (b.kind == JJ_INT || b.kind == JJ_BOOL);
    bool nums = is_num(a) && is_num(b);
    int64_t x = ints ? ival(a) : 0, y = ints ? ival(b) : 0, z;
    switch (op) {
    case JO_ADD:
        if (ints) return __builtin_add_overflow(x, y, &z) ? int_overflow(r, at) : jj_int(z);
        if (nums) return jj_float(fval(a) + fval(b));
        if (a.kind == JJ_STR && b.kind == JJ_STR) {
            if (!clv_jj_charge(r, (a.u.s.n + b.u.s.n) / 64)) return jj_undef(JJ_S(""));
            char *p = clv_jj_ralloc(r, a.u.s.n + b.u.s.n + 1);
            if (!p) return jj_undef(JJ_S(""));
            memcpy(p, a.u.s.p, a.u.s.n);
            memcpy(p + a.u.s.n, b.u.s.p, b.u.s.n);
            return jj_strv((jj_str){p, a.u.s.n + b.u.s.n});
        }
        if (a.kind == JJ_LIST && b.kind == JJ_LIST && a.tuple == b.tuple) {
            if (!clv_jj_charge(r, (a.u.list->n + b.u.list->n) / 16)) return jj_undef(JJ_S(""));
            jj_list *l = clv_jj_list_new(r, a.u.list->n + b.u.list->n);
            if (!l) return jj_undef(JJ_S(""));
            for (size_t i = 0; i < a.u.list->n; i++) l->items[i] = a.u.list->items[i];
            for (size_t i = 0; i < b.u.list->n; i++) l->items[a.u.list->n + i] = b.u.list->items[i];
            return clv_jj_listv(l, a.tuple);
        }
        if (a.kind == JJ_STR) {
            clv_jj_error(r, at, CLV_ERR_TYPE, "can only concatenate str (not \"%s\") to str",
                         clv_jj_type_name(b));
            return jj_undef(JJ_S(""));
        }
        if (a.kind == JJ_LIST) {
            clv_jj_error(r, at, CLV_ERR_TYPE, "can only concatenate %s (not \"%s\") to %s",
                         clv_jj_type_name(a), clv_jj_type_name(b), clv_jj_type_name(a));
            return jj_undef(JJ_S(""));
        }
        return bad_operands(r, at, op, a, b);
    case JO_SUB:
        if (ints) return __builtin_sub_overflow(x, y, &z) ? int_overflow(r, at) : jj_int(z);
        if (nums) return jj_float(fval(a) - fval(b));
        return bad_operands(r, at, op, a, b);
    case JO_MUL:
        if (ints) return __builtin_mul_overflow(x, y, &z) ? int_overflow(r, at) : jj_int(z);
        if (nums) return jj_float(fval(a) * fval(b));
        if ((a.kind == JJ_STR || a.kind == JJ_LIST) && (b.kind == JJ_INT || b.kind == JJ_BOOL))
            return repeat(r, at, a, ival(b));
        if ((b.kind == JJ_STR || b.kind == JJ_LIST) && (a.kind == JJ_INT || a.kind == JJ_BOOL))
            return repeat(r, at, b, ival(a));
        return bad_operands(r, at, op, a, b);
    case JO_DIV:
        if (!nums) return bad_operands(r, at, op, a, b);
        if (fval(b) == 0.0) {
            clv_jj_error(r, at, CLV_ERR_TYPE, "division by zero");
            return jj_undef(JJ_S(""));
        }
        return jj_float(fval(a) / fval(b));
    case JO_FLOORDIV:
    case JO_MOD:
        if (a.kind == JJ_STR && op == JO_MOD) return clv_jj_percent_format(r, at, a.u.s, b);
        if (!nums) return bad_operands(r, at, op, a, b);
        if (ints) {
            if (y == 0) {
                clv_jj_error(r, at, CLV_ERR_TYPE, "integer division or modulo by zero");
                return jj_undef(JJ_S(""));
            }
            if (x == INT64_MIN && y == -1) return op == JO_MOD ? jj_int(0) : int_overflow(r, at);
            int64_t q = x / y, m = x % y;
            if (m != 0 && ((m < 0) != (y < 0))) {
                q--;
                m += y;
            }
            return jj_int(op == JO_MOD ? m : q);
        }
        {
            double fx = fval(a), fy = fval(b);
            if (fy == 0.0) {
                clv_jj_error(r, at, CLV_ERR_TYPE, "float division by zero");
                return jj_undef(JJ_S(""));
            }
            /* CPython's float divmod, so results match to the last bit. */
            double m = fmod(fx, fy);
            double div = (fx - m) / fy;
            if (m != 0.0) {
                if ((fy < 0) != (m < 0)) {
                    m += fy;
                    div -= 1.0;
                }
            } else {
                m = copysign(0.0, fy);
            }
            if (op == JO_MOD) return jj_float(m);
            double q;
            if (div != 0.0) {
                q = floor(div);
                if (div - q > 0.5) q += 1.0;
            } else {
                q = copysign(0.0, fx / fy);
            }
            return jj_float(q);
        }
    case JO_POW:
        if (!nums) return bad_operands(r, at, op, a, b);
        if (ints && y >= 0) {
            int64_t result = 1, base = x;
            for (int64_t e = y; e > 0; e >>= 1) {
                if (e & 1 && __builtin_mul_overflow(result, base, &result)) return int_overflow(r, at);
                if (e > 1 && __builtin_mul_overflow(base, base, &base)) return int_overflow(r, at);
            }
            return jj_int(result);
        }
        if (fval(a) == 0.0 && fval(b) < 0) {
            clv_jj_error(r, at, CLV_ERR_TYPE, "0.0 cannot be raised to a negative power");
            return jj_undef(JJ_S(""));
        }
        return jj_float(pow(fval(a), fval(b)));
    default:
        return bad_operands(r, at, op, a, b);
    }
}

static bool contains(jj_render *r, const jj_node *at, jj_value item, jj_value box) {
    switch (box.kind) {
    case JJ_UNDEF:
        return false; /* iterating an undefined value yields nothing */
    case JJ_STR:
        if (item.kind != JJ_STR) {
            clv_jj_error(r, at, CLV_ERR_TYPE, "'in <string>' requires string as left operand, not %s",
                         clv_jj_type_name(item));
            return false;
        }
        if (item.u.s.n == 0) return true;
        if (!clv_jj_charge(r, box.u.s.n / 64)) return false;
        return memmem(box.u.s.p, box.u.s.n, item.u.s.p, item.u.s.n) != NULL;
    case JJ_LIST:
        for (size_t i = 0; i < box.u.list->n && !JJ_FAILED(r); i++)
            if (clv_jj_equal(r, box.u.list->items[i], item)) return true;
        return false;
    case JJ_DICT: {
        jj_value v;
        return clv_jj_dict_get(r, box.u.dict, item, &v);
    }
    default:
        clv_jj_error(r, at, CLV_ERR_TYPE, "argument of type '%s' is not iterable", clv_jj_type_name(box));
        return false;
    }
}

static bool compare_op(jj_render *r, const jj_node *at, jj_op op, jj_value a, jj_value b) {
    int c;
    switch (op) {
    case JO_EQ: return clv_jj_equal(r, a, b);
    case JO_NE: return !clv_jj_equal(r, a, b);
    case JO_IN: return contains(r, at, a, b);
    case JO_NOTIN: return !contains(r, at, a, b) && !JJ_FAILED(r);
    case JO_LT: return clv_jj_compare(r, at, a, b, "<", &c) && c == -1;
    case JO_LTEQ: return clv_jj_compare(r, at, a, b, "<=", &c) && (c == -1 || c == 0);
    case JO_GT: return clv_jj_compare(r, at, a, b, ">", &c) && c == 1;
    case JO_GTEQ: return clv_jj_compare(r, at, a, b, ">=", &c) && (c == 1 || c == 0);
    default: return false;
    }
}

/* --- expressions ------------------------------------------------------------------ */

static jj_value eval(jj_render *r, const jj_node *e);

static bool eval_args(jj_render *r, const jj_node *e, jj_args *args) {
    memset(args, 0, sizeof *args);
    size_t npos = e->n_kids, nkw = e->n_names;
    jj_list *extra = NULL;
    jj_dict *extra_kw = NULL;
    if (e->c) {
        jj_value v = eval(r, e->c);
        if (JJ_FAILED(r) || !clv_jj_iterate(r, e->c, v, &extra)) return false;
        npos += extra->n;
    }
    if (e->d) {
        jj_value v = eval(r, e->d);
        if (JJ_FAILED(r)) return false;
        if (v.kind != JJ_DICT) {
            clv_jj_error(r, e->d, CLV_ERR_TYPE, "argument after ** must be a mapping, not %s",
                         clv_jj_type_name(v));
            return false;
        }
        extra_kw = v.u.dict;
        nkw += extra_kw->n;
    }
    if (npos) {
        args->pos = clv_jj_ralloc(r, npos * sizeof *args->pos);
        if (!args->pos) return false;
    }
    if (nkw) {
        args->kw_names = clv_jj_ralloc(r, nkw * sizeof *args->kw_names);
        args->kw_vals = clv_jj_ralloc(r, nkw * sizeof *args->kw_vals);
        if (!args->kw_names || !args->kw_vals) return false;
    }
    for (uint32_t i = 0; i < e->n_kids; i++) {
        args->pos[args->npos++] = eval(r, e->kids[i]);
        if (JJ_FAILED(r)) return false;
    }
    for (size_t i = 0; extra && i < extra->n; i++) args->pos[args->npos++] = extra->items[i];
    for (uint32_t i = 0; i < e->n_names; i++) {
        args->kw_names[args->nkw] = e->names[i];
        args->kw_vals[args->nkw++] = eval(r, e->kids2[i]);
        if (JJ_FAILED(r)) return false;
    }
    for (size_t i = 0; extra_kw && i < extra_kw->n; i++) {
        if (extra_kw->keys[i].kind != JJ_STR) {
            clv_jj_error(r, e->d, CLV_ERR_TYPE, "keywords must be strings");
            return false;
        }
        args->kw_names[args->nkw] = extra_kw->keys[i].u.s;
        args->kw_vals[args->nkw++] = extra_kw->vals[i];
    }
    return true;
}

bool clv_jj_bind(jj_render *r, const jj_node *at, const char *fname, const jj_args *args,
                 const char *const *params, size_t n_params, size_t required, jj_value *out,
                 bool *given) {
    for (size_t i = 0; i < n_params; i++) {
        out[i] = jj_undef(JJ_S(""));
        given[i] = false;
    }
    if (args->npos > n_params) {
        clv_jj_error(r, at, CLV_ERR_TYPE, "%s takes at most %zu argument(s) (%zu given)", fname,
                     n_params, args->npos);
        return false;
    }
    for (size_t i = 0; i < args->npos; i++) {
        out[i] = args->pos[i];
        given[i] = true;
    }
    for (size_t k = 0; k < args->nkw; k++) {
        size_t i = 0;
        while (i < n_params && !jj_str_is(args->kw_names[k], params[i])) i++;
        if (i == n_params) {
            clv_jj_error(r, at, CLV_ERR_TYPE, "%s got an unexpected keyword argument '%.*s'", fname,
                         (int)args->kw_names[k].n, args->kw_names[k].p);
            return false;
        }
        if (given[i]) {
            clv_jj_error(r, at, CLV_ERR_TYPE, "%s got multiple values for argument '%s'", fname, params[i]);
            return false;
        }
        out[i] = args->kw_vals[k];
        given[i] = true;
    }
    for (size_t i = 0; i < required; i++) {
        if (!given[i]) {
            clv_jj_error(r, at, CLV_ERR_TYPE, "%s is missing the required argument '%s'", fname, params[i]);
            return false;
        }
    }
    return true;
}

static void exec_body(jj_render *r, jj_node *const *body, uint32_t n);

/* Runs a body into a fresh buffer and returns the text. */
static jj_str capture(jj_render *r, jj_node *const *body, uint32_t n) {
    clv_strbuf buf = {.limit = r->max_output};
    clv_strbuf *saved = r->out;
    r->out = &buf;
    exec_body(r, body, n);
    r->out = saved;
    return clv_jj_take_buf(r, &buf);
}

static jj_value call_macro(jj_render *r, const jj_node *at, const jj_func *fn, const jj_args *args) {
    const jj_node *m = fn->macro;
    if (r->call_depth >= r->max_call_depth) {
        clv_jj_error(r, at, CLV_ERR_RANGE, "macro calls nested deeper than %d (endless recursion?)",
                     r->max_call_depth);
        return jj_undef(JJ_S(""));
    }
    jj_scope *saved = r->scope;
    jj_scope *s = scope_new(r, fn->closure);
    if (!s) return jj_undef(JJ_S(""));
    r->scope = s;
    bool *used_kw = args->nkw ? clv_jj_ralloc(r, args->nkw) : NULL;
    for (uint32_t i = 0; i < m->n_names && !JJ_FAILED(r); i++) {
        jj_value v = jj_undef(m->names[i]);
        bool have = false;
        if (i < args->npos) {
            v = args->pos[i];
            have = true;
        }
        for (size_t k = 0; k < args->nkw && !have; k++) {
            if (jj_str_eq(args->kw_names[k], m->names[i])) {
                v = args->kw_vals[k];
                used_kw[k] = true;
                have = true;
            }
        }
        if (!have && i < m->n_kids2 && m->kids2[i]) v = eval(r, m->kids2[i]); /* sees earlier params */
        scope_set(r, s, m->names[i], v);
    }
    /* Extra arguments are reachable as varargs and kwargs. */
    size_t extra = args->npos > m->n_names ? args->npos - m->n_names : 0;
    jj_list *va = clv_jj_list_new(r, extra);
    if (va)
        for (size_t i = 0; i < extra; i++) va->items[i] = args->pos[m->n_names + i];
    size_t nk = 0;
    for (size_t k = 0; k < args->nkw; k++) nk += !used_kw[k];
    jj_dict *kw = clv_jj_dict_new(r, nk);
    if (kw) {
        size_t w = 0;
        for (size_t k = 0; k < args->nkw; k++) {
            if (used_kw[k]) continue;
            kw->keys[w] = jj_strv(args->kw_names[k]);
            kw->vals[w++] = args->kw_vals[k];
        }
    }
    scope_set(r, s, JJ_S("varargs"), clv_jj_listv(va, true));
    scope_set(r, s, JJ_S("kwargs"), clv_jj_dictv(kw));
    jj_str text = (jj_str){"", 0};
    if (!JJ_FAILED(r)) {
        r->call_depth++;
        text = capture(r, m->kids, m->n_kids);
        r->call_depth--;
    }
    r->scope = saved;
    return jj_strv(text);
}

jj_value clv_jj_call(jj_render *r, const jj_node *at, jj_value fn, const jj_args *args) {
    if (fn.kind == JJ_UNDEF) return fail_undefined(r, at, fn);
    if (fn.kind != JJ_FUNC) {
        clv_jj_error(r, at, CLV_ERR_TYPE, "'%s' object is not callable", clv_jj_type_name(fn));
        return jj_undef(JJ_S(""));
    }
    if (fn.u.fn->kind == JF_MACRO) return call_macro(r, at, fn.u.fn, args);
    return clv_jj_call_builtin(r, at, fn.u.fn, args);
}

/* Applies a filter node (and the filters under it) to `input` when the
 * innermost operand is absent (filter blocks and set blocks). */
static jj_value apply_filters(jj_render *r, const jj_node *f, jj_value input) {
    jj_value v = f->a ? apply_filters(r, f->a, input) : input;
    if (JJ_FAILED(r)) return v;
    jj_args args;
    if (!eval_args(r, f, &args)) return jj_undef(JJ_S(""));
    return clv_jj_apply_filter(r, f, f->name, v, &args);
}

/* Each kind of expression has its own function, so that the frame of the
 * recursive dispatcher stays small and deep expressions need little stack. */
#define NOINLINE __attribute__((noinline))

static NOINLINE jj_value eval_sequence(jj_render *r, const jj_node *e) {
    jj_list *l = clv_jj_list_new(r, e->n_kids);
    if (!l) return jj_undef(JJ_S(""));
    for (uint32_t i = 0; i < e->n_kids && !JJ_FAILED(r); i++) l->items[i] = eval(r, e->kids[i]);
    return clv_jj_listv(l, e->kind == JN_TUPLE);
}

static NOINLINE jj_value eval_dict(jj_render *r, const jj_node *e) {
    jj_dict *d = clv_jj_dict_new(r, e->n_kids);
    if (!d) return jj_undef(JJ_S(""));
    /* A repeated key keeps its first position and takes the last value. */
    size_t w = 0;
    for (uint32_t i = 0; i < e->n_kids && !JJ_FAILED(r); i++) {
        jj_value k = eval(r, e->kids[i]);
        jj_value v = eval(r, e->kids2[i]);
        if ((k.kind == JJ_LIST && !k.tuple) || k.kind == JJ_DICT || k.kind == JJ_NS) {
            clv_jj_error(r, e->kids[i], CLV_ERR_TYPE, "unhashable type: '%s'", clv_jj_type_name(k));
            break;
        }
        size_t j = 0;
        while (j < w && !clv_jj_equal(r, d->keys[j], k)) j++;
        if (j == w) d->keys[w++] = k;
        d->vals[j] = v;
    }
    d->n = w;
    return clv_jj_dictv(d);
}

static NOINLINE jj_value eval_getattr(jj_render *r, const jj_node *e) {
    jj_value obj = eval(r, e->a);
    if (JJ_FAILED(r)) return obj;
    return clv_jj_getattr(r, e, obj, e->name);
}

static NOINLINE jj_value eval_getitem(jj_render *r, const jj_node *e) {
    jj_value obj = eval(r, e->a);
    if (JJ_FAILED(r)) return obj;
    if (e->b->kind == JN_SLICE) {
        const jj_node *s = e->b;
        jj_value start = s->a ? eval(r, s->a) : jj_none();
        jj_value stop = s->b ? eval(r, s->b) : jj_none();
        jj_value step = s->c ? eval(r, s->c) : jj_none();
        if (JJ_FAILED(r)) return obj;
        return do_slice(r, e, obj, start, stop, step);
    }
    jj_value key = eval(r, e->b);
    if (JJ_FAILED(r)) return obj;
    return clv_jj_getitem(r, e, obj, key);
}

/* Calls, filters and tests: the callee or operand, then the arguments. */
static NOINLINE jj_value eval_call_like(jj_render *r, const jj_node *e) {
    jj_value v = eval(r, e->a);
    jj_args args;
    if (JJ_FAILED(r) || !eval_args(r, e, &args)) return jj_undef(JJ_S(""));
    if (e->kind == JN_CALL) return clv_jj_call(r, e, v, &args);
    if (e->kind == JN_FILTER) return clv_jj_apply_filter(r, e, e->name, v, &args);
    return jj_bool(clv_jj_apply_test(r, e, e->name, v, &args));
}

static NOINLINE jj_value eval_unary(jj_render *r, const jj_node *e) {
    jj_value v = eval(r, e->a);
    if (JJ_FAILED(r)) return v;
    if (e->kind == JN_NOT) return jj_bool(!clv_jj_truthy(v));
    if (v.kind == JJ_UNDEF) return fail_undefined(r, e, v);
    if (v.kind == JJ_FLOAT) return jj_float(e->kind == JN_NEG ? -v.u.f : v.u.f);
    if (v.kind == JJ_INT || v.kind == JJ_BOOL) {
        int64_t i = ival(v);
        if (e->kind == JN_POS) return jj_int(i);
        if (i == INT64_MIN) return int_overflow(r, e);
        return jj_int(-i);
    }
    clv_jj_error(r, e, CLV_ERR_TYPE, "bad operand type for unary %c: '%s'", e->kind == JN_NEG ? '-' : '+',
                 clv_jj_type_name(v));
    return jj_undef(JJ_S(""));
}

static NOINLINE jj_value eval_binop(jj_render *r, const jj_node *e) {
    jj_value a = eval(r, e->a);
    if (JJ_FAILED(r)) return a;
    if (e->kind == JN_AND || e->kind == JN_OR) {
        /* Python's and/or return an operand, not a bool. */
        if (clv_jj_truthy(a) == (e->kind == JN_OR)) return a;
        return eval(r, e->b);
    }
    jj_value b = eval(r, e->b);
    if (JJ_FAILED(r)) return b;
    return binop(r, e, (jj_op)e->op, a, b);
}

static NOINLINE jj_value eval_concat(jj_render *r, const jj_node *e) {
    clv_strbuf buf = {.limit = r->arena.limit};
    for (uint32_t i = 0; i < e->n_kids && !JJ_FAILED(r); i++) clv_jj_write_str(r, &buf, eval(r, e->kids[i]));
    return jj_strv(clv_jj_take_buf(r, &buf));
}

static NOINLINE jj_value eval_compare(jj_render *r, const jj_node *e) {
    jj_value left = eval(r, e->a);
    for (uint32_t i = 0; i < e->n_kids && !JJ_FAILED(r); i++) {
        jj_value right = eval(r, e->kids[i]);
        if (JJ_FAILED(r)) break;
        if (!compare_op(r, e, (jj_op)e->ops[i], left, right)) return jj_bool(false);
        left = right;
    }
    return jj_bool(!JJ_FAILED(r));
}

static NOINLINE jj_value eval_cond(jj_render *r, const jj_node *e) {
    jj_value test = eval(r, e->a);
    if (JJ_FAILED(r)) return test;
    if (clv_jj_truthy(test)) return eval(r, e->b);
    return e->c ? eval(r, e->c) : jj_undef(JJ_S(""));
}

static jj_value eval_inner(jj_render *r, const jj_node *e) {
    switch (e->kind) {
    case JN_CONST: return e->value;
    case JN_NAME: return lookup(r, e->name);
    case JN_LIST: case JN_TUPLE: return eval_sequence(r, e);
    case JN_DICT: return eval_dict(r, e);
    case JN_GETATTR: return eval_getattr(r, e);
    case JN_GETITEM: return eval_getitem(r, e);
    case JN_CALL: case JN_FILTER: case JN_TEST: return eval_call_like(r, e);
    case JN_NEG: case JN_POS: case JN_NOT: return eval_unary(r, e);
    case JN_BINOP: case JN_AND: case JN_OR: return eval_binop(r, e);
    case JN_CONCAT: return eval_concat(r, e);
    case JN_COMPARE: return eval_compare(r, e);
    case JN_COND: return eval_cond(r, e);
    case JN_SLICE:
        clv_jj_error(r, e, CLV_ERR_FORMAT, "a slice outside []");
        return jj_undef(JJ_S(""));
    default:
        clv_jj_error(r, e, CLV_ERR_FORMAT, "a statement where an expression belongs");
        return jj_undef(JJ_S(""));
    }
}

static jj_value eval(jj_render *r, const jj_node *e) {
    if (!tick(r, e)) return jj_undef(JJ_S(""));
    if (r->eval_depth >= MAX_EVAL_DEPTH) {
        clv_jj_error(r, e, CLV_ERR_RANGE, "expressions nest too deeply");
        return jj_undef(JJ_S(""));
    }
    r->eval_depth++;
    jj_value v = eval_inner(r, e);
    r->eval_depth--;
    return v;
}

/* --- statements ------------------------------------------------------------------- */

/* Assigns v to a target list: one name, or several unpacked from v. */
static void assign(jj_render *r, const jj_node *at, jj_scope *s, const jj_str *names, uint32_t n,
                   bool tuple, jj_value v) {
    if (!tuple) {
        scope_set(r, s, names[0], v);
        return;
    }
    if (v.kind != JJ_LIST && v.kind != JJ_STR && v.kind != JJ_DICT) {
        clv_jj_error(r, at, CLV_ERR_TYPE, "cannot unpack non-iterable %s object", clv_jj_type_name(v));
        return;
    }
    jj_list *items;
    if (!clv_jj_iterate(r, at, v, &items)) return;
    if (items->n != n) {
        if (items->n < n)
            clv_jj_error(r, at, CLV_ERR_TYPE, "not enough values to unpack (expected %u, got %zu)", n, items->n);
        else
            clv_jj_error(r, at, CLV_ERR_TYPE, "too many values to unpack (expected %u)", n);
        return;
    }
    for (uint32_t i = 0; i < n; i++) scope_set(r, s, names[i], items->items[i]);
}

static void exec_for(jj_render *r, const jj_node *st) {
    jj_value seq = eval(r, st->a);
    jj_list *items;
    if (JJ_FAILED(r) || !clv_jj_iterate(r, st->a, seq, &items)) return;
    jj_scope *outer = r->scope;
    if (st->b) {
        /* `for x in xs if cond`: filter first, so loop.length and
         * loop.last count only the items kept. */
        jj_list *kept = clv_jj_list_new(r, items->n);
        if (!kept) return;
        size_t w = 0;
        jj_scope *s = NULL;
        for (size_t i = 0; i < items->n && !JJ_FAILED(r); i++) {
            s = scope_renew(r, s, outer);
            if (!s) break;
            r->scope = s;
            assign(r, st, s, st->names, st->n_names, st->flag, items->items[i]);
            if (clv_jj_truthy(eval(r, st->b))) kept->items[w++] = items->items[i];
            r->scope = outer;
        }
        kept->n = w;
        items = kept;
    }
    if (JJ_FAILED(r)) return;
    if (items->n == 0) {
        jj_scope *s = scope_new(r, outer);
        if (!s) return;
        r->scope = s;
        exec_body(r, st->kids2, st->n_kids2);
        r->scope = outer;
        return;
    }
    jj_loop *loop = clv_jj_ralloc(r, sizeof *loop);
    if (!loop) return;
    loop->items = items;
    loop->length = (int64_t)items->n;
    jj_value loopv = {.kind = JJ_LOOP};
    loopv.u.loop = loop;
    jj_scope *s = NULL;
    for (size_t i = 0; i < items->n; i++) {
        if (!tick(r, st)) break;
        s = scope_renew(r, s, outer);
        if (!s) break;
        r->scope = s;
        loop->index0 = (int64_t)i;
        scope_set(r, s, JJ_S("loop"), loopv);
        assign(r, st, s, st->names, st->n_names, st->flag, items->items[i]);
        exec_body(r, st->kids, st->n_kids);
        r->scope = outer;
        if (JJ_FAILED(r)) break;
        if (r->control == JC_BREAK) {
            r->control = JC_NONE;
            break;
        }
        r->control = JC_NONE;
    }
    r->scope = outer;
}

static void exec_stmt(jj_render *r, const jj_node *st) {
    switch (st->kind) {
    case JN_DATA:
        clv_strbuf_append(r->out, st->value.u.s.p, st->value.u.s.n);
        return;
    case JN_OUTPUT: {
        jj_value v = eval(r, st->a);
        if (!JJ_FAILED(r)) clv_jj_write_str(r, r->out, v);
        return;
    }
    case JN_IF: {
        jj_value test = eval(r, st->a);
        if (JJ_FAILED(r)) return;
        if (clv_jj_truthy(test)) exec_body(r, st->kids, st->n_kids);
        else exec_body(r, st->kids2, st->n_kids2);
        return;
    }
    case JN_FOR:
        exec_for(r, st);
        return;
    case JN_SET: {
        jj_value v = eval(r, st->a);
        if (!JJ_FAILED(r)) assign(r, st, r->scope, st->names, st->n_names, st->flag, v);
        return;
    }
    case JN_SET_NS:
    case JN_SET_BLOCK: {
        jj_value v;
        if (st->kind == JN_SET_NS) {
            v = eval(r, st->a);
        } else {
            v = jj_strv(capture(r, st->kids, st->n_kids));
            if (st->b && !JJ_FAILED(r)) v = apply_filters(r, st->b, v);
        }
        if (JJ_FAILED(r)) return;
        if (st->kind == JN_SET_BLOCK && !st->flag) {
            assign(r, st, r->scope, st->names, st->n_names, false, v);
            return;
        }
        jj_value ns = lookup(r, st->name);
        if (ns.kind != JJ_NS) {
            clv_jj_error(r, st, CLV_ERR_TYPE, "cannot assign attribute on non-namespace object '%.*s'",
                         (int)st->name.n, st->name.p);
            return;
        }
        jj_str key = st->names[0];
        if (key.n && key.p[0] == '_') {
            clv_jj_error(r, st, CLV_ERR_TYPE, "namespace attributes cannot start with an underscore");
            return;
        }
        jj_ns *n = ns.u.ns;
        for (size_t i = 0; i < n->n; i++) {
            if (jj_str_eq(n->keys[i], key)) {
                n->vals[i] = v;
                return;
            }
        }
        if (n->n == n->cap) {
            size_t cap = n->cap ? n->cap * 2 : 8;
            jj_str *keys = clv_jj_ralloc(r, cap * sizeof *keys);
            jj_value *vals = clv_jj_ralloc(r, cap * sizeof *vals);
            if (!keys || !vals) return;
            if (n->n) {
                memcpy(keys, n->keys, n->n * sizeof *keys);
                memcpy(vals, n->vals, n->n * sizeof *vals);
            }
            n->keys = keys;
            n->vals = vals;
            n->cap = cap;
        }
        n->keys[n->n] = key;
        n->vals[n->n++] = v;
        return;
    }
    case JN_MACRO: {
        jj_func *fn = clv_jj_ralloc(r, sizeof *fn);
        if (!fn) return;
        fn->kind = JF_MACRO;
        fn->name = st->name;
        fn->macro = st;
        fn->closure = r->scope;
        for (jj_scope *s = r->scope; s; s = s->parent) s->captured = true;
        jj_value v = {.kind = JJ_FUNC};
        v.u.fn = fn;
        scope_set(r, r->scope, st->name, v);
        return;
    }
    case JN_FILTER_BLOCK: {
        jj_value v = jj_strv(capture(r, st->kids, st->n_kids));
        if (!JJ_FAILED(r)) v = apply_filters(r, st->b, v);
        if (!JJ_FAILED(r)) clv_jj_write_str(r, r->out, v);
        return;
    }
    case JN_WITH:
    case JN_SCOPE: {
        jj_scope *outer = r->scope;
        jj_scope *s = scope_new(r, outer);
        if (!s) return;
        for (uint32_t i = 0; i < st->n_names && !JJ_FAILED(r); i++) {
            jj_value v = eval(r, st->kids2[i]);
            scope_set(r, s, st->names[i], v);
        }
        r->scope = s;
        exec_body(r, st->kids, st->n_kids);
        r->scope = outer;
        return;
    }
    case JN_BREAK:
        r->control = JC_BREAK;
        return;
    case JN_CONTINUE:
        r->control = JC_CONTINUE;
        return;
    default:
        clv_jj_error(r, st, CLV_ERR_FORMAT, "an expression where a statement belongs");
        return;
    }
}

static void exec_body(jj_render *r, jj_node *const *body, uint32_t n) {
    if (r->eval_depth >= MAX_EVAL_DEPTH) {
        clv_jj_error(r, n ? body[0] : NULL, CLV_ERR_RANGE, "blocks nest too deeply");
        return;
    }
    r->eval_depth++;
    for (uint32_t i = 0; i < n; i++) {
        if (!tick(r, body[i])) break;
        exec_stmt(r, body[i]);
        if (JJ_FAILED(r) || r->control != JC_NONE) break;
        if (r->out->failed) {
            if (r->out->over_limit)
                clv_jj_error(r, body[i], CLV_ERR_RANGE, "the output grew past its limit of %zu bytes",
                             r->max_output);
            else
                clv_jj_error(r, body[i], CLV_ERR_NOMEM, "out of memory writing the output");
            break;
        }
    }
    r->eval_depth--;
}

clv_status clv_jinja_render(const clv_jinja *t, const clv_json *vars,
                            const clv_jinja_render_params *params, clv_strbuf *out) {
    clv_jinja_render_params p = params ? *params : clv_jinja_default_render_params();
    if (!t || !out) return clv_fail(CLV_ERR_ARG, "jinja render: no template or output");
    if (vars && clv_json_kind_of(vars) != CLV_JSON_OBJECT)
        return clv_fail(CLV_ERR_ARG, "jinja render: variables must be a JSON object");
    jj_render r = {
        .out = out,
        .max_steps = p.max_steps,
        .max_call_depth = p.max_call_depth,
        .max_output = p.max_output,
        .now = p.now ? p.now : time(NULL),
    };
    r.arena.limit = p.max_memory;
    size_t saved_limit = out->limit;
    out->limit = out->len + p.max_output;
    r.globals = scope_new(&r, NULL);
    r.scope = r.globals;
    for (size_t i = 0; vars && i < clv_json_count(vars) && !JJ_FAILED(&r); i++) {
        size_t klen;
        const char *k = clv_json_key_at(vars, i, &klen);
        scope_set(&r, r.globals, (jj_str){k, klen}, clv_jj_from_json(&r, clv_json_value_at(vars, i)));
    }
    if (!JJ_FAILED(&r)) exec_body(&r, t->body, t->n_body);
    out->limit = saved_limit;
    if (out->failed && out->over_limit) out->failed = out->over_limit = false; /* our limit, reported */
    clv_jj_arena_free(&r.arena);
    return r.status;
}
