/* Bad models and bad requests give clear statuses, never crashes: a missing
 * tensor, a mis-shaped one, an unknown architecture, a missing
 * hyper-parameter (each message names the culprit); tokens outside the
 * vocabulary and a full context leave the context usable. */
#include <unistd.h>

#include "context.h"
#include "gguf_writer.h"
#include "model.h"
#include "test.h"
#include "types.h"

/* Copies src to dst, dropping tensor `drop`, giving tensor `reshape` the
 * shape of its transpose, and setting general.architecture to `arch` (each
 * NULL for no change) and dropping metadata key `drop_key`. */
static clv_status copy_model(const char *src, const char *dst, const char *drop, const char *reshape,
                             const char *arch, const char *drop_key) {
    clv_gguf *g;
    clv_status st = clv_gguf_open(src, NULL, &g);
    if (st) return st;
    clv_gguf_writer *w;
    if ((st = clv_gguf_writer_open(dst, NULL, &w))) goto out;
    for (int64_t i = 0; i < clv_gguf_n_kv(g) && !st; i++) {
        const clv_gguf_kv *kv = clv_gguf_kv_at(g, i);
        if (drop_key && !strcmp(kv->key.data, drop_key)) continue;
        if (arch && !strcmp(kv->key.data, "general.architecture")) st = clv_gguf_writer_set_str(w, kv->key.data, arch);
        else st = clv_gguf_writer_set_value(w, kv->key.data, &kv->value);
    }
    for (int64_t i = 0; i < clv_gguf_n_tensors(g) && !st; i++) {
        const clv_gguf_tensor *t = clv_gguf_tensor_at(g, i);
        if (drop && !strcmp(t->name, drop)) continue;
        int64_t ne[4] = {t->ne[0], t->ne[1], t->ne[2], t->ne[3]};
        if (reshape && !strcmp(t->name, reshape)) {
            ne[0] = t->ne[1];
            ne[1] = t->ne[0];
        }
        st = clv_gguf_writer_add_tensor(w, t->name, t->type, t->n_dims, ne);
    }
    if (!st) st = clv_gguf_writer_begin_data(w);
    for (int64_t i = 0; i < clv_gguf_n_tensors(g) && !st; i++) {
        const clv_gguf_tensor *t = clv_gguf_tensor_at(g, i);
        if (drop && !strcmp(t->name, drop)) continue;
        st = clv_gguf_writer_write(w, clv_gguf_tensor_data(g, t), t->size);
    }
    if (!st) {
        st = clv_gguf_writer_finish(w);
        w = NULL;
    }
    clv_gguf_writer_free(w);
out:
    clv_gguf_free(g);
    return st;
}

static void expect_load_error(const char *path, clv_status want, const char *needle, const char *label) {
    clv_model *m = NULL;
    clv_status st = clv_model_load(path, NULL, &m);
    CHECK_MSG(st == want, "%s: got %s (%s)", label, clv_status_str(st), clv_last_error());
    CHECK_MSG(m == NULL, "%s: model returned on failure", label);
    CHECK_MSG(strstr(clv_last_error(), needle) != NULL, "%s: message lacks '%s': %s", label, needle, clv_last_error());
    clv_model_free(m);
}

