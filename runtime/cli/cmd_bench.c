/* `cleave bench -m FILE.gguf`: prompt processing (pp) and generation (tg)
 * speed in the table llama.cpp users know, plus the bytes each token reads
 * from each memory tier and the bandwidth that achieves. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "commands.h"
#include "generate.h"
#include "gpu_state.h"
#include "human_size.h"
#include "json.h"
#include "options.h"
#include "sparsity_setup.h"
#include "threadpool.h"
#include "types.h"

#define MAX_LIST 16

typedef enum out_format { OUT_MD, OUT_JSON, OUT_CSV } out_format;

static void usage(FILE *f) {
    fprintf(f, "usage: cleave bench -m FILE.gguf [-p 512] [-n 128] [-r 5] [-t N] [-o md|json|csv]\n\n"
               "Measures prompt processing (ppP: P tokens in one batch) and generation\n"
               "(tgN: N tokens one at a time) as mean +/- std over repetitions after a\n"
               "warm-up run. Comma-separated values (-p 128,512 -t 4,8) run every\n"
               "combination; 0 skips a test.\n\n"
               "  -p, --n-prompt LIST     prompt lengths (default 512)\n"
               "  -n, --n-gen LIST        generation lengths (default 128)\n"
               "  -r, --repetitions N     measured runs per test (default 5)\n"
               "  -t, --threads LIST      thread counts (default: one per physical core)\n"
               "  -b, --batch-size N      most tokens per forward pass (default 512)\n"
               "  -o, --output FORMAT     md (default), json or csv\n"
               "  --kv-type f16|f32       KV cache precision (default f16)\n"
               "  --ram SIZE              RAM budget for weights + KV cache + scratch (e.g. 24G);\n"
               "                          a model that does not fit is refused\n"
               "  --gpu all|none          run every layer on the GPU (CUDA) or none (default)\n"
               "  -ngl, --n-gpu-layers N|all  llama.cpp's spelling: all (or N >= the model's\n"
               "                          layers) is --gpu all, 0 is none\n"
               "  --gpu-device N          CUDA device index (default 0)\n"
               "  --vram SIZE             GPU memory budget (default: free memory minus a margin);\n"
               "                          a model that does not fit is refused\n"
               "  --plan FILE             placement plan (not available yet: no placement solver)\n"
               "  --sparsity S, --profile FILE, --predictor FILE\n"
               "                          sparse FFNs, as for `cleave run`\n"
               "  -m, --model FILE        the model\n");
}

static int parse_list(const char *s, int64_t *out, int max) {
    int n = 0;
    while (*s && n < max) {
        char *end;
        long long v = strtoll(s, &end, 10);
        if (end == s || v < 0) return -1;
        out[n++] = v;
        s = *end == ',' ? end + 1 : end;
        if (*end && *end != ',') return -1;
    }
    return n;
}

typedef struct result {
    const char *test_kind; /* "pp" or "tg" */
    int64_t n_tokens;
    int n_threads;
    double mean, std;      /* tokens per second */
    double bytes_per_token;
    double gbps;           /* weight bytes read per second */
    int reps;
} result;

static double peak_rss_bytes(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss * 1024.0;
}

/* One run: seconds, and weight bytes read. */
static clv_status run_once(clv_context *ctx, const int32_t *tokens, int64_t n, bool one_by_one, double *seconds,
                           uint64_t *bytes) {
    clv_context_truncate(ctx, 0);
    ctx->weight_bytes_read = 0;
    double t0 = clv_now_seconds();
    clv_status st = CLV_OK;
    if (one_by_one) {
        for (int64_t i = 0; i < n && !st; i++) {
            clv_batch b = {.n_tokens = 1, .tokens = tokens + i};
            st = clv_decode(ctx, &b);
        }
    } else {
        clv_batch b = {.n_tokens = n, .tokens = tokens};
        st = clv_decode(ctx, &b);
    }
    *seconds = clv_now_seconds() - t0;
    *bytes = ctx->weight_bytes_read;
    return st;
}

static clv_status bench_test(clv_context *ctx, const int32_t *tokens, int64_t n, bool tg, int reps, result *r) {
    double secs;
    uint64_t bytes;
    clv_status st = run_once(ctx, tokens, n, tg, &secs, &bytes); /* warm-up */
    double sum = 0, sum2 = 0, bsum = 0, tsum = 0;
    for (int i = 0; i < reps && !st; i++) {
        st = run_once(ctx, tokens, n, tg, &secs, &bytes);
        double tps = (double)n / secs;
        sum += tps;
        sum2 += tps * tps;
        bsum += (double)bytes;
        tsum += secs;
    }
    if (st) return st;
    r->mean = sum / reps;
    double var = reps > 1 ? (sum2 - sum * sum / reps) / (reps - 1) : 0;
    r->std = var > 0 ? sqrt(var) : 0;
    r->bytes_per_token = bsum / reps / (double)n;
    r->gbps = bsum / tsum / 1e9;
    r->reps = reps;
    return CLV_OK;
}

