/* Activation functions of the CUDA kernels, shared by the elementwise ops
 * (activation.cu) and the fused gate/up product (matvec.cu): the formulas
 * of the scalar reference (kernels/cpu/vec.c) with every multiply and add
 * as an _rn intrinsic in the same order, so nvcc cannot fuse them; what
 * remains different is expf/tanhf (within 2 ulp on the GPU, under 1 ulp in
 * glibc). Included by .cu files only. */
#ifndef CLV_CUDA_ACT_CUH
#define CLV_CUDA_ACT_CUH

#include <math.h>

#include "cuda_ops.h"

/* The CPU's CLV_GELU_K and CLV_GELU_C (kernels/cpu/vec_impl.h, internal to
 * the CPU kernels); test_cuda_ops compares the two GELUs. */
#define CLV_CUDA_GELU_K 0.7978845608f /* sqrt(2 / pi) */
#define CLV_CUDA_GELU_C 0.044715f

template <int ACT> __device__ static inline float act1(float x) {
    if constexpr (ACT == CLV_CUDA_ACT_SILU) {
        return __fdiv_rn(x, __fadd_rn(1.0f, expf(-x)));
    } else if constexpr (ACT == CLV_CUDA_ACT_GELU) {
        float inner = __fadd_rn(x, __fmul_rn(__fmul_rn(__fmul_rn(CLV_CUDA_GELU_C, x), x), x));
        return __fmul_rn(__fmul_rn(0.5f, x), __fadd_rn(1.0f, tanhf(__fmul_rn(CLV_CUDA_GELU_K, inner))));
    } else {
        return x > 0.0f ? x : 0.0f;
    }
}

/* act(gate) * up, the GLU of one element. */
template <int ACT> __device__ static inline float glu1(float gate, float up) {
    return __fmul_rn(act1<ACT>(gate), up);
}

#endif
