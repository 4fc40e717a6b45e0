/* GPU matrix-vector product (kernels/cuda/cuda_matvec.h) against the CPU:
 * for every weight type, rows quantized from random floats by the CPU
 * quantizer (random valid blocks for the types it cannot write), decoded by
 * the scalar reference and dotted with x in float64.
 * The GPU sums in float in another order, so each output is held to
 * 1e-5 of the sum of |w_i x_i| (float rounding over a few hundred terms).
 * Each result is the same bits for 1, 2 and 4 rows per warp, and the fused
 * gate/up product (clv_cuda_matvec_glu) gives the bits of two products and
 * the GLU kernel.
 * Speed: tests/bench/bench_cuda_matvec.c.
 * Skips without a CUDA device. */
#include <cuda_runtime_api.h>

#include "cuda_matvec.h"
#include "dequantize.h"
#include "quantize.h"
#include "status.h"
#include "test.h"
#include "types.h"

#include "random_blocks.h"

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static float frand(void) {
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (float)((rng >> 11) * (1.0 / 9007199254740992.0)) * 2.0f - 1.0f;
}

#define CUDA_OK(call) CHECK_MSG((call) == cudaSuccess, "%s", #call)

/* Any number of rows per warp gives the bits of the default (y). */
static void same_for_every_r(int32_t type, const void *w_dev, size_t stride, int64_t n_in, int64_t n_rows,
                             const float *x_dev, const float *y) {
    float *y_dev = NULL, *yr = malloc(sizeof(float) * (size_t)n_rows);
    CUDA_OK(cudaMalloc((void **)&y_dev, sizeof(float) * (size_t)n_rows));
    for (int r = 1; r <= 4; r *= 2) {
        CHECK_STATUS(clv_cuda_matvec_rows(type, w_dev, stride, n_in, n_rows, x_dev, y_dev, r, NULL), CLV_OK);
        CUDA_OK(cudaMemcpy(yr, y_dev, sizeof(float) * (size_t)n_rows, cudaMemcpyDeviceToHost));
        CHECK_MSG(memcmp(yr, y, sizeof(float) * (size_t)n_rows) == 0, "%s: %d rows per warp changes the result",
                  clv_type_name(type), r);
    }
    CHECK_STATUS(clv_cuda_matvec_rows(type, w_dev, stride, n_in, n_rows, x_dev, y_dev, 3, NULL), CLV_ERR_ARG);
    cudaFree(y_dev);
    free(yr);
}

/* The fused gate/up product against two products and the GLU kernel, bit
 * for bit, for each activation: gate = w, up = w with its rows rotated by
 * one (so the two matrices differ). */
static void glu_matches(int32_t type, const uint8_t *w, size_t stride, int64_t n_in, int64_t n_rows,
                        const float *x_dev) {
    size_t bytes = (size_t)n_rows * stride;
    uint8_t *up = malloc(bytes);
    memcpy(up, w + stride, bytes - stride);
    memcpy(up + bytes - stride, w, stride);
    void *g_dev = NULL, *u_dev = NULL;
    float *a = NULL, *b = NULL, *f = NULL;
    float *ha = malloc(sizeof(float) * (size_t)n_rows), *hf = malloc(sizeof(float) * (size_t)n_rows);
    CUDA_OK(cudaMalloc(&g_dev, bytes));
    CUDA_OK(cudaMalloc(&u_dev, bytes));
    CUDA_OK(cudaMalloc((void **)&a, sizeof(float) * (size_t)n_rows));
    CUDA_OK(cudaMalloc((void **)&b, sizeof(float) * (size_t)n_rows));
    CUDA_OK(cudaMalloc((void **)&f, sizeof(float) * (size_t)n_rows));
    CUDA_OK(cudaMemcpy(g_dev, w, bytes, cudaMemcpyHostToDevice));
    CUDA_OK(cudaMemcpy(u_dev, up, bytes, cudaMemcpyHostToDevice));
    const clv_cuda_act acts[] = {CLV_CUDA_ACT_SILU, CLV_CUDA_ACT_GELU, CLV_CUDA_ACT_RELU};
    for (size_t i = 0; i < sizeof acts / sizeof acts[0]; i++) {
        CHECK_STATUS(clv_cuda_matvec(type, g_dev, stride, n_in, n_rows, x_dev, a, NULL), CLV_OK);
        CHECK_STATUS(clv_cuda_matvec(type, u_dev, stride, n_in, n_rows, x_dev, b, NULL), CLV_OK);
        CHECK_STATUS(clv_cuda_glu(a, a, b, n_rows, acts[i], NULL), CLV_OK);
        CHECK_STATUS(clv_cuda_matvec_glu(type, g_dev, u_dev, stride, n_in, n_rows, x_dev, f, acts[i], NULL), CLV_OK);
        CUDA_OK(cudaMemcpy(ha, a, sizeof(float) * (size_t)n_rows, cudaMemcpyDeviceToHost));
        CUDA_OK(cudaMemcpy(hf, f, sizeof(float) * (size_t)n_rows, cudaMemcpyDeviceToHost));
        CHECK_MSG(memcmp(ha, hf, sizeof(float) * (size_t)n_rows) == 0, "%s: fused GLU (act %d) differs",
                  clv_type_name(type), (int)acts[i]);
    }
    CHECK_STATUS(clv_cuda_matvec_glu(type, g_dev, u_dev, stride, n_in, n_rows, x_dev, f, (clv_cuda_act)7, NULL),
                 CLV_ERR_ARG);
    cudaFree(g_dev), cudaFree(u_dev), cudaFree(a), cudaFree(b), cudaFree(f);
    free(up), free(ha), free(hf);
}

