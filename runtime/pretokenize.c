/* The named pre-tokenizer splits. The expressions are those the tokenizers'
 * own definitions (tokenizer.json) use; \s is Unicode White_Space and the
 * \p classes come from the Unicode tables. */
#include "pretokenize.h"

#include <stdlib.h>
#include <string.h>

#define MAX_SPLITS 6

/* GPT-2's split, used by many byte-level vocabularies as is. */
#define RE_GPT2 \
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+"

/* Llama 3: case-insensitive contractions, a letter run with one leading
 * non-letter, digits in threes, punctuation runs that keep their newlines. */
#define RE_LLAMA3_HEAD \
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|"
#define RE_LLAMA3_TAIL "| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define RE_LLAMA3 RE_LLAMA3_HEAD "\\p{N}{1,3}" RE_LLAMA3_TAIL
#define RE_QWEN2 RE_LLAMA3_HEAD "\\p{N}" RE_LLAMA3_TAIL

/* Han, and the blocks from U+0800 to Hangul, as DeepSeek's tokenizers list them. */
#define RE_DEEPSEEK_CJK "[\\x{4E00}-\\x{9FA5}\\x{0800}-\\x{4E00}\\x{AC00}-\\x{D7FF}]+"

/* Upper/lower-case runs with their marks (GPT-4o, Llama 4, Tekken). */
#define RE_CASED_WORDS(APOS)                                                         \
    "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+" APOS \
    "|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*" APOS
#define RE_CASED_TAIL "| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"

#define RE_BLOOM " ?[^(\\s|.,!?\xe2\x80\xa6\xe3\x80\x82\xef\xbc\x8c\xe3\x80\x81\xe0\xa5\xa4\xdb\x94\xd8\x8c)]+"

typedef struct pretok_family {
    const char *name;
    bool ignore_merges;
    const char *splits[MAX_SPLITS]; /* applied in order; NULL-terminated */
} pretok_family;

static const pretok_family families[] = {
    {"gpt-2", false, {RE_GPT2}},
    {"llama3", true, {RE_LLAMA3}},
    {"llama3-merging", false, {RE_LLAMA3}}, /* same split, merges always applied */
    {"qwen2", false, {RE_QWEN2}},
    {"starcoder", false, {"\\p{N}", RE_GPT2}},
    {"deepseek-llm", false,
     {"[\\r\\n]", "\\s?\\p{LC}+",
      "\\s?[!-/:-~\\x{FF01}-\\x{FF0F}\\x{FF1A}-\\x{FF5E}\\x{2018}-\\x{201F}\\x{3000}-\\x{3002}]+",
      "\\s+$", RE_DEEPSEEK_CJK, "\\p{N}+"}},
    {"deepseek-coder", false,
     {"[\\r\\n]", "\\s?\\p{L}+", "\\s?\\p{P}+", RE_DEEPSEEK_CJK, "\\p{N}"}},
    {"deepseek-v3", false,
     {"\\p{N}{1,3}", "[\\x{4E00}-\\x{9FA5}\\x{3040}-\\x{309F}\\x{30A0}-\\x{30FF}]+",
      "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\\r\\n\\p{L}\\p{P}\\p{S}]?"
      "[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"}},
    {"falcon", false,
     {"[\\p{P}\\$\\+<=>\\^~\\|`]+",
      "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)",
      "[0-9][0-9][0-9]"}},
    {"bloom", false, {RE_BLOOM}},
    {"viking", false, {RE_BLOOM, "\\p{N}"}},
    {"gpt-4o", false,
     {RE_CASED_WORDS("(?i:'s|'t|'re|'ve|'m|'ll|'d)?") "|\\p{N}{1,3}" RE_CASED_TAIL}},
    {"tekken", true, {RE_CASED_WORDS("") "|\\p{N}" RE_CASED_TAIL}},
};

