/* Scalar reference quantizers (float rows -> packed blocks).
 *
 * Weights: Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K (plus F32, F16, BF16).
 * Activations for dot products: Q8_0, Q8_1, Q8_K.
 * Scales are chosen by a small search per (sub-)block that minimizes the
 * squared error, so these are slow compared with a plain max-abs quantizer but
 * give good error; they are deterministic (same input, same bytes). Inputs
 * must be finite: NaN or inf gives valid but meaningless blocks. */
#ifndef CLV_QUANTIZE_H
#define CLV_QUANTIZE_H

#include <stdbool.h>
#include <stdint.h>

#include "status.h"
#include "types.h"

/* True for the types clv_quantize_row can write. */
bool clv_type_can_quantize(int32_t type);

/* Quantizes n floats (a multiple of the type's block size) into dst, which
 * receives n / block_elems blocks (any alignment). CLV_ERR_UNSUPPORTED for a
 * type this quantizer does not write, CLV_ERR_ARG for a bad n. */
clv_status clv_quantize_row(int32_t type, const float *src, void *dst, int64_t n);

#endif
