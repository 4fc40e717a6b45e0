/* Internal to kernels/cpu: what each code path (matvec_scalar.c,
 * matvec_avx2.c, matvec_avx512.c) gives the dispatcher in matvec.c. */
#ifndef CLV_CPU_MATVEC_IMPL_H
#define CLV_CPU_MATVEC_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "blocks.h"
#include "fp16.h"
#include "matvec.h"
#include "status.h"
#include "types.h"

/* Y[b * ys + r] = dot(row r, activation b) for r < nrows, b < nbatch; w and y
 * already point at the first row; n is the row length in elements. */
typedef void (*clv_cpu_mm_fn)(int64_t n, const uint8_t *w, size_t row_bytes, int64_t nrows,
                              const uint8_t *x, size_t xs, int64_t nbatch, float *y, size_t ys);

/* y[k] = dot(row ids[k], activation x) for k < n_ids; w points at row 0. */
typedef void (*clv_cpu_mv_ids_fn)(int64_t n, const uint8_t *w, size_t row_bytes, const int32_t *ids,
                                  int64_t n_ids, const uint8_t *x, float *y);

/* x (n floats) -> n / block activation blocks, as the scalar quantizer writes them. */
typedef void (*clv_cpu_quant_fn)(const float *x, void *xq, int64_t n);

typedef struct clv_cpu_kernels {
    bool built; /* false where the build could not compile the path (not x86-64) */
    clv_cpu_mm_fn mm[CLV_TYPE_COUNT]; /* NULL: this path leaves the type to a lower one */
    /* NULL: rows by runs of consecutive ids through mm (fine where mm takes
       one row at a time; the multi-row decode tiles want gathered rows) */
    clv_cpu_mv_ids_fn mv_ids[CLV_TYPE_COUNT];
    clv_cpu_quant_fn quant_q8_0, quant_q8_k; /* NULL: likewise */
} clv_cpu_kernels;

extern const clv_cpu_kernels clv_cpu_kernels_scalar;
extern const clv_cpu_kernels clv_cpu_kernels_avx2;
extern const clv_cpu_kernels clv_cpu_kernels_avx512;

/* Activations of the batch are processed in groups of about this many bytes,
 * so that a group stays in L2 while weight rows stream past it. */
#define CLV_CPU_ACT_TILE_BYTES (256 * 1024)

static inline int64_t clv_cpu_batch_group(size_t xs, int64_t n_act_bytes, int64_t nbatch) {
    int64_t per = (int64_t)(xs > (size_t)n_act_bytes ? xs : (size_t)n_act_bytes);
    int64_t g = per > 0 ? CLV_CPU_ACT_TILE_BYTES / per : nbatch;
    if (g < 8) g = 8;
    return g < nbatch ? g : nbatch;
}

static inline uint16_t clv_load_u16(const uint8_t *p) {
    uint16_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline uint32_t clv_load_u32(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline float clv_load_f32(const uint8_t *p) {
    float v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* MXFP4 block scale 2^(e-127) / 2 (the value table is doubled); e = 0, 1 give
 * fp32 subnormals, e = 255 is 2^127, as the reference dequantizer does. */
static inline float clv_e8m0_half(uint8_t e) {
    return clv_fp32_from_bits(e < 2 ? 0x00200000u << e : (uint32_t)(e - 1) << 23);
}

/* Q4_K/Q5_K: the eight 6-bit scales (sc[0..7]) and mins (mn[0..7]) from the
 * 12 packed bytes, four at a time in 32-bit words (same result as the
 * reference's per-index unpacking). */
static inline void clv_k4_scales(const uint8_t *s, uint8_t sc[8], uint8_t mn[8]) {
    uint32_t a = clv_load_u32(s), b = clv_load_u32(s + 4), c = clv_load_u32(s + 8);
    uint32_t sc_lo = a & 0x3f3f3f3fu, mn_lo = b & 0x3f3f3f3fu;
    uint32_t sc_hi = (c & 0x0f0f0f0fu) | ((a >> 6) & 0x03030303u) << 4;
    uint32_t mn_hi = ((c >> 4) & 0x0f0f0f0fu) | ((b >> 6) & 0x03030303u) << 4;
    memcpy(sc, &sc_lo, 4);
    memcpy(sc + 4, &sc_hi, 4);
    memcpy(mn, &mn_lo, 4);
    memcpy(mn + 4, &mn_hi, 4);
}

/* Q3_K: the sixteen 6-bit scales, bias 32 removed. */
static inline void clv_k3_scales(const uint8_t *s, int8_t sc[16]) {
    uint32_t a = clv_load_u32(s), b = clv_load_u32(s + 4), c = clv_load_u32(s + 8);
    uint32_t w[4] = {
        (a & 0x0f0f0f0fu) | (c & 0x03030303u) << 4,
        (b & 0x0f0f0f0fu) | ((c >> 2) & 0x03030303u) << 4,
        ((a >> 4) & 0x0f0f0f0fu) | ((c >> 4) & 0x03030303u) << 4,
        ((b >> 4) & 0x0f0f0f0fu) | ((c >> 6) & 0x03030303u) << 4,
    };
    uint8_t u[16];
    memcpy(u, w, 16);
    for (int i = 0; i < 16; i++) sc[i] = (int8_t)(u[i] - 32);
}

/* IQ4_XS: the eight 6-bit scales, bias 32 removed. */
static inline void clv_iq4xs_scales(const uint8_t *b, int16_t ls[8]) {
    uint16_t h = clv_load_u16(b + 2);
    for (int ib = 0; ib < 8; ib++) {
        int lo = (b[4 + ib / 2] >> (4 * (ib % 2))) & 0xF;
        ls[ib] = (int16_t)((lo | ((h >> (2 * ib)) & 3) << 4) - 32);
    }
}

/* Offsets inside the blocks (blocks.h order). */
enum {
    CLV_Q80_BYTES = 34,
    CLV_Q8K_BYTES = 292,
    CLV_Q8K_QS = 4,
    CLV_Q8K_BSUMS = 260,
};

#endif
