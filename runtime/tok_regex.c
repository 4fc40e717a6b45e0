/* Backtracking regex matcher for pre-tokenizer splits (see tok_regex.h).
 *
 * A pattern compiles to nodes linked into sequences by `next`. Single code
 * point tests (literals, classes, escapes) are SET nodes that carry their own
 * quantifier and repeat without recursion; groups, alternations and
 * lookaheads recurse with an explicit continuation chain. Two things keep
 * splitting linear on long runs of one kind of character: each SET node
 * remembers the last run it measured, and a SET only backtracks to positions
 * where the node after it can start. */
#include "tok_regex.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "unicode.h"

#define RX_MAX_NODES 256
#define RX_MAX_DEPTH 400 /* recursion guard: deeper attempts count as no match */
#define RX_INF INT32_MAX

enum { RX_SET, RX_ALT, RX_GROUP, RX_LOOK, RX_BOL, RX_EOL };
enum { ITEM_RANGE, ITEM_CATS, ITEM_SPACE };

typedef struct rx_item {
    uint8_t kind;
    bool negate;     /* for CATS and SPACE (\P{..}, \S inside a class) */
    uint32_t lo, hi; /* RANGE */
    uint32_t mask;   /* CATS: bits 1u << clv_ucat */
} rx_item;

typedef struct rx_class {
    bool negate;
    int32_t first_item, n_items;
    uint32_t ascii[4]; /* final answer for code points < 128 */
} rx_class;

typedef struct rx_node {
    uint8_t kind;
    bool negate;      /* LOOK: (?!...) */
    int32_t next;     /* next node of the sequence, -1 at its end */
    int32_t min, max; /* SET and GROUP repetition */
    int32_t arg;      /* SET: class; GROUP, LOOK: first body node; ALT: index into alts */
    int32_t n_alts;   /* ALT */
} rx_node;

struct clv_regex {
    rx_node *nodes;
    int32_t n_nodes, cap_nodes;
    rx_class *classes;
    int32_t n_classes, cap_classes;
    rx_item *items;
    int32_t n_items, cap_items;
    int32_t *alts;
    int32_t n_alts, cap_alts;
    int32_t start;
};

/* --- spans ---------------------------------------------------------------- */

clv_status clv_span_vec_push(clv_span_vec *v, uint32_t start, uint32_t end) {
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 64;
        clv_span *d = realloc(v->data, cap * sizeof *d);
        if (!d) return clv_fail(CLV_ERR_NOMEM, "out of memory splitting text");
        v->data = d;
        v->cap = cap;
    }
    v->data[v->n].start = start;
    v->data[v->n].end = end;
    v->n++;
    return CLV_OK;
}

void clv_span_vec_free(clv_span_vec *v) {
    free(v->data);
    v->data = NULL;
    v->n = v->cap = 0;
}

/* --- classes --------------------------------------------------------------- */

static bool class_has_slow(const clv_regex *re, const rx_class *c, uint32_t cp) {
    uint32_t props = UINT32_MAX; /* looked up once, on demand */
    for (int32_t i = 0; i < c->n_items; i++) {
        const rx_item *it = &re->items[c->first_item + i];
        bool hit;
        if (it->kind == ITEM_RANGE) {
            hit = cp >= it->lo && cp <= it->hi;
        } else {
            if (props == UINT32_MAX) props = clv_unicode_props(cp);
            if (it->kind == ITEM_CATS)
                hit = (it->mask >> (props & CLV_UPROP_CAT_MASK)) & 1u;
            else
                hit = (props & CLV_UPROP_WHITE_SPACE) != 0;
            if (it->negate) hit = !hit;
        }
        if (hit) return !c->negate;
    }
    return c->negate;
}

static inline bool class_has(const clv_regex *re, const rx_class *c, uint32_t cp) {
    if (cp < 128) return (c->ascii[cp >> 5] >> (cp & 31)) & 1u;
    return class_has_slow(re, c, cp);
}

/* --- parser ---------------------------------------------------------------- */

typedef struct rx_parser {
    clv_regex *re;
    const uint8_t *s;
    size_t n, pos;
    bool icase;
    clv_status st;
} rx_parser;

