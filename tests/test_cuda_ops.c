/* The GPU's small ops (kernels/cuda/cuda_ops.h) against the CPU's, on
 * random inputs of several shapes: lengths of 1, around the warp size,
 * model widths and a 151936-entry vocabulary row. The CPU side is the
 * project's own op on the scalar path (clv_vec_*, and the clv_op_* ops
 * through a context that holds only a one-thread pool); where the CPU code is
 * not callable alone (MoE routing, greedy argmax, ReLU) the reference below
 * mirrors it line for line. Bounds, and why:
 *   rmsnorm         |gpu-cpu| <= 1e-6 max(1,|cpu|): both sum squares in
 *                   double and multiply in the same order (expected: equal).
 *   rope            |gpu-cpu| <= 1e-5 max(1,|x0|+|x1|) + (|x0|+|x1|) |theta| 2^-23
 *                   over each rotated pair: cos/sin within an ulp, plus one
 *                   ulp of the angle in case the machine's powf rounds the
 *                   frequency differently from the GPU's correctly rounded
 *                   one (large positions magnify it); dims past n_rot exact.
 *   silu/gelu/glu   |gpu-cpu| <= 1e-5 max(1,|cpu|): expf/tanhf within 2 ulp.
 *   relu, add, mul  exact.
 *   softmax         |gpu-cpu| <= 1e-5 |cpu| per element, 0 stays 0.
 *   top-k, routing  ids exact, top-k values exact, routing weights
 *                   |gpu-cpu| <= 1e-6 |cpu| (both in double, then rounded).
 *   get_rows        exact (bit for bit, every type the GPU decodes).
 *   argmax          exact, ties and NaN/-inf included.
 *   weighted sum,   exact: the same products and sums in the same order, one
 *   MoE combine     rounding each (the reference below spells out the CPU
 *                   combine's loop with volatile temporaries, so no FMA).
 *   KV store pair   exact: the CPU's fp16 rounding in the rows named, K and
 *                   V of different widths in one launch.
 *   expert matvec   exact against clv_cuda_matvec on each chosen expert's
 *                   matrix (test_cuda_matvec holds that to the CPU); an id
 *                   out of range gives NaN, not a stray read; the fused
 *                   gate/up experts exact against two products and the GLU.
 * The fused kernels are held to the kernels they stand for, bit for bit:
 *   add + rmsnorm   clv_cuda_add then clv_cuda_rmsnorm (and the CPU ops
 *                   within the rmsnorm bound);
 *   q/k rope+store  clv_cuda_rmsnorm over the heads, clv_cuda_rope and
 *                   clv_cuda_kv_store_pair (heads of up to 128; wider heads
 *                   sum their squares in another order: the rmsnorm bound);
 *   MoE router      clv_cuda_matvec (F32) then clv_cuda_moe_route, twice
 *                   in a row (the counters reset);
 *   experts combine clv_cuda_matvec_experts then clv_cuda_moe_combine; an
 *                   id out of range gives NaN in its token's row only.
 * Skips without a CUDA device. */
#include <cuda_runtime_api.h>

#include "context.h"
#include "cuda_matvec.h"
#include "cuda_ops.h"
#include "dequantize.h"
#include "matvec.h"
#include "ops.h"
#include "quantize.h"
#include "status.h"
#include "test.h"
#include "threadpool.h"
#include "types.h"
#include "vec.h"

#include "random_blocks.h"

_Static_assert(CLV_CUDA_ACT_SILU == (int)CLV_ACT_SILU && CLV_CUDA_ACT_GELU == (int)CLV_ACT_GELU &&
                   CLV_CUDA_ACT_RELU == (int)CLV_ACT_RELU,
               "clv_cuda_act mirrors clv_ffn_act");
_Static_assert(CLV_CUDA_ROPE_NONE == (int)CLV_ROPE_NONE && CLV_CUDA_ROPE_NORMAL == (int)CLV_ROPE_NORMAL &&
                   CLV_CUDA_ROPE_NEOX == (int)CLV_ROPE_NEOX,
               "clv_cuda_rope_mode mirrors clv_rope_type");

#define CUDA_OK(call) CHECK_MSG((call) == cudaSuccess, "%s: %s", #call, cudaGetErrorString(cudaGetLastError()))

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void) {
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return rng;
}

/* Uniform in [-1, 1). */
static float frand(void) { return (float)((rnd() >> 11) * (1.0 / 9007199254740992.0)) * 2.0f - 1.0f; }

/* The CPU ops take a context only for its thread pool (and a byte counter):
 * with one thread they run inline. */
static clv_context cpu;

/* Device buffer of `bytes` (at least 1), with `src` copied in when not NULL. */
static void *dev(const void *src, size_t bytes) {
    void *p = NULL;
    if (cudaMalloc(&p, bytes ? bytes : 1) != cudaSuccess) {
        fprintf(stderr, "cudaMalloc of %zu bytes failed\n", bytes);
        exit(1);
    }
    if (src) CUDA_OK(cudaMemcpy(p, src, bytes, cudaMemcpyHostToDevice));
    return p;
}

static void to_host(void *dst, const void *src_dev, size_t bytes) {
    CUDA_OK(cudaDeviceSynchronize()); /* kernel faults surface here */
    CUDA_OK(cudaMemcpy(dst, src_dev, bytes, cudaMemcpyDeviceToHost));
}

static float *falloc(int64_t n) { return malloc(sizeof(float) * (size_t)(n > 0 ? n : 1)); }

/* max |a - b| / max(1, |b|) over n (NaN counts as infinitely wrong). */
static double norm_err(const float *a, const float *b, int64_t n) {
    double worst = 0;
    for (int64_t i = 0; i < n; i++) {
        double e = fabs((double)a[i] - (double)b[i]) / fmax(1.0, fabs((double)b[i]));
        if (!(e <= worst)) worst = isnan(e) ? INFINITY : e;
    }
    return worst;
}

/* --- RMS norm ------------------------------------------------------------------- */

static void test_rmsnorm(int64_t rows, int64_t n, bool weighted, bool in_place, float eps) {
    float *x = falloc(rows * n), *w = falloc(n), *ref = falloc(rows * n), *got = falloc(rows * n);
    for (int64_t r = 0; r < rows; r++) {
        float mag = r == 1 ? 0.0f : (float)(1 + r % 5) * 3.0f; /* row 1: all zeros */
        for (int64_t i = 0; i < n; i++) x[r * n + i] = frand() * mag;
    }
    for (int64_t i = 0; i < n; i++) w[i] = 1.0f + frand();
    for (int64_t r = 0; r < rows; r++) clv_vec_rmsnorm(ref + r * n, x + r * n, weighted ? w : NULL, n, eps);
    float *dx = dev(x, sizeof(float) * (size_t)(rows * n)), *dw = dev(w, sizeof(float) * (size_t)n);
    float *dy = in_place ? dx : dev(NULL, sizeof(float) * (size_t)(rows * n));
    CHECK_STATUS(clv_cuda_rmsnorm(dy, dx, weighted ? dw : NULL, rows, n, eps, NULL), CLV_OK);
    to_host(got, dy, sizeof(float) * (size_t)(rows * n));
    double e = norm_err(got, ref, rows * n);
    CHECK_MSG(e <= 1e-6, "rmsnorm %lld x %lld: error %.3g", (long long)rows, (long long)n, e);
    printf("rmsnorm %3lld x %6lld%s%s: %.2e\n", (long long)rows, (long long)n, weighted ? " w" : "",
           in_place ? " in place" : "", e);
    cudaFree(dx), cudaFree(dw);
    if (!in_place) cudaFree(dy);
    free(x), free(w), free(ref), free(got);
}

/* --- RoPE ------------------------------------------------------------------------- */

