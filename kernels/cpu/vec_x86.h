/* Internal: the SIMD vector ops, written once over a vector type V of VN
 * floats; vec_avx2.c (8 lanes) and vec_avx512.c (16 lanes) define the
 * primitives and include this file. Tails run through the scalar forms. */
#ifndef CLV_CPU_VEC_X86_H
#define CLV_CPU_VEC_X86_H

#include <math.h>

#include "blocks.h"
#include "fp16.h"
#include "vec_impl.h"

/* exp(x) for a vector: n = round(x / ln 2), r = x - n ln 2 (ln 2 split in two
 * so that n * hi is exact), e^r by its Taylor series to r^7 (|r| <= 0.347:
 * truncation below 1e-8 relative), times 2^n applied as two powers of two so
 * that every n from -150 to 128 gives normal factors: results under ~1e-45
 * round to 0, over FLT_MAX become inf, NaN stays NaN. A few ulps from expf. */
static inline V v_exp(V x) {
    x = vmin(vset1(88.8f), vmax(vset1(-104.0f), x)); /* operand order keeps NaN */
    const V n = vround(vmul(x, vset1(1.44269502f)));
    V r = vfnma(n, vset1(0.693115234375f), x); /* hi: 12 bits */
    r = vfnma(n, vset1(3.19461833e-05f), r);
    V p = vset1(1.0f / 5040.0f);
    p = vfma(p, r, vset1(1.0f / 720.0f));
    p = vfma(p, r, vset1(1.0f / 120.0f));
    p = vfma(p, r, vset1(1.0f / 24.0f));
    p = vfma(p, r, vset1(1.0f / 6.0f));
    p = vfma(p, r, vset1(0.5f));
    p = vfma(p, r, vset1(1.0f));
    p = vfma(p, r, vset1(1.0f));
    const VI ni = vcvt_i(n);
    const VI n1 = vi_srai1(ni), n2 = vi_sub(ni, n1);
    const V s1 = vcast_f(vi_slli23(vi_add(n1, vi_set1(127))));
    const V s2 = vcast_f(vi_slli23(vi_add(n2, vi_set1(127))));
    return vmul(vmul(p, s1), s2);
}

/* x * sigmoid(x) = x / (1 + e^-x) */
static inline V v_silu(V x) { return vdiv(x, vadd(vset1(1.0f), v_exp(vsub(vzero(), x)))); }

/* 0.5 x (1 + tanh u) = x / (1 + e^(-2u)), u = k (x + c x^3): the same value
 * without the cancellation of 1 + tanh u for negative u. */
static inline V v_gelu(V x) {
    const V u = vmul(vmul(x, vset1(-2.0f * CLV_GELU_K)), vfma(vmul(x, x), vset1(CLV_GELU_C), vset1(1.0f)));
    return vdiv(x, vadd(vset1(1.0f), v_exp(u)));
}

static inline float s_silu(float x) { return x / (1.0f + expf(-x)); }
static inline float s_gelu(float x) {
    return x / (1.0f + expf(-2.0f * CLV_GELU_K * x * (1.0f + CLV_GELU_C * x * x)));
}

static void v_rmsnorm(float *y, const float *x, const float *w, int64_t n, float eps) {
    V a0 = vzero(), a1 = vzero();
    int64_t i = 0;
    for (; i + 2 * VN <= n; i += 2 * VN) {
        const V x0 = vload(x + i), x1 = vload(x + i + VN);
        a0 = vfma(x0, x0, a0);
        a1 = vfma(x1, x1, a1);
    }
    for (; i + VN <= n; i += VN) {
        const V x0 = vload(x + i);
        a0 = vfma(x0, x0, a0);
    }
    float ss = vhsum(vadd(a0, a1));
    for (; i < n; i++) ss += x[i] * x[i];
    const float scale = 1.0f / sqrtf(ss / (float)n + eps);
    const V s = vset1(scale);
    for (i = 0; i + VN <= n; i += VN) {
        const V v = vmul(vload(x + i), s);
        vstore(y + i, w ? vmul(v, vload(w + i)) : v);
    }
    for (; i < n; i++) y[i] = w ? x[i] * scale * w[i] : x[i] * scale;
}