static bool grow(void **data, int32_t *cap, int32_t need, size_t elem) {
    if (need <= *cap) return true;
    int32_t c = *cap ? *cap : 16;
    while (c < need) c *= 2;
    void *d = realloc(*data, (size_t)c * elem);
    if (!d) return false;
    *data = d;
    *cap = c;
    return true;
}

static void perr(rx_parser *p, const char *what) {
    if (p->st == CLV_OK)
        p->st = clv_fail(CLV_ERR_ARG, "regex '%.*s': %s at offset %zu", (int)p->n,
                         (const char *)p->s, what, p->pos);
}

static void nomem(rx_parser *p) {
    if (p->st == CLV_OK) p->st = clv_fail(CLV_ERR_NOMEM, "out of memory compiling a regex");
}

static int32_t new_node(rx_parser *p, int kind) {
    clv_regex *re = p->re;
    if (re->n_nodes >= RX_MAX_NODES) {
        perr(p, "pattern too long");
        return -1;
    }
    if (!grow((void **)&re->nodes, &re->cap_nodes, re->n_nodes + 1, sizeof *re->nodes)) {
        nomem(p);
        return -1;
    }
    rx_node *nd = &re->nodes[re->n_nodes];
    memset(nd, 0, sizeof *nd);
    nd->kind = (uint8_t)kind;
    nd->next = -1;
    nd->min = nd->max = 1;
    nd->arg = -1;
    return re->n_nodes++;
}

static rx_item *new_item(rx_parser *p) {
    clv_regex *re = p->re;
    if (!grow((void **)&re->items, &re->cap_items, re->n_items + 1, sizeof *re->items)) {
        nomem(p);
        return NULL;
    }
    rx_item *it = &re->items[re->n_items++];
    memset(it, 0, sizeof *it);
    return it;
}

static void add_range_raw(rx_parser *p, uint32_t lo, uint32_t hi) {
    rx_item *it = new_item(p);
    if (!it) return;
    it->kind = ITEM_RANGE;
    it->lo = lo;
    it->hi = hi;
}

/* A range, plus its other-case ASCII letters inside (?i:...). */
static void add_range(rx_parser *p, uint32_t lo, uint32_t hi) {
    add_range_raw(p, lo, hi);
    if (!p->icase) return;
    uint32_t a = lo > 'a' ? lo : 'a', b = hi < 'z' ? hi : 'z';
    if (a <= b) add_range_raw(p, a - 32, b - 32);
    a = lo > 'A' ? lo : 'A';
    b = hi < 'Z' ? hi : 'Z';
    if (a <= b) add_range_raw(p, a + 32, b + 32);
}

static void add_cats(rx_parser *p, int kind, uint32_t mask, bool negate) {
    rx_item *it = new_item(p);
    if (!it) return;
    it->kind = (uint8_t)kind;
    it->mask = mask;
    it->negate = negate;
}

/* Opens a class whose items are appended next; returns its index. */
static int32_t begin_class(rx_parser *p, bool negate) {
    clv_regex *re = p->re;
    if (!grow((void **)&re->classes, &re->cap_classes, re->n_classes + 1, sizeof *re->classes)) {
        nomem(p);
        return -1;
    }
    rx_class *c = &re->classes[re->n_classes];
    memset(c, 0, sizeof *c);
    c->negate = negate;
    c->first_item = re->n_items;
    return re->n_classes++;
}

static void end_class(rx_parser *p, int32_t ci) {
    clv_regex *re = p->re;
    rx_class *c = &re->classes[ci];
    c->n_items = re->n_items - c->first_item;
    for (uint32_t cp = 0; cp < 128; cp++)
        if (class_has_slow(re, c, cp)) c->ascii[cp >> 5] |= 1u << (cp & 31);
}

