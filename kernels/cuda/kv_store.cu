/* KV cache store: each token's K (or V) row goes to cache row pos[t],
 * converted to the cache type with fp16.h's rounding (nearest, ties to
 * even), which is the CPU's, so the caches hold the same bits. The
 * positions are read on the device, so the launch does not change from
 * token to token. */
#include <stdint.h>

#include <cuda_runtime.h>

#include "cuda_ops.h"
#include "fp16.h"
#include "ops_common.cuh"
#include "types.h"

template <bool F16>
__global__ static void kv_store_kernel(void *cache, int64_t width, const int32_t *pos, const float *src, int64_t n) {
    int64_t stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        int64_t t = i / width, c = i % width;
        size_t at = (size_t)pos[t] * (size_t)width + (size_t)c;
        if (F16) ((uint16_t *)cache)[at] = clv_fp32_to_fp16(src[i]);
        else ((float *)cache)[at] = src[i];
    }
}

extern "C" clv_status clv_cuda_kv_store(void *cache, int32_t type, int64_t width, const int32_t *pos, const float *src,
                                        int64_t n_tokens, void *stream) {
    if (type != CLV_TYPE_F16 && type != CLV_TYPE_F32) {
        return clv_fail(CLV_ERR_UNSUPPORTED, "CUDA KV store: cache type %s is not supported (F16 or F32)",
                        clv_type_name(type));
    }
    if (n_tokens < 0 || width < 0 || (n_tokens > 0 && width > 0 && (!cache || !pos || !src))) {
        return clv_fail(CLV_ERR_ARG, "CUDA KV store: %lld rows of %lld", (long long)n_tokens, (long long)width);
    }
    int64_t n = n_tokens * width;
    if (n == 0) return CLV_OK;
    if (type == CLV_TYPE_F16) {
        kv_store_kernel<true><<<flat_blocks(n), 256, 0, (cudaStream_t)stream>>>(cache, width, pos, src, n);
    } else {
        kv_store_kernel<false><<<flat_blocks(n), 256, 0, (cudaStream_t)stream>>>(cache, width, pos, src, n);
    }
    return launch_status("KV store");
}
