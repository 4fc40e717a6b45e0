/* `cleave mkmodel --shape NAME --type Q4_K_M -o FILE.gguf`: a synthetic model
 * of a real shape, with planted expert and neuron statistics
 * (runtime/synthetic_model.h, docs/synthetic-models.md). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "commands.h"
#include "synthetic_model.h"

#define MAX_SETS 64

static void usage(FILE *f) {
    fprintf(f,
            "usage: cleave mkmodel --shape NAME [--type Q4_K_M] -o FILE.gguf [options]\n"
            "       cleave mkmodel --list\n\n"
            "Writes a model with the shape, tensor types and tokenizer of a real one and\n"
            "random weights, streamed to disk by all cores. Expert popularity and neuron\n"
            "firing frequencies can be planted in the weights; the file records them in\n"
            "cleave.synthetic.* metadata (see `cleave inspect`).\n\n"
            "  --shape NAME         preset (--list shows them with real vs generated sizes)\n"
            "  -o, --output FILE    where to write (FILE.tmp until complete)\n"
            "  --type T             Q4_K_M (default), Q5_K_M, Q6_K, Q8_0, Q4_0, F16, BF16, F32\n"
            "  --recipe R           llama.cpp (default): llama.cpp's current per-tensor types;\n"
            "                       llama.cpp-2023: the mix before Jan 2024 (older downloads)\n"
            "  --set KEY=VALUE      change a hyper-parameter (repeatable; --set help lists keys)\n"
            "  --router-skew S      MoE routing: uniform (default) or zipf:ALPHA (expert\n"
            "                       popularity ~ rank^-ALPHA, ranks shuffled per layer)\n"
            "  --skew-jitter J      per-layer alpha = ALPHA * (1 +- J), default 0.1\n"
            "  --ffn-sparsity P     ReLU FFN: a token fires a fraction P of the neurons\n"
            "  --hot-law L          neuron firing law: powerlaw:ALPHA (default powerlaw:1)\n"
            "                       or uniform\n"
            "  --seed N             random seed (default 1); same seed, same bytes\n"
            "  -t, --threads N      generator threads (default: all CPUs)\n"
            "  --dry-run            plan only: tensor types, parameters, exact file size\n"
            "  -q, --quiet          no progress on stderr\n");
}

static void print_keys(FILE *f) {
    fprintf(f, "keys for --set (GGUF-style name or short alias):\n");
    for (int i = 0;; i++) {
        const char *alias, *help;
        const char *name = clv_synth_shape_key(i, &alias, &help);
        if (!name) break;
        fprintf(f, "  %-34s %-14s %s\n", name, alias, help);
    }
}

static double pct(double ours, double real) { return real > 0 ? 100.0 * (ours - real) / real : 0.0; }

/* Every preset: published parameter count and Q4_K_M size next to ours
 * (planned with the recipe the published file was made with). */
static int list_presets(void) {
    printf("%-17s %-30s %9s %9s %7s %10s %10s %7s\n", "preset", "real model", "params", "ours", "diff", "Q4_K_M",
           "ours", "diff");
    for (int i = 0; i < clv_synth_n_presets(); i++) {
        const clv_synth_preset_info *info = clv_synth_preset(i);
        if (info->unavailable) {
            printf("%-17s %-30s %8.2fB   not yet available: %s\n", info->name, info->real_model, info->real_params / 1e9,
                   info->unavailable);
            continue;
        }
        clv_synth_params p = clv_synth_default_params();
        clv_synth_report r;
        p.recipe = info->real_q4km_recipe;
        if (clv_synth_shape_from_preset(info->name, &p.shape) || clv_synth_plan(&p, &r)) {
            fprintf(stderr, "cleave mkmodel: %s: %s\n", info->name, clv_last_error());
            return 1;
        }
        printf("%-17s %-30s %8.2fB %8.2fB %+6.2f%% %8.2fGB %8.2fGB %+6.2f%%\n", info->name, info->real_model,
               info->real_params / 1e9, (double)r.n_params / 1e9, pct((double)r.n_params, info->real_params),
               info->real_q4km_bytes / 1e9, (double)r.file_bytes / 1e9, pct((double)r.file_bytes, info->real_q4km_bytes));
    }
    printf("\nGB = 10^9 bytes, B = 10^9 parameters; sources in docs/synthetic-models.md\n");
    return 0;
}

static void print_plan(const clv_synth_params *p, const clv_synth_report *r) {
    const clv_synth_shape *s = &p->shape;
    printf("shape %s (%s): %lld layers, embedding %lld, %lld heads (%lld kv) x %lld", s->name, s->arch,
           (long long)s->n_layer, (long long)s->n_embd, (long long)s->n_head, (long long)s->n_head_kv,
           (long long)s->head_dim);
    if (s->n_expert > 0)
        printf(", %lld experts (%lld used) of width %lld", (long long)s->n_expert, (long long)s->n_expert_used,
               (long long)s->n_ff_exp);
    else printf(", FFN %lld (%s)", (long long)s->n_ff, s->relu ? "ReLU" : "SiLU");
    printf(", vocabulary %lld\n", (long long)s->n_vocab);
    if (s->overrides[0]) printf("overrides: %s\n", s->overrides);
    printf("%-8s %16s %16s %8s\n", "type", "parameters", "bytes", "bits/w");
    for (int t = 0; t < CLV_TYPE_COUNT; t++) {
        if (!r->params_by_type[t]) continue;
        printf("%-8s %16llu %16llu %8.3f\n", clv_type_name(t), (unsigned long long)r->params_by_type[t],
               (unsigned long long)r->bytes_by_type[t], 8.0 * (double)r->bytes_by_type[t] / (double)r->params_by_type[t]);
    }
    printf("%s: %lld tensors, %llu parameters (%.3f B), file %llu bytes (%.3f GB)\n",
           clv_synth_type_name(p->file_type), (long long)r->n_tensors, (unsigned long long)r->n_params,
           (double)r->n_params / 1e9, (unsigned long long)r->file_bytes, (double)r->file_bytes / 1e9);
}

