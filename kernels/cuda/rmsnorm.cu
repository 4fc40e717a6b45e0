/* RMS norm: one block per row. The sum of squares is taken in double, as
 * clv_vec_rmsnorm's reference does, so the scale is the CPU's up to the
 * order of a double sum; the multiplies use _rn intrinsics in the CPU's
 * order, so an equal scale gives equal bits. */
#include <stdint.h>

#include <cuda_runtime.h>

#include "cuda_ops.h"
#include "ops_common.cuh"

__global__ static void rmsnorm_kernel(float *dst, const float *src, const float *w, int64_t n, float eps) {
    __shared__ double tmp[32];
    const float *x = src + (int64_t)blockIdx.x * n;
    float *y = dst + (int64_t)blockIdx.x * n;
    double ss = 0.0;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
        double v = x[i];
        ss += v * v; /* exact in double, so a fused add rounds the same */
    }
    /* Every x is read before the barrier inside, so y may be x. */
    ss = block_sum(ss, tmp);
    const float scale = __fdiv_rn(1.0f, __fsqrt_rn(__fadd_rn((float)(ss / (double)n), eps)));
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
        float v = __fmul_rn(x[i], scale);
        y[i] = w ? __fmul_rn(v, w[i]) : v;
    }
}

extern "C" clv_status clv_cuda_rmsnorm(float *dst, const float *src, const float *w, int64_t n_rows, int64_t n,
                                       float eps, void *stream) {
    if (n_rows < 0 || n_rows > INT32_MAX || (n_rows > 0 && (n < 1 || !dst || !src))) {
        return clv_fail(CLV_ERR_ARG, "CUDA rmsnorm: %lld rows of %lld", (long long)n_rows, (long long)n);
    }
    if (n_rows == 0) return CLV_OK;
    rmsnorm_kernel<<<(unsigned)n_rows, row_threads(n), 0, (cudaStream_t)stream>>>(dst, src, w, n, eps);
    return launch_status("rmsnorm");
}
