/* GPU bandwidth: a kernel that streams a large device buffer with 16-byte
 * loads (four independent loads in flight per thread, enough to saturate HBM)
 * and folds them into one word so nothing can be optimised away; host to
 * device copies from pinned and pageable memory timed with events; and a
 * plain synchronous cudaMemcpy timed by the wall clock, the figure the
 * event-timed pinned copy is checked against. Each figure is the median of
 * params->reps runs after one warm-up. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cuda_runtime.h>

#include "bandwidth.h"

__global__ static void read_kernel(const uint4 *__restrict__ p, size_t n, unsigned *out) {
    size_t stride = (size_t)gridDim.x * blockDim.x;
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    unsigned acc = 0;
    for (; i + 3 * stride < n; i += 4 * stride) {
        uint4 a = p[i], b = p[i + stride], c = p[i + 2 * stride], d = p[i + 3 * stride];
        acc += (a.x ^ a.y ^ a.z ^ a.w) + (b.x ^ b.y ^ b.z ^ b.w) + (c.x ^ c.y ^ c.z ^ c.w) +
               (d.x ^ d.y ^ d.z ^ d.w);
    }
    for (; i < n; i += stride) {
        uint4 a = p[i];
        acc += a.x ^ a.y ^ a.z ^ a.w;
    }
    for (int o = 16; o > 0; o >>= 1) acc += __shfl_down_sync(0xffffffffu, acc, o);
    if ((threadIdx.x & 31) == 0) atomicAdd(out, acc);
}

static double median(double *v, int n) {
    for (int i = 1; i < n; i++) { /* insertion sort: a handful of values */
        double x = v[i];
        int j = i - 1;
        for (; j >= 0 && v[j] > x; j--) v[j + 1] = v[j];
        v[j + 1] = x;
    }
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

#define CU(call)                                                                                   \
    do {                                                                                           \
        cudaError_t e_ = (call);                                                                   \
        if (e_ != cudaSuccess) {                                                                   \
            st = clv_fail(CLV_ERR_DEVICE, "CUDA bandwidth on device %d: %s: %s", p->device, #call, \
                          cudaGetErrorString(e_));                                                 \
            goto done;                                                                             \
        }                                                                                          \
    } while (0)

#define MAX_REPS 64

