/* Jinja parser: tokens -> syntax tree. The grammar and its precedence follow
 * jinja2's parser (or < and < not < comparisons < + - < ~ < * / // % < ** <
 * unary < postfix, filters and tests), so templates parse as they do there. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jinja_internal.h"

#define MAX_NESTING 100 /* expression and statement nesting */

typedef struct parser {
    const jj_token *t;
    size_t n, pos;
    jj_arena *arena;
    int depth;
    int loop_depth; /* for break/continue */
    clv_status st;
} parser;

/* A growable array of node pointers, copied into the arena when done. */
typedef struct nodevec {
    jj_node **v;
    uint32_t n, cap;
} nodevec;

typedef struct namevec {
    jj_str *v;
    uint32_t n, cap;
} namevec;

static const jj_token *cur(parser *p) { return &p->t[p->pos]; }
static const jj_token *peek(parser *p, size_t k) {
    return p->pos + k < p->n ? &p->t[p->pos + k] : &p->t[p->n - 1];
}
static void next(parser *p) {
    if (p->pos + 1 < p->n) p->pos++;
}
static bool ok(parser *p) { return p->st == CLV_OK; }

static bool is_name(const jj_token *t, const char *name) {
    return t->kind == JT_NAME && jj_str_is(t->s, name);
}
static bool is_op(const jj_token *t, jj_op op) { return t->kind == JT_OP && t->op == op; }

static void describe(const jj_token *t, char *buf, size_t cap) {
    switch (t->kind) {
    case JT_EOF: snprintf(buf, cap, "end of template"); break;
    case JT_DATA: snprintf(buf, cap, "template data"); break;
    case JT_VAR_BEGIN: snprintf(buf, cap, "'{{'"); break;
    case JT_VAR_END: snprintf(buf, cap, "end of print statement '}}'"); break;
    case JT_BLOCK_BEGIN: snprintf(buf, cap, "'{%%'"); break;
    case JT_BLOCK_END: snprintf(buf, cap, "end of statement block '%%}'"); break;
    case JT_STRING: snprintf(buf, cap, "a string"); break;
    case JT_INT: case JT_FLOAT: snprintf(buf, cap, "a number"); break;
    default: snprintf(buf, cap, "'%.*s'", (int)(t->s.n > 40 ? 40 : t->s.n), t->s.p); break;
    }
}