/* tokenizer.ggml.pre values and the family each uses. */
static const struct {
    const char *name;
    const char *family;
} aliases[] = {
    {"default", "gpt-2"},       {"gpt-2", "gpt-2"},           {"phi-2", "gpt-2"},
    {"mpt", "gpt-2"},           {"olmo", "gpt-2"},            {"jais", "gpt-2"},
    {"roberta-bpe", "gpt-2"},   {"llama3", "llama3"},         {"llama-v3", "llama3"},
    {"llama-bpe", "llama3"},    {"falcon3", "llama3"},        {"falcon-h1", "llama3"},
    {"pixtral", "llama3"},      {"midm-2.0", "llama3"},       {"lfm2", "llama3"},
    {"dbrx", "llama3-merging"}, {"smaug-bpe", "llama3-merging"},
    {"chatglm-bpe", "llama3-merging"},
    {"qwen2", "qwen2"},         {"deepseek-r1-qwen", "qwen2"}, {"stablelm2", "qwen2"},
    {"hunyuan", "qwen2"},       {"megrez", "qwen2"},
    {"starcoder", "starcoder"}, {"smollm", "starcoder"},      {"refact", "starcoder"},
    {"command-r", "starcoder"}, {"codeshell", "starcoder"},   {"exaone", "starcoder"},
    {"minerva-7b", "starcoder"},
    {"deepseek-llm", "deepseek-llm"}, {"deepseek-coder", "deepseek-coder"},
    {"deepseek-v3", "deepseek-v3"},
    {"falcon", "falcon"},
    {"bloom", "bloom"},         {"poro-chat", "bloom"},       {"gpt3-finnish", "bloom"},
    {"viking", "viking"},
    {"gpt-4o", "gpt-4o"},       {"llama4", "gpt-4o"},
    {"tekken", "tekken"},
};

#define N_ALIASES (sizeof aliases / sizeof aliases[0])
#define N_FAMILIES (sizeof families / sizeof families[0])

struct clv_pretok {
    const pretok_family *family;
    clv_regex *splits[MAX_SPLITS];
    int n_splits;
};

const char *clv_pretok_name_at(size_t i) { return i < N_ALIASES ? aliases[i].name : NULL; }

clv_status clv_pretok_create(const char *name, clv_pretok **out) {
    *out = NULL;
    if (!name || !*name) name = "default";
    const char *family = NULL;
    for (size_t i = 0; i < N_ALIASES && !family; i++)
        if (!strcmp(aliases[i].name, name)) family = aliases[i].family;
    if (!family)
        return clv_fail(CLV_ERR_UNSUPPORTED,
                        "unknown pre-tokenizer '%s' (tokenizer.ggml.pre); cleave knows gpt-2, "
                        "llama3/llama-bpe, qwen2, smollm, starcoder, deepseek-llm, "
                        "deepseek-coder, deepseek-v3, falcon, bloom, gpt-4o, tekken and their "
                        "aliases",
                        name);
    const pretok_family *fam = NULL;
    for (size_t i = 0; i < N_FAMILIES; i++)
        if (!strcmp(families[i].name, family)) fam = &families[i];
    CLV_ASSERT(fam);

    clv_pretok *pt = calloc(1, sizeof *pt);
    if (!pt) return clv_fail(CLV_ERR_NOMEM, "out of memory creating a pre-tokenizer");
    pt->family = fam;
    for (int i = 0; i < MAX_SPLITS && fam->splits[i]; i++) {
        clv_status st = clv_regex_compile(fam->splits[i], &pt->splits[i]);
        CLV_ASSERT(st == CLV_OK); /* the table is ours: a bad pattern is a bug */
        pt->n_splits++;
    }
    *out = pt;
    return CLV_OK;
}

void clv_pretok_free(clv_pretok *pt) {
    if (!pt) return;
    for (int i = 0; i < pt->n_splits; i++) clv_regex_free(pt->splits[i]);
    free(pt);
}

const char *clv_pretok_family(const clv_pretok *pt) { return pt->family->name; }

bool clv_pretok_ignore_merges(const clv_pretok *pt) { return pt->family->ignore_merges; }

clv_status clv_pretok_split(const clv_pretok *pt, const uint32_t *cps, uint32_t n,
                            clv_span_vec *out, clv_span_vec *tmp) {
    out->n = 0;
    if (n == 0) return CLV_OK;
    clv_status st = clv_span_vec_push(out, 0, n);
    for (int i = 0; i < pt->n_splits && st == CLV_OK; i++) {
        tmp->n = 0;
        for (size_t j = 0; j < out->n && st == CLV_OK; j++)
            st = clv_regex_split(pt->splits[i], cps, out->data[j].start, out->data[j].end, tmp);
        clv_span_vec swap = *out;
        *out = *tmp;
        *tmp = swap;
    }
    return st;
}
