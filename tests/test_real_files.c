/* Real files. Downloads (SmolLM2-135M-Instruct, Gemma 3 270M): the reader sees
 * what the files must contain, and every weight decodes to finite values with
 * plausible statistics; skipped when not in the cache (scripts/get-model.sh
 * fetches them, scripts/test.sh does so before ctest). The vocabulary files in
 * ../shared/fixtures/vocab: architecture, sizes and vocabulary as published. */
#include <math.h>
#include <unistd.h>

#include "gguf.h"
#include "tensor_stats.h"
#include "test.h"
#include "types.h"

typedef struct expected_model {
    const char *file;
    const char *arch;
    uint32_t n_layers, n_embd;
    uint64_t n_vocab;
    int64_t n_tensors;
    uint64_t n_params;
} expected_model;

static const expected_model models[] = {
    {"SmolLM2-135M-Instruct.Q4_1.gguf", "llama", 30, 576, 49152, 272, 134515008},
    {"gemma-3-270m-q4_k_m.gguf", "gemma3", 18, 640, 262144, 236, 268098176},
};

static const char *model_path(const char *file) {
    static char path[4096];
    test_model_path(file, path, sizeof path);
    return path;
}

static int check_model(const expected_model *m) {
    const char *path = model_path(m->file);
    if (access(path, R_OK) != 0) {
        printf("model %s not in the cache (scripts/get-model.sh fetches it)\n", m->file);
        return 0;
    }
    clv_gguf *g;
    CHECK_STATUS(clv_gguf_open(path, NULL, &g), CLV_OK);
    if (!g) return 1;
    const char *arch = NULL;
    CHECK_STATUS(clv_gguf_get_str(g, "general.architecture", &arch), CLV_OK);
    CHECK(arch && !strcmp(arch, m->arch));
    char key[128];
    uint32_t v = 0;
    snprintf(key, sizeof key, "%s.block_count", m->arch);
    CHECK_STATUS(clv_gguf_get_u32(g, key, &v), CLV_OK);
    CHECK_EQ_INT(v, m->n_layers);
    snprintf(key, sizeof key, "%s.embedding_length", m->arch);
    CHECK_STATUS(clv_gguf_get_u32(g, key, &v), CLV_OK);
    CHECK_EQ_INT(v, m->n_embd);
    const clv_gguf_value *tokens;
    CHECK_STATUS(clv_gguf_get_arr(g, "tokenizer.ggml.tokens", CLV_GGUF_STRING, &tokens), CLV_OK);
    CHECK(tokens && tokens->v.arr.count == m->n_vocab);
    CHECK_EQ_INT(clv_gguf_n_tensors(g), m->n_tensors);

    uint64_t params = 0;
    int decoded = 0;
    for (int64_t i = 0; i < clv_gguf_n_tensors(g); i++) {
        const clv_gguf_tensor *t = clv_gguf_tensor_at(g, i);
        params += (uint64_t)clv_gguf_tensor_n_elems(t);
        clv_tensor_stats s;
        clv_status st = clv_tensor_stats_compute(g, t, &s);
        CHECK_MSG(st == CLV_OK, "%s: %s", t->name, clv_last_error());
        if (st) continue;
        decoded++;
        CHECK_MSG(s.nonfinite == 0, "%s: %lld non-finite values", t->name, (long long)s.nonfinite);
        CHECK_MSG(fabs(s.max) < 1e4 && fabs(s.min) < 1e4, "%s: values up to %g", t->name, fmax(fabs(s.min), s.max));
        if (t->n_dims >= 2) {
            /* Trained weight matrices: centred, neither collapsed nor exploding. */
            CHECK_MSG(s.std > 1e-3 && s.std < 2.0, "%s: std %g", t->name, s.std);
            CHECK_MSG(fabs(s.mean) < 0.05 * s.std + 1e-3, "%s: mean %g with std %g", t->name, s.mean, s.std);
            CHECK_MSG(s.zeros < s.n / 2, "%s: %lld of %lld values are zero", t->name, (long long)s.zeros, (long long)s.n);
        }
    }
    CHECK(params == m->n_params);
    printf("%s: %s, %lld tensors decoded, %llu parameters, all finite\n", m->file, m->arch, (long long)decoded,
           (unsigned long long)params);
    clv_gguf_free(g);
    return 1;
}

