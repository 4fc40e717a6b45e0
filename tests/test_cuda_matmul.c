/* GPU prefill matrix product (kernels/cuda/cuda_matmul.h) against the CPU,
 * for every type the GPU decodes and several shapes (8, 33 and 512 tokens;
 * 256 to 4096 inputs; 77 to 4097 rows, odd strides and unaligned rows).
 * Weights come from the CPU quantizer on small matrices and from random
 * valid blocks (every quant bit pattern) on large ones; X is uniform with
 * one token scaled past fp16's range (2.6e5) to show nothing overflows.
 * The reference decodes W with the scalar dequantizer and sums in float64.
 *
 * Bounds, normalized per output by S = sum_i |W[r][i] X[t][i]|:
 *   exact reference   |gpu - ref| <= (2u + u^2) S + 1e-4 (1 + u)^2 S,
 *                     u = 2^-10: W and X each lose all but 10 mantissa bits
 *                     to TF32 (rounded or cut: relative error <= u per
 *                     operand either way, so <= 2u + u^2 per
 *                     product, in the worst case all of the same sign), and
 *                     the products are summed in fp32 (next line).
 *   rounded reference |gpu - ref16| <= 2e-4 S16, where ref16 and S16 use W
 *                     and X reduced to TF32 on the CPU, each cut or rounded
 *                     to nearest (the closest of the four pairings: the
 *                     conversion is the library's; see ROUNDED_BOUND):
 *                     mostly fp32 accumulation differs. Its errors are a
 *                     random walk, ~sqrt(n) 2^-24 of the partial sums (4e-6
 *                     at n = 4096); 2e-4 is still below one term's average
 *                     share 1/n of S at n = 4096, so a lost or misplaced
 *                     element fails.
 * Large cases check a sample of outputs (every 16th token and the last, all
 * tokens of every 64th row and the last) to keep the float64 reference fast.
 * Also: a small workspace (many panels) gives the same result within the
 * bound, columns past n_rows of a wide Y are not written, and bad arguments
 * are refused. The routed-experts product (clv_cuda_matmul_experts) is held
 * to the exact bound on every output, for every type. Prints, not asserts, TFLOP/s of 4096 x 4096 Q4_K x 512
 * tokens. Skips without a CUDA device. */
#include <cuda_runtime_api.h>

#include "cuda_matmul.h"
#include "dequantize.h"
#include "fp16.h"
#include "quantize.h"
#include "status.h"
#include "test.h"
#include "types.h"

#include "random_blocks.h"

#define CUDA_OK(call) CHECK_MSG((call) == cudaSuccess, "%s: %s", #call, cudaGetErrorString(cudaGetLastError()))

#define TF32_U (1.0 / 1024.0) /* TF32 keeps 10 mantissa bits: cut, the relative error is below 2^-10 */
#define ACCUM_BOUND 1e-4
/* Against the TF32-reduced inputs: the library does not say how it reduces
 * each operand, so the reference takes the best of the four pairings of W
 * and X cut or rounded; on the H200 the best pairing came within 1.46e-4 of
 * S (Q4_0 and Q5_0, 4097 x 1024 x 33, 2026-12-03), the other types within
 * 1e-4. 2e-4 is still below one term's average share 1/n of S at n = 4096. */
#define ROUNDED_BOUND 2e-4
#define Y_SENTINEL 0xffffffffu /* a NaN: cuBLAS must neither read it (beta = 0) nor write past n_rows */

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static float frand(void) {
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (float)((rng >> 11) * (1.0 / 9007199254740992.0)) * 2.0f - 1.0f;
}

/* v reduced to TF32's 10 mantissa bits: cut (round = false) or rounded to
 * nearest, ties away from zero (finite inputs). */
static float to_tf32(float v, bool round) {
    uint32_t b = clv_fp32_bits(v);
    if (round) b += 0x1000u;
    b &= ~0x1fffu;
    float f;
    memcpy(&f, &b, sizeof f);
    return f;
}

static clv_cuda_matmul_handle *blas;

typedef struct matmul_case {
    int32_t type;
    int64_t n_tokens, n_in, n_rows;
    size_t pad;     /* bytes between weight rows (6: rows at odd addresses) */
    int64_t x_pad;  /* ldx - n_in */
    int64_t y_pad;  /* ldy - n_rows */
    int64_t small_panel_rows; /* > 0: also run with a workspace for panels of this many rows */
} matmul_case;

/* Host-side data of one case and its float64 reference. */
typedef struct host_case {
    uint64_t stride;
    uint8_t *w;
    float *dec, *dec16, *dec16r; /* n_rows x n_in: W decoded, and cut and rounded to TF32 */
    float *x, *x16, *x16r;       /* n_tokens x ldx */
} host_case;

static bool is_plain(int32_t type) {
    return type == CLV_TYPE_F32 || type == CLV_TYPE_F16 || type == CLV_TYPE_BF16;
}

