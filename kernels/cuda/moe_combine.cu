/* The MoE combine of a batch whose expert outputs are grouped by expert:
 * dst[t][i] = sum_j w[t][j] * src[slot[t][j]][i] (slot NULL: src row
 * t * k + j, the outputs in assignment order), summed from zero in slot
 * order with one rounding per operation, like the CPU's combine
 * (runtime/ops_cpu_moe.c), so the bits are the CPU's for the same inputs. */
#include <stdint.h>

#include <cuda_runtime.h>

#include "cuda_ops.h"
#include "ops_common.cuh"

/* One block row per token, threads over the width. */
__global__ static void moe_combine_kernel(float *dst, const float *src, const int32_t *slot, const float *w, int64_t k,
                                          int64_t n) {
    int64_t t = blockIdx.y;
    const int32_t *st = slot ? slot + t * k : NULL;
    const float *wt = w + t * k;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        float d = 0.0f;
        for (int64_t j = 0; j < k; j++) {
            int64_t row = st ? (int64_t)st[j] : t * k + j;
            d = __fadd_rn(d, __fmul_rn(wt[j], src[row * n + i]));
        }
        dst[t * n + i] = d;
    }
}

extern "C" clv_status clv_cuda_moe_combine(float *dst, const float *src, const int32_t *slot, const float *w,
                                           int64_t n_tokens, int64_t k, int64_t n, void *stream) {
    if (n_tokens < 0 || n_tokens > 65535 || k < 1 || n < 0 ||
        (n_tokens > 0 && n > 0 && (!dst || !src || !w))) {
        return clv_fail(CLV_ERR_ARG, "CUDA MoE combine: %lld tokens (at most 65535) of %lld slots, width %lld",
                        (long long)n_tokens, (long long)k, (long long)n);
    }
    if (n_tokens == 0 || n == 0) return CLV_OK;
    int64_t bx = (n + 255) / 256;
    dim3 grid((unsigned)(bx < 64 ? bx : 64), (unsigned)n_tokens);
    moe_combine_kernel<<<grid, 256, 0, (cudaStream_t)stream>>>(dst, src, slot, w, k, n);
    return launch_status("MoE combine");
}
