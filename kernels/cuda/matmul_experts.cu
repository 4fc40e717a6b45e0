/* Routed experts of a prompt batch in one launch (cuda_matmul.h,
 * clv_cuda_matmul_experts): the batch's rows are grouped by expert, and
 * each block multiplies a tile of up to 64 rows of one expert's group by
 * 128 rows of that expert's matrix on the tensor cores (TF32, FP32
 * accumulation, mma.sync m16n8k8).
 *
 * Per step of 32 inputs each thread decodes 16 consecutive weights of one
 * row with the reference's operations (decode.cuh) and copies inputs of
 * the batch, both rounded to TF32, into shared memory; each of the eight
 * warps multiplies a 32 x (BN / 2) piece of the output. The shared tiles are
 * double-buffered and the bytes of step k + 1 are loaded before step k's
 * products, so one barrier per step suffices and the loads hide behind
 * the tensor cores. Weights are decoded once per 64 rows of their expert:
 * the decode, not the products, is what a step costs.
 *
 * Shared layout: a row of a tile is 32 floats in eight 16-byte chunks;
 * chunk c of row r sits at c ^ swz(r), which keeps both the fragment loads
 * (rows r, r + 1 in a phase) and the stores (8 consecutive rows) free of
 * bank conflicts. A thread's 16-byte load of inputs 4t .. 4t + 3 of a
 * 16-input group serves two k8 steps: the first pairs inputs 4t and
 * 4t + 1 in its fragment slots t and t + 4, the second 4t + 2 and 4t + 3.
 * The MMA sums over slots, so any pairing works that A and B share. */
#include <stdint.h>

#include <cuda_runtime.h>

#include "cuda_matmul.h"
#include "decode.cuh"

#define BM 128 /* weight rows (outputs) per block */
#define BN CLV_CUDA_EXPERT_TILE_ROWS /* batch rows per block */
#define BK 32 /* inputs per step */
#define LDC (BM + 4) /* output staging stride in floats: off the banks' period */
#define THREADS 256
#define STAGE ((BM + BN) * BK) /* floats of one buffer: weights, then inputs */

#define MIN_BLOCKS 2 /* resident blocks per multiprocessor the registers must allow */
#define NJ (BN / 16) /* n8 fragments per warp: the warps split the rows in two */
#define XC (8 * BN / THREADS) /* 16-byte chunks of inputs each thread copies per step */

static_assert((BN == 32 || BN == 64) && BM == 128 && BK == 32, "the thread and warp layouts below assume these");
static_assert(2 * STAGE * 4 <= 48 * 1024, "two stages fit static shared memory");
static_assert(BN * LDC <= 2 * STAGE, "the output staging reuses the tiles' memory");

