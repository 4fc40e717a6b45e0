/* RMS norm: one block per row. The sum of squares is taken in double, as
 * clv_vec_rmsnorm's reference does, so the scale is the CPU's up to the
 * order of a double sum; the multiplies use _rn intrinsics in the CPU's
 * order, so an equal scale gives equal bits.
 *
 * Rows of up to 32 elements per thread (every model width) are held in
 * registers: each thread issues all its loads (x, the addend, the weight)
 * before it waits for any, instead of a load's latency per loop step, which
 * made this small kernel one of the slowest of a decode step. Threads take
 * the same elements in the same order as the loop kernel, so the double
 * sums and the bits are the same. */
#include <stdint.h>

#include <cuda_runtime.h>

#include "cuda_ops.h"
#include "ops_common.cuh"
#include "pdl.cuh"

/* One block per row, a loop over it; with ADD, x += d first (written
 * back: the add kernel's one rounding). Every x is read before the barrier
 * inside block_sum, and each thread reads back only what it wrote, so dst
 * may be x (without ADD) or d (with it). */
template <bool ADD>
__global__ static void norm_loop_kernel(float *dst, float *x, const float *d, const float *w, int64_t n, float eps) {
    __shared__ double tmp[32];
    float *xr = x + (int64_t)blockIdx.x * n;
    float *y = dst + (int64_t)blockIdx.x * n;
    double ss = 0.0;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
        float v = xr[i];
        if (ADD) {
            v = __fadd_rn(v, d[(int64_t)blockIdx.x * n + i]);
            xr[i] = v;
        }
        ss += (double)v * (double)v; /* exact in double, so a fused add rounds the same */
    }
    ss = block_sum(ss, tmp);
    const float scale = __fdiv_rn(1.0f, __fsqrt_rn(__fadd_rn((float)(ss / (double)n), eps)));
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
        float v = __fmul_rn(xr[i], scale);
        y[i] = w ? __fmul_rn(v, w[i]) : v;
    }
}

/* The same with the row in registers, PER elements a thread at most; with
 * ADD, x += d first (written back; the add kernel's one rounding). Each
 * thread reads back only what it wrote, so dst may be x (without ADD) or
 * d (with it). */
template <bool ADD, int PER>
__global__ static void __launch_bounds__(PER <= 8 ? 1024 : 256)
    norm_regs_kernel(float *dst, float *x, const float *d, const float *w, int64_t n, float eps) {
    __shared__ double tmp[32];
    pdl_wait();
    const int64_t row = (int64_t)blockIdx.x * n, step = blockDim.x;
    float v[PER], wv[PER];
#pragma unroll
    for (int m = 0; m < PER; m++) {
        int64_t i = threadIdx.x + m * step;
        v[m] = i < n ? x[row + i] : 0.0f;
        wv[m] = w && i < n ? w[i] : 1.0f;
        if (ADD && i < n) v[m] = __fadd_rn(v[m], d[row + i]);
    }
    double ss = 0.0;
#pragma unroll
    for (int m = 0; m < PER; m++) {
        int64_t i = threadIdx.x + m * step;
        if (i < n) {
            if (ADD) x[row + i] = v[m];
            ss += (double)v[m] * (double)v[m];
        }
    }
    ss = block_sum(ss, tmp);
    const float scale = __fdiv_rn(1.0f, __fsqrt_rn(__fadd_rn((float)(ss / (double)n), eps)));
#pragma unroll
    for (int m = 0; m < PER; m++) {
        int64_t i = threadIdx.x + m * step;
        if (i < n) {
            float o = __fmul_rn(v[m], scale);
            dst[row + i] = w ? __fmul_rn(o, wv[m]) : o;
        }
    }
}

static clv_status rows_ok(const char *what, float *dst, const float *src, int64_t n_rows, int64_t n) {
    if (n_rows < 0 || n_rows > INT32_MAX || (n_rows > 0 && (n < 1 || !dst || !src))) {
        return clv_fail(CLV_ERR_ARG, "CUDA %s: %lld rows of %lld", what, (long long)n_rows, (long long)n);
    }
    return CLV_OK;
}

/* The register kernel for rows of up to 8 elements a thread, or 32 in
 * blocks of up to 256 (the registers that takes), else the loop (rows wider
 * than 8192). */
template <bool ADD>
static void launch(float *dst, float *x, const float *d, const float *w, int64_t n_rows, int64_t n, float eps,
                   cudaStream_t s) {
    unsigned threads = row_threads(n);
    int64_t per = (n + threads - 1) / threads;
    if (per <= 8) launch_pdl(norm_regs_kernel<ADD, 8>, dim3((unsigned)n_rows), dim3(threads), 0, s, dst, x, d, w, n, eps);
    else if (per <= 32 && threads <= 256)
        launch_pdl(norm_regs_kernel<ADD, 32>, dim3((unsigned)n_rows), dim3(threads), 0, s, dst, x, d, w, n, eps);
    else norm_loop_kernel<ADD><<<(unsigned)n_rows, threads, 0, s>>>(dst, x, d, w, n, eps);
}

extern "C" clv_status clv_cuda_add_rmsnorm(float *dst, float *x, const float *d, const float *w, int64_t n_rows,
                                           int64_t n, float eps, void *stream) {
    clv_status st = rows_ok("add + rmsnorm", dst, x, n_rows, n);
    if (st != CLV_OK || n_rows == 0) return st;
    if (!d) return clv_fail(CLV_ERR_ARG, "CUDA add + rmsnorm: NULL addend");
    if (d == x) return clv_fail(CLV_ERR_ARG, "CUDA add + rmsnorm: the addend is the sum");
    launch<true>(dst, x, d, w, n_rows, n, eps, (cudaStream_t)stream);
    return launch_status("add + rmsnorm");
}

extern "C" clv_status clv_cuda_rmsnorm(float *dst, const float *src, const float *w, int64_t n_rows, int64_t n,
                                       float eps, void *stream) {
    clv_status st = rows_ok("rmsnorm", dst, src, n_rows, n);
    if (st != CLV_OK || n_rows == 0) return st;
    launch<false>(dst, (float *)src, NULL, w, n_rows, n, eps, (cudaStream_t)stream); /* read only without ADD */
    return launch_status("rmsnorm");
}
