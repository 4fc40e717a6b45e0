/* Generated tokenizers that look and load like the real ones: byte-level
 * BPE ("gpt2": 256 byte tokens, then one merge per further token, each
 * joining two existing tokens) or SentencePiece-style ("llama": <0xNN> byte
 * tokens and scored pieces, each reachable by joining two pieces), filled
 * with pseudo-words from a syllable model, plus the family's special tokens,
 * bos/eos and chat template. Nothing is downloaded. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "synthetic_internal.h"

/* --- arena: strings live until synth_vocab_free ------------------------------ */

typedef struct arena_block {
    struct arena_block *next;
    size_t used, cap;
    char data[];
} arena_block;

static char *arena_alloc(synth_vocab *v, size_t n) {
    arena_block *b = v->arena;
    if (!b || b->cap - b->used < n) {
        size_t cap = n > (1u << 20) ? n : (1u << 20);
        arena_block *nb = malloc(sizeof *nb + cap);
        if (!nb) return NULL;
        nb->next = b;
        nb->used = 0;
        nb->cap = cap;
        v->arena = b = nb;
    }
    char *p = b->data + b->used;
    b->used += n;
    return p;
}

static char *arena_strndup(synth_vocab *v, const char *s, size_t n) {
    char *p = arena_alloc(v, n + 1);
    if (!p) return NULL;
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

void synth_vocab_free(synth_vocab *v) {
    if (!v) return;
    arena_block *b = v->arena;
    while (b) {
        arena_block *next = b->next;
        free(b);
        b = next;
    }
    free(v->tokens);
    free(v->scores);
    free(v->types);
    free(v->merges);
    memset(v, 0, sizeof *v);
}

/* --- GPT-2 byte-level alphabet ----------------------------------------------- */

/* Printable Latin-1 bytes stand for themselves; the other 68 bytes get code
 * points from 256 up, in byte order. Token ids 0..255 list the printable ones
 * first, as GPT-2 vocabularies do. */
static bool byte_printable(int b) { return (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255); }

static void byte_codepoints(uint32_t cp[256], uint8_t order[256]) {
    int n = 0, k = 0;
    for (int b = 0; b < 256; b++) {
        if (byte_printable(b)) {
            cp[b] = (uint32_t)b;
            order[k++] = (uint8_t)b;
        }
    }
    for (int b = 0; b < 256; b++) {
        if (!byte_printable(b)) {
            cp[b] = 256u + (uint32_t)n++;
            order[k++] = (uint8_t)b;
        }
    }
}

static int utf8_put(uint32_t c, char *out) {
    if (c < 0x80) {
        out[0] = (char)c;
        return 1;
    }
    if (c < 0x800) {
        out[0] = (char)(0xC0 | c >> 6);
        out[1] = (char)(0x80 | (c & 0x3F));
        return 2;
    }
    out[0] = (char)(0xE0 | c >> 12);
    out[1] = (char)(0x80 | ((c >> 6) & 0x3F));
    out[2] = (char)(0x80 | (c & 0x3F));
    return 3;
}

/* --- the growing set of raw tokens --------------------------------------------- */

#define MAX_WORD 64

typedef struct builder {
    synth_vocab *v;
    bool bpe;              /* units are bytes (BPE) or UTF-8 characters (SPM) */
    char **raw;            /* raw bytes of each token, creation order */
    uint32_t *raw_len;
    int64_t n, cap;        /* tokens so far, room */
    int64_t (*merge)[2];   /* BPE: the two halves of each merged token */
    int64_t n_merges;
    int64_t *slots;        /* open addressing: token index + 1, 0 empty */
    uint64_t n_slots;
    int64_t target;
    synth_rng rng;
} builder;

static uint64_t hash_bytes(const char *s, size_t n) {
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 0x100000001b3ULL;
    return h;
}

static int64_t find(const builder *b, const char *s, size_t n) {
    uint64_t mask = b->n_slots - 1;
    for (uint64_t i = hash_bytes(s, n) & mask;; i = (i + 1) & mask) {
        int64_t t = b->slots[i];
        if (!t) return -1;
        if (b->raw_len[t - 1] == n && !memcmp(b->raw[t - 1], s, n)) return t - 1;
    }
}

/* Adds a token known to be absent; false on no memory. */
static bool add(builder *b, const char *s, size_t n, int64_t left, int64_t right) {
    CLV_ASSERT(b->n < b->cap);
    char *p = arena_strndup(b->v, s, n);
    if (!p) return false;
    b->raw[b->n] = p;
    b->raw_len[b->n] = (uint32_t)n;
    b->merge[b->n][0] = left;
    b->merge[b->n][1] = right;
    if (left >= 0) b->n_merges++;
    uint64_t mask = b->n_slots - 1;
    uint64_t i = hash_bytes(s, n) & mask;
    while (b->slots[i]) i = (i + 1) & mask;
    b->slots[i] = ++b->n;
    return true;
}

static bool unit_start(const builder *b, uint8_t c) { return b->bpe || (c & 0xC0) != 0x80; }

/* Makes `s` a token, adding what it needs: a split into two existing tokens
 * (longest first half first) or, failing that, its prefix without the last
 * unit, then prefix + last unit. Returns 1 when s is a token, 0 when the
 * target count was reached first, -1 on no memory. */
static int ensure(builder *b, const char *s, size_t n) {
    if (find(b, s, n) >= 0) return 1;
    if (b->n >= b->target) return 0;
    size_t last = n - 1;
    while (last > 0 && !unit_start(b, (uint8_t)s[last])) last--;
    if (last == 0) return add(b, s, n, -1, -1) ? 1 : -1; /* a single unit (SPM character) */
    for (size_t cut = last; cut > 0; cut--) {
        if (!unit_start(b, (uint8_t)s[cut])) continue;
        int64_t l = find(b, s, cut), r = l >= 0 ? find(b, s + cut, n - cut) : -1;
        if (l >= 0 && r >= 0) return add(b, s, n, l, r) ? 1 : -1;
    }
    int st = ensure(b, s, last);
    if (st <= 0) return st;
    st = ensure(b, s + last, n - last);
    if (st <= 0) return st;
    if (b->n >= b->target) return 0;
    return add(b, s, n, find(b, s, last), find(b, s + last, n - last)) ? 1 : -1;
}

/* --- pseudo-words ----------------------------------------------------------------- */

static const char *const onsets[] = {"",   "t",  "s",  "th", "c",  "p",   "m",  "b",  "d",  "f",  "h",  "w",
                                     "r",  "l",  "n",  "g",  "st", "pr",  "tr", "ch", "sh", "k",  "v",  "br",
                                     "cr", "gr", "pl", "cl", "fl", "sp",  "str", "j", "qu", "y",  "dr", "fr",
                                     "sc", "sl", "sm", "sn", "sw", "wh",  "ph", "z",  "x"};
static const char *const nuclei[] = {"e", "a", "o", "i", "u", "ea", "ou", "io", "ai", "ee", "oo", "ie", "y", "oa", "au", "ei"};
static const char *const codas[] = {"",   "n",  "r",  "s",  "t",  "l",  "nd", "st", "m",  "ng", "d",   "ct",
                                    "nt", "rs", "ck", "th", "x",  "ll", "ss", "rt", "sh", "p",  "ght", "lt"};
static const char *const suffixes[] = {"ing", "ed",   "s",    "tion", "ly",  "er",  "es",  "al",
                                       "ment", "ness", "able", "ity",  "ous", "ive", "ize", "ers"};
/* Code and layout pieces every tokenizer of code-heavy text has. */
static const char *const code_pieces[] = {"  ",  "    ", "\n\n", "\t",  " =",  " (",  "()",  "):",  ");",
                                          " {",  " }",   "...", " //", " #",  "->",  "==",  " !=", "\",",
                                          "',",  " <",   "/>",  "</",  " +=", " return", " if", " for",
                                          " the", " of", " and", " to", " in", " is"};

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

/* Index skewed toward the front, so early entries are common (as letters
 * and syllables are in real text). */
static size_t pick(synth_rng *r, size_t n) {
    double u = synth_uniform(r);
    return (size_t)(u * u * (double)n);
}

/* A pseudo-word in raw bytes (space marker included), into out; its length. */
static size_t make_word(builder *b, bool cjk, char *out) {
    synth_rng *r = &b->rng;
    size_t n = 0;
    const char *space = b->bpe ? " " : "\xE2\x96\x81"; /* U+2581 for SentencePiece */
    if (cjk) {
        if (synth_uniform(r) < 0.3) n += (size_t)sprintf(out, "%s", space);
        int chars = 1 + (int)pick(r, 3);
        for (int i = 0; i < chars; i++) {
            /* common characters cluster low in the CJK block */
            uint32_t c = 0x4E00 + (uint32_t)(synth_uniform(r) * synth_uniform(r) * 0x51A5);
            n += (size_t)utf8_put(c, out + n);
        }
        return n;
    }
    if (synth_uniform(r) < 0.7) n += (size_t)sprintf(out + n, "%s", space);
    size_t start = n;
    double u = synth_uniform(r);
    int syllables = u < 0.45 ? 1 : u < 0.85 ? 2 : 3;
    for (int i = 0; i < syllables; i++) {
        n += (size_t)sprintf(out + n, "%s%s%s", onsets[pick(r, N_OF(onsets))], nuclei[pick(r, N_OF(nuclei))],
                             codas[pick(r, N_OF(codas))]);
    }
    if (synth_uniform(r) < 0.25) n += (size_t)sprintf(out + n, "%s", suffixes[pick(r, N_OF(suffixes))]);
    if (synth_uniform(r) < 0.12 && out[start] >= 'a' && out[start] <= 'z') out[start] = (char)(out[start] - 32);
    CLV_ASSERT(n < MAX_WORD);
    return n;
}

/* Fills the builder up to its target with code pieces, numbers (llama-bpe
 * keeps 1-3 digit groups) and pseudo-words. */
static clv_status fill(builder *b, int family) {
    for (size_t i = 0; i < N_OF(code_pieces); i++) {
        /* SentencePiece spells spaces U+2581 and keeps tabs and newlines as
         * byte tokens only */
        char piece[MAX_WORD];
        size_t n = 0;
        bool skip = false;
        for (const char *c = code_pieces[i]; *c; c++) {
            if (!b->bpe && (*c == '\n' || *c == '\t')) skip = true;
            if (!b->bpe && *c == ' ') n += (size_t)sprintf(piece + n, "\xE2\x96\x81");
            else piece[n++] = *c;
        }
        if (!skip && ensure(b, piece, n) < 0) return clv_fail(CLV_ERR_NOMEM, "vocabulary: no memory");
    }
    /* the first merges of real vocabularies: a space joined to each letter */
    for (int c = 0; c < 52; c++) {
        char piece[8];
        int n = sprintf(piece, "%s%c", b->bpe ? " " : "\xE2\x96\x81", c < 26 ? 'a' + c : 'A' + c - 26);
        if (ensure(b, piece, (size_t)n) < 0) return clv_fail(CLV_ERR_NOMEM, "vocabulary: no memory");
    }
    if (family == CLV_SYNTH_FAMILY_LLAMA3) {
        char num[8];
        for (int i = 0; i < 1000; i++) {
            int len = sprintf(num, "%d", i);
            if (ensure(b, num, (size_t)len) < 0) return clv_fail(CLV_ERR_NOMEM, "vocabulary: no memory");
            if (i < 100) {
                len = sprintf(num, "%03d", i);
                if (ensure(b, num, (size_t)len) < 0) return clv_fail(CLV_ERR_NOMEM, "vocabulary: no memory");
            }
        }
    }
    double cjk_share = family == CLV_SYNTH_FAMILY_QWEN3 ? 0.15 : 0.0;
    char word[MAX_WORD];
    /* every word adds at least one token until the target, except repeats;
     * the cap on attempts only guards against a bug in the word model */
    for (int64_t attempts = 0; b->n < b->target; attempts++) {
        CLV_ASSERT(attempts < 200 * b->target + 1000000);
        bool cjk = synth_uniform(&b->rng) < cjk_share;
        size_t n = make_word(b, cjk, word);
        if (ensure(b, word, n) < 0) return clv_fail(CLV_ERR_NOMEM, "vocabulary: no memory");
    }
    return CLV_OK;
}

/* --- special tokens and templates -------------------------------------------------- */

static const char *const qwen3_specials[] = {
    "<|endoftext|>",   "<|im_start|>",      "<|im_end|>",     "<|object_ref_start|>", "<|object_ref_end|>",
    "<|box_start|>",   "<|box_end|>",       "<|quad_start|>", "<|quad_end|>",         "<|vision_start|>",
    "<|vision_end|>",  "<|vision_pad|>",    "<|image_pad|>",  "<|video_pad|>",        "<tool_call>",
    "</tool_call>",    "<|fim_prefix|>",    "<|fim_middle|>", "<|fim_suffix|>",       "<|fim_pad|>",
    "<|repo_name|>",   "<|file_sep|>",      "<tool_response>", "</tool_response>",    "<think>",
    "</think>"};

static const char *const template_chatml =
    "{%- for message in messages -%}\n"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' -}}\n"
    "{%- endfor -%}\n"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}\n";

