/* SmolLM2-135M-Instruct and Gemma 3 270M against Hugging Face transformers
 * running the same GGUF (dequantized), from tests/gen_real_model_refs.py:
 *   - teacher forcing over 2048 tokens: cleave's top-1 token agrees at >= 99%
 *     of positions, and every disagreement is a near-tie (the reference's top
 *     two logits within NEAR_TIE);
 *   - greedy 64-token continuations of five prompts agree up to the first
 *     near-tie of the reference;
 *   - perplexity over 10240 tokens (chunks of 512) within 1%.
 * Runs the default fast path (oneDNN float GEMMs for prompt batches where
 * built in, 8-bit activations otherwise, F16 KV cache) with the
 * bounds below; with CLEAVE_TEST_REFERENCE=1 also the reference mode (float
 * activations, F32 KV cache), which is slow. Skips when the models are not
 * in the cache. */
#include <math.h>
#include <unistd.h>

#include "context.h"
#include "model.h"
#include "test.h"
#include "types.h"

#define MAX_IDS 16384

/* Bounds per mode. Reference mode: the acceptance bounds (top-1 >= 99%, only
 * near-ties of 0.05 may differ). The fast path quantizes activations to 8
 * bits (as llama.cpp does) for one-token steps and, without oneDNN, for
 * prompt batches too; that moves SmolLM2's and Gemma's logits by up to a few
 * tenths: measured 96.0% / 96.4% teacher-forced agreement with gaps up to
 * 0.37, so it is held to 95% and 0.5. With oneDNN, prompt batches (teacher
 * forcing, perplexity) multiply float activations and are held to the
 * acceptance bounds; greedy steps are one token at a time, so 0.5 there. */
typedef struct bounds {
    double min_agreement, near_tie, greedy_near_tie, max_ppl_error;
} bounds;
static const bounds reference_bounds = {0.99, 0.05, 0.05, 0.01};
static const bounds fast_bounds = {0.95, 0.5, 0.5, 0.01};
static const bounds fast_dnnl_bounds = {0.99, 0.05, 0.5, 0.01};

typedef struct ref_file {
    int32_t forced[MAX_IDS], forced_top[MAX_IDS];
    float forced_gap[MAX_IDS];
    int64_t n_forced;
    int32_t prompt[5][64], cont[5][64];
    float cont_gap[5][64];
    int64_t n_prompt[5], n_cont[5];
    int n_greedy;
    int32_t ppl_ids[MAX_IDS];
    int64_t ppl_ctx, ppl_chunks;
    double ppl_ref;
} ref_file;

static int read_ints(FILE *f, int32_t *out, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        if (fscanf(f, "%d", &out[i]) != 1) return -1;
    return 0;
}

static int read_floats(FILE *f, float *out, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        if (fscanf(f, "%f", &out[i]) != 1) return -1;
    return 0;
}

static int load_ref(const char *path, ref_file *r) {
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char word[64];
    int rc = 0;
    while (rc == 0 && fscanf(f, "%63s", word) == 1) {
        if (word[0] == '#') {
            int c;
            while ((c = fgetc(f)) != '\n' && c != EOF) {}
        } else if (!strcmp(word, "forced")) {
            long long n;
            rc = fscanf(f, "%lld", &n) == 1 && n > 0 && n <= MAX_IDS ? 0 : -1;
            r->n_forced = n;
            if (!rc) rc = read_ints(f, r->forced, n) || read_ints(f, r->forced_top, n) || read_floats(f, r->forced_gap, n);
        } else if (!strcmp(word, "greedy")) {
            long long np, nc;
            int g = r->n_greedy;
            rc = g < 5 && fscanf(f, "%lld %lld", &np, &nc) == 2 && np > 0 && np <= 64 && nc > 0 && nc <= 64 ? 0 : -1;
            if (!rc) {
                r->n_prompt[g] = np;
                r->n_cont[g] = nc;
                rc = read_ints(f, r->prompt[g], np) || read_ints(f, r->cont[g], nc) || read_floats(f, r->cont_gap[g], nc);
                r->n_greedy++;
            }
        } else if (!strcmp(word, "perplexity")) {
            long long ctx, chunks;
            rc = fscanf(f, "%lld %lld %lf", &ctx, &chunks, &r->ppl_ref) == 3 && ctx * chunks <= MAX_IDS ? 0 : -1;
            r->ppl_ctx = ctx;
            r->ppl_chunks = chunks;
            if (!rc) rc = read_ints(f, r->ppl_ids, ctx * chunks);
        } else {
            rc = -1;
        }
    }
    fclose(f);
    return rc;
}

