/* Single-thread throughput of the CPU matvec kernels, in GB/s of weight bytes
 * read, per weight type and code path (built, not run by ctest).
 *
 *   bench_matvec [--n N] [--rows R] [--batch B] [--seconds S] [--type NAME] [--path NAME]
 *
 * Columns:
 *   mem    matvec over an N x R matrix (default 4096 x 4096: 9-64 MiB, more
 *          than the caches hold), so it includes the DRAM stream of one core
 *   cache  matvec over the first rows only (about 256 KiB of weights, L2-resident
 *          after the first pass): the kernel's compute ceiling; a multi-core
 *          decode is memory-bound when cores x cache >= the socket's bandwidth
 *   mm/B   matmul against B activations (default 8), GB/s of weight bytes per
 *          activation (the same unit, B times the work per byte)
 * Weights are random valid blocks (the speed does not depend on the values).
 *
 *   bench_matvec --threads T [--mib M] [--type NAME] [--path NAME]
 *
 * instead measures decode as the forward pass runs it: the rows of one
 * matrix of about M MiB (default 1024, more than the caches hold) split over
 * T threads, one matvec per pass, against a plain read of the same bytes by
 * the same threads; "of read" is the ratio, the share of the achievable
 * memory bandwidth that decode gets. */
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cpu/cpu_features.h"
#include "cpu/matvec.h"
#include "fp16.h"
#include "types.h"

