/* oneDNN GEMM (kernels/dnnl/gemm.h) against a float64 reference, over shapes
 * the prompt path meets: one token to a full batch, panels of one row to
 * CLV_GEMM_PANEL_ROWS, inner sizes that are and are not multiples of the
 * SIMD width, and leading dimensions wider than the rows. */
#include "test.h"

#include "gemm.h"

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static float frand(void) {
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (float)((rng >> 11) * (1.0 / 9007199254740992.0)) * 2.0f - 1.0f;
}

static void check_shape(int64_t m, int64_t n, int64_t k) {
    int64_t lda = k + 3, ldb = k + 5, ldc = n + 7;
    float *a = malloc(sizeof(float) * (size_t)(m * lda));
    float *b = malloc(sizeof(float) * (size_t)(n * ldb));
    float *c = malloc(sizeof(float) * (size_t)(m * ldc));
    for (int64_t i = 0; i < m * lda; i++) a[i] = frand();
    for (int64_t i = 0; i < n * ldb; i++) b[i] = frand();
    for (int64_t i = 0; i < m * ldc; i++) c[i] = 12345.0f; /* the padding must survive */
    CHECK_STATUS(clv_dnnl_gemm_f32(m, n, k, a, lda, b, ldb, c, ldc), CLV_OK);
    double worst = 0;
    int pad_ok = 1;
    for (int64_t i = 0; i < m; i++) {
        for (int64_t j = 0; j < ldc; j++) {
            if (j >= n) {
                pad_ok &= c[i * ldc + j] == 12345.0f;
                continue;
            }
            double ref = 0, mag = 0;
            for (int64_t q = 0; q < k; q++) {
                ref += (double)a[i * lda + q] * b[j * ldb + q];
                mag += fabs((double)a[i * lda + q] * b[j * ldb + q]);
            }
            double err = fabs(c[i * ldc + j] - ref) / (mag > 0 ? mag : 1);
            if (err > worst) worst = err;
        }
    }
    /* float accumulation: relative to the sum of magnitudes, a few ulps per
     * term in the worst order. */
    double bound = 4e-7 * sqrt((double)k) + 1e-7;
    CHECK_MSG(worst <= bound, "%lld x %lld x %lld: error %.3g > %.3g", (long long)m, (long long)n, (long long)k,
              worst, bound);
    CHECK_MSG(pad_ok, "%lld x %lld x %lld: wrote past n", (long long)m, (long long)n, (long long)k);
    free(a);
    free(b);
    free(c);
}

int main(void) {
    if (!clv_dnnl_available()) TEST_SKIP("%s", clv_dnnl_describe());
    printf("%s\n", clv_dnnl_describe());
    clv_dnnl_single_thread();
    const int64_t ms[] = {1, 7, 32, 100}, ns[] = {1, 17, 64}, ks[] = {1, 32, 100, 576};
    for (size_t i = 0; i < 4; i++)
        for (size_t j = 0; j < 3; j++)
            for (size_t q = 0; q < 4; q++) check_shape(ms[i], ns[j], ks[q]);
    check_shape(512, 64, 2048);
    return test_finish("test_dnnl_gemm");
}
