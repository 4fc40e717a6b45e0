/* clv_top_k_abs / clv_top_k_abs_keep against the definition: value i is kept
 * when fewer than k values rank before it, where j ranks before i if |v_j| >
 * |v_i|, or |v_j| == |v_i| and j < i. Inputs with heavy ties, signed zeros,
 * subnormals, infinities, k = 1 and k = n. */
#include <float.h>
#include <math.h>
#include <stdbool.h>

#include "test.h"
#include "top_k.h"

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint32_t next_u32(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 16);
}

/* Fills v with one of several value distributions. */
static void fill(float *v, int64_t n, int kind) {
    for (int64_t i = 0; i < n; i++) {
        float u = (float)(next_u32() % 1000000) / 1000000.0f - 0.5f;
        switch (kind) {
        case 0: v[i] = u; break;                                   /* distinct mostly */
        case 1: v[i] = (float)((int)(next_u32() % 7) - 3); break;  /* heavy ties, zeros */
        case 2: v[i] = u * 1e-40f; break;                          /* subnormals */
        case 3: v[i] = (next_u32() % 5 == 0) ? (next_u32() % 2 ? INFINITY : -INFINITY) : u; break;
        case 4: v[i] = (next_u32() % 2) ? 0.0f : -0.0f; break;     /* all ties, signed zeros */
        default: v[i] = u * powf(2.0f, (float)(next_u32() % 60) - 30.0f); break; /* wide range */
        }
    }
}

static void check_one(const float *v, int64_t n, int64_t k, float *work, float *scratch) {
    memcpy(work, v, sizeof(float) * (size_t)n);
    clv_top_k_abs_keep(work, n, k, scratch);
    int64_t kept = 0, wrong = 0;
    for (int64_t i = 0; i < n; i++) {
        int64_t before = 0;
        for (int64_t j = 0; j < n; j++)
            before += fabsf(v[j]) > fabsf(v[i]) || (fabsf(v[j]) == fabsf(v[i]) && j < i);
        bool want = before < k;
        /* kept values are untouched; dropped ones read 0 (a zero may be either) */
        bool is_kept = want ? memcmp(&work[i], &v[i], sizeof(float)) == 0 : work[i] == 0.0f;
        wrong += !is_kept;
        kept += want;
    }
    CHECK_MSG(wrong == 0, "n %lld k %lld: %lld values wrong", (long long)n, (long long)k, (long long)wrong);
    CHECK_EQ_INT(kept, k < n ? k : n);
    if (k <= n) {
        int64_t ties;
        float t = clv_top_k_abs(v, n, k, scratch, &ties);
        int64_t above = 0, equal = 0;
        for (int64_t i = 0; i < n; i++) {
            above += fabsf(v[i]) > t;
            equal += fabsf(v[i]) == t;
        }
        CHECK_MSG(above < k && above + equal >= k && ties == k - above, "n %lld k %lld: t %g above %lld equal %lld ties %lld",
                  (long long)n, (long long)k, (double)t, (long long)above, (long long)equal, (long long)ties);
    }
}

int main(void) {
    static const int64_t sizes[] = {1, 2, 3, 17, 256, 1536, 5000};
    float *v = malloc(sizeof(float) * 5000), *work = malloc(sizeof(float) * 5000), *scratch = malloc(sizeof(float) * 5000);
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        int64_t n = sizes[s];
        for (int kind = 0; kind < 6; kind++) {
            fill(v, n, kind);
            int64_t ks[] = {1, n / 3 + 1, n / 2 + 1, n - 1 > 0 ? n - 1 : 1, n, n + 5};
            for (size_t q = 0; q < sizeof ks / sizeof ks[0]; q++) check_one(v, n, ks[q], work, scratch);
        }
    }
    free(v);
    free(work);
    free(scratch);
    return test_finish("test_top_k");
}
