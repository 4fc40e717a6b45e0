#include "tensor_stats.h"

#include <math.h>
#include <stdlib.h>

#include "dequantize.h"
#include "types.h"

clv_status clv_tensor_stats_compute(const clv_gguf *g, const clv_gguf_tensor *t, clv_tensor_stats *out) {
    const clv_type_info *info = clv_type_get(t->type);
    CLV_ASSERT(info); /* the reader accepts known types only */
    if (!clv_type_can_dequantize(t->type)) {
        return clv_fail(CLV_ERR_UNSUPPORTED, "tensor '%s': cannot decode type %s", t->name, info->name);
    }
    int64_t row = t->ne[0];
    int64_t n_rows = row ? clv_gguf_tensor_n_elems(t) / row : 0;
    uint64_t row_bytes = 0;
    clv_type_bytes(t->type, row, &row_bytes);
    float *values = malloc((size_t)(row ? row : 1) * sizeof *values);
    void *raw = malloc((size_t)(row_bytes ? row_bytes : 1));
    if (!values || !raw) {
        free(values);
        free(raw);
        return clv_fail(CLV_ERR_NOMEM, "tensor '%s': no memory for a row", t->name);
    }
    const uint8_t *mapped = clv_gguf_tensor_data(g, t);
    clv_tensor_stats s = {.min = INFINITY, .max = -INFINITY};
    double sum = 0, sum_sq = 0;
    int64_t finite = 0;
    clv_status st = CLV_OK;
    for (int64_t r = 0; r < n_rows && st == CLV_OK; r++) {
        const void *src = mapped ? mapped + (uint64_t)r * row_bytes : raw;
        if (!mapped) st = clv_gguf_read_tensor(g, t, (uint64_t)r * row_bytes, raw, row_bytes);
        if (st == CLV_OK) st = clv_dequantize_row(t->type, src, values, row);
        if (st != CLV_OK) break;
        for (int64_t i = 0; i < row; i++) {
            double v = values[i];
            if (!isfinite(v)) {
                s.nonfinite++;
                continue;
            }
            finite++;
            sum += v;
            sum_sq += v * v;
            s.zeros += v == 0.0;
            if (v < s.min) s.min = v;
            if (v > s.max) s.max = v;
        }
    }
    free(values);
    free(raw);
    if (st != CLV_OK) return st;
    s.n = n_rows * row;
    if (finite) {
        s.mean = sum / (double)finite;
        double var = sum_sq / (double)finite - s.mean * s.mean;
        s.std = var > 0 ? sqrt(var) : 0;
        s.rms = sqrt(sum_sq / (double)finite);
    } else {
        s.min = s.max = 0;
    }
    *out = s;
    return CLV_OK;
}