static void test_rope(clv_rope_type mode, int64_t T, int64_t H, int64_t hd, int64_t n_rot, float base, float scale,
                      bool factors, int32_t max_pos) {
    int64_t n = T * H * hd, half = n_rot / 2;
    float *x = falloc(n), *ref = falloc(n), *got = falloc(n), *fac = falloc(half);
    int32_t *pos = malloc(sizeof(int32_t) * (size_t)T);
    for (int64_t i = 0; i < n; i++) x[i] = 2.0f * frand();
    for (int64_t i = 0; i < half; i++) fac[i] = 1.0f + 3.5f * (frand() + 1.0f); /* Llama 3's run 1..8 */
    for (int64_t t = 0; t < T; t++) pos[t] = (int32_t)(rnd() % ((uint64_t)max_pos + 1));
    pos[0] = 0;
    if (T > 1) pos[T - 1] = max_pos;
    memcpy(ref, x, sizeof(float) * (size_t)n);
    clv_weight fw = {.name = "rope_freqs", .type = CLV_TYPE_F32, .ne = {half, 1, 1, 1},
                     .row_bytes = sizeof(float) * (uint64_t)half, .bytes = sizeof(float) * (uint64_t)half,
                     .data = fac};
    clv_rope_params rp = {.type = mode, .n_rot = n_rot, .freq_base = base, .freq_scale = scale,
                          .freq_factors = factors ? &fw : NULL};
    clv_op_rope(&cpu, ref, T, H, hd, pos, &rp);

    float *dx = dev(x, sizeof(float) * (size_t)n), *dfac = dev(fac, sizeof(float) * (size_t)half);
    int32_t *dpos = dev(pos, sizeof(int32_t) * (size_t)T);
    clv_cuda_rope_params p = {.mode = (int32_t)mode, .n_rot = n_rot, .freq_base = base, .freq_scale = scale,
                              .freq_factors = factors ? dfac : NULL};
    CHECK_STATUS(clv_cuda_rope(dx, T, H, hd, dpos, &p, NULL), CLV_OK);
    to_host(got, dx, sizeof(float) * (size_t)n);

    double worst = 0; /* |gpu - cpu| / max(1, |x0| + |x1|) */
    int64_t bad = 0, angle_slack = 0;
    for (int64_t t = 0; t < T; t++) {
        for (int64_t i = 0; i < half; i++) {
            float inv = 1.0f / powf(base, (float)(2 * i) / (float)n_rot);
            if (factors) inv /= fac[i];
            double theta = fabs((double)((float)pos[t] * scale * inv));
            for (int64_t h = 0; h < H; h++) {
                int64_t o = (t * H + h) * hd;
                bool neox = mode == CLV_ROPE_NEOX;
                int64_t i0 = o + (neox ? i : 2 * i), i1 = o + (neox ? i + half : 2 * i + 1);
                double mag = fabs(x[i0]) + fabs(x[i1]);
                for (int k = 0; k < 2; k++) {
                    int64_t j = k ? i1 : i0;
                    double d = fabs((double)got[j] - (double)ref[j]);
                    double tight = 1e-5 * fmax(1.0, mag);
                    if (!(d <= tight + mag * theta * 0x1p-23)) bad++;
                    else if (d > tight) angle_slack++;
                    if (!(d / fmax(1.0, mag) <= worst)) worst = d / fmax(1.0, mag);
                }
            }
        }
        for (int64_t h = 0; h < H; h++) { /* the dims past n_rot stay as they were */
            int64_t o = (t * H + h) * hd;
            for (int64_t i = n_rot; i < hd; i++) bad += got[o + i] != x[o + i];
        }
    }
    CHECK_MSG(bad == 0, "rope %s %lld x %lld x %lld rot %lld: %lld elements out of bounds (worst %.3g)",
              mode == CLV_ROPE_NEOX ? "neox" : "normal", (long long)T, (long long)H, (long long)hd,
              (long long)n_rot, (long long)bad, worst);
    printf("rope %-6s %2lld x %2lld x %3lld rot %3lld base %-7g scale %-5g%s pos <= %6d: %.2e%s\n",
           mode == CLV_ROPE_NEOX ? "neox" : "normal", (long long)T, (long long)H, (long long)hd, (long long)n_rot,
           (double)base, (double)scale, factors ? " factors" : "", (int)max_pos, worst,
           angle_slack ? " (angle slack used)" : "");
    cudaFree(dx), cudaFree(dfac), cudaFree(dpos);
    free(x), free(ref), free(got), free(fac), free(pos);
}

static void test_rope_none(void) {
    float x[2 * 8], got[2 * 8];
    int32_t pos[2] = {3, 7};
    for (int i = 0; i < 16; i++) x[i] = frand();
    float *dx = dev(x, sizeof x);
    int32_t *dpos = dev(pos, sizeof pos);
    clv_cuda_rope_params p = {.mode = CLV_CUDA_ROPE_NONE, .n_rot = 8, .freq_base = 10000.0f, .freq_scale = 1.0f};
    CHECK_STATUS(clv_cuda_rope(dx, 2, 1, 8, dpos, &p, NULL), CLV_OK);
    p.mode = CLV_CUDA_ROPE_NEOX, p.n_rot = 0;
    CHECK_STATUS(clv_cuda_rope(dx, 2, 1, 8, dpos, &p, NULL), CLV_OK);
    to_host(got, dx, sizeof got);
    CHECK(memcmp(got, x, sizeof x) == 0);
    cudaFree(dx), cudaFree(dpos);
}

/* --- activations, GLUs, add, mul ------------------------------------------------ */

static float relu1(float x) { return x > 0.0f ? x : 0.0f; } /* clv_op_glu's ReLU */

static void test_elementwise(int64_t n) {
    float *x = falloc(n), *u = falloc(n), *ref = falloc(n), *got = falloc(n);
    for (int64_t i = 0; i < n; i++) x[i] = 12.0f * frand(), u[i] = 4.0f * frand();
    if (n > 4) x[1] = 0.0f, x[2] = -90.0f, x[3] = 90.0f, x[4] = -4.0f; /* exp overflow, tanh -> -1 */
    size_t bytes = sizeof(float) * (size_t)n;
    float *dx = dev(x, bytes), *du = dev(u, bytes), *dy = dev(NULL, bytes);
    const char *names[] = {"silu", "gelu", "relu"};
    for (int a = 0; a < 3; a++) {
        /* act(x) */
        if (a == CLV_CUDA_ACT_SILU) clv_vec_silu(ref, x, n);
        else if (a == CLV_CUDA_ACT_GELU) clv_vec_gelu(ref, x, n);
        else for (int64_t i = 0; i < n; i++) ref[i] = relu1(x[i]);
        CHECK_STATUS(clv_cuda_activation(dy, dx, n, (clv_cuda_act)a, NULL), CLV_OK);
        to_host(got, dy, bytes);
        double e = norm_err(got, ref, n);
        if (a == CLV_CUDA_ACT_RELU) CHECK_MSG(memcmp(got, ref, bytes) == 0, "relu %lld not exact", (long long)n);
        CHECK_MSG(e <= 1e-5, "%s %lld: error %.3g", names[a], (long long)n, e);
        printf("%s %6lld: %.2e", names[a], (long long)n, e);
        /* act(gate) * up, by the CPU op; the GPU one in place on a copy of gate */
        clv_op_glu(&cpu, ref, x, u, 1, n, (clv_ffn_act)a);
        CUDA_OK(cudaMemcpy(dy, dx, bytes, cudaMemcpyDeviceToDevice));
        CHECK_STATUS(clv_cuda_glu(dy, dy, du, n, (clv_cuda_act)a, NULL), CLV_OK);
        to_host(got, dy, bytes);
        e = norm_err(got, ref, n);
        if (a == CLV_CUDA_ACT_RELU) CHECK_MSG(memcmp(got, ref, bytes) == 0, "relu glu %lld not exact", (long long)n);
        CHECK_MSG(e <= 1e-5, "%s glu %lld: error %.3g", names[a], (long long)n, e);
        printf(", glu %.2e\n", e);
    }
    /* The residual add (clv_op_add: dst += src) and mul, exact. */
    memcpy(ref, x, bytes);
    clv_op_add(&cpu, ref, u, 1, n);
    CHECK_STATUS(clv_cuda_add(dy, dx, du, n, NULL), CLV_OK);
    to_host(got, dy, bytes);
    CHECK_MSG(memcmp(got, ref, bytes) == 0, "add %lld not exact", (long long)n);
    clv_vec_mul(ref, x, u, n);
    CHECK_STATUS(clv_cuda_mul(dx, dx, du, n, NULL), CLV_OK); /* in place */
    to_host(got, dx, bytes);
    CHECK_MSG(memcmp(got, ref, bytes) == 0, "mul %lld not exact", (long long)n);
    cudaFree(dx), cudaFree(du), cudaFree(dy);
    free(x), free(u), free(ref), free(got);
}

/* --- softmax ------------------------------------------------------------------------ */

static void test_softmax(int64_t rows, int64_t n, bool with_neg_inf, bool in_place) {
    int64_t total = rows * n;
    float *x = falloc(total), *ref = falloc(total), *got = falloc(total);
    for (int64_t i = 0; i < total; i++) x[i] = 10.0f * frand();
    if (with_neg_inf) {
        for (int64_t i = 0; i < total; i += 7) x[i] = -INFINITY; /* masked entries; each row keeps finite ones */
    }
    for (int64_t r = 0; r < rows; r++) clv_vec_softmax(ref + r * n, x + r * n, n);
    float *dx = dev(x, sizeof(float) * (size_t)total);
    float *dy = in_place ? dx : dev(NULL, sizeof(float) * (size_t)total);
    CHECK_STATUS(clv_cuda_softmax(dy, dx, rows, n, NULL), CLV_OK);
    to_host(got, dy, sizeof(float) * (size_t)total);
    double worst = 0;
    int64_t bad = 0;
    for (int64_t i = 0; i < total; i++) {
        double d = fabs((double)got[i] - (double)ref[i]);
        if (ref[i] == 0.0f ? got[i] != 0.0f : !(d <= 1e-5 * fabs(ref[i]))) bad++;
        if (ref[i] != 0.0f && !(d / fabs(ref[i]) <= worst)) worst = d / fabs(ref[i]);
    }
    CHECK_MSG(bad == 0, "softmax %lld x %lld: %lld entries out of bounds, worst relative error %.3g",
              (long long)rows, (long long)n, (long long)bad, worst);
    printf("softmax %2lld x %6lld%s%s: relative %.2e\n", (long long)rows, (long long)n,
           with_neg_inf ? " -inf" : "", in_place ? " in place" : "", worst);
    cudaFree(dx);
    if (!in_place) cudaFree(dy);
    free(x), free(ref), free(got);
}

/* --- top-k and MoE routing ------------------------------------------------------------- */