static void make_weights(const matmul_case *c, host_case *h) {
    uint64_t row_bytes = 0;
    CHECK(clv_type_bytes(c->type, c->n_in, &row_bytes));
    h->stride = row_bytes + c->pad;
    h->w = calloc((size_t)c->n_rows, (size_t)h->stride);
    h->dec = malloc(sizeof(float) * (size_t)(c->n_rows * c->n_in));
    h->dec16 = malloc(sizeof(float) * (size_t)(c->n_rows * c->n_in));
    h->dec16r = malloc(sizeof(float) * (size_t)(c->n_rows * c->n_in));
    float *src = malloc(sizeof(float) * (size_t)c->n_in);
    /* The quantizer searches scales and is slow: small matrices only. */
    bool quantize = clv_type_can_quantize(c->type) && (is_plain(c->type) || c->n_rows * c->n_in <= (1 << 20));
    const clv_type_info *info = clv_type_get(c->type);
    for (int64_t r = 0; r < c->n_rows; r++) {
        uint8_t *row = h->w + (size_t)r * h->stride;
        if (quantize) {
            for (int64_t i = 0; i < c->n_in; i++) src[i] = frand() * (1.0f + (float)(r % 7));
            CHECK_STATUS(clv_quantize_row(c->type, src, row, c->n_in), CLV_OK);
        } else {
            random_blocks(c->type, row, (size_t)(c->n_in / info->block_elems), (size_t)info->block_bytes);
        }
        float *d = h->dec + r * c->n_in;
        CHECK_STATUS(clv_dequantize_row(c->type, row, d, c->n_in), CLV_OK);
        for (int64_t i = 0; i < c->n_in; i++) {
            h->dec16[r * c->n_in + i] = to_tf32(d[i], false);
            h->dec16r[r * c->n_in + i] = to_tf32(d[i], true);
        }
    }
    free(src);
}

static void make_x(const matmul_case *c, host_case *h) {
    int64_t ldx = c->n_in + c->x_pad;
    h->x = malloc(sizeof(float) * (size_t)(c->n_tokens * ldx));
    h->x16 = malloc(sizeof(float) * (size_t)(c->n_tokens * ldx));
    h->x16r = malloc(sizeof(float) * (size_t)(c->n_tokens * ldx));
    for (int64_t t = 0; t < c->n_tokens; t++) {
        float scale = t == 1 ? 262144.0f : 1.0f + (float)(t % 5);
        for (int64_t i = 0; i < ldx; i++) {
            float v = i < c->n_in ? frand() * scale : 1e30f; /* padding: poison that must not be read */
            h->x[t * ldx + i] = v;
            h->x16[t * ldx + i] = to_tf32(v, false);
            h->x16r[t * ldx + i] = to_tf32(v, true);
        }
    }
}

static void free_host(host_case *h) {
    free(h->w), free(h->dec), free(h->dec16), free(h->dec16r), free(h->x), free(h->x16), free(h->x16r);
}

static bool checked(const matmul_case *c, int64_t t, int64_t r) {
    if (c->n_tokens * c->n_rows * c->n_in <= ((int64_t)1 << 28)) return true;
    return t % 16 == 0 || t == c->n_tokens - 1 || r % 64 == 0 || r == c->n_rows - 1;
}

/* Compares y (n_tokens x ldy) with the references; returns the worst
 * normalized errors through worst_exact / worst_rounded. */
