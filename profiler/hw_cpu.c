/* CPU part of the hardware profile: matrix-vector GB/s per weight type and
 * thread count.
 *
 * One buffer, several times the last-level cache, is filled once with random
 * bytes; before each type its scale fields are overwritten with small finite
 * values (and float weights masked to finite), which makes any random byte
 * pattern valid blocks of that type, far faster than quantizing 256 MiB. The
 * fill runs on the pinned pool, split as the matvec splits rows, so on NUMA
 * machines pages land where the threads that read them run. */
#include <ctype.h>
#include <dirent.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "blocks.h"
#include "hw_internal.h"
#include "matvec.h"
#include "threadpool.h"
#include "types.h"

#define N_IN 4096 /* columns: a typical hidden size, a multiple of every block */
#define MAX_REPS 64

static uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* ---- weights ------------------------------------------------------------ */

/* Offsets of the fp16 scale fields of a block (d, and m or dmin). Returns
 * their count, or -1 for a type whose blocks this file cannot make valid. */
static int scale_fields(int32_t type, size_t off[2]) {
    switch (type) {
    case CLV_TYPE_Q4_0: off[0] = offsetof(clv_block_q4_0, d); return 1;
    case CLV_TYPE_Q4_1: off[0] = offsetof(clv_block_q4_1, d), off[1] = offsetof(clv_block_q4_1, m); return 2;
    case CLV_TYPE_Q5_0: off[0] = offsetof(clv_block_q5_0, d); return 1;
    case CLV_TYPE_Q5_1: off[0] = offsetof(clv_block_q5_1, d), off[1] = offsetof(clv_block_q5_1, m); return 2;
    case CLV_TYPE_Q8_0: off[0] = offsetof(clv_block_q8_0, d); return 1;
    case CLV_TYPE_IQ4_NL: off[0] = offsetof(clv_block_iq4_nl, d); return 1;
    case CLV_TYPE_Q2_K: off[0] = offsetof(clv_block_q2_k, d), off[1] = offsetof(clv_block_q2_k, dmin); return 2;
    case CLV_TYPE_Q3_K: off[0] = offsetof(clv_block_q3_k, d); return 1;
    case CLV_TYPE_Q4_K: off[0] = offsetof(clv_block_q4_k, d), off[1] = offsetof(clv_block_q4_k, dmin); return 2;
    case CLV_TYPE_Q5_K: off[0] = offsetof(clv_block_q5_k, d), off[1] = offsetof(clv_block_q5_k, dmin); return 2;
    case CLV_TYPE_Q6_K: off[0] = offsetof(clv_block_q6_k, d); return 1;
    case CLV_TYPE_IQ4_XS: off[0] = offsetof(clv_block_iq4_xs, d); return 1;
    case CLV_TYPE_F32:
    case CLV_TYPE_F16:
    case CLV_TYPE_BF16:
    case CLV_TYPE_MXFP4: return 0; /* handled by masks and the exponent byte */
    default: return -1;
    }
}

bool clv_hw_cpu_type_measurable(int32_t type) {
    size_t off[2];
    return clv_cpu_matvec_supports(type, N_IN) && scale_fields(type, off) >= 0;
}

typedef struct fill_args {
    uint8_t *buf;
    size_t bytes;
    int32_t type; /* -1: random bytes */
} fill_args;

/* Thread ith's share of the buffer (a multiple of 4 KiB), in whole pages;
 * the matvec split by rows covers nearly the same bytes. */
static void share(size_t bytes, int ith, int nth, size_t *b, size_t *e) {
    int64_t pb, pe;
    clv_threadpool_split((int64_t)(bytes / 4096), 1, ith, nth, &pb, &pe);
    *b = (size_t)pb * 4096;
    *e = (size_t)pe * 4096;
}

static void fill_random(void *ctx, int ith, int nth) {
    fill_args *a = ctx;
    size_t b, e;
    share(a->bytes, ith, nth, &b, &e);
    size_t i = b;
    for (; i + 8 <= e; i += 8) {
        uint64_t r = mix64(0x9e3779b97f4a7c15ull * (i + 1));
        memcpy(a->buf + i, &r, 8);
    }
    for (; i < e; i++) a->buf[i] = (uint8_t)mix64(i);
}

