/* `cleave profile`: runs calibration text through a model and writes what it
 * counted (profiler/collect.h), or shows a profile (--show, --svg). With
 * --hardware anywhere in the arguments it measures the machine instead
 * (cmd_profile_hardware.c). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "collect.h"
#include "commands.h"
#include "generate.h"
#include "heat_svg.h"
#include "options.h"
#include "profile.h"
#include "profile_stats.h"
#include "tokenizer.h"

#define MAX_CORPUS_FILES 256

static void usage(FILE *f) {
    fprintf(f,
            "usage: cleave profile -m FILE.gguf --corpus TEXT... -o FILE.profile [options]\n"
            "       cleave profile --show FILE.profile [--svg OUT.svg]\n"
            "       cleave profile --hardware [...]   measure CPU, GPU, PCIe and SSD speeds\n"
            "                                         (cleave profile --hardware --help)\n\n"
            "Counts how often each dense-FFN neuron is active and each expert is chosen\n"
            "on calibration text, and keeps samples for training activation predictors.\n"
            "A neuron is active when its gated activation |act(gate.x) * up.x| is among\n"
            "the largest (1 - --sparsity) share of its token's (SwiGLU/GeGLU models), or\n"
            "is not 0 (ReLU models). The profile also holds each layer's |h| threshold\n"
            "that makes a share --sparsity of activations inactive on the first\n"
            "--calib-tokens tokens (--selection threshold counts by it instead).\n\n"
            "  -m, --model FILE        GGUF model file\n"
            "  --corpus FILE...        calibration text files, one or more\n"
            "  --tokens N              use at most N tokens of the corpus (default: all)\n"
            "  -o, --output FILE       the profile to write (a GGUF file)\n"
            "  --sparsity S            SwiGLU/GeGLU target sparsity in [0, 1) (default 0.5)\n"
            "  --selection top-k|threshold\n"
            "                          what makes a SwiGLU/GeGLU neuron active (default top-k)\n"
            "  --calib-tokens N        tokens of the threshold pass (default 4096; 0: all)\n"
            "  --samples N             predictor-training samples per layer (default 4096)\n"
            "  -c, --ctx-size N        chunk length; each chunk starts from an empty cache\n"
            "                          (default 512)\n"
            "  -t, --threads N         CPU threads (default: one per physical core)\n"
            "  --kv-type f16|f32       KV cache precision (default f16)\n"
            "  --f32-activations       the engine's reference mode (slow)\n"
            "  --gpu all|none, -ngl N|all, --gpu-device N, --vram SIZE\n"
            "                          run the model on the GPU, as for `cleave run`\n"
            "  -q, --quiet             no progress on stderr\n"
            "  -v, --verbose           say what is loaded\n"
            "  --show FILE             print a per-layer summary of a profile\n"
            "  --svg FILE              write a picture: heat per layer and the share of\n"
            "                          activations covered by the hottest units\n"
            "  --hardware              measure the machine instead (see above)\n");
}

/* --- progress -------------------------------------------------------------------- */

typedef struct progress_state {
    double t0, last;
    bool tty, quiet;
} progress_state;

static void on_progress(void *user, const char *phase, int64_t done, int64_t total) {
    progress_state *ps = user;
    if (ps->quiet) return;
    double now = clv_now_seconds(), el = now - ps->t0;
    bool end = done >= total;
    if (!end && now - ps->last < (ps->tty ? 0.2 : 5.0)) return;
    ps->last = now;
    double rate = el > 0 ? (double)done / el : 0, eta = rate > 0 ? (double)(total - done) / rate : 0;
    char bar[31];
    int fill = (int)(30.0 * (double)done / (double)total);
    for (int i = 0; i < 30; i++) bar[i] = i < fill ? '#' : '.';
    bar[30] = '\0';
    double shown = end ? el : eta;
    fprintf(stderr, "%sprofile: %-11s [%s] %5.1f%%  %lld/%lld tokens  %.0f tok/s  %s %d:%02d%s", ps->tty ? "\r" : "",
            phase, bar, 100.0 * (double)done / (double)total, (long long)done, (long long)total, rate,
            end ? "took" : "ETA", (int)(shown / 60), (int)shown % 60, ps->tty && !end ? "  " : "\n");
    fflush(stderr);
}

/* --- summary ----------------------------------------------------------------------- */

