/* A layer's q and k made ready for attention, and k and v cached, in one
 * launch: RMS norm of each head (qwen3, gemma3), rotary embedding, then the
 * K and V rows stored at the token's position. Each warp takes a head (or
 * a head-sized piece of v), so a decode token spreads over several blocks;
 * each block puts the token's cos and sin in shared memory (as the rope
 * kernel does, with the same arithmetic), and a warp norms its head in
 * registers, shares it through its shared row for the rotation's pairs,
 * and writes it back in place (and, for k, to the cache).
 *
 * Every step has the arithmetic of the kernels it replaces
 * (clv_cuda_rmsnorm over heads, clv_cuda_rope, clv_cuda_kv_store_pair): for
 * heads of up to 128 dims the sum of squares is even taken in the same
 * order, so the bits are theirs. */
#include <math.h>
#include <stdint.h>

#include <cuda_runtime.h>

#include "cuda_ops.h"
#include "fp16.h"
#include "ops_common.cuh"
#include "pdl.cuh"
#include "rope.cuh"
#include "types.h"

#define PREP_WARPS 8
#define PREP_MAX_HEAD 256

struct prep_args {
    float *q, *k;
    const float *v;
    int64_t n_head, n_head_kv, hd, v_width;
    const int32_t *pos;
    const float *q_norm, *k_norm;
    float eps;
    int64_t n_rot;
    float freq_base, freq_scale;
    const float *factors;
    void *k_cache, *v_cache;
};

template <bool F16> __device__ static inline void cache_put(void *cache, size_t at, float v) {
    if (F16) ((uint16_t *)cache)[at] = clv_fp32_to_fp16(v);
    else ((float *)cache)[at] = v;
}

/* MODE: clv_cuda_rope_mode. Block (token, group of PREP_WARPS items); an
 * item is a q head, a k head or a head-sized piece of v, one per warp.
 * Each lane holds its (up to 8) elements in registers, loaded before the
 * block computes its cos/sin table, so the loads' latency and the table's
 * double arithmetic overlap. */
template <int MODE, bool F16>
__global__ static void __launch_bounds__(PREP_WARPS * 32) qk_rope_store_kernel(prep_args a) {
    extern __shared__ float sh[]; /* cos [half], sin [half], then a head row per warp */
    pdl_wait();
    constexpr int PER = PREP_MAX_HEAD / 32;
    const int64_t t = blockIdx.x, hd = a.hd, half = a.n_rot / 2;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int32_t p = a.pos[t];
    const int64_t k_width = a.n_head_kv * hd, n_qk = a.n_head + a.n_head_kv;
    const int64_t h = (int64_t)blockIdx.y * PREP_WARPS + warp;
    const bool is_q = h < a.n_head, is_k = !is_q && h < n_qk;
    const int64_t hk = h - a.n_head;
    float *x = is_q ? a.q + (t * a.n_head + h) * hd : a.k + t * k_width + hk * hd;
    const float *src = is_q || is_k ? x : a.v + t * a.v_width + (h - n_qk) * hd;
    const int64_t len = is_q || is_k ? hd : a.v_width - (h - n_qk) * hd; /* <= 0 past the last item */
    float v[PER];
#pragma unroll
    for (int m = 0; m < PER; m++) {
        int64_t i = lane + 32 * m;
        v[m] = i < hd && i < len ? src[i] : 0.0f;
    }
    if (MODE != CLV_CUDA_ROPE_NONE) {
        rope_table(sh, a.n_rot, (float)p, a.freq_base, a.freq_scale, a.factors);
        __syncthreads();
    }
    if (len <= 0) return;
    if (!is_q && !is_k) { /* a piece of v: to the cache as it is */
#pragma unroll
        for (int m = 0; m < PER; m++) {
            int64_t i = lane + 32 * m;
            if (i < hd && i < len)
                cache_put<F16>(a.v_cache, (size_t)p * (size_t)a.v_width + (size_t)((h - n_qk) * hd + i), v[m]);
        }
        return;
    }
    const float *w = is_q ? a.q_norm : a.k_norm;
    if (w) { /* clv_cuda_rmsnorm's formula; each lane scales its own elements */
        double ss = 0.0;
#pragma unroll
        for (int m = 0; m < PER; m++) ss += (double)v[m] * (double)v[m]; /* zeros past hd add nothing */
        ss = warp_sum(ss);
        const float scale = __fdiv_rn(1.0f, __fsqrt_rn(__fadd_rn((float)(ss / (double)hd), a.eps)));
#pragma unroll
        for (int m = 0; m < PER; m++) {
            int64_t i = lane + 32 * m;
            if (i < hd) v[m] = __fmul_rn(__fmul_rn(v[m], scale), w[i]);
        }
    }
    float *buf = sh + 2 * half + warp * hd;
#pragma unroll
    for (int m = 0; m < PER; m++) {
        int64_t i = lane + 32 * m;
        if (i < hd) buf[i] = v[m];
    }
    __syncwarp();
#pragma unroll
    for (int m = 0; m < PER; m++) {
        int64_t i = lane + 32 * m;
        if (i >= hd) break;
        float o = v[m];
        if (MODE != CLV_CUDA_ROPE_NONE && i < a.n_rot) {
            const bool neox = MODE == CLV_CUDA_ROPE_NEOX;
            const int64_t j = neox ? (i < half ? i : i - half) : i >> 1;
            const float x0 = buf[neox ? j : 2 * j], x1 = buf[neox ? j + half : 2 * j + 1];
            const float c = sh[j], s = sh[half + j];
            const bool first = neox ? i < half : (i & 1) == 0;
            o = first ? rope_first(x0, x1, c, s) : rope_second(x0, x1, c, s);
        }
        x[i] = o;
        if (is_k) cache_put<F16>(a.k_cache, (size_t)p * (size_t)k_width + (size_t)(hk * hd + i), o);
    }
}

