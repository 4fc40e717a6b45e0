/* The hardware profile: measured speeds of the machine that the placement
 * solver plans for (`cleave profile --hardware -o FILE.hw`).
 *
 *   CPU  matrix-vector GB/s (weight bytes read per second) of clv_cpu_matvec
 *        for every weight type the CPU kernels take, at 1, 2, 4, ... threads
 *        and at the maximum, threads pinned, over a matrix several times the
 *        last-level cache;
 *   GPU  device-memory read GB/s, host-to-device GB/s from pinned and from
 *        pageable memory, a plain cudaMemcpy for comparison, device-to-host;
 *   SSD  O_DIRECT reads through io_uring of a scratch file at queue depths
 *        1..128 (1 MiB blocks at random offsets, as experts stream), and
 *        4 KiB random-read IOPS.
 *
 * A part that cannot be measured (no CUDA device, built without CUDA or
 * liburing, io_uring refused by the kernel) is left out with a note saying
 * why; everything else still runs. On disk the profile is a GGUF file
 * (general.type = "hardware", keys in docs/profiler.md). */
#ifndef CLV_HARDWARE_H
#define CLV_HARDWARE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "status.h"

#define CLV_HW_MAX_THREAD_COUNTS 16 /* 1, 2, 4, ..., 1024 and the maximum */
#define CLV_HW_MAX_TYPES 32
#define CLV_HW_MAX_QD 8      /* queue depths 1, 2, 4, ..., 128 */
#define CLV_HW_MAX_IOPS_QD 4 /* 4 KiB random reads at queue depths 1, 32, 128 */

typedef struct clv_hw_profile {
    char date[32];         /* UTC, ISO 8601 */
    bool quick;            /* measured with --quick (tiny sizes: not for planning) */

    /* CPU */
    char cpu_model[128];
    int32_t cpu_cores;        /* physical cores available to the process */
    int32_t cpu_logical;      /* online logical CPUs */
    char cpu_path[16];        /* kernel path used: "avx512", "avx2", "scalar" */
    bool cpu_pinned;          /* threads were bound to cores */
    uint64_t cpu_llc_bytes;   /* last-level cache, all instances (0: unknown) */
    uint64_t cpu_matrix_bytes;/* weight matrix streamed per matvec */
    int32_t n_threads;        /* thread counts measured */
    int32_t threads[CLV_HW_MAX_THREAD_COUNTS];
    int32_t n_types;          /* weight types measured */
    int32_t types[CLV_HW_MAX_TYPES];                           /* clv_type */
    float cpu_gbps[CLV_HW_MAX_TYPES][CLV_HW_MAX_THREAD_COUNTS]; /* [type][thread count] */

    /* GPU: gpu_name[0] == 0 when not measured, gpu_note says why */
    char gpu_note[256];
    char gpu_name[128];
    uint64_t gpu_mem_bytes;
    uint64_t gpu_read_bytes, gpu_copy_bytes; /* sizes used */
    float gpu_read_gbps;
    float h2d_pinned_gbps, h2d_pageable_gbps, h2d_memcpy_gbps, d2h_pinned_gbps;

    /* SSD: n_qd == 0 when not measured, ssd_note says why. ssd_note may also
     * be set with figures present (e.g. O_DIRECT refused: buffered reads). */
    char ssd_note[256];
    char ssd_dir[512];
    bool ssd_direct;          /* O_DIRECT reads (false: buffered, page cache involved) */
    uint64_t ssd_file_bytes;
    uint32_t ssd_block_bytes; /* read size of the GB/s figures */
    int32_t n_qd;
    int32_t qd[CLV_HW_MAX_QD];
    float ssd_gbps[CLV_HW_MAX_QD];
    int32_t n_iops_qd;
    int32_t iops_qd[CLV_HW_MAX_IOPS_QD];
    float ssd_iops[CLV_HW_MAX_IOPS_QD]; /* 4 KiB random reads per second */
} clv_hw_profile;

typedef struct clv_hw_params {
    const char *ssd_dir;   /* where the scratch file goes; NULL: "." */
    uint64_t ssd_bytes;    /* scratch file size; 0: 1 GiB (16 MiB when quick) */
    int max_threads;       /* 0: all physical cores */
    bool quick;            /* tiny sizes and short timings, for tests */
    int gpu_device;        /* CUDA device index */
} clv_hw_params;

clv_hw_params clv_hw_default_params(void);

/* Called with one line of progress ("cpu Q4_K x 4 threads: 21.3 GB/s"). */
typedef void (*clv_hw_progress_fn)(void *user, const char *line);

/* Runs the benchmarks (about a minute; well under a second per figure).
 * CLV_ERR_ARG for bad params, CLV_ERR_IO when the scratch directory is
 * unusable (missing, not writable, too little space), CLV_ERR_NOMEM,
 * CLV_ERR_DEVICE when a CUDA call fails on a present device. Parts that
 * cannot run here are skipped with a note, not an error. *out is freed with
 * free(). */
clv_status clv_hw_measure(const clv_hw_params *params, clv_hw_progress_fn progress, void *user,
                          clv_hw_profile **out);

/* GGUF file I/O. Loading validates every key (types, array lengths, finite
 * positive figures): a damaged file is CLV_ERR_FORMAT with a message. */
clv_status clv_hw_save(const clv_hw_profile *hw, const char *path);
clv_status clv_hw_load(const char *path, clv_hw_profile **out);

/* The readable table of every figure. */
void clv_hw_print(FILE *f, const clv_hw_profile *hw);

/* CPU GB/s of a weight type at the largest measured thread count not above
 * n_threads; 0 when the type was not measured. */
float clv_hw_cpu_gbps(const clv_hw_profile *hw, int32_t type, int n_threads);

#endif