/* runtime/ops_cpu_moe.c's route_tokens for one row (static there). */
static void route_ref(const float *l, int64_t n_expert, int64_t k, bool renormalize, int32_t *ids, float *w) {
    float mx = -INFINITY;
    for (int64_t i = 0; i < n_expert; i++) mx = l[i] > mx ? l[i] : mx;
    double sum = 0;
    for (int64_t i = 0; i < n_expert; i++) sum += exp((double)l[i] - mx);
    for (int64_t j = 0; j < k; j++) {
        int64_t best = -1;
        for (int64_t i = 0; i < n_expert; i++) {
            bool taken = false;
            for (int64_t q = 0; q < j; q++) taken |= ids[q] == i;
            if (!taken && (best < 0 || l[i] > l[best])) best = i;
        }
        ids[j] = (int32_t)best;
        w[j] = (float)(exp((double)l[best] - mx) / sum);
    }
    if (renormalize) {
        float s = 0.0f;
        for (int64_t j = 0; j < k; j++) s += w[j];
        for (int64_t j = 0; j < k; j++) w[j] /= s;
    }
}

/* ties: values from a few levels, so that equal values are common. */
static void test_topk(int64_t rows, int64_t n, int64_t k, bool ties, bool route) {
    int64_t total = rows * n;
    float *x = falloc(total), *vals = falloc(rows * k), *wref = falloc(rows * k), *got = falloc(rows * k);
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)(rows * k)), *gids = malloc(sizeof(int32_t) * (size_t)(rows * k));
    for (int64_t i = 0; i < total; i++) x[i] = ties ? (float)(rnd() % 9) * 0.5f - 2.0f : 4.0f * frand();
    float *dx = dev(x, sizeof(float) * (size_t)total), *dv = dev(NULL, sizeof(float) * (size_t)(rows * k));
    int32_t *di = dev(NULL, sizeof(int32_t) * (size_t)(rows * k));
    for (int renorm = 0; renorm < (route ? 2 : 1); renorm++) {
        for (int64_t r = 0; r < rows; r++) route_ref(x + r * n, n, k, renorm, ids + r * k, wref + r * k);
        if (route) CHECK_STATUS(clv_cuda_moe_route(di, dv, dx, rows, n, k, renorm, NULL), CLV_OK);
        else CHECK_STATUS(clv_cuda_topk(di, dv, dx, rows, n, k, NULL), CLV_OK);
        to_host(gids, di, sizeof(int32_t) * (size_t)(rows * k));
        to_host(got, dv, sizeof(float) * (size_t)(rows * k));
        int64_t wrong_ids = 0, wrong_vals = 0;
        double worst = 0;
        for (int64_t j = 0; j < rows * k; j++) {
            wrong_ids += gids[j] != ids[j];
            if (route) {
                double e = fabs((double)got[j] - (double)wref[j]) / fabs((double)wref[j]);
                wrong_vals += !(e <= 1e-6);
                if (!(e <= worst)) worst = e;
            } else {
                vals[j] = x[(j / k) * n + ids[j]];
                wrong_vals += memcmp(&got[j], &vals[j], sizeof(float)) != 0;
            }
        }
        CHECK_MSG(wrong_ids == 0 && wrong_vals == 0, "%s %lld x %lld k %lld%s: %lld ids, %lld values wrong",
                  route ? "moe_route" : "topk", (long long)rows, (long long)n, (long long)k,
                  renorm ? " renormalized" : "", (long long)wrong_ids, (long long)wrong_vals);
        printf("%-9s %2lld x %6lld k %2lld%s%s: ids exact, weights %.2e\n", route ? "moe_route" : "topk",
               (long long)rows, (long long)n, (long long)k, ties ? " ties" : "", renorm ? " renorm" : "", worst);
    }
    cudaFree(dx), cudaFree(dv), cudaFree(di);
    free(x), free(vals), free(wref), free(got), free(ids), free(gids);
}

/* NaN ranks as -inf, so a row always gives k distinct ids. */
static void test_topk_nan(void) {
    const float x[5] = {NAN, 1.0f, -INFINITY, 3.0f, -INFINITY};
    const int32_t want[5] = {3, 1, 0, 2, 4};
    int32_t got[5];
    float *dx = dev(x, sizeof x);
    int32_t *di = dev(NULL, sizeof got);
    CHECK_STATUS(clv_cuda_topk(di, NULL, dx, 1, 5, 5, NULL), CLV_OK);
    to_host(got, di, sizeof got);
    CHECK(memcmp(got, want, sizeof want) == 0);
    cudaFree(dx), cudaFree(di);
}

/* --- get_rows ---------------------------------------------------------------------------- */

static bool same_float(float a, float b) { return (isnan(a) && isnan(b)) || memcmp(&a, &b, sizeof a) == 0; }

static void test_get_rows(int32_t type, int64_t n_cols, int64_t n_rows, size_t pad, float scale) {
    uint64_t row_bytes = 0;
    CHECK(clv_type_bytes(type, n_cols, &row_bytes));
    size_t stride = (size_t)row_bytes + pad;
    uint8_t *w = calloc((size_t)n_rows, stride);
    float *src = falloc(n_cols);
    for (int64_t r = 0; r < n_rows; r++) {
        for (int64_t i = 0; i < n_cols; i++) src[i] = frand() * (1.0f + (float)(r % 7));
        if (clv_type_can_quantize(type)) {
            CHECK_STATUS(clv_quantize_row(type, src, w + (size_t)r * stride, n_cols), CLV_OK);
        } else {
            const clv_type_info *info = clv_type_get(type);
            random_blocks(type, w + (size_t)r * stride, (size_t)(n_cols / info->block_elems),
                          (size_t)info->block_bytes);
        }
    }
    enum { N_IDS = 9 };
    int32_t ids[N_IDS] = {0, (int32_t)(n_rows - 1), 5, 5, 0};
    for (int t = 5; t < N_IDS; t++) ids[t] = (int32_t)(rnd() % (uint64_t)n_rows);
    float *ref = falloc(N_IDS * n_cols), *got = falloc(N_IDS * n_cols);
    clv_weight emb = {.name = "token_embd", .type = type, .ne = {n_cols, n_rows, 1, 1}, .row_bytes = stride,
                      .bytes = stride * (uint64_t)n_rows, .data = w};
    clv_op_embed(&cpu, ref, &emb, ids, N_IDS, scale);
    void *dw = dev(w, (size_t)n_rows * stride);
    int32_t *di = dev(ids, sizeof ids);
    float *dy = dev(NULL, sizeof(float) * (size_t)(N_IDS * n_cols));
    CHECK_STATUS(clv_cuda_get_rows(type, dw, stride, n_cols, n_rows, di, N_IDS, dy, scale, NULL), CLV_OK);
    to_host(got, dy, sizeof(float) * (size_t)(N_IDS * n_cols));
    int64_t wrong = 0;
    for (int64_t i = 0; i < N_IDS * n_cols; i++) wrong += !same_float(got[i], ref[i]);
    CHECK_MSG(wrong == 0, "get_rows %s %lld x %lld (+%zu) scale %g: %lld values differ", clv_type_name(type),
              (long long)n_rows, (long long)n_cols, pad, (double)scale, (long long)wrong);
    /* An id outside the matrix gives NaN, not a read outside it. */
    int32_t bad_ids[2] = {(int32_t)n_rows, -1};
    CUDA_OK(cudaMemcpy(di, bad_ids, sizeof bad_ids, cudaMemcpyHostToDevice));
    CHECK_STATUS(clv_cuda_get_rows(type, dw, stride, n_cols, n_rows, di, 2, dy, scale, NULL), CLV_OK);
    to_host(got, dy, sizeof(float) * (size_t)(2 * n_cols));
    int64_t not_nan = 0;
    for (int64_t i = 0; i < 2 * n_cols; i++) not_nan += !isnan(got[i]);
    CHECK_MSG(not_nan == 0, "get_rows %s: %lld values of out-of-range rows are not NaN", clv_type_name(type),
              (long long)not_nan);
    cudaFree(dw), cudaFree(di), cudaFree(dy);
    free(w), free(src), free(ref), free(got);
}

/* --- argmax ---------------------------------------------------------------------------- */

/* The sampler's greedy choice (runtime/sampler.c: candidates > -inf, the
 * best by `worse`), or -1 when there is none. */
static int32_t argmax_ref(const float *x, int64_t n) {
    int32_t best = -1;
    for (int64_t i = 0; i < n; i++) {
        if (!(x[i] > -INFINITY)) continue;
        if (best < 0 || x[best] < x[i]) best = (int32_t)i; /* equal: the lower id stays */
    }
    return best;
}

