/* A counting run through the engine measures back the expert popularity that
 * `cleave mkmodel --router-skew zipf:ALPHA` planted: N tokens (default 2000)
 * are decoded, every routing is counted per layer, and the measured shares
 * are compared with cleave.synthetic.router.popularity. Per layer it prints
 * the Zipf exponent fitted (least squares of log share on log rank) to the
 * planted and to the measured shares, and their correlation; and checks that
 * the last token's logits are finite and of sane spread.
 *
 *   test_router_skew MODEL.gguf [N_TOKENS] [MIN_CORRELATION]
 */
#include <math.h>

#include "context.h"
#include "model.h"
#include "test.h"

static int cmp_desc(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x < y) - (x > y);
}

/* Exponent of share ~ rank^-alpha, over the nonzero shares. */
static double fit_zipf(const double *share, int64_t n) {
    double *s = malloc((size_t)n * sizeof *s);
    memcpy(s, share, (size_t)n * sizeof *s);
    qsort(s, (size_t)n, sizeof *s, cmp_desc);
    double sx = 0, sy = 0, sxx = 0, sxy = 0;
    int64_t m = 0;
    for (int64_t r = 0; r < n; r++) {
        if (s[r] <= 0) continue;
        double x = log((double)(r + 1)), y = log(s[r]);
        sx += x, sy += y, sxx += x * x, sxy += x * y;
        m++;
    }
    free(s);
    double den = (double)m * sxx - sx * sx;
    return den > 0 ? -((double)m * sxy - sx * sy) / den : 0;
}

int main(int argc, char **argv) {
    if (argc < 2) TEST_SKIP("usage: test_router_skew MODEL.gguf [N_TOKENS] [MIN_CORRELATION]");
    int64_t n_tokens = argc > 2 ? atoll(argv[2]) : 2000;
    double min_corr = argc > 3 ? atof(argv[3]) : 0.95;
    clv_model *m = NULL;
    CHECK_STATUS(clv_model_load(argv[1], NULL, &m), CLV_OK);
    if (!m) return test_finish("test_router_skew");
    const clv_hparams *hp = &m->hp;
    const clv_gguf_value *pop = NULL, *alpha = NULL;
    CHECK_STATUS(clv_gguf_get_arr(m->gguf, "cleave.synthetic.router.popularity", CLV_GGUF_F32, &pop), CLV_OK);
    clv_gguf_get_arr(m->gguf, "cleave.synthetic.router.alpha_per_layer", CLV_GGUF_F32, &alpha);
    CHECK(hp->n_expert > 0 && pop && pop->v.arr.count == (uint64_t)(hp->n_layer * hp->n_expert));
    clv_context_params cp = clv_context_default_params();
    cp.n_ctx = n_tokens;
    cp.count_experts = true;
    clv_context *ctx = NULL;
    CHECK_STATUS(clv_context_create(m, &cp, &ctx), CLV_OK);
    if (!ctx || !pop || !ctx->expert_counts) return test_finish("test_router_skew");

    /* Random tokens: the planted skew rides on every embedding row. */
    int32_t *tokens = malloc((size_t)n_tokens * sizeof *tokens);
    uint64_t x = 0x2545F4914F6CDD1Dull;
    for (int64_t i = 0; i < n_tokens; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        tokens[i] = (int32_t)(x % (uint64_t)hp->n_vocab);
    }
    clv_batch b = {.n_tokens = n_tokens, .tokens = tokens};
    CHECK_STATUS(clv_decode(ctx, &b), CLV_OK);

    /* The random weights keep activations and logits finite and sane. */
    const float *logits = clv_context_logits(ctx, 0);
    double sum = 0, sum2 = 0;
    int64_t bad = 0;
    for (int64_t i = 0; i < hp->n_vocab; i++) {
        if (!isfinite(logits[i])) bad++;
        sum += logits[i];
        sum2 += (double)logits[i] * logits[i];
    }
    double mean = sum / (double)hp->n_vocab, std = sqrt(fmax(sum2 / (double)hp->n_vocab - mean * mean, 0));
    printf("logits after %lld tokens: %lld non-finite, mean %.3f, std %.3f\n", (long long)n_tokens, (long long)bad, mean,
           std);
    CHECK(bad == 0 && std > 0.01 && std < 100);

    int64_t E = hp->n_expert, K = hp->n_expert_used;
    double *planted = malloc((size_t)E * sizeof *planted), *measured = malloc((size_t)E * sizeof *measured);
    const float *pv = pop->v.arr.data;
    printf("layer  planted alpha  fit(planted)  fit(measured)  correlation  max |diff| of shares\n");
    for (int64_t il = 0; il < hp->n_layer; il++) {
        double sp = 0, sm = 0;
        for (int64_t e = 0; e < E; e++) {
            planted[e] = pv[il * E + e] / (double)K;
            measured[e] = (double)ctx->expert_counts[il * E + e] / (double)(n_tokens * K);
            sp += planted[e];
            sm += measured[e];
        }
        double mp = sp / (double)E, mm = sm / (double)E, cov = 0, vp = 0, vm = 0, maxd = 0;
        for (int64_t e = 0; e < E; e++) {
            cov += (planted[e] - mp) * (measured[e] - mm);
            vp += (planted[e] - mp) * (planted[e] - mp);
            vm += (measured[e] - mm) * (measured[e] - mm);
            maxd = fmax(maxd, fabs(planted[e] - measured[e]));
        }
        double corr = vp > 0 && vm > 0 ? cov / sqrt(vp * vm) : 0;
        printf("%5lld  %13.3f  %12.3f  %13.3f  %11.4f  %.4f\n", (long long)il,
               alpha ? ((const float *)alpha->v.arr.data)[il] : NAN, fit_zipf(planted, E), fit_zipf(measured, E), corr,
               maxd);
        CHECK_MSG(fabs(sm - 1.0) < 1e-9, "layer %lld: shares sum to %g", (long long)il, sm);
        CHECK_MSG(corr >= min_corr, "layer %lld: correlation %.4f < %.2f", (long long)il, corr, min_corr);
    }
    free(planted);
    free(measured);
    free(tokens);
    clv_context_free(ctx);
    clv_model_free(m);
    return test_finish("test_router_skew");
}
