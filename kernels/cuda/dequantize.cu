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
#define LAUNCH(TYPE, BLOCK, ELEMS)                                                                                 \
    case TYPE: launch<TYPE, BLOCK, ELEMS>(src_dev, dst_dev, n, s); break;
        CLV_CUDA_DECODED_TYPES(LAUNCH)
#undef LAUNCH
    default: CLV_ASSERT(!"type listed in clv_type_can_dequantize without a CUDA decoder");
    }
    cudaError_t err = cudaGetLastError();
    if (err != cudaSuccess) {
        return clv_fail(CLV_ERR_DEVICE, "CUDA dequantize %s: launch failed: %s", clv_type_name(type),
                        cudaGetErrorString(err));
    }
    return CLV_OK;
}
