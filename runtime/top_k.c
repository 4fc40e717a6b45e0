#include "top_k.h"

#include <math.h>
#include <string.h>

#include "status.h"

/* The k-th largest |v| by radix selection on the bits of |v|, which order
 * like the values for non-negative floats: three histogram passes (11, 10
 * and 10 bits) narrow down the bits of the answer, each over only the values
 * that share the bits found so far. Linear and branch-light: the decode path
 * runs it once per layer and token. Returns the bits of the k-th largest and
 * sets *above to how many values are larger. scratch: n keys. */
enum { TOPK_BINS = 2048 };

static inline uint32_t abs_key(float x) {
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return u & 0x7fffffffu;
}

static uint32_t kth_largest_key(const float *v, int64_t n, int64_t k, uint32_t *keys, int64_t *above) {
    static const int shift[3] = {20, 10, 0};
    static const uint32_t width[3] = {2048, 1024, 1024};
    uint32_t hist[TOPK_BINS];
    uint32_t prefix = 0; /* the bits found so far, in place */
    int64_t m = n, larger = 0;
    for (int64_t i = 0; i < n; i++) keys[i] = abs_key(v[i]);
    for (int level = 0; level < 3; level++) {
        memset(hist, 0, sizeof(uint32_t) * width[level]);
        for (int64_t i = 0; i < m; i++) hist[(keys[i] >> shift[level]) & (width[level] - 1)]++;
        uint32_t b = width[level] - 1;
        while ((int64_t)hist[b] + larger < k) larger += hist[b--];
        prefix |= b << shift[level];
        if (level == 2) break;
        /* keep the values in bin b for the next level */
        int64_t w = 0;
        for (int64_t i = 0; i < m; i++) {
            uint32_t key = keys[i];
            keys[w] = key;
            w += ((key >> shift[level]) & (width[level] - 1)) == b;
        }
        m = w;
    }
    *above = larger;
    return prefix;
}

float clv_top_k_abs(const float *v, int64_t n, int64_t k, float *scratch, int64_t *n_ties) {
    CLV_ASSERT(k >= 1 && k <= n);
    CLV_ASSERT(sizeof(float) == sizeof(uint32_t));
    int64_t above;
    uint32_t key = kth_largest_key(v, n, k, (uint32_t *)(void *)scratch, &above);
    float t;
    memcpy(&t, &key, sizeof t);
    *n_ties = k - above;
    return t;
}

void clv_top_k_abs_keep(float *v, int64_t n, int64_t k, float *scratch) {
    if (k >= n) return;
    int64_t ties;
    float t = clv_top_k_abs(v, n, k, scratch, &ties);
    for (int64_t i = 0; i < n; i++) {
        float a = fabsf(v[i]);
        if (a > t) continue;
        if (a == t && ties > 0) {
            ties--;
            continue;
        }
        v[i] = 0.0f;
    }
}