static void test_argmax(int64_t n) {
    enum { ROWS = 5 };
    float *x = falloc(ROWS * n);
    int32_t ref[ROWS], got[ROWS];
    for (int64_t i = 0; i < ROWS * n; i++) x[i] = 20.0f * frand();
    /* row 1: the maximum twice; row 2: also NaN and -inf, a NaN first;
     * row 3: nothing but -inf and NaN; row 4: the maximum at the end. */
    float *r1 = x + n, *r2 = x + 2 * n, *r3 = x + 3 * n, *r4 = x + 4 * n;
    int64_t a = (int64_t)(rnd() % (uint64_t)n), b = (int64_t)(rnd() % (uint64_t)n);
    r1[a] = r1[b] = 25.0f;
    for (int64_t i = 0; i < n; i += 3) r2[i] = i % 2 ? -INFINITY : NAN;
    r2[b] = r2[n - 1 - b / 2] = 30.0f;
    for (int64_t i = 0; i < n; i++) r3[i] = i % 2 ? NAN : -INFINITY;
    r4[n - 1] = 21.0f;
    for (int r = 0; r < ROWS; r++) ref[r] = argmax_ref(x + r * n, n);
    float *dx = dev(x, sizeof(float) * (size_t)(ROWS * n));
    int32_t *dout = dev(NULL, sizeof got);
    CHECK_STATUS(clv_cuda_argmax(dout, dx, ROWS, n, NULL), CLV_OK);
    to_host(got, dout, sizeof got);
    for (int r = 0; r < ROWS; r++) {
        CHECK_MSG(got[r] == ref[r], "argmax %lld row %d: %d, want %d", (long long)n, r, got[r], ref[r]);
    }
    printf("argmax %6lld: %d %d %d %d %d\n", (long long)n, got[0], got[1], got[2], got[3], got[4]);
    cudaFree(dx), cudaFree(dout);
    free(x);
}

/* --- refusals --------------------------------------------------------------------------- */

static void test_refusals(void) {
    float *p = dev(NULL, 64 * sizeof(float));
    int32_t *ip = dev(NULL, 64 * sizeof(int32_t));
    clv_cuda_rope_params rp = {.mode = CLV_CUDA_ROPE_NORMAL, .n_rot = 7, .freq_base = 10000.0f, .freq_scale = 1.0f};
    CHECK_STATUS(clv_cuda_rope(p, 1, 1, 8, ip, &rp, NULL), CLV_ERR_ARG); /* odd n_rot */
    rp.n_rot = 16;
    CHECK_STATUS(clv_cuda_rope(p, 1, 1, 8, ip, &rp, NULL), CLV_ERR_ARG); /* n_rot > head_dim */
    rp.n_rot = 8, rp.mode = 7;
    CHECK_STATUS(clv_cuda_rope(p, 1, 1, 8, ip, &rp, NULL), CLV_ERR_ARG); /* unknown mode */
    CHECK_STATUS(clv_cuda_topk(ip, p, p, 1, 64, 33, NULL), CLV_ERR_ARG);  /* k > 32 */
    CHECK_STATUS(clv_cuda_topk(ip, p, p, 1, 4, 5, NULL), CLV_ERR_ARG);    /* k > n */
    CHECK_STATUS(clv_cuda_moe_route(ip, NULL, p, 1, 8, 2, false, NULL), CLV_ERR_ARG); /* no weights */
    CHECK_STATUS(clv_cuda_activation(p, p, 8, (clv_cuda_act)3, NULL), CLV_ERR_ARG);
    CHECK_STATUS(clv_cuda_softmax(p, p, 1, 0, NULL), CLV_ERR_ARG);
    CHECK_STATUS(clv_cuda_rmsnorm(p, p, NULL, 1, 0, 1e-5f, NULL), CLV_ERR_ARG);
    CHECK_STATUS(clv_cuda_argmax(ip, p, 1, 0, NULL), CLV_ERR_ARG);
    CHECK_STATUS(clv_cuda_get_rows(CLV_TYPE_Q4_K, p, 144, 100, 1, ip, 1, p, 1.0f, NULL), CLV_ERR_ARG);
    CHECK_STATUS(clv_cuda_get_rows(CLV_TYPE_Q4_K, p, 100, 256, 1, ip, 1, p, 1.0f, NULL), CLV_ERR_ARG);
    CHECK_STATUS(clv_cuda_get_rows(CLV_TYPE_COUNT, p, 100, 256, 1, ip, 1, p, 1.0f, NULL), CLV_ERR_UNSUPPORTED);
    /* Nothing to do is fine. */
    CHECK_STATUS(clv_cuda_rmsnorm(p, p, NULL, 0, 8, 1e-5f, NULL), CLV_OK);
    CHECK_STATUS(clv_cuda_add(p, p, p, 0, NULL), CLV_OK);
    CHECK_STATUS(clv_cuda_get_rows(CLV_TYPE_Q4_K, p, 144, 256, 1, ip, 0, p, 1.0f, NULL), CLV_OK);
    CUDA_OK(cudaDeviceSynchronize());
    cudaFree(p), cudaFree(ip);
}

/* --- MoE combine and weighted sum ------------------------------------------------ */

/* The CPU combine (runtime/ops_cpu_moe.c): from zero, in slot order, each
 * product and sum rounded to float. */
static void combine_ref(float *dst, const float *src, const int32_t *slot, const float *w, int64_t n_tokens, int64_t k,
                        int64_t n) {
    for (int64_t t = 0; t < n_tokens; t++)
        for (int64_t i = 0; i < n; i++) {
            volatile float d = 0.0f;
            for (int64_t j = 0; j < k; j++) {
                volatile float p = w[t * k + j] * src[(int64_t)slot[t * k + j] * n + i];
                d = d + p;
            }
            dst[t * n + i] = d;
        }
}

static void test_moe_combine(int64_t n_tokens, int64_t k, int64_t n) {
    int64_t A = n_tokens * k;
    float *src = falloc(A * n), *w = falloc(A), *want = falloc(n_tokens * n), *got = falloc(n_tokens * n);
    int32_t *slot = malloc(sizeof(int32_t) * (size_t)A);
    for (int64_t i = 0; i < A * n; i++) src[i] = frand() * 4.0f;
    for (int64_t i = 0; i < A; i++) w[i] = frand() + 1.0f;
    /* a permutation of the grouped rows, as grouping by expert makes */
    for (int64_t i = 0; i < A; i++) slot[i] = (int32_t)i;
    for (int64_t i = A - 1; i > 0; i--) {
        int64_t j = (int64_t)(rnd() % (uint64_t)(i + 1));
        int32_t x = slot[i];
        slot[i] = slot[j], slot[j] = x;
    }
    combine_ref(want, src, slot, w, n_tokens, k, n);
    float *d_src = dev(src, sizeof(float) * (size_t)(A * n)), *d_w = dev(w, sizeof(float) * (size_t)A);
    int32_t *d_slot = dev(slot, sizeof(int32_t) * (size_t)A);
    float *d_dst = dev(NULL, sizeof(float) * (size_t)(n_tokens * n));
    CHECK_STATUS(clv_cuda_moe_combine(d_dst, d_src, d_slot, d_w, n_tokens, k, n, NULL), CLV_OK);
    to_host(got, d_dst, sizeof(float) * (size_t)(n_tokens * n));
    CHECK_MSG(!memcmp(got, want, sizeof(float) * (size_t)(n_tokens * n)), "MoE combine %lld x %lld x %lld: error %.3g",
              (long long)n_tokens, (long long)k, (long long)n, norm_err(got, want, n_tokens * n));
    /* one token's combine with slots in order is the weighted sum */
    for (int64_t j = 0; j < k; j++) slot[j] = (int32_t)j;
    combine_ref(want, src, slot, w, 1, k, n);
    CHECK_STATUS(clv_cuda_weighted_sum(d_dst, d_src, d_w, k, n, NULL), CLV_OK);
    to_host(got, d_dst, sizeof(float) * (size_t)n);
    CHECK_MSG(!memcmp(got, want, sizeof(float) * (size_t)n), "weighted sum %lld x %lld: error %.3g", (long long)k,
              (long long)n, norm_err(got, want, n));
    CHECK_STATUS(clv_cuda_moe_combine(d_dst, d_src, d_slot, d_w, 70000, k, n, NULL), CLV_ERR_ARG);
    cudaFree(d_src), cudaFree(d_w), cudaFree(d_slot), cudaFree(d_dst);
    free(src), free(w), free(want), free(got), free(slot);
}

/* --- routed experts' products, ids on the device ---------------------------------- */

