/* Matrix-vector product for decode: one warp per weight row. Lane l takes
 * elements l, l + 32, ... so that a warp reads a row front to back (the 32
 * elements of a small block, or 32 consecutive elements of a 256-element one,
 * at a time), decodes them with the reference's decoders and multiplies with
 * float activations; the warp sums its lanes with shuffles. A first, generic
 * kernel for every type: per-type kernels that decode whole blocks with wide
 * loads are the speed work that follows. */
#include <cuda_runtime.h>

#include "cuda_matvec.h"
#include "decode.cuh"

#define ROWS_PER_BLOCK 8

template <int TYPE, int ELEMS, int BYTES>
__global__ static void matvec_kernel(const uint8_t *w, size_t row_bytes, int64_t n_in, int64_t n_rows,
                                     const float *__restrict__ x, float *__restrict__ y) {
    int lane = threadIdx.x & 31;
    int64_t r = (int64_t)blockIdx.x * ROWS_PER_BLOCK + (threadIdx.x >> 5);
    if (r >= n_rows) return;
    const uint8_t *row = w + (size_t)r * row_bytes;
    float acc = 0.0f;
    for (int64_t i = lane; i < n_in; i += 32) {
        acc = fmaf(decode<TYPE>(row + (i / ELEMS) * BYTES, (int)(i % ELEMS)), __ldg(x + i), acc);
    }
    for (int o = 16; o > 0; o >>= 1) acc += __shfl_down_sync(0xffffffffu, acc, o);
    if (lane == 0) y[r] = acc;
}

template <int TYPE, typename BLOCK, int ELEMS>
static void launch(const void *w, size_t row_bytes, int64_t n_in, int64_t n_rows, const float *x, float *y,
                   cudaStream_t stream) {
    int64_t blocks = (n_rows + ROWS_PER_BLOCK - 1) / ROWS_PER_BLOCK;
    matvec_kernel<TYPE, ELEMS, (int)sizeof(BLOCK)>
        <<<(unsigned)blocks, ROWS_PER_BLOCK * 32, 0, stream>>>((const uint8_t *)w, row_bytes, n_in, n_rows, x, y);
}

extern "C" clv_status clv_cuda_matvec(int32_t type, const void *w_dev, size_t row_bytes, int64_t n_in,
                                      int64_t n_rows, const float *x_dev, float *y_dev, void *stream) {
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
    if (n_rows == 0) return CLV_OK;
    if (n_rows > (int64_t)ROWS_PER_BLOCK * 0x7fffffff) {
        return clv_fail(CLV_ERR_ARG, "CUDA matvec: %lld rows is too many for one launch", (long long)n_rows);
    }
    cudaStream_t s = (cudaStream_t)stream;
    const void *w = w_dev;
    size_t rb = row_bytes;
    int64_t n = n_in, m = n_rows;
    const float *x = x_dev;
    float *y = y_dev;
    switch (type) {
    case CLV_TYPE_F32: launch<CLV_TYPE_F32, float, 1>(w, rb, n, m, x, y, s); break;
    case CLV_TYPE_F16: launch<CLV_TYPE_F16, clv_fp16, 1>(w, rb, n, m, x, y, s); break;
    case CLV_TYPE_BF16: launch<CLV_TYPE_BF16, clv_bf16, 1>(w, rb, n, m, x, y, s); break;
    case CLV_TYPE_Q4_0: launch<CLV_TYPE_Q4_0, clv_block_q4_0, CLV_QK>(w, rb, n, m, x, y, s); break;
    case CLV_TYPE_Q4_1: launch<CLV_TYPE_Q4_1, clv_block_q4_1, CLV_QK>(w, rb, n, m, x, y, s); break;
    case CLV_TYPE_Q5_0: launch<CLV_TYPE_Q5_0, clv_block_q5_0, CLV_QK>(w, rb, n, m, x, y, s); break;
    case CLV_TYPE_Q5_1: launch<CLV_TYPE_Q5_1, clv_block_q5_1, CLV_QK>(w, rb, n, m, x, y, s); break;
    case CLV_TYPE_Q8_0: launch<CLV_TYPE_Q8_0, clv_block_q8_0, CLV_QK>(w, rb, n, m, x, y, s); break;
    case CLV_TYPE_Q8_1: launch<CLV_TYPE_Q8_1, clv_block_q8_1, CLV_QK>(w, rb, n, m, x, y, s); break;
    case CLV_TYPE_IQ4_NL: launch<CLV_TYPE_IQ4_NL, clv_block_iq4_nl, CLV_QK>(w, rb, n, m, x, y, s); break;
    case CLV_TYPE_MXFP4: launch<CLV_TYPE_MXFP4, clv_block_mxfp4, CLV_QK>(w, rb, n, m, x, y, s); break;
    case CLV_TYPE_Q2_K: launch<CLV_TYPE_Q2_K, clv_block_q2_k, CLV_QK_K>(w, rb, n, m, x, y, s); break;
    case CLV_TYPE_Q3_K: launch<CLV_TYPE_Q3_K, clv_block_q3_k, CLV_QK_K>(w, rb, n, m, x, y, s); break;
    case CLV_TYPE_Q4_K: launch<CLV_TYPE_Q4_K, clv_block_q4_k, CLV_QK_K>(w, rb, n, m, x, y, s); break;
    case CLV_TYPE_Q5_K: launch<CLV_TYPE_Q5_K, clv_block_q5_k, CLV_QK_K>(w, rb, n, m, x, y, s); break;
    case CLV_TYPE_Q6_K: launch<CLV_TYPE_Q6_K, clv_block_q6_k, CLV_QK_K>(w, rb, n, m, x, y, s); break;
    case CLV_TYPE_Q8_K: launch<CLV_TYPE_Q8_K, clv_block_q8_k, CLV_QK_K>(w, rb, n, m, x, y, s); break;
    case CLV_TYPE_IQ4_XS: launch<CLV_TYPE_IQ4_XS, clv_block_iq4_xs, CLV_QK_K>(w, rb, n, m, x, y, s); break;
    default: CLV_ASSERT(!"type listed in clv_type_can_dequantize without a CUDA decoder");
    }
    cudaError_t err = cudaGetLastError();
    if (err != cudaSuccess) {
        return clv_fail(CLV_ERR_DEVICE, "CUDA matvec %s: launch failed: %s", clv_type_name(type),
                        cudaGetErrorString(err));
    }
    return CLV_OK;
}
