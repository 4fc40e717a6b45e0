/* `cleave predictor train|eval|lookahead`: trains per-layer neuron
 * predictors from a profile's samples into a side file, measures them on
 * another profile, and measures expert look-ahead on MoE models
 * (predictor/neuron_predictor.h, predictor/expert_lookahead.h). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "commands.h"
#include "expert_lookahead.h"
#include "generate.h"
#include "human_size.h"
#include "model.h"
#include "neuron_predictor.h"
#include "profile.h"
#include "types.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: cleave predictor train -m MODEL --profile P.profile -o FILE.predictor [options]\n"
            "       cleave predictor eval -m MODEL --predictor FILE.predictor --profile P2.profile\n"
            "       cleave predictor lookahead -m MODEL --profile P.profile\n\n"
            "train      fits one low-rank network per dense FFN layer to the profile's\n"
            "           samples (FFN input -> active neurons) and tunes its threshold on\n"
            "           held-out samples for the target recall\n"
            "eval       per layer: rank, bytes, recall, precision and the share of neurons\n"
            "           predicted active on another profile's samples; for MoE models also\n"
            "           the expert look-ahead hit rate\n"
            "lookahead  MoE models: how often layer l+1's router applied to layer l's FFN\n"
            "           input picks the experts layer l+1 chooses (top-k hit rate)\n\n"
            "  -m, --model FILE        the GGUF model the profile was made with\n"
            "  --profile FILE          a profile with samples (cleave profile --samples N)\n"
            "  --predictor FILE        a predictor file (eval)\n"
            "  -o, --output FILE       the predictor file to write (train)\n"
            "  --recall R              target recall in (0, 1] (default 0.99)\n"
            "  --rank auto|N           rank of every layer (default auto: from the profile)\n"
            "  --weights auto|q8_0|q4_0|f16\n"
            "                          predictor weight type (default auto: Q4_0 where n_embd\n"
            "                          and the rank are multiples of 32, else F16)\n"
            "  --epochs N              passes over the samples (default 12)\n"
            "  --lr X                  Adam step size (default 0.002)\n"
            "  --holdout X             share of samples held out for the threshold (0.15)\n"
            "  --seed N                initialisation and shuffling seed (default 1)\n"
            "  -t, --threads N         CPU threads (default: one per physical core)\n"
            "  -q, --quiet             no progress on stderr\n");
}

static bool parse_i64(const char *s, int64_t lo, int64_t hi, int64_t *out) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) return false;
    *out = v;
    return true;
}

static bool parse_f64(const char *s, double lo, double hi, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= lo && v <= hi)) return false;
    *out = v;
    return true;
}

typedef struct progress_state {
    double t0;
    bool quiet;
    bool tty; /* redraw one line; otherwise a line per finished layer */
} progress_state;

static void on_progress(void *user, int64_t layer, int64_t n_layer, int epoch, int n_epochs, double loss) {
    progress_state *ps = user;
    if (ps->quiet) return;
    if (!ps->tty) {
        if (epoch == n_epochs)
            fprintf(stderr, "layer %lld/%lld: %d epochs, loss %.4f, %.0f s\n", (long long)layer + 1, (long long)n_layer,
                    n_epochs, loss, clv_now_seconds() - ps->t0);
        return;
    }
    if (epoch == 0) {
        fprintf(stderr, "\rlayer %lld/%lld: starting                              ", (long long)layer + 1,
                (long long)n_layer);
    } else {
        fprintf(stderr, "\rlayer %lld/%lld: epoch %d/%d, loss %.4f, %.0f s   ", (long long)layer + 1,
                (long long)n_layer, epoch, n_epochs, loss, clv_now_seconds() - ps->t0);
    }
    if (epoch == n_epochs) fprintf(stderr, "\n");
    fflush(stderr);
}

