/* CPU vector ops (kernels/cpu/vec.h) on every code path this CPU has,
 * against the scalar path (which uses libm's expf / tanhf and sums in
 * double). Bounds, element-wise (|a| means the magnitude of the inputs):
 *   rmsnorm            |d| <= 2e-6 |y|
 *   softmax            |d| <= 2e-6 |y| + 1e-12
 *   silu, swiglu       |d| <= 1e-6 |y| + 1e-37
 *   gelu, geglu        |d| <= 1e-6 |y| + 2e-7 |x| (the reference's 1 + tanh u
 *                      cancels for negative u; the SIMD form x / (1 + e^-2u) does not)
 *   add, mul, scale    exact;  axpy: 2 ulps (fused multiply-add)
 *   dot                |d| <= 1e-6 sum |a b|
 *   conversions        bit-exact (f16 -> f32 may quiet a signaling NaN)
 *   axpy_i8_rows       |d| <= 2 (n_rows + 1) eps (|y| + sum_k |a_k q_k|): the
 *                      same order of additions, one rounding fewer per row (fma)
 * The largest errors seen are printed. Sizes cover every tail length; the
 * element-wise ops also run in place. */
#include <float.h>
#include <stdbool.h>
#include <stdint.h>

#include "cpu/matvec.h"
#include "cpu/vec.h"
#include "blocks.h"
#include "fp16.h"
#include "test.h"

static uint64_t rng_state = 0x1234567ull;

static uint64_t rng_u64(void) {
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static float rng_uniform(void) { return (float)((double)(rng_u64() >> 11) * 0x1.0p-53) * 2.0f - 1.0f; }

static const clv_cpu_path paths[] = {CLV_CPU_PATH_AVX2, CLV_CPU_PATH_AVX512};
static const int64_t sizes[] = {1, 3, 7, 8, 15, 16, 17, 31, 33, 100, 1000, 4099};
#define N_SIZES ((int)(sizeof sizes / sizeof sizes[0]))
#define MAXN 4099

static float x[MAXN], x2[MAXN], w[MAXN], yr[MAXN], yp[MAXN];

enum { OP_RMSNORM, OP_SOFTMAX, OP_SILU, OP_GELU, OP_SWIGLU, OP_GEGLU, OP_DOT, OP_AXPY_I8, OP_COUNT };
static const char *op_names[OP_COUNT] = {"rmsnorm", "softmax", "silu", "gelu", "swiglu", "geglu", "dot", "axpy_i8"};
static double worst[OP_COUNT][2]; /* measured |d| / bound scale, per path */

/* Values spread over several decades, both signs, plus big ones. */
static void fill(float *v, int64_t n, float scale) {
    for (int64_t i = 0; i < n; i++) {
        float r = rng_uniform() * scale;
        if (rng_u64() % 16 == 0) r *= 30.0f;
        v[i] = r;
    }
}

static void record(int op, int pi, double err) {
    if (err > worst[op][pi]) worst[op][pi] = err;
}

static void run_unary(int op, int pi, int64_t n, bool in_place) {
    clv_cpu_path p = paths[pi];
    fill(x, n, op == OP_SOFTMAX ? 20.0f : 4.0f);
    fill(x2, n, 2.0f);
    fill(w, n, 1.0f);
    CHECK(clv_cpu_set_path(CLV_CPU_PATH_SCALAR));
    switch (op) {
    case OP_RMSNORM: clv_vec_rmsnorm(yr, x, (n % 2) ? w : NULL, n, 1e-6f); break;
    case OP_SOFTMAX: clv_vec_softmax(yr, x, n); break;
    case OP_SILU: clv_vec_silu(yr, x, n); break;
    case OP_GELU: clv_vec_gelu(yr, x, n); break;
    case OP_SWIGLU: clv_vec_swiglu(yr, x, x2, n); break;
    case OP_GEGLU: clv_vec_geglu(yr, x, x2, n); break;
    }
    CHECK(clv_cpu_set_path(p));
    float *out = in_place ? x : yp;
    float xin[MAXN];
    memcpy(xin, x, sizeof(float) * (size_t)n);
    switch (op) {
    case OP_RMSNORM: clv_vec_rmsnorm(out, x, (n % 2) ? w : NULL, n, 1e-6f); break;
    case OP_SOFTMAX: clv_vec_softmax(out, x, n); break;
    case OP_SILU: clv_vec_silu(out, x, n); break;
    case OP_GELU: clv_vec_gelu(out, x, n); break;
    case OP_SWIGLU: clv_vec_swiglu(out, x, x2, n); break;
    case OP_GEGLU: clv_vec_geglu(out, x, x2, n); break;
    }
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)out[i] - (double)yr[i]), bound;
        switch (op) {
        case OP_RMSNORM: bound = 2e-6 * fabs(yr[i]); break;
        case OP_SOFTMAX: bound = 2e-6 * fabs(yr[i]) + 1e-12; break;
        case OP_SILU:
        case OP_SWIGLU: bound = 1e-6 * fabs(yr[i]) + 1e-37; break;
        default: bound = 1e-6 * fabs(yr[i]) + 2e-7 * fabs(xin[i]) * (op == OP_GEGLU ? fabs(x2[i]) : 1.0); break;
        }
        record(op, pi, bound > 0 ? d / bound : (d > 0 ? INFINITY : 0.0));
        CHECK_MSG(d <= bound, "%s %s n=%lld i=%lld x=%.9g: %.9g vs reference %.9g", op_names[op], clv_cpu_path_name(p),
                  (long long)n, (long long)i, xin[i], out[i], yr[i]);
    }
}