static void v_softmax(float *y, const float *x, int64_t n) {
    V m = vset1(-INFINITY);
    int64_t i = 0;
    for (; i + VN <= n; i += VN) m = vmax(m, vload(x + i));
    float mx = vhmax(m);
    for (; i < n; i++) mx = fmaxf(mx, x[i]);
    const V mv = vset1(mx);
    V s = vzero();
    for (i = 0; i + VN <= n; i += VN) {
        const V e = v_exp(vsub(vload(x + i), mv));
        vstore(y + i, e);
        s = vadd(s, e);
    }
    float sum = vhsum(s);
    for (; i < n; i++) {
        y[i] = expf(x[i] - mx);
        sum += y[i];
    }
    const float inv = 1.0f / sum;
    const V iv = vset1(inv);
    for (i = 0; i + VN <= n; i += VN) vstore(y + i, vmul(vload(y + i), iv));
    for (; i < n; i++) y[i] *= inv;
}

static void v_silu_row(float *y, const float *x, int64_t n) {
    int64_t i = 0;
    for (; i + VN <= n; i += VN) vstore(y + i, v_silu(vload(x + i)));
    for (; i < n; i++) y[i] = s_silu(x[i]);
}

static void v_gelu_row(float *y, const float *x, int64_t n) {
    int64_t i = 0;
    for (; i + VN <= n; i += VN) vstore(y + i, v_gelu(vload(x + i)));
    for (; i < n; i++) y[i] = s_gelu(x[i]);
}

static void v_swiglu(float *y, const float *g, const float *u, int64_t n) {
    int64_t i = 0;
    for (; i + VN <= n; i += VN) vstore(y + i, vmul(v_silu(vload(g + i)), vload(u + i)));
    for (; i < n; i++) y[i] = s_silu(g[i]) * u[i];
}

static void v_geglu(float *y, const float *g, const float *u, int64_t n) {
    int64_t i = 0;
    for (; i + VN <= n; i += VN) vstore(y + i, vmul(v_gelu(vload(g + i)), vload(u + i)));
    for (; i < n; i++) y[i] = s_gelu(g[i]) * u[i];
}

static void v_add(float *y, const float *a, const float *b, int64_t n) {
    int64_t i = 0;
    for (; i + VN <= n; i += VN) vstore(y + i, vadd(vload(a + i), vload(b + i)));
    for (; i < n; i++) y[i] = a[i] + b[i];
}

static void v_mul(float *y, const float *a, const float *b, int64_t n) {
    int64_t i = 0;
    for (; i + VN <= n; i += VN) vstore(y + i, vmul(vload(a + i), vload(b + i)));
    for (; i < n; i++) y[i] = a[i] * b[i];
}

static void v_scale(float *y, const float *x, float s, int64_t n) {
    const V sv = vset1(s);
    int64_t i = 0;
    for (; i + VN <= n; i += VN) vstore(y + i, vmul(sv, vload(x + i)));
    for (; i < n; i++) y[i] = s * x[i];
}

static float v_dot(const float *a, const float *b, int64_t n) {
    V a0 = vzero(), a1 = vzero(), a2 = vzero(), a3 = vzero();
    int64_t i = 0;
    for (; i + 4 * VN <= n; i += 4 * VN) {
        a0 = vfma(vload(a + i), vload(b + i), a0);
        a1 = vfma(vload(a + i + VN), vload(b + i + VN), a1);
        a2 = vfma(vload(a + i + 2 * VN), vload(b + i + 2 * VN), a2);
        a3 = vfma(vload(a + i + 3 * VN), vload(b + i + 3 * VN), a3);
    }
    for (; i + VN <= n; i += VN) a0 = vfma(vload(a + i), vload(b + i), a0);
    float s = vhsum(vadd(vadd(a0, a1), vadd(a2, a3)));
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}

static void v_axpy(float *y, float a, const float *x, int64_t n) {
    const V av = vset1(a);
    int64_t i = 0;
    for (; i + VN <= n; i += VN) vstore(y + i, vfma(av, vload(x + i), vload(y + i)));
    for (; i < n; i++) y[i] += a * x[i];
}

/* int8 rows: four at a time, so that each piece of y is loaded and stored
 * once per four rows; within a piece the rows are added in order, as the
 * scalar reference does. */
/* Rows this many ahead are prefetched: the ids jump, so the hardware
 * prefetcher cannot follow them, and without this the loop waits on memory
 * latency rather than bandwidth. */
