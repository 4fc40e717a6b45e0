/* Argmax for greedy sampling: one block per row; each thread keeps the
 * first largest of its strided elements, then the block keeps the first
 * largest of those. One block reads a 152k-entry vocabulary in a few
 * microseconds, small beside the output matvec that made the logits, and
 * needs no scratch or second launch. */
#include <math.h>
#include <stdint.h>

#include <cuda_runtime.h>

#include "cuda_ops.h"
#include "ops_common.cuh"

__global__ static void argmax_kernel(int32_t *out, const float *src, int64_t n) {
    __shared__ float tv[32];
    __shared__ int32_t ti[32];
    const float *x = src + (int64_t)blockIdx.x * n;
    float bv = 0.0f;
    int32_t bi = -1;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
        float v = x[i];
        /* The sampler's candidates are the logits > -inf (so not NaN); a
         * thread meets its indices in increasing order, so > keeps the first. */
        if (v > -INFINITY && (bi < 0 || v > bv)) bv = v, bi = (int32_t)i;
    }
    block_best(&bv, &bi, tv, ti);
    if (threadIdx.x == 0) out[blockIdx.x] = bi;
}

extern "C" clv_status clv_cuda_argmax(int32_t *out, const float *src, int64_t n_rows, int64_t n, void *stream) {
    if (n_rows < 0 || n_rows > INT32_MAX || n > INT32_MAX || (n_rows > 0 && (n < 1 || !out || !src))) {
        return clv_fail(CLV_ERR_ARG, "CUDA argmax: %lld rows of %lld", (long long)n_rows, (long long)n);
    }
    if (n_rows == 0) return CLV_OK;
    argmax_kernel<<<(unsigned)n_rows, row_threads(n), 0, (cudaStream_t)stream>>>(out, src, n);
    return launch_status("argmax");
}