/* Makes the blocks in this thread's share valid for a->type: every block
 * starting inside [b, e) is patched, so the shares together cover all. */
static void fill_valid(void *ctx, int ith, int nth) {
    fill_args *a = ctx;
    const clv_type_info *ti = clv_type_get(a->type);
    size_t bb = (size_t)ti->block_bytes, b, e;
    share(a->bytes, ith, nth, &b, &e);
    size_t first = (b + bb - 1) / bb, end = (e + bb - 1) / bb, n_blocks = a->bytes / bb;
    if (end > n_blocks) end = n_blocks;
    size_t off[2];
    int n_off = scale_fields(a->type, off);
    switch (a->type) {
    case CLV_TYPE_F32: /* exponent < 128: finite, |w| < 2 */
        for (size_t k = first; k < end; k++) a->buf[k * 4 + 3] &= 0xbf;
        break;
    case CLV_TYPE_F16:  /* exponent < 16: finite, |w| < 2 */
    case CLV_TYPE_BF16: /* as F32 */
        for (size_t k = first; k < end; k++) a->buf[k * 2 + 1] &= 0xbf;
        break;
    case CLV_TYPE_MXFP4: /* scale 2^(e - 128) near 2^-6 */
        for (size_t k = first; k < end; k++) a->buf[k * bb + offsetof(clv_block_mxfp4, e)] = (uint8_t)(120 + k % 8);
        break;
    default:
        for (size_t k = first; k < end; k++) {
            uint8_t *p = a->buf + k * bb;
            uint64_t r = mix64(k);
            for (int j = 0; j < n_off; j++, r >>= 16) {
                /* fp16 with exponent 8 (about 2^-7), random mantissa and sign */
                uint16_t h = (uint16_t)(0x2000 | (r & 0x3ff) | (r >> 10 & 1) << 15);
                p[off[j]] = (uint8_t)h;
                p[off[j] + 1] = (uint8_t)(h >> 8);
            }
        }
    }
}

/* ---- the benchmark ------------------------------------------------------ */

typedef struct matvec_args {
    int32_t type;
    const uint8_t *w;
    size_t row_bytes;
    int64_t n_rows;
    const void *xq;
    float *y;
} matvec_args;

static void run_matvec(void *ctx, int ith, int nth) {
    matvec_args *a = ctx;
    int64_t r0, r1;
    clv_threadpool_split(a->n_rows, 16, ith, nth, &r0, &r1);
    if (r1 > r0) clv_cpu_matvec(a->type, a->w, a->row_bytes, N_IN, a->xq, a->y + r0, r0, r1);
}

