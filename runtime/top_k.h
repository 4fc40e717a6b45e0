/* Per-token top-k selection by magnitude, shared by the sparse FFN path and
 * the profiler so that both keep exactly the same neurons: the k values of
 * largest |v|, ties at the k-th value going to the lower indices. */
#ifndef CLV_TOP_K_H
#define CLV_TOP_K_H

#include <stdint.h>

/* For 1 <= k <= n: returns t, the k-th largest |v[i]|, and sets *n_ties to
 * how many of the values with |v[i]| == t are kept (the first ones in index
 * order); every |v[i]| > t is kept. scratch: n floats. */
float clv_top_k_abs(const float *v, int64_t n, int64_t k, float *scratch, int64_t *n_ties);

/* Zeroes every v[i] that the selection above does not keep (k >= n: none). */
void clv_top_k_abs_keep(float *v, int64_t n, int64_t k, float *scratch);

#endif