static void test_matvec_experts(int32_t type, int64_t n_expert, int64_t n_in, int64_t n_rows, int64_t n_sel,
                                bool shared_x) {
    uint64_t row_bytes = 0;
    CHECK(clv_type_bytes(type, n_in, &row_bytes));
    const clv_type_info *ti = clv_type_get(type);
    size_t expert_bytes = (size_t)row_bytes * (size_t)n_rows, total = expert_bytes * (size_t)n_expert;
    uint8_t *w = malloc(total);
    random_blocks(type, w, total / ti->block_bytes, ti->block_bytes);
    int64_t x_stride = shared_x ? 0 : n_in, n_x = shared_x ? n_in : n_sel * n_in;
    float *x = falloc(n_x), *got = falloc(n_sel * n_rows), *want = falloc(n_rows);
    for (int64_t i = 0; i < n_x; i++) x[i] = frand();
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)n_sel);
    for (int64_t s = 0; s < n_sel; s++) ids[s] = (int32_t)(rnd() % (uint64_t)n_expert);
    uint8_t *d_w = dev(w, total);
    float *d_x = dev(x, sizeof(float) * (size_t)n_x), *d_y = dev(NULL, sizeof(float) * (size_t)(n_sel * n_rows));
    float *d_one = dev(NULL, sizeof(float) * (size_t)n_rows);
    int32_t *d_ids = dev(ids, sizeof(int32_t) * (size_t)n_sel);
    CHECK_STATUS(clv_cuda_matvec_experts(type, d_w, (size_t)row_bytes, n_in, n_rows, n_expert, d_ids, n_sel, d_x,
                                         x_stride, d_y, n_rows, NULL),
                 CLV_OK);
    to_host(got, d_y, sizeof(float) * (size_t)(n_sel * n_rows));
    int bad = 0;
    for (int64_t s = 0; s < n_sel; s++) {
        CHECK_STATUS(clv_cuda_matvec(type, d_w + (size_t)ids[s] * expert_bytes, (size_t)row_bytes, n_in, n_rows,
                                     d_x + s * x_stride, d_one, NULL),
                     CLV_OK);
        to_host(want, d_one, sizeof(float) * (size_t)n_rows);
        bad += memcmp(got + s * n_rows, want, sizeof(float) * (size_t)n_rows) != 0;
    }
    CHECK_MSG(bad == 0, "expert matvec %s: %d of %lld slices differ from the plain matvec", clv_type_name(type), bad,
              (long long)n_sel);
    /* fused gate/up: up is the tensor with its experts rotated by one */
    uint8_t *w_up = malloc(total);
    memcpy(w_up, w + expert_bytes, total - expert_bytes);
    memcpy(w_up + total - expert_bytes, w, expert_bytes);
    uint8_t *d_up = dev(w_up, total);
    float *d_two = dev(NULL, sizeof(float) * (size_t)n_rows);
    CHECK_STATUS(clv_cuda_matvec_experts_glu(type, d_w, d_up, (size_t)row_bytes, n_in, n_rows, n_expert, d_ids, n_sel,
                                             d_x, x_stride, d_y, n_rows, CLV_CUDA_ACT_SILU, NULL),
                 CLV_OK);
    to_host(got, d_y, sizeof(float) * (size_t)(n_sel * n_rows));
    bad = 0;
    for (int64_t s = 0; s < n_sel; s++) {
        size_t off = (size_t)ids[s] * expert_bytes;
        CHECK_STATUS(clv_cuda_matvec(type, d_w + off, (size_t)row_bytes, n_in, n_rows, d_x + s * x_stride, d_one, NULL),
                     CLV_OK);
        CHECK_STATUS(clv_cuda_matvec(type, d_up + off, (size_t)row_bytes, n_in, n_rows, d_x + s * x_stride, d_two, NULL),
                     CLV_OK);
        CHECK_STATUS(clv_cuda_glu(d_one, d_one, d_two, n_rows, CLV_CUDA_ACT_SILU, NULL), CLV_OK);
        to_host(want, d_one, sizeof(float) * (size_t)n_rows);
        bad += memcmp(got + s * n_rows, want, sizeof(float) * (size_t)n_rows) != 0;
    }
    CHECK_MSG(bad == 0, "fused expert GLU %s: %d of %lld slices differ from two products and the GLU",
              clv_type_name(type), bad, (long long)n_sel);
    cudaFree(d_up), cudaFree(d_two);
    free(w_up);
    /* an id out of range is a bug upstream: NaN in its slice, the others intact */
    if (n_sel > 1) {
        int32_t keep_id = ids[1];
        ids[0] = (int32_t)n_expert;
        CUDA_OK(cudaMemcpy(d_ids, ids, sizeof(int32_t), cudaMemcpyHostToDevice));
        CHECK_STATUS(clv_cuda_matvec_experts(type, d_w, (size_t)row_bytes, n_in, n_rows, n_expert, d_ids, n_sel, d_x,
                                             x_stride, d_y, n_rows, NULL),
                     CLV_OK);
        to_host(got, d_y, sizeof(float) * (size_t)(2 * n_rows));
        CHECK(isnan(got[0]) && isnan(got[n_rows - 1]));
        CHECK_STATUS(clv_cuda_matvec(type, d_w + (size_t)keep_id * expert_bytes, (size_t)row_bytes, n_in, n_rows,
                                     d_x + x_stride, d_one, NULL),
                     CLV_OK);
        to_host(want, d_one, sizeof(float) * (size_t)n_rows);
        CHECK(!memcmp(got + n_rows, want, sizeof(float) * (size_t)n_rows));
    }
    CHECK_STATUS(clv_cuda_matvec_experts(type, d_w, (size_t)row_bytes, n_in, n_rows, n_expert, d_ids, n_sel, d_x,
                                         x_stride, d_y, n_rows - 1, NULL),
                 CLV_ERR_ARG); /* y slices would overlap */
    CHECK_STATUS(clv_cuda_matvec_experts(type, d_w, (size_t)row_bytes, n_in, n_rows, n_expert, NULL, n_sel, d_x,
                                         x_stride, d_y, n_rows, NULL),
                 CLV_ERR_ARG);
    CUDA_OK(cudaDeviceSynchronize());
    cudaFree(d_w), cudaFree(d_x), cudaFree(d_y), cudaFree(d_one), cudaFree(d_ids);
    free(w), free(x), free(got), free(want), free(ids);
}

/* --- KV store ------------------------------------------------------------------------ */

/* K and V in one launch: the bits of the CPU's rounding, in the rows the
 * positions name, other rows untouched; the same as two single stores. */
static void test_kv_store_pair(int32_t type, int64_t n_tokens, int64_t kw, int64_t vw) {
    const int64_t n_rows = 2 * n_tokens + 5;
    size_t es = type == CLV_TYPE_F16 ? 2 : 4;
    float *k = falloc(n_tokens * kw), *v = falloc(n_tokens * vw);
    for (int64_t i = 0; i < n_tokens * kw; i++) k[i] = frand() * 100.0f;
    for (int64_t i = 0; i < n_tokens * vw; i++) v[i] = frand() * 100.0f;
    int32_t *pos = malloc(sizeof(int32_t) * (size_t)n_tokens);
    for (int64_t t = 0; t < n_tokens; t++) pos[t] = (int32_t)(n_rows - 1 - 2 * t); /* scattered, descending */
    uint8_t *kc = calloc((size_t)(n_rows * kw), es), *vc = calloc((size_t)(n_rows * vw), es);
    uint8_t *kg = malloc((size_t)(n_rows * kw) * es), *vg = malloc((size_t)(n_rows * vw) * es);
    for (int64_t t = 0; t < n_tokens; t++) {
        for (int64_t c = 0; c < kw; c++) {
            size_t at = (size_t)(pos[t] * kw + c);
            if (es == 2) ((uint16_t *)kc)[at] = clv_fp32_to_fp16(k[t * kw + c]);
            else ((float *)kc)[at] = k[t * kw + c];
        }
        for (int64_t c = 0; c < vw; c++) {
            size_t at = (size_t)(pos[t] * vw + c);
            if (es == 2) ((uint16_t *)vc)[at] = clv_fp32_to_fp16(v[t * vw + c]);
            else ((float *)vc)[at] = v[t * vw + c];
        }
    }
    void *d_kc = dev(NULL, (size_t)(n_rows * kw) * es), *d_vc = dev(NULL, (size_t)(n_rows * vw) * es);
    CUDA_OK(cudaMemset(d_kc, 0, (size_t)(n_rows * kw) * es));
    CUDA_OK(cudaMemset(d_vc, 0, (size_t)(n_rows * vw) * es));
    float *d_k = dev(k, sizeof(float) * (size_t)(n_tokens * kw)), *d_v = dev(v, sizeof(float) * (size_t)(n_tokens * vw));
    int32_t *d_pos = dev(pos, sizeof(int32_t) * (size_t)n_tokens);
    CHECK_STATUS(clv_cuda_kv_store_pair(d_kc, d_vc, type, kw, vw, d_pos, d_k, d_v, n_tokens, NULL), CLV_OK);
    to_host(kg, d_kc, (size_t)(n_rows * kw) * es);
    to_host(vg, d_vc, (size_t)(n_rows * vw) * es);
    CHECK_MSG(!memcmp(kg, kc, (size_t)(n_rows * kw) * es) && !memcmp(vg, vc, (size_t)(n_rows * vw) * es),
              "KV store pair %s, %lld tokens of %lld and %lld", clv_type_name(type), (long long)n_tokens,
              (long long)kw, (long long)vw);
    /* a single store of K alone, over a zeroed cache, gives K's part */
    CUDA_OK(cudaMemset(d_kc, 0, (size_t)(n_rows * kw) * es));
    CHECK_STATUS(clv_cuda_kv_store(d_kc, type, kw, d_pos, d_k, n_tokens, NULL), CLV_OK);
    to_host(kg, d_kc, (size_t)(n_rows * kw) * es);
    CHECK(!memcmp(kg, kc, (size_t)(n_rows * kw) * es));
    CHECK_STATUS(clv_cuda_kv_store_pair(d_kc, NULL, type, kw, vw, d_pos, d_k, d_v, n_tokens, NULL), CLV_ERR_ARG);
    CHECK_STATUS(clv_cuda_kv_store_pair(d_kc, d_vc, CLV_TYPE_Q8_0, kw, vw, d_pos, d_k, d_v, n_tokens, NULL),
                 CLV_ERR_UNSUPPORTED);
    cudaFree(d_kc), cudaFree(d_vc), cudaFree(d_k), cudaFree(d_v), cudaFree(d_pos);
    free(k), free(v), free(pos), free(kc), free(vc), free(kg), free(vg);
}

