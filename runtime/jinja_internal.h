/* Internals shared by the Jinja interpreter's files: the arena, tokens,
 * syntax tree, values and the render state. Not a public API.
 *
 *   jinja_lexer.c    source -> tokens (whitespace control lives here)
 *   jinja_parser.c   tokens -> syntax tree
 *   jinja_value.c    values: arena, str()/repr(), truthiness, comparison, JSON
 *   jinja_eval.c     the tree walker: statements, expressions, scopes, render
 *   jinja_builtins.c filters, tests, global functions and methods
 */
#ifndef CLV_JINJA_INTERNAL_H
#define CLV_JINJA_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "jinja.h"

/* --- arena: everything of one template or one render is freed at once ------ */

typedef struct jj_chunk {
    struct jj_chunk *next;
    size_t used, cap;
    _Alignas(16) char data[];
} jj_chunk;

typedef struct jj_arena {
    jj_chunk *head;
    size_t total; /* bytes of all chunks */
    size_t limit; /* 0: none */
    bool failed;  /* an allocation was refused */
} jj_arena;

/* 16-byte aligned, zeroed; NULL (and a->failed) past the limit or on OOM. */
void *clv_jj_alloc(jj_arena *a, size_t n);
void clv_jj_arena_free(jj_arena *a);

typedef struct jj_str {
    const char *p;
    size_t n;
} jj_str;

/* Interned-looking constant strings: JJ_S("x") makes a jj_str literal. */
#define JJ_S(lit) ((jj_str){(lit), sizeof(lit) - 1})

static inline bool jj_str_eq(jj_str a, jj_str b) {
    return a.n == b.n && (a.n == 0 || __builtin_memcmp(a.p, b.p, a.n) == 0);
}
static inline bool jj_str_is(jj_str a, const char *c) {
    size_t n = __builtin_strlen(c);
    return a.n == n && __builtin_memcmp(a.p, c, n) == 0;
}

/* --- tokens ----------------------------------------------------------------- */

typedef enum jj_tok_kind {
    JT_EOF,
    JT_DATA,
    JT_VAR_BEGIN,
    JT_VAR_END,
    JT_BLOCK_BEGIN,
    JT_BLOCK_END,
    JT_NAME,
    JT_STRING,
    JT_INT,
    JT_FLOAT,
    JT_OP,
} jj_tok_kind;

typedef enum jj_op {
    JO_NONE,
    JO_ADD, JO_SUB, JO_MUL, JO_DIV, JO_FLOORDIV, JO_MOD, JO_POW, JO_TILDE,
    JO_LBRACKET, JO_RBRACKET, JO_LPAREN, JO_RPAREN, JO_LBRACE, JO_RBRACE,
    JO_EQ, JO_NE, JO_GT, JO_GTEQ, JO_LT, JO_LTEQ,
    JO_ASSIGN, JO_DOT, JO_COLON, JO_PIPE, JO_COMMA, JO_SEMICOLON,
    /* comparison-only operators, produced by the parser */
    JO_IN, JO_NOTIN,
} jj_op;

typedef struct jj_token {
    uint8_t kind; /* jj_tok_kind */
    uint8_t op;   /* jj_op for JT_OP */
    uint32_t line, col;
    jj_str s;     /* name, unescaped string, data text, or operator text */
    int64_t i;
    double f;
    bool big;     /* integer literal too large for int64 */
} jj_token;

/* Tokenizes a whole template. Strings point into `arena` (which also holds a
 * normalized copy of the source). *tokens is malloc'd, ending with JT_EOF. */
clv_status clv_jj_lex(const char *src, size_t len, jj_arena *arena, jj_token **tokens,
                      size_t *n_tokens);

/* Python's str.isspace() for one code point. */
bool clv_jj_isspace(uint32_t cp);

/* --- values ----------------------------------------------------------------- */

typedef enum jj_kind {
    JJ_UNDEF,
    JJ_NONE,
    JJ_BOOL,
    JJ_INT,
    JJ_FLOAT,
    JJ_STR,
    JJ_LIST, /* also tuples (flag `tuple`) */
    JJ_DICT,
    JJ_NS,   /* namespace(): the only mutable value */
    JJ_LOOP, /* the `loop` variable of a for loop */
    JJ_FUNC, /* global function, bound method or macro */
} jj_kind;

struct jj_list;
struct jj_dict;
struct jj_ns;
struct jj_loop;
struct jj_func;

typedef struct jj_value {
    uint8_t kind;
    bool tuple;
    union {
        bool b;
        int64_t i;
        double f;
        jj_str s;        /* JJ_STR; for JJ_UNDEF the name that was missing */
        struct jj_list *list;
        struct jj_dict *dict;
        struct jj_ns *ns;
        struct jj_loop *loop;
        struct jj_func *fn;
    } u;
} jj_value;

typedef struct jj_list {
    size_t n;
    jj_value *items;
} jj_list;

/* Insertion-ordered; immutable once built (the sandbox forbids mutation). */
typedef struct jj_dict {
    size_t n;
    jj_value *keys;
    jj_value *vals;
} jj_dict;

