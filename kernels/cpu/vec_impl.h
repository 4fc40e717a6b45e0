/* Internal to kernels/cpu: what each code path gives vec.c. */
#ifndef CLV_CPU_VEC_IMPL_H
#define CLV_CPU_VEC_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct clv_vec_kernels {
    bool built;
    /* NULL entries fall back to the next lower path */
    void (*rmsnorm)(float *y, const float *x, const float *w, int64_t n, float eps);
    void (*softmax)(float *y, const float *x, int64_t n);
    void (*silu)(float *y, const float *x, int64_t n);
    void (*gelu)(float *y, const float *x, int64_t n);
    void (*swiglu)(float *y, const float *gate, const float *up, int64_t n);
    void (*geglu)(float *y, const float *gate, const float *up, int64_t n);
    void (*add)(float *y, const float *a, const float *b, int64_t n);
    void (*mul)(float *y, const float *a, const float *b, int64_t n);
    void (*scale)(float *y, const float *x, float s, int64_t n);
    float (*dot)(const float *a, const float *b, int64_t n);
    void (*axpy)(float *y, float a, const float *x, int64_t n);
    void (*axpy_i8_rows)(float *y, int64_t n, const int8_t *rows, size_t row_stride, const int32_t *ids,
                           const float *a, int64_t n_rows);
    void (*f16_to_f32)(float *y, const uint16_t *x, int64_t n);
    void (*f32_to_f16)(uint16_t *y, const float *x, int64_t n);
    void (*bf16_to_f32)(float *y, const uint16_t *x, int64_t n);
    void (*f32_to_bf16)(uint16_t *y, const float *x, int64_t n);
} clv_vec_kernels;

extern const clv_vec_kernels clv_vec_kernels_avx2;
extern const clv_vec_kernels clv_vec_kernels_avx512;

/* GELU's constants (tanh form). */
#define CLV_GELU_K 0.7978845608f /* sqrt(2 / pi) */
#define CLV_GELU_C 0.044715f

#endif