/* The profile must be of this model. */
static clv_status check_profile(const clv_profile *p, const clv_model *m, const char *path) {
    if (p->n_layer != m->hp.n_layer || p->n_embd != m->hp.n_embd) {
        return clv_fail(CLV_ERR_ARG, "%s: the profile is of a model with %lld layers and n_embd %lld; %s has %lld and "
                                     "%lld",
                        path, (long long)p->n_layer, (long long)p->n_embd, m->hp.arch, (long long)m->hp.n_layer,
                        (long long)m->hp.n_embd);
    }
    for (int64_t il = 0; il < p->n_layer; il++) {
        if (p->layers[il].n_ff != m->hp.n_ff[il]) {
            return clv_fail(CLV_ERR_ARG, "%s: layer %lld: the profile has n_ff %lld, the model %lld", path,
                            (long long)il, (long long)p->layers[il].n_ff, (long long)m->hp.n_ff[il]);
        }
    }
    return CLV_OK;
}

static void print_lookahead(const clv_lookahead_result *r, int64_t n) {
    double sum = 0, sum_pop = 0;
    printf("\nexpert look-ahead (router of layer l+1 on layer l's FFN input), top-%s hit rate:\n", "k");
    printf("layer -> next  tokens  hit rate  all k hit  popular-k  random\n");
    for (int64_t i = 0; i < n; i++) {
        printf("%5lld -> %-4lld %6lld  %8.4f  %9.4f  %9.4f  %6.4f\n", (long long)r[i].src, (long long)r[i].dst,
               (long long)r[i].n_samples, r[i].hit_rate, r[i].all_hit_rate, r[i].popular_rate, r[i].random_rate);
        sum += r[i].hit_rate;
        sum_pop += r[i].popular_rate;
    }
    if (n > 0) printf("mean          %6s  %8.4f  %9s  %9.4f\n", "", sum / (double)n, "", sum_pop / (double)n);
}

static int run_lookahead(const clv_model *m, const clv_profile *p, bool required) {
    clv_expert_lookahead *la = NULL;
    clv_status st = clv_expert_lookahead_create(m, &la);
    if (st) {
        if (!required) return 0;
        fprintf(stderr, "cleave predictor: %s\n", clv_last_error());
        return 1;
    }
    clv_lookahead_result *res = calloc((size_t)m->hp.n_layer, sizeof *res);
    int64_t n = 0;
    st = res ? clv_expert_lookahead_eval(la, p, res, &n) : clv_fail(CLV_ERR_NOMEM, "out of memory");
    if (!st) print_lookahead(res, n);
    else fprintf(stderr, "cleave predictor: %s\n", clv_last_error());
    free(res);
    clv_expert_lookahead_free(la);
    return st ? 1 : 0;
}

static void print_layers(const clv_predictor_set *s, const clv_predictor_eval_layer *ev) {
    printf("layer  n_ff  rank      bytes  recall  precision  predicted  active  act thr  %s\n",
           ev ? "samples" : "held-out");
    double sr = 0, sp = 0, sq = 0;
    uint64_t total = 0;
    int64_t n = 0;
    for (int64_t il = 0; il < s->n_layer; il++) {
        const clv_predictor_layer *L = &s->layers[il];
        if (L->rank <= 0) {
            if (L->n_ff > 0) printf("%5lld %5lld     -          -  (no predictor)\n", (long long)il, (long long)L->n_ff);
            continue;
        }
        char b[32];
        uint64_t bytes = clv_predictor_layer_bytes(s, il);
        clv_human_size(bytes, b, sizeof b);
        double rc = ev ? ev[il].recall : L->recall, pr = ev ? ev[il].precision : L->precision;
        double ps = ev ? ev[il].predicted_share : L->predicted_share, as = ev ? ev[il].active_share : L->active_share;
        int64_t ns = ev ? ev[il].n_samples : L->n_holdout;
        printf("%5lld %5lld %5lld %10s  %6.4f  %9.4f  %9.4f  %6.4f  %7.4g  %lld\n", (long long)il, (long long)L->n_ff,
               (long long)L->rank, b, rc, pr, ps, as, (double)L->act_threshold, (long long)ns);
        total += bytes;
        if (ns > 0) sr += rc, sp += pr, sq += ps, n++;
    }
    char b[32];
    clv_human_size(total, b, sizeof b);
    if (n > 0) {
        printf("mean              %10s  %6.4f  %9.4f  %9.4f   (total size)\n", b, sr / (double)n, sp / (double)n,
               sq / (double)n);
    }
}