typedef struct expected_vocab {
    const char *file;
    const char *arch;
    uint32_t n_layers, n_embd;
    uint64_t n_vocab, n_merges;
    const char *model, *pre;
} expected_vocab;

static const expected_vocab vocabs[] = {
    {"ggml-vocab-llama-spm.gguf", "llama", 32, 4096, 32000, 0, "llama", "default"},
    {"ggml-vocab-phi-3.gguf", "phi3", 32, 3072, 32064, 0, "llama", "default"},
    {"ggml-vocab-gpt-2.gguf", "gpt2", 12, 768, 50257, 50000, "gpt2", "gpt-2"},
    {"ggml-vocab-deepseek-llm.gguf", "llama", 30, 4096, 102400, 99757, "gpt2", "deepseek-llm"},
    {"ggml-vocab-deepseek-coder.gguf", "llama", 32, 4096, 32256, 31757, "gpt2", "deepseek-coder"},
    {"ggml-vocab-starcoder.gguf", "starcoder2", 30, 3072, 49152, 48872, "gpt2", "starcoder"},
};

static int check_vocab(const expected_vocab *e) {
    const char *dir = test_fixtures_dir();
    char path[8192];
    snprintf(path, sizeof path, "%s/vocab/%s", dir ? dir : "", e->file);
    if (!dir || access(path, R_OK) != 0) return 0;
    clv_gguf *g;
    CHECK_STATUS(clv_gguf_open(path, NULL, &g), CLV_OK);
    if (!g) return 1;
    const char *s = NULL;
    CHECK_STATUS(clv_gguf_get_str(g, "general.architecture", &s), CLV_OK);
    CHECK(s && !strcmp(s, e->arch));
    char key[128];
    uint32_t v = 0;
    snprintf(key, sizeof key, "%s.block_count", e->arch);
    CHECK_STATUS(clv_gguf_get_u32(g, key, &v), CLV_OK);
    CHECK_EQ_INT(v, e->n_layers);
    snprintf(key, sizeof key, "%s.embedding_length", e->arch);
    CHECK_STATUS(clv_gguf_get_u32(g, key, &v), CLV_OK);
    CHECK_EQ_INT(v, e->n_embd);
    CHECK_STATUS(clv_gguf_get_str(g, "tokenizer.ggml.model", &s), CLV_OK);
    CHECK(s && !strcmp(s, e->model));
    CHECK_STATUS(clv_gguf_get_str(g, "tokenizer.ggml.pre", &s), CLV_OK);
    CHECK(s && !strcmp(s, e->pre));
    const clv_gguf_value *arr;
    CHECK_STATUS(clv_gguf_get_arr(g, "tokenizer.ggml.tokens", CLV_GGUF_STRING, &arr), CLV_OK);
    CHECK(arr && arr->v.arr.count == e->n_vocab);
    if (e->n_merges) {
        CHECK_STATUS(clv_gguf_get_arr(g, "tokenizer.ggml.merges", CLV_GGUF_STRING, &arr), CLV_OK);
        CHECK(arr && arr->v.arr.count == e->n_merges);
    } else {
        CHECK_STATUS(clv_gguf_get_arr(g, "tokenizer.ggml.scores", CLV_GGUF_F32, &arr), CLV_OK);
        CHECK(arr && arr->v.arr.count == e->n_vocab);
    }
    CHECK_EQ_INT(clv_gguf_n_tensors(g), 0); /* vocabulary only */
    printf("%s: %s, %u layers, n_embd %u, %llu tokens\n", e->file, e->arch, e->n_layers, e->n_embd,
           (unsigned long long)e->n_vocab);
    clv_gguf_free(g);
    return 1;
}

int main(void) {
    int found = 0;
    for (size_t i = 0; i < sizeof vocabs / sizeof vocabs[0]; i++) found += check_vocab(&vocabs[i]);
    for (size_t i = 0; i < sizeof models / sizeof models[0]; i++) found += check_model(&models[i]);
    if (!found) TEST_SKIP("no real model in the cache and no ../shared/fixtures");
    return test_finish("test_real_files");
}