static const struct {
    const char *name;
    uint32_t mask;
} category_names[] = {
    {"L", CLV_UMASK_L},   {"LC", CLV_UMASK_LC}, {"L&", CLV_UMASK_LC},
    {"Lu", CLV_UMASK(CLV_UCAT_LU)}, {"Ll", CLV_UMASK(CLV_UCAT_LL)},
    {"Lt", CLV_UMASK(CLV_UCAT_LT)}, {"Lm", CLV_UMASK(CLV_UCAT_LM)},
    {"Lo", CLV_UMASK(CLV_UCAT_LO)}, {"M", CLV_UMASK_M},
    {"Mn", CLV_UMASK(CLV_UCAT_MN)}, {"Mc", CLV_UMASK(CLV_UCAT_MC)},
    {"Me", CLV_UMASK(CLV_UCAT_ME)}, {"N", CLV_UMASK_N},
    {"Nd", CLV_UMASK(CLV_UCAT_ND)}, {"Nl", CLV_UMASK(CLV_UCAT_NL)},
    {"No", CLV_UMASK(CLV_UCAT_NO)}, {"P", CLV_UMASK_P},
    {"Pc", CLV_UMASK(CLV_UCAT_PC)}, {"Pd", CLV_UMASK(CLV_UCAT_PD)},
    {"Ps", CLV_UMASK(CLV_UCAT_PS)}, {"Pe", CLV_UMASK(CLV_UCAT_PE)},
    {"Pi", CLV_UMASK(CLV_UCAT_PI)}, {"Pf", CLV_UMASK(CLV_UCAT_PF)},
    {"Po", CLV_UMASK(CLV_UCAT_PO)}, {"S", CLV_UMASK_S},
    {"Sm", CLV_UMASK(CLV_UCAT_SM)}, {"Sc", CLV_UMASK(CLV_UCAT_SC)},
    {"Sk", CLV_UMASK(CLV_UCAT_SK)}, {"So", CLV_UMASK(CLV_UCAT_SO)},
    {"Z", CLV_UMASK_Z},   {"Zs", CLV_UMASK(CLV_UCAT_ZS)},
    {"Zl", CLV_UMASK(CLV_UCAT_ZL)}, {"Zp", CLV_UMASK(CLV_UCAT_ZP)},
    {"C", CLV_UMASK_C},   {"Cc", CLV_UMASK(CLV_UCAT_CC)},
    {"Cf", CLV_UMASK(CLV_UCAT_CF)}, {"Cs", CLV_UMASK(CLV_UCAT_CS)},
    {"Co", CLV_UMASK(CLV_UCAT_CO)}, {"Cn", CLV_UMASK(CLV_UCAT_CN)},
};

static int hex_value(uint8_t c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Reads exactly `digits` hex digits, or any number inside braces. */
static bool parse_hex(rx_parser *p, int digits, uint32_t *out) {
    uint32_t v = 0;
    bool braces = p->pos < p->n && p->s[p->pos] == '{';
    if (braces) p->pos++;
    int got = 0;
    while (p->pos < p->n && (braces || got < digits)) {
        int h = hex_value(p->s[p->pos]);
        if (h < 0) break;
        v = v * 16 + (uint32_t)h;
        if (v > CLV_UNICODE_MAX) return false;
        p->pos++;
        got++;
    }
    if (braces) {
        if (p->pos >= p->n || p->s[p->pos] != '}') return false;
        p->pos++;
    }
    if (got == 0 || (!braces && got != digits)) return false;
    *out = v;
    return true;
}

static uint32_t next_cp(rx_parser *p) {
    uint32_t cp;
    p->pos += clv_utf8_decode(p->s + p->pos, p->n - p->pos, &cp);
    if (cp > CLV_UNICODE_MAX) perr(p, "invalid UTF-8");
    return cp;
}

/* After a backslash. Either sets *literal (returns true) or appends class
 * items for \s \d \w \p and returns false. */
static bool parse_escape(rx_parser *p, uint32_t *literal) {
    if (p->pos >= p->n) {
        perr(p, "pattern ends with a backslash");
        return false;
    }
    uint8_t c = p->s[p->pos++];
    switch (c) {
    case 's': add_cats(p, ITEM_SPACE, 0, false); return false;
    case 'S': add_cats(p, ITEM_SPACE, 0, true); return false;
    case 'd': add_cats(p, ITEM_CATS, CLV_UMASK(CLV_UCAT_ND), false); return false;
    case 'D': add_cats(p, ITEM_CATS, CLV_UMASK(CLV_UCAT_ND), true); return false;
    case 'w':
    case 'W':
        add_cats(p, ITEM_CATS,
                 CLV_UMASK_L | CLV_UMASK_M | CLV_UMASK(CLV_UCAT_ND) | CLV_UMASK(CLV_UCAT_PC),
                 c == 'W');
        return false;
    case 'p':
    case 'P': {
        char name[8];
        size_t len = 0;
        if (p->pos < p->n && p->s[p->pos] == '{') {
            p->pos++;
            while (p->pos < p->n && p->s[p->pos] != '}' && len + 1 < sizeof name)
                name[len++] = (char)p->s[p->pos++];
            if (p->pos >= p->n || p->s[p->pos] != '}') {
                perr(p, "bad \\p{...}");
                return false;
            }
            p->pos++;
        } else if (p->pos < p->n) {
            name[len++] = (char)p->s[p->pos++];
        }
        name[len] = '\0';
        for (size_t i = 0; i < sizeof category_names / sizeof category_names[0]; i++) {
            if (!strcmp(name, category_names[i].name)) {
                add_cats(p, ITEM_CATS, category_names[i].mask, c == 'P');
                return false;
            }
        }
        perr(p, "unknown Unicode category in \\p");
        return false;
    }
    case 'r': *literal = '\r'; return true;
    case 'n': *literal = '\n'; return true;
    case 't': *literal = '\t'; return true;
    case 'f': *literal = '\f'; return true;
    case 'v': *literal = '\v'; return true;
    case 'x':
        if (!parse_hex(p, 2, literal)) perr(p, "bad \\x escape");
        return true;
    case 'u':
        if (!parse_hex(p, 4, literal)) perr(p, "bad \\u escape");
        return true;
    default:
        if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) {
            perr(p, "unsupported escape");
            return false;
        }
        p->pos--;
        *literal = next_cp(p);
        return true;
    }
}

