/* Matrix-vector product for decode: each warp computes R consecutive rows
 * (R = 1, 2 or 4), so that one load of x serves R rows; how many pays
 * depends on the type and the shape (rows_per_warp).
 *
 * A fused variant multiplies the same x by a gate and an up matrix and
 * writes act(gate x) * (up x): one launch and no intermediate vectors for a
 * GLU feed-forward, dense or routed.
 *
 * How a warp walks a row ("dots"; each adds its lanes' share of the N rows
 * it is given to acc[0..N), and the kernel sums the lanes with shuffles):
 *  - wide, the common block-quantized types without a dot of their own
 *    (Q4_0, Q4_1, Q5_0, Q5_1, IQ4_NL, Q5_K, IQ4_XS; x 16-byte aligned): a
 *    lane decodes 32 consecutive elements with the reference's
 *    decoders (decode.cuh) and dots them with x from vector loads;
 *  - generic, every type: lane l takes elements l, l + 32, ... (F16, BF16,
 *    and any type when x is not aligned for vector loads);
 *  - F32 (16-byte aligned): float4 loads, lane l at 4l, 4l + 128, ...;
 *  - Q4_K (blocks 16-byte aligned): four blocks per step, eight lanes per
 *    block; lane l loads 16 quant bytes as one vector (32 elements of two
 *    sub-blocks) and its block's 16-byte header (d, dmin, scales), which
 *    the block's eight lanes share;
 *  - Q6_K (blocks 2-byte aligned, as 210-byte blocks are): lane l takes the
 *    element pair 2a, 2a + 1 (a = l % 16) of the four 32-element runs of
 *    half-block l / 16, with 16-bit loads of its low and high bits;
 *  - Q8_0 (any alignment): four lanes per 34-byte block, eight quants each,
 *    so a warp sweeps eight consecutive blocks at a time.
 * Each row's arithmetic does not depend on R or on the fusion, so every
 * variant gives the same bits. */
#include <stdint.h>

#include <cuda_runtime.h>

#include "act.cuh"
#include "cuda_matvec.h"
#include "decode.cuh"
#include "pdl.cuh"

#define WARPS_PER_BLOCK 8
#define PLAIN (-1) /* the "activation" of a product without a GLU */

/* Which matrix and vectors a launch row (blockIdx.y) works on: for the plain
 * product one (ids NULL); for routed experts, expert ids[blockIdx.y] of a 3-D
 * tensor, the experts chosen on the device so the host never waits for them. */
struct slice_sel {
    const int32_t *ids;  /* [gridDim.y] or NULL */
    size_t expert_bytes; /* bytes of one expert's matrix */
    int64_t x_stride, y_stride; /* floats between the launch rows' x and y */
    int32_t n_expert;
};

/* A launch's operands: up is the fused product's second matrix (NULL for a
 * plain product). */
struct mv_args {
    const uint8_t *w, *up;
    size_t row_bytes;
    int64_t n_in, n_rows;
    const float *x;
    float *y;
    slice_sel sel;
    /* The combined experts' product (matvec_combine_kernel): each token's
     * k slot weights [n_tokens][k]; NULL for the other kernels. */
    const float *comb_w;
    int comb_k;
    /* Several matrices of one type and layout over one x in one launch
     * (clv_cuda_matvec_multi): part p has part_rows[p] rows at part_w[p],
     * written to part_y[p], and takes the blocks from part_block[p] on
     * (launch_r fills those for its rows per warp); n_parts 0: w alone. */
    int n_parts;
    const uint8_t *part_w[CLV_CUDA_MATVEC_MAX_PARTS];
    float *part_y[CLV_CUDA_MATVEC_MAX_PARTS];
    int64_t part_rows[CLV_CUDA_MATVEC_MAX_PARTS];
    int64_t part_block[CLV_CUDA_MATVEC_MAX_PARTS + 1];
};

/* Moves a to the part that block bx falls in; returns the block's index
 * within that part. Parts are few, so selects rather than indexing. */
__device__ static inline int64_t select_part(mv_args &a, int64_t bx) {
    static_assert(CLV_CUDA_MATVEC_MAX_PARTS == 3, "three parts: q, k and v");
    int p = bx >= a.part_block[1] && a.n_parts > 1 ? (bx >= a.part_block[2] && a.n_parts > 2 ? 2 : 1) : 0;
    a.w = p == 0 ? a.part_w[0] : p == 1 ? a.part_w[1] : a.part_w[2];
    a.y = p == 0 ? a.part_y[0] : p == 1 ? a.part_y[1] : a.part_y[2];
    a.n_rows = p == 0 ? a.part_rows[0] : p == 1 ? a.part_rows[1] : a.part_rows[2];
    return bx - (p == 0 ? a.part_block[0] : p == 1 ? a.part_block[1] : a.part_block[2]);
}

/* Moves a's matrices and vectors to this launch row's slice; false (after
 * filling y with NaN, so that the bug shows in the logits) for an expert id
 * out of range, which the router kernels never give. */
