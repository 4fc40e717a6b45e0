/* Routed experts of a prompt batch in one launch (cuda_matmul.h,
 * clv_cuda_matmul_experts): the batch's rows are grouped by expert, and
 * each block multiplies a tile of 32 rows of one expert's group by 128 rows
 * of that expert's matrix on the tensor cores (TF32, FP32 accumulation).
 *
 * Per step of 32 inputs each thread decodes 16 consecutive weights of one
 * row with the reference's operations (decode.cuh) and copies 4 inputs of
 * one batch row, both rounded to TF32, into shared memory; each of the
 * eight warps multiplies a 32 x 16 piece of the output with WMMA
 * (m16n16k8). The shared tiles are double-buffered and the bytes of step
 * k + 1 are loaded before step k's products, so one barrier per step
 * suffices and the loads' latency hides behind the tensor cores. Weights
 * are decoded once per 32 rows of their expert. */
#include <stdint.h>

#include <cuda_runtime.h>
#include <mma.h>

#include "cuda_matmul.h"
#include "decode.cuh"

#define BM 128 /* weight rows (outputs) per block */
#define BN CLV_CUDA_EXPERT_TILE_ROWS /* batch rows per block */
#define BK 32 /* inputs per step */
#define LDS (BK + 4) /* shared row stride in floats: a multiple of 4 for WMMA, off the banks' period */
#define LDC (BM + 4) /* the same for the output staging */
#define THREADS 256
#define STAGE ((BM + BN) * LDS) /* floats of one buffer: weights, then inputs */

static_assert(BN == 32 && BM == 128 && BK == 32, "the thread and warp layouts below assume these");
static_assert(BN * LDC <= 2 * STAGE, "the output staging reuses the tiles' memory");

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

/* Sixteen consecutive weights k .. k + 15 of one row (k a multiple of 16,
 * so they share a block, and in K-quants a sub-block): load() fetches their
 * bytes into registers, to_float() decodes them exactly as decode<> does.
 * run16_any is every type's path (element by element, bytes read at
 * to_float); the others read each byte once, with vector loads where the
 * blocks' alignment allows. */
template <int TYPE, int ELEMS, int BYTES> struct run16_any {
    const uint8_t *row;
    int64_t k;
    __device__ void load(const uint8_t *r, int64_t k0) { row = r, k = k0; }
    __device__ void to_float(float (&v)[16]) const {
#pragma unroll
        for (int e = 0; e < 16; e++) {
            int64_t i = k + e;
            v[e] = decode<TYPE>(row + (size_t)(i / ELEMS) * BYTES, (int)(i % ELEMS));
        }
    }
};

/* Two-byte loads of 16 bytes at p (2-byte aligned) as four words. */
__device__ static inline void ld16_u16(const uint8_t *p, uint32_t (&w)[4]) {
    const uint16_t *h = (const uint16_t *)(const void *)p;
#pragma unroll
    for (int n = 0; n < 4; n++) w[n] = (uint32_t)__ldg(h + 2 * n) | (uint32_t)__ldg(h + 2 * n + 1) << 16;
}

/* Q4_K, blocks 16-byte aligned: the header and one 16-byte run of quants. */
struct run16_q4_k {
    static_assert(offsetof(clv_block_q4_k, qs) == 16, "Q4_K header is d, dmin, 12 scale bytes");
    uint4 h, q;
    int j; /* sub-block */
    __device__ void load(const uint8_t *r, int64_t k0) {
        const uint8_t *b = r + (size_t)(k0 / CLV_QK_K) * sizeof(clv_block_q4_k);
        int i = (int)(k0 % CLV_QK_K);
        j = i / 32;
        h = __ldg((const uint4 *)(const void *)b);
        q = __ldg((const uint4 *)(const void *)(b + offsetof(clv_block_q4_k, qs)) + 2 * (j / 2) + i % 32 / 16);
    }
    __device__ void to_float(float (&v)[16]) const {
        float d = clv_fp16_to_fp32((clv_fp16)(h.x & 0xFFFF)), dmin = clv_fp16_to_fp32((clv_fp16)(h.x >> 16));
        int sc, m;
        q4_k_scale_min(h, j, &sc, &m);
        float ds = __fmul_rn(d, (float)sc), dm = __fmul_rn(dmin, (float)m);
        const uint32_t w[4] = {q.x, q.y, q.z, q.w};
        const int shift = (j & 1) * 4; /* odd sub-blocks are the high nibbles */
#pragma unroll
        for (int e = 0; e < 16; e++) v[e] = __fsub_rn(__fmul_rn(ds, (float)(w[e / 4] >> (8 * (e % 4) + shift) & 0xF)), dm);
    }
};