static int show(const clv_profile *p, FILE *out) {
    fprintf(out, "profile of %s (%s): %lld tokens", p->model_name[0] ? p->model_name : "(unnamed)", p->arch,
            (long long)p->n_tokens);
    if (p->corpus[0]) fprintf(out, " of %s", p->corpus);
    fprintf(out, "\n");
    bool any_dense = false, any_moe = false;
    for (int64_t il = 0; il < p->n_layer; il++) {
        any_dense = any_dense || p->layers[il].n_ff > 0;
        any_moe = any_moe || p->layers[il].n_expert > 0;
    }
    static const char *acts[] = {"silu", "gelu", "relu"};
    const char *act = p->act >= 0 && p->act <= 2 ? acts[p->act] : "?";
    if (any_dense && p->sparsity > 0 && p->top_k)
        fprintf(out, "activation %s: active = |act(gate.x) * up.x| among the token's largest %.0f%%; thresholds "
                     "calibrated for %.0f%% sparsity on %lld tokens\n",
                act, 100.0 * (1.0 - p->sparsity), 100.0 * p->sparsity, (long long)p->n_calib_tokens);
    else if (any_dense && p->sparsity > 0)
        fprintf(out, "activation %s: active = |act(gate.x) * up.x| above the layer's threshold, calibrated for %.0f%% "
                     "sparsity on %lld tokens\n",
                act, 100.0 * p->sparsity, (long long)p->n_calib_tokens);
    else if (any_dense)
        fprintf(out, "activation %s: active = act(gate.x) * up.x != 0 (gate.x > 0)\n", act);
    int64_t most = 0;
    for (int64_t il = 0; il < p->n_layer; il++) most = p->layers[il].n_samples > most ? p->layers[il].n_samples : most;
    if (most > 0) fprintf(out, "%lld training samples per layer, one every %lld tokens\n", (long long)most,
                          (long long)p->sample_stride);
    if (any_dense) {
        fprintf(out, "\ndense FFN layers: active = mean share of neurons active per token, hot10 = share of\n"
                     "activations made by the hottest 10%% of neurons, alpha = fitted power law\n"
                     "layer  neurons  threshold   active   hot10   alpha   never active\n");
        for (int64_t il = 0; il < p->n_layer; il++) {
            clv_profile_layer_summary s;
            if (clv_profile_summarize(p, il, &s)) return 1;
            if (!s.dense) continue;
            fprintf(out, "%5lld  %7lld  %9.4g  %6.2f%%  %5.1f%%  %6.3f  %lld\n", (long long)il,
                    (long long)p->layers[il].n_ff, p->layers[il].threshold, 100 * s.active_mean, 100 * s.active_top10,
                    s.active_alpha, (long long)s.never_active);
        }
    }
    if (any_moe) {
        fprintf(out, "\nMoE layers (%lld experts used per token): top10 = share of routings taken by the 10%%\n"
                     "most chosen experts, alpha = fitted Zipf exponent, max/min = P(chosen) of the most and\n"
                     "least chosen expert, weight = mean routing weight, follow = share of the next layer's\n"
                     "choices among each expert's %lld most frequent followers\n"
                     "layer  experts   top10   alpha     max      min   weight   follow\n",
                (long long)p->n_expert_used, (long long)p->n_expert_used);
        for (int64_t il = 0; il < p->n_layer; il++) {
            clv_profile_layer_summary s;
            if (clv_profile_summarize(p, il, &s)) return 1;
            if (!s.moe) continue;
            char follow[16] = "-";
            if (s.follow_hit >= 0) snprintf(follow, sizeof follow, "%.1f%%", 100 * s.follow_hit);
            fprintf(out, "%5lld  %7lld  %5.1f%%  %6.3f  %6.3f  %7.4f  %7.4f  %7s\n", (long long)il,
                    (long long)p->layers[il].n_expert, 100 * s.expert_top10, s.expert_alpha, s.expert_max, s.expert_min,
                    s.mean_weight, follow);
        }
    }
    return 0;
}

static int show_file(const char *path, const char *svg) {
    clv_profile *p = NULL;
    if (clv_profile_load(path, &p)) {
        fprintf(stderr, "cleave profile: %s\n", clv_last_error());
        return 1;
    }
    int rc = show(p, stdout);
    if (rc) fprintf(stderr, "cleave profile: %s\n", clv_last_error());
    if (!rc && svg) {
        if (clv_profile_write_svg(p, svg)) {
            fprintf(stderr, "cleave profile: %s\n", clv_last_error());
            rc = 1;
        } else {
            fprintf(stderr, "cleave profile: wrote %s\n", svg);
        }
    }
    clv_profile_free(p);
    return rc;
}