__device__ static inline bool select_slice(mv_args &a) {
    const slice_sel &sel = a.sel;
    a.x += (int64_t)blockIdx.y * sel.x_stride;
    a.y += (int64_t)blockIdx.y * sel.y_stride;
    if (!sel.ids) return true;
    int32_t e = sel.ids[blockIdx.y];
    if (e < 0 || e >= sel.n_expert) {
        for (int64_t r = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; r < a.n_rows;
             r += (int64_t)gridDim.x * blockDim.x)
            a.y[r] = __int_as_float(0x7fc00000);
        return false;
    }
    a.w += (size_t)e * sel.expert_bytes;
    if (a.up) a.up += (size_t)e * sel.expert_bytes;
    return true;
}

template <int TYPE, int ELEMS, int BYTES> struct dot_generic {
    template <int N>
    __device__ static void run(const uint8_t *const (&rows)[N], int64_t n_in, const float *__restrict__ x,
                               float (&acc)[N]) {
        for (int64_t i = threadIdx.x & 31; i < n_in; i += 32) {
            float xi = __ldg(x + i);
            size_t off = (size_t)(i / ELEMS) * BYTES;
            int e = (int)(i % ELEMS);
#pragma unroll
            for (int k = 0; k < N; k++) acc[k] = fmaf(decode<TYPE>(rows[k] + off, e), xi, acc[k]);
        }
    }
};

/* Any quantized type whose blocks hold 32 or 256 elements, x 16-byte
 * aligned: a lane takes 32 consecutive elements (a whole 32-element block,
 * or an eighth of a 256-element one), decodes them with the
 * reference's decoders and dots them with 32 floats of x from eight vector
 * loads. A warp step covers 32 blocks of 32 or 4 of 256. */
template <int TYPE, int ELEMS, int BYTES> struct dot_wide {
    static_assert(ELEMS == 32 || ELEMS == 256, "32- or 256-element blocks");
    template <int N>
    __device__ static void run(const uint8_t *const (&rows)[N], int64_t n_in, const float *__restrict__ x,
                               float (&acc)[N]) {
        constexpr int LANES = ELEMS / 32; /* lanes per block */
        const int lane = threadIdx.x & 31, part = lane % LANES;
        const int64_t n_blocks = n_in / ELEMS;
#pragma unroll 2
        for (int64_t ib = lane / LANES; ib < n_blocks; ib += 32 / LANES) {
            const float4 *xb = (const float4 *)(x + ib * ELEMS + 32 * part);
            float dot[N];
#pragma unroll
            for (int k = 0; k < N; k++) dot[k] = 0.0f;
            /* eight elements at a time, so that each step's x stays in registers */
#pragma unroll 1
            for (int q = 0; q < 4; q++) {
                float4 a = __ldg(xb + 2 * q), c = __ldg(xb + 2 * q + 1);
                const float xv[8] = {a.x, a.y, a.z, a.w, c.x, c.y, c.z, c.w};
#pragma unroll
                for (int k = 0; k < N; k++) {
                    const uint8_t *b = rows[k] + (size_t)ib * BYTES;
#pragma unroll
                    for (int i = 0; i < 8; i++) dot[k] = fmaf(decode<TYPE>(b, 32 * part + 8 * q + i), xv[i], dot[k]);
                }
            }
#pragma unroll
            for (int k = 0; k < N; k++) acc[k] += dot[k];
        }
    }
};

/* F32 weights (rows and x 16-byte aligned, n_in a multiple of 4): lane l
 * takes the float4s at 4l, 4l + 128, ... (the router of most MoE models). */
struct dot_f32 {
    template <int N>
    __device__ static void run(const uint8_t *const (&rows)[N], int64_t n_in, const float *__restrict__ x,
                               float (&acc)[N]) {
#pragma unroll 2
        for (int64_t i = 4 * (threadIdx.x & 31); i < n_in; i += 128) {
            float4 xv = __ldg((const float4 *)(x + i));
#pragma unroll
            for (int k = 0; k < N; k++) {
                float4 wv = __ldg((const float4 *)((const float *)(const void *)rows[k] + i));
                acc[k] = fmaf(wv.w, xv.w, fmaf(wv.z, xv.z, fmaf(wv.y, xv.y, fmaf(wv.x, xv.x, acc[k]))));
            }
        }
    }
};