typedef struct jj_ns {
    size_t n, cap;
    jj_str *keys;
    jj_value *vals;
} jj_ns;

typedef struct jj_loop {
    int64_t index0, length;
    const jj_list *items;
} jj_loop;

typedef enum jj_func_kind {
    JF_GLOBAL, /* range, namespace, dict, raise_exception, strftime_now */
    JF_METHOD, /* a method bound to `self` (str.strip, dict.items, loop.cycle, ...) */
    JF_MACRO,
} jj_func_kind;

struct jj_node;
struct jj_scope;

typedef struct jj_func {
    uint8_t kind;
    jj_str name;
    jj_value self;                 /* JF_METHOD */
    const struct jj_node *macro;   /* JF_MACRO */
    struct jj_scope *closure;      /* JF_MACRO: the scope it was defined in */
} jj_func;

static inline jj_value jj_undef(jj_str name) {
    jj_value v = {.kind = JJ_UNDEF};
    v.u.s = name;
    return v;
}
static inline jj_value jj_none(void) { return (jj_value){.kind = JJ_NONE}; }
static inline jj_value jj_bool(bool b) {
    jj_value v = {.kind = JJ_BOOL};
    v.u.b = b;
    return v;
}
static inline jj_value jj_int(int64_t i) {
    jj_value v = {.kind = JJ_INT};
    v.u.i = i;
    return v;
}
static inline jj_value jj_float(double f) {
    jj_value v = {.kind = JJ_FLOAT};
    v.u.f = f;
    return v;
}
static inline jj_value jj_strv(jj_str s) {
    jj_value v = {.kind = JJ_STR};
    v.u.s = s;
    return v;
}

/* --- syntax tree ------------------------------------------------------------ */

typedef enum jj_node_kind {
    /* expressions */
    JN_CONST,   /* value */
    JN_NAME,    /* name */
    JN_LIST,    /* kids */
    JN_TUPLE,   /* kids */
    JN_DICT,    /* kids: keys, kids2: values */
    JN_GETATTR, /* a.name */
    JN_GETITEM, /* a[b] */
    JN_SLICE,   /* a:b:c inside [], any may be NULL */
    JN_CALL,    /* a(kids, names=kids2, *c, **d) */
    JN_FILTER,  /* a|name(kids, names=kids2); a is NULL in filter blocks */
    JN_TEST,    /* a is name(kids, names=kids2) */
    JN_NEG,
    JN_POS,
    JN_NOT,
    JN_BINOP,   /* a op b: + - * / // % ** */
    JN_AND,
    JN_OR,
    JN_CONCAT,  /* kids joined with ~ */
    JN_COMPARE, /* a, then (ops[i], kids[i]) */
    JN_COND,    /* b if a else c (c may be NULL) */
    /* statements */
    JN_DATA,    /* value: template text */
    JN_OUTPUT,  /* {{ a }} */
    JN_IF,      /* if a: kids else kids2 (elif is a nested JN_IF in kids2) */
    JN_FOR,     /* for names in a if b: kids else kids2 */
    JN_SET,     /* names = a */
    JN_SET_NS,  /* name.names[0] = a */
    JN_SET_BLOCK, /* names (or name.names[0] when flag) = kids filtered by b */
    JN_MACRO,   /* name(names=kids2 defaults): kids */
    JN_FILTER_BLOCK, /* kids filtered by b */
    JN_WITH,    /* names = kids2: kids */
    JN_SCOPE,   /* kids in a new scope ({% generation %}) */
    JN_BREAK,
    JN_CONTINUE,
} jj_node_kind;

typedef struct jj_node {
    uint8_t kind;
    uint8_t op;        /* JN_BINOP */
    bool flag;         /* JN_FOR/JN_SET: targets form a tuple; JN_SET_BLOCK: namespace target */
    uint32_t line, col;
    jj_str name;
    jj_value value;
    struct jj_node *a, *b, *c, *d;
    struct jj_node **kids;
    uint32_t n_kids;
    struct jj_node **kids2;
    uint32_t n_kids2;
    jj_str *names;
    uint32_t n_names;
    uint8_t *ops;      /* JN_COMPARE: one jj_op per kid */
} jj_node;

/* Parses tokens into a statement list (the template body). */
clv_status clv_jj_parse(const jj_token *tokens, size_t n_tokens, jj_arena *arena,
                        jj_node ***body, uint32_t *n_body);

/* --- render state ----------------------------------------------------------- */

typedef struct jj_scope {
    struct jj_scope *parent;
    bool captured; /* a macro's closure: must not be reused */
    size_t n, cap;
    jj_str *names;
    jj_value *vals;
} jj_scope;

typedef enum jj_control { JC_NONE, JC_BREAK, JC_CONTINUE } jj_control;

typedef struct jj_render {
    jj_arena arena;
    clv_strbuf *out;
    jj_scope *globals;
    jj_scope *scope; /* innermost scope of the statement being run */
    uint64_t steps, max_steps;
    int call_depth, max_call_depth;
    int eval_depth;
    size_t max_output;
    time_t now;
    jj_control control;
    clv_status status; /* first error wins; CLV_OK while all is well */
} jj_render;