static int32_t argmax(const float *v, int64_t n) {
    int32_t best = 0;
    for (int64_t i = 1; i < n; i++)
        if (v[i] > v[best]) best = (int32_t)i;
    return best;
}

static void check_model(const char *label, const char *gguf, const ref_file *r, bool reference) {
    const char *mode = reference ? "reference" : "fast";
    const bounds *bd = &reference_bounds;
    clv_model *m = NULL;
    clv_context *ctx = NULL;
    CHECK_STATUS(clv_model_load(gguf, NULL, &m), CLV_OK);
    if (!m) return;
    clv_context_params cp = clv_context_default_params();
    cp.n_ctx = r->n_forced;
    cp.n_batch = 512;
    cp.logits_all = true;
    cp.f32_activations = reference;
    cp.kv_type = reference ? CLV_TYPE_F32 : CLV_TYPE_F16;
    CHECK_STATUS(clv_context_create(m, &cp, &ctx), CLV_OK);
    if (!ctx) goto done;
    if (!reference) bd = ctx->params.gemm_min_batch > 0 ? &fast_dnnl_bounds : &fast_bounds;
    const double NEAR_TIE = bd->near_tie;
    int64_t V = m->hp.n_vocab;

    /* Teacher forcing. */
    int64_t agree = 0, bad_ties = 0;
    double worst_gap = 0;
    for (int64_t at = 0; at < r->n_forced; at += 512) {
        int64_t n = r->n_forced - at < 512 ? r->n_forced - at : 512;
        clv_batch b = {.n_tokens = n, .tokens = r->forced + at, .logits_all = true};
        CHECK_STATUS(clv_decode(ctx, &b), CLV_OK);
        for (int64_t i = 0; i < n; i++) {
            int64_t p = at + i;
            if (argmax(clv_context_logits(ctx, i), V) == r->forced_top[p]) {
                agree++;
            } else {
                if (r->forced_gap[p] > worst_gap) worst_gap = r->forced_gap[p];
                if (r->forced_gap[p] > NEAR_TIE) bad_ties++;
            }
        }
    }
    double rate = (double)agree / (double)r->n_forced;
    printf("%s %-9s teacher forcing: top-1 agrees at %lld/%lld (%.2f%%); disagreements with reference gap > %.2f: %lld "
           "(largest gap %.3f)\n",
           label, mode, (long long)agree, (long long)r->n_forced, 100 * rate, NEAR_TIE, (long long)bad_ties, worst_gap);
    CHECK_MSG(rate >= bd->min_agreement, "%s %s: top-1 agreement %.4f", label, mode, rate);
    CHECK_MSG(bad_ties == 0, "%s %s: %lld disagreements are not near-ties", label, mode, (long long)bad_ties);

    /* Greedy continuations, up to the reference's first near-tie. */
    for (int g = 0; g < r->n_greedy; g++) {
        clv_context_truncate(ctx, 0);
        clv_batch b = {.n_tokens = r->n_prompt[g], .tokens = r->prompt[g]};
        CHECK_STATUS(clv_decode(ctx, &b), CLV_OK);
        int64_t same = 0, checked = 0;
        for (int64_t s = 0; s < r->n_cont[g]; s++) {
            int32_t t = argmax(clv_context_logits(ctx, 0), V);
            if (r->cont_gap[g][s] < bd->greedy_near_tie) break; /* the reference itself is at a tie */
            checked++;
            if (t != r->cont[g][s]) break;
            same++;
            clv_batch one = {.n_tokens = 1, .tokens = &r->cont[g][s]};
            CHECK_STATUS(clv_decode(ctx, &one), CLV_OK);
        }
        printf("%s %-9s greedy prompt %d: %lld of %lld steps before the first near-tie agree\n", label, mode, g,
               (long long)same, (long long)checked);
        CHECK_MSG(same == checked, "%s %s: prompt %d diverges at step %lld", label, mode, g, (long long)same);
    }

    /* Perplexity (fast path only: 19 chunks in reference mode take too long). */
    if (reference) goto done;
    clv_context_free(ctx);
    ctx = NULL;
    cp.n_ctx = r->ppl_ctx;
    CHECK_STATUS(clv_context_create(m, &cp, &ctx), CLV_OK);
    if (!ctx) goto done;
    double nll = 0;
    int64_t count = 0;
    for (int64_t c = 0; c < r->ppl_chunks; c++) {
        int32_t chunk[4096];
        CLV_ASSERT(r->ppl_ctx <= 4096);
        memcpy(chunk, r->ppl_ids + c * r->ppl_ctx, (size_t)r->ppl_ctx * sizeof *chunk);
        if (r->forced[0] != r->ppl_ids[0]) chunk[0] = r->forced[0]; /* BOS, as the reference */
        clv_context_truncate(ctx, 0);
        clv_batch b = {.n_tokens = r->ppl_ctx, .tokens = chunk, .logits_all = true};
        CHECK_STATUS(clv_decode(ctx, &b), CLV_OK);
        for (int64_t j = r->ppl_ctx / 2; j < r->ppl_ctx - 1; j++) {
            const float *l = clv_context_logits(ctx, j);
            float mx = l[argmax(l, V)];
            double sum = 0;
            for (int64_t i = 0; i < V; i++) sum += exp((double)l[i] - mx);
            nll += log(sum) - ((double)l[chunk[j + 1]] - mx);
            count++;
        }
    }
    double ppl = exp(nll / (double)count);
    double rel = fabs(ppl - r->ppl_ref) / r->ppl_ref;
    printf("%s %-9s perplexity %.4f vs transformers %.4f (%.3f%%)\n", label, mode, ppl, r->ppl_ref, 100 * rel);
    CHECK_MSG(rel < bd->max_ppl_error, "%s %s: perplexity off by %.3f%%", label, mode, 100 * rel);
done:
    clv_context_free(ctx);
    clv_model_free(m);
}