static void compare(const matmul_case *c, const host_case *h, const float *y, const char *what, double *worst_exact,
                    double *worst_rounded) {
    int64_t ldx = c->n_in + c->x_pad, ldy = c->n_rows + c->y_pad;
    const double bound_exact = 2 * TF32_U + TF32_U * TF32_U + ACCUM_BOUND * (1 + TF32_U) * (1 + TF32_U);
    double we = 0, wr = 0;
    int reported = 0;
    for (int64_t t = 0; t < c->n_tokens; t++) {
        const float *xt = h->x + t * ldx, *xt16 = h->x16 + t * ldx, *xt16r = h->x16r + t * ldx;
        for (int64_t r = 0; r < c->n_rows; r++) {
            if (!checked(c, t, r)) continue;
            const float *wr_ = h->dec + r * c->n_in, *wr16 = h->dec16 + r * c->n_in, *wr16r = h->dec16r + r * c->n_in;
            /* the four pairings of W and X cut (0) or rounded (1) to TF32 */
            const float *wq[2] = {wr16, wr16r}, *xq[2] = {xt16, xt16r};
            double ref = 0, mag = 0, rq[4] = {0}, mq[4] = {0};
            for (int64_t i = 0; i < c->n_in; i++) {
                double p = (double)wr_[i] * xt[i];
                ref += p, mag += fabs(p);
                for (int k = 0; k < 4; k++) {
                    double pk = (double)wq[k >> 1][i] * xq[k & 1][i];
                    rq[k] += pk, mq[k] += fabs(pk);
                }
            }
            double got = y[t * ldy + r];
            double e = fabs(got - ref) / (mag > 0 ? mag : 1), e16 = INFINITY, ref16 = 0;
            for (int k = 0; k < 4; k++) {
                double ek = fabs(got - rq[k]) / (mq[k] > 0 ? mq[k] : 1);
                if (ek < e16) e16 = ek, ref16 = rq[k];
            }
            if (!(e <= we)) we = e;
            if (!(e16 <= wr)) wr = e16;
            if ((!(e <= bound_exact) || !(e16 <= ROUNDED_BOUND)) && reported++ < 3) {
                fprintf(stderr, "%s %s: token %lld row %lld: got %.9g, want %.9g (TF32 inputs: %.9g), sum |w x| %.3g\n",
                        clv_type_name(c->type), what, (long long)t, (long long)r, got, ref, ref16, mag);
            }
        }
    }
    for (int64_t t = 0; t < c->n_tokens; t++) { /* columns past n_rows untouched */
        for (int64_t r = c->n_rows; r < ldy; r++) {
            uint32_t bits = clv_fp32_bits(y[t * ldy + r]);
            if (bits != Y_SENTINEL && reported++ < 3) {
                fprintf(stderr, "%s %s: token %lld column %lld past n_rows was written\n", clv_type_name(c->type),
                        what, (long long)t, (long long)r);
            }
            CHECK(bits == Y_SENTINEL);
        }
    }
    CHECK_MSG(we <= bound_exact, "%s %s %lld x %lld x %lld tokens: error %.3g of sum |w x| > %.3g",
              clv_type_name(c->type), what, (long long)c->n_rows, (long long)c->n_in, (long long)c->n_tokens, we,
              bound_exact);
    CHECK_MSG(wr <= ROUNDED_BOUND, "%s %s %lld x %lld x %lld tokens: error %.3g against TF32 inputs > %.3g",
              clv_type_name(c->type), what, (long long)c->n_rows, (long long)c->n_in, (long long)c->n_tokens, wr,
              ROUNDED_BOUND);
    *worst_exact = we;
    *worst_rounded = wr;
}

/* Runs the product with a workspace for panels of panel_rows rows (0: the
 * full size) and returns y on the host (n_tokens x ldy). */
static float *run_gpu(const matmul_case *c, const host_case *h, int64_t panel_rows) {
    int64_t ldx = c->n_in + c->x_pad, ldy = c->n_rows + c->y_pad;
    size_t w_bytes = (size_t)(c->n_rows * (int64_t)h->stride);
    size_t x_bytes = sizeof(float) * (size_t)(c->n_tokens * ldx), y_bytes = sizeof(float) * (size_t)(c->n_tokens * ldy);
    size_t ws_bytes = clv_cuda_matmul_workspace_bytes(c->n_in, panel_rows > 0 ? panel_rows : c->n_rows, c->n_tokens);
    CHECK(ws_bytes > 0);
    float *y = malloc(y_bytes);
    void *w_dev = NULL, *ws_dev = NULL;
    float *x_dev = NULL, *y_dev = NULL;
    CUDA_OK(cudaMalloc(&w_dev, w_bytes));
    CUDA_OK(cudaMalloc((void **)&x_dev, x_bytes));
    CUDA_OK(cudaMalloc((void **)&y_dev, y_bytes));
    CUDA_OK(cudaMalloc(&ws_dev, ws_bytes));
    CUDA_OK(cudaMemcpy(w_dev, h->w, w_bytes, cudaMemcpyHostToDevice));
    CUDA_OK(cudaMemcpy(x_dev, h->x, x_bytes, cudaMemcpyHostToDevice));
    CUDA_OK(cudaMemset(y_dev, 0xff, y_bytes)); /* Y_SENTINEL everywhere */
    CHECK_STATUS(clv_cuda_matmul(blas, c->type, w_dev, (size_t)h->stride, c->n_in, c->n_rows, x_dev, ldx,
                                 c->n_tokens, y_dev, ldy, ws_dev, ws_bytes),
                 CLV_OK);
    if (panel_rows > 0) { /* one byte less than a panel of 8 rows needs is refused */
        size_t least = clv_cuda_matmul_workspace_bytes(c->n_in, 8, c->n_tokens);
        CHECK_STATUS(clv_cuda_matmul(blas, c->type, w_dev, (size_t)h->stride, c->n_in, c->n_rows, x_dev, ldx,
                                     c->n_tokens, y_dev, ldy, ws_dev, least - 1),
                     CLV_ERR_ARG);
    }
    CUDA_OK(cudaMemcpy(y, y_dev, y_bytes, cudaMemcpyDeviceToHost));
    cudaFree(w_dev), cudaFree(x_dev), cudaFree(y_dev), cudaFree(ws_dev);
    return y;
}

