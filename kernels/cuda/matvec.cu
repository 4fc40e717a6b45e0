/* Matrix-vector product for decode: one warp per weight row.
 *
 * Generic kernel (every type): lane l takes elements l, l + 32, ... so that a
 * warp reads a row front to back, decodes each element with the reference's
 * decoders and multiplies with float activations; the warp sums its lanes
 * with shuffles.
 *
 * Q4_K kernel (rows 4-byte aligned): per 256-element block, lane l loads 4
 * bytes of the 128 quant bytes as one word (the warp reads them in one
 * coalesced sweep), i.e. 4 elements of sub-block 2g and 4 of sub-block
 * 2g + 1 (g = l / 8), and applies each sub-block's scale and min once to its
 * partial sums.
 *
 * Q6_K kernel (any alignment): lane l takes element l of each of the
 * block's eight 32-element runs: two ql bytes and one qh byte per half
 * block give it four elements, and a warp's byte loads cover 32
 * consecutive bytes.
 *
 * Q8_0 kernel (any alignment): four lanes per 34-byte block, eight quants
 * each, so a warp sweeps eight consecutive blocks at a time. */
#include <stdint.h>

#include <cuda_runtime.h>

#include "cuda_matvec.h"
#include "decode.cuh"

#define ROWS_PER_BLOCK 8

/* Which matrix and vectors a launch row (blockIdx.y) works on: for the plain
 * product one (ids NULL); for routed experts, expert ids[blockIdx.y] of a 3-D
 * tensor, the experts chosen on the device so the host never waits for them. */
struct slice_sel {
    const int32_t *ids;  /* [gridDim.y] or NULL */
    size_t expert_bytes; /* bytes of one expert's matrix */
    int64_t x_stride, y_stride; /* floats between the launch rows' x and y */
    int32_t n_expert;
};

/* Moves w, x and y to this launch row's slice; false (after filling y with
 * NaN, so that the bug shows in the logits) for an expert id out of range,
 * which the router kernels never give. */
__device__ static inline bool select_slice(const slice_sel &sel, const uint8_t *&w, const float *__restrict__ &x,
                                           float *__restrict__ &y, int64_t n_rows) {
    x += (int64_t)blockIdx.y * sel.x_stride;
    y += (int64_t)blockIdx.y * sel.y_stride;
    if (!sel.ids) return true;
    int32_t e = sel.ids[blockIdx.y];
    if (e < 0 || e >= sel.n_expert) {
        for (int64_t r = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; r < n_rows; r += (int64_t)gridDim.x * blockDim.x)
            y[r] = __int_as_float(0x7fc00000);
        return false;
    }
    w += (size_t)e * sel.expert_bytes;
    return true;
}

/* The row this warp computes (each launch block holds ROWS_PER_BLOCK warps). */
__device__ static inline int64_t warp_row(void) {
    return (int64_t)blockIdx.x * ROWS_PER_BLOCK + (threadIdx.x >> 5);
}

/* Sums the warp's partial sums into y[r]. */
__device__ static inline void store_warp_sum(float acc, float *y, int64_t r) {
    for (int o = 16; o > 0; o >>= 1) acc += __shfl_down_sync(0xffffffffu, acc, o);
    if ((threadIdx.x & 31) == 0) y[r] = acc;
}

static unsigned grid_for(int64_t n_rows) { return (unsigned)((n_rows + ROWS_PER_BLOCK - 1) / ROWS_PER_BLOCK); }

template <int TYPE, int ELEMS, int BYTES>
__global__ static void matvec_kernel(const uint8_t *w, size_t row_bytes, int64_t n_in, int64_t n_rows,
                                     const float *__restrict__ x, float *__restrict__ y, slice_sel sel) {
    if (!select_slice(sel, w, x, y, n_rows)) return;
    int lane = threadIdx.x & 31;
    int64_t r = warp_row();
    if (r >= n_rows) return;
    const uint8_t *row = w + (size_t)r * row_bytes;
    float acc = 0.0f;
    for (int64_t i = lane; i < n_in; i += 32) {
        acc = fmaf(decode<TYPE>(row + (i / ELEMS) * BYTES, (int)(i % ELEMS)), __ldg(x + i), acc);
    }
    store_warp_sum(acc, y, r);
}