static const char *const template_llama3 =
    "{{- bos_token -}}\n"
    "{%- for message in messages -%}\n"
    "{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim + "
    "'<|eot_id|>' -}}\n"
    "{%- endfor -%}\n"
    "{%- if add_generation_prompt -%}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' -}}{%- endif -%}\n";

static const char *const template_llama2 =
    "{%- if messages[0]['role'] == 'system' -%}\n"
    "{%- set system = '<<SYS>>\\n' + messages[0]['content'] + '\\n<</SYS>>\\n\\n' -%}{%- set turns = messages[1:] -%}\n"
    "{%- else -%}{%- set system = '' -%}{%- set turns = messages -%}{%- endif -%}\n"
    "{%- for message in turns -%}\n"
    "{%- if message['role'] == 'user' -%}\n"
    "{{- bos_token + '[INST] ' + (system if loop.first else '') + message['content'] + ' [/INST]' -}}\n"
    "{%- else -%}{{- ' ' + message['content'] + ' ' + eos_token -}}{%- endif -%}\n"
    "{%- endfor -%}\n";

static const char *const template_mistral =
    "{{- bos_token -}}\n"
    "{%- for message in messages -%}\n"
    "{%- if message['role'] == 'user' -%}{{- '[INST] ' + message['content'] + ' [/INST]' -}}\n"
    "{%- elif message['role'] == 'assistant' -%}{{- message['content'] + eos_token -}}{%- endif -%}\n"
    "{%- endfor -%}\n";