static uint64_t rng_state = 12345;
static uint64_t rng_u64(void) {
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static float rng_uniform(void) { return (float)((double)(rng_u64() >> 11) * 0x1.0p-53) * 2.0f - 1.0f; }

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void put_fp16(uint8_t *p, float v) {
    clv_fp16 h = clv_fp32_to_fp16(v);
    memcpy(p, &h, 2);
}

/* Random bytes with finite scales (fp16 fields at the offsets of each block). */
static void fill(int32_t type, uint8_t *w, size_t bytes) {
    for (size_t i = 0; i < bytes; i += 8) {
        uint64_t r = rng_u64();
        memcpy(w + i, &r, bytes - i < 8 ? bytes - i : 8);
    }
    const clv_type_info *ti = clv_type_get(type);
    int off[2] = {-1, -1};
    switch (type) {
    case CLV_TYPE_F32:
        for (size_t i = 0; i < bytes; i += 4) {
            float v = rng_uniform();
            memcpy(w + i, &v, 4);
        }
        return;
    case CLV_TYPE_F16:
    case CLV_TYPE_BF16:
        for (size_t i = 0; i < bytes; i += 2) {
            uint16_t h = type == CLV_TYPE_F16 ? clv_fp32_to_fp16(rng_uniform()) : clv_fp32_to_bf16(rng_uniform());
            memcpy(w + i, &h, 2);
        }
        return;
    case CLV_TYPE_Q2_K: off[0] = 80, off[1] = 82; break;
    case CLV_TYPE_Q3_K: off[0] = 108; break;
    case CLV_TYPE_Q6_K: off[0] = 208; break;
    case CLV_TYPE_MXFP4:
        for (size_t i = 0; i < bytes; i += (size_t)ti->block_bytes) w[i] = (uint8_t)(120 + rng_u64() % 8);
        return;
    case CLV_TYPE_Q4_1:
    case CLV_TYPE_Q5_1:
    case CLV_TYPE_Q4_K:
    case CLV_TYPE_Q5_K: off[0] = 0, off[1] = 2; break;
    default: off[0] = 0; break;
    }
    for (size_t i = 0; i < bytes; i += (size_t)ti->block_bytes) {
        for (int k = 0; k < 2; k++) {
            if (off[k] >= 0) put_fp16(w + i + off[k], 0.01f * rng_uniform());
        }
    }
}

static const int32_t types[] = {
    CLV_TYPE_F32,  CLV_TYPE_F16,  CLV_TYPE_BF16, CLV_TYPE_Q4_0,   CLV_TYPE_Q4_1,   CLV_TYPE_Q5_0,
    CLV_TYPE_Q5_1, CLV_TYPE_Q8_0, CLV_TYPE_Q2_K, CLV_TYPE_Q3_K,   CLV_TYPE_Q4_K,   CLV_TYPE_Q5_K,
    CLV_TYPE_Q6_K, CLV_TYPE_IQ4_NL, CLV_TYPE_IQ4_XS, CLV_TYPE_MXFP4,
};

static volatile float sink;

static void pass(int32_t type, const uint8_t *w, size_t rb, int64_t n, int64_t rows, const uint8_t *xq, size_t xs,
                 int64_t batch, float *y) {
    if (batch == 1) clv_cpu_matvec(type, w, rb, n, xq, y, 0, rows);
    else clv_cpu_matmul(type, w, rb, n, xq, xs, batch, y, (size_t)rows, 0, rows);
}

/* GB/s of weight bytes for `rows` rows (one matvec or matmul per pass): the
 * best of five windows, since other processes may share the machine. */
static double run(int32_t type, const uint8_t *w, size_t rb, int64_t n, int64_t rows, const uint8_t *xq,
                  size_t xs, int64_t batch, float *y, double seconds) {
    pass(type, w, rb, n, rows, xq, xs, batch, y); /* warm up */
    double best = 0.0;
    for (int k = 0; k < 5; k++) {
        double t0 = now(), t;
        long passes = 0;
        do {
            pass(type, w, rb, n, rows, xq, xs, batch, y);
            passes++;
            t = now() - t0;
        } while (t < seconds / 5);
        double rate = (double)passes * (double)rows * (double)rb * (double)batch / t * 1e-9;
        if (rate > best) best = rate;
    }
    sink = y[0];
    return best;
}

/* --- multi-threaded decode against a plain read ------------------------------ */

typedef struct mt_job {
    int32_t type;
    const uint8_t *w;
    size_t rb;
    int64_t n, r0, r1;
    const uint8_t *xq;
    float *y;
    int read_only; /* 1: sum the bytes instead */
    uint64_t sum;
} mt_job;

#if defined(__x86_64__)
#include <immintrin.h>
/* The baseline read at full vector width (plain C would undersell it). */
__attribute__((target("avx2"))) static uint64_t read_avx2(const uint8_t *p, size_t bytes) {
    __m256i a = _mm256_setzero_si256(), b = a, c = a, d = a;
    size_t i = 0;
    for (; i + 128 <= bytes; i += 128) {
        a = _mm256_add_epi64(a, _mm256_loadu_si256((const __m256i *)(const void *)(p + i)));
        b = _mm256_add_epi64(b, _mm256_loadu_si256((const __m256i *)(const void *)(p + i + 32)));
        c = _mm256_add_epi64(c, _mm256_loadu_si256((const __m256i *)(const void *)(p + i + 64)));
        d = _mm256_add_epi64(d, _mm256_loadu_si256((const __m256i *)(const void *)(p + i + 96)));
    }
    a = _mm256_add_epi64(_mm256_add_epi64(a, b), _mm256_add_epi64(c, d));
    return (uint64_t)_mm256_extract_epi64(a, 0) + (uint64_t)_mm256_extract_epi64(a, 3);
}
#endif

static uint64_t read_bytes(const uint8_t *p, size_t bytes) {
#if defined(__x86_64__)
    if (clv_cpu_get_features()->avx2) return read_avx2(p, bytes);
#endif
    const uint64_t *q = (const uint64_t *)(const void *)p;
    uint64_t a = 0, b = 0, c = 0, d = 0;
    for (size_t i = 0; i + 4 <= bytes / 8; i += 4) {
        a += q[i];
        b += q[i + 1];
        c += q[i + 2];
        d += q[i + 3];
    }
    return a + b + c + d;
}

static pthread_barrier_t mt_start, mt_done;
static volatile int mt_quit;

static void *mt_worker(void *arg) {
    mt_job *j = (mt_job *)arg;
    for (;;) {
        pthread_barrier_wait(&mt_start);
        if (mt_quit) return NULL;
        if (j->read_only) {
            j->sum += read_bytes(j->w + (size_t)j->r0 * j->rb, (size_t)(j->r1 - j->r0) * j->rb);
        } else {
            clv_cpu_matvec(j->type, j->w, j->rb, j->n, j->xq, j->y + j->r0, j->r0, j->r1);
        }
        pthread_barrier_wait(&mt_done);
    }
}

/* GB/s of one pass over all rows, best of 5 windows. */
static double mt_run(int nt, mt_job *jobs, int read_only, double bytes, double seconds) {
    for (int t = 0; t < nt; t++) jobs[t].read_only = read_only;
    double best = 0.0;
    for (int k = 0; k < 6; k++) { /* the first window warms up */
        double t0 = now(), t;
        long passes = 0;
        do {
            pthread_barrier_wait(&mt_start);
            pthread_barrier_wait(&mt_done);
            passes++;
            t = now() - t0;
        } while (t < seconds / 5);
        if (k > 0 && passes * bytes / t * 1e-9 > best) best = passes * bytes / t * 1e-9;
    }
    return best;
}

static int run_threads(int nt, double mib, const char *only_type, const char *only_path, double seconds) {
    const int64_t n = 4096;
    float *x = malloc(sizeof(float) * (size_t)n);
    for (int64_t i = 0; i < n; i++) x[i] = rng_uniform();
    uint8_t *xq = malloc((size_t)n * 4);
    printf("decode, %d threads, %.0f MiB per matrix (n_in %lld): GB/s of weight bytes\n", nt, mib, (long long)n);
    printf("%-8s %-7s %8s %8s %8s\n", "type", "path", "matvec", "read", "of read");
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
        const int32_t type = types[t];
        if (only_type && clv_type_from_name(only_type) != type) continue;
        uint64_t rb64;
        if (!clv_type_bytes(type, n, &rb64)) continue;
        const size_t rb = (size_t)rb64;
        const int64_t rows = (int64_t)(mib * 1048576.0 / (double)rb);
        uint8_t *w = malloc(rb * (size_t)rows);
        float *y = malloc(sizeof(float) * (size_t)rows);
        fill(type, w, rb * (size_t)rows);
        for (int p = CLV_CPU_PATH_SCALAR; p <= CLV_CPU_PATH_AVX512; p++) {
            if (only_path ? strcmp(only_path, clv_cpu_path_name((clv_cpu_path)p)) != 0 : p == CLV_CPU_PATH_SCALAR) continue;
            if (!clv_cpu_set_path((clv_cpu_path)p)) continue;
            clv_cpu_quantize_activation(type, x, xq, n);
            mt_job jobs[256];
            pthread_t th[256];
            pthread_barrier_init(&mt_start, NULL, (unsigned)nt + 1);
            pthread_barrier_init(&mt_done, NULL, (unsigned)nt + 1);
            mt_quit = 0;
            for (int i = 0; i < nt; i++) {
                jobs[i] = (mt_job){type, w, rb, n, rows * i / nt, rows * (i + 1) / nt, xq, y, 0, 0};
                pthread_create(&th[i], NULL, mt_worker, &jobs[i]);
            }
            const double bytes = (double)rb * (double)rows;
            double mv = mt_run(nt, jobs, 0, bytes, seconds);
            double rd = mt_run(nt, jobs, 1, bytes, seconds);
            mt_quit = 1;
            pthread_barrier_wait(&mt_start);
            for (int i = 0; i < nt; i++) pthread_join(th[i], NULL);
            pthread_barrier_destroy(&mt_start);
            pthread_barrier_destroy(&mt_done);
            printf("%-8s %-7s %8.1f %8.1f %7.0f%%\n", clv_type_name(type), clv_cpu_path_name((clv_cpu_path)p), mv, rd,
                   100.0 * mv / rd);
            fflush(stdout);
        }
        free(w);
        free(y);
    }
    free(x);
    free(xq);
    return 0;
}

