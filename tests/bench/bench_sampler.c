/* Sampling cost per token at a 262144-entry vocabulary (Gemma 3's), for the
 * default chain and the usual variations. Not a test: prints a table.
 *
 *   build/tests/bench_sampler [n_vocab] [seconds per row]
 *
 * The logits look like a language model's: a normal body and a handful of
 * tokens well above it; eight such vectors are cycled so the caches hold no
 * favourite. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sampler.h"

static uint64_t state = 0x9e3779b97f4a7c15ull;
static double unit(void) {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return (double)(state >> 11) * 0x1.0p-53;
}
static double normal(void) {
    double u = unit(), v = unit();
    if (u < 1e-300) u = 1e-300;
    return sqrt(-2.0 * log(u)) * cos(2.0 * M_PI * v);
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

enum { N_VECTORS = 8 };

typedef struct row {
    const char *name;
    int top_k;
    float top_p, min_p, typical_p, temperature, repeat_penalty;
} row;

int main(int argc, char **argv) {
    int n_vocab = argc > 1 ? atoi(argv[1]) : 262144;
    double budget = argc > 2 ? atof(argv[2]) : 0.5;
    if (n_vocab < 64) n_vocab = 64;
    float *logits[N_VECTORS];
    for (int v = 0; v < N_VECTORS; v++) {
        logits[v] = malloc(sizeof(float) * (size_t)n_vocab);
        if (!logits[v]) return 1;
        for (int i = 0; i < n_vocab; i++) logits[v][i] = (float)(normal() * 2.0);
        for (int j = 0; j < 12; j++) logits[v][(size_t)(unit() * n_vocab)] = (float)(8.0 + 4.0 * unit());
    }

    const row rows[] = {
        {"default (k 40, p 0.95, min-p 0.05, t 0.8)", 40, 0.95f, 0.05f, 1.0f, 0.8f, 1.0f},
        {"default + repeat-penalty 1.1 (64 tokens)", 40, 0.95f, 0.05f, 1.0f, 0.8f, 1.1f},
        {"greedy (temp 0)", 40, 0.95f, 0.05f, 1.0f, 0.0f, 1.0f},
        {"greedy + repeat-penalty 1.1", 40, 0.95f, 0.05f, 1.0f, 0.0f, 1.1f},
        {"top-k off: p 0.95, min-p 0.05", 0, 0.95f, 0.05f, 1.0f, 0.8f, 1.0f},
        {"top-k off, min-p off: p 0.95", 0, 0.95f, 0.0f, 1.0f, 0.8f, 1.0f},
        {"temperature only (full softmax)", 0, 1.0f, 0.0f, 1.0f, 0.8f, 1.0f},
        {"default + typical 0.9", 40, 0.95f, 0.05f, 0.9f, 0.8f, 1.0f},
        {"top-k off + typical 0.9", 0, 0.95f, 0.05f, 0.9f, 0.8f, 1.0f},
    };

    /* What a pass over the logits costs at all: the floor for any chain. */
    double t0 = now();
    int passes = 0;
    volatile float sink = 0;
    while (now() - t0 < budget) {
        const float *x = logits[passes % N_VECTORS];
        float mx = -INFINITY;
        for (int i = 0; i < n_vocab; i++) mx = x[i] > mx ? x[i] : mx;
        sink += mx;
        passes++;
    }
    printf("vocabulary %d: one max() pass over the logits: %.1f us\n", n_vocab,
           (now() - t0) / passes * 1e6);
    printf("| %-44s | us/token (mean) | us/token (best) | candidates |\n", "chain");
    printf("|%.*s|-----------------|-----------------|------------|\n", 46,
           "----------------------------------------------");

    for (size_t r = 0; r < sizeof rows / sizeof *rows; r++) {
        clv_sampler_params p = clv_sampler_default_params();
        p.n_vocab = n_vocab;
        p.seed = 1;
        p.top_k = rows[r].top_k;
        p.top_p = rows[r].top_p;
        p.min_p = rows[r].min_p;
        p.typical_p = rows[r].typical_p;
        p.temperature = rows[r].temperature;
        p.repeat_penalty = rows[r].repeat_penalty;
        clv_sampler *s = NULL;
        if (clv_sampler_create(&p, &s) != CLV_OK) {
            fprintf(stderr, "bench_sampler: %s\n", clv_last_error());
            return 1;
        }
        for (int i = 0; i < 64; i++) clv_sampler_accept(s, (int32_t)(unit() * n_vocab));
        const int32_t *ids;
        const float *probs;
        int n_cand = clv_sampler_candidates(s, logits[0], &ids, &probs);
        for (int i = 0; i < 5; i++) clv_sampler_sample(s, logits[i % N_VECTORS]);
        int iters = 0;
        double best = 1e9;
        double start = now();
        while (now() - start < budget || iters < 5) {
            double a = now();
            int32_t t = clv_sampler_sample(s, logits[iters % N_VECTORS]);
            double b = now();
            if (b - a < best) best = b - a;
            clv_sampler_accept(s, t); /* the window moves as in generation */
            iters++;
        }
        double mean = (now() - start) / iters;
        printf("| %-44s | %15.1f | %15.1f | %10d |\n", rows[r].name, mean * 1e6, best * 1e6, n_cand);
        clv_sampler_free(s);
    }
    for (int v = 0; v < N_VECTORS; v++) free(logits[v]);
    return 0;
}