static void check_case(const matmul_case *c) {
    host_case h = {0};
    make_weights(c, &h);
    make_x(c, &h);
    float *y = run_gpu(c, &h, 0);
    double we = 0, wr = 0;
    compare(c, &h, y, "full", &we, &wr);
    printf("%-7s %5lld x %5lld x %4lld tokens (+%zu, ldx +%lld, ldy +%lld): error %.2e of sum |w x|, %.2e vs TF32 "
           "inputs\n",
           clv_type_name(c->type), (long long)c->n_rows, (long long)c->n_in, (long long)c->n_tokens, c->pad,
           (long long)c->x_pad, (long long)c->y_pad, we, wr);
    if (c->small_panel_rows > 0) {
        float *ys = run_gpu(c, &h, c->small_panel_rows);
        double se = 0, sr = 0;
        compare(c, &h, ys, "small workspace", &se, &sr);
        int64_t ldy = c->n_rows + c->y_pad;
        int64_t same = 0, total = c->n_tokens * c->n_rows;
        for (int64_t t = 0; t < c->n_tokens; t++) {
            for (int64_t r = 0; r < c->n_rows; r++) same += clv_fp32_bits(ys[t * ldy + r]) == clv_fp32_bits(y[t * ldy + r]);
        }
        printf("        panels of %lld rows: error %.2e, %.2e; %lld of %lld outputs bit-identical to one panel\n",
               (long long)c->small_panel_rows, se, sr, (long long)same, (long long)total);
        free(ys);
    }
    free(y);
    free_host(&h);
}

static void bad_arguments(void) {
    const int64_t n_in = 256, n_rows = 16, n_tokens = 8;
    uint64_t row_bytes = 0;
    clv_type_bytes(CLV_TYPE_Q4_K, n_in, &row_bytes);
    size_t ws_bytes = clv_cuda_matmul_workspace_bytes(n_in, n_rows, n_tokens);
    void *w = NULL, *ws = NULL;
    float *x = NULL, *y = NULL;
    CUDA_OK(cudaMalloc(&w, (size_t)row_bytes * n_rows));
    CUDA_OK(cudaMalloc((void **)&x, sizeof(float) * n_in * n_tokens));
    CUDA_OK(cudaMalloc((void **)&y, sizeof(float) * n_rows * n_tokens));
    CUDA_OK(cudaMalloc(&ws, ws_bytes + 256));
    size_t rb = (size_t)row_bytes;
    int32_t q4k = CLV_TYPE_Q4_K;
    CUDA_OK(cudaMemset(w, 0, (size_t)row_bytes * n_rows));
    CUDA_OK(cudaMemset(x, 0, sizeof(float) * n_in * n_tokens));
    /* The good call first, so that the refusals below are about one argument each. */
    CHECK_STATUS(clv_cuda_matmul(blas, q4k, w, rb, n_in, n_rows, x, n_in, n_tokens, y, n_rows, ws, ws_bytes), CLV_OK);
    CHECK_STATUS(clv_cuda_matmul(blas, q4k, w, rb, n_in, 0, x, n_in, n_tokens, y, n_rows, ws, ws_bytes), CLV_OK);
    CHECK_STATUS(clv_cuda_matmul(blas, CLV_TYPE_IQ2_XXS, w, rb, n_in, n_rows, x, n_in, n_tokens, y, n_rows, ws,
                                 ws_bytes),
                 CLV_ERR_UNSUPPORTED);
    CHECK_STATUS(clv_cuda_matmul(NULL, q4k, w, rb, n_in, n_rows, x, n_in, n_tokens, y, n_rows, ws, ws_bytes),
                 CLV_ERR_ARG);
    CHECK_STATUS(clv_cuda_matmul(blas, q4k, w, rb, 100, n_rows, x, n_in, n_tokens, y, n_rows, ws, ws_bytes),
                 CLV_ERR_ARG); /* not whole blocks */
    CHECK_STATUS(clv_cuda_matmul(blas, q4k, w, rb - 1, n_in, n_rows, x, n_in, n_tokens, y, n_rows, ws, ws_bytes),
                 CLV_ERR_ARG); /* rows shorter than their blocks */
    CHECK_STATUS(clv_cuda_matmul(blas, q4k, w, rb, 0, n_rows, x, n_in, n_tokens, y, n_rows, ws, ws_bytes),
                 CLV_ERR_ARG);
    CHECK_STATUS(clv_cuda_matmul(blas, q4k, w, rb, n_in, -1, x, n_in, n_tokens, y, n_rows, ws, ws_bytes),
                 CLV_ERR_ARG);
    CHECK_STATUS(clv_cuda_matmul(blas, q4k, w, rb, n_in, n_rows, x, n_in, 0, y, n_rows, ws, ws_bytes), CLV_ERR_ARG);
    CHECK_STATUS(clv_cuda_matmul(blas, q4k, w, rb, n_in, n_rows, x, n_in - 1, n_tokens, y, n_rows, ws, ws_bytes),
                 CLV_ERR_ARG); /* ldx < n_in */
    CHECK_STATUS(clv_cuda_matmul(blas, q4k, w, rb, n_in, n_rows, x, n_in, n_tokens, y, n_rows - 1, ws, ws_bytes),
                 CLV_ERR_ARG); /* ldy < n_rows */
    CHECK_STATUS(clv_cuda_matmul(blas, q4k, NULL, rb, n_in, n_rows, x, n_in, n_tokens, y, n_rows, ws, ws_bytes),
                 CLV_ERR_ARG);
    CHECK_STATUS(clv_cuda_matmul(blas, q4k, w, rb, n_in, n_rows, NULL, n_in, n_tokens, y, n_rows, ws, ws_bytes),
                 CLV_ERR_ARG);
    CHECK_STATUS(clv_cuda_matmul(blas, q4k, w, rb, n_in, n_rows, x, n_in, n_tokens, NULL, n_rows, ws, ws_bytes),
                 CLV_ERR_ARG);
    CHECK_STATUS(clv_cuda_matmul(blas, q4k, w, rb, n_in, n_rows, x, n_in, n_tokens, y, n_rows, NULL, ws_bytes),
                 CLV_ERR_ARG);
    CHECK_STATUS(clv_cuda_matmul(blas, q4k, w, rb, n_in, n_rows, x, n_in, n_tokens, y, n_rows, (char *)ws + 16,
                                 ws_bytes),
                 CLV_ERR_ARG); /* workspace not 256-byte aligned */
    CHECK_STATUS(clv_cuda_matmul(blas, q4k, w, rb, n_in, n_rows, x, n_in, n_tokens, y, n_rows, ws,
                                 clv_cuda_matmul_workspace_bytes(n_in, 8, n_tokens) - 1),
                 CLV_ERR_ARG);
    CHECK_STATUS(clv_cuda_matmul(blas, q4k, w, rb, n_in, n_rows, x, n_in, n_tokens, y, n_rows, ws, 0), CLV_ERR_ARG);
    CHECK_EQ_INT(clv_cuda_matmul_workspace_bytes(0, 16, 8), 0);
    CHECK_EQ_INT(clv_cuda_matmul_workspace_bytes(256, 16, 0), 0);
    CHECK_EQ_INT(clv_cuda_matmul_workspace_bytes(256, -1, 8), 0);
    CHECK(clv_cuda_matmul_workspace_bytes(256, 16, 8) < clv_cuda_matmul_workspace_bytes(256, 1 << 20, 8));
    CUDA_OK(cudaDeviceSynchronize());
    cudaFree(w), cudaFree(x), cudaFree(y), cudaFree(ws);
}