struct dot_q4_k {
    static_assert(offsetof(clv_block_q4_k, dmin) == 2 && offsetof(clv_block_q4_k, scales) == 4 &&
                      offsetof(clv_block_q4_k, qs) == 16,
                  "Q4_K header is d, dmin, 12 scale bytes");
    template <int N>
    __device__ static void run(const uint8_t *const (&rows)[N], int64_t n_in, const float *__restrict__ x,
                               float (&acc)[N]) {
        /* Four blocks per step, eight lanes each: lane l loads 16 quant bytes
         * (l % 8 of the block's eight 16-byte runs), i.e. 16 elements of
         * sub-blocks 2g (low nibbles) and 2g + 1 (high), g = l % 8 / 2. */
        const int lane = threadIdx.x & 31, part = lane & 7, blk = lane >> 3, g = part >> 1;
        const int e0 = (part & 1) * 16;
        const int64_t n_blocks = n_in / CLV_QK_K;
#pragma unroll 2
        for (int64_t ib = blk; ib < n_blocks; ib += 4) {
            const float *xa = x + ib * CLV_QK_K + 64 * g + e0, *xb = xa + 32;
            float xl[16], xh[16];
#pragma unroll
            for (int i = 0; i < 4; i++) {
                float4 a = __ldg((const float4 *)xa + i), b = __ldg((const float4 *)xb + i);
                xl[4 * i] = a.x, xl[4 * i + 1] = a.y, xl[4 * i + 2] = a.z, xl[4 * i + 3] = a.w;
                xh[4 * i] = b.x, xh[4 * i + 1] = b.y, xh[4 * i + 2] = b.z, xh[4 * i + 3] = b.w;
            }
            float sum0 = 0.0f, sum1 = 0.0f;
#pragma unroll
            for (int i = 0; i < 16; i++) sum0 += xl[i], sum1 += xh[i];
#pragma unroll
            for (int k = 0; k < N; k++) {
                const uint8_t *b = rows[k] + ib * sizeof(clv_block_q4_k);
                uint4 h = __ldg((const uint4 *)b);
                uint4 q = __ldg((const uint4 *)(b + offsetof(clv_block_q4_k, qs)) + part);
                float d = clv_fp16_to_fp32((clv_fp16)(h.x & 0xFFFF)), dmin = clv_fp16_to_fp32((clv_fp16)(h.x >> 16));
                int sc0, m0, sc1, m1;
                q4_k_scale_min(h, 2 * g, &sc0, &m0);
                q4_k_scale_min(h, 2 * g + 1, &sc1, &m1);
                const uint32_t w[4] = {q.x, q.y, q.z, q.w};
                float dot0 = 0.0f, dot1 = 0.0f;
#pragma unroll
                for (int i = 0; i < 4; i++) {
#pragma unroll
                    for (int j = 0; j < 4; j++) {
                        dot0 = fmaf((float)(w[i] >> (8 * j) & 0xF), xl[4 * i + j], dot0);
                        dot1 = fmaf((float)(w[i] >> (8 * j + 4) & 0xF), xh[4 * i + j], dot1);
                    }
                }
                acc[k] += d * ((float)sc0 * dot0 + (float)sc1 * dot1) - dmin * ((float)m0 * sum0 + (float)m1 * sum1);
            }
        }
    }
};

struct dot_q6_k {
    static_assert(offsetof(clv_block_q6_k, qh) == 128 && offsetof(clv_block_q6_k, scales) == 192 &&
                      offsetof(clv_block_q6_k, d) == 208,
                  "Q6_K layout is ql, qh, scales, d");
    template <int N>
    __device__ static void run(const uint8_t *const (&rows)[N], int64_t n_in, const float *__restrict__ x,
                               float (&acc)[N]) {
        /* Element 128h + 32k + 2a + e (k: run 0..3, e: 0..1): low bits in
         * nibble k / 2 of ql[64h + 32(k % 2) + 2a + e], high bits 2k, 2k + 1
         * of qh[32h + 2a + e], scale scales[8h + 2k + a / 8]. */
        int lane = threadIdx.x & 31, h = lane >> 4, a = lane & 15;
        int64_t n_blocks = n_in / CLV_QK_K;
#pragma unroll 2
        for (int64_t ib = 0; ib < n_blocks; ib++) {
            const float *xb = x + ib * CLV_QK_K + 128 * h + 2 * a;
            float2 x0 = __ldg((const float2 *)xb), x1 = __ldg((const float2 *)(xb + 32));
            float2 x2 = __ldg((const float2 *)(xb + 64)), x3 = __ldg((const float2 *)(xb + 96));
#pragma unroll
            for (int k = 0; k < N; k++) {
                const uint8_t *b = rows[k] + ib * sizeof(clv_block_q6_k);
                uint32_t l0 = __ldg((const uint16_t *)(b + 64 * h + 2 * a));
                uint32_t l1 = __ldg((const uint16_t *)(b + 64 * h + 32 + 2 * a));
                uint32_t qh = __ldg((const uint16_t *)(b + 128 + 32 * h + 2 * a));
                const int8_t *sc = (const int8_t *)(b + 192 + 8 * h + (a >> 3));
                float s0 = (float)__ldg(sc), s1 = (float)__ldg(sc + 2), s2 = (float)__ldg(sc + 4),
                      s3 = (float)__ldg(sc + 6);
                float d = clv_fp16_to_fp32((clv_fp16)__ldg((const uint16_t *)(b + 208)));
                int q00 = (int)((l0 & 0xF) | (qh & 3) << 4) - 32, q01 = (int)((l0 >> 8 & 0xF) | (qh >> 8 & 3) << 4) - 32;
                int q10 = (int)((l1 & 0xF) | (qh >> 2 & 3) << 4) - 32,
                    q11 = (int)((l1 >> 8 & 0xF) | (qh >> 10 & 3) << 4) - 32;
                int q20 = (int)((l0 >> 4 & 0xF) | (qh >> 4 & 3) << 4) - 32,
                    q21 = (int)((l0 >> 12 & 0xF) | (qh >> 12 & 3) << 4) - 32;
                int q30 = (int)((l1 >> 4 & 0xF) | (qh >> 6 & 3) << 4) - 32,
                    q31 = (int)((l1 >> 12 & 0xF) | (qh >> 14 & 3) << 4) - 32;
                float blk = s0 * ((float)q00 * x0.x + (float)q01 * x0.y) + s1 * ((float)q10 * x1.x + (float)q11 * x1.y) +
                            s2 * ((float)q20 * x2.x + (float)q21 * x2.y) + s3 * ((float)q30 * x3.x + (float)q31 * x3.y);
                acc[k] += d * blk;
            }
        }
    }
};

