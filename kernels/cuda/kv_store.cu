/* KV cache store: each token's K (or V) row goes to cache row pos[t],
 * converted to the cache type with fp16.h's rounding (nearest, ties to
 * even), which is the CPU's, so the caches hold the same bits. The
 * positions are read on the device, so the launch does not change from
 * token to token. K and V can go in one launch (grid y). */
#include <stdint.h>

#include <cuda_runtime.h>

#include "cuda_ops.h"
#include "fp16.h"
#include "ops_common.cuh"
#include "types.h"

/* One cache and the rows that go to it. */
struct kv_slot {
    void *cache;
    int64_t width;
    const float *src;
};

/* Grid y: slot (K, then V when storing both in one launch). */
template <bool F16>
__global__ static void kv_store_kernel(kv_slot k, kv_slot v, const int32_t *pos, int64_t n_tokens) {
    const kv_slot s = blockIdx.y ? v : k;
    const int64_t n = n_tokens * s.width, stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        int64_t t = i / s.width, c = i % s.width;
        size_t at = (size_t)pos[t] * (size_t)s.width + (size_t)c;
        if (F16) ((uint16_t *)s.cache)[at] = clv_fp32_to_fp16(s.src[i]);
        else ((float *)s.cache)[at] = s.src[i];
    }
}

static clv_status store(kv_slot k, kv_slot v, int n_slots, int32_t type, const int32_t *pos, int64_t n_tokens,
                        void *stream) {
    if (type != CLV_TYPE_F16 && type != CLV_TYPE_F32) {
        return clv_fail(CLV_ERR_UNSUPPORTED, "CUDA KV store: cache type %s is not supported (F16 or F32)",
                        clv_type_name(type));
    }
    bool bad = n_tokens < 0 || k.width < 0 || v.width < 0;
    for (int i = 0; i < n_slots && !bad; i++) {
        const kv_slot &s = i ? v : k;
        bad = n_tokens > 0 && s.width > 0 && (!s.cache || !pos || !s.src);
    }
    if (bad) {
        return clv_fail(CLV_ERR_ARG, "CUDA KV store: %lld rows of %lld and %lld", (long long)n_tokens,
                        (long long)k.width, (long long)v.width);
    }
    int64_t w = n_slots > 1 && v.width > k.width ? v.width : k.width, n = n_tokens * w;
    if (n == 0) return CLV_OK;
    dim3 grid(flat_blocks(n), (unsigned)n_slots);
    if (type == CLV_TYPE_F16) {
        kv_store_kernel<true><<<grid, 256, 0, (cudaStream_t)stream>>>(k, v, pos, n_tokens);
    } else {
        kv_store_kernel<false><<<grid, 256, 0, (cudaStream_t)stream>>>(k, v, pos, n_tokens);
    }
    return launch_status("KV store");
}

extern "C" clv_status clv_cuda_kv_store(void *cache, int32_t type, int64_t width, const int32_t *pos, const float *src,
                                        int64_t n_tokens, void *stream) {
    kv_slot k = {cache, width, src}, none = {NULL, 0, NULL};
    return store(k, none, 1, type, pos, n_tokens, stream);
}

extern "C" clv_status clv_cuda_kv_store_pair(void *k_cache, void *v_cache, int32_t type, int64_t k_width,
                                             int64_t v_width, const int32_t *pos, const float *k, const float *v,
                                             int64_t n_tokens, void *stream) {
    kv_slot ks = {k_cache, k_width, k}, vs = {v_cache, v_width, v};
    return store(ks, vs, 2, type, pos, n_tokens, stream);
}
