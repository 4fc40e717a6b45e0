/* Embedding lookup: rows of a weight matrix picked by id and decoded to
 * float with the reference's decoders (decode.cuh, bit-exact), then scaled
 * (Gemma multiplies by sqrt(n_embd)). Grid x: one id each; grid y and the
 * threads: the row's elements, each thread decoding the elements it writes,
 * so that consecutive threads write consecutive floats. */
#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include <cuda_runtime.h>

#include "cuda_ops.h"
#include "decode.cuh"
#include "ops_common.cuh"

#define GET_ROWS_THREADS 256

template <int TYPE, int ELEMS, int BYTES>
__global__ static void get_rows_kernel(const uint8_t *w, size_t row_bytes, int64_t n_cols, int64_t n_rows,
                                       const int32_t *ids, float *dst, float scale) {
    const int64_t t = blockIdx.x;
    const int32_t id = ids[t];
    float *y = dst + t * n_cols;
    const int64_t stride = (int64_t)gridDim.y * blockDim.x;
    int64_t i0 = (int64_t)blockIdx.y * blockDim.x + threadIdx.x;
    if (id < 0 || id >= n_rows) {
        for (int64_t i = i0; i < n_cols; i += stride) y[i] = __int_as_float(0x7fc00000); /* NaN */
        return;
    }
    const uint8_t *row = w + (size_t)id * row_bytes;
    for (int64_t i = i0; i < n_cols; i += stride) {
        float v = decode<TYPE>(row + (i / ELEMS) * BYTES, (int)(i % ELEMS));
        /* The CPU skips the multiply for scale 1; multiplying by 1 changes no bits anyway. */
        y[i] = __fmul_rn(v, scale);
    }
}

template <int TYPE, typename BLOCK, int ELEMS>
static void launch(const void *w, size_t row_bytes, int64_t n_cols, int64_t n_rows, const int32_t *ids,
                   int64_t n_ids, float *dst, float scale, cudaStream_t stream) {
    int64_t chunks = (n_cols + GET_ROWS_THREADS - 1) / GET_ROWS_THREADS;
    dim3 grid((unsigned)n_ids, (unsigned)(chunks > 65535 ? 65535 : chunks)); /* the loop covers the rest */
    get_rows_kernel<TYPE, ELEMS, (int)sizeof(BLOCK)>
        <<<grid, GET_ROWS_THREADS, 0, stream>>>((const uint8_t *)w, row_bytes, n_cols, n_rows, ids, dst, scale);
}

extern "C" clv_status clv_cuda_get_rows(int32_t type, const void *w, size_t row_bytes, int64_t n_cols,
                                        int64_t n_rows, const int32_t *ids, int64_t n_ids, float *dst, float scale,
                                        void *stream) {
    if (!clv_type_can_dequantize(type)) {
        return clv_fail(CLV_ERR_UNSUPPORTED, "CUDA get_rows: type %s (%d) is not supported", clv_type_name(type),
                        (int)type);
    }
    uint64_t need = 0;
    int64_t block = clv_type_get(type)->block_elems;
    if (n_cols <= 0 || n_cols % block != 0 || !clv_type_bytes(type, n_cols, &need) || need > row_bytes ||
        n_rows < 0 || n_ids < 0 || n_ids > INT32_MAX || (n_ids > 0 && (!w || !ids || !dst))) {
        return clv_fail(CLV_ERR_ARG, "CUDA get_rows: %lld ids of %lld x %lld of %s with rows of %zu bytes",
                        (long long)n_ids, (long long)n_rows, (long long)n_cols, clv_type_name(type), row_bytes);
    }
    if (n_ids == 0) return CLV_OK;
    cudaStream_t s = (cudaStream_t)stream;
    const size_t rb = row_bytes;
    const int64_t n = n_cols, m = n_rows, t = n_ids;
    switch (type) {
    case CLV_TYPE_F32: launch<CLV_TYPE_F32, float, 1>(w, rb, n, m, ids, t, dst, scale, s); break;
    case CLV_TYPE_F16: launch<CLV_TYPE_F16, clv_fp16, 1>(w, rb, n, m, ids, t, dst, scale, s); break;
    case CLV_TYPE_BF16: launch<CLV_TYPE_BF16, clv_bf16, 1>(w, rb, n, m, ids, t, dst, scale, s); break;
    case CLV_TYPE_Q4_0: launch<CLV_TYPE_Q4_0, clv_block_q4_0, CLV_QK>(w, rb, n, m, ids, t, dst, scale, s); break;
    case CLV_TYPE_Q4_1: launch<CLV_TYPE_Q4_1, clv_block_q4_1, CLV_QK>(w, rb, n, m, ids, t, dst, scale, s); break;
    case CLV_TYPE_Q5_0: launch<CLV_TYPE_Q5_0, clv_block_q5_0, CLV_QK>(w, rb, n, m, ids, t, dst, scale, s); break;
    case CLV_TYPE_Q5_1: launch<CLV_TYPE_Q5_1, clv_block_q5_1, CLV_QK>(w, rb, n, m, ids, t, dst, scale, s); break;
    case CLV_TYPE_Q8_0: launch<CLV_TYPE_Q8_0, clv_block_q8_0, CLV_QK>(w, rb, n, m, ids, t, dst, scale, s); break;
    case CLV_TYPE_Q8_1: launch<CLV_TYPE_Q8_1, clv_block_q8_1, CLV_QK>(w, rb, n, m, ids, t, dst, scale, s); break;
    case CLV_TYPE_IQ4_NL:
        launch<CLV_TYPE_IQ4_NL, clv_block_iq4_nl, CLV_QK>(w, rb, n, m, ids, t, dst, scale, s);
        break;
    case CLV_TYPE_MXFP4: launch<CLV_TYPE_MXFP4, clv_block_mxfp4, CLV_QK>(w, rb, n, m, ids, t, dst, scale, s); break;
    case CLV_TYPE_Q2_K: launch<CLV_TYPE_Q2_K, clv_block_q2_k, CLV_QK_K>(w, rb, n, m, ids, t, dst, scale, s); break;
    case CLV_TYPE_Q3_K: launch<CLV_TYPE_Q3_K, clv_block_q3_k, CLV_QK_K>(w, rb, n, m, ids, t, dst, scale, s); break;
    case CLV_TYPE_Q4_K: launch<CLV_TYPE_Q4_K, clv_block_q4_k, CLV_QK_K>(w, rb, n, m, ids, t, dst, scale, s); break;
    case CLV_TYPE_Q5_K: launch<CLV_TYPE_Q5_K, clv_block_q5_k, CLV_QK_K>(w, rb, n, m, ids, t, dst, scale, s); break;
    case CLV_TYPE_Q6_K: launch<CLV_TYPE_Q6_K, clv_block_q6_k, CLV_QK_K>(w, rb, n, m, ids, t, dst, scale, s); break;
    case CLV_TYPE_Q8_K: launch<CLV_TYPE_Q8_K, clv_block_q8_k, CLV_QK_K>(w, rb, n, m, ids, t, dst, scale, s); break;
    case CLV_TYPE_IQ4_XS:
        launch<CLV_TYPE_IQ4_XS, clv_block_iq4_xs, CLV_QK_K>(w, rb, n, m, ids, t, dst, scale, s);
        break;
    default: CLV_ASSERT(!"type listed in clv_type_can_dequantize without a CUDA decoder");
    }
    return launch_status("get_rows");
}
