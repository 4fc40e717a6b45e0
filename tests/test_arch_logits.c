/* Every architecture against Hugging Face transformers: tiny random models
 * built by tests/gen_arch_fixtures.py, with transformers' logits for a fixed
 * prompt (tests/data/arch/manifest.json). Logits must agree within 1e-4
 * relative (per position: max |diff| / max |reference logit|) with the whole
 * prompt in one batch, and again decoding one token at a time.
 *
 * Quantized files are compared with transformers running their dequantized
 * weights, in reference mode (float activations), so the same 1e-4 holds.
 * The fast path quantizes activations to 8 bits; on these tiny random nets,
 * which amplify any perturbation (8-bit weights alone move their logits by
 * 4-75%, see the manifest), that is checked only for staying in the same
 * range as weight quantization, with routing kept out (dense archs). */
#include <math.h>

#include "arch_fixtures.h"
#include "context.h"
#include "json.h"
#include "model.h"
#include "test.h"
#include "types.h"

static void check_file(const char *fixture, const char *gguf, const char *logits, const int32_t *prompt, int64_t n_tok,
                       int64_t n_vocab, double tol, bool reference) {
    char path[8192];
    snprintf(path, sizeof path, "%s/%s", arch_fixture_dir(), gguf);
    float *ref = arch_fixture_logits(logits, n_tok * n_vocab);
    CHECK_MSG(ref != NULL, "%s: cannot read %s", fixture, logits);
    clv_model *m = NULL;
    clv_context *ctx = NULL;
    clv_status st = clv_model_load(path, NULL, &m);
    CHECK_MSG(st == CLV_OK, "%s: %s", gguf, clv_last_error());
    clv_context_params cp = clv_context_default_params();
    cp.n_ctx = n_tok;
    cp.n_batch = n_tok;
    cp.kv_type = CLV_TYPE_F32;
    cp.logits_all = true;
    cp.n_threads = 2;
    cp.f32_activations = reference;
    if (!st) st = clv_context_create(m, &cp, &ctx);
    CHECK_MSG(st == CLV_OK, "%s: %s", gguf, clv_last_error());
    if (st || !ref) goto done;
    CHECK_EQ_INT(m->hp.n_vocab, n_vocab);

    /* The whole prompt as one batch. */
    clv_batch b = {.n_tokens = n_tok, .tokens = prompt, .logits_all = true};
    CHECK_STATUS(clv_decode(ctx, &b), CLV_OK);
    double worst = 0;
    for (int64_t t = 0; t < n_tok && ctx->n_logits == n_tok; t++) {
        double e = arch_row_error(clv_context_logits(ctx, t), ref + t * n_vocab, n_vocab);
        if (!(e <= worst)) worst = e;
    }
    CHECK_MSG(worst <= tol, "%s (%s): batch logits rel error %.3g > %.3g", fixture, gguf, worst, tol);

    /* One token at a time (the decode path and the KV cache). */
    clv_context_truncate(ctx, 0);
    double worst1 = 0;
    for (int64_t t = 0; t < n_tok; t++) {
        clv_batch one = {.n_tokens = 1, .tokens = prompt + t, .logits_all = false};
        CHECK_STATUS(clv_decode(ctx, &one), CLV_OK);
        double e = arch_row_error(clv_context_logits(ctx, 0), ref + t * n_vocab, n_vocab);
        if (!(e <= worst1)) worst1 = e;
    }
    CHECK_MSG(worst1 <= tol, "%s (%s): token-by-token logits rel error %.3g > %.3g", fixture, gguf, worst1, tol);
    printf("%-18s %-28s %-9s batch %.2e  one-by-one %.2e  (bound %.0e)\n", fixture, gguf,
           reference ? "reference" : "fast", worst, worst1, tol);
done:
    clv_context_free(ctx);
    clv_model_free(m);
    free(ref);
}

int main(void) {
    clv_json *manifest = arch_fixture_manifest();
    if (!manifest) return 1;
    const clv_json *fixtures = clv_json_get(manifest, "fixtures");
    CHECK(clv_json_count(fixtures) >= 8);
    for (size_t i = 0; i < clv_json_count(fixtures); i++) {
        const clv_json *fx = clv_json_at(fixtures, i);
        const char *name = clv_json_get_string(fx, "name", "?");
        int64_t n_tok = clv_json_int(clv_json_get(fx, "n_tokens")), n_ids = 0;
        int64_t n_vocab = clv_json_int(clv_json_get(fx, "n_vocab"));
        int32_t *prompt = arch_fixture_prompt(fx, &n_ids);
        CHECK(prompt && n_ids == n_tok && n_tok > 0);
        if (!prompt) continue;
        const clv_json *files = clv_json_get(fx, "files");
        for (size_t j = 0; j < clv_json_count(files); j++) {
            size_t klen;
            const char *kind = clv_json_key_at(files, j, &klen);
            const clv_json *file = clv_json_value_at(files, j);
            bool f32 = klen == 3 && !memcmp(kind, "f32", 3);
            const char *gguf = clv_json_get_string(file, "gguf", ""), *logits = clv_json_get_string(file, "logits", "");
            check_file(name, gguf, logits, prompt, n_tok, n_vocab, 1e-4, !f32);
            if (f32) continue;
            /* The fast path: within the perturbation 8-bit weights cause. */
            double weight_quant_err = clv_json_number(clv_json_get(file, "dequant_vs_f32_rel_err"));
            bool moe = strstr(name, "moe") || strstr(name, "mixtral");
            if (!moe && weight_quant_err > 0) {
                check_file(name, gguf, logits, prompt, n_tok, n_vocab, 2 * weight_quant_err, false);
            }
        }
        free(prompt);
    }
    clv_json_free(manifest);
    return test_finish("test_arch_logits");
}