/* What the predictors cost a decoded token against what they save: each
 * predictor's own bytes against the gate and up rows of the neurons it rules
 * out (at the predicted share of the held-out samples, or of ev's). Top-k
 * and thresholds rank by |h|, so the rows the predictor lets through are
 * read whatever it predicts; when it rules out too few neurons it makes
 * decode slower, not faster, and the user should know. */
static void print_cost(const clv_predictor_set *s, const clv_model *m, const clv_predictor_eval_layer *ev) {
    double cost = 0, saved = 0;
    for (int64_t il = 0; il < s->n_layer; il++) {
        const clv_predictor_layer *L = &s->layers[il];
        const clv_layer *l = &m->layers[il];
        if (L->rank <= 0 || !l->ffn_gate || !l->ffn_up) continue;
        double share = ev ? (ev[il].n_samples > 0 ? ev[il].predicted_share : 1.0) : L->predicted_share;
        cost += (double)clv_predictor_layer_bytes(s, il);
        saved += (1.0 - share) * (double)L->n_ff * (double)(l->ffn_gate->row_bytes + l->ffn_up->row_bytes);
    }
    if (cost <= 0) return;
    char c[CLV_HUMAN_SIZE_MAX], v[CLV_HUMAN_SIZE_MAX];
    clv_human_size((uint64_t)cost, c, sizeof c);
    clv_human_size((uint64_t)saved, v, sizeof v);
    printf("\nper decoded token: the predictors read %s and rule out %s of gate and up rows\n", c, v);
    if (saved < cost) {
        printf("note: they read more than they save, so decode with --predictor is likely slower than with "
               "--sparsity alone; a predictor pays where it rules out more neurons (ReLU-family models, "
               "a lower --recall at a cost in quality)\n");
    }
}