namespace {

struct experts_args {
    const uint8_t *w;
    size_t row_bytes, expert_bytes;
    int64_t n_in, n_out, n_expert;
    const clv_cuda_expert_tile *tiles;
    const float *x;
    const int32_t *x_rows;
    int64_t ldx;
    float *y;
    int64_t ldy;
};

/* x rounded to TF32 (nearest, ties away), as cvt.rna.tf32.f32 does. */
__device__ static inline float tf32(float x) {
    uint32_t u;
    asm("cvt.rna.tf32.f32 %0, %1;" : "=r"(u) : "f"(x));
    return __uint_as_float(u);
}

/* The same for a finite x far from overflow, in two integer operations:
 * add half a TF32 unit to the magnitude and cut. */
__device__ static inline float tf32_finite(float x) {
    return __uint_as_float((__float_as_uint(x) + 0x1000u) & 0xFFFFE000u);
}

/* An integer 0 <= q < 2^22 as a float, exactly, without the conversion
 * unit: 2^23 + q has q in its mantissa. `bias` is subtracted with it. */
__device__ static inline float small_int(uint32_t q, float bias) {
    return __uint_as_float(0x4B000000u | q) - (8388608.0f + bias);
}

/* Sixteen consecutive weights k .. k + 15 of one row (k a multiple of 16,
 * so they share a block, and in K-quants a sub-block): load() fetches their
 * bytes into registers, to_tf32() decodes them exactly as decode<> does and
 * rounds them to TF32. run16_any is every type's path (element by element,
 * bytes read at to_tf32); the others read each byte once, with vector
 * loads where the blocks' alignment allows. Their scales come from fp16
 * fields and small integers: finite scales give finite weights far from
 * overflow, so the short rounding applies; other scales (a damaged file)
 * take the full one and keep their NaN or infinity. */
template <int TYPE, int ELEMS, int BYTES> struct run16_any {
    const uint8_t *row;
    int64_t k;
    __device__ void load(const uint8_t *r, int64_t k0) { row = r, k = k0; }
    __device__ void to_tf32(float (&v)[16]) const {
#pragma unroll
        for (int e = 0; e < 16; e++) {
            int64_t i = k + e;
            v[e] = tf32(decode<TYPE>(row + (size_t)(i / ELEMS) * BYTES, (int)(i % ELEMS)));
        }
    }
};

__device__ static inline void round_all(float (&v)[16], bool finite) {
#pragma unroll
    for (int e = 0; e < 16; e++) v[e] = finite ? tf32_finite(v[e]) : tf32(v[e]);
}

/* Two-byte loads of 16 bytes at p (2-byte aligned) as four words. */
__device__ static inline void ld16_u16(const uint8_t *p, uint32_t (&w)[4]) {
    const uint16_t *h = (const uint16_t *)(const void *)p;
#pragma unroll
    for (int n = 0; n < 4; n++) w[n] = (uint32_t)__ldg(h + 2 * n) | (uint32_t)__ldg(h + 2 * n + 1) << 16;
}

/* d * scale and dmin * min of sub-block j of a Q4_K or Q5_K block whose
 * header is h, as decode<> computes them. */
__device__ static inline void k_sub_scales(uint4 h, int j, float *ds, float *dm) {
    float d = clv_fp16_to_fp32((clv_fp16)(h.x & 0xFFFF)), dmin = clv_fp16_to_fp32((clv_fp16)(h.x >> 16));
    int sc, m;
    q4_k_scale_min(h, j, &sc, &m);
    *ds = __fmul_rn(d, (float)sc);
    *dm = __fmul_rn(dmin, (float)m);
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
    __device__ void to_tf32(float (&v)[16]) const {
        float ds, dm;
        k_sub_scales(h, j, &ds, &dm);
        const uint32_t w[4] = {q.x, q.y, q.z, q.w};
        const int shift = (j & 1) * 4; /* odd sub-blocks are the high nibbles */
#pragma unroll
        for (int e = 0; e < 16; e++)
            v[e] = __fsub_rn(__fmul_rn(ds, small_int(w[e / 4] >> (8 * (e % 4) + shift) & 0xF, 0.0f)), dm);
        round_all(v, isfinite(ds) && isfinite(dm));
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
    __device__ void to_tf32(float (&v)[16]) const {
        float ds, dm;
        k_sub_scales(h, j, &ds, &dm);
        const uint32_t w[4] = {q.x, q.y, q.z, q.w}, hb[4] = {qh.x, qh.y, qh.z, qh.w};
        const int shift = (j & 1) * 4;
#pragma unroll
        for (int e = 0; e < 16; e++) {
            uint32_t lo = w[e / 4] >> (8 * (e % 4) + shift) & 0xF, hi = hb[e / 4] >> (8 * (e % 4) + j) & 1;
            v[e] = __fsub_rn(__fmul_rn(ds, small_int(lo | hi << 4, 0.0f)), dm);
        }
        round_all(v, isfinite(ds) && isfinite(dm));
    }
};

/* 16 bytes at p as four words, from five aligned 4-byte loads at p
 * rounded down: p is 2-byte aligned and the 4 bytes before or after the run
 * belong to the same block (Q6_K's ql and qh runs). */
__device__ static inline void ld16_words(const uint8_t *p, uint32_t (&w)[4]) {
    const uint32_t *a = (const uint32_t *)(const void *)((uintptr_t)p & ~(uintptr_t)3);
    const uint32_t shift = 8u * (uint32_t)((uintptr_t)p & 3);
    uint32_t v[5];
#pragma unroll
    for (int n = 0; n < 5; n++) v[n] = __ldg(a + n);
#pragma unroll
    for (int n = 0; n < 4; n++) w[n] = __funnelshift_r(v[n], v[n + 1], shift);
}

/* Q6_K, blocks 2-byte aligned (210-byte blocks are no more); WORDS: the
 * tensor starts 4-byte aligned, so a block at 2 mod 4 is never its first
 * and word loads may reach 2 bytes before a run. */
template <bool WORDS> struct run16_q6_k {
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
        const uint8_t *pl = b + offsetof(clv_block_q6_k, ql) + 64 * half + 32 * (g % 2) + l0;
        const uint8_t *ph = b + offsetof(clv_block_q6_k, qh) + 32 * half + l0;
        if constexpr (WORDS) {
            ld16_words(pl, ql);
            ld16_words(ph, qh);
        } else {
            ld16_u16(pl, ql);
            ld16_u16(ph, qh);
        }
        sc = (int8_t)__ldg(b + offsetof(clv_block_q6_k, scales) + i / 16);
        d = __ldg((const uint16_t *)(const void *)(b + offsetof(clv_block_q6_k, d)));
    }
    __device__ void to_tf32(float (&v)[16]) const {
        float dsc = __fmul_rn(clv_fp16_to_fp32((clv_fp16)d), (float)sc);
        const int lo_shift = g < 2 ? 0 : 4, hi_shift = 2 * g;
#pragma unroll
        for (int e = 0; e < 16; e++) {
            uint32_t lo = ql[e / 4] >> (8 * (e % 4) + lo_shift) & 0xF, hi = qh[e / 4] >> (8 * (e % 4) + hi_shift) & 3;
            v[e] = __fmul_rn(dsc, small_int(lo | hi << 4, 32.0f));
        }
        round_all(v, isfinite(dsc));
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
    __device__ void to_tf32(float (&v)[16]) const {
        float dd = clv_fp16_to_fp32((clv_fp16)d);
#pragma unroll
        for (int e = 0; e < 16; e++) /* the int8 as an offset-binary byte: q + 128 */
            v[e] = __fmul_rn(small_int((q[e / 4] >> (8 * (e % 4)) & 0xFF) ^ 0x80, 128.0f), dd);
        round_all(v, isfinite(dd));
    }
};

/* Where logical 16-byte chunk c of tile row r sits (in floats). */
__device__ static inline int chunk_at(int r, int c) { return r * BK + 4 * (c ^ (((r & 1) << 2) | ((r >> 1) & 3))); }

__device__ static inline void mma_tf32(float (&d)[4], float a0, float a1, float a2, float a3, float b0, float b1) {
    asm volatile("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                 "{%0,%1,%2,%3};"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(__float_as_uint(a0)), "r"(__float_as_uint(a1)), "r"(__float_as_uint(a2)),
                   "r"(__float_as_uint(a3)), "r"(__float_as_uint(b0)), "r"(__float_as_uint(b1)));
}

/* Grid: x = block of BM outputs, y = tile. */
template <typename RUN> __global__ void __launch_bounds__(THREADS, MIN_BLOCKS) experts_kernel(experts_args a) {
#if __CUDA_ARCH__ >= 800
    __shared__ __align__(16) float smem[2 * STAGE];
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
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
    const int wm = warp & 3, wn = warp >> 2; /* the warp's piece: outputs 32 wm .. + 31, rows 8 NJ wn .. */
    const bool w_mma = 8 * NJ * wn < tile.n_rows; /* warps past a short tile's rows skip the products */
    float acc[2][NJ][4];
#pragma unroll
    for (int i = 0; i < 2; i++)
#pragma unroll
        for (int j = 0; j < NJ; j++)
#pragma unroll
            for (int e = 0; e < 4; e++) acc[i][j][e] = 0.0f;
    /* Each thread decodes 16 consecutive inputs (chunks 4 wh .. 4 wh + 3) of
     * weight row wr and copies chunks xc, xc + THREADS / BN, .. of batch row xr. */
    const int wr = threadIdx.x & (BM - 1), wh = threadIdx.x / BM;
    const int xr = threadIdx.x & (BN - 1), xc = threadIdx.x / BN;
    const bool x_vec = ((uintptr_t)a.x | (uintptr_t)(a.ldx * 4)) % 16 == 0; /* float4 loads of x */
    const bool w_live = m0 + wr < a.n_out, x_live = xr < tile.n_rows;
    const uint8_t *wrow = w + (size_t)(w_live ? m0 + wr : 0) * a.row_bytes;
    const int64_t xi = tile.row0 + (x_live ? xr : 0);
    const float *xrow = a.x + (size_t)(a.x_rows ? __ldg(a.x_rows + xi) : xi) * (size_t)a.ldx;
    RUN run;
    float4 xv[XC];
    auto fetch = [&](int64_t k0) {
        if (w_live) run.load(wrow, k0 + 16 * wh);
#pragma unroll
        for (int c = 0; c < XC; c++) {
            const float *src = xrow + k0 + 4 * (xc + THREADS / BN * c);
            xv[c] = x_live ? (x_vec ? __ldg((const float4 *)(const void *)src)
                                    : make_float4(__ldg(src), __ldg(src + 1), __ldg(src + 2), __ldg(src + 3)))
                           : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        }
    };
    auto put = [&](float *buf) {
        float v[16];
        if (w_live) {
            run.to_tf32(v);
        } else {
#pragma unroll
            for (int e = 0; e < 16; e++) v[e] = 0.0f;
        }
#pragma unroll
        for (int c = 0; c < 4; c++)
            *(float4 *)(void *)(buf + chunk_at(wr, 4 * wh + c)) =
                make_float4(v[4 * c], v[4 * c + 1], v[4 * c + 2], v[4 * c + 3]);
        float *xs = buf + BM * BK;
#pragma unroll
        for (int c = 0; c < XC; c++)
            *(float4 *)(void *)(xs + chunk_at(xr, xc + THREADS / BN * c)) =
                make_float4(tf32(xv[c].x), tf32(xv[c].y), tf32(xv[c].z), tf32(xv[c].w));
    };
    fetch(0);
    put(smem);
    __syncthreads();
    int p = 0;
    for (int64_t k0 = 0; k0 < a.n_in; k0 += BK, p ^= 1) {
        const bool more = k0 + BK < a.n_in;
        if (more) fetch(k0 + BK); /* in flight during the products below */
        const float *ws = smem + p * STAGE, *xs = ws + BM * BK;
        if (w_mma) {
#pragma unroll
            for (int c = 0; c < 2; c++) { /* 16 inputs: two k8 steps */
                float4 fa[2][2], fb[NJ];
#pragma unroll
                for (int i = 0; i < 2; i++) {
                    int r = 32 * wm + 16 * i + g;
                    fa[i][0] = *(const float4 *)(const void *)(ws + chunk_at(r, 4 * c + t));
                    fa[i][1] = *(const float4 *)(const void *)(ws + chunk_at(r + 8, 4 * c + t));
                }
#pragma unroll
                for (int j = 0; j < NJ; j++)
                    fb[j] = *(const float4 *)(const void *)(xs + chunk_at(8 * NJ * wn + 8 * j + g, 4 * c + t));
#pragma unroll
                for (int i = 0; i < 2; i++)
#pragma unroll
                    for (int j = 0; j < NJ; j++) {
                        mma_tf32(acc[i][j], fa[i][0].x, fa[i][1].x, fa[i][0].y, fa[i][1].y, fb[j].x, fb[j].y);
                        mma_tf32(acc[i][j], fa[i][0].z, fa[i][1].z, fa[i][0].w, fa[i][1].w, fb[j].z, fb[j].w);
                    }
            }
        }
        if (more) put(smem + (p ^ 1) * STAGE); /* last read a step ago, before the barrier below */
        __syncthreads();
    }
    /* Stage the block's output as [row][output] (the loop's last barrier
     * freed the tiles), then write it along outputs. */
    float *cs = smem;
#pragma unroll
    for (int i = 0; i < 2; i++)
#pragma unroll
        for (int j = 0; j < NJ; j++) {
            int m = 32 * wm + 16 * i + g, n = 8 * NJ * wn + 8 * j + 2 * t;
            cs[n * LDC + m] = acc[i][j][0];
            cs[(n + 1) * LDC + m] = acc[i][j][1];
            cs[n * LDC + m + 8] = acc[i][j][2];
            cs[(n + 1) * LDC + m + 8] = acc[i][j][3];
        }
    __syncthreads();
    for (int i = threadIdx.x; i < BM * BN; i += THREADS) {
        int64_t r = i % BM, n = i / BM;
        if (m0 + r < a.n_out && n < tile.n_rows) a.y[(tile.row0 + n) * a.ldy + m0 + r] = cs[n * LDC + r];
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
                                              int64_t n_tiles, const float *x_dev, const int32_t *x_rows_dev,
                                              int64_t ldx, float *y_dev, int64_t ldy, void *stream) {
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
                      x_dev, x_rows_dev, ldx, y_dev, ldy};
    cudaStream_t s = (cudaStream_t)stream;
    /* Blocks aligned for a type's own loads take them; any other layout
     * decodes element by element. */
    const uintptr_t align = (uintptr_t)w_dev | (uintptr_t)row_bytes;
    if (type == CLV_TYPE_Q4_K && align % 16 == 0) {
        launch<run16_q4_k>(a, n_tiles, s);
    } else if (type == CLV_TYPE_Q5_K && align % 16 == 0) {
        launch<run16_q5_k>(a, n_tiles, s);
    } else if (type == CLV_TYPE_Q6_K && align % 2 == 0) {
        if ((uintptr_t)w_dev % 4 == 0) launch<run16_q6_k<true>>(a, n_tiles, s);
        else launch<run16_q6_k<false>>(a, n_tiles, s);
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
