/* The shared expert's gate: dst[r] *= sigmoid(gate . x[r]), one block per
 * row. The dot product is taken in double and the sigmoid in double, as
 * clv_op_sigmoid_gate does on the CPU (up to the order of the double sum). */
#include <math.h>
#include <stdint.h>

#include <cuda_runtime.h>

#include "cuda_ops.h"
#include "ops_common.cuh"

__global__ static void sigmoid_gate_kernel(float *dst, const float *x, const float *gate, int64_t n, int64_t n_dst) {
    __shared__ double tmp[32];
    const float *xr = x + (int64_t)blockIdx.x * n;
    float *y = dst + (int64_t)blockIdx.x * n_dst;
    double d = 0.0;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) d += (double)gate[i] * (double)xr[i];
    d = block_sum(d, tmp);
    const float s = (float)(1.0 / (1.0 + exp(-d)));
    for (int64_t i = threadIdx.x; i < n_dst; i += blockDim.x) y[i] = __fmul_rn(y[i], s);
}

extern "C" clv_status clv_cuda_sigmoid_gate(float *dst, const float *x, const float *gate, int64_t n_rows, int64_t n,
                                            int64_t n_dst, void *stream) {
    if (n_rows < 0 || n_rows > INT32_MAX || (n_rows > 0 && (n < 1 || n_dst < 0 || !dst || !x || !gate))) {
        return clv_fail(CLV_ERR_ARG, "CUDA sigmoid gate: %lld rows of %lld", (long long)n_rows, (long long)n);
    }
    if (n_rows == 0) return CLV_OK;
    sigmoid_gate_kernel<<<(unsigned)n_rows, row_threads(n > n_dst ? n : n_dst), 0, (cudaStream_t)stream>>>(
        dst, x, gate, n, n_dst);
    return launch_status("sigmoid gate");
}