int main(int argc, char **argv) {
    int64_t n = 4096, rows = 4096, batch = 8;
    double seconds = 0.3;
    const char *only_type = NULL, *only_path = NULL;
    int threads = 0;
    double mib = 1024.0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--n") && i + 1 < argc) n = atoll(argv[++i]);
        else if (!strcmp(argv[i], "--rows") && i + 1 < argc) rows = atoll(argv[++i]);
        else if (!strcmp(argv[i], "--batch") && i + 1 < argc) batch = atoll(argv[++i]);
        else if (!strcmp(argv[i], "--seconds") && i + 1 < argc) seconds = atof(argv[++i]);
        else if (!strcmp(argv[i], "--type") && i + 1 < argc) only_type = argv[++i];
        else if (!strcmp(argv[i], "--path") && i + 1 < argc) only_path = argv[++i];
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--mib") && i + 1 < argc) mib = atof(argv[++i]);
        else {
            fprintf(stderr,
                    "usage: %s [--n N] [--rows R] [--batch B] [--seconds S] [--type NAME] [--path NAME]\n"
                    "       %s --threads T [--mib M] [--seconds S] [--type NAME] [--path NAME]\n",
                    argv[0], argv[0]);
            return 2;
        }
    }
    if (threads > 0) {
        if (threads > 256 || mib <= 0) {
            fprintf(stderr, "--threads 1..256, --mib > 0\n");
            return 2;
        }
        return run_threads(threads, mib, only_type, only_path, seconds);
    }
    if (n % 256 != 0 || rows < 1 || batch < 2) {
        fprintf(stderr, "n must be a multiple of 256, rows >= 1, batch >= 2\n");
        return 2;
    }
    char feat[256];
    clv_cpu_features_str(clv_cpu_get_features(), feat, sizeof feat);
    printf("cpu features: %s\n", feat);
    printf("matrix %lld x %lld, single thread, GB/s of weight bytes (mm: per activation, batch %lld)\n",
           (long long)n, (long long)rows, (long long)batch);
    printf("%-8s %-7s %8s %8s %8s\n", "type", "path", "mem", "cache", "mm");

    float *x = malloc(sizeof(float) * (size_t)n);
    for (int64_t i = 0; i < n; i++) x[i] = rng_uniform();
    size_t xq_cap = (size_t)n * 4;
    uint8_t *xq = malloc(xq_cap * (size_t)batch);
    float *y = malloc(sizeof(float) * (size_t)rows * (size_t)batch);

    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
        const int32_t type = types[t];
        if (only_type && clv_type_from_name(only_type) != type) continue;
        uint64_t rb64;
        if (!clv_type_bytes(type, n, &rb64)) continue;
        const size_t rb = (size_t)rb64;
        uint8_t *w = malloc(rb * (size_t)rows);
        fill(type, w, rb * (size_t)rows);
        int64_t cache_rows = (int64_t)(256 * 1024 / rb);
        if (cache_rows < 1) cache_rows = 1;
        if (cache_rows > rows) cache_rows = rows;
        for (int p = CLV_CPU_PATH_SCALAR; p <= CLV_CPU_PATH_AVX512; p++) {
            if (only_path && strcmp(only_path, clv_cpu_path_name((clv_cpu_path)p))) continue;
            if (!clv_cpu_set_path((clv_cpu_path)p)) {
                printf("%-8s %-7s  (not available on this CPU)\n", clv_type_name(type), clv_cpu_path_name((clv_cpu_path)p));
                continue;
            }
            const size_t xs = clv_cpu_activation_bytes(type, n);
            for (int64_t b = 0; b < batch; b++) clv_cpu_quantize_activation(type, x, xq + (size_t)b * xs, n);
            double s = p == CLV_CPU_PATH_SCALAR ? seconds / 3 : seconds;
            double mem = run(type, w, rb, n, rows, xq, xs, 1, y, s);
            double cache = run(type, w, rb, n, cache_rows, xq, xs, 1, y, s);
            double mm = run(type, w, rb, n, cache_rows, xq, xs, batch, y, s);
            printf("%-8s %-7s %8.2f %8.2f %8.2f\n", clv_type_name(type), clv_cpu_path_name((clv_cpu_path)p), mem,
                   cache, mm);
            fflush(stdout);
        }
        free(w);
    }
    free(x);
    free(xq);
    free(y);
    return 0;
}