struct dot_q8_0 {
    template <int N>
    __device__ static void run(const uint8_t *const (&rows)[N], int64_t n_in, const float *__restrict__ x,
                               float (&acc)[N]) {
        int lane = threadIdx.x & 31, part = (lane & 3) * 8;
        int64_t n_blocks = n_in / CLV_QK;
#pragma unroll 2
        for (int64_t ib = lane >> 2; ib < n_blocks; ib += 8) {
            const float *xb = x + ib * CLV_QK + part;
            float xv[8];
#pragma unroll
            for (int i = 0; i < 8; i++) xv[i] = __ldg(xb + i);
#pragma unroll
            for (int k = 0; k < N; k++) {
                const uint8_t *b = rows[k] + ib * sizeof(clv_block_q8_0);
                const int8_t *q = (const int8_t *)(b + offsetof(clv_block_q8_0, qs)) + part;
                float dot = 0.0f;
#pragma unroll
                for (int i = 0; i < 8; i++) dot += (float)q[i] * xv[i];
                acc[k] += ld_fp16(b + offsetof(clv_block_q8_0, d)) * dot;
            }
        }
    }
};

/* acc[k] = rows[k] . x over n_in, whole on lane 0 (the lanes' shares summed
 * by shuffles, in the same order for every kernel). */
template <class DOT, int N>
__device__ static inline void warp_dots(const uint8_t *const (&rows)[N], int64_t n_in, const float *x, float (&acc)[N]) {
#pragma unroll
    for (int k = 0; k < N; k++) acc[k] = 0.0f;
    DOT::template run<N>(rows, n_in, x, acc);
#pragma unroll
    for (int k = 0; k < N; k++) {
        for (int o = 16; o > 0; o >>= 1) acc[k] += __shfl_down_sync(0xffffffffu, acc[k], o);
    }
}

/* y[r] = W[r] x, or act(W[r] x) * (UP[r] x) when ACT is an activation, for
 * the R rows r0.. of this warp. */
template <class DOT, int R, int ACT> __global__ static void __launch_bounds__(WARPS_PER_BLOCK * 32) matvec_kernel(mv_args a) {
    constexpr int N = ACT == PLAIN ? R : 2 * R;
    pdl_wait();
    if (!select_slice(a)) return;
    const int64_t bx = a.n_parts ? select_part(a, blockIdx.x) : (int64_t)blockIdx.x;
    int64_t r0 = (bx * WARPS_PER_BLOCK + (threadIdx.x >> 5)) * R;
    if (r0 >= a.n_rows) return;
    const uint8_t *rows[N];
#pragma unroll
    for (int k = 0; k < R; k++) {
        int64_t r = r0 + k < a.n_rows ? r0 + k : a.n_rows - 1; /* a short last group repeats its last row */
        rows[k] = a.w + (size_t)r * a.row_bytes;
        if constexpr (ACT != PLAIN) rows[R + k] = a.up + (size_t)r * a.row_bytes;
    }
    float acc[N];
    warp_dots<DOT, N>(rows, a.n_in, a.x, acc);
    if ((threadIdx.x & 31) != 0) return;
#pragma unroll
    for (int k = 0; k < R; k++) {
        if (r0 + k >= a.n_rows) break;
        if constexpr (ACT == PLAIN) {
            a.y[r0 + k] = acc[k];
        } else {
            a.y[r0 + k] = glu1<ACT>(acc[k], acc[R + k]);
        }
    }
}

/* A token's routed experts, down product and combine in one launch: block
 * (group of COMBINE_ROWS rows, token t). Its work items are (slot j, run of
 * R rows), taken by the warps in turn, slot fastest, so that with k = 8
 * each warp keeps one slot (expert sel.ids[t k + j], input
 * x + (t k + j) x_stride) and reads its x from L1 for all its rows. Each
 * run is computed as matvec_kernel computes rows, into shared memory; then
 * y[t][r] = sum_j comb_w[t][j] * y_j[r] in slot order with one rounding per
 * operation, as clv_cuda_moe_combine sums. So the bits are those of
 * clv_cuda_matvec_experts then clv_cuda_moe_combine, one launch fewer and
 * no [k][n_rows] intermediate. */
