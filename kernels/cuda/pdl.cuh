/* Programmatic dependent launch (Hopper and later): a kernel launched with
 * launch_pdl may be scheduled once every block of the kernel ahead of it in
 * the stream has exited, before that grid's completion has gone through,
 * so part of the gap between two dependent decode kernels is hidden. Such
 * a kernel must begin with pdl_wait(), which waits until the kernels
 * before it have finished and their writes are visible; before that line
 * it may touch nothing in memory.
 *
 * No kernel lets its successor in earlier (griddepcontrol.launch_dependents):
 * on the H200, doing so at the start of every kernel cost llama-3-8b's
 * decode 8% (189.2 -> 174.2 tok/s) while qwen3-30b-a3b gained 2%, and doing
 * so only in the kernels of a few blocks (norms, q/k rope, router) still
 * cost llama-3-8b 4% (190.7 -> 183.0). Waiting alone: qwen3-30b-a3b
 * 253.6 -> 255.3, llama-3-8b unchanged (188.5 -> 188.3).
 *
 * Elsewhere (older GPUs, CLEAVE_CUDA_PDL=0) launch_pdl is a plain launch and
 * pdl_wait does nothing. Included by .cu files only. */
#ifndef CLV_CUDA_PDL_CUH
#define CLV_CUDA_PDL_CUH

#include <stdlib.h>
#include <string.h>

#include <cuda_runtime.h>

__device__ static inline void pdl_wait(void) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}

/* Whether launches may overlap: compute capability 9.0 or later and not
 * switched off; decided once for the process (the current device then). */
static inline bool pdl_enabled(void) {
    static int on = -1;
    if (on < 0) {
        const char *env = getenv("CLEAVE_CUDA_PDL");
        int dev = 0, major = 0;
        bool ok = !(env && !strcmp(env, "0")) && cudaGetDevice(&dev) == cudaSuccess &&
                  cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) == cudaSuccess && major >= 9;
        if (!ok) (void)cudaGetLastError();
        on = ok ? 1 : 0;
    }
    return on == 1;
}

/* kernel<<<grid, block, shared, stream>>>(args...), allowed to overlap the
 * kernel before it when pdl_enabled(). Errors show in cudaGetLastError. */
template <typename... P, typename... A>
static inline void launch_pdl(void (*kernel)(P...), dim3 grid, dim3 block, size_t shared, cudaStream_t stream,
                              A... args) {
    cudaLaunchAttribute attr[1];
    attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attr[0].val.programmaticStreamSerializationAllowed = 1;
    cudaLaunchConfig_t cfg = {};
    cfg.gridDim = grid;
    cfg.blockDim = block;
    cfg.dynamicSmemBytes = shared;
    cfg.stream = stream;
    cfg.attrs = attr;
    cfg.numAttrs = pdl_enabled() ? 1 : 0;
    (void)cudaLaunchKernelEx(&cfg, kernel, args...);
}

#endif