static const char *const template_tulu =
    "{%- for message in messages -%}\n"
    "{{- '<|' + message['role'] + '|>\\n' + message['content'] + '\\n' -}}\n"
    "{%- if message['role'] == 'assistant' -%}{{- eos_token -}}{%- endif -%}\n"
    "{%- endfor -%}\n"
    "{%- if add_generation_prompt -%}{{- '<|assistant|>\\n' -}}{%- endif -%}\n";

/* --- assembling ---------------------------------------------------------------------- */

static bool builder_init(builder *b, synth_vocab *v, bool bpe, int64_t target, uint64_t seed) {
    memset(b, 0, sizeof *b);
    b->v = v;
    b->bpe = bpe;
    b->target = target;
    b->cap = target + 1;
    b->n_slots = 1024;
    while (b->n_slots < (uint64_t)b->cap * 2) b->n_slots <<= 1;
    b->raw = calloc((size_t)b->cap, sizeof *b->raw);
    b->raw_len = calloc((size_t)b->cap, sizeof *b->raw_len);
    b->merge = calloc((size_t)b->cap, sizeof *b->merge);
    b->slots = calloc((size_t)b->n_slots, sizeof *b->slots);
    b->rng = synth_rng_at(seed, 0x766f636162ULL, 0);
    return b->raw && b->raw_len && b->merge && b->slots;
}

