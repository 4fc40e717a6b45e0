/* Prefill matrix product on tensor cores (cuda_matmul.h): X copied once,
 * W decoded to float a panel of rows at a time, cuBLAS GEMM per panel with
 * TF32 tensor-core math (inputs rounded to 10-bit mantissas, float range
 * and float accumulation). bf16 (7-bit mantissas) was twice as fast on the
 * tensor cores but moved SmolLM2-135M's top token against the CPU's on
 * 1.15% of 4096 teacher-forced positions; the prefill GEMM is a small part
 * of prompt time, so the engine takes the precision.
 *
 * Layout. cuBLAS is column-major: a row-major [rows][ld] float array is a
 * column-major ld x rows matrix. With A = the weight panel (n_in x pr,
 * lda = ldk) and B = X (n_in x n_tokens, ldb = ldk), the product
 * A^T B (pr x n_tokens) written column-major with ldc = ldy is exactly
 * Y[t][r0 + r] row-major: the "TN" GEMM, both operands K-contiguous,
 * which is the layout tensor-core kernels like best.
 *
 * Both copies use a row stride ldk = n_in rounded up to 8 elements
 * (32 bytes), so that every row starts aligned whatever n_in is (plain
 * types allow any n_in); the padding is written as zeros and never read,
 * since the GEMM's k is n_in.
 *
 * Workspace: [cuBLAS scratch][X][weight panel], each part
 * 256-byte aligned. The panel loop runs on one stream, so one panel buffer
 * is enough: the next panel's decode waits for the GEMM that reads it. */
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include "cuda_matmul.h"
#include "decode.cuh"

/* NVIDIA's recommended user workspace for cuBLAS on Hopper (4 MiB on older
 * GPUs; more does no harm there). */
#define CUBLAS_SCRATCH_BYTES ((size_t)32 << 20)
#define PANEL_MIN_ROWS 8192
#define PANEL_TARGET_BYTES ((size_t)64 << 20)
#define PANEL_ROW_MULTIPLE 8 /* keeps each panel's first output 32-byte aligned */
#define ELEMS_PER_THREAD 8   /* two 16-byte stores of float */
#define ELEM_BYTES 4         /* the GEMM's inputs are float (TF32 math) */
#define THREADS 256

struct clv_cuda_matmul_handle {
    cublasHandle_t blas;
    cudaStream_t stream;
};

static size_t align256(size_t n) { return (n + 255) & ~(size_t)255; }

/* Row stride, in elements, of both copies. */
static int64_t padded_width(int64_t n_in) { return (n_in + 7) & ~(int64_t)7; }

/* Stores group g's 8 floats (elements 8g .. 8g + 7 of the copy). */
__device__ static inline void store8(float4 *dst, int64_t g, const float *v) {
    dst[2 * g] = make_float4(v[0], v[1], v[2], v[3]);
    dst[2 * g + 1] = make_float4(v[4], v[5], v[6], v[7]);
}

/* Rows [0, n_rows) of `rows` (row_bytes apart) decoded into dst (ldk floats
 * per row); each thread writes 8 consecutive elements, zeros past n_in. */
template <int TYPE, int ELEMS, int BYTES>
__global__ static void decode_panel_kernel(const uint8_t *rows, size_t row_bytes, int64_t n_in, int64_t n_rows,
                                           int64_t ldk, float4 *dst) {
    int64_t groups_per_row = ldk / ELEMS_PER_THREAD;
    int64_t total = n_rows * groups_per_row;
    int64_t stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t g = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; g < total; g += stride) {
        int64_t r = g / groups_per_row;
        int64_t i0 = (g - r * groups_per_row) * ELEMS_PER_THREAD;
        const uint8_t *row = rows + (size_t)r * row_bytes;
        float v[ELEMS_PER_THREAD];
#pragma unroll
        for (int k = 0; k < ELEMS_PER_THREAD; k++) {
            int64_t i = i0 + k;
            v[k] = i < n_in ? decode<TYPE>(row + (i / ELEMS) * BYTES, (int)(i % ELEMS)) : 0.0f;
        }
        store8(dst, g, v); /* g * 8 == r * ldk + i0 */
    }
}