#define COMBINE_MAX_K 32
#define COMBINE_ROWS 8
#define COMBINE_RUN 4 /* rows per warp (R) of the types with a dot of their own */
template <class DOT, int R>
__global__ static void __launch_bounds__(WARPS_PER_BLOCK * 32) matvec_combine_kernel(mv_args a) {
    static_assert(COMBINE_ROWS % R == 0, "whole runs");
    __shared__ float part[COMBINE_MAX_K][COMBINE_ROWS];
    pdl_wait();
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, k = a.comb_k;
    const int64_t t = blockIdx.y, r_block = (int64_t)blockIdx.x * COMBINE_ROWS;
    const int n_items = k * (COMBINE_ROWS / R);
    for (int it = warp; it < n_items; it += WARPS_PER_BLOCK) {
        const int j = it % k, q0 = (it / k) * R;
        const int64_t r0 = r_block + q0;
        if (r0 >= a.n_rows) continue;
        int32_t e = a.sel.ids[t * k + j];
        if (e < 0 || e >= a.sel.n_expert) { /* never from the router: NaN shows the bug */
            if (lane == 0)
                for (int q = 0; q < R; q++) part[j][q0 + q] = __int_as_float(0x7fc00000);
            continue;
        }
        const uint8_t *rows[R];
#pragma unroll
        for (int q = 0; q < R; q++) {
            int64_t r = r0 + q < a.n_rows ? r0 + q : a.n_rows - 1;
            rows[q] = a.w + (size_t)e * a.sel.expert_bytes + (size_t)r * a.row_bytes;
        }
        float acc[R];
        warp_dots<DOT, R>(rows, a.n_in, a.x + (t * k + j) * a.sel.x_stride, acc);
        if (lane == 0)
            for (int q = 0; q < R; q++) part[j][q0 + q] = acc[q];
    }
    __syncthreads();
    const int q = threadIdx.x;
    if (q < COMBINE_ROWS && r_block + q < a.n_rows) {
        const float *wt = a.comb_w + t * k;
        float d = 0.0f;
        for (int j = 0; j < k; j++) d = __fadd_rn(d, __fmul_rn(wt[j], part[j][q]));
        a.y[t * a.sel.y_stride + r_block + q] = d;
    }
}

template <class DOT, int R> static void launch_r(const mv_args &a, int act, unsigned n_slices, cudaStream_t s) {
    if (a.comb_w) { /* n_slices counts tokens here */
        dim3 grid((unsigned)((a.n_rows + COMBINE_ROWS - 1) / COMBINE_ROWS), n_slices);
        launch_pdl(matvec_combine_kernel<DOT, R>, grid, dim3(WARPS_PER_BLOCK * 32), 0, s, a);
        return;
    }
    const int64_t per_block = (int64_t)WARPS_PER_BLOCK * R;
    dim3 grid((unsigned)((a.n_rows + per_block - 1) / per_block), n_slices);
    unsigned threads = WARPS_PER_BLOCK * 32;
    if (a.n_parts) {
        mv_args b = a;
        b.part_block[0] = 0;
        for (int p = 0; p < b.n_parts; p++)
            b.part_block[p + 1] = b.part_block[p] + (b.part_rows[p] + per_block - 1) / per_block;
        for (int p = b.n_parts + 1; p <= CLV_CUDA_MATVEC_MAX_PARTS; p++) b.part_block[p] = b.part_block[b.n_parts];
        grid.x = (unsigned)b.part_block[b.n_parts];
        CLV_ASSERT(act == PLAIN);
        launch_pdl(matvec_kernel<DOT, R, PLAIN>, grid, dim3(threads), 0, s, b);
        return;
    }
    switch (act) {
    case PLAIN: launch_pdl(matvec_kernel<DOT, R, PLAIN>, grid, dim3(threads), 0, s, a); break;
    case CLV_CUDA_ACT_SILU: launch_pdl(matvec_kernel<DOT, R, CLV_CUDA_ACT_SILU>, grid, dim3(threads), 0, s, a); break;
    case CLV_CUDA_ACT_GELU: launch_pdl(matvec_kernel<DOT, R, CLV_CUDA_ACT_GELU>, grid, dim3(threads), 0, s, a); break;
    case CLV_CUDA_ACT_RELU: launch_pdl(matvec_kernel<DOT, R, CLV_CUDA_ACT_RELU>, grid, dim3(threads), 0, s, a); break;
    default: CLV_ASSERT(!"activation checked by the caller");
    }
}

/* The per-type dots take R = 1, 2 or 4; the generic one R = 1 (its decode
 * is the cost, not x, and each R is another set of kernels to compile). */
template <class DOT, bool MULTI> static void launch(const mv_args &a, int r, int act, unsigned n_slices, cudaStream_t s) {
    if constexpr (MULTI) {
        if (r == 4) return launch_r<DOT, 4>(a, act, n_slices, s);
        if (r == 2) return launch_r<DOT, 2>(a, act, n_slices, s);
    }
    launch_r<DOT, 1>(a, act, n_slices, s);
}

/* Types without a dot of their own: 32 elements per lane for the common
 * ones when x allows vector loads (dot_wide), else one element per lane
 * (dot_generic). */
template <int TYPE, typename BLOCK, int ELEMS>
static void launch_generic(const mv_args &a, int act, unsigned n_slices, cudaStream_t s) {
    /* The common file types only: each instantiation is another few seconds of compiling. */
    constexpr bool wide = TYPE == CLV_TYPE_Q4_0 || TYPE == CLV_TYPE_Q4_1 || TYPE == CLV_TYPE_Q5_0 ||
                          TYPE == CLV_TYPE_Q5_1 || TYPE == CLV_TYPE_IQ4_NL || TYPE == CLV_TYPE_Q5_K ||
                          TYPE == CLV_TYPE_IQ4_XS;
    if constexpr (wide) {
        if ((uintptr_t)a.x % 16 == 0 && a.sel.x_stride % 4 == 0) {
            launch<dot_wide<TYPE, ELEMS, (int)sizeof(BLOCK)>, false>(a, 1, act, n_slices, s);
            return;
        }
    }
    launch<dot_generic<TYPE, ELEMS, (int)sizeof(BLOCK)>, false>(a, 1, act, n_slices, s);
}