/* --- profiling --------------------------------------------------------------------- */

static bool parse_count(const char *s, int64_t *out) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < 0) return false;
    *out = v;
    return true;
}

/* Tokenizes every file and concatenates the ids (at most max_tokens). */
static clv_status tokenize_corpus(const clv_tokenizer *tok, const char *const *files, int n_files, int64_t max_tokens,
                                  int32_t **ids_out, int64_t *n_out) {
    int32_t *ids = NULL;
    size_t n = 0, cap = 0;
    clv_status st = CLV_OK;
    for (int i = 0; i < n_files && !st && (max_tokens == 0 || (int64_t)n < max_tokens); i++) {
        size_t len;
        char *text = clv_read_file(files[i], &len);
        if (!text) {
            st = clv_fail(CLV_ERR_IO, "cannot read corpus file %s: %s", files[i], strerror(errno));
            break;
        }
        size_t need = n + clv_tokenize_max_tokens(len);
        if (need > cap) {
            int32_t *grown = realloc(ids, need * sizeof *ids);
            if (!grown) st = clv_fail(CLV_ERR_NOMEM, "out of memory for the tokens of %s", files[i]);
            else ids = grown, cap = need;
        }
        size_t got = 0;
        clv_tokenize_params tp = clv_tokenize_default_params();
        tp.add_special = false;
        if (!st) st = clv_tokenize(tok, text, len, &tp, ids + n, cap - n, &got);
        if (st) clv_error_prefix("%s: ", files[i]);
        n += got;
        free(text);
    }
    if (!st && max_tokens > 0 && (int64_t)n > max_tokens) n = (size_t)max_tokens;
    if (!st && n == 0) st = clv_fail(CLV_ERR_ARG, "the corpus has no tokens");
    if (st) {
        free(ids);
        return st;
    }
    *ids_out = ids;
    *n_out = (int64_t)n;
    return CLV_OK;
}

/* "a.txt, b.txt" (file names without folders), cut to fit. */
static void corpus_names(char *dst, size_t cap, const char *const *files, int n_files) {
    size_t at = 0;
    dst[0] = '\0';
    for (int i = 0; i < n_files && at + 1 < cap; i++) {
        const char *base = strrchr(files[i], '/');
        base = base ? base + 1 : files[i];
        int w = snprintf(dst + at, cap - at, "%s%s", i ? ", " : "", base);
        if (w < 0) break;
        at += (size_t)w < cap - at ? (size_t)w : cap - at - 1;
    }
}

static bool is_model_option(const char *a) {
    static const char *names[] = {"-m", "--model", "-c", "--ctx-size", "-t", "--threads", "--kv-type",
                                  "-v", "--verbose", "--f32-activations", "--gpu", "-ngl", "--n-gpu-layers",
                                  "--gpu-device", "--vram"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strcmp(a, names[i])) return true;
    return false;
}

