/* The rotary embedding's arithmetic, shared by the rope kernel and the
 * fused q/k kernel so that both give the same bits (rope.cu says why the
 * angles are taken in double). Included by .cu files only. */
#ifndef CLV_CUDA_ROPE_CUH
#define CLV_CUDA_ROPE_CUH

#include <math.h>
#include <stdint.h>

#include <cuda_runtime.h>

/* cs[i] = cos, cs[n_rot / 2 + i] = sin of angle i of a token at position
 * pos, the block's threads taking the angles in turn (the caller syncs). */
__device__ static inline void rope_table(float *cs, int64_t n_rot, float pos, float freq_base, float freq_scale,
                                         const float *factors) {
    const int64_t half = n_rot / 2;
    for (int64_t i = threadIdx.x; i < half; i += blockDim.x) {
        float ex = __fdiv_rn((float)(2 * i), (float)n_rot);
        float inv_freq = __fdiv_rn(1.0f, (float)pow((double)freq_base, (double)ex));
        if (factors) inv_freq = __fdiv_rn(inv_freq, factors[i]);
        float theta = __fmul_rn(__fmul_rn(pos, freq_scale), inv_freq);
        double s, c;
        sincos((double)theta, &s, &c);
        cs[i] = (float)c;
        cs[half + i] = (float)s;
    }
}

/* The rotated pair (x0, x1) by (c, s): its first element, or its second. */
__device__ static inline float rope_first(float x0, float x1, float c, float s) {
    return __fsub_rn(__fmul_rn(x0, c), __fmul_rn(x1, s));
}
__device__ static inline float rope_second(float x0, float x1, float c, float s) {
    return __fadd_rn(__fmul_rn(x0, s), __fmul_rn(x1, c));
}

#endif