/* Outputs in assignment order (slot NULL) are the identity grouping. */
static void test_moe_combine_in_order(int64_t n_tokens, int64_t k, int64_t n) {
    int64_t A = n_tokens * k;
    float *src = falloc(A * n), *w = falloc(A), *want = falloc(n_tokens * n), *got = falloc(n_tokens * n);
    int32_t *slot = malloc(sizeof(int32_t) * (size_t)A);
    for (int64_t i = 0; i < A * n; i++) src[i] = frand() * 4.0f;
    for (int64_t i = 0; i < A; i++) w[i] = frand() + 1.0f, slot[i] = (int32_t)i;
    combine_ref(want, src, slot, w, n_tokens, k, n);
    float *d_src = dev(src, sizeof(float) * (size_t)(A * n)), *d_w = dev(w, sizeof(float) * (size_t)A);
    float *d_dst = dev(NULL, sizeof(float) * (size_t)(n_tokens * n));
    CHECK_STATUS(clv_cuda_moe_combine(d_dst, d_src, NULL, d_w, n_tokens, k, n, NULL), CLV_OK);
    to_host(got, d_dst, sizeof(float) * (size_t)(n_tokens * n));
    CHECK_MSG(!memcmp(got, want, sizeof(float) * (size_t)(n_tokens * n)), "MoE combine in order %lld x %lld x %lld",
              (long long)n_tokens, (long long)k, (long long)n);
    cudaFree(d_src), cudaFree(d_w), cudaFree(d_dst);
    free(src), free(w), free(want), free(got), free(slot);
}


/* --- fused kernels against the kernels they stand for ------------------------ */

static void test_add_rmsnorm(int64_t rows, int64_t n, bool weighted) {
    size_t bytes = sizeof(float) * (size_t)(rows * n);
    float *x = falloc(rows * n), *d = falloc(rows * n), *w = falloc(n);
    float *want = falloc(rows * n), *got = falloc(rows * n), *sum = falloc(rows * n), *gsum = falloc(rows * n);
    for (int64_t i = 0; i < rows * n; i++) x[i] = frand() * 3.0f, d[i] = frand();
    for (int64_t i = 0; i < n; i++) w[i] = 1.0f + frand();
    float *dx = dev(x, bytes), *dd = dev(d, bytes), *dw = dev(w, sizeof(float) * (size_t)n), *dy = dev(NULL, bytes);
    float *dx2 = dev(x, bytes), *dx3 = dev(x, bytes);
    const float *wd = weighted ? dw : NULL;
    CHECK_STATUS(clv_cuda_add(dx2, dx2, dd, rows * n, NULL), CLV_OK);
    CHECK_STATUS(clv_cuda_rmsnorm(dy, dx2, wd, rows, n, 1e-6f, NULL), CLV_OK);
    to_host(want, dy, bytes);
    to_host(sum, dx2, bytes);
    CHECK_STATUS(clv_cuda_add_rmsnorm(dy, dx, dd, wd, rows, n, 1e-6f, NULL), CLV_OK);
    to_host(got, dy, bytes);
    to_host(gsum, dx, bytes);
    CHECK_MSG(!memcmp(got, want, bytes) && !memcmp(gsum, sum, bytes), "add + rmsnorm %lld x %lld differs from add, rmsnorm",
              (long long)rows, (long long)n);
    /* and the CPU ops (x becomes x + d) */
    clv_weight cw = {.name = "norm", .type = CLV_TYPE_F32, .ne = {n, 1, 1, 1}, .row_bytes = sizeof(float) * (uint64_t)n,
                     .bytes = sizeof(float) * (uint64_t)n, .data = w};
    clv_op_add_rmsnorm(&cpu, x, d, want, weighted ? &cw : NULL, rows, n, 1e-6f);
    double e = norm_err(got, want, rows * n);
    CHECK_MSG(e <= 1e-6 && !memcmp(gsum, x, bytes), "add + rmsnorm %lld x %lld against the CPU: %.3g", (long long)rows,
              (long long)n, e);
    /* dst may be the addend: the same x + d, normed over d */
    CHECK_STATUS(clv_cuda_add_rmsnorm(dd, dx3, dd, wd, rows, n, 1e-6f, NULL), CLV_OK);
    to_host(gsum, dd, bytes);
    CHECK(!memcmp(gsum, got, bytes));
    cudaFree(dx3);
    CHECK_STATUS(clv_cuda_add_rmsnorm(dy, dx, dx, wd, rows, n, 1e-6f, NULL), CLV_ERR_ARG);
    cudaFree(dx), cudaFree(dd), cudaFree(dw), cudaFree(dy), cudaFree(dx2);
    free(x), free(d), free(w), free(want), free(got), free(sum), free(gsum);
}

/* q/k norms, rope and the K/V store in one launch against the three kernels. */
static void test_qk_rope_store(clv_rope_type mode, int64_t T, int64_t H, int64_t HKV, int64_t hd, int64_t n_rot,
                               bool norms, int32_t kv_type, int32_t max_pos) {
    int64_t nq = T * H * hd, nk = T * HKV * hd, kw = HKV * hd, vw = HKV * hd, n_rows = max_pos + 1;
    size_t es = kv_type == CLV_TYPE_F16 ? 2 : 4, cache = (size_t)(n_rows * kw) * es;
    float *q = falloc(nq), *k = falloc(nk), *v = falloc(T * vw), *qn = falloc(hd), *kn = falloc(hd);
    float *gq = falloc(nq), *gk = falloc(nk), *wq = falloc(nq), *wk = falloc(nk);
    int32_t *pos = malloc(sizeof(int32_t) * (size_t)T);
    for (int64_t i = 0; i < nq; i++) q[i] = 3.0f * frand();
    for (int64_t i = 0; i < nk; i++) k[i] = 3.0f * frand();
    for (int64_t i = 0; i < T * vw; i++) v[i] = 3.0f * frand();
    for (int64_t i = 0; i < hd; i++) qn[i] = 1.0f + frand(), kn[i] = 1.0f + frand();
    for (int64_t t = 0; t < T; t++) pos[t] = (int32_t)(max_pos - t); /* distinct rows */
    float *d_q = dev(q, sizeof(float) * (size_t)nq), *d_k = dev(k, sizeof(float) * (size_t)nk);
    float *d_q2 = dev(q, sizeof(float) * (size_t)nq), *d_k2 = dev(k, sizeof(float) * (size_t)nk);
    float *d_v = dev(v, sizeof(float) * (size_t)(T * vw));
    float *d_qn = dev(qn, sizeof(float) * (size_t)hd), *d_kn = dev(kn, sizeof(float) * (size_t)hd);
    int32_t *d_pos = dev(pos, sizeof(int32_t) * (size_t)T);
    void *kc = dev(NULL, cache), *vc = dev(NULL, cache), *kc2 = dev(NULL, cache), *vc2 = dev(NULL, cache);
    CUDA_OK(cudaMemset(kc, 0, cache));
    CUDA_OK(cudaMemset(vc, 0, cache));
    CUDA_OK(cudaMemset(kc2, 0, cache));
    CUDA_OK(cudaMemset(vc2, 0, cache));
    clv_cuda_qk_prep p = {.q_norm = norms ? d_qn : NULL, .k_norm = norms ? d_kn : NULL, .eps = 1e-6f,
                          .rope = {.mode = (int32_t)mode, .n_rot = n_rot, .freq_base = 1000000.0f, .freq_scale = 1.0f}};
    /* the kernels it stands for */
    if (norms) {
        CHECK_STATUS(clv_cuda_rmsnorm(d_q2, d_q2, d_qn, T * H, hd, 1e-6f, NULL), CLV_OK);
        CHECK_STATUS(clv_cuda_rmsnorm(d_k2, d_k2, d_kn, T * HKV, hd, 1e-6f, NULL), CLV_OK);
    }
    CHECK_STATUS(clv_cuda_rope(d_q2, T, H, hd, d_pos, &p.rope, NULL), CLV_OK);
    CHECK_STATUS(clv_cuda_rope(d_k2, T, HKV, hd, d_pos, &p.rope, NULL), CLV_OK);
    CHECK_STATUS(clv_cuda_kv_store_pair(kc2, vc2, kv_type, kw, vw, d_pos, d_k2, d_v, T, NULL), CLV_OK);
    CHECK_STATUS(clv_cuda_qk_rope_store(d_q, d_k, d_v, T, H, HKV, hd, vw, d_pos, &p, kc, vc, kv_type, NULL), CLV_OK);
    to_host(gq, d_q, sizeof(float) * (size_t)nq), to_host(wq, d_q2, sizeof(float) * (size_t)nq);
    to_host(gk, d_k, sizeof(float) * (size_t)nk), to_host(wk, d_k2, sizeof(float) * (size_t)nk);
    uint8_t *c1 = malloc(cache), *c2 = malloc(cache), *c3 = malloc(cache), *c4 = malloc(cache);
    to_host(c1, kc, cache), to_host(c2, kc2, cache), to_host(c3, vc, cache), to_host(c4, vc2, cache);
    bool exact = !memcmp(gq, wq, sizeof(float) * (size_t)nq) && !memcmp(gk, wk, sizeof(float) * (size_t)nk) &&
                 !memcmp(c1, c2, cache);
    double e = fmax(norm_err(gq, wq, nq), norm_err(gk, wk, nk));
    if (hd <= 128) CHECK_MSG(exact, "q/k rope + store %lld x %lld/%lld x %lld: not the bits of the three kernels (%.3g)",
                             (long long)T, (long long)H, (long long)HKV, (long long)hd, e);
    else CHECK_MSG(e <= 1e-6, "q/k rope + store %lld x %lld/%lld x %lld: error %.3g", (long long)T, (long long)H,
                   (long long)HKV, (long long)hd, e);
    CHECK_MSG(!memcmp(c3, c4, cache), "q/k rope + store: V cache differs");
    printf("q/k rope + store %s %2lld x %2lld/%lld x %3lld rot %3lld%s %s: %s (%.2e)\n",
           mode == CLV_ROPE_NEOX ? "neox" : mode == CLV_ROPE_NORMAL ? "normal" : "none", (long long)T, (long long)H,
           (long long)HKV, (long long)hd, (long long)n_rot, norms ? " norms" : "", clv_type_name(kv_type),
           exact ? "exact" : "within bound", e);
    CHECK_STATUS(clv_cuda_qk_rope_store(d_q, d_k, d_v, T, H, HKV, 512, vw, d_pos, &p, kc, vc, kv_type, NULL),
                 CLV_ERR_ARG);
    CHECK_STATUS(clv_cuda_qk_rope_store(d_q, d_k, d_v, T, H, HKV, hd, vw, d_pos, &p, kc, vc, CLV_TYPE_Q8_0, NULL),
                 CLV_ERR_UNSUPPORTED);
    cudaFree(d_q), cudaFree(d_k), cudaFree(d_q2), cudaFree(d_k2), cudaFree(d_v), cudaFree(d_qn), cudaFree(d_kn);
    cudaFree(d_pos), cudaFree(kc), cudaFree(vc), cudaFree(kc2), cudaFree(vc2);
    free(q), free(k), free(v), free(qn), free(kn), free(gq), free(gk), free(wq), free(wk), free(pos);
    free(c1), free(c2), free(c3), free(c4);
}