/* Informational: time of n_rows x n_in x n_tokens products, as TFLOP/s and
 * weight GB/s. */
static void speed(int32_t type, int64_t n_in, int64_t n_rows, int64_t n_tokens) {
    uint64_t row_bytes = 0;
    clv_type_bytes(type, n_in, &row_bytes);
    size_t w_bytes = (size_t)row_bytes * (size_t)n_rows;
    size_t ws_bytes = clv_cuda_matmul_workspace_bytes(n_in, n_rows, n_tokens);
    const clv_type_info *info = clv_type_get(type);
    uint8_t *w = malloc(w_bytes);
    random_blocks(type, w, w_bytes / (size_t)info->block_bytes, (size_t)info->block_bytes);
    float *x = malloc(sizeof(float) * (size_t)(n_in * n_tokens));
    for (int64_t i = 0; i < n_in * n_tokens; i++) x[i] = frand();
    void *w_dev = NULL, *ws_dev = NULL;
    float *x_dev = NULL, *y_dev = NULL;
    CUDA_OK(cudaMalloc(&w_dev, w_bytes));
    CUDA_OK(cudaMalloc((void **)&x_dev, sizeof(float) * (size_t)(n_in * n_tokens)));
    CUDA_OK(cudaMalloc((void **)&y_dev, sizeof(float) * (size_t)(n_rows * n_tokens)));
    CUDA_OK(cudaMalloc(&ws_dev, ws_bytes));
    CUDA_OK(cudaMemcpy(w_dev, w, w_bytes, cudaMemcpyHostToDevice));
    CUDA_OK(cudaMemcpy(x_dev, x, sizeof(float) * (size_t)(n_in * n_tokens), cudaMemcpyHostToDevice));
    cudaEvent_t t0, t1;
    cudaEventCreate(&t0);
    cudaEventCreate(&t1);
    for (int i = 0; i < 3; i++) { /* warm-up: cuBLAS picks and loads its kernels */
        CHECK_STATUS(clv_cuda_matmul(blas, type, w_dev, row_bytes, n_in, n_rows, x_dev, n_in, n_tokens, y_dev, n_rows,
                                     ws_dev, ws_bytes),
                     CLV_OK);
    }
    const int reps = 20;
    cudaEventRecord(t0, NULL);
    for (int i = 0; i < reps; i++) {
        clv_cuda_matmul(blas, type, w_dev, row_bytes, n_in, n_rows, x_dev, n_in, n_tokens, y_dev, n_rows, ws_dev,
                        ws_bytes);
    }
    cudaEventRecord(t1, NULL);
    CUDA_OK(cudaEventSynchronize(t1));
    float ms = 0;
    cudaEventElapsedTime(&ms, t0, t1);
    double s = ms * 1e-3 / reps;
    printf("%s %lld x %lld x %lld tokens: %.1f us per product, %.1f TFLOP/s, %.0f GB/s of weights (%.1f MiB "
           "workspace)\n",
           clv_type_name(type), (long long)n_rows, (long long)n_in, (long long)n_tokens, s * 1e6,
           2.0 * (double)n_rows * (double)n_in * (double)n_tokens / s / 1e12, (double)w_bytes / s / 1e9,
           ws_bytes / 1048576.0);
    cudaEventDestroy(t0);
    cudaEventDestroy(t1);
    cudaFree(w_dev), cudaFree(x_dev), cudaFree(y_dev), cudaFree(ws_dev);
    free(w), free(x);
}