static void run_simple(int pi, int64_t n) {
    clv_cpu_path p = paths[pi];
    fill(x, n, 3.0f);
    fill(x2, n, 3.0f);
    fill(w, n, 3.0f);
    const float s = rng_uniform() * 5.0f;

    CHECK(clv_cpu_set_path(CLV_CPU_PATH_SCALAR));
    float rd = clv_vec_dot(x, x2, n);
    CHECK(clv_cpu_set_path(p));
    float pd = clv_vec_dot(x, x2, n);
    double mag = 0.0;
    for (int64_t i = 0; i < n; i++) mag += fabs((double)x[i] * x2[i]);
    record(OP_DOT, pi, fabs((double)pd - rd) / (1e-6 * mag));
    CHECK_MSG(fabs((double)pd - rd) <= 1e-6 * mag, "dot %s n=%lld: %.9g vs %.9g", clv_cpu_path_name(p), (long long)n, pd,
              rd);

    /* add, mul, scale: exact, also in place */
    for (int k = 0; k < 3; k++) {
        CHECK(clv_cpu_set_path(CLV_CPU_PATH_SCALAR));
        if (k == 0) clv_vec_add(yr, x, x2, n);
        if (k == 1) clv_vec_mul(yr, x, x2, n);
        if (k == 2) clv_vec_scale(yr, x, s, n);
        CHECK(clv_cpu_set_path(p));
        memcpy(yp, x, sizeof(float) * (size_t)n);
        if (k == 0) clv_vec_add(yp, yp, x2, n);
        if (k == 1) clv_vec_mul(yp, yp, x2, n);
        if (k == 2) clv_vec_scale(yp, yp, s, n);
        CHECK_MSG(memcmp(yp, yr, sizeof(float) * (size_t)n) == 0, "op %d %s n=%lld differs", k, clv_cpu_path_name(p),
                  (long long)n);
    }

    /* axpy: the fused form rounds once less */
    CHECK(clv_cpu_set_path(CLV_CPU_PATH_SCALAR));
    memcpy(yr, w, sizeof(float) * (size_t)n);
    clv_vec_axpy(yr, s, x, n);
    CHECK(clv_cpu_set_path(p));
    memcpy(yp, w, sizeof(float) * (size_t)n);
    clv_vec_axpy(yp, s, x, n);
    for (int64_t i = 0; i < n; i++) {
        double bound = 2.0 * FLT_EPSILON * (fabs((double)s * x[i]) + fabs(w[i]));
        CHECK_MSG(fabs((double)yp[i] - yr[i]) <= bound, "axpy %s i=%lld: %.9g vs %.9g", clv_cpu_path_name(p),
                  (long long)i, yp[i], yr[i]);
    }
}

/* int8 rows picked by ids (the sparse FFN's down product), every row count
 * around the 4-row unroll, lengths around the vector width, a row stride
 * wider than the slice (the caller passes a slice of each row), factors of
 * several decades. */