/* The decode router in one launch against the F32 matvec and the routing. */
static void test_moe_router(int64_t T, int64_t n_expert, int64_t n_in, int64_t k, bool renorm) {
    float *w = falloc(n_expert * n_in), *x = falloc(T * n_in), *lg = falloc(T * n_expert), *lw = falloc(T * n_expert);
    float *gw = falloc(T * k), *ww = falloc(T * k), *rw = falloc(k);
    int32_t *gi = malloc(sizeof(int32_t) * (size_t)(T * k)), *wi = malloc(sizeof(int32_t) * (size_t)(T * k));
    int32_t *ri = malloc(sizeof(int32_t) * (size_t)k);
    for (int64_t i = 0; i < n_expert * n_in; i++) w[i] = frand();
    for (int64_t i = 0; i < T * n_in; i++) x[i] = frand();
    float *d_w = dev(w, sizeof(float) * (size_t)(n_expert * n_in)), *d_x = dev(x, sizeof(float) * (size_t)(T * n_in));
    float *d_l = dev(NULL, sizeof(float) * (size_t)(T * n_expert)), *d_l2 = dev(NULL, sizeof(float) * (size_t)(T * n_expert));
    float *d_wt = dev(NULL, sizeof(float) * (size_t)(T * k)), *d_wt2 = dev(NULL, sizeof(float) * (size_t)(T * k));
    int32_t *d_id = dev(NULL, sizeof(int32_t) * (size_t)(T * k)), *d_id2 = dev(NULL, sizeof(int32_t) * (size_t)(T * k));
    uint32_t *d_done = dev(NULL, sizeof(uint32_t) * (size_t)T);
    CUDA_OK(cudaMemset(d_done, 0, sizeof(uint32_t) * (size_t)T));
    size_t rb = sizeof(float) * (size_t)n_in;
    for (int64_t t = 0; t < T; t++)
        CHECK_STATUS(clv_cuda_matvec(CLV_TYPE_F32, d_w, rb, n_in, n_expert, d_x + t * n_in, d_l2 + t * n_expert, NULL),
                     CLV_OK);
    CHECK_STATUS(clv_cuda_moe_route(d_id2, d_wt2, d_l2, T, n_expert, k, renorm, NULL), CLV_OK);
    to_host(lw, d_l2, sizeof(float) * (size_t)(T * n_expert));
    to_host(wi, d_id2, sizeof(int32_t) * (size_t)(T * k)), to_host(ww, d_wt2, sizeof(float) * (size_t)(T * k));
    int bad = 0;
    for (int rep = 0; rep < 2; rep++) { /* the second launch finds the counters reset */
        CUDA_OK(cudaMemset(d_id, 0xff, sizeof(int32_t) * (size_t)(T * k)));
        CHECK_STATUS(clv_cuda_moe_router(d_w, rb, n_in, n_expert, d_x, T, d_l, d_id, d_wt, k, renorm, d_done, NULL),
                     CLV_OK);
        to_host(lg, d_l, sizeof(float) * (size_t)(T * n_expert));
        to_host(gi, d_id, sizeof(int32_t) * (size_t)(T * k)), to_host(gw, d_wt, sizeof(float) * (size_t)(T * k));
        bad += memcmp(lg, lw, sizeof(float) * (size_t)(T * n_expert)) != 0;
        bad += memcmp(gi, wi, sizeof(int32_t) * (size_t)(T * k)) != 0;
        bad += memcmp(gw, ww, sizeof(float) * (size_t)(T * k)) != 0;
    }
    /* and the CPU's routing of those logits */
    double worst = 0;
    for (int64_t t = 0; t < T; t++) {
        route_ref(lw + t * n_expert, n_expert, k, renorm, ri, rw);
        bad += memcmp(ri, gi + t * k, sizeof(int32_t) * (size_t)k) != 0;
        for (int64_t j = 0; j < k; j++) worst = fmax(worst, fabs((double)gw[t * k + j] - rw[j]) / fabs((double)rw[j]));
    }
    CHECK_MSG(bad == 0 && worst <= 1e-6, "MoE router %lld x %lld of %lld k %lld: %d mismatches, weights %.3g",
              (long long)T, (long long)n_expert, (long long)n_in, (long long)k, bad, worst);
    printf("moe_router %lld x %3lld of %4lld k %2lld%s: exact against matvec + route (%.2e vs CPU)\n", (long long)T,
           (long long)n_expert, (long long)n_in, (long long)k, renorm ? " renorm" : "", worst);
    CHECK(!clv_cuda_moe_router_fits(n_in, 257, k) && !clv_cuda_moe_router_fits(n_in + 2, n_expert, k));
    CHECK_STATUS(clv_cuda_moe_router(d_w, rb, n_in, 300, d_x, T, d_l, d_id, d_wt, k, renorm, d_done, NULL),
                 CLV_ERR_ARG);
    cudaFree(d_w), cudaFree(d_x), cudaFree(d_l), cudaFree(d_l2), cudaFree(d_wt), cudaFree(d_wt2), cudaFree(d_id);
    cudaFree(d_id2), cudaFree(d_done);
    free(w), free(x), free(lg), free(lw), free(gw), free(ww), free(rw), free(gi), free(wi), free(ri);
}

/* A token's experts, down product and combine in one launch, against the
 * separate product and combine. */
static void test_experts_combine(int32_t type, int64_t n_expert, int64_t n_in, int64_t n_rows, int64_t T, int64_t k) {
    uint64_t row_bytes = 0;
    CHECK(clv_type_bytes(type, n_in, &row_bytes));
    const clv_type_info *ti = clv_type_get(type);
    size_t total = (size_t)row_bytes * (size_t)n_rows * (size_t)n_expert;
    int64_t A = T * k;
    uint8_t *w = malloc(total);
    random_blocks(type, w, total / ti->block_bytes, ti->block_bytes);
    float *x = falloc(A * n_in), *wt = falloc(A), *got = falloc(T * n_rows), *want = falloc(T * n_rows);
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)A);
    for (int64_t i = 0; i < A * n_in; i++) x[i] = frand();
    for (int64_t i = 0; i < A; i++) wt[i] = frand() + 1.0f, ids[i] = (int32_t)(rnd() % (uint64_t)n_expert);
    uint8_t *d_w = dev(w, total);
    float *d_x = dev(x, sizeof(float) * (size_t)(A * n_in)), *d_wt = dev(wt, sizeof(float) * (size_t)A);
    float *d_c = dev(NULL, sizeof(float) * (size_t)(A * n_rows)), *d_y = dev(NULL, sizeof(float) * (size_t)(T * n_rows));
    int32_t *d_ids = dev(ids, sizeof(int32_t) * (size_t)A);
    CHECK_STATUS(clv_cuda_matvec_experts(type, d_w, (size_t)row_bytes, n_in, n_rows, n_expert, d_ids, A, d_x, n_in, d_c,
                                         n_rows, NULL),
                 CLV_OK);
    CHECK_STATUS(clv_cuda_moe_combine(d_y, d_c, NULL, d_wt, T, k, n_rows, NULL), CLV_OK);
    to_host(want, d_y, sizeof(float) * (size_t)(T * n_rows));
    const int rpw[] = {0, 1, 2, 4}; /* rows per warp: the default, then each */
    for (int r = 0; r < 4; r++) {
        CUDA_OK(cudaMemset(d_y, 0, sizeof(float) * (size_t)(T * n_rows)));
        CHECK_STATUS(clv_cuda_matvec_experts_combine_rows(type, d_w, (size_t)row_bytes, n_in, n_rows, n_expert, d_ids,
                                                          d_wt, T, k, d_x, n_in, d_y, n_rows, rpw[r], NULL),
                     CLV_OK);
        to_host(got, d_y, sizeof(float) * (size_t)(T * n_rows));
        CHECK_MSG(!memcmp(got, want, sizeof(float) * (size_t)(T * n_rows)),
                  "experts combine %s %lld tokens k %lld, %d rows a warp: differs from product + combine (%.3g)",
                  clv_type_name(type), (long long)T, (long long)k, rpw[r], norm_err(got, want, T * n_rows));
    }
    if (T > 1) { /* an id out of range: NaN in its token's rows, the others intact */
        ids[0] = (int32_t)n_expert;
        CUDA_OK(cudaMemcpy(d_ids, ids, sizeof(int32_t), cudaMemcpyHostToDevice));
        CHECK_STATUS(clv_cuda_matvec_experts_combine(type, d_w, (size_t)row_bytes, n_in, n_rows, n_expert, d_ids, d_wt,
                                                     T, k, d_x, n_in, d_y, n_rows, NULL),
                     CLV_OK);
        to_host(got, d_y, sizeof(float) * (size_t)(T * n_rows));
        CHECK(isnan(got[0]) && isnan(got[n_rows - 1]));
        CHECK(!memcmp(got + n_rows, want + n_rows, sizeof(float) * (size_t)((T - 1) * n_rows)));
    }
    CHECK_STATUS(clv_cuda_matvec_experts_combine(type, d_w, (size_t)row_bytes, n_in, n_rows, n_expert, d_ids, d_wt, T,
                                                 33, d_x, n_in, d_y, n_rows, NULL),
                 CLV_ERR_ARG);
    cudaFree(d_w), cudaFree(d_x), cudaFree(d_wt), cudaFree(d_c), cudaFree(d_y), cudaFree(d_ids);
    free(w), free(x), free(wt), free(got), free(want), free(ids);
}

