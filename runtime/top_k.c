#include "top_k.h"

#include <math.h>

#include "status.h"

/* The k-th largest of v[0..n) (1 <= k <= n), by quickselect; reorders v. */
static float kth_largest(float *v, int64_t n, int64_t k) {
    int64_t lo = 0, hi = n - 1, want = k - 1;
    while (lo < hi) {
        float a = v[lo], b = v[lo + (hi - lo) / 2], c = v[hi];
        float pivot = a > b ? (b > c ? b : a > c ? c : a) : (a > c ? a : b > c ? c : b);
        int64_t i = lo, j = hi;
        while (i <= j) { /* descending: [lo, j] >= pivot >= [i, hi] */
            while (v[i] > pivot) i++;
            while (v[j] < pivot) j--;
            if (i <= j) {
                float t = v[i];
                v[i++] = v[j];
                v[j--] = t;
            }
        }
        if (want <= j) hi = j;
        else if (want >= i) lo = i;
        else return v[want]; /* strictly between the halves: equal to the pivot */
    }
    return v[want];
}

float clv_top_k_abs(const float *v, int64_t n, int64_t k, float *scratch, int64_t *n_ties) {
    CLV_ASSERT(k >= 1 && k <= n);
    for (int64_t i = 0; i < n; i++) scratch[i] = fabsf(v[i]);
    float t = kth_largest(scratch, n, k);
    int64_t above = 0;
    for (int64_t i = 0; i < n; i++) above += fabsf(v[i]) > t;
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