#define JJ_FAILED(r) ((r)->status != CLV_OK)

/* Counts work done inside one operation (bytes scanned, items compared)
 * against the step budget, so that a hostile template cannot stall the
 * render with a few expensive operations; false once over it. */
bool clv_jj_charge(jj_render *r, uint64_t units);

/* Records the first error, prefixed with the node's line and column. */
void clv_jj_error(jj_render *r, const jj_node *at, clv_status st, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Call arguments, evaluated. */
typedef struct jj_args {
    jj_value *pos;
    size_t npos;
    jj_str *kw_names;
    jj_value *kw_vals;
    size_t nkw;
} jj_args;

/* Matches args to the parameter names (positional first, then keywords).
 * out[i] receives the value and given[i] whether it was passed; fewer than
 * `required` given, unknown keywords or too many positionals are errors. */
bool clv_jj_bind(jj_render *r, const jj_node *at, const char *fname, const jj_args *args,
                 const char *const *params, size_t n_params, size_t required, jj_value *out,
                 bool *given);

/* --- values: jinja_value.c -------------------------------------------------- */

/* clv_jj_alloc from the render's arena, recording an error when refused. */
void *clv_jj_ralloc(jj_render *r, size_t n);

jj_str clv_jj_strdup(jj_render *r, const char *p, size_t n);
jj_list *clv_jj_list_new(jj_render *r, size_t n);
jj_dict *clv_jj_dict_new(jj_render *r, size_t n);
jj_value clv_jj_listv(jj_list *l, bool tuple);
jj_value clv_jj_dictv(jj_dict *d);
/* Value for key in a dict; kind JJ_UNDEF when absent. */
bool clv_jj_dict_get(jj_render *r, const jj_dict *d, jj_value key, jj_value *out);
/* Builds a value tree from JSON (strings are not copied: json must outlive r). */
jj_value clv_jj_from_json(jj_render *r, const clv_json *j);

bool clv_jj_truthy(jj_value v);
const char *clv_jj_type_name(jj_value v); /* Python's type name: "str", "NoneType", ... */
/* Python ==. */
bool clv_jj_equal(jj_render *r, jj_value a, jj_value b);
/* Python ordering: *cmp gets -1/0/1; false (with an error) when not comparable. */
bool clv_jj_compare(jj_render *r, const jj_node *at, jj_value a, jj_value b, const char *op,
                    int *cmp);

/* str(v) and repr(v) appended to a buffer, or as a value. */
void clv_jj_write_str(jj_render *r, clv_strbuf *b, jj_value v);
void clv_jj_write_repr(jj_render *r, clv_strbuf *b, jj_value v);
jj_str clv_jj_to_str(jj_render *r, jj_value v); /* strings are returned as is */
/* Copies a finished buffer into the arena and frees it. */
jj_str clv_jj_take_buf(jj_render *r, clv_strbuf *b);

/* json.dumps(v, ensure_ascii, indent, separators, sort_keys) as HF's tojson. */
jj_str clv_jj_tojson(jj_render *r, const jj_node *at, jj_value v,
                     const clv_json_write_params *params);

/* UTF-8 helpers over valid UTF-8 (all strings in a render are). */
size_t clv_jj_utf8_len(jj_str s);                 /* code points */
size_t clv_jj_utf8_offset(jj_str s, size_t index); /* byte offset of code point `index` */

/* --- evaluation: jinja_eval.c ----------------------------------------------- */

jj_value clv_jj_getattr(jj_render *r, const jj_node *at, jj_value obj, jj_str name);
jj_value clv_jj_getitem(jj_render *r, const jj_node *at, jj_value obj, jj_value key);
jj_value clv_jj_call(jj_render *r, const jj_node *at, jj_value fn, const jj_args *args);
/* The items a for loop or list() would see; false with an error if not iterable. */
bool clv_jj_iterate(jj_render *r, const jj_node *at, jj_value v, jj_list **out);

/* --- builtins: jinja_builtins.c --------------------------------------------- */

bool clv_jj_filter_known(jj_str name);
bool clv_jj_test_known(jj_str name);
jj_value clv_jj_apply_filter(jj_render *r, const jj_node *at, jj_str name, jj_value v,
                             const jj_args *args);
/* The result of test `name`; false with r failed on errors. */
bool clv_jj_apply_test(jj_render *r, const jj_node *at, jj_str name, jj_value v,
                       const jj_args *args);
/* A global function (range, namespace, ...) by name, or false. */
bool clv_jj_global(jj_str name, jj_value *out, jj_render *r);
/* Resolves obj.name to a bound method when obj's Python type has a method of
 * that name; false otherwise. */
bool clv_jj_method_lookup(jj_render *r, jj_value obj, jj_str name, jj_value *out);
/* Python's `fmt % args` (printf-style formatting). */
jj_value clv_jj_percent_format(jj_render *r, const jj_node *at, jj_str fmt, jj_value args);
jj_value clv_jj_call_builtin(jj_render *r, const jj_node *at, const jj_func *fn,
                             const jj_args *args);

#endif