/* Routed experts in one launch (clv_cuda_matmul_experts): groups of 0, 1,
 * 5, 32, 33 and 70 rows (tiles full, short, several per expert), every
 * output against float64 with the exact bound above; an expert id out of
 * range gives NaN in its rows only; bad arguments are refused. The weights
 * start `shift` bytes into their allocation: blocks too misaligned for a
 * type's vector loads take the element-by-element decode. */
static void check_experts(int32_t type, int64_t n_in, int64_t n_out, size_t shift) {
    const int64_t counts[] = {5, 0, 70, 1, 33, 0, 32, 2};
    const int64_t n_expert = (int64_t)(sizeof counts / sizeof counts[0]);
    int64_t off[9] = {0};
    for (int64_t e = 0; e < n_expert; e++) off[e + 1] = off[e] + counts[e];
    int64_t A = off[n_expert];
    uint64_t row_bytes = 0;
    CHECK(clv_type_bytes(type, n_in, &row_bytes));
    size_t expert_bytes = (size_t)row_bytes * (size_t)n_out, total = expert_bytes * (size_t)n_expert;
    uint8_t *w = malloc(total);
    const clv_type_info *ti = clv_type_get(type);
    if (is_plain(type)) { /* random bits would be NaN and inf: plain numbers */
        for (size_t i = 0; i < total / ti->block_bytes; i++) {
            float v = frand();
            if (type == CLV_TYPE_F32) memcpy(w + 4 * i, &v, 4);
            else if (type == CLV_TYPE_F16) ((uint16_t *)(void *)w)[i] = clv_fp32_to_fp16(v);
            else ((uint16_t *)(void *)w)[i] = clv_fp32_to_bf16(v);
        }
    } else {
        random_blocks(type, w, total / ti->block_bytes, ti->block_bytes);
    }
    float *x = malloc(sizeof(float) * (size_t)(A * n_in)), *y = malloc(sizeof(float) * (size_t)(A * n_out));
    float *dec = malloc(sizeof(float) * (size_t)n_in);
    for (int64_t i = 0; i < A * n_in; i++) x[i] = frand();
    clv_cuda_expert_tile tiles[64];
    int64_t n_tiles = clv_cuda_expert_tiles(off, n_expert, tiles);
    CHECK(n_tiles <= A / CLV_CUDA_EXPERT_TILE_ROWS + n_expert);
    uint8_t *d_w = NULL;
    float *d_x = NULL, *d_y = NULL;
    clv_cuda_expert_tile *d_t = NULL;
    CUDA_OK(cudaMalloc((void **)&d_w, total + shift));
    CUDA_OK(cudaMalloc((void **)&d_x, sizeof(float) * (size_t)(A * n_in)));
    CUDA_OK(cudaMalloc((void **)&d_y, sizeof(float) * (size_t)(A * n_out)));
    CUDA_OK(cudaMalloc((void **)&d_t, sizeof tiles));
    uint8_t *d_alloc = d_w;
    d_w += shift;
    CUDA_OK(cudaMemcpy(d_w, w, total, cudaMemcpyHostToDevice));
    CUDA_OK(cudaMemcpy(d_x, x, sizeof(float) * (size_t)(A * n_in), cudaMemcpyHostToDevice));
    CUDA_OK(cudaMemcpy(d_t, tiles, sizeof(clv_cuda_expert_tile) * (size_t)n_tiles, cudaMemcpyHostToDevice));
    CHECK_STATUS(clv_cuda_matmul_experts(type, d_w, (size_t)row_bytes, n_in, n_out, n_expert, d_t, n_tiles, d_x, NULL, n_in,
                                         d_y, n_out, NULL),
                 CLV_OK);
    CUDA_OK(cudaMemcpy(y, d_y, sizeof(float) * (size_t)(A * n_out), cudaMemcpyDeviceToHost));
    double worst = 0;
    for (int64_t e = 0; e < n_expert; e++) {
        for (int64_t r = 0; r < n_out; r++) {
            CHECK_STATUS(clv_dequantize_row(type, w + (size_t)e * expert_bytes + (size_t)r * row_bytes, dec, n_in),
                         CLV_OK);
            for (int64_t t = off[e]; t < off[e + 1]; t++) {
                double ref = 0, S = 0;
                for (int64_t i = 0; i < n_in; i++) {
                    ref += (double)dec[i] * x[t * n_in + i];
                    S += fabs((double)dec[i] * x[t * n_in + i]);
                }
                double bound = (2 * TF32_U + TF32_U * TF32_U) * S + ACCUM_BOUND * (1 + TF32_U) * (1 + TF32_U) * S;
                double err = fabs((double)y[t * n_out + r] - ref);
                double rel = err / (S > 0 ? S : 1);
                if (!(rel <= worst)) worst = rel;
                if (!(err <= bound)) {
                    CHECK_MSG(false, "experts %s: expert %lld row %lld token %lld: %g vs %g (bound %g)",
                              clv_type_name(type), (long long)e, (long long)r, (long long)t, (double)y[t * n_out + r],
                              ref, bound);
                    goto done;
                }
            }
        }
    }
    printf("experts %-7s %lld x %lld, %lld rows in %lld tiles, weights at +%zu: worst error %.2e of S\n",
           clv_type_name(type), (long long)n_out, (long long)n_in, (long long)A, (long long)n_tiles, shift, worst);
    /* Rows read through x_rows: X stored in reverse order, the same bits out. */
    {
        float *xr = malloc(sizeof(float) * (size_t)(A * n_in)), *y2 = malloc(sizeof(float) * (size_t)(A * n_out));
        int32_t *map = malloc(sizeof(int32_t) * (size_t)A), *d_map = NULL;
        for (int64_t t = 0; t < A; t++) {
            memcpy(xr + (A - 1 - t) * n_in, x + t * n_in, sizeof(float) * (size_t)n_in);
            map[t] = (int32_t)(A - 1 - t);
        }
        CUDA_OK(cudaMalloc((void **)&d_map, sizeof(int32_t) * (size_t)A));
        CUDA_OK(cudaMemcpy(d_map, map, sizeof(int32_t) * (size_t)A, cudaMemcpyHostToDevice));
        CUDA_OK(cudaMemcpy(d_x, xr, sizeof(float) * (size_t)(A * n_in), cudaMemcpyHostToDevice));
        CHECK_STATUS(clv_cuda_matmul_experts(type, d_w, (size_t)row_bytes, n_in, n_out, n_expert, d_t, n_tiles, d_x,
                                             d_map, n_in, d_y, n_out, NULL),
                     CLV_OK);
        CUDA_OK(cudaMemcpy(y2, d_y, sizeof(float) * (size_t)(A * n_out), cudaMemcpyDeviceToHost));
        CHECK_MSG(!memcmp(y2, y, sizeof(float) * (size_t)(A * n_out)),
                  "experts %s: rows read through x_rows must give the same bits", clv_type_name(type));
        CUDA_OK(cudaMemcpy(d_x, x, sizeof(float) * (size_t)(A * n_in), cudaMemcpyHostToDevice));
        cudaFree(d_map);
        free(xr), free(y2), free(map);
    }
    /* An id out of range: NaN in that tile's rows, the others as before. */
    {
        clv_cuda_expert_tile bad = tiles[0];
        bad.expert = (int32_t)n_expert;
        CUDA_OK(cudaMemcpy(d_t, &bad, sizeof bad, cudaMemcpyHostToDevice));
        float *y2 = malloc(sizeof(float) * (size_t)(A * n_out));
        CHECK_STATUS(clv_cuda_matmul_experts(type, d_w, (size_t)row_bytes, n_in, n_out, n_expert, d_t, n_tiles, d_x,
                                             NULL, n_in, d_y, n_out, NULL),
                     CLV_OK);
        CUDA_OK(cudaMemcpy(y2, d_y, sizeof(float) * (size_t)(A * n_out), cudaMemcpyDeviceToHost));
        int64_t r0 = tiles[0].row0, r1 = r0 + tiles[0].n_rows;
        bool ok = true;
        for (int64_t i = 0; i < A * n_out; i++) {
            int64_t t = i / n_out;
            ok = ok && (t >= r0 && t < r1 ? isnan(y2[i]) : !memcmp(&y2[i], &y[i], sizeof(float)));
        }
        CHECK_MSG(ok, "experts %s: an expert id out of range must give NaN in its rows only", clv_type_name(type));
        free(y2);
    }
    /* Refusals: n_in not a multiple of 32, short strides, no tiles pointer. */
    CHECK_STATUS(clv_cuda_matmul_experts(CLV_TYPE_F32, d_w, 40, 10, n_out, n_expert, d_t, n_tiles, d_x, NULL, 10, d_y,
                                         n_out, NULL),
                 CLV_ERR_ARG);
    CHECK_STATUS(clv_cuda_matmul_experts(type, d_w, (size_t)row_bytes, n_in, n_out, n_expert, d_t, n_tiles, d_x,
                                         NULL, n_in - 1, d_y, n_out, NULL),
                 CLV_ERR_ARG);
    CHECK_STATUS(clv_cuda_matmul_experts(type, d_w, (size_t)row_bytes, n_in, n_out, n_expert, NULL, n_tiles, d_x, NULL, n_in,
                                         d_y, n_out, NULL),
                 CLV_ERR_ARG);
done:
    CUDA_OK(cudaDeviceSynchronize());
    cudaFree(d_alloc), cudaFree(d_x), cudaFree(d_y), cudaFree(d_t);
    free(w), free(x), free(y), free(dec);
}