int clv_cmd_profile(int argc, char **argv) {
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--hardware")) return clv_cmd_profile_hardware(argc, argv);

    clv_options o;
    clv_options_init(&o);
    clv_profiler_params pp = clv_profiler_default_params();
    const char *files[MAX_CORPUS_FILES];
    int n_files = 0;
    const char *output = NULL, *show_path = NULL, *svg = NULL;
    int64_t max_tokens = 0;
    bool quiet = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has_value = i + 1 < argc;
        if (is_model_option(a)) {
            if (clv_options_parse_one(&o, argc, argv, &i) < 0) return 2;
        } else if (!strcmp(a, "--corpus")) {
            int before = n_files;
            while (i + 1 < argc && (argv[i + 1][0] != '-' || !argv[i + 1][1])) {
                if (n_files == MAX_CORPUS_FILES) {
                    fprintf(stderr, "cleave profile: at most %d corpus files\n", MAX_CORPUS_FILES);
                    return 2;
                }
                files[n_files++] = argv[++i];
            }
            if (n_files == before) {
                fprintf(stderr, "cleave profile: --corpus needs at least one file\n");
                return 2;
            }
        } else if ((!strcmp(a, "-o") || !strcmp(a, "--output")) && has_value) {
            output = argv[++i];
        } else if (!strcmp(a, "--show") && has_value) {
            show_path = argv[++i];
        } else if (!strcmp(a, "--svg") && has_value) {
            svg = argv[++i];
        } else if (!strcmp(a, "--tokens") && has_value) {
            if (!parse_count(argv[++i], &max_tokens) || max_tokens < 1) goto bad_value;
        } else if (!strcmp(a, "--samples") && has_value) {
            if (!parse_count(argv[++i], &pp.n_samples)) goto bad_value;
        } else if (!strcmp(a, "--calib-tokens") && has_value) {
            if (!parse_count(argv[++i], &pp.n_calib_tokens)) goto bad_value;
        } else if (!strcmp(a, "--sparsity") && has_value) {
            char *end;
            errno = 0;
            pp.sparsity = strtod(argv[++i], &end);
            if (errno || end == argv[i] || *end || !(pp.sparsity >= 0 && pp.sparsity < 1)) goto bad_value;
        } else if (!strcmp(a, "--selection") && has_value) {
            const char *v = argv[++i];
            if (!strcmp(v, "top-k")) pp.top_k = true;
            else if (!strcmp(v, "threshold")) pp.top_k = false;
            else goto bad_value;
        } else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
            quiet = true;
        } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "cleave profile: unknown option or missing value: '%s'\n\n", a);
            usage(stderr);
            return 2;
        }
        continue;
    bad_value:
        fprintf(stderr, "cleave profile: bad value '%s' for %s\n", argv[i], a);
        return 2;
    }
    if (show_path) {
        if (o.model || n_files || output) {
            fprintf(stderr, "cleave profile: --show reads a profile; it takes no -m, --corpus or -o\n");
            return 2;
        }
        return show_file(show_path, svg);
    }
    if (!o.model || !n_files || !output) {
        fprintf(stderr, "cleave profile: %s is needed\n\n", !o.model ? "-m FILE.gguf" : !n_files ? "--corpus FILE" : "-o FILE.profile");
        usage(stderr);
        return 2;
    }
    /* fail before the run, not after it, when the output cannot be written */
    char dir[4096];
    const char *slash = strrchr(output, '/');
    snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - output) + 1 : 1, slash ? output : ".");
    if (access(dir, W_OK) != 0) {
        fprintf(stderr, "cleave profile: cannot write %s: %s: %s\n", output, dir, strerror(errno));
        return 1;
    }
    pp.n_ctx = o.n_ctx ? o.n_ctx : 512;
    pp.n_threads = o.n_threads;
    pp.kv_type = o.kv_type;
    pp.f32_activations = o.f32_activations;
    pp.gpu = o.gpu_layers > 0;
    pp.gpu_device = o.gpu_device;
    pp.vram_budget = o.vram_budget;

    int rc = 1;
    clv_model *model = NULL;
    clv_tokenizer *tok = NULL;
    clv_profile *p = NULL;
    int32_t *ids = NULL;
    int64_t n_ids = 0;
    clv_model_params mp = clv_model_default_params();
    mp.verbose = o.verbose;
    clv_status st = clv_model_load(o.model, &mp, &model);
    if (!st) st = clv_check_gpu_layers(o.gpu_layers, model);
    if (!st) st = clv_tokenizer_load_gguf(model->gguf, &tok);
    if (!st) st = tokenize_corpus(tok, files, n_files, max_tokens, &ids, &n_ids);
    if (st) {
        fprintf(stderr, "cleave profile: %s\n", clv_last_error());
        goto done;
    }
    if (clv_tokenizer_add_bos(tok) && clv_tokenizer_bos(tok) >= 0) pp.bos = clv_tokenizer_bos(tok);
    progress_state ps = {.t0 = clv_now_seconds(), .tty = isatty(STDERR_FILENO), .quiet = quiet};
    pp.progress = on_progress;
    pp.progress_user = &ps;
    if (!quiet)
        fprintf(stderr, "cleave profile: %s, %lld tokens in chunks of %lld%s, on the %s\n", o.model,
                (long long)n_ids, (long long)pp.n_ctx, pp.bos >= 0 ? " (each after BOS)" : "", pp.gpu ? "GPU" : "CPU");
    st = clv_profile_collect(model, ids, n_ids, &pp, &p);
    if (!st) {
        corpus_names(p->corpus, sizeof p->corpus, files, n_files);
        st = clv_profile_save(p, output);
    }
    if (!st && svg) st = clv_profile_write_svg(p, svg);
    if (st) {
        fprintf(stderr, "cleave profile: %s\n", clv_last_error());
        goto done;
    }
    rc = show(p, stdout);
    if (!quiet) fprintf(stderr, "cleave profile: wrote %s%s%s\n", output, svg ? " and " : "", svg ? svg : "");
done:
    clv_profile_free(p);
    free(ids);
    clv_tokenizer_free(tok);
    clv_model_free(model);
    return rc;
}