__global__ static void matvec_q4_k_kernel(const uint8_t *w, size_t row_bytes, int64_t n_blocks, int64_t n_rows,
                                          const float *__restrict__ x, float *__restrict__ y, slice_sel sel) {
    if (!select_slice(sel, w, x, y, n_rows)) return;
    int lane = threadIdx.x & 31;
    int64_t r = warp_row();
    if (r >= n_rows) return;
    const uint8_t *row = w + (size_t)r * row_bytes;
    int g = lane >> 3, p = (lane & 7) * 4; /* sub-blocks 2g, 2g + 1; elements p..p+3 of each */
    float acc = 0.0f;
    /* Unrolled so that several blocks' loads are in flight at once. */
#pragma unroll 4
    for (int64_t ib = 0; ib < n_blocks; ib++) {
        const uint8_t *b = row + ib * sizeof(clv_block_q4_k);
        uint32_t q = *(const uint32_t *)(b + offsetof(clv_block_q4_k, qs) + 4 * lane);
        float d = ld_fp16(b + offsetof(clv_block_q4_k, d));
        float dmin = ld_fp16(b + offsetof(clv_block_q4_k, dmin));
        int sc0, m0, sc1, m1;
        k_scale_min(b + offsetof(clv_block_q4_k, scales), 2 * g, &sc0, &m0);
        k_scale_min(b + offsetof(clv_block_q4_k, scales), 2 * g + 1, &sc1, &m1);
        const float *xb = x + ib * 256 + 64 * g + p;
        float4 xl = __ldg((const float4 *)xb), xh = __ldg((const float4 *)(xb + 32));
        float dot0 = (float)(q & 0xF) * xl.x + (float)(q >> 8 & 0xF) * xl.y + (float)(q >> 16 & 0xF) * xl.z +
                     (float)(q >> 24 & 0xF) * xl.w;
        float dot1 = (float)(q >> 4 & 0xF) * xh.x + (float)(q >> 12 & 0xF) * xh.y + (float)(q >> 20 & 0xF) * xh.z +
                     (float)(q >> 28) * xh.w;
        float sum0 = xl.x + xl.y + xl.z + xl.w, sum1 = xh.x + xh.y + xh.z + xh.w;
        acc += d * ((float)sc0 * dot0 + (float)sc1 * dot1) - dmin * ((float)m0 * sum0 + (float)m1 * sum1);
    }
    store_warp_sum(acc, y, r);
}

__global__ static void matvec_q6_k_kernel(const uint8_t *w, size_t row_bytes, int64_t n_blocks, int64_t n_rows,
                                          const float *__restrict__ x, float *__restrict__ y, slice_sel sel) {
    if (!select_slice(sel, w, x, y, n_rows)) return;
    int l = threadIdx.x & 31;
    int64_t r = warp_row();
    if (r >= n_rows) return;
    const uint8_t *row = w + (size_t)r * row_bytes;
    float acc = 0.0f;
#pragma unroll 4
    for (int64_t ib = 0; ib < n_blocks; ib++) {
        const uint8_t *b = row + ib * sizeof(clv_block_q6_k);
        const float *xb = x + ib * 256;
        const int8_t *sc = (const int8_t *)(b + offsetof(clv_block_q6_k, scales));
        float blk = 0.0f;
#pragma unroll
        for (int h = 0; h < 2; h++) {
            uint8_t l0 = b[offsetof(clv_block_q6_k, ql) + 64 * h + l];
            uint8_t l1 = b[offsetof(clv_block_q6_k, ql) + 64 * h + 32 + l];
            uint8_t qh = b[offsetof(clv_block_q6_k, qh) + 32 * h + l];
            int q0 = (l0 & 0xF) | (qh & 3) << 4, q1 = (l1 & 0xF) | (qh >> 2 & 3) << 4;
            int q2 = (l0 >> 4) | (qh >> 4 & 3) << 4, q3 = (l1 >> 4) | (qh >> 6) << 4;
            const float *xh = xb + 128 * h + l;
            int s = 8 * h + l / 16; /* scale of element 128h + 32k + l is s + 2k */
            blk += (float)sc[s] * (float)(q0 - 32) * __ldg(xh) + (float)sc[s + 2] * (float)(q1 - 32) * __ldg(xh + 32) +
                   (float)sc[s + 4] * (float)(q2 - 32) * __ldg(xh + 64) +
                   (float)sc[s + 6] * (float)(q3 - 32) * __ldg(xh + 96);
        }
        acc += ld_fp16(b + offsetof(clv_block_q6_k, d)) * blk;
    }
    store_warp_sum(acc, y, r);
}