static void builder_free(builder *b) {
    free(b->raw);
    free(b->raw_len);
    free(b->merge);
    free(b->slots);
}

/* Raw bytes -> the string a byte-level BPE file stores (each byte as its
 * code point, UTF-8 encoded). */
static char *bpe_text(synth_vocab *v, const uint32_t *cp, const char *s, size_t n) {
    char buf[3 * MAX_WORD + 8];
    size_t k = 0;
    CLV_ASSERT(n <= MAX_WORD + 2);
    for (size_t i = 0; i < n; i++) k += (size_t)utf8_put(cp[(uint8_t)s[i]], buf + k);
    return arena_strndup(v, buf, k);
}

static clv_status set_token(synth_vocab *v, int64_t id, const char *text, int32_t type) {
    v->tokens[id] = arena_strndup(v, text, strlen(text));
    v->types[id] = type;
    return v->tokens[id] ? CLV_OK : clv_fail(CLV_ERR_NOMEM, "vocabulary: no memory");
}

static clv_status build_bpe(const clv_synth_shape *shape, uint64_t seed, synth_vocab *v) {
    int family = shape->family;
    const char *const *specials = NULL;
    size_t n_specials = 0;
    int64_t normal_real = 0;
    const char *llama3_specials[256];
    char reserved[256][40];
    static const char *const olmoe_specials[] = {"<|endoftext|>", "<|padding|>"};
    if (family == CLV_SYNTH_FAMILY_QWEN3) {
        specials = qwen3_specials;
        n_specials = N_OF(qwen3_specials);
        normal_real = 151643;
    } else if (family == CLV_SYNTH_FAMILY_LLAMA3) {
        /* 128000.. : begin/end of text, headers, eot, the rest reserved */
        int r = 0;
        for (int i = 0; i < 256; i++) {
            const char *name = i == 0 ? "<|begin_of_text|>" : i == 1 ? "<|end_of_text|>" : i == 6 ? "<|start_header_id|>"
                             : i == 7 ? "<|end_header_id|>" : i == 9 ? "<|eot_id|>" : NULL;
            if (!name) {
                snprintf(reserved[i], sizeof reserved[i], "<|reserved_special_token_%d|>", r++);
                name = reserved[i];
            }
            llama3_specials[i] = name;
        }
        specials = llama3_specials;
        n_specials = 256;
        normal_real = 128000;
    } else {
        specials = olmoe_specials;
        n_specials = N_OF(olmoe_specials);
        normal_real = 50278;
    }
    int64_t n_normal = shape->n_vocab - (int64_t)n_specials;
    if (n_normal > normal_real) n_normal = normal_real;
    int64_t n_pad = shape->n_vocab - n_normal - (int64_t)n_specials;

    builder b;
    if (!builder_init(&b, v, true, n_normal, seed)) {
        builder_free(&b);
        return clv_fail(CLV_ERR_NOMEM, "vocabulary: no memory");
    }
    uint32_t cp[256];
    uint8_t order[256];
    byte_codepoints(cp, order);
    clv_status st = CLV_OK;
    for (int i = 0; i < 256 && !st; i++) {
        char c = (char)order[i];
        if (!add(&b, &c, 1, -1, -1)) st = clv_fail(CLV_ERR_NOMEM, "vocabulary: no memory");
    }
    if (!st) st = fill(&b, family);

    v->n_tokens = shape->n_vocab;
    v->tokens = calloc((size_t)v->n_tokens, sizeof *v->tokens);
    v->types = calloc((size_t)v->n_tokens, sizeof *v->types);
    v->merges = calloc((size_t)(b.n_merges ? b.n_merges : 1), sizeof *v->merges);
    if (!st && (!v->tokens || !v->types || !v->merges)) st = clv_fail(CLV_ERR_NOMEM, "vocabulary: no memory");
    for (int64_t i = 0; i < b.n && !st; i++) {
        v->tokens[i] = bpe_text(v, cp, b.raw[i], b.raw_len[i]);
        v->types[i] = 1;
        if (!v->tokens[i]) st = clv_fail(CLV_ERR_NOMEM, "vocabulary: no memory");
        if (!st && b.merge[i][0] >= 0) {
            /* "left right", in the stored (mapped) spelling */
            const char *l = v->tokens[b.merge[i][0]], *r = v->tokens[b.merge[i][1]];
            size_t ll = strlen(l), rl = strlen(r);
            char *m = arena_alloc(v, ll + rl + 2);
            if (!m) {
                st = clv_fail(CLV_ERR_NOMEM, "vocabulary: no memory");
                break;
            }
            memcpy(m, l, ll);
            m[ll] = ' ';
            memcpy(m + ll + 1, r, rl + 1);
            v->merges[v->n_merges++] = m;
        }
    }
    builder_free(&b);
    int64_t id = n_normal;
    for (size_t i = 0; i < n_specials && !st; i++, id++) {
        /* Qwen's tool and think tags are user-defined tokens, the rest control */
        int32_t type = (family == CLV_SYNTH_FAMILY_QWEN3 && specials[i][1] != '|') ? 4 : 3;
        st = set_token(v, id, specials[i], type);
    }
    for (int64_t i = 0; i < n_pad && !st; i++, id++) {
        char name[32];
        snprintf(name, sizeof name, "[PAD%lld]", (long long)id);
        st = set_token(v, id, name, 5);
    }
    if (st) return st;

    v->model = "gpt2";
    v->unk = -1;
    v->eot = -1;
    if (family == CLV_SYNTH_FAMILY_QWEN3) {
        v->pre = "qwen2";
        v->bos = n_normal;     /* <|endoftext|> */
        v->eos = n_normal + 2; /* <|im_end|> */
        v->pad = n_normal;
        v->add_bos = false;
        v->chat_template = template_chatml;
    } else if (family == CLV_SYNTH_FAMILY_LLAMA3) {
        v->pre = "llama-bpe";
        v->bos = n_normal;
        v->eos = n_normal + 1;
        v->eot = n_normal + 9;
        v->pad = -1;
        v->add_bos = true;
        v->chat_template = template_llama3;
    } else {
        v->pre = "olmo";
        v->bos = n_normal; /* <|endoftext|> doubles as bos, as in OLMoE */
        v->eos = n_normal;
        v->pad = n_normal + 1;
        v->add_bos = false;
        v->chat_template = template_tulu;
    }
    return CLV_OK;
}

