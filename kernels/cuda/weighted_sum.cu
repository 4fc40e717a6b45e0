/* Weighted sum of k rows, the MoE combine: dst[i] = sum_j w[j] src[j][i],
 * the weights read on the device (the router wrote them there), summed from
 * zero in slot order with one rounding per operation like the CPU's combine
 * (runtime/ops_cpu_moe.c), so the bits are the CPU's. */
#include <stdint.h>

#include <cuda_runtime.h>

#include "cuda_ops.h"
#include "ops_common.cuh"

__global__ static void weighted_sum_kernel(float *dst, const float *src, const float *w, int64_t k, int64_t n) {
    int64_t stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        float d = 0.0f;
        for (int64_t j = 0; j < k; j++) d = __fadd_rn(d, __fmul_rn(w[j], src[j * n + i]));
        dst[i] = d;
    }
}

extern "C" clv_status clv_cuda_weighted_sum(float *dst, const float *src, const float *w, int64_t k, int64_t n,
                                            void *stream) {
    if (k < 0 || n < 0 || (k > 0 && n > 0 && (!dst || !src || !w))) {
        return clv_fail(CLV_ERR_ARG, "CUDA weighted sum: %lld rows of %lld", (long long)k, (long long)n);
    }
    if (n == 0) return CLV_OK;
    weighted_sum_kernel<<<flat_blocks(n), 256, 0, (cudaStream_t)stream>>>(dst, src, w, k, n);
    return launch_status("weighted sum");
}
