/* Thread-pool overhead: the cost of one clv_threadpool_run for an empty job
 * and for a small one (a 4096 x 1024 f32 matrix-vector product, the size of
 * a decode-step piece), for 1 .. n threads. Not a test: prints a table.
 *
 *   build/tests/bench_threadpool [max_threads] [runs]
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "threadpool.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void empty(void *ctx, int ith, int nth) {
    (void)ctx;
    (void)ith;
    (void)nth;
}

enum { ROWS = 4096, COLS = 1024 };

typedef struct matvec {
    const float *w, *x;
    float *y;
} matvec;

static void matvec_fn(void *ctx, int ith, int nth) {
    matvec *m = ctx;
    int64_t b, e;
    clv_threadpool_split(ROWS, 16, ith, nth, &b, &e); /* 16 rows: 64-byte aligned outputs */
    for (int64_t r = b; r < e; r++) {
        const float *row = m->w + r * COLS;
        float acc = 0;
        for (int c = 0; c < COLS; c++) acc += row[c] * m->x[c];
        m->y[r] = acc;
    }
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    int max_threads = argc > 1 ? atoi(argv[1]) : clv_cpu_physical_cores();
    int runs = argc > 2 ? atoi(argv[2]) : 20000;
    if (max_threads < 1) max_threads = 1;
    if (runs < 100) runs = 100;
    matvec m;
    float *w = malloc(sizeof(float) * ROWS * COLS), *x = malloc(sizeof(float) * COLS);
    m.y = malloc(sizeof(float) * ROWS);
    if (!w || !x || !m.y) return 1;
    for (int i = 0; i < ROWS * COLS; i++) w[i] = (float)((i % 7) - 3) * 0.01f;
    for (int i = 0; i < COLS; i++) x[i] = (float)(i % 5) * 0.1f;
    m.w = w;
    m.x = x;
    double *t = malloc(sizeof(double) * (size_t)runs);

    printf("physical cores: %d\n", clv_cpu_physical_cores());
    printf("| threads | pinned | empty run: median us | p99 us | matvec 4096x1024 us |\n");
    printf("|---------|--------|----------------------|--------|---------------------|\n");
    /* 1, 2, 4, ... and max_threads itself */
    for (int n = 1;; n = n * 2 < max_threads ? n * 2 : max_threads) {
        clv_threadpool_params p = clv_threadpool_default_params();
        p.n_threads = n;
        clv_threadpool *pool = NULL;
        if (clv_threadpool_create(&p, &pool) != CLV_OK) {
            fprintf(stderr, "bench_threadpool: %s\n", clv_last_error());
            return 1;
        }
        for (int i = 0; i < 100; i++) clv_threadpool_run(pool, empty, NULL);
        for (int i = 0; i < runs; i++) {
            double a = now();
            clv_threadpool_run(pool, empty, NULL);
            t[i] = now() - a;
        }
        qsort(t, (size_t)runs, sizeof *t, cmp_double);
        double med = t[runs / 2], p99 = t[runs * 99 / 100];
        int mv_runs = runs / 20 > 50 ? runs / 20 : 50;
        clv_threadpool_run(pool, matvec_fn, &m);
        double a = now();
        for (int i = 0; i < mv_runs; i++) clv_threadpool_run(pool, matvec_fn, &m);
        double mv = (now() - a) / mv_runs;
        printf("| %7d | %6s | %20.2f | %6.2f | %19.1f |\n", n,
               clv_threadpool_pinned(pool) ? "yes" : "no", med * 1e6, p99 * 1e6, mv * 1e6);
        clv_threadpool_free(pool);
        if (n == max_threads) break;
    }
    free(w);
    free(x);
    free(m.y);
    free(t);
    return 0;
}
