/* GPU matrix product for prompt processing (prefill), callable from C:
 * Y[t][r] = sum_i W[r][i] * X[t][i] for n_tokens float activations and a
 * GGUF weight of any type the scalar reference decodes, on tensor cores.
 *
 * Method: X is copied once per call; W is decoded a panel of rows at a time
 * into float (decode.cuh's decoders); cuBLAS multiplies each panel on the
 * tensor cores in TF32 (each input keeps 10 mantissa bits) with FP32
 * accumulation and FP32 output.
 *
 * Why TF32: it has fp32's exponent range, so no weight or activation can
 * overflow (fp16 stops at 65504, and real inputs pass it: MXFP4 scales
 * reach 2^127, F32/BF16 weights may hold anything, Gemma's FFN
 * down-projection input exceeds it; an overflow is an inf that poisons a
 * whole output row silently). bf16 has the range too, but its 7 mantissa
 * bits moved the top token of SmolLM2-135M against the CPU's reference on
 * 1.15% of 4096 teacher-forced positions (Gemma 3 270M: 0.59%), against
 * 0.05% and 0 for the float decode path (docs/engine.md). TF32 runs at half
 * bf16's tensor-core rate and its copies take twice the bytes; the GEMM is
 * a small part of prompt time.
 * Worst-case error per output: (2u + u^2) * sum_i |W[r][i] X[t][i]| for the
 * two reductions (u = 2^-10) plus fp32 accumulation; tests/test_cuda_matmul.c
 * checks that bound for every type against a float64 CPU reference.
 *
 * Small batches: below about 8 tokens the decode kernel (clv_cuda_matvec,
 * once per token) reads the weights fewer times than decoding a float copy
 * costs; callers should pick it there. This op is correct for any n_tokens.
 *
 * Nothing is allocated per call: cuBLAS's own scratch, the copy of X
 * and the weight panel all live in one caller-provided workspace. */
#ifndef CLV_CUDA_MATMUL_H
#define CLV_CUDA_MATMUL_H

#include <stddef.h>
#include <stdint.h>

#include "status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A cuBLAS handle bound to one stream. Create once, use from one host
 * thread at a time (cuBLAS handles are not thread-safe), free at the end. */
typedef struct clv_cuda_matmul_handle clv_cuda_matmul_handle;

/* stream: a cudaStream_t (NULL: the default stream); every product through
 * the handle runs asynchronously on it. cublasCreate itself takes some
 * device memory for its state (outside the workspace, once). CLV_ERR_DEVICE
 * when cuBLAS cannot start (no device, out of memory), CLV_ERR_NOMEM for the
 * host struct. */
clv_status clv_cuda_matmul_create(void *stream, clv_cuda_matmul_handle **out);

/* Waits for nothing; the caller makes sure no product through h is still
 * running (cuBLAS frees the handle's resources). NULL is allowed. */
void clv_cuda_matmul_free(clv_cuda_matmul_handle *h);

/* Bytes of workspace for products of n_rows x n_in weights with n_tokens
 * activations at full speed: cuBLAS's scratch (32 MiB, what NVIDIA
 * recommends for Hopper), the copy of X, and one weight panel of
 * min(n_rows, max(8192 rows, 64 MiB of float rows)) rows. 8192 rows keep
 * every SM of a large GPU busy in each GEMM (8192 rows x 512 tokens is 256
 * tiles of 128 x 128); the cap keeps vocabulary-sized matrices (150k rows)
 * from asking for a copy of the whole matrix. A smaller workspace only means
 * more, smaller panels: the least that works is the size returned for
 * n_rows = 8 (panels are whole multiples of 8 rows). 0 when the arguments
 * are out of range (n_in, n_tokens < 1, n_rows < 0, overflow). */
size_t clv_cuda_matmul_workspace_bytes(int64_t n_in, int64_t n_rows, int64_t n_tokens);

