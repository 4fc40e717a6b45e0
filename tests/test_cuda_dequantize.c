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

static uint64_t rng_state = 0x243f6a8885a308d3ull;

static uint64_t rng_next(void) {
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* A finite fp16 of moderate size, or a subnormal one now and then. */
static uint16_t random_scale(void) {
    uint64_t r = rng_next();
    uint16_t bits = (r & 7) == 0 ? (uint16_t)(1 + (r >> 8) % 0x3ff)
                                 : (uint16_t)((3 + (r >> 8) % 15) << 10 | (r >> 16) % 0x400);
    return (uint16_t)(bits | ((r >> 32) & 1) << 15);
}

static void put_scale(uint8_t *p) {
    uint16_t s = random_scale();
    p[0] = (uint8_t)s;
    p[1] = (uint8_t)(s >> 8);
}

/* Random bytes with valid scale fields, `bytes` per block. */
static void random_blocks(int32_t type, uint8_t *buf, size_t n_blocks, size_t bytes) {
    for (size_t i = 0; i < n_blocks * bytes; i++) buf[i] = (uint8_t)rng_next();
    for (size_t b = 0; b < n_blocks; b++) {
        uint8_t *p = buf + b * bytes;
        switch (type) {
        case CLV_TYPE_F32: { /* finite floats; the copy is exact either way */
            uint32_t u = (uint32_t)rng_next() & 0xbfffffffu;
            memcpy(p, &u, 4);
            break;
        }
        case CLV_TYPE_Q4_0: put_scale(p + offsetof(clv_block_q4_0, d)); break;
        case CLV_TYPE_Q4_1:
            put_scale(p + offsetof(clv_block_q4_1, d));
            put_scale(p + offsetof(clv_block_q4_1, m));
            break;
        case CLV_TYPE_Q5_0: put_scale(p + offsetof(clv_block_q5_0, d)); break;
        case CLV_TYPE_Q5_1:
            put_scale(p + offsetof(clv_block_q5_1, d));
            put_scale(p + offsetof(clv_block_q5_1, m));
            break;
        case CLV_TYPE_Q8_0: put_scale(p + offsetof(clv_block_q8_0, d)); break;
        case CLV_TYPE_Q8_1:
            put_scale(p + offsetof(clv_block_q8_1, d));
            put_scale(p + offsetof(clv_block_q8_1, s));
            break;
        case CLV_TYPE_IQ4_NL: put_scale(p + offsetof(clv_block_iq4_nl, d)); break;
        case CLV_TYPE_MXFP4: p[0] = (uint8_t)(b < 4 ? b : 100 + rng_next() % 50); break; /* 0..3: edge codes */
        case CLV_TYPE_Q2_K:
            put_scale(p + offsetof(clv_block_q2_k, d));
            put_scale(p + offsetof(clv_block_q2_k, dmin));
            break;
        case CLV_TYPE_Q3_K: put_scale(p + offsetof(clv_block_q3_k, d)); break;
        case CLV_TYPE_Q4_K:
        case CLV_TYPE_Q5_K: /* same offsets of d and dmin */
            put_scale(p + offsetof(clv_block_q4_k, d));
            put_scale(p + offsetof(clv_block_q4_k, dmin));
            break;
        case CLV_TYPE_Q6_K: put_scale(p + offsetof(clv_block_q6_k, d)); break;
        case CLV_TYPE_Q8_K: {
            float d = (float)((double)(rng_next() % 1000) / 997.0 - 0.5);
            memcpy(p + offsetof(clv_block_q8_k, d), &d, 4);
            break;
        }
        case CLV_TYPE_IQ4_XS: put_scale(p + offsetof(clv_block_iq4_xs, d)); break;
        default: break; /* F16, BF16: every bit pattern is valid, NaNs included */
        }
    }
}

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
