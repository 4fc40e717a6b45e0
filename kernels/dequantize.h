/* Scalar reference dequantizer: every fast CPU or GPU path must agree with it.
 *
 * Each value is computed with the same float operations, in the same order,
 * as the format's reference decoder (for K-quants: (d * scale) * q - dmin * min,
 * never fused), so results are bit-exact against other implementations. */
#ifndef CLV_DEQUANTIZE_H
#define CLV_DEQUANTIZE_H

#include <stdbool.h>
#include <stdint.h>

#include "status.h"
#include "types.h"

/* Decodes n elements (a multiple of the type's block size) of `type` from
 * `src` (packed blocks, any alignment) into dst. CLV_ERR_UNSUPPORTED for a
 * type this dequantizer does not know, CLV_ERR_ARG for a bad n. */
clv_status clv_dequantize_row(int32_t type, const void *src, float *dst, int64_t n);

#endif