__global__ static void matvec_q8_0_kernel(const uint8_t *w, size_t row_bytes, int64_t n_blocks, int64_t n_rows,
                                          const float *__restrict__ x, float *__restrict__ y, slice_sel sel) {
    if (!select_slice(sel, w, x, y, n_rows)) return;
    int lane = threadIdx.x & 31;
    int64_t r = warp_row();
    if (r >= n_rows) return;
    const uint8_t *row = w + (size_t)r * row_bytes;
    int part = (lane & 3) * 8;
    float acc = 0.0f;
#pragma unroll 4
    for (int64_t ib = lane >> 2; ib < n_blocks; ib += 8) {
        const uint8_t *b = row + ib * sizeof(clv_block_q8_0);
        const int8_t *q = (const int8_t *)(b + offsetof(clv_block_q8_0, qs)) + part;
        const float *xb = x + ib * 32 + part;
        float dot = 0.0f;
#pragma unroll
        for (int k = 0; k < 8; k++) dot += (float)q[k] * __ldg(xb + k);
        acc += ld_fp16(b + offsetof(clv_block_q8_0, d)) * dot;
    }
    store_warp_sum(acc, y, r);
}

template <int TYPE, typename BLOCK, int ELEMS>
static void launch(const void *w, size_t row_bytes, int64_t n_in, int64_t n_rows, const float *x, float *y,
                   dim3 grid, const slice_sel &sel, cudaStream_t stream) {
    matvec_kernel<TYPE, ELEMS, (int)sizeof(BLOCK)>
        <<<grid, ROWS_PER_BLOCK * 32, 0, stream>>>((const uint8_t *)w, row_bytes, n_in, n_rows, x, y, sel);
}

static clv_status run_matvec(int32_t type, const void *w_dev, size_t row_bytes, int64_t n_in, int64_t n_rows,
                             const float *x_dev, float *y_dev, int64_t n_slices, const slice_sel &sel,
                             void *stream) {
    if (!clv_type_can_dequantize(type)) {
        return clv_fail(CLV_ERR_UNSUPPORTED, "CUDA matvec: type %s (%d) is not supported", clv_type_name(type),
                        (int)type);
    }
    uint64_t need = 0;
    int64_t block = clv_type_get(type)->block_elems;
    if (n_in <= 0 || n_rows < 0 || n_in % block != 0 || !clv_type_bytes(type, n_in, &need) || need > row_bytes) {
        return clv_fail(CLV_ERR_ARG, "CUDA matvec: %lld x %lld of %s with rows of %zu bytes", (long long)n_rows,
                        (long long)n_in, clv_type_name(type), row_bytes);
    }
    if (n_rows == 0 || n_slices == 0) return CLV_OK;
    if (n_rows > (int64_t)ROWS_PER_BLOCK * 0x7fffffff || n_slices > 65535) {
        return clv_fail(CLV_ERR_ARG, "CUDA matvec: %lld rows in %lld slices is too many for one launch",
                        (long long)n_rows, (long long)n_slices);
    }
    cudaStream_t s = (cudaStream_t)stream;
    dim3 g(grid_for(n_rows), (unsigned)n_slices);
    const void *w = w_dev;
    size_t rb = row_bytes;
    int64_t n = n_in, m = n_rows;
    const float *x = x_dev;
    float *y = y_dev;
    switch (type) {
    case CLV_TYPE_F32: launch<CLV_TYPE_F32, float, 1>(w, rb, n, m, x, y, g, sel, s); break;
    case CLV_TYPE_F16: launch<CLV_TYPE_F16, clv_fp16, 1>(w, rb, n, m, x, y, g, sel, s); break;
    case CLV_TYPE_BF16: launch<CLV_TYPE_BF16, clv_bf16, 1>(w, rb, n, m, x, y, g, sel, s); break;
    case CLV_TYPE_Q4_0: launch<CLV_TYPE_Q4_0, clv_block_q4_0, CLV_QK>(w, rb, n, m, x, y, g, sel, s); break;
    case CLV_TYPE_Q4_1: launch<CLV_TYPE_Q4_1, clv_block_q4_1, CLV_QK>(w, rb, n, m, x, y, g, sel, s); break;
    case CLV_TYPE_Q5_0: launch<CLV_TYPE_Q5_0, clv_block_q5_0, CLV_QK>(w, rb, n, m, x, y, g, sel, s); break;
    case CLV_TYPE_Q5_1: launch<CLV_TYPE_Q5_1, clv_block_q5_1, CLV_QK>(w, rb, n, m, x, y, g, sel, s); break;
    case CLV_TYPE_Q8_0:
        matvec_q8_0_kernel<<<g, ROWS_PER_BLOCK * 32, 0, s>>>((const uint8_t *)w, rb, n / CLV_QK, m, x, y, sel);
        break;
    case CLV_TYPE_Q8_1: launch<CLV_TYPE_Q8_1, clv_block_q8_1, CLV_QK>(w, rb, n, m, x, y, g, sel, s); break;
    case CLV_TYPE_IQ4_NL: launch<CLV_TYPE_IQ4_NL, clv_block_iq4_nl, CLV_QK>(w, rb, n, m, x, y, g, sel, s); break;
    case CLV_TYPE_MXFP4: launch<CLV_TYPE_MXFP4, clv_block_mxfp4, CLV_QK>(w, rb, n, m, x, y, g, sel, s); break;
    case CLV_TYPE_Q2_K: launch<CLV_TYPE_Q2_K, clv_block_q2_k, CLV_QK_K>(w, rb, n, m, x, y, g, sel, s); break;
    case CLV_TYPE_Q3_K: launch<CLV_TYPE_Q3_K, clv_block_q3_k, CLV_QK_K>(w, rb, n, m, x, y, g, sel, s); break;
    case CLV_TYPE_Q4_K:
        /* Word loads need 4-byte aligned rows; x float4 loads a 16-byte aligned x. */
        if ((uintptr_t)w % 4 == 0 && rb % 4 == 0 && (uintptr_t)x % 16 == 0 && sel.x_stride % 4 == 0) {
            matvec_q4_k_kernel<<<g, ROWS_PER_BLOCK * 32, 0, s>>>((const uint8_t *)w, rb, n / CLV_QK_K, m, x, y,
                                                               sel);
        } else {
            launch<CLV_TYPE_Q4_K, clv_block_q4_k, CLV_QK_K>(w, rb, n, m, x, y, g, sel, s);
        }
        break;
    case CLV_TYPE_Q5_K: launch<CLV_TYPE_Q5_K, clv_block_q5_k, CLV_QK_K>(w, rb, n, m, x, y, g, sel, s); break;
    case CLV_TYPE_Q6_K:
        matvec_q6_k_kernel<<<g, ROWS_PER_BLOCK * 32, 0, s>>>((const uint8_t *)w, rb, n / CLV_QK_K, m, x, y, sel);
        break;
    case CLV_TYPE_Q8_K: launch<CLV_TYPE_Q8_K, clv_block_q8_k, CLV_QK_K>(w, rb, n, m, x, y, g, sel, s); break;
    case CLV_TYPE_IQ4_XS: launch<CLV_TYPE_IQ4_XS, clv_block_iq4_xs, CLV_QK_K>(w, rb, n, m, x, y, g, sel, s); break;
    default: CLV_ASSERT(!"type listed in clv_type_can_dequantize without a CUDA decoder");
    }
    cudaError_t err = cudaGetLastError();
    if (err != cudaSuccess) {
        return clv_fail(CLV_ERR_DEVICE, "CUDA matvec %s: launch failed: %s", clv_type_name(type),
                        cudaGetErrorString(err));
    }
    return CLV_OK;
}