/* Q4_K, the most common prefill weight: the same values as decode<Q4_K>
 * (same operations, same order), with the block's scale and min decoded
 * once per 8 elements instead of once per element. n_in is a multiple of
 * 256, so ldk == n_in and a group never leaves its 32-element sub-block. */
__global__ static void decode_panel_q4_k_kernel(const uint8_t *rows, size_t row_bytes, int64_t n_in, int64_t n_rows,
                                                float4 *dst) {
    int64_t groups_per_row = n_in / ELEMS_PER_THREAD;
    int64_t total = n_rows * groups_per_row;
    int64_t stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t g = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; g < total; g += stride) {
        int64_t r = g / groups_per_row;
        int64_t i0 = (g - r * groups_per_row) * ELEMS_PER_THREAD;
        const uint8_t *b = rows + (size_t)r * row_bytes + (size_t)(i0 / CLV_QK_K) * sizeof(clv_block_q4_k);
        int i = (int)(i0 % CLV_QK_K), j = i / 32, l = i % 32, sc, m;
        float d = ld_fp16(b + offsetof(clv_block_q4_k, d));
        float dmin = ld_fp16(b + offsetof(clv_block_q4_k, dmin));
        k_scale_min(b + offsetof(clv_block_q4_k, scales), j, &sc, &m);
        float dsc = __fmul_rn(d, (float)sc), dm = __fmul_rn(dmin, (float)m);
        const uint8_t *q = b + offsetof(clv_block_q4_k, qs) + 32 * (j / 2) + l;
        int shift = (j % 2) * 4;
        float v[ELEMS_PER_THREAD];
#pragma unroll
        for (int k = 0; k < ELEMS_PER_THREAD; k++) v[k] = __fsub_rn(__fmul_rn(dsc, (float)((q[k] >> shift) & 0xF)), dm);
        store8(dst, g, v);
    }
}

/* x (n_tokens rows, ldx apart) into dst (ldk floats per row), zeros past n_in. */
__global__ static void convert_x_kernel(const float *__restrict__ x, int64_t ldx, int64_t n_in, int64_t n_tokens,
                                        int64_t ldk, float4 *dst) {
    int64_t groups_per_row = ldk / ELEMS_PER_THREAD;
    int64_t total = n_tokens * groups_per_row;
    int64_t stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t g = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; g < total; g += stride) {
        int64_t t = g / groups_per_row;
        int64_t i0 = (g - t * groups_per_row) * ELEMS_PER_THREAD;
        const float *row = x + t * ldx;
        float v[ELEMS_PER_THREAD];
#pragma unroll
        for (int k = 0; k < ELEMS_PER_THREAD; k++) v[k] = i0 + k < n_in ? __ldg(row + i0 + k) : 0.0f;
        store8(dst, g, v);
    }
}

/* Blocks for a grid-stride loop over `groups` threads' worth of work:
 * enough to fill any GPU many times over, and within gridDim.x's range. */
static unsigned grid_for(int64_t groups) {
    int64_t b = (groups + THREADS - 1) / THREADS;
    return (unsigned)(b > 65536 ? 65536 : b < 1 ? 1 : b);
}

template <int TYPE, typename BLOCK, int ELEMS>
static void launch_decode(const void *rows, size_t row_bytes, int64_t n_in, int64_t n_rows, int64_t ldk, void *dst,
                          cudaStream_t stream) {
    decode_panel_kernel<TYPE, ELEMS, (int)sizeof(BLOCK)><<<grid_for(n_rows * (ldk / ELEMS_PER_THREAD)), THREADS, 0,
                                                           stream>>>((const uint8_t *)rows, row_bytes, n_in, n_rows,
                                                                     ldk, (float4 *)dst);
}