/* Q5_K, blocks 16-byte aligned: the header, 16 bytes of high bits and 16 of quants. */
struct run16_q5_k {
    static_assert(offsetof(clv_block_q5_k, qh) == 16 && offsetof(clv_block_q5_k, qs) == 48,
                  "Q5_K layout is d, dmin, scales, qh, qs");
    uint4 h, qh, q;
    int j;
    __device__ void load(const uint8_t *r, int64_t k0) {
        const uint8_t *b = r + (size_t)(k0 / CLV_QK_K) * sizeof(clv_block_q5_k);
        int i = (int)(k0 % CLV_QK_K);
        j = i / 32;
        h = __ldg((const uint4 *)(const void *)b);
        qh = __ldg((const uint4 *)(const void *)(b + offsetof(clv_block_q5_k, qh)) + i % 32 / 16);
        q = __ldg((const uint4 *)(const void *)(b + offsetof(clv_block_q5_k, qs)) + 2 * (j / 2) + i % 32 / 16);
    }
    __device__ void to_float(float (&v)[16]) const {
        float d = clv_fp16_to_fp32((clv_fp16)(h.x & 0xFFFF)), dmin = clv_fp16_to_fp32((clv_fp16)(h.x >> 16));
        int sc, m;
        q4_k_scale_min(h, j, &sc, &m);
        float ds = __fmul_rn(d, (float)sc), dm = __fmul_rn(dmin, (float)m);
        const uint32_t w[4] = {q.x, q.y, q.z, q.w}, hb[4] = {qh.x, qh.y, qh.z, qh.w};
        const int shift = (j & 1) * 4;
#pragma unroll
        for (int e = 0; e < 16; e++) {
            uint32_t lo = w[e / 4] >> (8 * (e % 4) + shift) & 0xF, hi = hb[e / 4] >> (8 * (e % 4) + j) & 1;
            v[e] = __fsub_rn(__fmul_rn(ds, (float)(lo | hi << 4)), dm);
        }
    }
};

/* Q6_K, blocks 2-byte aligned (210-byte blocks are no more). */
struct run16_q6_k {
    static_assert(offsetof(clv_block_q6_k, qh) == 128 && offsetof(clv_block_q6_k, scales) == 192 &&
                      offsetof(clv_block_q6_k, d) == 208,
                  "Q6_K layout is ql, qh, scales, d");
    uint32_t ql[4], qh[4];
    int sc, g; /* scale; which 32-element run of the half (0..3) */
    uint32_t d;
    __device__ void load(const uint8_t *r, int64_t k0) {
        const uint8_t *b = r + (size_t)(k0 / CLV_QK_K) * sizeof(clv_block_q6_k);
        int i = (int)(k0 % CLV_QK_K), half = i / 128, l0 = i % 32;
        g = i % 128 / 32;
        ld16_u16(b + offsetof(clv_block_q6_k, ql) + 64 * half + 32 * (g % 2) + l0, ql);
        ld16_u16(b + offsetof(clv_block_q6_k, qh) + 32 * half + l0, qh);
        sc = (int8_t)__ldg(b + offsetof(clv_block_q6_k, scales) + i / 16);
        d = __ldg((const uint16_t *)(const void *)(b + offsetof(clv_block_q6_k, d)));
    }
    __device__ void to_float(float (&v)[16]) const {
        float dsc = __fmul_rn(clv_fp16_to_fp32((clv_fp16)d), (float)sc);
        const int lo_shift = g < 2 ? 0 : 4, hi_shift = 2 * g;
#pragma unroll
        for (int e = 0; e < 16; e++) {
            int lo = (int)(ql[e / 4] >> (8 * (e % 4) + lo_shift) & 0xF), hi = (int)(qh[e / 4] >> (8 * (e % 4) + hi_shift) & 3);
            v[e] = __fmul_rn(dsc, (float)((lo | hi << 4) - 32));
        }
    }
};

