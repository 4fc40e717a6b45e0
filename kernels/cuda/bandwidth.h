/* GPU bandwidth micro-benchmarks, callable from C: device-memory read speed
 * and host<->device copy speed, for the hardware profile (profiler/hardware.h).
 *
 * A CPU-only build links bandwidth_none.c instead of bandwidth.cu: the same
 * entry point answers CLV_ERR_UNSUPPORTED ("built without CUDA"). */
#ifndef CLV_CUDA_BANDWIDTH_H
#define CLV_CUDA_BANDWIDTH_H

#include <stdint.h>

#include "status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct clv_cuda_bandwidth_params {
    int device;            /* CUDA device index */
    uint64_t read_bytes;   /* device buffer the read kernel streams (>= 1 GiB for a real figure) */
    uint64_t copy_bytes;   /* size of each host<->device copy */
    int reps;              /* timed repetitions per figure (the median is kept); >= 1 */
} clv_cuda_bandwidth_params;

typedef struct clv_cuda_bandwidth {
    char name[128];          /* device name */
    uint64_t mem_bytes;      /* total device memory */
    int cc_major, cc_minor;  /* compute capability */
    uint64_t read_bytes;     /* what was actually used (less when memory is short) */
    uint64_t copy_bytes;
    /* GB/s (1e9 bytes per second), medians of the repetitions */
    double read_gbps;         /* kernel reading device memory (16-byte loads, reduced) */
    double h2d_pinned_gbps;   /* cudaMemcpyAsync from cudaMallocHost memory, event-timed */
    double h2d_pageable_gbps; /* cudaMemcpyAsync from malloc memory, event-timed */
    double h2d_memcpy_gbps;   /* plain synchronous cudaMemcpy from pinned memory, wall clock */
    double d2h_pinned_gbps;   /* cudaMemcpyAsync to cudaMallocHost memory, event-timed */
} clv_cuda_bandwidth;

/* Measures everything in clv_cuda_bandwidth on params->device.
 * CLV_ERR_UNSUPPORTED when built without CUDA or when there is no usable
 * CUDA device (the message says which), CLV_ERR_ARG for bad params,
 * CLV_ERR_DEVICE when a CUDA call fails (out of memory, driver error). */
clv_status clv_cuda_measure_bandwidth(const clv_cuda_bandwidth_params *params, clv_cuda_bandwidth *out);

#ifdef __cplusplus
}
#endif

#endif
