/* Scalar reference vector ops and the dispatch to the SIMD paths (the path
 * is matvec.c's: clv_cpu_set_path). */
#include "vec.h"

#include <math.h>
#include <pthread.h>
#include <stddef.h>

#include "blocks.h"
#include "fp16.h"
#include "matvec.h"
#include "status.h"
#include "vec_impl.h"

/* --- scalar reference ------------------------------------------------------- */

static void rmsnorm_ref(float *y, const float *x, const float *w, int64_t n, float eps) {
    double ss = 0.0;
    for (int64_t i = 0; i < n; i++) ss += (double)x[i] * (double)x[i];
    const float scale = 1.0f / sqrtf((float)(ss / (double)n) + eps);
    for (int64_t i = 0; i < n; i++) y[i] = w ? x[i] * scale * w[i] : x[i] * scale;
}

static void softmax_ref(float *y, const float *x, int64_t n) {
    float mx = -INFINITY;
    for (int64_t i = 0; i < n; i++) mx = fmaxf(mx, x[i]);
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) {
        y[i] = expf(x[i] - mx);
        sum += y[i];
    }
    const float inv = (float)(1.0 / sum);
    for (int64_t i = 0; i < n; i++) y[i] *= inv;
}

static inline float silu1(float x) { return x / (1.0f + expf(-x)); }

static inline float gelu1(float x) {
    return 0.5f * x * (1.0f + tanhf(CLV_GELU_K * (x + CLV_GELU_C * x * x * x)));
}

static void silu_ref(float *y, const float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = silu1(x[i]);
}

static void gelu_ref(float *y, const float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = gelu1(x[i]);
}

static void swiglu_ref(float *y, const float *g, const float *u, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = silu1(g[i]) * u[i];
}

static void geglu_ref(float *y, const float *g, const float *u, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = gelu1(g[i]) * u[i];
}

static void add_ref(float *y, const float *a, const float *b, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = a[i] + b[i];
}

static void mul_ref(float *y, const float *a, const float *b, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = a[i] * b[i];
}

static void scale_ref(float *y, const float *x, float s, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = s * x[i];
}

static float dot_ref(const float *a, const float *b, int64_t n) {
    double s = 0.0;
    for (int64_t i = 0; i < n; i++) s += (double)a[i] * (double)b[i];
    return (float)s;
}

static void axpy_ref(float *y, float a, const float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] += a * x[i];
}

static void axpy_i8_rows_ref(float *y, int64_t n, const int8_t *rows, size_t row_stride, const int32_t *ids,
                             const float *a, int64_t n_rows) {
    for (int64_t k = 0; k < n_rows; k++) {
        const int8_t *r = rows + (size_t)ids[k] * row_stride;
        for (int64_t i = 0; i < n; i++) y[i] += a[k] * (float)r[i];
    }
}

static void f16_to_f32_ref(float *y, const uint16_t *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = clv_fp16_to_fp32(x[i]);
}

static void f32_to_f16_ref(uint16_t *y, const float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = clv_fp32_to_fp16(x[i]);
}

static void bf16_to_f32_ref(float *y, const uint16_t *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = clv_bf16_to_fp32(x[i]);
}

static void f32_to_bf16_ref(uint16_t *y, const float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = clv_fp32_to_bf16(x[i]);
}

static const clv_vec_kernels scalar = {
    .built = true,
    .rmsnorm = rmsnorm_ref,
    .softmax = softmax_ref,
    .silu = silu_ref,
    .gelu = gelu_ref,
    .swiglu = swiglu_ref,
    .geglu = geglu_ref,
    .add = add_ref,
    .mul = mul_ref,
    .scale = scale_ref,
    .dot = dot_ref,
    .axpy = axpy_ref,
    .axpy_i8_rows = axpy_i8_rows_ref,
    .f16_to_f32 = f16_to_f32_ref,
    .f32_to_f16 = f32_to_f16_ref,
    .bf16_to_f32 = bf16_to_f32_ref,
    .f32_to_bf16 = f32_to_bf16_ref,
};

/* --- dispatch ------------------------------------------------------------------ */

static clv_vec_kernels merged[4]; /* by clv_cpu_path */
static pthread_once_t merged_once = PTHREAD_ONCE_INIT;

#define TAKE(f) \
    if (src->f) dst->f = src->f
static void merge(clv_vec_kernels *dst, const clv_vec_kernels *src) {
    if (!src->built) return;
    TAKE(rmsnorm);
    TAKE(softmax);
    TAKE(silu);
    TAKE(gelu);
    TAKE(swiglu);
    TAKE(geglu);
    TAKE(add);
    TAKE(mul);
    TAKE(scale);
    TAKE(dot);
    TAKE(axpy);
    TAKE(axpy_i8_rows);
    TAKE(f16_to_f32);
    TAKE(f32_to_f16);
    TAKE(bf16_to_f32);
    TAKE(f32_to_bf16);
}
#undef TAKE

static void build(void) {
    merged[CLV_CPU_PATH_SCALAR] = scalar;
    merged[CLV_CPU_PATH_AVX2] = scalar;
    merge(&merged[CLV_CPU_PATH_AVX2], &clv_vec_kernels_avx2);
    merged[CLV_CPU_PATH_AVX512] = merged[CLV_CPU_PATH_AVX2];
    merge(&merged[CLV_CPU_PATH_AVX512], &clv_vec_kernels_avx512);
}

static const clv_vec_kernels *k(void) {
    pthread_once(&merged_once, build);
    return &merged[clv_cpu_get_path()];
}

void clv_vec_rmsnorm(float *y, const float *x, const float *w, int64_t n, float eps) { k()->rmsnorm(y, x, w, n, eps); }
void clv_vec_softmax(float *y, const float *x, int64_t n) { k()->softmax(y, x, n); }
void clv_vec_silu(float *y, const float *x, int64_t n) { k()->silu(y, x, n); }
void clv_vec_gelu(float *y, const float *x, int64_t n) { k()->gelu(y, x, n); }
void clv_vec_swiglu(float *y, const float *gate, const float *up, int64_t n) { k()->swiglu(y, gate, up, n); }
void clv_vec_geglu(float *y, const float *gate, const float *up, int64_t n) { k()->geglu(y, gate, up, n); }
void clv_vec_add(float *y, const float *a, const float *b, int64_t n) { k()->add(y, a, b, n); }
void clv_vec_mul(float *y, const float *a, const float *b, int64_t n) { k()->mul(y, a, b, n); }
void clv_vec_scale(float *y, const float *x, float s, int64_t n) { k()->scale(y, x, s, n); }
float clv_vec_dot(const float *a, const float *b, int64_t n) { return k()->dot(a, b, n); }
void clv_vec_axpy(float *y, float a, const float *x, int64_t n) { k()->axpy(y, a, x, n); }
void clv_vec_axpy_i8_rows(float *y, int64_t n, const int8_t *rows, size_t row_stride, const int32_t *ids,
                          const float *a, int64_t n_rows) {
    k()->axpy_i8_rows(y, n, rows, row_stride, ids, a, n_rows);
}
void clv_vec_f16_to_f32(float *y, const uint16_t *x, int64_t n) { k()->f16_to_f32(y, x, n); }
void clv_vec_f32_to_f16(uint16_t *y, const float *x, int64_t n) { k()->f32_to_f16(y, x, n); }
void clv_vec_bf16_to_f32(float *y, const uint16_t *x, int64_t n) { k()->bf16_to_f32(y, x, n); }
void clv_vec_f32_to_bf16(uint16_t *y, const float *x, int64_t n) { k()->f32_to_bf16(y, x, n); }
