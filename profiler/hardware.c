/* The hardware profile: runs the CPU, GPU and SSD parts in turn and prints
 * the result. The parts live in hw_cpu.c, kernels/cuda/bandwidth.cu (or
 * bandwidth_none.c) and hw_ssd.c (or hw_ssd_none.c); the file in hw_file.c. */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bandwidth.h"
#include "hw_internal.h"
#include "types.h"

double clv_hw_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void clv_hw_report(clv_hw_progress_fn progress, void *user, const char *fmt, ...) {
    if (!progress) return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    progress(user, line);
}

clv_hw_params clv_hw_default_params(void) {
    clv_hw_params p = {0};
    p.ssd_dir = ".";
    return p;
}

static void measure_gpu(const clv_hw_params *prm, clv_hw_progress_fn progress, void *user, clv_hw_profile *hw,
                        clv_status *fatal) {
    clv_cuda_bandwidth_params bp = {
        .device = prm->gpu_device,
        .read_bytes = prm->quick ? (uint64_t)64 << 20 : (uint64_t)1 << 30,
        .copy_bytes = prm->quick ? (uint64_t)16 << 20 : (uint64_t)256 << 20,
        .reps = prm->quick ? 3 : 10,
    };
    clv_cuda_bandwidth bw;
    clv_status st = clv_cuda_measure_bandwidth(&bp, &bw);
    if (st == CLV_ERR_UNSUPPORTED) {
        snprintf(hw->gpu_note, sizeof hw->gpu_note, "%s", clv_last_error());
        clv_hw_report(progress, user, "gpu: %s", hw->gpu_note);
        return;
    }
    if (st) { /* a device is there but failed: the user must see that */
        *fatal = st;
        return;
    }
    snprintf(hw->gpu_name, sizeof hw->gpu_name, "%s", bw.name);
    hw->gpu_mem_bytes = bw.mem_bytes;
    hw->gpu_read_bytes = bw.read_bytes;
    hw->gpu_copy_bytes = bw.copy_bytes;
    hw->gpu_read_gbps = (float)bw.read_gbps;
    hw->h2d_pinned_gbps = (float)bw.h2d_pinned_gbps;
    hw->h2d_pageable_gbps = (float)bw.h2d_pageable_gbps;
    hw->h2d_memcpy_gbps = (float)bw.h2d_memcpy_gbps;
    hw->d2h_pinned_gbps = (float)bw.d2h_pinned_gbps;
    clv_hw_report(progress, user,
                  "gpu %s: read %.1f GB/s, host->device pinned %.1f, pageable %.1f, cudaMemcpy %.1f, "
                  "device->host pinned %.1f GB/s",
                  hw->gpu_name, bw.read_gbps, bw.h2d_pinned_gbps, bw.h2d_pageable_gbps, bw.h2d_memcpy_gbps,
                  bw.d2h_pinned_gbps);
    /* two timings of the same copy: far apart means one of them is off */
    if (bw.h2d_pinned_gbps > 1.2 * bw.h2d_memcpy_gbps || bw.h2d_pinned_gbps < 0.8 * bw.h2d_memcpy_gbps) {
        clv_hw_report(progress, user,
                      "gpu: warning: event-timed pinned copy (%.1f GB/s) and plain cudaMemcpy (%.1f GB/s) differ "
                      "by more than 20%%: another process may be using the GPU or the bus",
                      bw.h2d_pinned_gbps, bw.h2d_memcpy_gbps);
    }
}

clv_status clv_hw_measure(const clv_hw_params *params, clv_hw_progress_fn progress, void *user,
                          clv_hw_profile **out) {
    *out = NULL;
    clv_hw_params prm = params ? *params : clv_hw_default_params();
    const char *dir = prm.ssd_dir && *prm.ssd_dir ? prm.ssd_dir : ".";
    uint64_t ssd_bytes = prm.ssd_bytes ? prm.ssd_bytes : prm.quick ? (uint64_t)16 << 20 : (uint64_t)1 << 30;
    if (prm.max_threads < 0 || prm.max_threads > 1024) {
        return clv_fail(CLV_ERR_ARG, "hardware profile: %d threads: must be 1..1024", prm.max_threads);
    }
    if (ssd_bytes < ((uint64_t)4 << 20) || ssd_bytes % ((uint64_t)1 << 20)) {
        return clv_fail(CLV_ERR_ARG, "hardware profile: scratch file size %llu: must be a multiple of 1 MiB, "
                                     "at least 4 MiB",
                        (unsigned long long)ssd_bytes);
    }
    if (strlen(dir) >= sizeof((clv_hw_profile *)0)->ssd_dir - 32) {
        return clv_fail(CLV_ERR_ARG, "hardware profile: scratch directory name too long");
    }
    /* a bad --dir is the user's to fix, before a minute of work, not after */
    struct stat sb;
    if (stat(dir, &sb) != 0) return clv_fail(CLV_ERR_IO, "scratch directory %s: %s", dir, strerror(errno));
    if (!S_ISDIR(sb.st_mode)) return clv_fail(CLV_ERR_IO, "scratch directory %s: not a directory", dir);
    if (access(dir, W_OK | X_OK) != 0) {
        return clv_fail(CLV_ERR_IO, "scratch directory %s: not writable (%s)", dir, strerror(errno));
    }
    clv_status st = clv_hw_ssd_check(dir, ssd_bytes);
    if (st) return st;

    clv_hw_profile *hw = calloc(1, sizeof *hw);
    if (!hw) return clv_fail(CLV_ERR_NOMEM, "hardware profile: out of memory");
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(hw->date, sizeof hw->date, "%Y-%m-%dT%H:%M:%SZ", &tm);
    hw->quick = prm.quick;

    st = clv_hw_measure_cpu(&prm, progress, user, hw);
    if (!st) measure_gpu(&prm, progress, user, hw, &st);
    if (!st) {
        st = clv_hw_measure_ssd(&prm, dir, ssd_bytes, progress, user, hw);
        if (st == CLV_ERR_UNSUPPORTED) {
            snprintf(hw->ssd_note, sizeof hw->ssd_note, "%s", clv_last_error());
            clv_hw_report(progress, user, "ssd: %s", hw->ssd_note);
            st = CLV_OK;
        }
    }
    if (st) {
        free(hw);
        return st;
    }
    *out = hw;
    return CLV_OK;
}