#define AXPY_I8_AHEAD 8

static void v_axpy_i8_rows(float *y, int64_t n, const int8_t *rows, size_t row_stride, const int32_t *ids,
                           const float *a, int64_t n_rows) {
    int64_t k = 0;
    for (int64_t j = 0; j < AXPY_I8_AHEAD && j < n_rows; j++)
        for (int64_t o = 0; o < n; o += 64) __builtin_prefetch(rows + (size_t)ids[j] * row_stride + o);
    for (; k + 4 <= n_rows; k += 4) {
        for (int64_t j = k + AXPY_I8_AHEAD; j < k + AXPY_I8_AHEAD + 4 && j < n_rows; j++)
            for (int64_t o = 0; o < n; o += 64) __builtin_prefetch(rows + (size_t)ids[j] * row_stride + o);
        const int8_t *r0 = rows + (size_t)ids[k] * row_stride, *r1 = rows + (size_t)ids[k + 1] * row_stride;
        const int8_t *r2 = rows + (size_t)ids[k + 2] * row_stride, *r3 = rows + (size_t)ids[k + 3] * row_stride;
        const V s0 = vset1(a[k]), s1 = vset1(a[k + 1]), s2 = vset1(a[k + 2]), s3 = vset1(a[k + 3]);
        int64_t i = 0;
        for (; i + VN <= n; i += VN) {
            V acc = vload(y + i);
            acc = vfma(s0, vload_i8(r0 + i), acc);
            acc = vfma(s1, vload_i8(r1 + i), acc);
            acc = vfma(s2, vload_i8(r2 + i), acc);
            acc = vfma(s3, vload_i8(r3 + i), acc);
            vstore(y + i, acc);
        }
        for (; i < n; i++) {
            float t = y[i];
            t += a[k] * (float)r0[i];
            t += a[k + 1] * (float)r1[i];
            t += a[k + 2] * (float)r2[i];
            t += a[k + 3] * (float)r3[i];
            y[i] = t;
        }
    }
    for (; k < n_rows; k++) {
        const int8_t *r0 = rows + (size_t)ids[k] * row_stride;
        const V s0 = vset1(a[k]);
        int64_t i = 0;
        for (; i + VN <= n; i += VN) vstore(y + i, vfma(s0, vload_i8(r0 + i), vload(y + i)));
        for (; i < n; i++) y[i] += a[k] * (float)r0[i];
    }
}

static void v_f16_to_f32(float *y, const uint16_t *x, int64_t n) {
    int64_t i = 0;
    for (; i + VN <= n; i += VN) vstore(y + i, vload_f16(x + i));
    for (; i < n; i++) y[i] = clv_fp16_to_fp32(x[i]);
}

static void v_f32_to_f16(uint16_t *y, const float *x, int64_t n) {
    int64_t i = 0;
    for (; i + VN <= n; i += VN) vstore_f16(y + i, vload(x + i));
    for (; i < n; i++) y[i] = clv_fp32_to_fp16(x[i]);
}

static void v_bf16_to_f32(float *y, const uint16_t *x, int64_t n) {
    int64_t i = 0;
    for (; i + VN <= n; i += VN) vstore(y + i, vload_bf16(x + i));
    for (; i < n; i++) y[i] = clv_bf16_to_fp32(x[i]);
}

static void v_f32_to_bf16(uint16_t *y, const float *x, int64_t n) {
    int64_t i = 0;
    for (; i + VN <= n; i += VN) vstore_bf16(y + i, vload(x + i));
    for (; i < n; i++) y[i] = clv_fp32_to_bf16(x[i]);
}

#define CLV_VEC_TABLE                                                                                     \
    {                                                                                                     \
        .built = true, .rmsnorm = v_rmsnorm, .softmax = v_softmax, .silu = v_silu_row, .gelu = v_gelu_row, \
        .swiglu = v_swiglu, .geglu = v_geglu, .add = v_add, .mul = v_mul, .scale = v_scale, .dot = v_dot,  \
        .axpy = v_axpy, .axpy_i8_rows = v_axpy_i8_rows, .f16_to_f32 = v_f16_to_f32,                      \
        .f32_to_f16 = v_f32_to_f16, .bf16_to_f32 = v_bf16_to_f32, .f32_to_bf16 = v_f32_to_bf16,            \
    }

#endif