int main(void) {
    static const char *names[2][2] = {{"smollm2-135m-instruct", "SmolLM2-135M-Instruct.Q4_1.gguf"},
                                      {"gemma3-270m", "gemma-3-270m-q4_k_m.gguf"}};
    int found = 0;
    static ref_file r;
    for (int i = 0; i < 2; i++) {
        char gguf[4096], ref[4096];
        test_model_path(names[i][1], gguf, sizeof gguf);
        snprintf(ref, sizeof ref, "%s/tests/data/real_%s.txt", CLEAVE_SOURCE_DIR, names[i][0]);
        if (access(gguf, R_OK) != 0) {
            printf("%s: not in the cache (scripts/get-model.sh %s)\n", names[i][0], names[i][0]);
            continue;
        }
        memset(&r, 0, sizeof r);
        CHECK_MSG(load_ref(ref, &r) == 0 && r.n_forced > 0 && r.n_greedy == 5 && r.ppl_chunks > 0,
                  "cannot read %s", ref);
        if (!r.n_forced) continue;
        found++;
        /* Reference mode is slow on small machines: CLEAVE_TEST_REFERENCE=1 adds it. */
        const char *ref_mode = getenv("CLEAVE_TEST_REFERENCE");
        if (ref_mode && *ref_mode == '1') check_model(names[i][0], gguf, &r, true);
        check_model(names[i][0], gguf, &r, false);
    }
    if (!found) TEST_SKIP("no real model in the cache");
    return test_finish("test_real_models");
}
