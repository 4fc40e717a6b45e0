/* MoE routing of one row of router logits by one warp, from registers:
 * rows of up to ROUTE_WARP_MAX experts (eight per lane). The choice and the
 * weights are the CPU router's (runtime/ops_cpu_moe.c), as softmax.cu's
 * block-wide topk_kernel makes them: the k first experts in the order
 * (larger logit, then lower index), NaN ranking as -inf; weight
 * exp(l - max) / sum over the row in double, then optionally divided by the
 * float sum of the k weights, summed in slot order. Included by .cu files. */
#ifndef CLV_CUDA_ROUTE_CUH
#define CLV_CUDA_ROUTE_CUH

#include "ops_common.cuh"

#define ROUTE_WARP_MAX 256

/* Called by all 32 lanes of a warp; n <= ROUTE_WARP_MAX, 1 <= k <= 32, k <= n.
 * The logits are read through L2 (ld.cg), so rows other blocks have just
 * written (and fenced) are seen. */
__device__ static inline void warp_route(int32_t *ids, float *weights, const float *x, int n, int k,
                                         bool renormalize) {
    const int lane = threadIdx.x & 31;
    float raw[ROUTE_WARP_MAX / 32];
#pragma unroll
    for (int q = 0; q < ROUTE_WARP_MAX / 32; q++) {
        int i = lane + 32 * q;
        raw[q] = i < n ? __ldcg(x + i) : 0.0f;
    }
    uint32_t taken = 0; /* bit q: element lane + 32 q is chosen */
    int32_t mine = -1;  /* lane j keeps the choice of step j */
    for (int j = 0; j < k; j++) {
        float bv = 0.0f;
        int32_t bi = -1;
#pragma unroll
        for (int q = 0; q < ROUTE_WARP_MAX / 32; q++) {
            int i = lane + 32 * q;
            float v = isnan(raw[q]) ? -INFINITY : raw[q];
            if (i < n && !(taken >> q & 1u) && ranks_before(v, i, bv, bi)) bv = v, bi = i;
        }
        warp_best(&bv, &bi);
        if ((bi & 31) == lane) taken |= 1u << (bi >> 5);
        if (lane == j) mine = bi;
    }
    float mx = -INFINITY;
#pragma unroll
    for (int q = 0; q < ROUTE_WARP_MAX / 32; q++)
        if (lane + 32 * q < n && raw[q] > mx) mx = raw[q];
    mx = warp_max(mx);
    double sum = 0.0;
#pragma unroll
    for (int q = 0; q < ROUTE_WARP_MAX / 32; q++)
        if (lane + 32 * q < n) sum += exp((double)raw[q] - (double)mx);
    sum = warp_sum(sum);
    float w = 0.0f;
    if (lane < k) w = (float)(exp((double)__ldcg(x + mine) - (double)mx) / sum);
    if (renormalize) {
        float s = 0.0f;
        for (int j = 0; j < k; j++) s = __fadd_rn(s, __shfl_sync(FULL_MASK, w, j));
        w = __fdiv_rn(w, s);
    }
    if (lane < k) {
        ids[lane] = mine;
        weights[lane] = w;
    }
}

#endif