/* Rows per warp for a launch of `rows` rows in all of a type. Measured on
 * the H200 (tests/bench/bench_cuda_matvec.c, docs/benchmarks.md): the
 * Q4_K and Q8_0 dots gain from 2 rows from 4096 rows on (Q4_K 14336 x 4096:
 * 870 -> 1062 GB/s; 2048 x 4096: 540 -> 467, so not below); the Q6_K dot
 * only on vocabulary-sized outputs, from 4 (151936 x 2048: 1215 -> 1353);
 * with fewer rows the warps' count is what keeps loads in flight. */
static int rows_per_warp(int32_t type, int64_t rows) {
    if (type == CLV_TYPE_Q4_K || type == CLV_TYPE_Q8_0) return rows >= 4096 ? 2 : 1;
    return rows >= 65536 ? 4 : 1;
}

static bool aligned(const void *p, size_t n) { return (uintptr_t)p % n == 0; }

static clv_status run_matvec(int32_t type, const mv_args &a, int64_t n_slices, int act, int r, void *stream) {
    if (!clv_type_can_dequantize(type)) {
        return clv_fail(CLV_ERR_UNSUPPORTED, "CUDA matvec: type %s (%d) is not supported", clv_type_name(type),
                        (int)type);
    }
    uint64_t need = 0;
    int64_t block = clv_type_get(type)->block_elems;
    if (a.n_in <= 0 || a.n_rows < 0 || a.n_in % block != 0 || !clv_type_bytes(type, a.n_in, &need) ||
        need > a.row_bytes) {
        return clv_fail(CLV_ERR_ARG, "CUDA matvec: %lld x %lld of %s with rows of %zu bytes", (long long)a.n_rows,
                        (long long)a.n_in, clv_type_name(type), a.row_bytes);
    }
    if (act != PLAIN && act != CLV_CUDA_ACT_SILU && act != CLV_CUDA_ACT_GELU && act != CLV_CUDA_ACT_RELU) {
        return clv_fail(CLV_ERR_ARG, "CUDA matvec: activation %d", act);
    }
    if (r != 0 && r != 1 && r != 2 && r != 4) return clv_fail(CLV_ERR_ARG, "CUDA matvec: %d rows per warp", r);
    if (a.n_rows == 0 || n_slices == 0) return CLV_OK;
    if (a.n_rows > (int64_t)WARPS_PER_BLOCK * 0x7fffffff || n_slices > 65535) {
        return clv_fail(CLV_ERR_ARG, "CUDA matvec: %lld rows in %lld slices is too many for one launch",
                        (long long)a.n_rows, (long long)n_slices);
    }
    if (r == 0) r = rows_per_warp(type, a.n_rows * n_slices);
    cudaStream_t s = (cudaStream_t)stream;
    unsigned ns = (unsigned)n_slices;
    bool up_ok16 = !a.up || aligned(a.up, 16), up_ok2 = !a.up || aligned(a.up, 2);
    switch (type) {
    case CLV_TYPE_F32:
        if (aligned(a.w, 16) && up_ok16 && a.row_bytes % 16 == 0 && a.n_in % 4 == 0 && aligned(a.x, 16) &&
            a.sel.x_stride % 4 == 0) {
            launch<dot_f32, true>(a, r, act, ns, s);
        } else {
            launch_generic<CLV_TYPE_F32, float, 1>(a, act, ns, s);
        }
        break;
    case CLV_TYPE_F16: launch_generic<CLV_TYPE_F16, clv_fp16, 1>(a, act, ns, s); break;
    case CLV_TYPE_BF16: launch_generic<CLV_TYPE_BF16, clv_bf16, 1>(a, act, ns, s); break;
    case CLV_TYPE_Q4_0: launch_generic<CLV_TYPE_Q4_0, clv_block_q4_0, CLV_QK>(a, act, ns, s); break;
    case CLV_TYPE_Q4_1: launch_generic<CLV_TYPE_Q4_1, clv_block_q4_1, CLV_QK>(a, act, ns, s); break;
    case CLV_TYPE_Q5_0: launch_generic<CLV_TYPE_Q5_0, clv_block_q5_0, CLV_QK>(a, act, ns, s); break;
    case CLV_TYPE_Q5_1: launch_generic<CLV_TYPE_Q5_1, clv_block_q5_1, CLV_QK>(a, act, ns, s); break;
    case CLV_TYPE_Q8_0: launch<dot_q8_0, true>(a, r, act, ns, s); break;
    case CLV_TYPE_Q8_1: launch_generic<CLV_TYPE_Q8_1, clv_block_q8_1, CLV_QK>(a, act, ns, s); break;
    case CLV_TYPE_IQ4_NL: launch_generic<CLV_TYPE_IQ4_NL, clv_block_iq4_nl, CLV_QK>(a, act, ns, s); break;
    case CLV_TYPE_MXFP4: launch_generic<CLV_TYPE_MXFP4, clv_block_mxfp4, CLV_QK>(a, act, ns, s); break;
    case CLV_TYPE_Q2_K: launch_generic<CLV_TYPE_Q2_K, clv_block_q2_k, CLV_QK_K>(a, act, ns, s); break;
    case CLV_TYPE_Q3_K: launch_generic<CLV_TYPE_Q3_K, clv_block_q3_k, CLV_QK_K>(a, act, ns, s); break;
    case CLV_TYPE_Q4_K:
        /* One 16-byte header load per block needs 16-byte aligned rows (144-byte
         * blocks keep the alignment); x float4 loads a 16-byte aligned x. */
        if (aligned(a.w, 16) && up_ok16 && a.row_bytes % 16 == 0 && aligned(a.x, 16) && a.sel.x_stride % 4 == 0) {
            launch<dot_q4_k, true>(a, r, act, ns, s);
        } else {
            launch_generic<CLV_TYPE_Q4_K, clv_block_q4_k, CLV_QK_K>(a, act, ns, s);
        }
        break;
    case CLV_TYPE_Q5_K: launch_generic<CLV_TYPE_Q5_K, clv_block_q5_k, CLV_QK_K>(a, act, ns, s); break;
    case CLV_TYPE_Q6_K:
        if (aligned(a.w, 2) && up_ok2 && a.row_bytes % 2 == 0 && aligned(a.x, 8) && a.sel.x_stride % 2 == 0) {
            launch<dot_q6_k, true>(a, r, act, ns, s);
        } else {
            launch_generic<CLV_TYPE_Q6_K, clv_block_q6_k, CLV_QK_K>(a, act, ns, s);
        }
        break;
    case CLV_TYPE_Q8_K: launch_generic<CLV_TYPE_Q8_K, clv_block_q8_k, CLV_QK_K>(a, act, ns, s); break;
    case CLV_TYPE_IQ4_XS: launch_generic<CLV_TYPE_IQ4_XS, clv_block_iq4_xs, CLV_QK_K>(a, act, ns, s); break;
    default: CLV_ASSERT(!"type listed in clv_type_can_dequantize without a CUDA decoder");
    }
    cudaError_t err = cudaGetLastError();
    if (err != cudaSuccess) {
        return clv_fail(CLV_ERR_DEVICE, "CUDA matvec %s: launch failed: %s", clv_type_name(type),
                        cudaGetErrorString(err));
    }
    return CLV_OK;
}

