/* What the small-op kernels (cuda_ops.h) share: block-wide reductions built
 * on warp shuffles, the (value, index) order of argmax and top-k, and the
 * launch-status check. Included by .cu files only. */
#ifndef CLV_CUDA_OPS_COMMON_CUH
#define CLV_CUDA_OPS_COMMON_CUH

#include <math.h>
#include <stdint.h>

#include <cuda_runtime.h>

#include "status.h"

#define FULL_MASK 0xffffffffu

/* Threads per block for row kernels: a multiple of 32, at most 1024. */
static inline unsigned row_threads(int64_t n) { return n >= 8192 ? 1024u : n > 128 ? 256u : 32u; }

/* Blocks for a grid-stride loop over n elements, 256 threads each. */
static inline unsigned flat_blocks(int64_t n) {
    int64_t b = (n + 255) / 256;
    return (unsigned)(b > 65535 ? 65535 : b < 1 ? 1 : b);
}

/* CLV_ERR_DEVICE naming `what` when the launch (or earlier asynchronous
 * work) failed. */
static inline clv_status launch_status(const char *what) {
    cudaError_t err = cudaGetLastError();
    if (err != cudaSuccess) {
        return clv_fail(CLV_ERR_DEVICE, "CUDA %s: launch failed: %s", what, cudaGetErrorString(err));
    }
    return CLV_OK;
}

__device__ static inline float warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(FULL_MASK, v, o));
    return v;
}

__device__ static inline double warp_sum(double v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(FULL_MASK, v, o);
    return v;
}

/* Block-wide max / sum that every thread of the block receives; tmp is
 * __shared__ room for 32 values. Every thread must call it (it syncs), and
 * tmp is free again on return. Each warp reduces the per-warp partials in
 * the same order, so all threads get the same bits. */
__device__ static inline float block_max(float v, float *tmp) {
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    v = warp_max(v);
    if (lane == 0) tmp[warp] = v;
    __syncthreads();
    v = warp_max(lane < (int)(blockDim.x >> 5) ? tmp[lane] : -INFINITY);
    __syncthreads();
    return v;
}

__device__ static inline double block_sum(double v, double *tmp) {
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    v = warp_sum(v);
    if (lane == 0) tmp[warp] = v;
    __syncthreads();
    v = warp_sum(lane < (int)(blockDim.x >> 5) ? tmp[lane] : 0.0);
    __syncthreads();
    return v;
}

/* The order of argmax and top-k: (a, ai) comes before (b, bi) when it is
 * larger, or equal with the lower index; an index < 0 is "none" and comes
 * last. Values compared here are never NaN (the callers map or skip them),
 * which makes this a total order, so shuffles in any pattern agree. */
__device__ static inline bool ranks_before(float a, int32_t ai, float b, int32_t bi) {
    return ai >= 0 && (bi < 0 || a > b || (a == b && ai < bi));
}

__device__ static inline void warp_best(float *v, int32_t *i) {
    for (int o = 16; o > 0; o >>= 1) {
        float ov = __shfl_xor_sync(FULL_MASK, *v, o);
        int32_t oi = __shfl_xor_sync(FULL_MASK, *i, o);
        if (ranks_before(ov, oi, *v, *i)) *v = ov, *i = oi;
    }
}

/* Block-wide first (value, index) in that order, for every thread; tv, ti:
 * __shared__ room for 32 each. Same calling rules as block_max. */
__device__ static inline void block_best(float *v, int32_t *i, float *tv, int32_t *ti) {
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    warp_best(v, i);
    if (lane == 0) tv[warp] = *v, ti[warp] = *i;
    __syncthreads();
    bool have = lane < (int)(blockDim.x >> 5);
    *v = have ? tv[lane] : 0.0f;
    *i = have ? ti[lane] : -1;
    warp_best(v, i);
    __syncthreads();
}

#endif
