/* CPU matrix-vector (decode) and matrix-matrix (small batch) products over
 * GGUF weight rows, for F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K,
 * Q3_K, Q4_K, Q5_K, Q6_K, IQ4_NL, IQ4_XS and MXFP4 weights.
 *
 * Activations are first converted to the weight type's "vec dot type":
 *   F32, F16, BF16 weights                          -> F32 (the floats as they are)
 *   Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, IQ4_NL, MXFP4      -> Q8_0 (one fp16 scale per 32)
 *   Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_XS             -> Q8_K (one float scale per 256)
 * so that the inner loops are exact int8 dot products and the block scales
 * are applied in float. Results equal the float64 dot product of the
 * dequantized weight row with the dequantized activation up to float
 * rounding (tests/test_cpu_matvec.c measures and bounds it per type).
 *
 * Three code paths: scalar (the reference), AVX2 (+FMA, F16C) and AVX-512
 * (F, BW, VL and VNNI). AUTO takes the best the CPU has, or the one named by
 * the environment variable CLEAVE_CPU_PATH (scalar, avx2, avx512) when that
 * one is available. Threading is the caller's: it splits [r0, r1) across
 * threads. Nothing here allocates; all functions are thread-safe.
 *
 * Preconditions (CLV_ASSERT, they are bugs): a supported weight type, n_in a
 * multiple of the type's block size (use clv_cpu_matvec_supports when loading),
 * 0 <= r0 <= r1, buffers of the sizes below. F32 weight rows and all
 * activations need float (4-byte) alignment, other weight rows only that of
 * their fp16 fields (2 bytes; none for MXFP4). */
#ifndef CLV_CPU_MATVEC_H
#define CLV_CPU_MATVEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum clv_cpu_path {
    CLV_CPU_PATH_AUTO,
    CLV_CPU_PATH_SCALAR,
    CLV_CPU_PATH_AVX2,   /* AVX2 + FMA + F16C */
    CLV_CPU_PATH_AVX512, /* AVX-512 F/BW/VL + VNNI (Ice Lake, Sapphire Rapids, Zen 4 and later) */
} clv_cpu_path;

/* Whether this CPU (and build) can run `p`; AUTO and SCALAR always can. */
bool clv_cpu_path_available(clv_cpu_path p);

/* Selects the path every kernel here (and in vec.h) uses from now on; call it
 * before starting work, not while other threads compute. False (and nothing
 * changed) when `p` is not available. */
bool clv_cpu_set_path(clv_cpu_path p);

/* The path in use (never AUTO). */
clv_cpu_path clv_cpu_get_path(void);

/* "auto", "scalar", "avx2", "avx512". */
const char *clv_cpu_path_name(clv_cpu_path p);

/* True when the kernels below take weights of this type with rows of n_in
 * elements (n_in a positive multiple of the block size). */
bool clv_cpu_matvec_supports(int32_t wtype, int64_t n_in);

/* The activation type for weights of `wtype` (table above); -1 if unsupported. */
int32_t clv_cpu_vec_dot_type(int32_t wtype);

/* Bytes of one activation of n elements in the vec dot type of `wtype`. */
size_t clv_cpu_activation_bytes(int32_t wtype, int64_t n);

/* x (n floats, finite) -> xq in the vec dot type of `wtype`. Byte-identical to
 * clv_quantize_row(clv_cpu_vec_dot_type(wtype), x, xq, n) on every path; for
 * an F32 vec dot type it copies, and callers may pass x itself instead. */
void clv_cpu_quantize_activation(int32_t wtype, const float *x, void *xq, int64_t n);

/* y[r - r0] = dot(row r of W, x) for r in [r0, r1). W rows are row_bytes
 * apart, n_in elements each; xq is the activation from
 * clv_cpu_quantize_activation. */
void clv_cpu_matvec(int32_t wtype, const void *w, size_t row_bytes, int64_t n_in, const void *xq,
                    float *y, int64_t r0, int64_t r1);

/* y[k] = dot(row ids[k] of W, x) for k < n_ids (ids in [0, rows of W), in any
 * order): the rows a sparse FFN computes, gathered into the same multi-row
 * tiles that clv_cpu_matvec uses, so scattered rows cost what packed ones do. */
void clv_cpu_matvec_ids(int32_t wtype, const void *w, size_t row_bytes, int64_t n_in, const void *xq,
                        const int32_t *ids, int64_t n_ids, float *y);

/* Y[b * y_stride + r - r0] = dot(row r of W, activation b) for b < n_batch,
 * r in [r0, r1); activation b is at xq + b * xq_stride bytes, y_stride is in
 * floats. Activations go in groups that keep ~256 KiB of them in cache; rows
 * (one, or two to four for the 32-element formats) are taken against tiles
 * of four activations of a group, so each weight row comes from memory once
 * per group and is decoded once per four activations. The matmul for small
 * and medium batches (oneDNN does large prompt batches). */
void clv_cpu_matmul(int32_t wtype, const void *w, size_t row_bytes, int64_t n_in, const void *xq,
                    size_t xq_stride, int64_t n_batch, float *y, size_t y_stride, int64_t r0,
                    int64_t r1);

#endif
