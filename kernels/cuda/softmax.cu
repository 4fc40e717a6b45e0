/* Row softmax, top-k and MoE routing: one block per row.
 *
 * Softmax is clv_vec_softmax's three passes (max; exp and a double sum;
 * scale by the float of 1/sum); only expf differs (2 ulp on the GPU).
 *
 * Top-k selects k times, like the CPU router, but without its list of
 * taken ids: step j takes the first element, in the order (larger value,
 * then lower index), that comes after step j-1's choice in that order. That
 * order is total once NaN counts as -inf, so the steps give k distinct ids,
 * the CPU's for finite input. k passes over a row are cheap for router rows
 * (tens to hundreds of experts) and fine for a vocabulary row now and then.
 *
 * Routing adds the CPU's weights: exp(l - max) / sum over the row in double,
 * then optionally divided by the float sum of the k weights, summed in
 * order j = 0..k-1 as the CPU does. Rows of up to 256 experts (every MoE
 * model's router) are routed by one warp from registers instead
 * (route.cuh): the same choice and weights, at a fraction of the time. */
#include <math.h>
#include <stdint.h>

#include <cuda_runtime.h>

#include "cuda_ops.h"
#include "ops_common.cuh"
#include "route.cuh"

#define TOPK_MAX 32

__global__ static void softmax_kernel(float *dst, const float *src, int64_t n) {
    __shared__ float tf[32];
    __shared__ double td[32];
    const float *x = src + (int64_t)blockIdx.x * n;
    float *y = dst + (int64_t)blockIdx.x * n;
    float mx = -INFINITY;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) mx = fmaxf(mx, x[i]);
    /* Every x is read before this barrier, so y may be x. */
    mx = block_max(mx, tf);
    double sum = 0.0;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
        float e = expf(__fsub_rn(x[i], mx));
        y[i] = e;
        sum += (double)e;
    }
    sum = block_sum(sum, td);
    const float inv = (float)(1.0 / sum);
    /* Each thread scales the elements it wrote itself. */
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) y[i] = __fmul_rn(y[i], inv);
}

/* NaN ranks as -inf; everything else as itself. */
__device__ static inline float rank_key(float v) { return isnan(v) ? -INFINITY : v; }

template <bool ROUTE>
__global__ static void topk_kernel(int32_t *ids, float *vals, const float *src, int64_t n, int k, bool renormalize) {
    __shared__ float tv[32];
    __shared__ int32_t ti[32];
    __shared__ double td[32];
    __shared__ float wk[TOPK_MAX];
    const float *x = src + (int64_t)blockIdx.x * n;
    float prev_v = 0.0f;
    int32_t prev_i = -1; /* none chosen yet */
    int32_t mine = -1;   /* thread j keeps the id chosen at step j */
    for (int j = 0; j < k; j++) {
        float bv = 0.0f;
        int32_t bi = -1;
        for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
            float v = rank_key(x[i]);
            bool after = prev_i < 0 || v < prev_v || (v == prev_v && (int32_t)i > prev_i);
            if (after && ranks_before(v, (int32_t)i, bv, bi)) bv = v, bi = (int32_t)i;
        }
        block_best(&bv, &bi, tv, ti); /* every thread gets the same choice */
        prev_v = bv, prev_i = bi;
        if ((int)threadIdx.x == j) mine = bi;
    }
    const int64_t out = (int64_t)blockIdx.x * k + threadIdx.x;
    if (!ROUTE) {
        if ((int)threadIdx.x < k) {
            ids[out] = mine;
            if (vals) vals[out] = x[mine];
        }
        return;
    }
    float mx = -INFINITY;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) mx = x[i] > mx ? x[i] : mx;
    mx = block_max(mx, tv);
    double sum = 0.0;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) sum += exp((double)x[i] - (double)mx);
    sum = block_sum(sum, td);
    float w = 0.0f;
    if ((int)threadIdx.x < k) {
        w = (float)(exp((double)x[mine] - (double)mx) / sum);
        wk[threadIdx.x] = w;
    }
    if (renormalize) {
        __syncthreads();
        float s = 0.0f;
        for (int j = 0; j < k; j++) s = __fadd_rn(s, wk[j]); /* each thread, in the CPU's order */
        w = __fdiv_rn(w, s);
    }
    if ((int)threadIdx.x < k) {
        ids[out] = mine;
        vals[out] = w;
    }
}

/* Rows of up to ROUTE_WARP_MAX experts: a warp per row, eight rows a block. */
__global__ static void warp_route_kernel(int32_t *ids, float *weights, const float *logits, int64_t n_rows, int n,
                                         int k, bool renormalize) {
    const int64_t row = (int64_t)blockIdx.x * 8 + (threadIdx.x >> 5);
    if (row >= n_rows) return;
    warp_route(ids + row * k, weights + row * k, logits + row * n, n, k, renormalize);
}

extern "C" clv_status clv_cuda_softmax(float *dst, const float *src, int64_t n_rows, int64_t n, void *stream) {
    if (n_rows < 0 || n_rows > INT32_MAX || (n_rows > 0 && (n < 1 || !dst || !src))) {
        return clv_fail(CLV_ERR_ARG, "CUDA softmax: %lld rows of %lld", (long long)n_rows, (long long)n);
    }
    if (n_rows == 0) return CLV_OK;
    softmax_kernel<<<(unsigned)n_rows, row_threads(n), 0, (cudaStream_t)stream>>>(dst, src, n);
    return launch_status("softmax");
}

static clv_status topk_args(const char *what, const int32_t *ids, const float *vals, bool need_vals,
                            const float *src, int64_t n_rows, int64_t n, int64_t k) {
    if (n_rows < 0 || n_rows > INT32_MAX || k < 1 || k > TOPK_MAX || n < k || n > INT32_MAX ||
        (n_rows > 0 && (!ids || !src || (need_vals && !vals)))) {
        return clv_fail(CLV_ERR_ARG, "CUDA %s: top %lld of %lld rows of %lld (k is 1 to %d and at most the row)",
                        what, (long long)k, (long long)n_rows, (long long)n, TOPK_MAX);
    }
    return CLV_OK;
}

extern "C" clv_status clv_cuda_topk(int32_t *ids, float *vals, const float *src, int64_t n_rows, int64_t n,
                                    int64_t k, void *stream) {
    clv_status st = topk_args("top-k", ids, vals, false, src, n_rows, n, k);
    if (st != CLV_OK || n_rows == 0) return st;
    topk_kernel<false><<<(unsigned)n_rows, row_threads(n), 0, (cudaStream_t)stream>>>(ids, vals, src, n, (int)k,
                                                                                     false);
    return launch_status("top-k");
}

extern "C" clv_status clv_cuda_moe_route(int32_t *ids, float *weights, const float *logits, int64_t n_rows,
                                         int64_t n_expert, int64_t k, bool renormalize, void *stream) {
    clv_status st = topk_args("MoE routing", ids, weights, true, logits, n_rows, n_expert, k);
    if (st != CLV_OK || n_rows == 0) return st;
    if (n_expert <= ROUTE_WARP_MAX) {
        warp_route_kernel<<<(unsigned)((n_rows + 7) / 8), 256, 0, (cudaStream_t)stream>>>(
            ids, weights, logits, n_rows, (int)n_expert, (int)k, renormalize);
    } else {
        topk_kernel<true><<<(unsigned)n_rows, row_threads(n_expert), 0, (cudaStream_t)stream>>>(
            ids, weights, logits, n_expert, (int)k, renormalize);
    }
    return launch_status("MoE routing");
}