static bool parse_number(const char *opt, const char *v, double lo, double hi, double *out) {
    char *end = NULL;
    double x = strtod(v, &end);
    if (!*v || *end || !(x >= lo && x <= hi)) {
        fprintf(stderr, "cleave mkmodel: %s '%s': expected a number from %g to %g\n", opt, v, lo, hi);
        return false;
    }
    *out = x;
    return true;
}

int clv_cmd_mkmodel(int argc, char **argv) {
    const char *shape = NULL, *out = NULL;
    const char *sets[MAX_SETS];
    int n_sets = 0;
    bool dry_run = false, quiet = false;
    clv_synth_params p = clv_synth_default_params();
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        double x;
        clv_status st = CLV_OK;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--list")) {
            return list_presets();
        } else if (!strcmp(a, "--dry-run")) {
            dry_run = true;
            continue;
        } else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
            quiet = true;
            continue;
        }
        if (!v) {
            if (a[0] == '-') fprintf(stderr, "cleave mkmodel: %s needs a value\n", a);
            else fprintf(stderr, "cleave mkmodel: unexpected argument '%s'\n", a);
            usage(stderr);
            return 2;
        }
        i++;
        if (!strcmp(a, "--shape")) shape = v;
        else if (!strcmp(a, "-o") || !strcmp(a, "--output")) out = v;
        else if (!strcmp(a, "--type")) st = clv_synth_parse_type(v, &p.file_type);
        else if (!strcmp(a, "--recipe")) st = clv_synth_parse_recipe(v, &p.recipe);
        else if (!strcmp(a, "--router-skew")) st = clv_synth_parse_router_skew(v, &p);
        else if (!strcmp(a, "--hot-law")) st = clv_synth_parse_hot_law(v, &p);
        else if (!strcmp(a, "--set")) {
            if (!strcmp(v, "help")) {
                print_keys(stdout);
                return 0;
            }
            if (n_sets == MAX_SETS) {
                fprintf(stderr, "cleave mkmodel: at most %d --set options\n", MAX_SETS);
                return 2;
            }
            sets[n_sets++] = v;
        } else if (!strcmp(a, "--skew-jitter")) {
            if (!parse_number(a, v, 0, 0.9, &p.router_jitter)) return 2;
        } else if (!strcmp(a, "--ffn-sparsity")) {
            if (!parse_number(a, v, 0.001, 0.99, &p.ffn_sparsity)) return 2;
        } else if (!strcmp(a, "--seed")) {
            char *end = NULL;
            p.seed = strtoull(v, &end, 10);
            if (!*v || *end) {
                fprintf(stderr, "cleave mkmodel: --seed '%s': expected a non-negative integer\n", v);
                return 2;
            }
        } else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
            if (!parse_number(a, v, 1, 1024, &x)) return 2;
            p.n_threads = (int)x;
        } else {
            fprintf(stderr, "cleave mkmodel: unknown option '%s'\n", a);
            usage(stderr);
            return 2;
        }
        if (st) {
            fprintf(stderr, "cleave mkmodel: %s\n", clv_last_error());
            return 2;
        }
    }
    if (!shape) {
        fprintf(stderr, "cleave mkmodel: --shape is required (--list shows the presets)\n");
        return 2;
    }
    if (!out && !dry_run) {
        fprintf(stderr, "cleave mkmodel: -o FILE.gguf is required (or --dry-run)\n");
        return 2;
    }
    if (clv_synth_shape_from_preset(shape, &p.shape)) {
        fprintf(stderr, "cleave mkmodel: %s\n", clv_last_error());
        return 2;
    }
    for (int i = 0; i < n_sets; i++) {
        if (clv_synth_shape_set(&p.shape, sets[i])) {
            fprintf(stderr, "cleave mkmodel: %s\n", clv_last_error());
            return 2;
        }
    }
    p.progress = !quiet;
    clv_synth_report r;
    if (dry_run) {
        if (clv_synth_plan(&p, &r)) {
            fprintf(stderr, "cleave mkmodel: %s\n", clv_last_error());
            return 2;
        }
        print_plan(&p, &r);
        return 0;
    }
    clv_status st = clv_synth_generate(out, &p, &r);
    if (st) {
        fprintf(stderr, "cleave mkmodel: %s\n", clv_last_error());
        return st == CLV_ERR_ARG || st == CLV_ERR_UNSUPPORTED ? 2 : 1;
    }
    if (!quiet) print_plan(&p, &r);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("wrote %s: %.3f GB in %.1f s (%.0f MB/s, %d threads, peak RSS %.0f MB)\n", out,
           (double)r.file_bytes / 1e9, r.seconds, r.seconds > 0 ? (double)r.file_bytes / r.seconds / 1e6 : 0.0,
           r.n_threads, (double)ru.ru_maxrss * 1024.0 / 1e6);
    return 0;
}
