/* Thread pool: every thread runs once per call, the caller is thread 0,
 * writes are visible after the call, static and dynamic splits cover every
 * index exactly once, create/free cycles are clean. Prints the per-call
 * overhead of an empty job. */
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <time.h>

#include "test.h"
#include "threadpool.h"

#define N_ITEMS 1000
#define MAX_THREADS 8

typedef struct job {
    pthread_t caller;
    int nth_expected;
    int runs[MAX_THREADS];         /* each thread writes only its own slot */
    int bad_nth;                   /* set by a thread that saw the wrong nth */
    int caller_mismatch;           /* ith 0 ran on another thread */
    int items[N_ITEMS];            /* static split: plain increments */
    int dyn_items[N_ITEMS];        /* dynamic split: plain increments */
    int64_t chunk;
    clv_work_counter counter;
} job;

static void job_fn(void *ctx, int ith, int nth) {
    job *j = ctx;
    if (nth != j->nth_expected) j->bad_nth = 1;
    if (ith == 0 && !pthread_equal(pthread_self(), j->caller)) j->caller_mismatch = 1;
    j->runs[ith]++;
    int64_t b, e;
    clv_threadpool_split(N_ITEMS, j->chunk, ith, nth, &b, &e);
    for (int64_t i = b; i < e; i++) j->items[i]++;
    while (clv_work_counter_next(&j->counter, &b, &e))
        for (int64_t i = b; i < e; i++) j->dyn_items[i]++;
}

static double seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void empty_fn(void *ctx, int ith, int nth) {
    (void)ctx;
    (void)ith;
    (void)nth;
}

static void test_pool(int n_threads, bool pin, int n_calls) {
    clv_threadpool_params prm = clv_threadpool_default_params();
    prm.n_threads = n_threads;
    prm.pin = pin;
    clv_threadpool *pool = NULL;
    CHECK_STATUS(clv_threadpool_create(&prm, &pool), CLV_OK);
    if (!pool) return;
    CHECK_EQ_INT(clv_threadpool_n_threads(pool), n_threads);
    for (int i = 0; i < n_threads; i++) {
        int node = clv_threadpool_numa_node(pool, i);
        CHECK(node >= -1);
        if (!clv_threadpool_pinned(pool)) CHECK_EQ_INT(node, -1);
    }
    CHECK_EQ_INT(clv_threadpool_numa_node(pool, n_threads), -1);

    static job j;
    memset(&j, 0, sizeof j);
    j.caller = pthread_self();
    j.nth_expected = n_threads;
    int64_t chunks[] = {1, 7, 64, 1000, 4096};
    for (int c = 0; c < n_calls; c++) {
        j.chunk = chunks[c % 5];
        clv_work_counter_init(&j.counter, N_ITEMS, chunks[(c + 2) % 5]);
        clv_threadpool_run(pool, job_fn, &j);
        /* Read right after the call, with no other synchronisation. */
        int bad = 0;
        for (int i = 0; i < n_threads; i++) bad |= j.runs[i] != c + 1;
        for (int i = 0; i < N_ITEMS; i++) bad |= j.items[i] != c + 1 || j.dyn_items[i] != c + 1;
        if (bad) {
            CHECK_MSG(!bad, "threads=%d call %d: a thread or an index ran not exactly once",
                      n_threads, c);
            break;
        }
    }
    CHECK_EQ_INT(j.bad_nth, 0);
    CHECK_EQ_INT(j.caller_mismatch, 0);

    /* Per-call overhead of an empty job. */
    int reps = n_calls * 4;
    clv_threadpool_run(pool, empty_fn, NULL);
    double t0 = seconds();
    for (int i = 0; i < reps; i++) clv_threadpool_run(pool, empty_fn, NULL);
    double us = (seconds() - t0) / reps * 1e6;
    printf("threadpool: %d threads%s: %.2f us per run (empty job, %d runs)\n", n_threads,
           clv_threadpool_pinned(pool) ? " pinned" : "", us, reps);
    clv_threadpool_free(pool);
}

static void test_split(void) {
    /* Ranges tile [0, n) in order, chunk-aligned, balanced to one chunk. */
    int64_t ns[] = {0, 1, 5, 63, 64, 65, 1000, 4097};
    int64_t chunks[] = {1, 3, 16, 64};
    int nths[] = {1, 2, 3, 8, 13};
    for (size_t a = 0; a < sizeof ns / sizeof *ns; a++)
        for (size_t b = 0; b < sizeof chunks / sizeof *chunks; b++)
            for (size_t c = 0; c < sizeof nths / sizeof *nths; c++) {
                int64_t n = ns[a], chunk = chunks[b];
                int nth = nths[c];
                int64_t expect = 0, min_c = INT64_MAX, max_c = 0;
                for (int ith = 0; ith < nth; ith++) {
                    int64_t bg, en;
                    clv_threadpool_split(n, chunk, ith, nth, &bg, &en);
                    CHECK(bg == expect);
                    CHECK(en >= bg);
                    CHECK(bg % chunk == 0 || bg == n);
                    int64_t nc = (en - bg + chunk - 1) / chunk;
                    if (nc < min_c) min_c = nc;
                    if (nc > max_c) max_c = nc;
                    expect = en;
                }
                CHECK_MSG(expect == n, "n=%lld chunk=%lld nth=%d", (long long)n,
                          (long long)chunk, nth);
                CHECK(max_c - min_c <= 1);
            }

    clv_work_counter wc;
    clv_work_counter_init(&wc, 10, 4);
    int64_t bg, en;
    CHECK(clv_work_counter_next(&wc, &bg, &en) && bg == 0 && en == 4);
    CHECK(clv_work_counter_next(&wc, &bg, &en) && bg == 4 && en == 8);
    CHECK(clv_work_counter_next(&wc, &bg, &en) && bg == 8 && en == 10);
    CHECK(!clv_work_counter_next(&wc, &bg, &en));
    clv_work_counter_init(&wc, 0, 4);
    CHECK(!clv_work_counter_next(&wc, &bg, &en));
}