static clv_status build_spm(const clv_synth_shape *shape, uint64_t seed, synth_vocab *v) {
    const int64_t n_fixed = 3 + 256; /* <unk> <s> </s>, then <0x00>..<0xFF> */
    builder b;
    if (!builder_init(&b, v, false, shape->n_vocab - n_fixed, seed)) {
        builder_free(&b);
        return clv_fail(CLV_ERR_NOMEM, "vocabulary: no memory");
    }
    clv_status st = CLV_OK;
    /* single characters first, so every later piece splits into two pieces */
    if (ensure(&b, "\xE2\x96\x81", 3) < 0) st = clv_fail(CLV_ERR_NOMEM, "vocabulary: no memory");
    for (int c = 33; c < 127 && !st; c++) {
        char ch = (char)c;
        if (ensure(&b, &ch, 1) < 0) st = clv_fail(CLV_ERR_NOMEM, "vocabulary: no memory");
    }
    if (!st) st = fill(&b, shape->family);

    v->n_tokens = shape->n_vocab;
    v->tokens = calloc((size_t)v->n_tokens, sizeof *v->tokens);
    v->types = calloc((size_t)v->n_tokens, sizeof *v->types);
    v->scores = calloc((size_t)v->n_tokens, sizeof *v->scores);
    if (!st && (!v->tokens || !v->types || !v->scores)) st = clv_fail(CLV_ERR_NOMEM, "vocabulary: no memory");
    if (!st) st = set_token(v, 0, "<unk>", 2);
    if (!st) st = set_token(v, 1, "<s>", 3);
    if (!st) st = set_token(v, 2, "</s>", 3);
    for (int i = 0; i < 256 && !st; i++) {
        char name[8];
        snprintf(name, sizeof name, "<0x%02X>", i);
        st = set_token(v, 3 + i, name, 6);
    }
    for (int64_t i = 0; i < b.n && !st; i++) {
        int64_t id = n_fixed + i;
        v->tokens[id] = arena_strndup(v, b.raw[i], b.raw_len[i]);
        v->types[id] = 1;
        v->scores[id] = -(float)i; /* earlier (more common) pieces score higher */
        if (!v->tokens[id]) st = clv_fail(CLV_ERR_NOMEM, "vocabulary: no memory");
    }
    /* a tiny vocabulary may stop short of its size: fill with unused pieces */
    for (int64_t id = n_fixed + b.n; id < v->n_tokens && !st; id++) {
        char name[32];
        snprintf(name, sizeof name, "<unused%lld>", (long long)id);
        st = set_token(v, id, name, 5);
    }
    builder_free(&b);
    if (st) return st;
    v->model = "llama";
    v->pre = NULL;
    v->unk = 0;
    v->bos = 1;
    v->eos = 2;
    v->eot = -1;
    v->pad = -1;
    v->add_bos = true;
    v->add_space_prefix = true;
    v->chat_template = shape->family == CLV_SYNTH_FAMILY_LLAMA2 ? template_llama2 : template_mistral;
    return CLV_OK;
}

clv_status synth_vocab_build(const clv_synth_shape *shape, uint64_t seed, synth_vocab *out) {
    memset(out, 0, sizeof *out);
    bool spm = shape->family == CLV_SYNTH_FAMILY_LLAMA2 || shape->family == CLV_SYNTH_FAMILY_MISTRAL;
    clv_status st = spm ? build_spm(shape, seed, out) : build_bpe(shape, seed, out);
    if (st) synth_vocab_free(out);
    return st;
}
