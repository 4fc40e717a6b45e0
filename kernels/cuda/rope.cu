/* Rotary embedding, in place: one block per token. The block first puts
 * cos and sin of each of the token's n_rot/2 angles in shared memory, then
 * rotates every head's pairs with them (one thread per (head, pair), so a
 * warp touches consecutive floats).
 *
 * The angle follows runtime/ops_cpu_rope.c operation for operation in float.
 * The CPU's powf, cosf and sinf are glibc's (within an ulp of the correctly
 * rounded result); the GPU takes pow, cos and sin in double and rounds, which
 * gives the correctly rounded float. An angle of the order of the position
 * (thousands of radians) magnifies any difference in base^(-2i/n_rot), so
 * the cheap float powf (several ulps on the GPU) would not do; this costs
 * n_rot/2 double evaluations per token. */
#include <math.h>
#include <stdint.h>

#include <cuda_runtime.h>

#include "cuda_ops.h"
#include "ops_common.cuh"
#include "rope.cuh"

#define ROPE_THREADS 256
#define ROPE_MAX_ROT 8192 /* cos and sin of 4096 angles: 32 KiB of shared memory */

template <bool NEOX>
__global__ static void rope_kernel(float *x, int64_t n_heads, int64_t head_dim, const int32_t *pos, int64_t n_rot,
                                   float freq_base, float freq_scale, const float *factors) {
    extern __shared__ float cs[]; /* cos [half], then sin [half] */
    const int64_t half = n_rot / 2;
    const int64_t t = blockIdx.x;
    rope_table(cs, n_rot, (float)pos[t], freq_base, freq_scale, factors);
    __syncthreads();
    float *xt = x + t * n_heads * head_dim;
    for (int64_t j = threadIdx.x; j < n_heads * half; j += blockDim.x) {
        int64_t h = j / half, i = j - h * half;
        float *v = xt + h * head_dim;
        int64_t i0 = NEOX ? i : 2 * i, i1 = NEOX ? i + half : 2 * i + 1;
        float c = cs[i], s = cs[half + i];
        float x0 = v[i0], x1 = v[i1];
        v[i0] = rope_first(x0, x1, c, s);
        v[i1] = rope_second(x0, x1, c, s);
    }
}

extern "C" clv_status clv_cuda_rope(float *x, int64_t n_tokens, int64_t n_heads, int64_t head_dim,
                                    const int32_t *pos, const clv_cuda_rope_params *p, void *stream) {
    if (!p || (p->mode != CLV_CUDA_ROPE_NONE && p->mode != CLV_CUDA_ROPE_NORMAL && p->mode != CLV_CUDA_ROPE_NEOX)) {
        return clv_fail(CLV_ERR_ARG, "CUDA rope: %s", p ? "unknown mode" : "no parameters");
    }
    if (p->mode == CLV_CUDA_ROPE_NONE || p->n_rot == 0) return CLV_OK;
    if (n_tokens < 0 || n_tokens > INT32_MAX || n_heads < 1 || head_dim < 1 || p->n_rot < 0 || p->n_rot % 2 ||
        p->n_rot > head_dim || p->n_rot > ROPE_MAX_ROT || !(p->freq_base > 0.0f) || !isfinite(p->freq_scale)) {
        return clv_fail(CLV_ERR_ARG, "CUDA rope: %lld tokens x %lld heads x %lld dims, n_rot %lld, base %g, scale %g",
                        (long long)n_tokens, (long long)n_heads, (long long)head_dim, (long long)p->n_rot,
                        (double)p->freq_base, (double)p->freq_scale);
    }
    if (n_tokens == 0) return CLV_OK;
    if (!x || !pos) return clv_fail(CLV_ERR_ARG, "CUDA rope: NULL %s", x ? "positions" : "x");
    size_t shared = sizeof(float) * (size_t)p->n_rot;
    cudaStream_t s = (cudaStream_t)stream;
    if (p->mode == CLV_CUDA_ROPE_NEOX) {
        rope_kernel<true><<<(unsigned)n_tokens, ROPE_THREADS, shared, s>>>(x, n_heads, head_dim, pos, p->n_rot,
                                                                          p->freq_base, p->freq_scale,
                                                                          p->freq_factors);
    } else {
        rope_kernel<false><<<(unsigned)n_tokens, ROPE_THREADS, shared, s>>>(x, n_heads, head_dim, pos, p->n_rot,
                                                                           p->freq_base, p->freq_scale,
                                                                           p->freq_factors);
    }
    return launch_status("rope");
}
