/* Activations and gated linear units, elementwise (grid-stride loops), with
 * the reference's formulas (act.cuh). */
#include <math.h>
#include <stdint.h>

#include <cuda_runtime.h>

#include "act.cuh"
#include "cuda_ops.h"
#include "ops_common.cuh"

template <int ACT> __global__ static void act_kernel(float *dst, const float *src, int64_t n) {
    int64_t stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) dst[i] = act1<ACT>(src[i]);
}

template <int ACT> __global__ static void glu_kernel(float *dst, const float *gate, const float *up, int64_t n) {
    int64_t stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        dst[i] = glu1<ACT>(gate[i], up[i]);
    }
}

static bool act_known(clv_cuda_act act) {
    return act == CLV_CUDA_ACT_SILU || act == CLV_CUDA_ACT_GELU || act == CLV_CUDA_ACT_RELU;
}

extern "C" clv_status clv_cuda_activation(float *dst, const float *src, int64_t n, clv_cuda_act act, void *stream) {
    if (!act_known(act) || n < 0 || (n > 0 && (!dst || !src))) {
        return clv_fail(CLV_ERR_ARG, "CUDA activation %d: %lld elements", (int)act, (long long)n);
    }
    if (n == 0) return CLV_OK;
    cudaStream_t s = (cudaStream_t)stream;
    switch (act) {
    case CLV_CUDA_ACT_SILU: act_kernel<CLV_CUDA_ACT_SILU><<<flat_blocks(n), 256, 0, s>>>(dst, src, n); break;
    case CLV_CUDA_ACT_GELU: act_kernel<CLV_CUDA_ACT_GELU><<<flat_blocks(n), 256, 0, s>>>(dst, src, n); break;
    case CLV_CUDA_ACT_RELU: act_kernel<CLV_CUDA_ACT_RELU><<<flat_blocks(n), 256, 0, s>>>(dst, src, n); break;
    }
    return launch_status("activation");
}

extern "C" clv_status clv_cuda_glu(float *dst, const float *gate, const float *up, int64_t n, clv_cuda_act act,
                                   void *stream) {
    if (!act_known(act) || n < 0 || (n > 0 && (!dst || !gate || !up))) {
        return clv_fail(CLV_ERR_ARG, "CUDA glu %d: %lld elements", (int)act, (long long)n);
    }
    if (n == 0) return CLV_OK;
    cudaStream_t s = (cudaStream_t)stream;
    switch (act) {
    case CLV_CUDA_ACT_SILU: glu_kernel<CLV_CUDA_ACT_SILU><<<flat_blocks(n), 256, 0, s>>>(dst, gate, up, n); break;
    case CLV_CUDA_ACT_GELU: glu_kernel<CLV_CUDA_ACT_GELU><<<flat_blocks(n), 256, 0, s>>>(dst, gate, up, n); break;
    case CLV_CUDA_ACT_RELU: glu_kernel<CLV_CUDA_ACT_RELU><<<flat_blocks(n), 256, 0, s>>>(dst, gate, up, n); break;
    }
    return launch_status("glu");
}
