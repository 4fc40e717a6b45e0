/* Elementwise add and multiply (residuals, gates): one rounding each, so
 * the results are the CPU's bit for bit. */
#include <stdint.h>

#include <cuda_runtime.h>

#include "cuda_ops.h"
#include "ops_common.cuh"

template <bool MUL> __global__ static void binary_kernel(float *dst, const float *a, const float *b, int64_t n) {
    int64_t stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        dst[i] = MUL ? __fmul_rn(a[i], b[i]) : __fadd_rn(a[i], b[i]);
    }
}

template <bool MUL>
static clv_status binary(const char *what, float *dst, const float *a, const float *b, int64_t n, void *stream) {
    if (n < 0 || (n > 0 && (!dst || !a || !b))) {
        return clv_fail(CLV_ERR_ARG, "CUDA %s: %lld elements", what, (long long)n);
    }
    if (n == 0) return CLV_OK;
    binary_kernel<MUL><<<flat_blocks(n), 256, 0, (cudaStream_t)stream>>>(dst, a, b, n);
    return launch_status(what);
}

extern "C" clv_status clv_cuda_add(float *dst, const float *a, const float *b, int64_t n, void *stream) {
    return binary<false>("add", dst, a, b, n, stream);
}

extern "C" clv_status clv_cuda_mul(float *dst, const float *a, const float *b, int64_t n, void *stream) {
    return binary<true>("mul", dst, a, b, n, stream);
}
