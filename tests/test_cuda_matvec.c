/* GPU matrix-vector product (kernels/cuda/cuda_matvec.h) against the CPU:
 * for every weight type, rows quantized from random floats by the CPU
 * quantizer (random valid blocks for the types it cannot write), decoded by
 * the scalar reference and dotted with x in float64.
 * The GPU sums in float in another order, so each output is held to
 * 1e-5 of the sum of |w_i x_i| (float rounding over a few hundred terms).
 * Also prints, not asserts, GB/s on matrices of 8 llama-3-8b FFN matrices'
 * rows (larger than the GPU's L2, so the weights come from memory).
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
    printf("%-7s %4lld x %5lld (+%zu): worst error %.2e of sum |w x|\n", clv_type_name(type), (long long)n_rows,
           (long long)n_in, pad, worst);
    cudaFree(w_dev);
    cudaFree(x_dev);
    cudaFree(y_dev);
    free(w), free(src), free(x), free(dec), free(y), free(ref), free(mag);
}

static void bandwidth(int32_t type, int64_t n_in, int64_t n_rows) {
    uint64_t row_bytes = 0;
    clv_type_bytes(type, n_in, &row_bytes);
    size_t bytes = (size_t)row_bytes * (size_t)n_rows;
    uint8_t *w = malloc(bytes);
    float *src = malloc(sizeof(float) * (size_t)n_in);
    for (int64_t i = 0; i < n_in; i++) src[i] = frand();
    for (int64_t r = 0; r < n_rows; r++) clv_quantize_row(type, src, w + (size_t)r * row_bytes, n_in);
    void *w_dev = NULL;
    float *x_dev = NULL, *y_dev = NULL;
    CUDA_OK(cudaMalloc(&w_dev, bytes));
    CUDA_OK(cudaMalloc((void **)&x_dev, sizeof(float) * (size_t)n_in));
    CUDA_OK(cudaMalloc((void **)&y_dev, sizeof(float) * (size_t)n_rows));
    CUDA_OK(cudaMemcpy(w_dev, w, bytes, cudaMemcpyHostToDevice));
    CUDA_OK(cudaMemcpy(x_dev, src, sizeof(float) * (size_t)n_in, cudaMemcpyHostToDevice));
    cudaEvent_t t0, t1;
    cudaEventCreate(&t0);
    cudaEventCreate(&t1);
    const int reps = 50;
    CHECK_STATUS(clv_cuda_matvec(type, w_dev, row_bytes, n_in, n_rows, x_dev, y_dev, NULL), CLV_OK);
    cudaEventRecord(t0, NULL);
    for (int i = 0; i < reps; i++) clv_cuda_matvec(type, w_dev, row_bytes, n_in, n_rows, x_dev, y_dev, NULL);
    cudaEventRecord(t1, NULL);
    cudaEventSynchronize(t1);
    float ms = 0;
    cudaEventElapsedTime(&ms, t0, t1);
    printf("%s %lld x %lld (%.1f MiB): %.1f us per product, %.0f GB/s of weights\n", clv_type_name(type),
           (long long)n_rows, (long long)n_in, bytes / 1048576.0, 1000.0 * ms / reps,
           (double)bytes * reps / (ms * 1e-3) / 1e9);
    cudaEventDestroy(t0);
    cudaEventDestroy(t1);
    cudaFree(w_dev);
    cudaFree(x_dev);
    cudaFree(y_dev);
    free(w);
    free(src);
}

int main(void) {
    int n_dev = 0;
    if (cudaGetDeviceCount(&n_dev) != cudaSuccess || n_dev == 0) TEST_SKIP("no CUDA device");
    const int32_t types[] = {CLV_TYPE_F32,  CLV_TYPE_F16,  CLV_TYPE_BF16, CLV_TYPE_Q4_0, CLV_TYPE_Q4_1,
                             CLV_TYPE_Q5_0, CLV_TYPE_Q5_1, CLV_TYPE_Q8_0, CLV_TYPE_Q2_K, CLV_TYPE_Q3_K,
                             CLV_TYPE_Q4_K, CLV_TYPE_Q5_K, CLV_TYPE_Q6_K, CLV_TYPE_IQ4_NL, CLV_TYPE_IQ4_XS,
                             CLV_TYPE_MXFP4};
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
        check_type(types[t], 768, 37, 6); /* rows not a multiple of the rows per launch block */
        check_type(types[t], 2048, 9, 0);
        check_type(types[t], 1024, 13, 4);
    }
    /* Refusals. */
    CHECK_STATUS(clv_cuda_matvec(CLV_TYPE_Q4_K, NULL, 144, 100, 1, NULL, NULL, NULL), CLV_ERR_ARG);
    CHECK_STATUS(clv_cuda_matvec(CLV_TYPE_Q4_K, NULL, 100, 256, 1, NULL, NULL, NULL), CLV_ERR_ARG);
    bandwidth(CLV_TYPE_Q4_K, 4096, 8 * 14336);
    bandwidth(CLV_TYPE_Q6_K, 4096, 8 * 14336);
    bandwidth(CLV_TYPE_Q8_0, 4096, 8 * 14336);
    return test_finish("test_cuda_matvec");
}