static int32_t parse_class(rx_parser *p) {
    p->pos++; /* '[' */
    bool negate = p->pos < p->n && p->s[p->pos] == '^';
    if (negate) p->pos++;
    int32_t ci = begin_class(p, negate);
    if (ci < 0) return -1;
    bool first = true;
    for (;;) {
        if (p->pos >= p->n) {
            perr(p, "unterminated [");
            return -1;
        }
        uint8_t c = p->s[p->pos];
        if (c == ']' && !first) {
            p->pos++;
            break;
        }
        if (c == '[') {
            perr(p, "nested classes are not supported");
            return -1;
        }
        uint32_t lo;
        if (c == '\\') {
            p->pos++;
            if (!parse_escape(p, &lo)) {
                if (p->st) return -1;
                first = false;
                continue;
            }
        } else {
            lo = next_cp(p);
        }
        uint32_t hi = lo;
        if (p->pos + 1 < p->n && p->s[p->pos] == '-' && p->s[p->pos + 1] != ']') {
            p->pos++;
            if (p->s[p->pos] == '\\') {
                p->pos++;
                if (!parse_escape(p, &hi)) {
                    perr(p, "a class range must end in a character");
                    return -1;
                }
            } else {
                hi = next_cp(p);
            }
            if (hi < lo) {
                perr(p, "class range out of order");
                return -1;
            }
        }
        add_range(p, lo, hi);
        if (p->st) return -1;
        first = false;
    }
    end_class(p, ci);
    int32_t ni = new_node(p, RX_SET);
    if (ni >= 0) p->re->nodes[ni].arg = ci;
    return ni;
}

static int32_t parse_alt(rx_parser *p);

static int32_t parse_group(rx_parser *p) {
    p->pos++; /* '(' */
    int kind = RX_GROUP;
    bool negate = false, saved_icase = p->icase;
    const char *rest = (const char *)p->s + p->pos;
    size_t left = p->n - p->pos;
    if (left >= 2 && rest[0] == '?') {
        if (rest[1] == ':') {
            p->pos += 2;
        } else if (rest[1] == '=' || rest[1] == '!') {
            kind = RX_LOOK;
            negate = rest[1] == '!';
            p->pos += 2;
        } else if (left >= 3 && rest[1] == 'i' && rest[2] == ':') {
            p->icase = true;
            p->pos += 3;
        } else {
            perr(p, "unsupported group syntax");
            return -1;
        }
    }
    int32_t body = parse_alt(p);
    p->icase = saved_icase;
    if (p->st) return -1;
    if (p->pos >= p->n || p->s[p->pos] != ')') {
        perr(p, "missing )");
        return -1;
    }
    p->pos++;
    clv_regex *re = p->re;
    /* (?:x) around one plain code point test is that test. */
    if (kind == RX_GROUP && body >= 0 && re->nodes[body].kind == RX_SET &&
        re->nodes[body].next < 0 && re->nodes[body].min == 1 && re->nodes[body].max == 1)
        return body;
    int32_t ni = new_node(p, kind);
    if (ni < 0) return -1;
    re->nodes[ni].arg = body;
    re->nodes[ni].negate = negate;
    return ni;
}