static void decode_panel(int32_t type, const void *rows, size_t row_bytes, int64_t n_in, int64_t n_rows, int64_t ldk,
                         void *dst, cudaStream_t s) {
    const void *w = rows;
    size_t rb = row_bytes;
    int64_t n = n_in, m = n_rows;
    switch (type) {
    case CLV_TYPE_F32: launch_decode<CLV_TYPE_F32, float, 1>(w, rb, n, m, ldk, dst, s); break;
    case CLV_TYPE_F16: launch_decode<CLV_TYPE_F16, clv_fp16, 1>(w, rb, n, m, ldk, dst, s); break;
    case CLV_TYPE_BF16: launch_decode<CLV_TYPE_BF16, clv_bf16, 1>(w, rb, n, m, ldk, dst, s); break;
    case CLV_TYPE_Q4_0: launch_decode<CLV_TYPE_Q4_0, clv_block_q4_0, CLV_QK>(w, rb, n, m, ldk, dst, s); break;
    case CLV_TYPE_Q4_1: launch_decode<CLV_TYPE_Q4_1, clv_block_q4_1, CLV_QK>(w, rb, n, m, ldk, dst, s); break;
    case CLV_TYPE_Q5_0: launch_decode<CLV_TYPE_Q5_0, clv_block_q5_0, CLV_QK>(w, rb, n, m, ldk, dst, s); break;
    case CLV_TYPE_Q5_1: launch_decode<CLV_TYPE_Q5_1, clv_block_q5_1, CLV_QK>(w, rb, n, m, ldk, dst, s); break;
    case CLV_TYPE_Q8_0: launch_decode<CLV_TYPE_Q8_0, clv_block_q8_0, CLV_QK>(w, rb, n, m, ldk, dst, s); break;
    case CLV_TYPE_Q8_1: launch_decode<CLV_TYPE_Q8_1, clv_block_q8_1, CLV_QK>(w, rb, n, m, ldk, dst, s); break;
    case CLV_TYPE_IQ4_NL: launch_decode<CLV_TYPE_IQ4_NL, clv_block_iq4_nl, CLV_QK>(w, rb, n, m, ldk, dst, s); break;
    case CLV_TYPE_MXFP4: launch_decode<CLV_TYPE_MXFP4, clv_block_mxfp4, CLV_QK>(w, rb, n, m, ldk, dst, s); break;
    case CLV_TYPE_Q2_K: launch_decode<CLV_TYPE_Q2_K, clv_block_q2_k, CLV_QK_K>(w, rb, n, m, ldk, dst, s); break;
    case CLV_TYPE_Q3_K: launch_decode<CLV_TYPE_Q3_K, clv_block_q3_k, CLV_QK_K>(w, rb, n, m, ldk, dst, s); break;
    case CLV_TYPE_Q4_K:
        decode_panel_q4_k_kernel<<<grid_for(m * (n / ELEMS_PER_THREAD)), THREADS, 0, s>>>((const uint8_t *)w, rb, n, m,
                                                                                          (float4 *)dst);
        break;
    case CLV_TYPE_Q5_K: launch_decode<CLV_TYPE_Q5_K, clv_block_q5_k, CLV_QK_K>(w, rb, n, m, ldk, dst, s); break;
    case CLV_TYPE_Q6_K: launch_decode<CLV_TYPE_Q6_K, clv_block_q6_k, CLV_QK_K>(w, rb, n, m, ldk, dst, s); break;
    case CLV_TYPE_Q8_K: launch_decode<CLV_TYPE_Q8_K, clv_block_q8_k, CLV_QK_K>(w, rb, n, m, ldk, dst, s); break;
    case CLV_TYPE_IQ4_XS: launch_decode<CLV_TYPE_IQ4_XS, clv_block_iq4_xs, CLV_QK_K>(w, rb, n, m, ldk, dst, s); break;
    default: CLV_ASSERT(!"type listed in clv_type_can_dequantize without a CUDA decoder");
    }
}

/* Bytes of the part of the workspace before the panel, or 0 on overflow. */
static size_t fixed_bytes(int64_t ldk, int64_t n_tokens) {
    if ((uint64_t)n_tokens > SIZE_MAX / ELEM_BYTES / (uint64_t)ldk) return 0;
    size_t x16 = (size_t)n_tokens * (size_t)ldk * ELEM_BYTES;
    if (x16 > SIZE_MAX - CUBLAS_SCRATCH_BYTES - 256) return 0;
    return CUBLAS_SCRATCH_BYTES + align256(x16);
}