static int cmp_double(const void *x, const void *y) {
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

/* Median GB/s of repeated full passes: at least min_reps, and at least
 * `budget` seconds unless one pass alone takes longer than that. */
static double time_matvec(clv_threadpool *pool, matvec_args *a, int min_reps, double budget) {
    double t[MAX_REPS];
    int n = 0;
    matvec_args warm = *a;
    warm.n_rows = a->n_rows / 16; /* warm-up: wakes the workers, costs little */
    clv_threadpool_run(pool, run_matvec, &warm);
    double start = clv_hw_now();
    while (n < MAX_REPS) {
        double t0 = clv_hw_now();
        clv_threadpool_run(pool, run_matvec, a);
        t[n++] = clv_hw_now() - t0;
        double spent = clv_hw_now() - start;
        if (n >= min_reps && spent >= budget) break;
        if (spent >= 3 * budget && n >= 1) break; /* very slow path: one pass is enough */
    }
    qsort(t, (size_t)n, sizeof t[0], cmp_double);
    double med = n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
    return (double)a->n_rows * (double)a->row_bytes / med / 1e9;
}

/* ---- what the machine is ------------------------------------------------- */

static void cpu_model(char *out, size_t cap) {
    snprintf(out, cap, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        /* "model name" on x86, "Model" or "CPU part" elsewhere */
        if (strncmp(line, "model name", 10) && strncmp(line, "Model\t", 6)) continue;
        char *v = strchr(line, ':');
        if (!v) continue;
        for (v++; *v == ' ' || *v == '\t'; v++) {}
        v[strcspn(v, "\n")] = 0;
        if (*v) snprintf(out, cap, "%s", v);
        break;
    }
    fclose(f);
}

static bool read_line(const char *path, char *buf, size_t cap) {
    FILE *f = fopen(path, "r");
    if (!f) return false;
    bool ok = fgets(buf, (int)cap, f) != NULL;
    fclose(f);
    if (ok) buf[strcspn(buf, "\n")] = 0;
    return ok;
}

/* Sum of the last-level cache instances (sysfs): each instance is counted by
 * the lowest-numbered CPU that shares it. 0 when sysfs does not say. */
static uint64_t llc_bytes(void) {
    DIR *d = opendir("/sys/devices/system/cpu");
    if (!d) return 0;
    int best_level = 0;
    uint64_t total = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (strncmp(de->d_name, "cpu", 3) || !isdigit((unsigned char)de->d_name[3])) continue;
        int cpu = atoi(de->d_name + 3);
        int level = 0;
        uint64_t size = 0;
        int first = -1;
        for (int idx = 0; idx < 16; idx++) {
            char path[512], buf[256];
            snprintf(path, sizeof path, "/sys/devices/system/cpu/%s/cache/index%d/level", de->d_name, idx);
            if (!read_line(path, buf, sizeof buf)) break;
            int lv = atoi(buf);
            snprintf(path, sizeof path, "/sys/devices/system/cpu/%s/cache/index%d/type", de->d_name, idx);
            if (!read_line(path, buf, sizeof buf) || !strcmp(buf, "Instruction") || lv < level) continue;
            snprintf(path, sizeof path, "/sys/devices/system/cpu/%s/cache/index%d/size", de->d_name, idx);
            if (!read_line(path, buf, sizeof buf)) continue;
            char *end;
            uint64_t s = strtoull(buf, &end, 10);
            if (*end == 'K') s <<= 10;
            else if (*end == 'M') s <<= 20;
            else if (*end == 'G') s <<= 30;
            snprintf(path, sizeof path, "/sys/devices/system/cpu/%s/cache/index%d/shared_cpu_list", de->d_name,
                     idx);
            level = lv;
            size = s;
            first = read_line(path, buf, sizeof buf) ? atoi(buf) : cpu;
        }
        if (level > best_level) best_level = level, total = 0;
        if (level == best_level && first == cpu) total += size;
    }
    closedir(d);
    return total;
}

/* ---- the CPU part --------------------------------------------------------- */