extern "C" clv_status clv_cuda_matvec(int32_t type, const void *w_dev, size_t row_bytes, int64_t n_in,
                                      int64_t n_rows, const float *x_dev, float *y_dev, void *stream) {
    slice_sel sel = {NULL, 0, 0, 0, 0};
    return run_matvec(type, w_dev, row_bytes, n_in, n_rows, x_dev, y_dev, 1, sel, stream);
}

extern "C" clv_status clv_cuda_matvec_experts(int32_t type, const void *w_dev, size_t row_bytes, int64_t n_in,
                                              int64_t n_rows, int64_t n_expert, const int32_t *ids_dev,
                                              int64_t n_sel, const float *x_dev, int64_t x_stride, float *y_dev,
                                              int64_t y_stride, void *stream) {
    if (n_expert < 1 || n_expert > 0x7fffffff || n_sel < 0 || x_stride < 0 || y_stride < n_rows ||
        (n_sel > 0 && !ids_dev)) {
        return clv_fail(CLV_ERR_ARG, "CUDA expert matvec: %lld of %lld experts, x stride %lld, y stride %lld for %lld rows",
                        (long long)n_sel, (long long)n_expert, (long long)x_stride, (long long)y_stride,
                        (long long)n_rows);
    }
    slice_sel sel = {ids_dev, row_bytes * (size_t)n_rows, x_stride, y_stride, (int32_t)n_expert};
    return run_matvec(type, w_dev, row_bytes, n_in, n_rows, x_dev, y_dev, n_sel, sel, stream);
}