template <int MODE>
static void launch(const prep_args &a, bool f16, int64_t n_tokens, size_t shared, cudaStream_t s) {
    int64_t items = a.n_head + a.n_head_kv + (a.v_width + a.hd - 1) / a.hd;
    dim3 grid((unsigned)n_tokens, (unsigned)((items + PREP_WARPS - 1) / PREP_WARPS));
    if (f16) launch_pdl(qk_rope_store_kernel<MODE, true>, grid, dim3(PREP_WARPS * 32), shared, s, a);
    else launch_pdl(qk_rope_store_kernel<MODE, false>, grid, dim3(PREP_WARPS * 32), shared, s, a);
}

extern "C" clv_status clv_cuda_qk_rope_store(float *q, float *k, const float *v, int64_t n_tokens, int64_t n_head,
                                             int64_t n_head_kv, int64_t head_dim, int64_t v_width,
                                             const int32_t *pos, const clv_cuda_qk_prep *p, void *k_cache,
                                             void *v_cache, int32_t kv_type, void *stream) {
    if (kv_type != CLV_TYPE_F16 && kv_type != CLV_TYPE_F32) {
        return clv_fail(CLV_ERR_UNSUPPORTED, "CUDA q/k rope + store: cache type %s is not supported (F16 or F32)",
                        clv_type_name(kv_type));
    }
    const clv_cuda_rope_params *r = p ? &p->rope : NULL;
    if (!r || (r->mode != CLV_CUDA_ROPE_NONE && r->mode != CLV_CUDA_ROPE_NORMAL && r->mode != CLV_CUDA_ROPE_NEOX)) {
        return clv_fail(CLV_ERR_ARG, "CUDA q/k rope + store: %s", r ? "unknown rope mode" : "no parameters");
    }
    int mode = r->n_rot == 0 ? CLV_CUDA_ROPE_NONE : r->mode;
    if (n_tokens < 0 || n_tokens > INT32_MAX || n_head < 1 || n_head_kv < 1 ||
        n_head + 2 * n_head_kv > (int64_t)PREP_WARPS * 65535 || head_dim < 1 ||
        head_dim > PREP_MAX_HEAD || v_width < 0 ||
        (mode != CLV_CUDA_ROPE_NONE &&
         (r->n_rot < 0 || r->n_rot % 2 || r->n_rot > head_dim || !(r->freq_base > 0.0f) || !isfinite(r->freq_scale)))) {
        return clv_fail(CLV_ERR_ARG,
                        "CUDA q/k rope + store: %lld tokens, %lld + %lld heads of %lld (at most %d), v width %lld, "
                        "n_rot %lld",
                        (long long)n_tokens, (long long)n_head, (long long)n_head_kv, (long long)head_dim,
                        PREP_MAX_HEAD, (long long)v_width, (long long)r->n_rot);
    }
    if (n_tokens == 0) return CLV_OK;
    if (!q || !k || !pos || !k_cache || (v_width > 0 && (!v || !v_cache))) {
        return clv_fail(CLV_ERR_ARG, "CUDA q/k rope + store: a NULL array");
    }
    prep_args a = {q, k, v, n_head, n_head_kv, head_dim, v_width, pos, p->q_norm, p->k_norm, p->eps,
                   mode == CLV_CUDA_ROPE_NONE ? 0 : r->n_rot, r->freq_base, r->freq_scale, r->freq_factors,
                   k_cache, v_cache};
    size_t shared = sizeof(float) * (size_t)(a.n_rot + PREP_WARPS * head_dim);
    bool f16 = kv_type == CLV_TYPE_F16;
    cudaStream_t s = (cudaStream_t)stream;
    if (mode == CLV_CUDA_ROPE_NEOX) launch<CLV_CUDA_ROPE_NEOX>(a, f16, n_tokens, shared, s);
    else if (mode == CLV_CUDA_ROPE_NORMAL) launch<CLV_CUDA_ROPE_NORMAL>(a, f16, n_tokens, shared, s);
    else launch<CLV_CUDA_ROPE_NONE>(a, f16, n_tokens, shared, s);
    return launch_status("q/k rope + store");
}