/* Q8_0, blocks 2-byte aligned: half a block. */
struct run16_q8_0 {
    uint32_t q[4];
    uint32_t d;
    __device__ void load(const uint8_t *r, int64_t k0) {
        const uint8_t *b = r + (size_t)(k0 / CLV_QK) * sizeof(clv_block_q8_0);
        ld16_u16(b + offsetof(clv_block_q8_0, qs) + k0 % CLV_QK, q);
        d = __ldg((const uint16_t *)(const void *)(b + offsetof(clv_block_q8_0, d)));
    }
    __device__ void to_float(float (&v)[16]) const {
        float dd = clv_fp16_to_fp32((clv_fp16)d);
#pragma unroll
        for (int e = 0; e < 16; e++) v[e] = __fmul_rn((float)(int8_t)(q[e / 4] >> (8 * (e % 4)) & 0xFF), dd);
    }
};

/* Grid: x = block of BM outputs, y = tile. */
template <typename RUN> __global__ void __launch_bounds__(THREADS) experts_kernel(experts_args a) {
#if __CUDA_ARCH__ >= 800
    using namespace nvcuda;
    __shared__ __align__(32) float smem[2 * STAGE];
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
    const int warp = threadIdx.x >> 5;
    const int wm = warp & 3, wn = warp >> 2; /* the warp's piece: outputs 32 wm .. + 31, rows 16 wn .. + 15 */
    wmma::fragment<wmma::accumulator, 16, 16, 8, float> acc[2];
    wmma::fill_fragment(acc[0], 0.0f);
    wmma::fill_fragment(acc[1], 0.0f);
    /* Each thread decodes 16 consecutive inputs of one weight row and copies 4 of one batch row. */
    const int wr = threadIdx.x >> 1, wk = (threadIdx.x & 1) * 16;
    const int xr = threadIdx.x >> 3, xk = (threadIdx.x & 7) * 4;
    const bool w_live = m0 + wr < a.n_out, x_live = xr < tile.n_rows;
    const uint8_t *wrow = w + (size_t)(w_live ? m0 + wr : 0) * a.row_bytes;
    const float *xrow = a.x + (size_t)(tile.row0 + (x_live ? xr : 0)) * (size_t)a.ldx;
    RUN run;
    float xv[4];
    auto fetch = [&](int64_t k0) {
        if (w_live) run.load(wrow, k0 + wk);
#pragma unroll
        for (int e = 0; e < 4; e++) xv[e] = x_live ? __ldg(xrow + k0 + xk + e) : 0.0f;
    };
    auto put = [&](float *buf) {
        float v[16];
        if (w_live) {
            run.to_float(v);
        } else {
#pragma unroll
            for (int e = 0; e < 16; e++) v[e] = 0.0f;
        }
        float4 *wd = (float4 *)(void *)(buf + wr * LDS + wk);
#pragma unroll
        for (int e = 0; e < 4; e++) {
            wd[e] = make_float4(wmma::__float_to_tf32(v[4 * e]), wmma::__float_to_tf32(v[4 * e + 1]),
                                wmma::__float_to_tf32(v[4 * e + 2]), wmma::__float_to_tf32(v[4 * e + 3]));
        }
        *(float4 *)(void *)(buf + BM * LDS + xr * LDS + xk) =
            make_float4(wmma::__float_to_tf32(xv[0]), wmma::__float_to_tf32(xv[1]), wmma::__float_to_tf32(xv[2]),
                        wmma::__float_to_tf32(xv[3]));
    };
    fetch(0);
    put(smem);
    __syncthreads();
    int p = 0;
    for (int64_t k0 = 0; k0 < a.n_in; k0 += BK, p ^= 1) {
        const bool more = k0 + BK < a.n_in;
        if (more) fetch(k0 + BK); /* in flight during the products below */
        const float *ws = smem + p * STAGE, *xs = ws + BM * LDS;
#pragma unroll
        for (int kk = 0; kk < BK; kk += 8) {
            /* already TF32: the stores above rounded them */
            wmma::fragment<wmma::matrix_b, 16, 16, 8, wmma::precision::tf32, wmma::col_major> fb;
            wmma::load_matrix_sync(fb, xs + (16 * wn) * LDS + kk, LDS);
#pragma unroll
            for (int f = 0; f < 2; f++) {
                wmma::fragment<wmma::matrix_a, 16, 16, 8, wmma::precision::tf32, wmma::row_major> fa;
                wmma::load_matrix_sync(fa, ws + (32 * wm + 16 * f) * LDS + kk, LDS);
                wmma::mma_sync(acc[f], fa, fb, acc[f]);
            }
        }
        if (more) put(smem + (p ^ 1) * STAGE); /* last read a step ago, before the barrier below */
        __syncthreads();
    }
    /* Stage the block's output as [row][output] (the loop's last barrier
     * freed the tiles), then write it along outputs. */
    float *cs = smem;
#pragma unroll
    for (int f = 0; f < 2; f++)
        wmma::store_matrix_sync(cs + (16 * wn) * LDC + 32 * wm + 16 * f, acc[f], LDC, wmma::mem_col_major);
    __syncthreads();
    for (int i = threadIdx.x; i < BM * BN; i += THREADS) {
        int64_t r = i % BM, t = i / BM;
        if (m0 + r < a.n_out && t < tile.n_rows) a.y[(tile.row0 + t) * a.ldy + m0 + r] = cs[t * LDC + r];
    }
#endif
}