static void test_params(void) {
    clv_threadpool *pool = (clv_threadpool *)1;
    clv_threadpool_params prm = clv_threadpool_default_params();
    prm.n_threads = -1;
    CHECK_STATUS(clv_threadpool_create(&prm, &pool), CLV_ERR_ARG);
    CHECK(pool == NULL);
    CHECK(strstr(clv_last_error(), "n_threads") != NULL);
    prm.n_threads = CLV_THREADPOOL_MAX_THREADS + 1;
    CHECK_STATUS(clv_threadpool_create(&prm, &pool), CLV_ERR_ARG);
    prm.n_threads = 2;
    prm.spin_us = -5;
    CHECK_STATUS(clv_threadpool_create(&prm, &pool), CLV_ERR_ARG);
    clv_threadpool_free(NULL);

    /* n_threads = 0: one per physical core. */
    int cores = clv_cpu_physical_cores();
    CHECK(cores >= 1);
    prm = clv_threadpool_default_params();
    CHECK_STATUS(clv_threadpool_create(&prm, &pool), CLV_OK);
    if (pool) {
        CHECK_EQ_INT(clv_threadpool_n_threads(pool), cores);
        printf("threadpool: %d physical cores, pinned: %s, NUMA node of thread 0: %d\n",
               cores, clv_threadpool_pinned(pool) ? "yes" : "no",
               clv_threadpool_numa_node(pool, 0));
        clv_threadpool_free(pool);
    }
}

typedef struct where {
    int cpu[MAX_THREADS];
} where;

static void where_fn(void *ctx, int ith, int nth) {
    (void)nth;
    ((where *)ctx)->cpu[ith] = sched_getcpu();
}

/* Pinned threads run on distinct CPUs (while there are enough cores), and
 * the caller gets its own binding back when the pool is freed. */
static void test_pinning(void) {
    cpu_set_t before, after;
    CHECK(sched_getaffinity(0, sizeof before, &before) == 0);
    int cores = clv_cpu_physical_cores();
    int n = cores < MAX_THREADS ? cores : MAX_THREADS;
    clv_threadpool_params prm = clv_threadpool_default_params();
    prm.n_threads = n;
    prm.pin = true;
    clv_threadpool *pool = NULL;
    CHECK_STATUS(clv_threadpool_create(&prm, &pool), CLV_OK);
    if (!pool) return;
    if (clv_threadpool_pinned(pool)) {
        where w;
        for (int rep = 0; rep < 10; rep++) {
            clv_threadpool_run(pool, where_fn, &w);
            for (int i = 0; i < n; i++)
                for (int j = i + 1; j < n; j++)
                    CHECK_MSG(w.cpu[i] != w.cpu[j], "threads %d and %d both on CPU %d", i, j,
                              w.cpu[i]);
        }
        cpu_set_t during;
        CHECK(sched_getaffinity(0, sizeof during, &during) == 0);
        CHECK_EQ_INT(CPU_COUNT(&during), 1); /* the caller is thread 0, bound to one PU */
    } else {
        printf("threadpool: not pinned (no hwloc?): distinct-CPU check skipped\n");
    }
    clv_threadpool_free(pool);
    CHECK(sched_getaffinity(0, sizeof after, &after) == 0);
    CHECK(CPU_EQUAL(&before, &after));
}

static void test_create_free_cycles(void) {
    static job j;
    for (int i = 0; i < 100; i++) {
        clv_threadpool_params prm = clv_threadpool_default_params();
        prm.n_threads = 1 + i % 5;
        prm.pin = i % 2;
        clv_threadpool *pool = NULL;
        clv_status st = clv_threadpool_create(&prm, &pool);
        if (st != CLV_OK) {
            CHECK_STATUS(st, CLV_OK);
            return;
        }
        /* Some cycles run a job, some free an idle pool right away. */
        if (i % 3) {
            memset(&j, 0, sizeof j);
            j.caller = pthread_self();
            j.nth_expected = prm.n_threads;
            j.chunk = 16;
            clv_work_counter_init(&j.counter, N_ITEMS, 5);
            clv_threadpool_run(pool, job_fn, &j);
            for (int k = 0; k < prm.n_threads; k++) CHECK(j.runs[k] == 1);
        }
        clv_threadpool_free(pool);
    }
}

int main(int argc, char **argv) {
    /* Calls per configuration; sanitizer builds pass a smaller figure. */
    int n_calls = argc > 1 ? atoi(argv[1]) : 20000;
    if (n_calls < 10) n_calls = 10;
    test_params();
    test_split();
    test_pinning();
    test_pool(1, true, n_calls);
    test_pool(2, true, n_calls);
    test_pool(2, false, n_calls);
    test_pool(3, true, n_calls);
    /* More threads than cores: must work (sleeps instead of spinning). */
    test_pool(8, true, n_calls / 10);
    test_create_free_cycles();
    return test_finish("test_threadpool");
}