static void run_axpy_i8(int pi) {
    clv_cpu_path p = paths[pi];
    enum { ROWS = 40, ROW_LEN = 700 };
    static int8_t rows[ROWS][ROW_LEN];
    static float yr2[ROW_LEN], yp2[ROW_LEN], y0[ROW_LEN];
    const int64_t lengths[] = {1, 7, 16, 31, 32, 33, 288, 640};
    const int64_t counts[] = {0, 1, 3, 4, 5, 7, 8, 9, 17, ROWS};
    for (int r = 0; r < ROWS; r++)
        for (int i = 0; i < ROW_LEN; i++) rows[r][i] = (int8_t)(rng_u64() % 256 - 128);
    for (size_t li = 0; li < sizeof lengths / sizeof lengths[0]; li++) {
        for (size_t ci = 0; ci < sizeof counts / sizeof counts[0]; ci++) {
            int64_t n = lengths[li], nr = counts[ci];
            int64_t off = (ROW_LEN - n) / 2; /* a slice from the middle of each row */
            int32_t ids[ROWS];
            float a[ROWS];
            for (int64_t k = 0; k < nr; k++) {
                ids[k] = (int32_t)(rng_u64() % ROWS); /* repeats and any order are allowed */
                a[k] = rng_uniform() * (rng_u64() % 3 == 0 ? 10.0f : 0.01f);
            }
            fill(y0, n, 2.0f);
            const int8_t *base = &rows[0][off];
            CHECK(clv_cpu_set_path(CLV_CPU_PATH_SCALAR));
            memcpy(yr2, y0, sizeof(float) * (size_t)n);
            clv_vec_axpy_i8_rows(yr2, n, base, sizeof rows[0], ids, a, nr);
            CHECK(clv_cpu_set_path(p));
            memcpy(yp2, y0, sizeof(float) * (size_t)n);
            clv_vec_axpy_i8_rows(yp2, n, base, sizeof rows[0], ids, a, nr);
            for (int64_t i = 0; i < n; i++) {
                double mag = fabs(y0[i]), exact = y0[i];
                for (int64_t k = 0; k < nr; k++) {
                    double t = (double)a[k] * rows[ids[k]][off + i];
                    mag += fabs(t);
                    exact += t;
                }
                double bound = 2.0 * (double)(nr + 1) * FLT_EPSILON * mag;
                double d = fabs((double)yp2[i] - yr2[i]);
                record(OP_AXPY_I8, pi, bound > 0 ? d / bound : (d > 0 ? INFINITY : 0.0));
                CHECK_MSG(d <= bound, "axpy_i8_rows %s n=%lld rows=%lld i=%lld: %.9g vs reference %.9g",
                          clv_cpu_path_name(p), (long long)n, (long long)nr, (long long)i, yp2[i], yr2[i]);
                /* the reference itself is the sum it claims to be */
                CHECK_MSG(fabs(yr2[i] - exact) <= bound, "axpy_i8_rows scalar i=%lld: %.9g vs exact %.9g",
                          (long long)i, yr2[i], exact);
            }
        }
    }
}

static bool same_bits_or_nan(float a, float b) {
    if (isnan(a) && isnan(b)) return true;
    return memcmp(&a, &b, sizeof a) == 0;
}

static void run_conversions(int pi) {
    clv_cpu_path p = paths[pi];
    CHECK(clv_cpu_set_path(p));
    /* every fp16 and bf16 bit pattern */
    static uint16_t h[65536], back[65536];
    static float f[65536];
    for (int i = 0; i < 65536; i++) h[i] = (uint16_t)i;
    clv_vec_f16_to_f32(f, h, 65536);
    int bad = 0;
    for (int i = 0; i < 65536; i++) bad += !same_bits_or_nan(f[i], clv_fp16_to_fp32(h[i]));
    CHECK_MSG(bad == 0, "f16_to_f32 %s: %d patterns differ", clv_cpu_path_name(p), bad);
    clv_vec_bf16_to_f32(f, h, 65536);
    bad = 0;
    for (int i = 0; i < 65536; i++) {
        float r = clv_bf16_to_fp32(h[i]);
        bad += memcmp(&f[i], &r, 4) != 0;
    }
    CHECK_MSG(bad == 0, "bf16_to_f32 %s: %d patterns differ", clv_cpu_path_name(p), bad);

    /* f32 -> f16 / bf16: random bit patterns over all exponents, ties, specials */
    enum { NF = 65536 };
    for (int i = 0; i < NF; i++) {
        uint32_t u = (uint32_t)rng_u64();
        if (i % 4 == 1) u = (u & 0x80001fffu) | ((uint32_t)(100 + rng_u64() % 50) << 23); /* near fp16 range */
        if (i % 4 == 2) u = (u & 0xffffe000u) | 0x1000u;                                  /* fp16 ties */
        if (i % 4 == 3) u = (u & 0xffff0000u) | 0x8000u;                                  /* bf16 ties */
        memcpy(&f[i], &u, 4);
    }
    const float specials[] = {0.0f, -0.0f, INFINITY, -INFINITY, NAN, 65504.0f, 65520.0f, 65519.99f, 5.96e-8f, 2.98e-8f, 1e-45f};
    memcpy(f, specials, sizeof specials);
    clv_vec_f32_to_f16(back, f, NF);
    bad = 0;
    for (int i = 0; i < NF; i++) {
        uint16_t r = clv_fp32_to_fp16(f[i]);
        bool both_nan = (r & 0x7c00) == 0x7c00 && (r & 0x3ff) && (back[i] & 0x7c00) == 0x7c00 && (back[i] & 0x3ff);
        if (back[i] != r && !both_nan) {
            if (bad < 5) fprintf(stderr, "f32_to_f16 %s: %a -> %04x, reference %04x\n", clv_cpu_path_name(p), f[i], back[i], r);
            bad++;
        }
    }
    CHECK_MSG(bad == 0, "f32_to_f16 %s: %d values differ", clv_cpu_path_name(p), bad);
    clv_vec_f32_to_bf16(back, f, NF);
    bad = 0;
    for (int i = 0; i < NF; i++) bad += back[i] != clv_fp32_to_bf16(f[i]);
    CHECK_MSG(bad == 0, "f32_to_bf16 %s: %d values differ", clv_cpu_path_name(p), bad);
}