static mv_args plain_args(const void *w, const void *up, size_t row_bytes, int64_t n_in, int64_t n_rows, const float *x,
                          float *y) {
    mv_args a = {};
    a.w = (const uint8_t *)w, a.up = (const uint8_t *)up, a.row_bytes = row_bytes;
    a.n_in = n_in, a.n_rows = n_rows, a.x = x, a.y = y;
    return a;
}

extern "C" clv_status clv_cuda_matvec_rows(int32_t type, const void *w_dev, size_t row_bytes, int64_t n_in,
                                           int64_t n_rows, const float *x_dev, float *y_dev, int rows_per_warp,
                                           void *stream) {
    return run_matvec(type, plain_args(w_dev, NULL, row_bytes, n_in, n_rows, x_dev, y_dev), 1, PLAIN, rows_per_warp,
                      stream);
}

extern "C" clv_status clv_cuda_matvec(int32_t type, const void *w_dev, size_t row_bytes, int64_t n_in,
                                      int64_t n_rows, const float *x_dev, float *y_dev, void *stream) {
    return clv_cuda_matvec_rows(type, w_dev, row_bytes, n_in, n_rows, x_dev, y_dev, 0, stream);
}

extern "C" clv_status clv_cuda_matvec_glu(int32_t type, const void *gate_dev, const void *up_dev, size_t row_bytes,
                                          int64_t n_in, int64_t n_rows, const float *x_dev, float *y_dev,
                                          clv_cuda_act act, void *stream) {
    if (n_rows > 0 && (!gate_dev || !up_dev)) return clv_fail(CLV_ERR_ARG, "CUDA GLU matvec: a matrix is NULL");
    return run_matvec(type, plain_args(gate_dev, up_dev, row_bytes, n_in, n_rows, x_dev, y_dev), 1, (int)act, 0,
                      stream);
}

static clv_status experts(int32_t type, const void *w_dev, const void *up_dev, size_t row_bytes, int64_t n_in,
                          int64_t n_rows, int64_t n_expert, const int32_t *ids_dev, int64_t n_sel, const float *x_dev,
                          int64_t x_stride, float *y_dev, int64_t y_stride, int act, void *stream) {
    if (n_expert < 1 || n_expert > 0x7fffffff || n_sel < 0 || x_stride < 0 || y_stride < n_rows ||
        (n_sel > 0 && !ids_dev)) {
        return clv_fail(CLV_ERR_ARG, "CUDA expert matvec: %lld of %lld experts, x stride %lld, y stride %lld for %lld rows",
                        (long long)n_sel, (long long)n_expert, (long long)x_stride, (long long)y_stride,
                        (long long)n_rows);
    }
    mv_args a = plain_args(w_dev, up_dev, row_bytes, n_in, n_rows, x_dev, y_dev);
    a.sel = {ids_dev, row_bytes * (size_t)n_rows, x_stride, y_stride, (int32_t)n_expert};
    return run_matvec(type, a, n_sel, act, 0, stream);
}

extern "C" clv_status clv_cuda_matvec_experts(int32_t type, const void *w_dev, size_t row_bytes, int64_t n_in,
                                              int64_t n_rows, int64_t n_expert, const int32_t *ids_dev,
                                              int64_t n_sel, const float *x_dev, int64_t x_stride, float *y_dev,
                                              int64_t y_stride, void *stream) {
    return experts(type, w_dev, NULL, row_bytes, n_in, n_rows, n_expert, ids_dev, n_sel, x_dev, x_stride, y_dev,
                   y_stride, PLAIN, stream);
}