/* For runs under compute-sanitizer: --small leaves out the prompt-sized
 * cases and the speed figures; --experts runs only the routed-experts
 * kernel's cases (racecheck is slow on shared memory, and the cuBLAS
 * products are not ours to check). */
int main(int argc, char **argv) {
    bool experts_only = argc > 1 && !strcmp(argv[1], "--experts");
    bool small = experts_only || (argc > 1 && !strcmp(argv[1], "--small"));
    int n_dev = 0;
    if (cudaGetDeviceCount(&n_dev) != cudaSuccess || n_dev == 0) TEST_SKIP("no CUDA device");
    CHECK_STATUS(clv_cuda_matmul_create(NULL, &blas), CLV_OK);
    if (!blas) return test_finish("test_cuda_matmul");
    const int32_t types[] = {CLV_TYPE_F32,  CLV_TYPE_F16,  CLV_TYPE_BF16,   CLV_TYPE_Q4_0,   CLV_TYPE_Q4_1,
                             CLV_TYPE_Q5_0, CLV_TYPE_Q5_1, CLV_TYPE_Q8_0,   CLV_TYPE_Q8_1,   CLV_TYPE_Q2_K,
                             CLV_TYPE_Q3_K, CLV_TYPE_Q4_K, CLV_TYPE_Q5_K,   CLV_TYPE_Q6_K,   CLV_TYPE_Q8_K,
                             CLV_TYPE_IQ4_NL, CLV_TYPE_IQ4_XS, CLV_TYPE_MXFP4};
    int n_types = (int)(sizeof types / sizeof types[0]);
    for (int k = 0; k < n_types; k++) CHECK(clv_type_can_dequantize(types[k]));
    for (int k = 0; k < n_types && !experts_only; k++) {
        int32_t type = types[k];
        /* Quantizer-made blocks; panels of 8 rows (the least workspace) in the second run. */
        check_case(&(matmul_case){type, 8, 256, 1000, 0, 0, 0, 8});
        /* Odd row count and strides, rows at odd addresses; panels of 200 rows (the last one short). */
        check_case(&(matmul_case){type, 33, 1024, 4097, 6, 3, 5, 200});
        /* A prompt batch at model width (sampled check). */
        if (!small) check_case(&(matmul_case){type, 512, 4096, 1000, 0, 0, 0, 0});
    }
    if (!experts_only) {
        /* Plain types take any width: rows not a whole number of 16-byte units. */
        check_case(&(matmul_case){CLV_TYPE_F32, 33, 999, 77, 0, 1, 3, 16});
        check_case(&(matmul_case){CLV_TYPE_F16, 9, 1001, 77, 2, 0, 1, 0});
        check_case(&(matmul_case){CLV_TYPE_BF16, 8, 13, 5, 0, 0, 0, 0});
        bad_arguments();
    }
    for (int k = 0; k < n_types; k++) check_experts(types[k], 512, 200, 0);
    /* The types with loads of their own, on blocks aligned for them and not. */
    const int32_t own[] = {CLV_TYPE_Q4_K, CLV_TYPE_Q5_K, CLV_TYPE_Q6_K, CLV_TYPE_Q8_0};
    for (int k = 0; k < 4; k++) check_experts(own[k], 768, 136, 2), check_experts(own[k], 768, 136, 1);
    check_experts(CLV_TYPE_Q4_K, 2048, 768, 0); /* qwen3-30b-a3b's gate/up */
    check_experts(CLV_TYPE_Q6_K, 768, 2048, 0); /* and its down */
    if (small) goto out;
    speed(CLV_TYPE_Q4_K, 4096, 4096, 512);
    speed(CLV_TYPE_Q4_K, 4096, 14336, 512); /* a llama-3-8b FFN up/gate matrix */
out:
    clv_cuda_matmul_free(blas);
    return test_finish("test_cuda_matmul");
}