/* Extremes: softmax with -inf entries and a huge range; silu/gelu far out. */
static void run_edges(int pi) {
    clv_cpu_path p = paths[pi];
    float v[37], r[37], o[37];
    for (int i = 0; i < 37; i++) v[i] = (float)(i - 18) * 7.0f;
    v[3] = -INFINITY;
    v[20] = -INFINITY;
    CHECK(clv_cpu_set_path(CLV_CPU_PATH_SCALAR));
    clv_vec_softmax(r, v, 37);
    CHECK(clv_cpu_set_path(p));
    clv_vec_softmax(o, v, 37);
    for (int i = 0; i < 37; i++) CHECK_MSG(fabs((double)o[i] - r[i]) <= 2e-6 * r[i] + 1e-12, "softmax edge %d", i);
    CHECK(o[3] == 0.0f && o[20] == 0.0f);

    const float far[] = {-200.0f, -104.0f, -89.0f, -88.5f, -87.0f, -30.0f, -10.0f, -1e-20f, 0.0f, 1e-20f, 10.0f, 30.0f, 88.0f,
                         89.0f, 200.0f, 1e6f};
    const int nf = (int)(sizeof far / sizeof far[0]);
    float a[16], b[16];
    for (int op = 0; op < 2; op++) {
        CHECK(clv_cpu_set_path(CLV_CPU_PATH_SCALAR));
        if (op == 0) clv_vec_silu(a, far, nf);
        else clv_vec_gelu(a, far, nf);
        CHECK(clv_cpu_set_path(p));
        if (op == 0) clv_vec_silu(b, far, nf);
        else clv_vec_gelu(b, far, nf);
        for (int i = 0; i < nf; i++) {
            double bound = 1e-6 * fabs(a[i]) + 2e-7 * fabs(far[i]) + 1e-37;
            CHECK_MSG(fabs((double)a[i] - b[i]) <= bound, "%s %s at %g: %.9g vs %.9g", op ? "gelu" : "silu",
                      clv_cpu_path_name(p), far[i], b[i], a[i]);
        }
    }
}

int main(void) {
    bool any = false;
    for (int pi = 0; pi < 2; pi++) {
        if (!clv_cpu_path_available(paths[pi])) {
            printf("note: path %s not available (this CPU or build lacks it): not tested here\n", clv_cpu_path_name(paths[pi]));
            continue;
        }
        any = true;
        for (int s = 0; s < N_SIZES; s++) {
            for (int op = OP_RMSNORM; op <= OP_GEGLU; op++) {
                run_unary(op, pi, sizes[s], false);
                run_unary(op, pi, sizes[s], true);
            }
            run_simple(pi, sizes[s]);
        }
        run_conversions(pi);
        run_edges(pi);
        run_axpy_i8(pi);
    }
    /* the scalar path through the public entry points, against itself: smoke */
    CHECK(clv_cpu_set_path(CLV_CPU_PATH_SCALAR));
    float a[4] = {1, 2, 3, 4}, y[4];
    clv_vec_softmax(y, a, 4);
    CHECK(fabs(y[0] + y[1] + y[2] + y[3] - 1.0) < 1e-6 && y[3] > y[2]);
    clv_vec_rmsnorm(y, a, NULL, 4, 0.0f);
    CHECK(fabs(y[3] - 4.0 / sqrt(7.5)) < 1e-6);
    if (!any) printf("no SIMD path on this CPU: only the scalar smoke test ran\n");
    printf("largest |d| / bound:\n");
    for (int op = 0; op < OP_COUNT; op++) {
        printf("  %-8s", op_names[op]);
        for (int pi = 0; pi < 2; pi++) printf("  %s %.3f", clv_cpu_path_name(paths[pi]), worst[op][pi]);
        printf("\n");
    }
    CHECK(clv_cpu_set_path(CLV_CPU_PATH_AUTO));
    return test_finish("test_cpu_vec");
}