template <typename RUN> void launch(const experts_args &a, int64_t n_tiles, cudaStream_t s) {
    dim3 grid((unsigned)((a.n_out + BM - 1) / BM), (unsigned)n_tiles);
    experts_kernel<RUN><<<grid, THREADS, 0, s>>>(a);
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
    /* Blocks aligned for a type's own loads take them; any other layout
     * decodes element by element. */
    const uintptr_t align = (uintptr_t)w_dev | (uintptr_t)row_bytes;
    if (type == CLV_TYPE_Q4_K && align % 16 == 0) {
        launch<run16_q4_k>(a, n_tiles, s);
    } else if (type == CLV_TYPE_Q5_K && align % 16 == 0) {
        launch<run16_q5_k>(a, n_tiles, s);
    } else if (type == CLV_TYPE_Q6_K && align % 2 == 0) {
        launch<run16_q6_k>(a, n_tiles, s);
    } else if (type == CLV_TYPE_Q8_0 && align % 2 == 0) {
        launch<run16_q8_0>(a, n_tiles, s);
    } else {
        switch (type) {
#define LAUNCH(TYPE, BLOCK, ELEMS)                                                                                 \
    case TYPE: launch<run16_any<TYPE, ELEMS, (int)sizeof(BLOCK)>>(a, n_tiles, s); break;
            CLV_CUDA_DECODED_TYPES(LAUNCH)
#undef LAUNCH
        default: CLV_ASSERT(!"type listed in clv_type_can_dequantize without a CUDA decoder");
        }
    }
    cudaError_t err = cudaGetLastError();
    if (err != cudaSuccess) {
        return clv_fail(CLV_ERR_DEVICE, "CUDA expert matmul %s: launch failed: %s", clv_type_name(type),
                        cudaGetErrorString(err));
    }
    return CLV_OK;
}
