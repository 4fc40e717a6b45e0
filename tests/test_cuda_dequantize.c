/* GPU dequantizer against the CPU scalar reference on random valid blocks of
 * every type. Both sides compute each value with the same rounded float
 * operations (the GPU code uses non-fusing _rn intrinsics, no flush to
 * zero), so the test requires bit-exact equality; a 1-ulp difference would
 * mean an FMA or FTZ crept in. Skips (exit 77) without a CUDA device. */
#include <stddef.h>
#include <stdint.h>

#include <cuda_runtime_api.h>

#include "blocks.h"
#include "cuda_dequantize.h"
#include "dequantize.h"
#include "status.h"
#include "test.h"
#include "types.h"

#define N_BLOCKS 67 /* not a multiple of the launch size */

#include "random_blocks.h"

#define CUDA_CHECK(expr)                                                            \
    do {                                                                            \
        cudaError_t e_ = (expr);                                                    \
        CHECK_MSG(e_ == cudaSuccess, "%s: %s", #expr, cudaGetErrorString(e_));      \
        if (e_ != cudaSuccess) return;                                              \
    } while (0)

static void check_type(int32_t type, uint8_t *dev_src, float *dev_dst) {
    const clv_type_info *info = clv_type_get(type);
    int64_t n = (int64_t)N_BLOCKS * info->block_elems;
    size_t bytes = (size_t)N_BLOCKS * (size_t)info->block_bytes;
    uint8_t *host = malloc(bytes);
    float *want = malloc((size_t)n * sizeof(float));
    float *got = malloc((size_t)n * sizeof(float));
    CLV_ASSERT(host && want && got);
    random_blocks(type, host, N_BLOCKS, (size_t)info->block_bytes);
    CHECK_STATUS(clv_dequantize_row(type, host, want, n), CLV_OK);

    /* at offset 0 and at an odd device address */
    for (int offset = 0; offset <= 1; offset++) {
        CUDA_CHECK(cudaMemcpy(dev_src + offset, host, bytes, cudaMemcpyHostToDevice));
        CUDA_CHECK(cudaMemset(dev_dst, 0xff, (size_t)n * sizeof(float)));
        CHECK_STATUS(clv_cuda_dequantize(type, dev_src + offset, dev_dst, n, NULL), CLV_OK);
        CUDA_CHECK(cudaDeviceSynchronize());
        CUDA_CHECK(cudaMemcpy(got, dev_dst, (size_t)n * sizeof(float), cudaMemcpyDeviceToHost));
        int64_t mismatches = 0;
        for (int64_t i = 0; i < n; i++) {
            uint32_t a, b;
            memcpy(&a, &got[i], 4);
            memcpy(&b, &want[i], 4);
            if (a != b && mismatches++ < 5) {
                fprintf(stderr, "%s offset %d element %" PRId64 ": GPU 0x%08x (%g), CPU 0x%08x (%g)\n",
                        info->name, offset, i, a, (double)got[i], b, (double)want[i]);
            }
        }
        CHECK_MSG(mismatches == 0, "%s offset %d: %" PRId64 " of %" PRId64 " values differ", info->name,
                  offset, mismatches, n);
    }
    printf("  %-7s %6" PRId64 " values: checked\n", info->name, n);
    free(host);
    free(want);
    free(got);
}

int main(void) {
    int count = 0;
    cudaError_t err = cudaGetDeviceCount(&count);
    if (err != cudaSuccess || count == 0) {
        TEST_SKIP("no CUDA device (%s)", err != cudaSuccess ? cudaGetErrorString(err) : "0 devices");
    }

    uint8_t *dev_src = NULL;
    float *dev_dst = NULL;
    size_t max_bytes = (size_t)N_BLOCKS * 292 + 1; /* Q8_K is the largest block */
    size_t max_floats = (size_t)N_BLOCKS * CLV_QK_K;
    CHECK(cudaMalloc((void **)&dev_src, max_bytes) == cudaSuccess);
    CHECK(cudaMalloc((void **)&dev_dst, max_floats * sizeof(float)) == cudaSuccess);
    if (!dev_src || !dev_dst) return test_finish("test_cuda_dequantize");

    int checked = 0;
    for (int32_t type = 0; type < CLV_TYPE_COUNT; type++) {
        CHECK_EQ_INT(clv_cuda_can_dequantize(type), clv_type_can_dequantize(type));
        if (!clv_type_can_dequantize(type)) continue;
        CLV_ASSERT((size_t)clv_type_get(type)->block_bytes * N_BLOCKS < max_bytes);
        check_type(type, dev_src, dev_dst);
        checked++;
    }
    CHECK(checked >= 16);

    CHECK_STATUS(clv_cuda_dequantize(CLV_TYPE_IQ2_XXS, dev_src, dev_dst, 256, NULL), CLV_ERR_UNSUPPORTED);
    CHECK_STATUS(clv_cuda_dequantize(CLV_TYPE_Q4_K, dev_src, dev_dst, 100, NULL), CLV_ERR_ARG);
    CHECK_STATUS(clv_cuda_dequantize(CLV_TYPE_Q4_K, dev_src, dev_dst, 0, NULL), CLV_OK);

    cudaFree(dev_src);
    cudaFree(dev_dst);
    return test_finish("test_cuda_dequantize");
}
