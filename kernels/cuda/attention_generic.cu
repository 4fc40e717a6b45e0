/* Decode attention for the head sizes the split-K kernel (attention.cu) does
 * not take: any head size up to 256, K and V of the same size. One warp per
 * query head walks the visible keys in order with an online softmax; each
 * lane holds the elements lane, lane + 32, ... of q, of the key row and of
 * the accumulator. Slow (no split, one key at a time) but simple: it exists
 * so that every model runs, small test models with 16-wide heads included.
 * Semantics are clv_cuda_attention_decode's. */
#include <math.h>
#include <stdint.h>

#include <cuda_runtime.h>

#include "cuda_attention.h"
#include "fp16.h"
#include "ops_common.cuh"
#include "types.h"

#define GENERIC_MAX_EPL 8 /* head size 256 */

template <bool F16> __device__ static inline float cache_at(const void *c, size_t i) {
    return F16 ? clv_fp16_to_fp32(((const uint16_t *)c)[i]) : ((const float *)c)[i];
}

/* Grid: one block (one warp) per query head. */
template <bool F16>
__global__ static void attn_generic_kernel(const float *q, const void *k, const void *v, int64_t kv_start, int64_t n_kv,
                                           const int32_t *pos, int64_t window, int n_head_kv, int group, int hd,
                                           float scale, float softcap, float *out) {
    const int h = blockIdx.x, lane = threadIdx.x, kvh = h / group;
    if (pos) { /* the range on the device: clv_cuda_attention_range */
        int64_t p = *pos;
        kv_start = window > 0 && p - window + 1 > 0 ? p - window + 1 : 0;
        n_kv = p - kv_start + 1;
    }
    const size_t row = (size_t)n_head_kv * (size_t)hd, off = (size_t)kvh * (size_t)hd;
    float qv[GENERIC_MAX_EPL], acc[GENERIC_MAX_EPL];
#pragma unroll
    for (int e = 0; e < GENERIC_MAX_EPL; e++) {
        int d = lane + 32 * e;
        qv[e] = d < hd ? q[(size_t)h * hd + d] : 0.0f;
        acc[e] = 0.0f;
    }
    float m = -INFINITY, l = 0.0f;
    for (int64_t j = kv_start; j < kv_start + n_kv; j++) {
        const size_t base = (size_t)j * row + off;
        float s = 0.0f;
#pragma unroll
        for (int e = 0; e < GENERIC_MAX_EPL; e++) {
            int d = lane + 32 * e;
            if (d < hd) s = fmaf(qv[e], cache_at<F16>(k, base + d), s);
        }
        /* A butterfly: every lane ends with the same bits. */
        for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(FULL_MASK, s, o);
        s *= scale;
        if (softcap > 0.0f) s = softcap * tanhf(s / softcap);
        const float m_new = fmaxf(m, s);
        const float alpha = expf(m - m_new), p = expf(s - m_new);
        l = l * alpha + p;
        m = m_new;
#pragma unroll
        for (int e = 0; e < GENERIC_MAX_EPL; e++) {
            int d = lane + 32 * e;
            if (d < hd) acc[e] = fmaf(p, cache_at<F16>(v, base + d), acc[e] * alpha);
        }
    }
#pragma unroll
    for (int e = 0; e < GENERIC_MAX_EPL; e++) {
        int d = lane + 32 * e;
        if (d < hd) out[(size_t)h * hd + d] = l > 0.0f ? acc[e] / l : 0.0f;
    }
}

static clv_status decode_generic(const clv_cuda_attention_shape *shape, const float *q_dev, const void *k_cache_dev,
                                 const void *v_cache_dev, int64_t kv_start, int64_t n_kv, const int32_t *pos_dev,
                                 int64_t window, float scale, float softcap, float *out_dev, void *stream) {
    if (!shape || shape->n_head < 1 || shape->n_head_kv < 1 || shape->n_head % shape->n_head_kv ||
        shape->n_head > 65535) {
        return clv_fail(CLV_ERR_ARG, "CUDA attention (generic): %lld query heads over %lld KV heads",
                        shape ? (long long)shape->n_head : 0LL, shape ? (long long)shape->n_head_kv : 0LL);
    }
    if (shape->kv_type != CLV_TYPE_F16 && shape->kv_type != CLV_TYPE_F32) {
        return clv_fail(CLV_ERR_UNSUPPORTED, "CUDA attention: KV cache type %s is not supported (F16 or F32)",
                        clv_type_name(shape->kv_type));
    }
    if (shape->head_dim < 1 || shape->head_dim > 32 * GENERIC_MAX_EPL) {
        return clv_fail(CLV_ERR_UNSUPPORTED, "CUDA attention: head size %lld is not supported (at most %d)",
                        (long long)shape->head_dim, 32 * GENERIC_MAX_EPL);
    }
    if (n_kv < 1 || kv_start < 0 || !(softcap >= 0.0f) || !q_dev || !k_cache_dev || !v_cache_dev || !out_dev) {
        return clv_fail(CLV_ERR_ARG, "CUDA attention (generic): %lld keys from position %lld, softcap %g or a NULL "
                        "pointer", (long long)n_kv, (long long)kv_start, (double)softcap);
    }
    const int group = (int)(shape->n_head / shape->n_head_kv);
    cudaStream_t s = (cudaStream_t)stream;
    if (shape->kv_type == CLV_TYPE_F16) {
        attn_generic_kernel<true><<<(unsigned)shape->n_head, 32, 0, s>>>(
            q_dev, k_cache_dev, v_cache_dev, kv_start, n_kv, pos_dev, window, (int)shape->n_head_kv, group,
            (int)shape->head_dim, scale, softcap, out_dev);
    } else {
        attn_generic_kernel<false><<<(unsigned)shape->n_head, 32, 0, s>>>(
            q_dev, k_cache_dev, v_cache_dev, kv_start, n_kv, pos_dev, window, (int)shape->n_head_kv, group,
            (int)shape->head_dim, scale, softcap, out_dev);
    }
    return launch_status("attention (generic)");
}

extern "C" clv_status clv_cuda_attention_decode_generic(const clv_cuda_attention_shape *shape, const float *q_dev,
                                                        const void *k_cache_dev, const void *v_cache_dev,
                                                        int64_t kv_start, int64_t n_kv, float scale, float softcap,
                                                        float *out_dev, void *stream) {
    return decode_generic(shape, q_dev, k_cache_dev, v_cache_dev, kv_start, n_kv, NULL, 0, scale, softcap, out_dev,
                          stream);
}

extern "C" clv_status clv_cuda_attention_decode_generic_at(const clv_cuda_attention_shape *shape, const float *q_dev,
                                                           const void *k_cache_dev, const void *v_cache_dev,
                                                           const int32_t *pos_dev, int64_t window, float scale,
                                                           float softcap, float *out_dev, void *stream) {
    if (!pos_dev || window < 0) return clv_fail(CLV_ERR_ARG, "CUDA attention: no position, or a negative window");
    return decode_generic(shape, q_dev, k_cache_dev, v_cache_dev, 0, 1, pos_dev, window, scale, softcap, out_dev,
                          stream);
}