/* The bench measures sizes in doubles (bytes per token are averages). */
static void human_size(double bytes, char *buf, size_t cap) {
    clv_human_size(bytes > 0 ? (uint64_t)(bytes + 0.5) : 0, buf, cap);
}

int clv_cmd_bench(int argc, char **argv) {
    const char *model_path = NULL;
    int64_t pp[MAX_LIST] = {512}, tg[MAX_LIST] = {128}, threads[MAX_LIST] = {0};
    int n_pp = 1, n_tg = 1, n_threads = 1, reps = 5;
    int64_t n_batch = 512;
    int32_t kv_type = CLV_TYPE_F16;
    double ram_budget = 0; /* 0: none */
    double peak_vram = 0;     /* device bytes a GPU context held */
    uint64_t vram_budget = 0; /* 0: the device's free memory minus a margin */
    int64_t gpu_layers = 0;   /* layers on the GPU: 0 or all (INT64_MAX) */
    int gpu_device = 0;
    out_format fmt = OUT_MD;
    double sparsity = -1;
    const char *profile_path = NULL, *predictor_path = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        }
        if (!v) {
            fprintf(stderr, "cleave bench: option %s needs a value\n", a);
            return 2;
        }
        i++;
        if (!strcmp(a, "-m") || !strcmp(a, "--model")) model_path = v;
        else if (!strcmp(a, "-p") || !strcmp(a, "--n-prompt")) n_pp = parse_list(v, pp, MAX_LIST);
        else if (!strcmp(a, "-n") || !strcmp(a, "--n-gen")) n_tg = parse_list(v, tg, MAX_LIST);
        else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) n_threads = parse_list(v, threads, MAX_LIST);
        else if (!strcmp(a, "-r") || !strcmp(a, "--repetitions")) reps = atoi(v);
        else if (!strcmp(a, "-b") || !strcmp(a, "--batch-size")) n_batch = atoll(v);
        else if (!strcmp(a, "--kv-type")) kv_type = !strcmp(v, "f32") ? CLV_TYPE_F32 : CLV_TYPE_F16;
        else if (!strcmp(a, "--profile")) profile_path = v;
        else if (!strcmp(a, "--predictor")) predictor_path = v;
        else if (!strcmp(a, "--sparsity")) {
            char *end;
            sparsity = strtod(v, &end);
            if (*end || !(sparsity >= 0 && sparsity < 1)) {
                fprintf(stderr, "cleave bench: bad value '%s' for --sparsity (in [0, 1))\n", v);
                return 2;
            }
        }
        else if (!strcmp(a, "--ram") || !strcmp(a, "--vram")) {
            double size = clv_parse_size(v);
            if (size < 0 || (!strcmp(a, "--vram") && size < 1)) {
                fprintf(stderr, "cleave bench: bad size '%s' for %s (e.g. 24G, 512M)\n", v, a);
                return 2;
            }
            if (!strcmp(a, "--ram")) ram_budget = size;
            else vram_budget = (uint64_t)size;
        } else if (!strcmp(a, "--gpu") || !strcmp(a, "-ngl") || !strcmp(a, "--n-gpu-layers")) {
            if (!clv_parse_gpu_layers(a, v, &gpu_layers)) {
                fprintf(stderr, "cleave bench: bad value '%s' for %s (all, %s)\n", v, a,
                        strcmp(a, "--gpu") ? "none or a number of layers" : "or none");
                return 2;
            }
        } else if (!strcmp(a, "--gpu-device")) {
            gpu_device = atoi(v);
        } else if (!strcmp(a, "--plan")) {
            fprintf(stderr, "cleave bench: --plan: placement plans are not available yet (no placement solver); "
                            "the CPU backend runs every weight from RAM\n");
            return 2;
        }
        else if (!strcmp(a, "-o") || !strcmp(a, "--output")) {
            if (!strcmp(v, "md")) fmt = OUT_MD;
            else if (!strcmp(v, "json")) fmt = OUT_JSON;
            else if (!strcmp(v, "csv")) fmt = OUT_CSV;
            else {
                fprintf(stderr, "cleave bench: output format '%s' is not md, json or csv\n", v);
                return 2;
            }
        } else {
            fprintf(stderr, "cleave bench: unknown option '%s'\n\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (!model_path || n_pp < 0 || n_tg < 0 || n_threads < 1 || reps < 1 || n_batch < 1) {
        if (model_path) fprintf(stderr, "cleave bench: bad list or count\n");
        usage(stderr);
        return 2;
    }

    clv_model *model = NULL;
    clv_status st = clv_model_load(model_path, NULL, &model);
    if (st) {
        fprintf(stderr, "cleave bench: %s\n", clv_last_error());
        return 1;
    }
    /* Whole-model offload only: a partial split is the placement solver's job. */
    bool gpu = gpu_layers > 0;
    if (clv_check_gpu_layers(gpu_layers, model)) {
        fprintf(stderr, "cleave bench: %s\n", clv_last_error());
        clv_model_free(model);
        return 2;
    }
    clv_sparsity_setup *sparse = NULL;
    if (sparsity >= 0 || profile_path || predictor_path) {
        if ((st = clv_sparsity_setup_load(model, sparsity, profile_path, predictor_path, &sparse))) {
            fprintf(stderr, "cleave bench: %s\n", clv_last_error());
            clv_model_free(model);
            return 1;
        }
        fprintf(stderr, "cleave bench: sparse FFNs: %s\n", clv_sparsity_setup_describe(sparse));
    }
    int64_t max_tokens = 1;
    for (int i = 0; i < n_pp; i++) max_tokens = pp[i] > max_tokens ? pp[i] : max_tokens;
    for (int i = 0; i < n_tg; i++) max_tokens = tg[i] > max_tokens ? tg[i] : max_tokens;
    /* Random tokens: speed does not depend on which. */
    int32_t *tokens = malloc((size_t)max_tokens * sizeof *tokens);
    uint64_t x = 0x9E3779B97F4A7C15ull;
    for (int64_t i = 0; tokens && i < max_tokens; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        tokens[i] = (int32_t)(x % (uint64_t)model->hp.n_vocab);
    }
    result results[2 * MAX_LIST * MAX_LIST];
    int n_results = 0;
    for (int ti = 0; ti < n_threads && tokens && !st; ti++) {
        clv_context_params cp = clv_context_default_params();
        cp.n_ctx = max_tokens + 1;
        cp.n_batch = n_batch;
        cp.n_threads = (int)threads[ti];
        cp.kv_type = kv_type;
        cp.sparsity = sparse ? clv_sparsity_setup_get(sparse) : NULL;
        cp.gpu = gpu;
        cp.gpu_device = gpu_device;
        cp.vram_budget = vram_budget;
        clv_context *ctx = NULL;
        if ((st = clv_context_create(model, &cp, &ctx))) break;
        if (ctx->gpu) peak_vram = (double)ctx->gpu->need.total;
        double need = (double)model->weight_bytes + (double)ctx->kv_bytes + (double)ctx->scratch_bytes;
        if (!gpu && ram_budget > 0 && need > ram_budget) {
            char n[32], w[32], kv[32], sc[32], b[32];
            human_size(need, n, sizeof n);
            human_size((double)model->weight_bytes, w, sizeof w);
            human_size((double)ctx->kv_bytes, kv, sizeof kv);
            human_size((double)ctx->scratch_bytes, sc, sizeof sc);
            human_size(ram_budget, b, sizeof b);
            st = clv_fail(CLV_ERR_BUDGET, "%s needs %s of RAM (weights %s, KV cache %s, scratch %s) but --ram allows %s; "
                          "the CPU backend keeps every weight in RAM", model_path, n, w, kv, sc, b);
            clv_context_free(ctx);
            break;
        }
        int nth = clv_threadpool_n_threads(ctx->pool);
        for (int k = 0; k < n_pp + n_tg && !st; k++) {
            bool is_tg = k >= n_pp;
            int64_t n = is_tg ? tg[k - n_pp] : pp[k];
            if (n == 0) continue;
            result *r = &results[n_results];
            r->test_kind = is_tg ? "tg" : "pp";
            r->n_tokens = n;
            r->n_threads = nth;
            fprintf(stderr, "cleave bench: %s%lld, %d threads...\n", r->test_kind, (long long)n, nth);
            if (!(st = bench_test(ctx, tokens, n, is_tg, reps, r))) n_results++;
        }
        clv_context_free(ctx);
    }
    clv_sparsity_setup_free(sparse);
    if (st || !tokens) {
        fprintf(stderr, "cleave bench: %s\n", tokens ? clv_last_error() : "out of memory");
        free(tokens);
        clv_model_free(model);
        return 1;
    }

    const char *name = model_path;
    const char *slash = strrchr(name, '/');
    if (slash) name = slash + 1;
    uint64_t n_params = 0;
    for (int64_t i = 0; i < clv_gguf_n_tensors(model->gguf); i++) {
        n_params += (uint64_t)clv_gguf_tensor_n_elems(clv_gguf_tensor_at(model->gguf, i));
    }
    char size[32];
    human_size((double)model->weight_bytes, size, sizeof size);
    double rss = peak_rss_bytes();
    /* where the weight bytes of a token come from */
    const char *backend = gpu ? "CUDA" : "CPU", *tier = gpu ? "VRAM" : "RAM";
    char vram[32];
    human_size(peak_vram, vram, sizeof vram);
    if (fmt == OUT_MD) {
        printf("| model | size | params | backend | threads | test | t/s | %s B/token | %s GB/s | peak RSS |\n", tier,
               tier);
        printf("| --- | ---: | ---: | --- | ---: | --- | ---: | ---: | ---: | ---: |\n");
        for (int i = 0; i < n_results; i++) {
            const result *r = &results[i];
            char bpt[32], peak[32];
            human_size(r->bytes_per_token, bpt, sizeof bpt);
            human_size(rss, peak, sizeof peak);
            printf("| %s | %s | %.2f B | %s | %d | %s%lld | %.2f ± %.2f | %s | %.1f | %s |\n", name, size,
                   (double)n_params / 1e9, backend, r->n_threads, r->test_kind, (long long)r->n_tokens, r->mean, r->std, bpt,
                   r->gbps, peak);
        }
        if (gpu)
            printf("\nCUDA backend, every layer on the GPU: every weight byte comes from VRAM (%s of device memory "
                   "held, weights + KV cache + scratch); SSD tier: none.\n",
                   vram);
        else printf("\nVRAM and SSD tiers: none (CPU backend); every weight byte comes from RAM.\n");
    } else if (fmt == OUT_CSV) {
        printf("model,size_bytes,params,backend,threads,test,tokens_per_second,std,ram_bytes_per_token,ram_gbps,"
               "vram_bytes_per_token,ssd_bytes_per_token,peak_rss_bytes,peak_vram_bytes\n");
        for (int i = 0; i < n_results; i++) {
            const result *r = &results[i];
            /* ram and vram bytes per token: the tier the backend reads from gets them */
            printf("%s,%llu,%llu,%s,%d,%s%lld,%.4f,%.4f,%.0f,%.3f,%.0f,0,%.0f,%.0f\n", name,
                   (unsigned long long)model->weight_bytes, (unsigned long long)n_params, backend, r->n_threads,
                   r->test_kind, (long long)r->n_tokens, r->mean, r->std, gpu ? 0.0 : r->bytes_per_token,
                   gpu ? 0.0 : r->gbps, gpu ? r->bytes_per_token : 0.0, rss, peak_vram);
        }
    } else {
        clv_json *jname = clv_json_new_cstring(name);
        printf("{\"model\":");
        clv_json_fwrite(stdout, jname, NULL);
        clv_json_free(jname);
        printf(",\"size_bytes\":%llu,\"params\":%llu,\"results\":[", (unsigned long long)model->weight_bytes,
               (unsigned long long)n_params);
        for (int i = 0; i < n_results; i++) {
            const result *r = &results[i];
            double vb = gpu ? r->bytes_per_token : 0, vg = gpu ? r->gbps : 0;
            double rb = gpu ? 0 : r->bytes_per_token, rg = gpu ? 0 : r->gbps;
            printf("%s{\"backend\":\"%s\",\"threads\":%d,\"test\":\"%s%lld\",\"n_tokens\":%lld,\"repetitions\":%d,"
                   "\"tokens_per_second\":%.4f,\"std\":%.4f,"
                   "\"tiers\":{\"vram\":{\"bytes_per_token\":%.0f,\"gbps\":%.3f},"
                   "\"ram\":{\"bytes_per_token\":%.0f,\"gbps\":%.3f},\"ssd\":{\"bytes_per_token\":0,\"gbps\":0}},"
                   "\"peak_rss_bytes\":%.0f,\"peak_vram_bytes\":%.0f}",
                   i ? "," : "", backend, r->n_threads, r->test_kind, (long long)r->n_tokens, (long long)r->n_tokens,
                   r->reps, r->mean, r->std, vb, vg, rb, rg, rss, peak_vram);
        }
        printf("]}\n");
    }
    free(tokens);
    clv_model_free(model);
    return 0;
}