/* pad: bytes between rows (rows need not be packed; 0 and multiples of 4
 * keep them aligned for the per-type kernels, 6 sends them to the generic one). */
static void check_type(int32_t type, int64_t n_in, int64_t n_rows, size_t pad) {
    uint64_t row_bytes = 0;
    CHECK(clv_type_bytes(type, n_in, &row_bytes));
    size_t stride = (size_t)row_bytes + pad;
    uint8_t *w = calloc((size_t)n_rows, stride);
    float *src = malloc(sizeof(float) * (size_t)n_in), *x = malloc(sizeof(float) * (size_t)n_in);
    float *dec = malloc(sizeof(float) * (size_t)n_in), *y = malloc(sizeof(float) * (size_t)n_rows);
    double *ref = malloc(sizeof(double) * (size_t)n_rows), *mag = malloc(sizeof(double) * (size_t)n_rows);
    for (int64_t i = 0; i < n_in; i++) x[i] = frand();
    for (int64_t r = 0; r < n_rows; r++) {
        for (int64_t i = 0; i < n_in; i++) src[i] = frand() * (1.0f + (float)(r % 7));
        if (clv_type_can_quantize(type)) {
            CHECK_STATUS(clv_quantize_row(type, src, w + (size_t)r * stride, n_in), CLV_OK);
        } else {
            const clv_type_info *info = clv_type_get(type);
            random_blocks(type, w + (size_t)r * stride, (size_t)(n_in / info->block_elems), (size_t)info->block_bytes);
        }
        CHECK_STATUS(clv_dequantize_row(type, w + (size_t)r * stride, dec, n_in), CLV_OK);
        ref[r] = mag[r] = 0;
        for (int64_t i = 0; i < n_in; i++) {
            ref[r] += (double)dec[i] * x[i];
            mag[r] += fabs((double)dec[i] * x[i]);
        }
    }
    void *w_dev = NULL;
    float *x_dev = NULL, *y_dev = NULL;
    CUDA_OK(cudaMalloc(&w_dev, (size_t)n_rows * stride));
    CUDA_OK(cudaMalloc((void **)&x_dev, sizeof(float) * (size_t)n_in));
    CUDA_OK(cudaMalloc((void **)&y_dev, sizeof(float) * (size_t)n_rows));
    CUDA_OK(cudaMemcpy(w_dev, w, (size_t)n_rows * stride, cudaMemcpyHostToDevice));
    CUDA_OK(cudaMemcpy(x_dev, x, sizeof(float) * (size_t)n_in, cudaMemcpyHostToDevice));
    CHECK_STATUS(clv_cuda_matvec(type, w_dev, stride, n_in, n_rows, x_dev, y_dev, NULL), CLV_OK);
    CUDA_OK(cudaMemcpy(y, y_dev, sizeof(float) * (size_t)n_rows, cudaMemcpyDeviceToHost));
    double worst = 0;
    for (int64_t r = 0; r < n_rows; r++) {
        double e = fabs(y[r] - ref[r]) / (mag[r] > 0 ? mag[r] : 1);
        if (!(e <= worst)) worst = e;
    }
    CHECK_MSG(worst <= 1e-5, "%s: %lld x %lld: error %.3g", clv_type_name(type), (long long)n_rows,
              (long long)n_in, worst);
    same_for_every_r(type, w_dev, stride, n_in, n_rows, x_dev, y);
    glu_matches(type, w, stride, n_in, n_rows, x_dev);
    printf("%-7s %4lld x %5lld (+%zu): worst error %.2e of sum |w x|\n", clv_type_name(type), (long long)n_rows,
           (long long)n_in, pad, worst);
    cudaFree(w_dev);
    cudaFree(x_dev);
    cudaFree(y_dev);
    free(w), free(src), free(x), free(dec), free(y), free(ref), free(mag);
}

int main(void) {
    int n_dev = 0;
    if (cudaGetDeviceCount(&n_dev) != cudaSuccess || n_dev == 0) TEST_SKIP("no CUDA device");
    const int32_t types[] = {CLV_TYPE_F32,  CLV_TYPE_F16,  CLV_TYPE_BF16, CLV_TYPE_Q4_0, CLV_TYPE_Q4_1,
                             CLV_TYPE_Q5_0, CLV_TYPE_Q5_1, CLV_TYPE_Q8_0, CLV_TYPE_Q2_K, CLV_TYPE_Q3_K,
                             CLV_TYPE_Q4_K, CLV_TYPE_Q5_K, CLV_TYPE_Q6_K, CLV_TYPE_IQ4_NL, CLV_TYPE_IQ4_XS,
                             CLV_TYPE_MXFP4, CLV_TYPE_Q8_1,  CLV_TYPE_Q8_K};
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
        check_type(types[t], 768, 37, 6); /* rows not a multiple of the rows per launch block */
        check_type(types[t], 2048, 9, 0);
        check_type(types[t], 1024, 13, 4);
        check_type(types[t], 512, 77, 0); /* groups of 2 and 4 rows with a short last one */
    }
    /* Refusals. */
    CHECK_STATUS(clv_cuda_matvec(CLV_TYPE_Q4_K, NULL, 144, 100, 1, NULL, NULL, NULL), CLV_ERR_ARG);
    CHECK_STATUS(clv_cuda_matvec(CLV_TYPE_Q4_K, NULL, 100, 256, 1, NULL, NULL, NULL), CLV_ERR_ARG);
    return test_finish("test_cuda_matvec");
}