static void perr(parser *p, const jj_token *at, clv_status st, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void perr(parser *p, const jj_token *at, clv_status st, const char *fmt, ...) {
    if (p->st != CLV_OK) return;
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    p->st = clv_fail(st, "template line %u, column %u: %s", at->line, at->col, msg);
}

static void unexpected(parser *p, const char *wanted) {
    char d[64];
    describe(cur(p), d, sizeof d);
    perr(p, cur(p), CLV_ERR_FORMAT, "expected %s, got %s", wanted, d);
}

static bool expect_op(parser *p, jj_op op, const char *what) {
    if (is_op(cur(p), op)) {
        next(p);
        return true;
    }
    unexpected(p, what);
    return false;
}

static bool expect_kind(parser *p, jj_tok_kind kind, const char *what) {
    if (cur(p)->kind == kind) {
        next(p);
        return true;
    }
    unexpected(p, what);
    return false;
}

static jj_node *node_new(parser *p, jj_node_kind kind, const jj_token *at) {
    jj_node *nd = clv_jj_alloc(p->arena, sizeof *nd);
    if (!nd) {
        perr(p, at, CLV_ERR_NOMEM, "out of memory");
        return NULL;
    }
    nd->kind = (uint8_t)kind;
    nd->line = at->line;
    nd->col = at->col;
    return nd;
}

static void vec_push(parser *p, nodevec *v, jj_node *nd) {
    if (!ok(p)) return;
    if (v->n == v->cap) {
        uint32_t cap = v->cap ? v->cap * 2 : 8;
        jj_node **nv = realloc(v->v, cap * sizeof *nv);
        if (!nv) {
            perr(p, cur(p), CLV_ERR_NOMEM, "out of memory");
            return;
        }
        v->v = nv;
        v->cap = cap;
    }
    v->v[v->n++] = nd;
}

/* Moves the vector into the arena; *n gets its length. */
static jj_node **vec_done(parser *p, nodevec *v, uint32_t *n) {
    jj_node **out = NULL;
    *n = 0;
    if (ok(p) && v->n) {
        out = clv_jj_alloc(p->arena, v->n * sizeof *out);
        if (out) {
            memcpy(out, v->v, v->n * sizeof *out);
            *n = v->n;
        } else {
            perr(p, cur(p), CLV_ERR_NOMEM, "out of memory");
        }
    }
    free(v->v);
    memset(v, 0, sizeof *v);
    return out;
}

static void names_push(parser *p, namevec *v, jj_str s) {
    if (!ok(p)) return;
    if (v->n == v->cap) {
        uint32_t cap = v->cap ? v->cap * 2 : 4;
        jj_str *nv = realloc(v->v, cap * sizeof *nv);
        if (!nv) {
            perr(p, cur(p), CLV_ERR_NOMEM, "out of memory");
            return;
        }
        v->v = nv;
        v->cap = cap;
    }
    v->v[v->n++] = s;
}

static jj_str *names_done(parser *p, namevec *v, uint32_t *n) {
    jj_str *out = NULL;
    *n = 0;
    if (ok(p) && v->n) {
        out = clv_jj_alloc(p->arena, v->n * sizeof *out);
        if (out) {
            memcpy(out, v->v, v->n * sizeof *out);
            *n = v->n;
        } else {
            perr(p, cur(p), CLV_ERR_NOMEM, "out of memory");
        }
    }
    free(v->v);
    memset(v, 0, sizeof *v);
    return out;
}

static bool enter(parser *p) {
    if (++p->depth > MAX_NESTING) {
        perr(p, cur(p), CLV_ERR_RANGE, "template nests deeper than %d levels", MAX_NESTING);
        return false;
    }
    return true;
}
static void leave(parser *p) { p->depth--; }

/* --- expressions ------------------------------------------------------------- */

static jj_node *parse_expression(parser *p, bool with_condexpr);
static jj_node *parse_unary(parser *p, bool with_filter);
static jj_node *parse_primary(parser *p);
static jj_node *parse_postfix(parser *p, jj_node *nd);

static const char *const tuple_end_none[] = {NULL};

static bool is_tuple_end(parser *p, const char *const *extra_end) {
    const jj_token *t = cur(p);
    if (t->kind == JT_VAR_END || t->kind == JT_BLOCK_END || t->kind == JT_EOF || is_op(t, JO_RPAREN))
        return true;
    for (; extra_end && *extra_end; extra_end++)
        if (is_name(t, *extra_end)) return true;
    return false;
}

/* Comma-separated expressions: a tuple when there is a comma. `simplified`
 * parses assignment targets (names, and ns.attr when with_namespace). */
static jj_node *parse_tuple(parser *p, bool simplified, bool with_condexpr,
                            const char *const *extra_end, bool explicit_parens) {
    const jj_token *start = cur(p);
    nodevec items = {0};
    bool is_tuple = false;
    while (ok(p)) {
        if (items.n && !expect_op(p, JO_COMMA, "','")) break;
        if (is_tuple_end(p, extra_end)) break;
        jj_node *e = simplified ? parse_primary(p) : parse_expression(p, with_condexpr);
        if (!e) break;
        vec_push(p, &items, e);
        if (is_op(cur(p), JO_COMMA)) is_tuple = true;
        else break;
    }
    if (!ok(p)) {
        free(items.v);
        return NULL;
    }
    if (!is_tuple) {
        if (items.n) {
            jj_node *only = items.v[0];
            free(items.v);
            return only;
        }
        if (!explicit_parens) {
            free(items.v);
            unexpected(p, "an expression");
            return NULL;
        }
    }
    jj_node *nd = node_new(p, JN_TUPLE, start);
    if (nd) nd->kids = vec_done(p, &items, &nd->n_kids);
    else free(items.v);
    return nd;
}

static jj_node *parse_list(parser *p) {
    jj_node *nd = node_new(p, JN_LIST, cur(p));
    next(p); /* [ */
    nodevec items = {0};
    while (ok(p) && !is_op(cur(p), JO_RBRACKET)) {
        if (items.n && !expect_op(p, JO_COMMA, "','")) break;
        if (is_op(cur(p), JO_RBRACKET)) break;
        vec_push(p, &items, parse_expression(p, true));
    }
    expect_op(p, JO_RBRACKET, "']'");
    if (nd) nd->kids = vec_done(p, &items, &nd->n_kids);
    else free(items.v);
    return ok(p) ? nd : NULL;
}

static jj_node *parse_dict(parser *p) {
    jj_node *nd = node_new(p, JN_DICT, cur(p));
    next(p); /* { */
    nodevec keys = {0}, vals = {0};
    while (ok(p) && !is_op(cur(p), JO_RBRACE)) {
        if (keys.n && !expect_op(p, JO_COMMA, "','")) break;
        if (is_op(cur(p), JO_RBRACE)) break;
        vec_push(p, &keys, parse_expression(p, true));
        if (!expect_op(p, JO_COLON, "':'")) break;
        vec_push(p, &vals, parse_expression(p, true));
    }
    expect_op(p, JO_RBRACE, "'}'");
    if (nd) {
        nd->kids = vec_done(p, &keys, &nd->n_kids);
        nd->kids2 = vec_done(p, &vals, &nd->n_kids2);
    } else {
        free(keys.v);
        free(vals.v);
    }
    return ok(p) ? nd : NULL;
}

static jj_node *parse_primary(parser *p) {
    const jj_token *t = cur(p);
    jj_node *nd = NULL;
    if (!enter(p)) return NULL;
    switch (t->kind) {
    case JT_NAME:
        next(p);
        if (jj_str_is(t->s, "true") || jj_str_is(t->s, "True") || jj_str_is(t->s, "false") ||
            jj_str_is(t->s, "False")) {
            nd = node_new(p, JN_CONST, t);
            if (nd) nd->value = jj_bool(t->s.p[0] == 't' || t->s.p[0] == 'T');
        } else if (jj_str_is(t->s, "none") || jj_str_is(t->s, "None")) {
            nd = node_new(p, JN_CONST, t);
            if (nd) nd->value = jj_none();
        } else {
            nd = node_new(p, JN_NAME, t);
            if (nd) nd->name = t->s;
        }
        break;
    case JT_STRING: {
        /* Adjacent literals concatenate, as in Python. */
        next(p);
        jj_str s = t->s;
        if (cur(p)->kind == JT_STRING) {
            size_t total = s.n;
            for (size_t k = p->pos; p->t[k].kind == JT_STRING; k++) total += p->t[k].s.n;
            char *buf = clv_jj_alloc(p->arena, total + 1);
            if (!buf) {
                perr(p, t, CLV_ERR_NOMEM, "out of memory");
                break;
            }
            memcpy(buf, s.p, s.n);
            size_t w = s.n;
            while (cur(p)->kind == JT_STRING) {
                memcpy(buf + w, cur(p)->s.p, cur(p)->s.n);
                w += cur(p)->s.n;
                next(p);
            }
            s = (jj_str){buf, w};
        }
        nd = node_new(p, JN_CONST, t);
        if (nd) nd->value = jj_strv(s);
        break;
    }
    case JT_INT:
        if (t->big) {
            perr(p, t, CLV_ERR_UNSUPPORTED, "integer literal larger than 64 bits");
            break;
        }
        next(p);
        nd = node_new(p, JN_CONST, t);
        if (nd) nd->value = jj_int(t->i);
        break;
    case JT_FLOAT:
        next(p);
        nd = node_new(p, JN_CONST, t);
        if (nd) nd->value = jj_float(t->f);
        break;
    case JT_OP:
        if (t->op == JO_LPAREN) {
            next(p);
            nd = parse_tuple(p, false, true, tuple_end_none, true);
            if (!expect_op(p, JO_RPAREN, "')'")) nd = NULL;
            break;
        }
        if (t->op == JO_LBRACKET) {
            nd = parse_list(p);
            break;
        }
        if (t->op == JO_LBRACE) {
            nd = parse_dict(p);
            break;
        }
        /* fall through */
    default: {
        char d[64];
        describe(t, d, sizeof d);
        perr(p, t, CLV_ERR_FORMAT, "unexpected %s", d);
        break;
    }
    }
    leave(p);
    return ok(p) ? nd : NULL;
}

/* (args, name=value, *args, **kwargs) after a callee, filter or test. */
static void parse_call_args(parser *p, jj_node *nd) {
    const jj_token *open = cur(p);
    if (!expect_op(p, JO_LPAREN, "'('")) return;
    nodevec args = {0}, kwvals = {0};
    namevec kwnames = {0};
    bool need_comma = false;
    while (ok(p) && !is_op(cur(p), JO_RPAREN)) {
        if (need_comma) {
            if (!expect_op(p, JO_COMMA, "','")) break;
            if (is_op(cur(p), JO_RPAREN)) break;
        }
        if (is_op(cur(p), JO_MUL)) {
            if (nd->c || nd->d) {
                perr(p, open, CLV_ERR_FORMAT, "invalid syntax for function call expression");
                break;
            }
            next(p);
            nd->c = parse_expression(p, true);
        } else if (is_op(cur(p), JO_POW)) {
            if (nd->d) {
                perr(p, open, CLV_ERR_FORMAT, "invalid syntax for function call expression");
                break;
            }
            next(p);
            nd->d = parse_expression(p, true);
        } else if (cur(p)->kind == JT_NAME && is_op(peek(p, 1), JO_ASSIGN)) {
            if (nd->d) {
                perr(p, open, CLV_ERR_FORMAT, "invalid syntax for function call expression");
                break;
            }
            jj_str key = cur(p)->s;
            next(p);
            next(p);
            names_push(p, &kwnames, key);
            vec_push(p, &kwvals, parse_expression(p, true));
        } else {
            if (nd->c || nd->d || kwnames.n) {
                perr(p, open, CLV_ERR_FORMAT, "positional argument after keyword arguments");
                break;
            }
            vec_push(p, &args, parse_expression(p, true));
        }
        need_comma = true;
    }
    expect_op(p, JO_RPAREN, "')'");
    nd->kids = vec_done(p, &args, &nd->n_kids);
    nd->kids2 = vec_done(p, &kwvals, &nd->n_kids2);
    nd->names = names_done(p, &kwnames, &nd->n_names);
}

static jj_node *parse_call(parser *p, jj_node *callee) {
    jj_node *nd = node_new(p, JN_CALL, cur(p));
    if (!nd) return NULL;
    nd->a = callee;
    parse_call_args(p, nd);
    return ok(p) ? nd : NULL;
}

/* [expr] or [start:stop:step] after nd. */
static jj_node *parse_subscripted(parser *p) {
    const jj_token *t = cur(p);
    jj_node *start = NULL, *stop = NULL, *step = NULL;
    if (!is_op(t, JO_COLON)) {
        jj_node *e = parse_expression(p, true);
        if (!e || !is_op(cur(p), JO_COLON)) return e;
        start = e;
    }
    next(p); /* : */
    if (!is_op(cur(p), JO_COLON) && !is_op(cur(p), JO_RBRACKET) && !is_op(cur(p), JO_COMMA))
        stop = parse_expression(p, true);
    if (is_op(cur(p), JO_COLON)) {
        next(p);
        if (!is_op(cur(p), JO_RBRACKET) && !is_op(cur(p), JO_COMMA)) step = parse_expression(p, true);
    }
    jj_node *nd = node_new(p, JN_SLICE, t);
    if (nd) {
        nd->a = start;
        nd->b = stop;
        nd->c = step;
    }
    return ok(p) ? nd : NULL;
}

static jj_node *parse_subscript(parser *p, jj_node *obj) {
    const jj_token *t = cur(p);
    next(p);
    if (t->op == JO_DOT) {
        const jj_token *a = cur(p);
        if (a->kind == JT_NAME) {
            next(p);
            jj_node *nd = node_new(p, JN_GETATTR, t);
            if (nd) {
                nd->a = obj;
                nd->name = a->s;
            }
            return nd;
        }
        if (a->kind != JT_INT || a->big) {
            unexpected(p, "a name or number after '.'");
            return NULL;
        }
        next(p);
        jj_node *idx = node_new(p, JN_CONST, a);
        jj_node *nd = node_new(p, JN_GETITEM, t);
        if (!idx || !nd) return NULL;
        idx->value = jj_int(a->i);
        nd->a = obj;
        nd->b = idx;
        return nd;
    }
    /* [ ... ]: several comma-separated subscripts make a tuple key. */
    nodevec args = {0};
    while (ok(p) && !is_op(cur(p), JO_RBRACKET)) {
        if (args.n && !expect_op(p, JO_COMMA, "','")) break;
        vec_push(p, &args, parse_subscripted(p));
    }
    expect_op(p, JO_RBRACKET, "']'");
    if (!ok(p)) {
        free(args.v);
        return NULL;
    }
    if (args.n == 0) {
        free(args.v);
        perr(p, t, CLV_ERR_FORMAT, "expected a subscript expression");
        return NULL;
    }
    jj_node *nd = node_new(p, JN_GETITEM, t);
    if (!nd) {
        free(args.v);
        return NULL;
    }
    nd->a = obj;
    if (args.n == 1) {
        nd->b = args.v[0];
        free(args.v);
    } else {
        jj_node *tup = node_new(p, JN_TUPLE, t);
        if (!tup) {
            free(args.v);
            return NULL;
        }
        tup->kids = vec_done(p, &args, &tup->n_kids);
        nd->b = tup;
    }
    return ok(p) ? nd : NULL;
}

static jj_node *parse_postfix(parser *p, jj_node *nd) {
    while (ok(p) && nd) {
        const jj_token *t = cur(p);
        if (is_op(t, JO_DOT) || is_op(t, JO_LBRACKET)) nd = parse_subscript(p, nd);
        else if (is_op(t, JO_LPAREN)) nd = parse_call(p, nd);
        else break;
    }
    return ok(p) ? nd : NULL;
}

/* A dotted filter or test name. */
static jj_str parse_dotted_name(parser *p) {
    const jj_token *t = cur(p);
    if (t->kind != JT_NAME) {
        unexpected(p, "a name");
        return (jj_str){0};
    }
    next(p);
    jj_str name = t->s;
    while (ok(p) && is_op(cur(p), JO_DOT)) {
        next(p);
        if (cur(p)->kind != JT_NAME) {
            unexpected(p, "a name");
            break;
        }
        /* Names come from the contiguous source, but spacing may differ; copy. */
        jj_str part = cur(p)->s;
        char *buf = clv_jj_alloc(p->arena, name.n + 1 + part.n);
        if (!buf) {
            perr(p, t, CLV_ERR_NOMEM, "out of memory");
            break;
        }
        memcpy(buf, name.p, name.n);
        buf[name.n] = '.';
        memcpy(buf + name.n + 1, part.p, part.n);
        name = (jj_str){buf, name.n + 1 + part.n};
        next(p);
    }
    return name;
}

/* One or more |filter(args) applied to nd (NULL for filter blocks). */
static jj_node *parse_filters(parser *p, jj_node *nd, bool start_inline) {
    while (ok(p) && (is_op(cur(p), JO_PIPE) || start_inline)) {
        if (!start_inline) next(p);
        start_inline = false;
        const jj_token *t = cur(p);
        jj_str name = parse_dotted_name(p);
        if (!ok(p)) return NULL;
        if (!clv_jj_filter_known(name)) {
            perr(p, t, CLV_ERR_UNSUPPORTED, "no filter named '%.*s'", (int)name.n, name.p);
            return NULL;
        }
        jj_node *f = node_new(p, JN_FILTER, t);
        if (!f) return NULL;
        f->a = nd;
        f->name = name;
        if (is_op(cur(p), JO_LPAREN)) parse_call_args(p, f);
        nd = f;
    }
    return ok(p) ? nd : NULL;
}

static jj_node *parse_test(parser *p, jj_node *operand) {
    const jj_token *is_tok = cur(p);
    next(p); /* is */
    bool negated = false;
    if (is_name(cur(p), "not")) {
        next(p);
        negated = true;
    }
    const jj_token *t = cur(p);
    jj_str name = parse_dotted_name(p);
    if (!ok(p)) return NULL;
    if (!clv_jj_test_known(name)) {
        perr(p, t, CLV_ERR_UNSUPPORTED, "no test named '%.*s'", (int)name.n, name.p);
        return NULL;
    }
    jj_node *nd = node_new(p, JN_TEST, is_tok);
    if (!nd) return NULL;
    nd->a = operand;
    nd->name = name;
    const jj_token *c = cur(p);
    if (is_op(c, JO_LPAREN)) {
        parse_call_args(p, nd);
    } else if ((c->kind == JT_NAME || c->kind == JT_STRING || c->kind == JT_INT ||
                c->kind == JT_FLOAT || is_op(c, JO_LBRACKET) || is_op(c, JO_LBRACE)) &&
               !is_name(c, "else") && !is_name(c, "or") && !is_name(c, "and")) {
        /* One argument without parentheses: `x is divisibleby 3`. */
        if (is_name(c, "is")) {
            perr(p, c, CLV_ERR_FORMAT, "cannot chain multiple tests with 'is'");
            return NULL;
        }
        jj_node *arg = parse_postfix(p, parse_primary(p));
        if (!arg) return NULL;
        nd->kids = clv_jj_alloc(p->arena, sizeof *nd->kids);
        if (!nd->kids) {
            perr(p, c, CLV_ERR_NOMEM, "out of memory");
            return NULL;
        }
        nd->kids[0] = arg;
        nd->n_kids = 1;
    }
    if (!ok(p)) return NULL;
    if (negated) {
        jj_node *n = node_new(p, JN_NOT, is_tok);
        if (n) n->a = nd;
        return n;
    }
    return nd;
}

static jj_node *parse_filter_expr(parser *p, jj_node *nd) {
    while (ok(p) && nd) {
        const jj_token *t = cur(p);
        if (is_op(t, JO_PIPE)) nd = parse_filters(p, nd, false);
        else if (is_name(t, "is")) nd = parse_test(p, nd);
        else if (is_op(t, JO_LPAREN)) nd = parse_call(p, nd);
        else break;
    }
    return ok(p) ? nd : NULL;
}

static jj_node *parse_unary(parser *p, bool with_filter) {
    const jj_token *t = cur(p);
    jj_node *nd;
    if (!enter(p)) return NULL;
    if (is_op(t, JO_SUB) || is_op(t, JO_ADD)) {
        next(p);
        jj_node *operand = parse_unary(p, false);
        nd = operand ? node_new(p, t->op == JO_SUB ? JN_NEG : JN_POS, t) : NULL;
        if (nd) nd->a = operand;
    } else {
        nd = parse_primary(p);
    }
    nd = parse_postfix(p, nd);
    if (with_filter) nd = parse_filter_expr(p, nd);
    leave(p);
    return ok(p) ? nd : NULL;
}

static jj_node *binop(parser *p, const jj_token *at, jj_node_kind kind, jj_op op, jj_node *a,
                      jj_node *b) {
    if (!a || !b) return NULL;
    jj_node *nd = node_new(p, kind, at);
    if (nd) {
        nd->op = (uint8_t)op;
        nd->a = a;
        nd->b = b;
    }
    return nd;
}

static jj_node *parse_pow(parser *p) {
    jj_node *left = parse_unary(p, true);
    while (ok(p) && left && is_op(cur(p), JO_POW)) {
        const jj_token *t = cur(p);
        next(p);
        left = binop(p, t, JN_BINOP, JO_POW, left, parse_unary(p, true));
    }
    return ok(p) ? left : NULL;
}

static jj_node *parse_math2(parser *p) {
    jj_node *left = parse_pow(p);
    while (ok(p) && left) {
        const jj_token *t = cur(p);
        if (!(is_op(t, JO_MUL) || is_op(t, JO_DIV) || is_op(t, JO_FLOORDIV) || is_op(t, JO_MOD))) break;
        next(p);
        left = binop(p, t, JN_BINOP, (jj_op)t->op, left, parse_pow(p));
    }
    return ok(p) ? left : NULL;
}

static jj_node *parse_concat(parser *p) {
    const jj_token *t = cur(p);
    jj_node *first = parse_math2(p);
    if (!first || !is_op(cur(p), JO_TILDE)) return first;
    nodevec parts = {0};
    vec_push(p, &parts, first);
    while (ok(p) && is_op(cur(p), JO_TILDE)) {
        next(p);
        vec_push(p, &parts, parse_math2(p));
    }
    jj_node *nd = node_new(p, JN_CONCAT, t);
    if (nd) nd->kids = vec_done(p, &parts, &nd->n_kids);
    else free(parts.v);
    return ok(p) ? nd : NULL;
}

static jj_node *parse_math1(parser *p) {
    jj_node *left = parse_concat(p);
    while (ok(p) && left && (is_op(cur(p), JO_ADD) || is_op(cur(p), JO_SUB))) {
        const jj_token *t = cur(p);
        next(p);
        left = binop(p, t, JN_BINOP, (jj_op)t->op, left, parse_concat(p));
    }
    return ok(p) ? left : NULL;
}

static jj_node *parse_compare(parser *p) {
    const jj_token *start = cur(p);
    jj_node *first = parse_math1(p);
    if (!first) return NULL;
    nodevec operands = {0};
    uint8_t ops[64];
    uint32_t n_ops = 0;
    while (ok(p)) {
        const jj_token *t = cur(p);
        jj_op op;
        if (t->kind == JT_OP && (t->op == JO_EQ || t->op == JO_NE || t->op == JO_LT ||
                                 t->op == JO_LTEQ || t->op == JO_GT || t->op == JO_GTEQ)) {
            op = (jj_op)t->op;
            next(p);
        } else if (is_name(t, "in")) {
            op = JO_IN;
            next(p);
        } else if (is_name(t, "not") && is_name(peek(p, 1), "in")) {
            op = JO_NOTIN;
            next(p);
            next(p);
        } else {
            break;
        }
        if (n_ops == sizeof ops) {
            perr(p, t, CLV_ERR_RANGE, "comparison chain too long");
            break;
        }
        ops[n_ops++] = (uint8_t)op;
        vec_push(p, &operands, parse_math1(p));
    }
    if (!ok(p)) {
        free(operands.v);
        return NULL;
    }
    if (!n_ops) return first;
    jj_node *nd = node_new(p, JN_COMPARE, start);
    uint8_t *o = clv_jj_alloc(p->arena, n_ops);
    if (!nd || !o) {
        free(operands.v);
        perr(p, start, CLV_ERR_NOMEM, "out of memory");
        return NULL;
    }
    memcpy(o, ops, n_ops);
    nd->a = first;
    nd->ops = o;
    nd->kids = vec_done(p, &operands, &nd->n_kids);
    return ok(p) ? nd : NULL;
}

static jj_node *parse_not(parser *p) {
    const jj_token *t = cur(p);
    if (is_name(t, "not")) {
        next(p);
        if (!enter(p)) return NULL;
        jj_node *operand = parse_not(p);
        leave(p);
        jj_node *nd = operand ? node_new(p, JN_NOT, t) : NULL;
        if (nd) nd->a = operand;
        return nd;
    }
    return parse_compare(p);
}

static jj_node *parse_and(parser *p) {
    jj_node *left = parse_not(p);
    while (ok(p) && left && is_name(cur(p), "and")) {
        const jj_token *t = cur(p);
        next(p);
        left = binop(p, t, JN_AND, JO_NONE, left, parse_not(p));
    }
    return ok(p) ? left : NULL;
}

static jj_node *parse_or(parser *p) {
    jj_node *left = parse_and(p);
    while (ok(p) && left && is_name(cur(p), "or")) {
        const jj_token *t = cur(p);
        next(p);
        left = binop(p, t, JN_OR, JO_NONE, left, parse_and(p));
    }
    return ok(p) ? left : NULL;
}

static jj_node *parse_condexpr(parser *p) {
    jj_node *expr = parse_or(p);
    while (ok(p) && expr && is_name(cur(p), "if")) {
        const jj_token *t = cur(p);
        next(p);
        jj_node *test = parse_or(p);
        jj_node *other = NULL;
        if (ok(p) && is_name(cur(p), "else")) {
            next(p);
            if (!enter(p)) return NULL;
            other = parse_condexpr(p);
            leave(p);
        }
        if (!ok(p)) return NULL;
        jj_node *nd = node_new(p, JN_COND, t);
        if (!nd) return NULL;
        nd->a = test;
        nd->b = expr;
        nd->c = other;
        expr = nd;
    }
    return ok(p) ? expr : NULL;
}

static jj_node *parse_expression(parser *p, bool with_condexpr) {
    return with_condexpr ? parse_condexpr(p) : parse_or(p);
}

/* --- statements -------------------------------------------------------------- */

static jj_node **subparse(parser *p, const char *const *end_tags, uint32_t *n, const char *opener);

/* Ends the current tag: expects '%}'. */
static bool end_tag(parser *p) { return expect_kind(p, JT_BLOCK_END, "end of statement block '%}'"); }

/* The body of a block up to one of end_tags; leaves the end tag's name current. */
static jj_node **parse_body(parser *p, const char *const *end_tags, uint32_t *n, const char *opener) {
    if (is_op(cur(p), JO_COLON)) next(p); /* Python-style `{% for x in y: %}` */
    if (!end_tag(p)) return NULL;
    if (!enter(p)) return NULL;
    jj_node **body = subparse(p, end_tags, n, opener);
    leave(p);
    return body;
}

/* Assignment targets: a name, ns.attr (when with_ns), or names separated by commas. */
static void parse_targets(parser *p, jj_node *nd, bool with_ns, const char *const *extra_end) {
    namevec names = {0};
    bool tuple = false;
    while (ok(p)) {
        if (names.n) {
            if (!expect_op(p, JO_COMMA, "','")) break;
            tuple = true;
        }
        if (is_tuple_end(p, extra_end) || is_op(cur(p), JO_ASSIGN) || is_op(cur(p), JO_PIPE)) break;
        const jj_token *t = cur(p);
        if (t->kind != JT_NAME) {
            unexpected(p, "a variable name to assign to");
            break;
        }
        if (jj_str_is(t->s, "true") || jj_str_is(t->s, "false") || jj_str_is(t->s, "none") ||
            jj_str_is(t->s, "True") || jj_str_is(t->s, "False") || jj_str_is(t->s, "None")) {
            perr(p, t, CLV_ERR_FORMAT, "cannot assign to a constant");
            break;
        }
        next(p);
        if (with_ns && !names.n && is_op(cur(p), JO_DOT)) {
            next(p);
            if (cur(p)->kind != JT_NAME) {
                unexpected(p, "an attribute name");
                break;
            }
            nd->name = t->s;
            names_push(p, &names, cur(p)->s);
            next(p);
            nd->flag = true; /* namespace target */
            if (is_op(cur(p), JO_COMMA)) {
                perr(p, t, CLV_ERR_UNSUPPORTED, "namespace attributes inside tuple assignments");
            }
            break;
        }
        names_push(p, &names, t->s);
        if (!is_op(cur(p), JO_COMMA)) break;
    }
    if (ok(p) && names.n == 0) unexpected(p, "a variable name to assign to");
    bool ns = nd->flag;
    nd->names = names_done(p, &names, &nd->n_names);
    nd->flag = ns ? true : tuple;
}

static jj_node *parse_for(parser *p, const jj_token *tag) {
    jj_node *nd = node_new(p, JN_FOR, tag);
    if (!nd) return NULL;
    static const char *const in_end[] = {"in", NULL};
    parse_targets(p, nd, false, in_end);
    if (!ok(p)) return NULL;
    if (!is_name(cur(p), "in")) {
        unexpected(p, "'in'");
        return NULL;
    }
    next(p);
    static const char *const rec_end[] = {"recursive", NULL};
    nd->a = parse_tuple(p, false, false, rec_end, false);
    if (ok(p) && is_name(cur(p), "if")) {
        next(p);
        nd->b = parse_expression(p, true);
    }
    if (ok(p) && is_name(cur(p), "recursive")) {
        perr(p, cur(p), CLV_ERR_UNSUPPORTED, "recursive for loops are not supported");
        return NULL;
    }
    static const char *const body_end[] = {"endfor", "else", NULL};
    static const char *const else_end[] = {"endfor", NULL};
    p->loop_depth++;
    nd->kids = parse_body(p, body_end, &nd->n_kids, "for");
    p->loop_depth--;
    if (!ok(p)) return NULL;
    if (is_name(cur(p), "else")) {
        next(p);
        nd->kids2 = parse_body(p, else_end, &nd->n_kids2, "for");
        if (!ok(p)) return NULL;
    }
    next(p); /* endfor; its '%}' is checked by the caller */
    return nd;
}

static jj_node *parse_if(parser *p, const jj_token *tag) {
    jj_node *nd = node_new(p, JN_IF, tag);
    if (!nd) return NULL;
    nd->a = parse_tuple(p, false, false, tuple_end_none, false);
    static const char *const if_end[] = {"elif", "else", "endif", NULL};
    static const char *const else_end[] = {"endif", NULL};
    nd->kids = parse_body(p, if_end, &nd->n_kids, "if");
    if (!ok(p)) return NULL;
    if (is_name(cur(p), "elif")) {
        /* elif: an if nested in the else branch, sharing the one endif. */
        const jj_token *t = cur(p);
        next(p);
        if (!enter(p)) return NULL;
        jj_node *inner = parse_if(p, t);
        leave(p);
        if (!inner) return NULL;
        nd->kids2 = clv_jj_alloc(p->arena, sizeof *nd->kids2);
        if (!nd->kids2) {
            perr(p, t, CLV_ERR_NOMEM, "out of memory");
            return NULL;
        }
        nd->kids2[0] = inner;
        nd->n_kids2 = 1;
        return nd;
    }
    if (is_name(cur(p), "else")) {
        next(p);
        nd->kids2 = parse_body(p, else_end, &nd->n_kids2, "if");
        if (!ok(p)) return NULL;
    }
    next(p); /* endif */
    return nd;
}

static jj_node *parse_set(parser *p, const jj_token *tag) {
    jj_node *nd = node_new(p, JN_SET, tag);
    if (!nd) return NULL;
    parse_targets(p, nd, true, tuple_end_none);
    if (!ok(p)) return NULL;
    bool ns = nd->flag && nd->name.n;
    if (is_op(cur(p), JO_ASSIGN)) {
        next(p);
        nd->a = parse_tuple(p, false, true, tuple_end_none, false);
        if (ns) {
            nd->kind = JN_SET_NS;
            nd->flag = false;
        }
        return ok(p) ? nd : NULL;
    }
    /* {% set x | filter %}...{% endset %} */
    if (nd->flag && !ns) {
        unexpected(p, "'='");
        return NULL;
    }
    nd->kind = JN_SET_BLOCK;
    nd->flag = ns;
    if (is_op(cur(p), JO_PIPE)) nd->b = parse_filters(p, NULL, false);
    static const char *const end[] = {"endset", NULL};
    nd->kids = parse_body(p, end, &nd->n_kids, "set");
    if (!ok(p)) return NULL;
    next(p);
    return nd;
}

static jj_node *parse_macro(parser *p, const jj_token *tag) {
    jj_node *nd = node_new(p, JN_MACRO, tag);
    if (!nd) return NULL;
    if (cur(p)->kind != JT_NAME) {
        unexpected(p, "a macro name");
        return NULL;
    }
    nd->name = cur(p)->s;
    next(p);
    if (!expect_op(p, JO_LPAREN, "'('")) return NULL;
    namevec params = {0};
    nodevec defaults = {0};
    bool any_default = false;
    while (ok(p) && !is_op(cur(p), JO_RPAREN)) {
        if (params.n && !expect_op(p, JO_COMMA, "','")) break;
        if (cur(p)->kind != JT_NAME) {
            unexpected(p, "a parameter name");
            break;
        }
        names_push(p, &params, cur(p)->s);
        next(p);
        if (is_op(cur(p), JO_ASSIGN)) {
            next(p);
            vec_push(p, &defaults, parse_expression(p, true));
            any_default = true;
        } else if (any_default) {
            perr(p, cur(p), CLV_ERR_FORMAT, "non-default argument follows default argument");
        } else {
            vec_push(p, &defaults, NULL);
        }
    }
    expect_op(p, JO_RPAREN, "')'");
    nd->names = names_done(p, &params, &nd->n_names);
    nd->kids2 = vec_done(p, &defaults, &nd->n_kids2);
    static const char *const end[] = {"endmacro", NULL};
    int saved_loops = p->loop_depth;
    p->loop_depth = 0; /* a macro body is a function: break cannot leave it */
    nd->kids = parse_body(p, end, &nd->n_kids, "macro");
    p->loop_depth = saved_loops;
    if (!ok(p)) return NULL;
    next(p);
    if (cur(p)->kind == JT_NAME && jj_str_eq(cur(p)->s, nd->name)) next(p); /* {% endmacro name %} */
    return nd;
}

static jj_node *parse_filter_block(parser *p, const jj_token *tag) {
    jj_node *nd = node_new(p, JN_FILTER_BLOCK, tag);
    if (!nd) return NULL;
    nd->b = parse_filters(p, NULL, true);
    static const char *const end[] = {"endfilter", NULL};
    nd->kids = parse_body(p, end, &nd->n_kids, "filter");
    if (!ok(p)) return NULL;
    next(p);
    return nd;
}

static jj_node *parse_with(parser *p, const jj_token *tag) {
    jj_node *nd = node_new(p, JN_WITH, tag);
    if (!nd) return NULL;
    namevec names = {0};
    nodevec vals = {0};
    while (ok(p) && cur(p)->kind != JT_BLOCK_END) {
        if (names.n && !expect_op(p, JO_COMMA, "','")) break;
        if (cur(p)->kind != JT_NAME) {
            unexpected(p, "a variable name");
            break;
        }
        names_push(p, &names, cur(p)->s);
        next(p);
        if (!expect_op(p, JO_ASSIGN, "'='")) break;
        vec_push(p, &vals, parse_expression(p, true));
    }
    nd->names = names_done(p, &names, &nd->n_names);
    nd->kids2 = vec_done(p, &vals, &nd->n_kids2);
    static const char *const end[] = {"endwith", NULL};
    nd->kids = parse_body(p, end, &nd->n_kids, "with");
    if (!ok(p)) return NULL;
    next(p);
    return nd;
}

static jj_node *parse_statement(parser *p) {
    const jj_token *t = cur(p);
    if (t->kind != JT_NAME) {
        unexpected(p, "a tag name");
        return NULL;
    }
    next(p);
    if (jj_str_is(t->s, "for")) return parse_for(p, t);
    if (jj_str_is(t->s, "if")) return parse_if(p, t);
    if (jj_str_is(t->s, "set")) return parse_set(p, t);
    if (jj_str_is(t->s, "macro")) return parse_macro(p, t);
    if (jj_str_is(t->s, "filter")) return parse_filter_block(p, t);
    if (jj_str_is(t->s, "with")) return parse_with(p, t);
    if (jj_str_is(t->s, "print")) {
        jj_node *nd = node_new(p, JN_OUTPUT, t);
        if (nd) nd->a = parse_tuple(p, false, true, tuple_end_none, false);
        return ok(p) ? nd : NULL;
    }
    if (jj_str_is(t->s, "break") || jj_str_is(t->s, "continue")) {
        if (p->loop_depth == 0) {
            perr(p, t, CLV_ERR_FORMAT, "'%.*s' outside a for loop", (int)t->s.n, t->s.p);
            return NULL;
        }
        return node_new(p, t->s.p[0] == 'b' ? JN_BREAK : JN_CONTINUE, t);
    }
    if (jj_str_is(t->s, "generation")) {
        /* transformers' marker of assistant text: renders its body. */
        jj_node *nd = node_new(p, JN_SCOPE, t);
        static const char *const end[] = {"endgeneration", NULL};
        if (nd) nd->kids = parse_body(p, end, &nd->n_kids, "generation");
        if (!ok(p)) return NULL;
        next(p);
        return nd;
    }
    static const char *const unsupported[] = {"call", "block", "extends", "include", "import",
                                              "from", "autoescape", NULL};
    for (const char *const *u = unsupported; *u; u++) {
        if (jj_str_is(t->s, *u)) {
            perr(p, t, CLV_ERR_UNSUPPORTED, "the '%s' tag is not supported", *u);
            return NULL;
        }
    }
    perr(p, t, CLV_ERR_FORMAT, "unknown tag '%.*s'", (int)(t->s.n > 40 ? 40 : t->s.n), t->s.p);
    return NULL;
}

/* The tag that closes a block, for messages: "endfor" rather than "else". */
static const char *closing_tag(const char *const *end_tags) {
    for (const char *const *e = end_tags; *e; e++)
        if (!strncmp(*e, "end", 3)) return *e;
    return end_tags[0];
}

/* Template data, {{ }} and {% %} until one of end_tags (NULL: the end). */
static jj_node **subparse(parser *p, const char *const *end_tags, uint32_t *n, const char *opener) {
    nodevec body = {0};
    *n = 0;
    while (ok(p)) {
        const jj_token *t = cur(p);
        if (t->kind == JT_EOF) {
            if (end_tags) {
                perr(p, t, CLV_ERR_FORMAT, "unexpected end of template: the '%s' block was not closed (expected '{%% %s %%}')",
                     opener, closing_tag(end_tags));
            }
            break;
        }
        if (t->kind == JT_DATA) {
            jj_node *nd = node_new(p, JN_DATA, t);
            if (nd) nd->value = jj_strv(t->s);
            vec_push(p, &body, nd);
            next(p);
        } else if (t->kind == JT_VAR_BEGIN) {
            next(p);
            jj_node *nd = node_new(p, JN_OUTPUT, t);
            if (nd) nd->a = parse_tuple(p, false, true, tuple_end_none, false);
            expect_kind(p, JT_VAR_END, "end of print statement '}}'");
            vec_push(p, &body, nd);
        } else if (t->kind == JT_BLOCK_BEGIN) {
            next(p);
            const jj_token *name = cur(p);
            bool is_end = false;
            for (const char *const *e = end_tags; e && *e; e++)
                if (is_name(name, *e)) is_end = true;
            if (is_end) break;
            if (name->kind == JT_NAME && name->s.n > 3 && !memcmp(name->s.p, "end", 3)) {
                if (end_tags)
                    perr(p, name, CLV_ERR_FORMAT, "unexpected '%.*s' (the innermost open block is '%s', closed by '%s')",
                         (int)name->s.n, name->s.p, opener, closing_tag(end_tags));
                else
                    perr(p, name, CLV_ERR_FORMAT, "unexpected '%.*s' (no block is open)",
                         (int)name->s.n, name->s.p);
                break;
            }
            jj_node *nd = parse_statement(p);
            if (!ok(p)) break;
            vec_push(p, &body, nd);
            end_tag(p);
        } else {
            char d[64];
            describe(t, d, sizeof d);
            perr(p, t, CLV_ERR_FORMAT, "unexpected %s", d);
        }
    }
    jj_node **out = vec_done(p, &body, n);
    return ok(p) ? out : NULL;
}

clv_status clv_jj_parse(const jj_token *tokens, size_t n_tokens, jj_arena *arena,
                        jj_node ***body, uint32_t *n_body) {
    parser p = {.t = tokens, .n = n_tokens, .arena = arena};
    *body = subparse(&p, NULL, n_body, NULL);
    return p.st;
}
