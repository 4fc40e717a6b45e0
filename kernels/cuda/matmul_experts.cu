/* Routed experts of a prompt batch in one launch (cuda_matmul.h,
 * clv_cuda_matmul_experts): the batch's rows are grouped by expert, and
 * each block multiplies a tile of 32 rows of one expert's group by 64 rows
 * of that expert's matrix on the tensor cores (TF32, FP32 accumulation).
 *
 * Per step of 32 inputs the block decodes its 64 x 32 weight tile into
 * shared memory with the reference's decoders (decode.cuh) and copies the
 * 32 x 32 activation tile beside it; each of its eight warps multiplies one
 * 16 x 16 piece of the output with WMMA (m16n16k8). Weights are decoded
 * once per 32 rows of their expert, where one cuBLAS call per expert over a
 * decoded float copy cost a decode, a copy and two launches per expert and
 * matrix (384 calls per layer of a 128-expert model). */
#include <stdint.h>

#include <cuda_runtime.h>
#include <mma.h>

#include "cuda_matmul.h"
#include "decode.cuh"

#define BM 64 /* weight rows (outputs) per block */
#define BN CLV_CUDA_EXPERT_TILE_ROWS /* batch rows per block */
#define BK 32 /* inputs per step */
#define LDS (BK + 4) /* shared row stride in floats: a multiple of 4 for WMMA, off the banks' period */
#define THREADS 256

static_assert(BN == 32, "the warp layout below covers 32 batch rows");

namespace {

struct experts_args {
    const uint8_t *w;
    size_t row_bytes, expert_bytes;
    int64_t n_in, n_out, n_expert;
    const clv_cuda_expert_tile *tiles;
    const float *x;
    int64_t ldx;
    float *y;
    int64_t ldy;
};

/* Grid: x = block of BM outputs, y = tile. */
template <int TYPE, int ELEMS, int BYTES> __global__ void __launch_bounds__(THREADS) experts_kernel(experts_args a) {
#if __CUDA_ARCH__ >= 800
    using namespace nvcuda;
    __shared__ __align__(32) float ws[BM * LDS];
    __shared__ __align__(32) float xs[BN * LDS];
    __shared__ __align__(32) float cs[8][16 * 16];
    const clv_cuda_expert_tile tile = a.tiles[blockIdx.y];
    const int64_t m0 = (int64_t)blockIdx.x * BM;
    if (tile.expert < 0 || tile.expert >= a.n_expert) { /* a bug upstream: NaN, not a stray read */
        for (int i = threadIdx.x; i < BM * BN; i += THREADS) {
            int64_t r = m0 + i % BM, t = i / BM;
            if (r < a.n_out && t < tile.n_rows) a.y[(tile.row0 + t) * a.ldy + r] = __int_as_float(0x7fc00000);
        }
        return;
    }
    const uint8_t *w = a.w + (size_t)tile.expert * a.expert_bytes;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int wm = warp & 3, wn = warp >> 2; /* the warp's 16 x 16 piece: outputs 16 wm.., rows 16 wn.. */
    wmma::fragment<wmma::accumulator, 16, 16, 8, float> acc;
    wmma::fill_fragment(acc, 0.0f);
    /* Each thread decodes 8 consecutive inputs of one weight row and copies 4 of one batch row. */
    const int wr = threadIdx.x >> 2, wk = (threadIdx.x & 3) * 8;
    const int xr = threadIdx.x >> 3, xk = (threadIdx.x & 7) * 4;
    const bool w_live = m0 + wr < a.n_out, x_live = xr < tile.n_rows;
    const uint8_t *wrow = w + (size_t)(w_live ? m0 + wr : 0) * a.row_bytes;
    const float *xrow = a.x + (size_t)(tile.row0 + (x_live ? xr : 0)) * (size_t)a.ldx;
    for (int64_t k0 = 0; k0 < a.n_in; k0 += BK) {
#pragma unroll
        for (int e = 0; e < 8; e++) {
            int64_t i = k0 + wk + e;
            ws[wr * LDS + wk + e] = w_live ? decode<TYPE>(wrow + (size_t)(i / ELEMS) * BYTES, (int)(i % ELEMS)) : 0.0f;
        }
#pragma unroll
        for (int e = 0; e < 4; e++) xs[xr * LDS + xk + e] = x_live ? __ldg(xrow + k0 + xk + e) : 0.0f;
        __syncthreads();
#pragma unroll
        for (int kk = 0; kk < BK; kk += 8) {
            wmma::fragment<wmma::matrix_a, 16, 16, 8, wmma::precision::tf32, wmma::row_major> fa;
            wmma::fragment<wmma::matrix_b, 16, 16, 8, wmma::precision::tf32, wmma::col_major> fb;
            wmma::load_matrix_sync(fa, ws + (16 * wm) * LDS + kk, LDS);
            wmma::load_matrix_sync(fb, xs + (16 * wn) * LDS + kk, LDS);
#pragma unroll
            for (int i = 0; i < fa.num_elements; i++) fa.x[i] = wmma::__float_to_tf32(fa.x[i]);
#pragma unroll
            for (int i = 0; i < fb.num_elements; i++) fb.x[i] = wmma::__float_to_tf32(fb.x[i]);
            wmma::mma_sync(acc, fa, fb, acc);
        }
        __syncthreads();
    }
    /* (output i, row j) of the piece at cs[j * 16 + i]: writes along outputs. */
    wmma::store_matrix_sync(cs[warp], acc, 16, wmma::mem_col_major);
    __syncwarp();
    for (int i = lane; i < 256; i += 32) {
        int64_t r = m0 + 16 * wm + (i & 15), t = 16 * wn + (i >> 4);
        if (r < a.n_out && t < tile.n_rows) a.y[(tile.row0 + t) * a.ldy + r] = cs[warp][i];
    }
#endif
}

template <int TYPE, typename BLOCK, int ELEMS>
void launch(const experts_args &a, int64_t n_tiles, cudaStream_t s) {
    dim3 grid((unsigned)((a.n_out + BM - 1) / BM), (unsigned)n_tiles);
    experts_kernel<TYPE, ELEMS, (int)sizeof(BLOCK)><<<grid, THREADS, 0, s>>>(a);
}

/* Tensor-core TF32 needs compute capability 8.0; asked once per process. */
bool device_has_tf32(void) {
    static const int ok = [] {
        int dev = 0, major = 0;
        if (cudaGetDevice(&dev) != cudaSuccess ||
            cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) != cudaSuccess) {
            (void)cudaGetLastError();
            return 0;
        }
        return major >= 8 ? 1 : 0;
    }();
    return ok != 0;
}

} // namespace