extern "C" size_t clv_cuda_matmul_workspace_bytes(int64_t n_in, int64_t n_rows, int64_t n_tokens) {
    if (n_in < 1 || n_rows < 0 || n_tokens < 1 || n_in > INT_MAX - 8) return 0;
    int64_t ldk = padded_width(n_in);
    size_t fixed = fixed_bytes(ldk, n_tokens);
    if (fixed == 0) return 0;
    size_t row16 = (size_t)ldk * ELEM_BYTES;
    int64_t rows = (int64_t)(PANEL_TARGET_BYTES / row16);
    if (rows < PANEL_MIN_ROWS) rows = PANEL_MIN_ROWS;
    rows = (rows + PANEL_ROW_MULTIPLE - 1) / PANEL_ROW_MULTIPLE * PANEL_ROW_MULTIPLE;
    if (rows > n_rows) rows = n_rows;
    if ((uint64_t)rows > (SIZE_MAX - fixed) / row16) return 0;
    return fixed + (size_t)rows * row16;
}

static const char *blas_error(cublasStatus_t st) { return cublasGetStatusString(st); }

extern "C" clv_status clv_cuda_matmul_create(void *stream, clv_cuda_matmul_handle **out) {
    *out = NULL;
    clv_cuda_matmul_handle *h = (clv_cuda_matmul_handle *)calloc(1, sizeof *h);
    if (!h) return clv_fail(CLV_ERR_NOMEM, "CUDA matmul: out of host memory for the cuBLAS handle");
    cublasStatus_t st = cublasCreate(&h->blas);
    if (st != CUBLAS_STATUS_SUCCESS) {
        free(h);
        return clv_fail(CLV_ERR_DEVICE, "CUDA matmul: cublasCreate failed: %s", blas_error(st));
    }
    h->stream = (cudaStream_t)stream;
    st = cublasSetStream(h->blas, h->stream);
    if (st != CUBLAS_STATUS_SUCCESS) {
        cublasDestroy(h->blas);
        free(h);
        return clv_fail(CLV_ERR_DEVICE, "CUDA matmul: cublasSetStream failed: %s", blas_error(st));
    }
    *out = h;
    return CLV_OK;
}

extern "C" void clv_cuda_matmul_free(clv_cuda_matmul_handle *h) {
    if (!h) return;
    cublasDestroy(h->blas);
    free(h);
}

