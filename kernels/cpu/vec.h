/* Small float vector operations of the forward pass, on the code path
 * selected with clv_cpu_set_path (matvec.h): a scalar reference, and AVX2 /
 * AVX-512 versions that agree with it within a few ulps (tests/test_cpu_vec.c
 * gives the bounds). No allocation; y may alias an input of the same length
 * unless said otherwise. Inputs are finite unless said otherwise. */
#ifndef CLV_CPU_VEC_H
#define CLV_CPU_VEC_H

#include <stddef.h>
#include <stdint.h>

/* y = x / sqrt(mean(x^2) + eps) * w (w NULL: no weight). */
void clv_vec_rmsnorm(float *y, const float *x, const float *w, int64_t n, float eps);

/* y = exp(x - max x) / sum; entries of -inf give 0 (at least one must be finite). */
void clv_vec_softmax(float *y, const float *x, int64_t n);

/* y = x * sigmoid(x) */
void clv_vec_silu(float *y, const float *x, int64_t n);

/* y = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), the tanh form of GELU
 * that Gemma (and GPT-2) use. */
void clv_vec_gelu(float *y, const float *x, int64_t n);

/* y = silu(gate) * up */
void clv_vec_swiglu(float *y, const float *gate, const float *up, int64_t n);

/* y = gelu(gate) * up */
void clv_vec_geglu(float *y, const float *gate, const float *up, int64_t n);

/* y = a + b */
void clv_vec_add(float *y, const float *a, const float *b, int64_t n);

/* y = a * b (element-wise) */
void clv_vec_mul(float *y, const float *a, const float *b, int64_t n);

/* y = s * x */
void clv_vec_scale(float *y, const float *x, float s, int64_t n);

/* sum a * b */
float clv_vec_dot(const float *a, const float *b, int64_t n);

/* y += a * x */
void clv_vec_axpy(float *y, float a, const float *x, int64_t n);

/* y[0..n) += sum over k < n_rows of a[k] * row ids[k], where row j is n
 * int8 values at rows + j * row_stride: the sparse FFN's down product, one
 * row per active neuron (each row's scale folded into a[k] by the caller).
 * Rows are added in order k = 0, 1, ...; the SIMD paths fuse each
 * multiply-add, so they differ from the scalar path by at most one rounding
 * per row. */
void clv_vec_axpy_i8_rows(float *y, int64_t n, const int8_t *rows, size_t row_stride, const int32_t *ids,
                          const float *a, int64_t n_rows);

/* Row conversions, exact as fp16.h (round to nearest even; NaN stays NaN). */
void clv_vec_f16_to_f32(float *y, const uint16_t *x, int64_t n);
void clv_vec_f32_to_f16(uint16_t *y, const float *x, int64_t n);
void clv_vec_bf16_to_f32(float *y, const uint16_t *x, int64_t n);
void clv_vec_f32_to_bf16(uint16_t *y, const float *x, int64_t n);

#endif