extern "C" clv_status clv_cuda_matmul_experts(int32_t type, const void *w_dev, size_t row_bytes, int64_t n_in,
                                              int64_t n_out, int64_t n_expert, const clv_cuda_expert_tile *tiles_dev,
                                              int64_t n_tiles, const float *x_dev, int64_t ldx, float *y_dev,
                                              int64_t ldy, void *stream) {
    if (!clv_type_can_dequantize(type)) {
        return clv_fail(CLV_ERR_UNSUPPORTED, "CUDA expert matmul: type %s (%d) is not supported", clv_type_name(type),
                        (int)type);
    }
    uint64_t need = 0;
    if (n_in <= 0 || n_in % BK != 0 || n_in % clv_type_get(type)->block_elems != 0 || n_out < 0 || n_expert < 1 ||
        !clv_type_bytes(type, n_in, &need) || need > row_bytes || ldx < n_in || ldy < n_out || n_tiles < 0 ||
        n_tiles > 65535 || (n_tiles > 0 && (!tiles_dev || !x_dev || !y_dev || !w_dev))) {
        return clv_fail(CLV_ERR_ARG,
                        "CUDA expert matmul: %lld x %lld of %s (rows of %zu bytes), %lld experts, %lld tiles, "
                        "strides %lld and %lld",
                        (long long)n_out, (long long)n_in, clv_type_name(type), row_bytes, (long long)n_expert,
                        (long long)n_tiles, (long long)ldx, (long long)ldy);
    }
    if (n_tiles == 0 || n_out == 0) return CLV_OK;
    if (!device_has_tf32()) {
        return clv_fail(CLV_ERR_UNSUPPORTED, "CUDA expert matmul: the device has no TF32 tensor cores (compute 8.0+)");
    }
    experts_args a = {(const uint8_t *)w_dev, row_bytes, row_bytes * (size_t)n_out, n_in, n_out, n_expert, tiles_dev,
                      x_dev, ldx, y_dev, ldy};
    cudaStream_t s = (cudaStream_t)stream;
    switch (type) {
#define LAUNCH(TYPE, BLOCK, ELEMS)                                                                                 \
    case TYPE: launch<TYPE, BLOCK, ELEMS>(a, n_tiles, s); break;
        CLV_CUDA_DECODED_TYPES(LAUNCH)
#undef LAUNCH
    default: CLV_ASSERT(!"type listed in clv_type_can_dequantize without a CUDA decoder");
    }
    cudaError_t err = cudaGetLastError();
    if (err != cudaSuccess) {
        return clv_fail(CLV_ERR_DEVICE, "CUDA expert matmul %s: launch failed: %s", clv_type_name(type),
                        cudaGetErrorString(err));
    }
    return CLV_OK;
}
