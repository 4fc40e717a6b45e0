/* `cleave perplexity -m FILE.gguf -f TEXT [-c 512]`: llama-perplexity's
 * conventions: the text is cut into chunks of the context size, each chunk
 * starts with BOS (when the vocabulary adds one) and is scored on its second
 * half, so every scored token sees at least half a context of history.
 *
 * --save-logits FILE keeps the logits of every position of every chunk;
 * --compare-logits FILE compares this run's against them, position by
 * position: top-1 agreement and KL divergence. That is how one backend, KV
 * type, quantization or sparsity setting is checked against another on a
 * real text (docs/cli.md). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "generate.h"
#include "options.h"
#include "tokenizer.h"

static void usage(FILE *f) {
    fprintf(f, "usage: cleave perplexity -m FILE.gguf -f TEXT [-c 512] [--chunks N] [options]\n\n"
               "Prints the running perplexity per chunk and a final estimate with its\n"
               "standard error, scoring the second half of each context-sized chunk.\n\n"
               "  -f, --file FILE         the text\n"
               "  --chunks N              score at most N chunks (default: all)\n"
               "  --save-logits FILE      write the logits of every position (float32; large:\n"
               "                          4 bytes x vocabulary x tokens)\n"
               "  --compare-logits FILE   compare every position with a --save-logits file of the\n"
               "                          same text and -c: top-1 agreement, KL divergence\n");
    clv_options_usage(f);
}

/* -log softmax(logits)[target], in double. */
static double token_nll(const float *logits, int64_t n_vocab, int32_t target) {
    float mx = -INFINITY;
    for (int64_t i = 0; i < n_vocab; i++) mx = logits[i] > mx ? logits[i] : mx;
    double sum = 0;
    for (int64_t i = 0; i < n_vocab; i++) sum += exp((double)logits[i] - mx);
    return log(sum) - ((double)logits[target] - mx);
}

/* --- logits files ----------------------------------------------------------------- */

/* A header, then n_chunks * n_ctx rows of n_vocab little-endian float32. */
#define LOGITS_MAGIC "CLVLOGT1"

typedef struct logits_header {
    char magic[8];
    uint32_t n_vocab, n_ctx, n_chunks, reserved;
} logits_header;

typedef struct logits_compare {
    FILE *f;
    const char *path;
    float *base; /* [n_vocab] */
    int64_t n, same_top1;
    double kl_sum, kl_max;
} logits_compare;

static int64_t argmax(const float *v, int64_t n) {
    int64_t best = 0;
    for (int64_t i = 1; i < n; i++) best = v[i] > v[best] ? i : best;
    return best;
}

/* log-sum-exp of v, in double */
static double log_sum_exp(const float *v, int64_t n) {
    float mx = -INFINITY;
    for (int64_t i = 0; i < n; i++) mx = v[i] > mx ? v[i] : mx;
    double sum = 0;
    for (int64_t i = 0; i < n; i++) sum += exp((double)v[i] - mx);
    return log(sum) + mx;
}

/* KL(softmax(p) || softmax(q)) */
static double kl_divergence(const float *p, const float *q, int64_t n) {
    double lp = log_sum_exp(p, n), lq = log_sum_exp(q, n), kl = 0;
    for (int64_t i = 0; i < n; i++) {
        double a = (double)p[i] - lp;
        kl += exp(a) * (a - ((double)q[i] - lq));
    }
    return kl > 0 ? kl : 0;
}

static clv_status compare_open(logits_compare *c, const char *path, int64_t n_vocab, int64_t n_ctx, int64_t n_chunks) {
    c->path = path;
    c->f = fopen(path, "rb");
    if (!c->f) return clv_fail(CLV_ERR_IO, "cannot open %s", path);
    logits_header h;
    if (fread(&h, sizeof h, 1, c->f) != 1 || memcmp(h.magic, LOGITS_MAGIC, 8))
        return clv_fail(CLV_ERR_FORMAT, "%s is not a logits file (cleave perplexity --save-logits)", path);
    if (h.n_vocab != n_vocab || h.n_ctx != n_ctx) {
        return clv_fail(CLV_ERR_ARG, "%s holds %u-entry logits of %u-token chunks; this run has %lld and %lld", path,
                        h.n_vocab, h.n_ctx, (long long)n_vocab, (long long)n_ctx);
    }
    if (h.n_chunks < n_chunks)
        return clv_fail(CLV_ERR_ARG, "%s holds %u chunks; this run scores %lld (give --chunks %u)", path, h.n_chunks,
                        (long long)n_chunks, h.n_chunks);
    c->base = malloc((size_t)n_vocab * sizeof(float));
    if (!c->base) return clv_fail(CLV_ERR_NOMEM, "out of memory");
    return CLV_OK;
}