static int32_t parse_atom(rx_parser *p) {
    uint8_t c = p->s[p->pos];
    switch (c) {
    case '(': return parse_group(p);
    case '[': return parse_class(p);
    case '^': p->pos++; return new_node(p, RX_BOL);
    case '$': p->pos++; return new_node(p, RX_EOL);
    case '*': case '+': case '?': case '{':
        perr(p, "nothing to repeat");
        return -1;
    default: break;
    }
    int32_t ci = begin_class(p, false);
    if (ci < 0) return -1;
    if (c == '.') {
        p->pos++;
        p->re->classes[ci].negate = true; /* anything but a newline */
        add_range_raw(p, '\n', '\n');
    } else if (c == '\\') {
        p->pos++;
        uint32_t lit;
        if (parse_escape(p, &lit)) add_range(p, lit, lit);
    } else {
        uint32_t lit = next_cp(p);
        add_range(p, lit, lit);
    }
    if (p->st) return -1;
    end_class(p, ci);
    int32_t ni = new_node(p, RX_SET);
    if (ni >= 0) p->re->nodes[ni].arg = ci;
    return ni;
}

static bool parse_count(rx_parser *p, int32_t *out) {
    int64_t v = 0;
    size_t start = p->pos;
    while (p->pos < p->n && p->s[p->pos] >= '0' && p->s[p->pos] <= '9') {
        v = v * 10 + (p->s[p->pos++] - '0');
        if (v > 100000) return false;
    }
    *out = (int32_t)v;
    return p->pos > start;
}

static void parse_quantifier(rx_parser *p, int32_t ni) {
    if (p->pos >= p->n) return;
    int32_t min, max;
    switch (p->s[p->pos]) {
    case '*': min = 0; max = RX_INF; p->pos++; break;
    case '+': min = 1; max = RX_INF; p->pos++; break;
    case '?': min = 0; max = 1; p->pos++; break;
    case '{':
        p->pos++;
        if (!parse_count(p, &min)) {
            perr(p, "bad {n,m}");
            return;
        }
        max = min;
        if (p->pos < p->n && p->s[p->pos] == ',') {
            p->pos++;
            max = RX_INF;
            if (p->pos < p->n && p->s[p->pos] != '}' && !parse_count(p, &max)) {
                perr(p, "bad {n,m}");
                return;
            }
        }
        if (p->pos >= p->n || p->s[p->pos] != '}' || max < min) {
            perr(p, "bad {n,m}");
            return;
        }
        p->pos++;
        break;
    default: return;
    }
    rx_node *nd = &p->re->nodes[ni];
    if (nd->kind != RX_SET && nd->kind != RX_GROUP) {
        perr(p, "quantifier after an assertion");
        return;
    }
    if (nd->min != 1 || nd->max != 1) {
        perr(p, "nested quantifier");
        return;
    }
    if (p->pos < p->n && (p->s[p->pos] == '?' || p->s[p->pos] == '+' || p->s[p->pos] == '*' ||
                          p->s[p->pos] == '{')) {
        perr(p, "lazy, possessive or repeated quantifiers are not supported");
        return;
    }
    nd->min = min;
    nd->max = max;
}

/* A sequence up to '|', ')' or the end; returns its first node or -1. */
static int32_t parse_seq(rx_parser *p) {
    int32_t head = -1, tail = -1;
    while (p->pos < p->n && p->s[p->pos] != '|' && p->s[p->pos] != ')') {
        int32_t ni = parse_atom(p);
        if (p->st) return -1;
        parse_quantifier(p, ni);
        if (p->st) return -1;
        if (tail < 0) head = ni;
        else p->re->nodes[tail].next = ni;
        tail = ni;
    }
    return head;
}