int clv_cmd_predictor(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *mode = argv[1];
    if (strcmp(mode, "train") && strcmp(mode, "eval") && strcmp(mode, "lookahead")) {
        fprintf(stderr, "cleave predictor: unknown mode '%s' (train, eval or lookahead)\n\n", mode);
        usage(stderr);
        return 2;
    }
    const char *model_path = NULL, *profile_path = NULL, *predictor_path = NULL, *out_path = NULL;
    clv_predictor_train_params tp = clv_predictor_train_default_params();
    bool quiet = false;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        bool has = i + 1 < argc;
        int64_t iv;
        double dv;
        if ((!strcmp(a, "-m") || !strcmp(a, "--model")) && has) model_path = argv[++i];
        else if (!strcmp(a, "--profile") && has) profile_path = argv[++i];
        else if (!strcmp(a, "--predictor") && has) predictor_path = argv[++i];
        else if ((!strcmp(a, "-o") || !strcmp(a, "--output")) && has) out_path = argv[++i];
        else if (!strcmp(a, "--recall") && has) {
            if (!parse_f64(argv[++i], 1e-6, 1.0, &dv)) goto bad_value;
            tp.target_recall = (float)dv;
        } else if (!strcmp(a, "--rank") && has) {
            if (!strcmp(argv[++i], "auto")) tp.rank = 0;
            else if (parse_i64(argv[i], 1, 65536, &iv)) tp.rank = iv;
            else goto bad_value;
        } else if (!strcmp(a, "--weights") && has) {
            const char *v = argv[++i];
            if (!strcmp(v, "auto")) tp.weight_type = -1;
            else if (!strcmp(v, "q8_0") || !strcmp(v, "Q8_0")) tp.weight_type = CLV_TYPE_Q8_0;
            else if (!strcmp(v, "q4_0") || !strcmp(v, "Q4_0")) tp.weight_type = CLV_TYPE_Q4_0;
            else if (!strcmp(v, "f16") || !strcmp(v, "F16")) tp.weight_type = CLV_TYPE_F16;
            else goto bad_value;
        } else if (!strcmp(a, "--epochs") && has) {
            if (!parse_i64(argv[++i], 1, 100000, &iv)) goto bad_value;
            tp.epochs = (int)iv;
        } else if (!strcmp(a, "--lr") && has) {
            if (!parse_f64(argv[++i], 1e-9, 10, &dv)) goto bad_value;
            tp.learning_rate = (float)dv;
        } else if (!strcmp(a, "--holdout") && has) {
            if (!parse_f64(argv[++i], 1e-3, 0.9, &dv)) goto bad_value;
            tp.holdout = (float)dv;
        } else if (!strcmp(a, "--seed") && has) {
            if (!parse_i64(argv[++i], 0, INT64_MAX, &iv)) goto bad_value;
            tp.seed = (uint64_t)iv;
        } else if ((!strcmp(a, "-t") || !strcmp(a, "--threads")) && has) {
            if (!parse_i64(argv[++i], 0, 1024, &iv)) goto bad_value;
            tp.n_threads = (int)iv;
        } else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) quiet = true;
        else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "cleave predictor: unknown option '%s'\n\n", a);
            usage(stderr);
            return 2;
        }
        continue;
    bad_value:
        fprintf(stderr, "cleave predictor: bad value '%s' for %s\n", argv[i], a);
        return 2;
    }
    bool train = !strcmp(mode, "train"), eval = !strcmp(mode, "eval");
    if (!model_path || !profile_path || (train && !out_path) || (eval && !predictor_path)) {
        fprintf(stderr, "cleave predictor %s: -m, --profile%s are required\n\n", mode,
                train ? " and -o" : eval ? " and --predictor" : "");
        usage(stderr);
        return 2;
    }

    int rc = 1;
    clv_model *m = NULL;
    clv_profile *p = NULL;
    clv_predictor_set *s = NULL;
    clv_predictor_eval_layer *ev = NULL;
    clv_model_params mp = clv_model_default_params();
    clv_status st = clv_model_load(model_path, &mp, &m);
    if (!st) {
        st = clv_profile_load(profile_path, &p);
        if (!st) st = check_profile(p, m, profile_path);
    }
    if (st) goto fail;

    if (train) {
        progress_state ps = {clv_now_seconds(), quiet, isatty(2) != 0};
        if (!quiet) {
            fprintf(stderr, "cleave predictor: training on %s (%lld tokens), target recall %.3f, %s rank, %d epochs\n",
                    profile_path, (long long)p->n_tokens, (double)tp.target_recall, tp.rank ? "fixed" : "auto",
                    tp.epochs);
        }
        st = clv_predictor_train(p, &tp, on_progress, &ps, &s);
        if (!st) st = clv_predictor_check_model(s, m);
        if (!st) st = clv_predictor_save(s, out_path);
        if (st) goto fail;
        if (!quiet) fprintf(stderr, "cleave predictor: trained in %.1f s, wrote %s\n", clv_now_seconds() - ps.t0, out_path);
        printf("held-out samples of %s (last %.0f%%), threshold tuned there for recall %.3f:\n", profile_path,
               100.0 * tp.holdout, (double)tp.target_recall);
        print_layers(s, NULL);
        print_cost(s, m, NULL);
        rc = 0;
    } else if (eval) {
        st = clv_predictor_load(predictor_path, m, &s);
        if (st) goto fail;
        ev = calloc((size_t)s->n_layer, sizeof *ev);
        st = ev ? clv_predictor_eval(s, p, tp.n_threads, ev) : clv_fail(CLV_ERR_NOMEM, "out of memory");
        if (st) goto fail;
        printf("%s on the samples of %s (target recall %.3f):\n", predictor_path, profile_path,
               (double)s->target_recall);
        print_layers(s, ev);
        print_cost(s, m, ev);
        rc = run_lookahead(m, p, false);
    } else {
        rc = run_lookahead(m, p, true);
    }
    goto done;
fail:
    fprintf(stderr, "cleave predictor: %s\n", clv_last_error());
done:
    free(ev);
    clv_predictor_free(s);
    clv_profile_free(p);
    clv_model_free(m);
    return rc;
}