extern "C" clv_status clv_cuda_matvec_experts_glu(int32_t type, const void *gate_dev, const void *up_dev,
                                                  size_t row_bytes, int64_t n_in, int64_t n_rows, int64_t n_expert,
                                                  const int32_t *ids_dev, int64_t n_sel, const float *x_dev,
                                                  int64_t x_stride, float *y_dev, int64_t y_stride, clv_cuda_act act,
                                                  void *stream) {
    if (n_sel > 0 && (!gate_dev || !up_dev)) return clv_fail(CLV_ERR_ARG, "CUDA GLU expert matvec: a matrix is NULL");
    return experts(type, gate_dev, up_dev, row_bytes, n_in, n_rows, n_expert, ids_dev, n_sel, x_dev, x_stride, y_dev,
                   y_stride, (int)act, stream);
}

extern "C" clv_status clv_cuda_matvec_experts_combine_rows(int32_t type, const void *w_dev, size_t row_bytes,
                                                           int64_t n_in, int64_t n_rows, int64_t n_expert,
                                                           const int32_t *ids_dev, const float *weights_dev,
                                                           int64_t n_tokens, int64_t k, const float *x_dev,
                                                           int64_t x_stride, float *y_dev, int64_t y_stride,
                                                           int rows_per_warp, void *stream) {
    if (n_expert < 1 || n_expert > 0x7fffffff || n_tokens < 0 || n_tokens > 65535 || k < 1 || k > COMBINE_MAX_K ||
        x_stride < 0 || y_stride < n_rows || (n_tokens > 0 && (!ids_dev || !weights_dev)) ||
        n_rows > 0x7fffffff) {
        return clv_fail(CLV_ERR_ARG,
                        "CUDA combined expert matvec: %lld tokens (at most 65535) of %lld of %lld experts (at most %d), "
                        "x stride %lld, y stride %lld for %lld rows",
                        (long long)n_tokens, (long long)k, (long long)n_expert, COMBINE_MAX_K, (long long)x_stride,
                        (long long)y_stride, (long long)n_rows);
    }
    mv_args a = plain_args(w_dev, NULL, row_bytes, n_in, n_rows, x_dev, y_dev);
    a.sel = {ids_dev, row_bytes * (size_t)n_rows, x_stride, y_stride, (int32_t)n_expert};
    a.comb_w = weights_dev;
    a.comb_k = (int)k;
    return run_matvec(type, a, n_tokens, PLAIN, rows_per_warp ? rows_per_warp : COMBINE_RUN, stream);
}

extern "C" clv_status clv_cuda_matvec_experts_combine(int32_t type, const void *w_dev, size_t row_bytes, int64_t n_in,
                                                      int64_t n_rows, int64_t n_expert, const int32_t *ids_dev,
                                                      const float *weights_dev, int64_t n_tokens, int64_t k,
                                                      const float *x_dev, int64_t x_stride, float *y_dev,
                                                      int64_t y_stride, void *stream) {
    return clv_cuda_matvec_experts_combine_rows(type, w_dev, row_bytes, n_in, n_rows, n_expert, ids_dev, weights_dev,
                                                n_tokens, k, x_dev, x_stride, y_dev, y_stride, 0, stream);
}

extern "C" clv_status clv_cuda_matvec_multi(int32_t type, int n, const void *const *w_dev, const int64_t *n_rows,
                                            float *const *y_dev, size_t row_bytes, int64_t n_in, const float *x_dev,
                                            void *stream) {
    if (n < 1 || n > CLV_CUDA_MATVEC_MAX_PARTS || !w_dev || !n_rows || !y_dev) {
        return clv_fail(CLV_ERR_ARG, "CUDA matvec of several matrices: %d of them (1 to %d)", n,
                        CLV_CUDA_MATVEC_MAX_PARTS);
    }
    int64_t total = 0;
    bool together = n > 1;
    for (int p = 0; p < n; p++) {
        if (n_rows[p] < 0 || (n_rows[p] > 0 && (!w_dev[p] || !y_dev[p]))) {
            return clv_fail(CLV_ERR_ARG, "CUDA matvec of several matrices: part %d of %lld rows", p,
                            (long long)n_rows[p]);
        }
        total += n_rows[p];
        together = together && aligned(w_dev[p], 16) && n_rows[p] > 0; /* the per-type loads' alignment */
    }
    if (!together) { /* one matrix, or parts the one launch cannot take: a launch each */
        for (int p = 0; p < n; p++) {
            clv_status st = clv_cuda_matvec(type, w_dev[p], row_bytes, n_in, n_rows[p], x_dev, y_dev[p], stream);
            if (st != CLV_OK) return st;
        }
        return CLV_OK;
    }
    mv_args a = plain_args(w_dev[0], NULL, row_bytes, n_in, total, x_dev, y_dev[0]);
    a.n_parts = n;
    for (int p = 0; p < n; p++) {
        a.part_w[p] = (const uint8_t *)w_dev[p];
        a.part_y[p] = y_dev[p];
        a.part_rows[p] = n_rows[p];
    }
    return run_matvec(type, a, 1, PLAIN, 0, stream);
}