static int32_t parse_alt(rx_parser *p) {
    int32_t first = parse_seq(p);
    if (p->st || p->pos >= p->n || p->s[p->pos] != '|') return first;
    /* Heads go into a local list first: nested groups append to re->alts too. */
    int32_t *heads = NULL, n = 0, cap = 0;
    if (!grow((void **)&heads, &cap, 1, sizeof *heads)) {
        nomem(p);
        return -1;
    }
    heads[n++] = first;
    while (p->pos < p->n && p->s[p->pos] == '|') {
        p->pos++;
        int32_t h = parse_seq(p);
        if (p->st) break;
        if (!grow((void **)&heads, &cap, n + 1, sizeof *heads)) {
            nomem(p);
            break;
        }
        heads[n++] = h;
    }
    int32_t ni = -1;
    clv_regex *re = p->re;
    if (!p->st) {
        if (!grow((void **)&re->alts, &re->cap_alts, re->n_alts + n, sizeof *re->alts)) {
            nomem(p);
        } else {
            ni = new_node(p, RX_ALT);
            if (ni >= 0) {
                memcpy(re->alts + re->n_alts, heads, (size_t)n * sizeof *heads);
                re->nodes[ni].arg = re->n_alts;
                re->nodes[ni].n_alts = n;
                re->n_alts += n;
            }
        }
    }
    free(heads);
    return ni;
}

clv_status clv_regex_compile(const char *pattern, clv_regex **out) {
    *out = NULL;
    clv_regex *re = calloc(1, sizeof *re);
    if (!re) return clv_fail(CLV_ERR_NOMEM, "out of memory compiling a regex");
    rx_parser p = {.re = re, .s = (const uint8_t *)pattern, .n = strlen(pattern)};
    re->start = parse_alt(&p);
    if (!p.st && p.pos < p.n) perr(&p, "unbalanced )");
    if (p.st) {
        clv_regex_free(re);
        return p.st;
    }
    *out = re;
    return CLV_OK;
}

void clv_regex_free(clv_regex *re) {
    if (!re) return;
    free(re->nodes);
    free(re->classes);
    free(re->items);
    free(re->alts);
    free(re);
}

/* --- matcher --------------------------------------------------------------- */

/* What to do when a sequence ends: go on at `node` (then `up`), or, for a
 * repeated group, decide whether to run its body again. */
typedef struct rx_cont {
    int32_t node;
    const struct rx_cont *up;
    const rx_node *rep; /* non-NULL: end of one iteration of this group */
    int32_t count;      /* iterations done, this one included */
    uint32_t start;     /* where this iteration began */
} rx_cont;

/* The last run a SET node measured: cps[from, to) all match, cps[to] not. */
typedef struct rx_run_cache {
    uint32_t from, to;
} rx_run_cache;

typedef struct rx_matcher {
    const clv_regex *re;
    const uint32_t *cps;
    uint32_t begin, end;
    int depth;
    rx_run_cache runs[RX_MAX_NODES];
} rx_matcher;

/* End of the run of class members starting at pos. */
static uint32_t run_end(rx_matcher *m, int32_t ni, const rx_class *c, uint32_t pos) {
    rx_run_cache *rc = &m->runs[ni];
    if (rc->from <= pos && pos <= rc->to) return rc->to;
    uint32_t q = pos;
    while (q < m->end && class_has(m->re, c, m->cps[q])) {
        q++;
        if (q == rc->from) { /* joined the remembered run */
            rc->from = pos;
            return rc->to;
        }
    }
    rc->from = pos;
    rc->to = q;
    return q;
}

static int64_t rx_run(rx_matcher *m, int32_t ni, uint32_t pos, const rx_cont *k);

static int64_t rx_repeat(rx_matcher *m, const rx_node *g, int32_t count, uint32_t pos,
                         const rx_cont *k) {
    if (count < g->max) {
        rx_cont c = {.node = -1, .up = k, .rep = g, .count = count + 1, .start = pos};
        int64_t r = rx_run(m, g->arg, pos, &c);
        if (r >= 0) return r;
    }
    if (count >= g->min) return rx_run(m, g->next, pos, k);
    return -1;
}