/* Y[t * ldy + r] = sum_i W[r][i] * X[t * ldx + i] for t < n_tokens,
 * r < n_rows. W (device) has n_rows rows of n_in elements of `type`,
 * row_bytes apart, any alignment; x_dev (ldx >= n_in) and y_dev
 * (ldy >= n_rows; columns past n_rows are not touched) are device floats;
 * workspace_dev is device memory of workspace_bytes, 256-byte aligned (as
 * cudaMalloc returns it), not shared with another product in flight.
 * Runs asynchronously on the handle's stream.
 * CLV_ERR_UNSUPPORTED for a type without a decoder; CLV_ERR_ARG for n_in
 * not a multiple of the block size, rows shorter than their elements,
 * strides below the widths, a NULL or misaligned pointer, or a workspace
 * smaller than clv_cuda_matmul_workspace_bytes(n_in, min(n_rows, 8),
 * n_tokens); CLV_ERR_DEVICE when a launch or cuBLAS fails. */
clv_status clv_cuda_matmul(clv_cuda_matmul_handle *h, int32_t type, const void *w_dev, size_t row_bytes,
                           int64_t n_in, int64_t n_rows, const float *x_dev, int64_t ldx, int64_t n_tokens,
                           float *y_dev, int64_t ldy, void *workspace_dev, size_t workspace_bytes);

/* --- routed experts of a batch (matmul_experts.cu) -------------------------
 * A batch's (token, expert) rows grouped by expert, each group cut into
 * tiles of at most CLV_CUDA_EXPERT_TILE_ROWS rows; one launch multiplies
 * every tile by its expert's matrix, decoding the weights on the fly (no
 * workspace), in TF32 on the tensor cores with FP32 accumulation: the same
 * reductions, and the same error bound, as clv_cuda_matmul. */
#define CLV_CUDA_EXPERT_TILE_ROWS 64

typedef struct clv_cuda_expert_tile {
    int32_t expert;    /* which matrix */
    int32_t row0;      /* first row of x and y */
    int32_t n_rows;    /* 1 .. CLV_CUDA_EXPERT_TILE_ROWS */
} clv_cuda_expert_tile;

/* The tiles of groups given by offsets: expert e's rows are off[e] ..
 * off[e + 1] - 1. Writes at most off[n_expert] / CLV_CUDA_EXPERT_TILE_ROWS +
 * n_expert tiles; returns how many. */
static inline int64_t clv_cuda_expert_tiles(const int64_t *off, int64_t n_expert, clv_cuda_expert_tile *tiles) {
    int64_t n = 0;
    for (int64_t e = 0; e < n_expert; e++) {
        for (int64_t r = off[e]; r < off[e + 1]; r += CLV_CUDA_EXPERT_TILE_ROWS) {
            int64_t left = off[e + 1] - r;
            tiles[n].expert = (int32_t)e;
            tiles[n].row0 = (int32_t)r;
            tiles[n].n_rows = (int32_t)(left < CLV_CUDA_EXPERT_TILE_ROWS ? left : CLV_CUDA_EXPERT_TILE_ROWS);
            n++;
        }
    }
    return n;
}

/* For each tile (device memory, n_tiles of them, at most 65535): rows
 * row0 .. row0 + n_rows - 1 of Y (ldy floats apart, n_out used) = those of
 * X (ldx apart, n_in used) times the transpose of matrix `expert` of W; with
 * x_rows (device memory, may be NULL) row r of Y takes row x_rows[r] of X,
 * so that the ungrouped batch needs no gathered copy. W is a 3-D
 * tensor of n_expert matrices of n_out rows of n_in elements of `type`,
 * row_bytes apart, each matrix n_out * row_bytes bytes after the last.
 * Runs asynchronously on stream. An expert id out of range is a bug and
 * fills its rows of Y with NaN. CLV_ERR_UNSUPPORTED for a type without a
 * decoder or a device before compute capability 8.0; CLV_ERR_ARG for n_in
 * not a multiple of 32 and of the block size, short rows or strides, NULL
 * pointers; CLV_ERR_DEVICE when the launch fails. */
clv_status clv_cuda_matmul_experts(int32_t type, const void *w_dev, size_t row_bytes, int64_t n_in, int64_t n_out,
                                   int64_t n_expert, const clv_cuda_expert_tile *tiles_dev, int64_t n_tiles,
                                   const float *x_dev, const int32_t *x_rows_dev, int64_t ldx, float *y_dev,
                                   int64_t ldy, void *stream);

#ifdef __cplusplus
}
#endif

#endif