int main(void) {
    int n_dev = 0;
    if (cudaGetDeviceCount(&n_dev) != cudaSuccess || n_dev == 0) TEST_SKIP("no CUDA device");
    CHECK(clv_cpu_set_path(CLV_CPU_PATH_SCALAR)); /* the reference the SIMD paths are held to */
    clv_threadpool_params tp = clv_threadpool_default_params();
    tp.n_threads = 1;
    tp.pin = false;
    CHECK_STATUS(clv_threadpool_create(&tp, &cpu.pool), CLV_OK);
    if (!cpu.pool) return test_finish("test_cuda_ops");

    test_rmsnorm(1, 1, true, false, 1e-5f);
    test_rmsnorm(3, 31, false, false, 1e-6f);
    test_rmsnorm(2, 33, true, true, 1e-5f);
    test_rmsnorm(5, 896, true, false, 1e-6f);
    test_rmsnorm(4, 4096, true, true, 1e-5f);
    test_rmsnorm(2, 5120 + 7, false, false, 1e-5f);
    test_rmsnorm(64, 128, true, false, 1e-6f); /* QK-norm shaped: many short rows */

    test_rope(CLV_ROPE_NORMAL, 1, 1, 2, 2, 10000.0f, 1.0f, false, 0);
    test_rope(CLV_ROPE_NORMAL, 7, 32, 128, 128, 500000.0f, 1.0f, true, 131071); /* Llama 3 with rope_freqs */
    test_rope(CLV_ROPE_NORMAL, 2, 5, 96, 64, 10000.0f, 0.25f, true, 4095);      /* partial, linear scaling */
    test_rope(CLV_ROPE_NEOX, 5, 14, 64, 64, 1000000.0f, 1.0f, false, 32767);    /* Qwen */
    test_rope(CLV_ROPE_NEOX, 3, 4, 256, 256, 10000.0f, 0.125f, false, 8191);    /* Gemma 3 global */
    test_rope(CLV_ROPE_NEOX, 4, 3, 128, 32, 10000.0f, 1.0f, false, 2047);       /* partial rotary */
    test_rope(CLV_ROPE_NEOX, 37, 2, 80, 80, 10000.0f, 1.0f, false, 100000);
    test_rope_none();

    const int64_t lens[] = {1, 31, 33, 4096, 100003};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) test_elementwise(lens[i]);

    test_softmax(1, 1, false, false);
    test_softmax(3, 7, false, false);
    test_softmax(2, 33, true, true);
    test_softmax(5, 128, false, false);
    test_softmax(4, 4096, true, false);
    test_softmax(1, 151936, false, true);
    test_softmax(2, 151936, true, false);

    test_topk(1, 1, 1, false, false);
    test_topk(5, 8, 2, true, true);    /* Mixtral */
    test_topk(3, 60, 4, true, true);   /* Qwen1.5-MoE */
    test_topk(4, 64, 6, false, true);  /* DeepSeek-V2-Lite */
    test_topk(7, 128, 8, true, true);  /* Qwen3-30B-A3B */
    test_topk(3, 256, 8, false, true); /* DeepSeek-V3 */
    test_topk(2, 257, 32, true, true);
    test_topk(1, 32, 32, true, true);
    test_topk(2, 1000, 32, false, false);
    test_topk(1, 151936, 32, false, false);
    test_topk_nan();

    for (int32_t t = 0; t < CLV_TYPE_COUNT; t++) {
        if (!clv_type_can_dequantize(t)) continue;
        test_get_rows(t, 512, 40, 0, 1.0f);
        test_get_rows(t, 768, 13, 6, sqrtf(768.0f)); /* Gemma's scale; rows not 4-byte aligned */
    }
    printf("get_rows: every decodable type exact\n");

    const int64_t alens[] = {1, 31, 33, 4096, 151936};
    for (size_t i = 0; i < sizeof alens / sizeof alens[0]; i++) test_argmax(alens[i]);

    test_moe_combine(1, 1, 1);
    test_moe_combine(3, 2, 33);     /* Mixtral-like */
    test_moe_combine(40, 8, 2048);  /* Qwen3-30B-A3B */
    test_moe_combine(512, 8, 300);
    test_moe_combine_in_order(1, 8, 2048);
    test_moe_combine_in_order(5, 2, 77);
    printf("MoE combine and weighted sum: exact\n");

    for (int32_t t = 0; t < CLV_TYPE_COUNT; t++) {
        if (!clv_type_can_dequantize(t)) continue;
        test_matvec_experts(t, 16, 512, 40, 8, true);   /* one token, shared x */
        test_matvec_experts(t, 5, 1024, 33, 12, false); /* down: an x per slice */
    }
    test_matvec_experts(CLV_TYPE_Q4_K, 128, 2048, 768, 8, true);   /* qwen3-30b-a3b gate/up */
    test_matvec_experts(CLV_TYPE_Q6_K, 128, 768, 2048, 8, false);  /* and its down */
    printf("expert matvec and fused expert GLU: every decodable type exact against the plain matvec\n");

    test_add_rmsnorm(1, 2048, true);
    test_add_rmsnorm(7, 896, false);
    test_add_rmsnorm(3, 5120 + 7, true);
    printf("add + rmsnorm: exact against add, rmsnorm\n");
    test_qk_rope_store(CLV_ROPE_NEOX, 1, 32, 4, 128, 128, true, CLV_TYPE_F16, 4095);   /* qwen3-30b-a3b decode */
    test_qk_rope_store(CLV_ROPE_NEOX, 9, 8, 2, 64, 64, true, CLV_TYPE_F32, 300);
    test_qk_rope_store(CLV_ROPE_NORMAL, 5, 32, 8, 128, 128, false, CLV_TYPE_F16, 131071); /* llama */
    test_qk_rope_store(CLV_ROPE_NEOX, 3, 4, 1, 256, 256, true, CLV_TYPE_F16, 8191);       /* gemma 3 */
    test_qk_rope_store(CLV_ROPE_NEOX, 4, 6, 3, 80, 32, true, CLV_TYPE_F32, 100);          /* partial rotary */
    test_qk_rope_store(CLV_ROPE_NONE, 2, 4, 2, 96, 0, true, CLV_TYPE_F16, 50);
    test_moe_router(1, 128, 2048, 8, true); /* qwen3-30b-a3b */
    test_moe_router(3, 60, 2048, 4, false);
    test_moe_router(7, 64, 1024, 6, false);
    test_moe_router(2, 256, 512, 32, true);
    test_moe_router(1, 8, 4096, 2, false); /* mixtral */
    for (int32_t t = 0; t < CLV_TYPE_COUNT; t++) {
        if (clv_type_can_dequantize(t)) test_experts_combine(t, 6, 512, 40, 2, 3);
    }
    test_experts_combine(CLV_TYPE_Q6_K, 128, 768, 2048, 1, 8); /* qwen3-30b-a3b down */
    test_experts_combine(CLV_TYPE_Q4_K, 128, 768, 2048, 3, 8);
    test_experts_combine(CLV_TYPE_Q8_0, 16, 1024, 4096, 2, 32);
    test_experts_combine(CLV_TYPE_Q4_K, 60, 1536, 2047, 2, 4); /* four experts, a short last group */
    printf("experts combine: every decodable type exact against product + combine\n");

    test_refusals();
    test_kv_store_pair(CLV_TYPE_F16, 1, 512, 512);
    test_kv_store_pair(CLV_TYPE_F16, 37, 1024, 256); /* K wider than V */
    test_kv_store_pair(CLV_TYPE_F32, 5, 96, 160);    /* V wider than K */
    printf("KV store pair: exact, F16 and F32\n");
    clv_threadpool_free(cpu.pool);
    return test_finish("test_cuda_ops");
}
