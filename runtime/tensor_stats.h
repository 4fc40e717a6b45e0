/* Summary statistics of a tensor's values, decoded row by row through the
 * scalar reference dequantizer (no whole-tensor buffer). Used by
 * `cleave inspect --stats` and by tests that check real weights decode sanely. */
#ifndef CLV_TENSOR_STATS_H
#define CLV_TENSOR_STATS_H

#include <stdint.h>

#include "gguf.h"

typedef struct clv_tensor_stats {
    int64_t n;         /* values */
    int64_t nonfinite; /* NaN or infinite values */
    int64_t zeros;
    double mean, std;  /* over the finite values */
    double min, max;
    double rms;
} clv_tensor_stats;

/* CLV_ERR_UNSUPPORTED when the type cannot be decoded, CLV_ERR_IO when the
 * data cannot be read. */
clv_status clv_tensor_stats_compute(const clv_gguf *g, const clv_gguf_tensor *t, clv_tensor_stats *out);

#endif