extern "C" clv_status clv_cuda_measure_bandwidth(const clv_cuda_bandwidth_params *p, clv_cuda_bandwidth *out) {
    if (!p || !out || p->reps < 1 || p->reps > MAX_REPS || p->read_bytes < (1u << 20) ||
        p->copy_bytes < (1u << 20)) {
        return clv_fail(CLV_ERR_ARG, "CUDA bandwidth: bad parameters (reps 1..%d, sizes >= 1 MiB)", MAX_REPS);
    }
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess) {
        cudaGetLastError(); /* clear the sticky error for later callers */
        return clv_fail(CLV_ERR_UNSUPPORTED, "no CUDA device (%s): GPU figures skipped", cudaGetErrorString(e));
    }
    if (count == 0) return clv_fail(CLV_ERR_UNSUPPORTED, "no CUDA device: GPU figures skipped");
    if (p->device < 0 || p->device >= count) {
        return clv_fail(CLV_ERR_ARG, "CUDA device %d does not exist (%d present)", p->device, count);
    }

    clv_status st = CLV_OK;
    cudaDeviceProp prop;
    cudaStream_t stream = NULL;
    cudaEvent_t ev0 = NULL, ev1 = NULL;
    uint4 *dbuf = NULL;
    unsigned *dsum = NULL;
    void *dcopy = NULL, *pinned = NULL, *pageable = NULL;
    double t[MAX_REPS];
    size_t free_b = 0, total_b = 0, n16 = 0, read_bytes = 0, copy_bytes = 0;
    float ms = 0;
    int blocks = 0;

    memset(out, 0, sizeof *out);
    CU(cudaSetDevice(p->device));
    CU(cudaGetDeviceProperties(&prop, p->device));
    snprintf(out->name, sizeof out->name, "%.*s", (int)sizeof out->name - 1, prop.name);
    out->mem_bytes = prop.totalGlobalMem;
    out->cc_major = prop.major;
    out->cc_minor = prop.minor;
    CU(cudaMemGetInfo(&free_b, &total_b));
    CU(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
    CU(cudaEventCreate(&ev0));
    CU(cudaEventCreate(&ev1));

    /* device read: at most half the free memory, so a busy GPU still works */
    read_bytes = p->read_bytes < free_b / 2 ? p->read_bytes : free_b / 2;
    read_bytes &= ~(size_t)((1u << 20) - 1);
    if (read_bytes == 0) {
        st = clv_fail(CLV_ERR_DEVICE, "CUDA device %d: only %zu MiB free", p->device, free_b >> 20);
        goto done;
    }
    n16 = read_bytes / sizeof(uint4);
    CU(cudaMalloc((void **)&dbuf, read_bytes));
    CU(cudaMalloc((void **)&dsum, sizeof(unsigned)));
    CU(cudaMemsetAsync(dbuf, 0x5a, read_bytes, stream));
    CU(cudaMemsetAsync(dsum, 0, sizeof(unsigned), stream));
    blocks = prop.multiProcessorCount * 8;
    for (int r = -1; r < p->reps; r++) {
        CU(cudaEventRecord(ev0, stream));
        read_kernel<<<blocks, 256, 0, stream>>>(dbuf, n16, dsum);
        CU(cudaGetLastError());
        CU(cudaEventRecord(ev1, stream));
        CU(cudaEventSynchronize(ev1));
        CU(cudaEventElapsedTime(&ms, ev0, ev1));
        if (r >= 0) t[r] = ms * 1e-3;
    }
    out->read_bytes = read_bytes;
    out->read_gbps = (double)read_bytes / median(t, p->reps) / 1e9;
    CU(cudaFree(dbuf));
    dbuf = NULL;

    /* host -> device */
    copy_bytes = p->copy_bytes < free_b / 2 ? p->copy_bytes : free_b / 2;
    copy_bytes &= ~(size_t)((1u << 20) - 1);
    CU(cudaMalloc(&dcopy, copy_bytes));
    CU(cudaMallocHost(&pinned, copy_bytes));
    pageable = malloc(copy_bytes);
    if (!pageable) {
        st = clv_fail(CLV_ERR_NOMEM, "CUDA bandwidth: cannot allocate %zu MiB of host memory", copy_bytes >> 20);
        goto done;
    }
    memset(pinned, 0x33, copy_bytes); /* fault every page in before timing */
    memset(pageable, 0x33, copy_bytes);
    out->copy_bytes = copy_bytes;

    for (int r = -1; r < p->reps; r++) {
        CU(cudaEventRecord(ev0, stream));
        CU(cudaMemcpyAsync(dcopy, pinned, copy_bytes, cudaMemcpyHostToDevice, stream));
        CU(cudaEventRecord(ev1, stream));
        CU(cudaEventSynchronize(ev1));
        CU(cudaEventElapsedTime(&ms, ev0, ev1));
        if (r >= 0) t[r] = ms * 1e-3;
    }
    out->h2d_pinned_gbps = (double)copy_bytes / median(t, p->reps) / 1e9;

    for (int r = -1; r < p->reps; r++) {
        CU(cudaEventRecord(ev0, stream));
        CU(cudaMemcpyAsync(dcopy, pageable, copy_bytes, cudaMemcpyHostToDevice, stream));
        CU(cudaEventRecord(ev1, stream));
        CU(cudaEventSynchronize(ev1));
        CU(cudaEventElapsedTime(&ms, ev0, ev1));
        if (r >= 0) t[r] = ms * 1e-3;
    }
    out->h2d_pageable_gbps = (double)copy_bytes / median(t, p->reps) / 1e9;

    /* the plain test: what a user's own cudaMemcpy loop would see */
    CU(cudaDeviceSynchronize());
    for (int r = -1; r < p->reps; r++) {
        double t0 = now_s();
        CU(cudaMemcpy(dcopy, pinned, copy_bytes, cudaMemcpyHostToDevice));
        if (r >= 0) t[r] = now_s() - t0;
    }
    out->h2d_memcpy_gbps = (double)copy_bytes / median(t, p->reps) / 1e9;

    for (int r = -1; r < p->reps; r++) {
        CU(cudaEventRecord(ev0, stream));
        CU(cudaMemcpyAsync(pinned, dcopy, copy_bytes, cudaMemcpyDeviceToHost, stream));
        CU(cudaEventRecord(ev1, stream));
        CU(cudaEventSynchronize(ev1));
        CU(cudaEventElapsedTime(&ms, ev0, ev1));
        if (r >= 0) t[r] = ms * 1e-3;
    }
    out->d2h_pinned_gbps = (double)copy_bytes / median(t, p->reps) / 1e9;

done:
    /* cleanup keeps the first error's message: later failures are not reported */
    if (stream) cudaStreamSynchronize(stream);
    if (dbuf) cudaFree(dbuf);
    if (dsum) cudaFree(dsum);
    if (dcopy) cudaFree(dcopy);
    if (pinned) cudaFreeHost(pinned);
    free(pageable);
    if (ev0) cudaEventDestroy(ev0);
    if (ev1) cudaEventDestroy(ev1);
    if (stream) cudaStreamDestroy(stream);
    return st;
}