float clv_hw_cpu_gbps(const clv_hw_profile *hw, int32_t type, int n_threads) {
    for (int ti = 0; ti < hw->n_types; ti++) {
        if (hw->types[ti] != type) continue;
        float v = 0;
        for (int k = 0; k < hw->n_threads && hw->threads[k] <= n_threads; k++) v = hw->cpu_gbps[ti][k];
        return v;
    }
    return 0;
}

static void print_size(FILE *f, uint64_t b) {
    if (b >= ((uint64_t)1 << 30) && b % ((uint64_t)1 << 30) == 0) fprintf(f, "%llu GiB", (unsigned long long)(b >> 30));
    else if (b >= ((uint64_t)1 << 30)) fprintf(f, "%.1f GiB", (double)b / (double)((uint64_t)1 << 30));
    else if (b >= ((uint64_t)1 << 20)) fprintf(f, "%llu MiB", (unsigned long long)(b >> 20));
    else fprintf(f, "%llu KiB", (unsigned long long)(b >> 10));
}

void clv_hw_print(FILE *f, const clv_hw_profile *hw) {
    fprintf(f, "hardware profile, measured %s%s\n", hw->date,
            hw->quick ? " (quick mode: tiny sizes, not for planning)" : "");

    fprintf(f, "\nCPU: %s, %d physical cores, %d logical CPUs, last-level cache ", hw->cpu_model, hw->cpu_cores,
            hw->cpu_logical);
    if (hw->cpu_llc_bytes) print_size(f, hw->cpu_llc_bytes);
    else fprintf(f, "unknown");
    fprintf(f, "\n  matrix-vector GB/s (weight bytes read per second), %s kernels, threads %s, ", hw->cpu_path,
            hw->cpu_pinned ? "pinned" : "NOT pinned");
    print_size(f, hw->cpu_matrix_bytes);
    fprintf(f, " matrix\n  %-8s", "threads");
    for (int k = 0; k < hw->n_threads; k++) fprintf(f, " %7d", hw->threads[k]);
    fprintf(f, "\n");
    for (int ti = 0; ti < hw->n_types; ti++) {
        fprintf(f, "  %-8s", clv_type_name(hw->types[ti]));
        for (int k = 0; k < hw->n_threads; k++) fprintf(f, " %7.1f", (double)hw->cpu_gbps[ti][k]);
        fprintf(f, "\n");
    }

    if (hw->gpu_name[0]) {
        fprintf(f, "\nGPU: %s, ", hw->gpu_name);
        print_size(f, hw->gpu_mem_bytes);
        fprintf(f, "\n  device memory read       %8.1f GB/s  (", (double)hw->gpu_read_gbps);
        print_size(f, hw->gpu_read_bytes);
        fprintf(f, " buffer)\n");
        fprintf(f, "  host->device pinned      %8.1f GB/s  (cudaMemcpyAsync, ", (double)hw->h2d_pinned_gbps);
        print_size(f, hw->gpu_copy_bytes);
        fprintf(f, ")\n");
        fprintf(f, "  host->device pageable    %8.1f GB/s\n", (double)hw->h2d_pageable_gbps);
        fprintf(f, "  host->device cudaMemcpy  %8.1f GB/s  (plain synchronous copy from pinned memory)\n",
                (double)hw->h2d_memcpy_gbps);
        fprintf(f, "  device->host pinned      %8.1f GB/s\n", (double)hw->d2h_pinned_gbps);
    } else {
        fprintf(f, "\nGPU: not measured: %s\n", hw->gpu_note[0] ? hw->gpu_note : "no reason recorded");
    }

    if (hw->n_qd > 0) {
        fprintf(f, "\nSSD: %s, ", hw->ssd_dir);
        print_size(f, hw->ssd_file_bytes);
        fprintf(f, " scratch file, io_uring, %s reads", hw->ssd_direct ? "O_DIRECT" : "BUFFERED");
        if (hw->ssd_note[0]) fprintf(f, "\n  note: %s", hw->ssd_note);
        fprintf(f, "\n  ");
        print_size(f, hw->ssd_block_bytes);
        fprintf(f, " random reads\n  %-12s", "queue depth");
        for (int k = 0; k < hw->n_qd; k++) fprintf(f, " %7d", hw->qd[k]);
        fprintf(f, "\n  %-12s", "GB/s");
        for (int k = 0; k < hw->n_qd; k++) fprintf(f, " %7.2f", (double)hw->ssd_gbps[k]);
        fprintf(f, "\n");
        if (hw->n_iops_qd > 0) {
            fprintf(f, "  4 KiB random reads:");
            for (int k = 0; k < hw->n_iops_qd; k++) {
                fprintf(f, "%s QD %d %.1fk IOPS", k ? "," : "", hw->iops_qd[k], (double)hw->ssd_iops[k] / 1e3);
            }
            fprintf(f, "\n");
        }
    } else {
        fprintf(f, "\nSSD: not measured: %s\n", hw->ssd_note[0] ? hw->ssd_note : "no reason recorded");
    }
}