static int64_t rx_step(rx_matcher *m, int32_t ni, uint32_t pos, const rx_cont *k) {
    const clv_regex *re = m->re;
    for (;;) {
        if (ni < 0) {
            if (!k) return pos;
            if (k->rep) {
                /* An empty iteration ends the repetition (no endless loop). */
                if (pos == k->start) return rx_run(m, k->rep->next, pos, k->up);
                return rx_repeat(m, k->rep, k->count, pos, k->up);
            }
            ni = k->node;
            k = k->up;
            continue;
        }
        const rx_node *n = &re->nodes[ni];
        switch (n->kind) {
        case RX_SET: {
            const rx_class *c = &re->classes[n->arg];
            uint32_t avail = run_end(m, ni, c, pos) - pos;
            if ((int64_t)avail > n->max) avail = (uint32_t)n->max;
            if ((int64_t)avail < n->min) return -1;
            if (n->min == n->max) { /* nothing to backtrack over */
                pos += avail;
                ni = n->next;
                continue;
            }
            if (n->next < 0 && !k) return pos + avail;
            const rx_node *nx = n->next >= 0 ? &re->nodes[n->next] : NULL;
            if (nx && nx->kind == RX_EOL) { /* only a run reaching the end can match */
                if (pos + avail != m->end) return -1;
                return rx_run(m, n->next, m->end, k);
            }
            for (int64_t cnt = avail; cnt >= n->min; cnt--) {
                uint32_t q = pos + (uint32_t)cnt;
                /* Skip positions where the next node cannot start. */
                if (nx && nx->kind == RX_SET && nx->min > 0 &&
                    (q >= m->end || !class_has(re, &re->classes[nx->arg], m->cps[q])))
                    continue;
                int64_t r = rx_run(m, n->next, q, k);
                if (r >= 0) return r;
            }
            return -1;
        }
        case RX_ALT: {
            rx_cont c = {.node = n->next, .up = k};
            for (int32_t i = 0; i < n->n_alts; i++) {
                /* Skip alternatives whose first code point cannot match. */
                int32_t head = re->alts[n->arg + i];
                const rx_node *h = head >= 0 ? &re->nodes[head] : NULL;
                if (h && h->kind == RX_SET && h->min > 0 &&
                    (pos >= m->end || !class_has(re, &re->classes[h->arg], m->cps[pos])))
                    continue;
                int64_t r = rx_run(m, head, pos, &c);
                if (r >= 0) return r;
            }
            return -1;
        }
        case RX_GROUP: {
            if (n->min == 1 && n->max == 1) {
                rx_cont c = {.node = n->next, .up = k};
                return rx_run(m, n->arg, pos, &c);
            }
            return rx_repeat(m, n, 0, pos, k);
        }
        case RX_LOOK: {
            int64_t r = rx_run(m, n->arg, pos, NULL);
            if ((r >= 0) == n->negate) return -1;
            ni = n->next;
            continue;
        }
        case RX_BOL:
            if (pos != m->begin) return -1;
            ni = n->next;
            continue;
        case RX_EOL:
            if (pos != m->end) return -1;
            ni = n->next;
            continue;
        default:
            CLV_ASSERT(0);
        }
    }
}

static int64_t rx_run(rx_matcher *m, int32_t ni, uint32_t pos, const rx_cont *k) {
    if (m->depth >= RX_MAX_DEPTH) return -1;
    m->depth++;
    int64_t r = rx_step(m, ni, pos, k);
    m->depth--;
    return r;
}

clv_status clv_regex_split(const clv_regex *re, const uint32_t *cps, uint32_t begin,
                           uint32_t end, clv_span_vec *out) {
    rx_matcher mt, *m = &mt; /* about 2 KiB: on the stack, split runs per piece */
    m->re = re;
    m->cps = cps;
    m->begin = begin;
    m->end = end;
    m->depth = 0;
    for (int32_t i = 0; i < re->n_nodes; i++) m->runs[i].from = m->runs[i].to = UINT32_MAX;

    clv_status st = CLV_OK;
    uint32_t pos = begin, gap = begin;
    while (pos < end && st == CLV_OK) {
        int64_t r = re->start >= 0 ? rx_run(m, re->start, pos, NULL) : -1;
        if (r > (int64_t)pos) {
            if (gap < pos) st = clv_span_vec_push(out, gap, pos);
            if (st == CLV_OK) st = clv_span_vec_push(out, pos, (uint32_t)r);
            pos = (uint32_t)r;
            gap = pos;
        } else {
            pos++;
        }
    }
    if (st == CLV_OK && gap < end) st = clv_span_vec_push(out, gap, end);
    return st;
}