extern "C" clv_status clv_cuda_matmul(clv_cuda_matmul_handle *h, int32_t type, const void *w_dev, size_t row_bytes,
                                      int64_t n_in, int64_t n_rows, const float *x_dev, int64_t ldx,
                                      int64_t n_tokens, float *y_dev, int64_t ldy, void *workspace_dev,
                                      size_t workspace_bytes) {
    if (!clv_type_can_dequantize(type)) {
        return clv_fail(CLV_ERR_UNSUPPORTED, "CUDA matmul: type %s (%d) is not supported", clv_type_name(type),
                        (int)type);
    }
    if (!h) return clv_fail(CLV_ERR_ARG, "CUDA matmul: no cuBLAS handle (clv_cuda_matmul_create)");
    uint64_t need = 0;
    int64_t block = clv_type_get(type)->block_elems;
    if (n_in <= 0 || n_in > INT_MAX - 8 || n_rows < 0 || n_in % block != 0 || !clv_type_bytes(type, n_in, &need) ||
        need > row_bytes) {
        return clv_fail(CLV_ERR_ARG, "CUDA matmul: %lld x %lld of %s with rows of %zu bytes", (long long)n_rows,
                        (long long)n_in, clv_type_name(type), row_bytes);
    }
    if (n_tokens <= 0 || n_tokens > INT_MAX || ldx < n_in || ldy < n_rows || ldy < 1 || ldy > INT_MAX) {
        return clv_fail(CLV_ERR_ARG,
                        "CUDA matmul: %lld tokens with strides ldx %lld (n_in %lld), ldy %lld (n_rows %lld): "
                        "need 1 <= tokens <= INT_MAX, ldx >= n_in, n_rows <= ldy <= INT_MAX",
                        (long long)n_tokens, (long long)ldx, (long long)n_in, (long long)ldy, (long long)n_rows);
    }
    if (!w_dev || !x_dev || !y_dev || !workspace_dev) {
        const char *what = !w_dev ? "weights" : !x_dev ? "x" : !y_dev ? "y" : "workspace";
        return clv_fail(CLV_ERR_ARG, "CUDA matmul: the %s pointer is NULL", what);
    }
    if ((uintptr_t)workspace_dev % 256 != 0 || (uintptr_t)x_dev % sizeof(float) != 0 ||
        (uintptr_t)y_dev % sizeof(float) != 0) {
        return clv_fail(CLV_ERR_ARG, "CUDA matmul: misaligned pointer (workspace needs 256 bytes, x and y 4)");
    }
    int64_t ldk = padded_width(n_in);
    size_t fixed = fixed_bytes(ldk, n_tokens);
    size_t row16 = (size_t)ldk * ELEM_BYTES;
    int64_t least_rows = n_rows < PANEL_ROW_MULTIPLE ? n_rows : PANEL_ROW_MULTIPLE;
    if (fixed == 0 || workspace_bytes < fixed || (workspace_bytes - fixed) / row16 < (size_t)least_rows) {
        return clv_fail(CLV_ERR_ARG,
                        "CUDA matmul: workspace of %zu bytes is too small: %lld tokens of width %lld need at least %zu",
                        workspace_bytes, (long long)n_tokens, (long long)n_in,
                        clv_cuda_matmul_workspace_bytes(n_in, least_rows, n_tokens));
    }
    if (n_rows == 0) return CLV_OK;
    int64_t panel_rows = (int64_t)((workspace_bytes - fixed) / row16 > (size_t)n_rows
                                       ? (size_t)n_rows
                                       : (workspace_bytes - fixed) / row16);
    if (panel_rows < n_rows) panel_rows -= panel_rows % PANEL_ROW_MULTIPLE;

    uint8_t *ws = (uint8_t *)workspace_dev;
    void *x16 = ws + CUBLAS_SCRATCH_BYTES;
    void *w16 = ws + fixed;
    /* Set per call: cublasSetStream resets it, and the buffer is the caller's. */
    cublasStatus_t st = cublasSetWorkspace(h->blas, ws, CUBLAS_SCRATCH_BYTES);
    if (st != CUBLAS_STATUS_SUCCESS) {
        return clv_fail(CLV_ERR_DEVICE, "CUDA matmul: cublasSetWorkspace failed: %s", blas_error(st));
    }
    convert_x_kernel<<<grid_for(n_tokens * (ldk / ELEMS_PER_THREAD)), THREADS, 0, h->stream>>>(
        x_dev, ldx, n_in, n_tokens, ldk, (float4 *)x16);
    cudaError_t err = cudaGetLastError();
    if (err != cudaSuccess) {
        return clv_fail(CLV_ERR_DEVICE, "CUDA matmul: converting x: launch failed: %s", cudaGetErrorString(err));
    }
    const float one = 1.0f, zero = 0.0f;
    for (int64_t r0 = 0; r0 < n_rows; r0 += panel_rows) {
        int64_t pr = n_rows - r0 < panel_rows ? n_rows - r0 : panel_rows;
        decode_panel(type, (const uint8_t *)w_dev + (size_t)r0 * row_bytes, row_bytes, n_in, pr, ldk, w16,
                     h->stream);
        err = cudaGetLastError();
        if (err != cudaSuccess) {
            return clv_fail(CLV_ERR_DEVICE, "CUDA matmul %s: decoding rows %lld..%lld: launch failed: %s",
                            clv_type_name(type), (long long)r0, (long long)(r0 + pr - 1), cudaGetErrorString(err));
        }
        st = cublasGemmEx(h->blas, CUBLAS_OP_T, CUBLAS_OP_N, (int)pr, (int)n_tokens, (int)n_in, &one, w16,
                          CUDA_R_32F, (int)ldk, x16, CUDA_R_32F, (int)ldk, &zero, y_dev + r0, CUDA_R_32F, (int)ldy,
                          CUBLAS_COMPUTE_32F_FAST_TF32, CUBLAS_GEMM_DEFAULT);
        if (st != CUBLAS_STATUS_SUCCESS) {
            return clv_fail(CLV_ERR_DEVICE, "CUDA matmul %s: GEMM of rows %lld..%lld x %lld tokens failed: %s",
                            clv_type_name(type), (long long)r0, (long long)(r0 + pr - 1), (long long)n_tokens,
                            blas_error(st));
        }
    }
    return CLV_OK;
}
