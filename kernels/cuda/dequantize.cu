/* Device dequantizer: one thread per output element, one kernel instance per
 * type. Blocks are read byte by byte (a tensor may sit at any offset) with
 * field offsets taken from blocks.h; the decoders (decode.cuh) are bit-exact
 * against the scalar reference, and flush-to-zero stays off (no fast math). */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cuda_runtime.h>

#include "cuda_dequantize.h"
#include "decode.cuh"

template <int TYPE, int ELEMS, int BYTES>
__global__ static void dequantize_kernel(const uint8_t *src, float *dst, int64_t n) {
    int64_t stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t idx = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; idx < n; idx += stride) {
        dst[idx] = decode<TYPE>(src + (idx / ELEMS) * BYTES, (int)(idx % ELEMS));
    }
}

template <int TYPE, typename BLOCK, int ELEMS>
static void launch(const void *src, float *dst, int64_t n, cudaStream_t stream) {
    const int threads = 256;
    int64_t blocks = (n + threads - 1) / threads;
    if (blocks > 65536) blocks = 65536; /* grid-stride beyond this */
    dequantize_kernel<TYPE, ELEMS, (int)sizeof(BLOCK)>
        <<<(unsigned)blocks, threads, 0, stream>>>((const uint8_t *)src, dst, n);
}

extern "C" bool clv_cuda_can_dequantize(int32_t type) { return clv_type_can_dequantize(type); }

extern "C" clv_status clv_cuda_dequantize(int32_t type, const void *src_dev, float *dst_dev, int64_t n,
                                          void *stream) {
    if (!clv_type_can_dequantize(type)) {
        return clv_fail(CLV_ERR_UNSUPPORTED, "CUDA dequantize: type %s (%d) is not supported",
                        clv_type_name(type), (int)type);
    }
    int64_t block = clv_type_get(type)->block_elems;
    if (n < 0 || n % block != 0) {
        return clv_fail(CLV_ERR_ARG, "CUDA dequantize: %lld elements of %s: not a multiple of %lld",
                        (long long)n, clv_type_name(type), (long long)block);
    }
    if (n == 0) return CLV_OK;
    cudaStream_t s = (cudaStream_t)stream;
    switch (type) {
    case CLV_TYPE_F32: launch<CLV_TYPE_F32, float, 1>(src_dev, dst_dev, n, s); break;
    case CLV_TYPE_F16: launch<CLV_TYPE_F16, clv_fp16, 1>(src_dev, dst_dev, n, s); break;
    case CLV_TYPE_BF16: launch<CLV_TYPE_BF16, clv_bf16, 1>(src_dev, dst_dev, n, s); break;
    case CLV_TYPE_Q4_0: launch<CLV_TYPE_Q4_0, clv_block_q4_0, CLV_QK>(src_dev, dst_dev, n, s); break;
    case CLV_TYPE_Q4_1: launch<CLV_TYPE_Q4_1, clv_block_q4_1, CLV_QK>(src_dev, dst_dev, n, s); break;
    case CLV_TYPE_Q5_0: launch<CLV_TYPE_Q5_0, clv_block_q5_0, CLV_QK>(src_dev, dst_dev, n, s); break;
    case CLV_TYPE_Q5_1: launch<CLV_TYPE_Q5_1, clv_block_q5_1, CLV_QK>(src_dev, dst_dev, n, s); break;
    case CLV_TYPE_Q8_0: launch<CLV_TYPE_Q8_0, clv_block_q8_0, CLV_QK>(src_dev, dst_dev, n, s); break;
    case CLV_TYPE_Q8_1: launch<CLV_TYPE_Q8_1, clv_block_q8_1, CLV_QK>(src_dev, dst_dev, n, s); break;
    case CLV_TYPE_IQ4_NL: launch<CLV_TYPE_IQ4_NL, clv_block_iq4_nl, CLV_QK>(src_dev, dst_dev, n, s); break;
    case CLV_TYPE_MXFP4: launch<CLV_TYPE_MXFP4, clv_block_mxfp4, CLV_QK>(src_dev, dst_dev, n, s); break;
    case CLV_TYPE_Q2_K: launch<CLV_TYPE_Q2_K, clv_block_q2_k, CLV_QK_K>(src_dev, dst_dev, n, s); break;
    case CLV_TYPE_Q3_K: launch<CLV_TYPE_Q3_K, clv_block_q3_k, CLV_QK_K>(src_dev, dst_dev, n, s); break;
    case CLV_TYPE_Q4_K: launch<CLV_TYPE_Q4_K, clv_block_q4_k, CLV_QK_K>(src_dev, dst_dev, n, s); break;
    case CLV_TYPE_Q5_K: launch<CLV_TYPE_Q5_K, clv_block_q5_k, CLV_QK_K>(src_dev, dst_dev, n, s); break;
    case CLV_TYPE_Q6_K: launch<CLV_TYPE_Q6_K, clv_block_q6_k, CLV_QK_K>(src_dev, dst_dev, n, s); break;
    case CLV_TYPE_Q8_K: launch<CLV_TYPE_Q8_K, clv_block_q8_k, CLV_QK_K>(src_dev, dst_dev, n, s); break;
    case CLV_TYPE_IQ4_XS: launch<CLV_TYPE_IQ4_XS, clv_block_iq4_xs, CLV_QK_K>(src_dev, dst_dev, n, s); break;
    default: CLV_ASSERT(!"type listed in clv_type_can_dequantize without a CUDA decoder");
    }
    cudaError_t err = cudaGetLastError();
    if (err != cudaSuccess) {
        return clv_fail(CLV_ERR_DEVICE, "CUDA dequantize %s: launch failed: %s", clv_type_name(type),
                        cudaGetErrorString(err));
    }
    return CLV_OK;
}