clv_status clv_hw_measure_cpu(const clv_hw_params *prm, clv_hw_progress_fn progress, void *user,
                              clv_hw_profile *hw) {
    cpu_model(hw->cpu_model, sizeof hw->cpu_model);
    hw->cpu_cores = clv_cpu_physical_cores();
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    hw->cpu_logical = online > 0 ? (int32_t)online : hw->cpu_cores;
    snprintf(hw->cpu_path, sizeof hw->cpu_path, "%s", clv_cpu_path_name(clv_cpu_get_path()));
    hw->cpu_llc_bytes = llc_bytes();

    int max_threads = prm->max_threads > 0 ? prm->max_threads : hw->cpu_cores;
    hw->n_threads = 0;
    for (int t = 1; t < max_threads && hw->n_threads < CLV_HW_MAX_THREAD_COUNTS - 1; t *= 2) {
        hw->threads[hw->n_threads++] = t;
    }
    hw->threads[hw->n_threads++] = max_threads;

    hw->n_types = 0;
    for (int32_t t = 0; t < CLV_TYPE_COUNT && hw->n_types < CLV_HW_MAX_TYPES; t++) {
        if (clv_hw_cpu_type_measurable(t)) hw->types[hw->n_types++] = t;
    }

    /* Larger than the caches so that memory, not cache, is measured; capped
     * by a quarter of RAM. */
    uint64_t bytes = (uint64_t)256 << 20;
    if (hw->cpu_llc_bytes * 4 > bytes) bytes = hw->cpu_llc_bytes * 4;
    if (bytes > (uint64_t)4 << 30) bytes = (uint64_t)4 << 30;
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    if (pages > 0 && page > 0 && bytes > (uint64_t)pages * (uint64_t)page / 4) {
        bytes = (uint64_t)pages * (uint64_t)page / 4;
    }
    if (prm->quick) bytes = (uint64_t)8 << 20;
    bytes &= ~(uint64_t)4095;
    hw->cpu_matrix_bytes = bytes;

    clv_status st = CLV_OK;
    clv_threadpool *fill_pool = NULL;
    float *x = malloc(N_IN * sizeof(float));
    size_t xq_bytes = 0, max_rows = 0;
    for (int ti = 0; ti < hw->n_types; ti++) {
        uint64_t row_bytes;
        CLV_ASSERT(clv_type_bytes(hw->types[ti], N_IN, &row_bytes));
        size_t a = clv_cpu_activation_bytes(hw->types[ti], N_IN);
        if (a > xq_bytes) xq_bytes = a;
        if (bytes / row_bytes > max_rows) max_rows = (size_t)(bytes / row_bytes);
    }
    void *xq = malloc(xq_bytes);
    float *y = malloc((max_rows + 1) * sizeof(float));
    uint8_t *buf = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (buf == MAP_FAILED) buf = NULL;
    if (!x || !xq || !y || !buf) {
        st = clv_fail(CLV_ERR_NOMEM, "hardware profile: cannot allocate a %llu MiB test matrix",
                      (unsigned long long)(bytes >> 20));
        goto done;
    }
    for (int i = 0; i < N_IN; i++) x[i] = (float)((double)(mix64((uint64_t)i) >> 11) * 0x1p-53 * 2.0 - 1.0);

    clv_threadpool_params pp = clv_threadpool_default_params();
    pp.n_threads = max_threads;
    pp.pin = true;
    pp.spin_us = 0; /* its workers sleep at once, out of the way of the measured pools */
    st = clv_threadpool_create(&pp, &fill_pool);
    pp.spin_us = -1;
    if (st) goto done;
    hw->cpu_pinned = clv_threadpool_pinned(fill_pool);
    fill_args fa = {buf, bytes, -1};
    clv_threadpool_run(fill_pool, fill_random, &fa);
    clv_hw_report(progress, user, "cpu: %s, %d cores, last-level cache %llu MiB, %s kernels, %llu MiB matrix",
                  hw->cpu_model, hw->cpu_cores, (unsigned long long)(hw->cpu_llc_bytes >> 20), hw->cpu_path,
                  (unsigned long long)(bytes >> 20));

    for (int ti = 0; ti < hw->n_types; ti++) {
        int32_t type = hw->types[ti];
        fa.type = type;
        clv_threadpool_run(fill_pool, fill_valid, &fa);
        uint64_t row_bytes;
        CLV_ASSERT(clv_type_bytes(type, N_IN, &row_bytes));
        matvec_args ma = {type, buf, (size_t)row_bytes, (int64_t)(bytes / row_bytes), xq, y};
        clv_cpu_quantize_activation(type, x, xq, N_IN);

        /* one pass to check the generated weights give finite results */
        clv_threadpool_run(fill_pool, run_matvec, &ma);
        for (int64_t r = 0; r < ma.n_rows; r++) CLV_ASSERT(isfinite(y[r]));

        char line[512];
        int len = snprintf(line, sizeof line, "cpu %-6s GB/s:", clv_type_name(type));
        for (int k = 0; k < hw->n_threads; k++) {
            clv_threadpool *pool = NULL;
            pp.n_threads = hw->threads[k];
            st = clv_threadpool_create(&pp, &pool);
            if (st) goto done;
            double gbps = time_matvec(pool, &ma, prm->quick ? 2 : 3, prm->quick ? 0.01 : 0.25);
            clv_threadpool_free(pool);
            hw->cpu_gbps[ti][k] = (float)gbps;
            if (len < (int)sizeof line) {
                len += snprintf(line + len, sizeof line - (size_t)len, " %d thr %.1f", hw->threads[k], gbps);
            }
        }
        clv_hw_report(progress, user, "%s", line);
    }

done:
    clv_threadpool_free(fill_pool);
    if (buf) munmap(buf, bytes);
    free(x);
    free(xq);
    free(y);
    return st;
}