int main(void) {
    char src[4096], dst[256];
    snprintf(src, sizeof src, "%s/tests/data/arch/llama.f32.gguf", CLEAVE_SOURCE_DIR);
    snprintf(dst, sizeof dst, "/tmp/cleave-test-model-errors-%d.gguf", (int)getpid());

    CHECK_STATUS(copy_model(src, dst, "blk.1.ffn_up.weight", NULL, NULL, NULL), CLV_OK);
    expect_load_error(dst, CLV_ERR_NOT_FOUND, "'blk.1.ffn_up.weight' is missing", "missing tensor");
    CHECK_STATUS(copy_model(src, dst, NULL, "blk.0.attn_k.weight", NULL, NULL), CLV_OK);
    expect_load_error(dst, CLV_ERR_FORMAT, "'blk.0.attn_k.weight' has shape", "transposed tensor");
    CHECK_STATUS(copy_model(src, dst, NULL, "blk.0.ffn_down.weight", NULL, NULL), CLV_OK);
    expect_load_error(dst, CLV_ERR_FORMAT, "'blk.0.ffn_down.weight' has shape", "transposed ffn_down");
    CHECK_STATUS(copy_model(src, dst, NULL, NULL, "mamba9", NULL), CLV_OK);
    expect_load_error(dst, CLV_ERR_UNSUPPORTED, "architecture 'mamba9' is not supported (supported: llama", "arch");
    CHECK_STATUS(copy_model(src, dst, NULL, NULL, NULL, "llama.embedding_length"), CLV_OK);
    expect_load_error(dst, CLV_ERR_FORMAT, "'llama.embedding_length' is missing", "missing hparam");
    CHECK_STATUS(copy_model(src, dst, "token_embd.weight", NULL, NULL, NULL), CLV_OK);
    expect_load_error(dst, CLV_ERR_NOT_FOUND, "'token_embd.weight' is missing", "no embedding");
    CHECK_STATUS(copy_model(src, dst, NULL, NULL, NULL, "general.architecture"), CLV_OK);
    expect_load_error(dst, CLV_ERR_FORMAT, "general.architecture is missing", "no architecture");
    unlink(dst);

    /* Requests: bad tokens and a full context fail and change nothing. */
    clv_model *m = NULL;
    clv_context *ctx = NULL;
    CHECK_STATUS(clv_model_load(src, NULL, &m), CLV_OK);
    clv_context_params cp = clv_context_default_params();
    cp.n_ctx = 8;
    cp.n_threads = 1;
    if (m) CHECK_STATUS(clv_context_create(m, &cp, &ctx), CLV_OK);
    if (ctx) {
        int32_t toks[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
        int32_t bad[2] = {1, (int32_t)m->hp.n_vocab};
        clv_batch b = {.n_tokens = 2, .tokens = bad};
        CHECK_STATUS(clv_decode(ctx, &b), CLV_ERR_ARG);
        CHECK(strstr(clv_last_error(), "outside the vocabulary") != NULL);
        bad[1] = -1;
        CHECK_STATUS(clv_decode(ctx, &b), CLV_ERR_ARG);
        CHECK_EQ_INT(ctx->n_past, 0);
        b = (clv_batch){.n_tokens = 9, .tokens = toks};
        CHECK_STATUS(clv_decode(ctx, &b), CLV_ERR_RANGE);
        CHECK(strstr(clv_last_error(), "context full") != NULL);
        CHECK_EQ_INT(ctx->n_past, 0);
        b.n_tokens = 8;
        CHECK_STATUS(clv_decode(ctx, &b), CLV_OK);
        b.n_tokens = 1;
        CHECK_STATUS(clv_decode(ctx, &b), CLV_ERR_RANGE);
        CHECK_EQ_INT(ctx->n_past, 8);
        b = (clv_batch){.n_tokens = 2, .tokens = toks, .logits_all = true};
        clv_context_truncate(ctx, 0);
        CHECK_STATUS(clv_decode(ctx, &b), CLV_ERR_ARG); /* context made without logits_all */
    }
    clv_context_free(ctx);
    ctx = NULL;

    /* A GPU context is refused with the reason and nothing made: over a
     * one-byte budget on a GPU machine, "no CUDA device" without one, "built
     * without CUDA" in a CPU-only build. */
    cp.gpu = true;
    cp.vram_budget = 1;
    if (m) {
        clv_status st = clv_context_create(m, &cp, &ctx);
        CHECK(ctx == NULL);
        const char *msg = clv_last_error();
        CHECK_MSG((st == CLV_ERR_BUDGET && strstr(msg, "--vram is")) ||
                      (st == CLV_ERR_UNSUPPORTED && (strstr(msg, "built without CUDA") || strstr(msg, "CUDA device"))),
                  "GPU context: %s: %s", clv_status_str(st), msg);
        printf("GPU context over a 1-byte budget: %s\n", msg);
    }
    clv_model_free(m);
    clv_context_free(NULL);
    clv_model_free(NULL);
    return test_finish("test_model_errors");
}