static clv_status compare_row(logits_compare *c, const float *logits, int64_t n_vocab) {
    if (fread(c->base, sizeof(float), (size_t)n_vocab, c->f) != (size_t)n_vocab)
        return clv_fail(CLV_ERR_FORMAT, "%s ends early (truncated?)", c->path);
    for (int64_t i = 0; i < n_vocab; i++) {
        if (!isfinite(c->base[i])) return clv_fail(CLV_ERR_FORMAT, "%s holds a non-finite logit", c->path);
    }
    double kl = kl_divergence(c->base, logits, n_vocab);
    c->kl_sum += kl;
    c->kl_max = kl > c->kl_max ? kl : c->kl_max;
    c->same_top1 += argmax(c->base, n_vocab) == argmax(logits, n_vocab);
    c->n++;
    return CLV_OK;
}

int clv_cmd_perplexity(int argc, char **argv) {
    clv_options o;
    clv_options_init(&o);
    o.n_ctx = 512;
    const char *file = NULL;
    const char *save_path = NULL, *compare_path = NULL;
    int64_t max_chunks = -1;
    for (int i = 1; i < argc; i++) {
        int r = clv_options_parse_one(&o, argc, argv, &i);
        if (r < 0) return 2;
        if (r > 0) continue;
        if ((!strcmp(argv[i], "-f") || !strcmp(argv[i], "--file")) && i + 1 < argc) file = argv[++i];
        else if (!strcmp(argv[i], "--chunks") && i + 1 < argc) max_chunks = strtoll(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--save-logits") && i + 1 < argc) save_path = argv[++i];
        else if (!strcmp(argv[i], "--compare-logits") && i + 1 < argc) compare_path = argv[++i];
        else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "cleave perplexity: unknown option '%s'\n\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    if (!o.model || !file) {
        usage(stderr);
        return 2;
    }
    if (o.n_ctx < 16) {
        fprintf(stderr, "cleave perplexity: a context of at least 16 tokens is needed\n");
        return 2;
    }
    size_t text_len;
    char *text = clv_read_file(file, &text_len);
    if (!text) {
        fprintf(stderr, "cleave perplexity: cannot read %s\n", file);
        return 1;
    }
    int rc = 1;
    FILE *save = NULL;
    char save_tmp[4096] = "";
    logits_compare cmp = {0};
    clv_model *model = NULL;
    clv_context *ctx = NULL;
    clv_tokenizer *tok = NULL;
    int32_t *ids = NULL;
    clv_model_params mp = clv_model_default_params();
    clv_status st = clv_model_load(o.model, &mp, &model);
    clv_context_params cp = clv_options_context_params(&o);
    cp.n_batch = o.n_batch < o.n_ctx ? o.n_batch : o.n_ctx;
    cp.logits_all = true;
    if (!st) st = clv_check_gpu_layers(o.gpu_layers, model);
    if (!st) st = clv_options_sparsity(&o, model, &cp.sparsity);
    if (!st) st = clv_context_create(model, &cp, &ctx);
    if (!st) st = clv_tokenizer_load_gguf(model->gguf, &tok);
    size_t n_ids = 0, cap = clv_tokenize_max_tokens(text_len);
    if (!st) {
        ids = malloc(cap * sizeof *ids);
        clv_tokenize_params tp = clv_tokenize_default_params();
        tp.add_special = false;
        st = ids ? clv_tokenize(tok, text, text_len, &tp, ids, cap, &n_ids) : clv_fail(CLV_ERR_NOMEM, "out of memory");
    }
    if (st) {
        fprintf(stderr, "cleave perplexity: %s\n", clv_last_error());
        goto done;
    }
    int64_t n_ctx = o.n_ctx, n_chunks = (int64_t)n_ids / n_ctx;
    if (max_chunks >= 0 && n_chunks > max_chunks) n_chunks = max_chunks;
    if (n_chunks < 1) {
        fprintf(stderr, "cleave perplexity: the text has %zu tokens; at least %lld are needed for one chunk\n", n_ids,
                (long long)n_ctx);
        goto done;
    }
    bool bos = clv_tokenizer_add_bos(tok) && clv_tokenizer_bos(tok) >= 0;
    int64_t first = n_ctx / 2, n_vocab = model->hp.n_vocab;
    if (compare_path && (st = compare_open(&cmp, compare_path, n_vocab, n_ctx, n_chunks))) {
        fprintf(stderr, "cleave perplexity: %s\n", clv_last_error());
        goto done;
    }
    if (save_path) {
        logits_header h = {LOGITS_MAGIC, (uint32_t)n_vocab, (uint32_t)n_ctx, (uint32_t)n_chunks, 0};
        /* written under PATH.tmp and renamed when whole, so a failed run
         * leaves no half file where a good one is expected */
        snprintf(save_tmp, sizeof save_tmp, "%s.tmp", save_path);
        save = fopen(save_tmp, "wb");
        if (!save || fwrite(&h, sizeof h, 1, save) != 1) {
            fprintf(stderr, "cleave perplexity: cannot write %s\n", save_tmp);
            goto done;
        }
    }
    fprintf(stderr, "cleave perplexity: %zu tokens, %lld chunks of %lld, scoring positions %lld..%lld of each, on %s\n",
            n_ids, (long long)n_chunks, (long long)n_ctx, (long long)first, (long long)n_ctx - 2,
            cp.gpu ? "the GPU" : "the CPU");
    double nll = 0, nll2 = 0;
    int64_t count = 0;
    double t0 = clv_now_seconds();
    for (int64_t c = 0; c < n_chunks; c++) {
        int32_t *chunk = ids + c * n_ctx;
        int32_t saved = chunk[0];
        if (bos) chunk[0] = clv_tokenizer_bos(tok);
        clv_context_truncate(ctx, 0);
        for (int64_t done_tok = 0; done_tok < n_ctx;) {
            int64_t take = n_ctx - done_tok < cp.n_batch ? n_ctx - done_tok : cp.n_batch;
            clv_batch b = {.n_tokens = take, .tokens = chunk + done_tok, .logits_all = true};
            if ((st = clv_decode(ctx, &b))) break;
            for (int64_t j = 0; j < take && !st; j++) {
                const float *logits = clv_context_logits(ctx, j);
                if (save && fwrite(logits, sizeof(float), (size_t)n_vocab, save) != (size_t)n_vocab)
                    st = clv_fail(CLV_ERR_IO, "cannot write %s (disk full?)", save_path);
                if (cmp.f && !st) st = compare_row(&cmp, logits, n_vocab);
                int64_t at = done_tok + j;
                if (at < first || at >= n_ctx - 1) continue;
                double v = token_nll(logits, n_vocab, chunk[at + 1]);
                nll += v;
                nll2 += v * v;
                count++;
            }
            if (st) break;
            done_tok += take;
        }
        chunk[0] = saved;
        if (st) {
            fprintf(stderr, "\ncleave perplexity: %s\n", clv_last_error());
            goto done;
        }
        printf("[%lld]%.4f,", (long long)c + 1, exp(nll / (double)count));
        fflush(stdout);
        if (c == 0) {
            double per = clv_now_seconds() - t0;
            fprintf(stderr, "cleave perplexity: %.2f s per chunk, about %.0f s in all\n", per, per * (double)n_chunks);
        }
    }
    double mean = nll / (double)count;
    double var = count > 1 ? (nll2 / (double)count - mean * mean) / (double)(count - 1) : 0;
    double ppl = exp(mean);
    printf("\nFinal estimate: PPL = %.4f +/- %.5f\n", ppl, ppl * sqrt(var > 0 ? var : 0));
    if (cmp.f) {
        printf("Against %s, all %lld positions: top-1 agreement %lld/%lld = %.2f%%, KL divergence mean %.6g, "
               "max %.6g\n",
               compare_path, (long long)cmp.n, (long long)cmp.same_top1, (long long)cmp.n,
               100.0 * (double)cmp.same_top1 / (double)cmp.n, cmp.kl_sum / (double)cmp.n, cmp.kl_max);
    }
    if (save) {
        FILE *f = save;
        save = NULL;
        if (fclose(f) || rename(save_tmp, save_path)) {
            fprintf(stderr, "cleave perplexity: cannot write %s\n", save_path);
            remove(save_tmp);
            goto done;
        }
        fprintf(stderr, "cleave perplexity: wrote the logits of %lld positions to %s\n", (long long)(n_chunks * n_ctx),
                save_path);
    }
    rc = 0;
done:
    if (save) {
        fclose(save);
        remove(save_tmp);
    }
    if (cmp.f) fclose(cmp.f);
    free(cmp.base);
    free(ids);
    free(text);
    clv_tokenizer_free(tok);
    clv_context_free(ctx);
    clv_model_free(model);
    clv_options_release(&o);
    return rc;
}
