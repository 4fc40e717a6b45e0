/* The router of a few tokens (decode) in one launch: the F32 router
 * logits, one warp per expert, then the routing of each token by the last
 * block to finish that token's logits (a counter per token, reset by that
 * block, so the next launch finds it zero). The logits are the bits of
 * clv_cuda_matvec's F32 dot (the same lanes, order and reduction); the
 * routing is route.cuh's, so ids and weights are clv_cuda_moe_route's. */
#include <stdint.h>

#include <cuda_runtime.h>

#include "cuda_ops.h"
#include "ops_common.cuh"
#include "pdl.cuh"
#include "route.cuh"

#define ROUTER_WARPS 8

__global__ static void __launch_bounds__(ROUTER_WARPS * 32)
    moe_router_kernel(const float *w, int64_t row_floats, const float *x, int64_t n_in, int n_expert, float *logits,
                      int32_t *ids, float *weights, int k, bool renormalize, uint32_t *done) {
    __shared__ bool last;
    pdl_wait();
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int64_t t = blockIdx.y;
    const int e = blockIdx.x * ROUTER_WARPS + warp;
    if (e < n_expert) {
        const float *row = w + (int64_t)e * row_floats, *xt = x + t * n_in;
        float acc = 0.0f;
        int64_t i = 4 * lane;
        /* eight steps' loads in flight before their products (a row of 2048
         * is 16 steps: two waits for memory instead of sixteen) */
        for (; i + 7 * 128 < n_in; i += 8 * 128) {
            float4 xv[8], wv[8];
#pragma unroll
            for (int u = 0; u < 8; u++) {
                xv[u] = __ldg((const float4 *)(xt + i + 128 * u));
                wv[u] = __ldg((const float4 *)(row + i + 128 * u));
            }
#pragma unroll
            for (int u = 0; u < 8; u++)
                acc = fmaf(wv[u].w, xv[u].w, fmaf(wv[u].z, xv[u].z, fmaf(wv[u].y, xv[u].y, fmaf(wv[u].x, xv[u].x, acc))));
        }
        for (; i < n_in; i += 128) {
            float4 xv = __ldg((const float4 *)(xt + i)), wv = __ldg((const float4 *)(row + i));
            acc = fmaf(wv.w, xv.w, fmaf(wv.z, xv.z, fmaf(wv.y, xv.y, fmaf(wv.x, xv.x, acc))));
        }
        for (int o = 16; o > 0; o >>= 1) acc += __shfl_down_sync(FULL_MASK, acc, o);
        if (lane == 0) logits[t * n_expert + e] = acc;
    }
    __syncthreads();
    if (threadIdx.x == 0) {
        __threadfence(); /* this block's logits before its count */
        last = atomicAdd(done + t, 1u) == gridDim.x - 1;
    }
    __syncthreads();
    if (!last || warp != 0) return;
    __threadfence();
    warp_route(ids + t * k, weights + t * k, logits + t * n_expert, n_expert, k, renormalize);
    if (lane == 0) done[t] = 0;
}

extern "C" bool clv_cuda_moe_router_fits(int64_t n_in, int64_t n_expert, int64_t k) {
    return n_in > 0 && n_in % 4 == 0 && n_expert >= 1 && n_expert <= ROUTE_WARP_MAX && k >= 1 && k <= 32 &&
           k <= n_expert;
}

extern "C" clv_status clv_cuda_moe_router(const float *w, size_t row_bytes, int64_t n_in, int64_t n_expert,
                                          const float *x, int64_t n_tokens, float *logits, int32_t *ids,
                                          float *weights, int64_t k, bool renormalize, uint32_t *done,
                                          void *stream) {
    if (!clv_cuda_moe_router_fits(n_in, n_expert, k) || n_tokens < 0 || n_tokens > 65535 ||
        row_bytes < (size_t)n_in * sizeof(float) || row_bytes % 16 || (uintptr_t)w % 16 || (uintptr_t)x % 16) {
        return clv_fail(CLV_ERR_ARG,
                        "CUDA MoE router: top %lld of %lld experts (at most %d) over %lld inputs (a multiple of 4), "
                        "%lld tokens, rows of %zu bytes, 16-byte aligned",
                        (long long)k, (long long)n_expert, ROUTE_WARP_MAX, (long long)n_in, (long long)n_tokens,
                        row_bytes);
    }
    if (n_tokens == 0) return CLV_OK;
    if (!logits || !ids || !weights || !done) return clv_fail(CLV_ERR_ARG, "CUDA MoE router: a NULL array");
    dim3 grid((unsigned)((n_expert + ROUTER_WARPS - 1) / ROUTER_WARPS), (unsigned)n_tokens);
    launch_pdl(moe_router_kernel, grid, dim3(ROUTER_WARPS * 32), 0, (cudaStream_t)stream, w,
               (int64_t)(row_bytes / sizeof(float)), x, n_in, (int)n_expert, logits, ids, weights, (int)k, renormalize,
               done);
    return launch_status("MoE router");
}
