/* Dispatch: picks a kernel table per path and checks the caller's arguments.
 * A path that leaves a type out (NULL) falls back to the next lower path. */
#include "matvec.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_features.h"
#include "matvec_impl.h"
#include "status.h"

/* Merged tables per path, built once: [SCALAR], [AVX2], [AVX512]. */
static clv_cpu_kernels merged[4];
static pthread_once_t merged_once = PTHREAD_ONCE_INIT;
static _Atomic(int) current_path; /* 0 until the first use picks AUTO */

static void merge(clv_cpu_kernels *dst, const clv_cpu_kernels *src) {
    for (int t = 0; t < CLV_TYPE_COUNT; t++) {
        if (src->mm[t]) dst->mm[t] = src->mm[t], dst->mv_ids[t] = src->mv_ids[t];
    }
    if (src->quant_q8_0) dst->quant_q8_0 = src->quant_q8_0;
    if (src->quant_q8_k) dst->quant_q8_k = src->quant_q8_k;
}

static void build_tables(void) {
    merged[CLV_CPU_PATH_SCALAR] = clv_cpu_kernels_scalar;
    merged[CLV_CPU_PATH_AVX2] = merged[CLV_CPU_PATH_SCALAR];
    merge(&merged[CLV_CPU_PATH_AVX2], &clv_cpu_kernels_avx2);
    merged[CLV_CPU_PATH_AVX512] = merged[CLV_CPU_PATH_AVX2];
    merge(&merged[CLV_CPU_PATH_AVX512], &clv_cpu_kernels_avx512);
}

bool clv_cpu_path_available(clv_cpu_path p) {
    const clv_cpu_features *f = clv_cpu_get_features();
    bool avx2 = f->avx2 && f->fma && f->f16c && clv_cpu_kernels_avx2.built;
    switch (p) {
    case CLV_CPU_PATH_AUTO:
    case CLV_CPU_PATH_SCALAR: return true;
    case CLV_CPU_PATH_AVX2: return avx2;
    case CLV_CPU_PATH_AVX512:
        return avx2 && f->avx512f && f->avx512bw && f->avx512vl && f->avx512vnni &&
               clv_cpu_kernels_avx512.built;
    }
    return false;
}

static clv_cpu_path best_path(void) {
    const char *env = getenv("CLEAVE_CPU_PATH");
    if (env) {
        for (int p = CLV_CPU_PATH_SCALAR; p <= CLV_CPU_PATH_AVX512; p++) {
            if (strcmp(env, clv_cpu_path_name((clv_cpu_path)p)) == 0 && clv_cpu_path_available((clv_cpu_path)p))
                return (clv_cpu_path)p;
        }
    }
    if (clv_cpu_path_available(CLV_CPU_PATH_AVX512)) return CLV_CPU_PATH_AVX512;
    if (clv_cpu_path_available(CLV_CPU_PATH_AVX2)) return CLV_CPU_PATH_AVX2;
    return CLV_CPU_PATH_SCALAR;
}

bool clv_cpu_set_path(clv_cpu_path p) {
    if (!clv_cpu_path_available(p)) return false;
    pthread_once(&merged_once, build_tables);
    atomic_store(&current_path, (int)(p == CLV_CPU_PATH_AUTO ? best_path() : p));
    return true;
}

clv_cpu_path clv_cpu_get_path(void) {
    int p = atomic_load_explicit(&current_path, memory_order_relaxed);
    if (p == 0) {
        clv_cpu_set_path(CLV_CPU_PATH_AUTO);
        p = atomic_load(&current_path);
    }
    return (clv_cpu_path)p;
}

const char *clv_cpu_path_name(clv_cpu_path p) {
    switch (p) {
    case CLV_CPU_PATH_AUTO: return "auto";
    case CLV_CPU_PATH_SCALAR: return "scalar";
    case CLV_CPU_PATH_AVX2: return "avx2";
    case CLV_CPU_PATH_AVX512: return "avx512";
    }
    return "unknown";
}

static const clv_cpu_kernels *kernels(void) { return &merged[clv_cpu_get_path()]; }

int32_t clv_cpu_vec_dot_type(int32_t wtype) {
    switch (wtype) {
    case CLV_TYPE_F32:
    case CLV_TYPE_F16:
    case CLV_TYPE_BF16: return CLV_TYPE_F32;
    case CLV_TYPE_Q4_0:
    case CLV_TYPE_Q4_1:
    case CLV_TYPE_Q5_0:
    case CLV_TYPE_Q5_1:
    case CLV_TYPE_Q8_0:
    case CLV_TYPE_IQ4_NL:
    case CLV_TYPE_MXFP4: return CLV_TYPE_Q8_0;
    case CLV_TYPE_Q2_K:
    case CLV_TYPE_Q3_K:
    case CLV_TYPE_Q4_K:
    case CLV_TYPE_Q5_K:
    case CLV_TYPE_Q6_K:
    case CLV_TYPE_IQ4_XS: return CLV_TYPE_Q8_K;
    default: return -1;
    }
}

bool clv_cpu_matvec_supports(int32_t wtype, int64_t n_in) {
    if (clv_cpu_vec_dot_type(wtype) < 0 || n_in <= 0) return false;
    return n_in % clv_type_get(wtype)->block_elems == 0;
}

size_t clv_cpu_activation_bytes(int32_t wtype, int64_t n) {
    int32_t vt = clv_cpu_vec_dot_type(wtype);
    CLV_ASSERT(vt >= 0 && n >= 0);
    const clv_type_info *ti = clv_type_get(vt);
    CLV_ASSERT(n % ti->block_elems == 0);
    return (size_t)(n / ti->block_elems) * (size_t)ti->block_bytes;
}

void clv_cpu_quantize_activation(int32_t wtype, const float *x, void *xq, int64_t n) {
    int32_t vt = clv_cpu_vec_dot_type(wtype);
    CLV_ASSERT(vt >= 0 && n >= 0);
    CLV_ASSERT(n % clv_type_get(vt)->block_elems == 0);
    const clv_cpu_kernels *k = kernels();
    switch (vt) {
    case CLV_TYPE_F32:
        if (xq != x) memcpy(xq, x, (size_t)n * sizeof(float));
        break;
    case CLV_TYPE_Q8_0: k->quant_q8_0(x, xq, n); break;
    case CLV_TYPE_Q8_K: k->quant_q8_k(x, xq, n); break;
    default: CLV_ASSERT(!"unknown vec dot type");
    }
}

void clv_cpu_matmul(int32_t wtype, const void *w, size_t row_bytes, int64_t n_in, const void *xq,
                    size_t xq_stride, int64_t n_batch, float *y, size_t y_stride, int64_t r0,
                    int64_t r1) {
    CLV_ASSERT(clv_cpu_matvec_supports(wtype, n_in));
    CLV_ASSERT(0 <= r0 && r0 <= r1 && n_batch >= 0);
    if (r0 == r1 || n_batch == 0) return;
    clv_cpu_mm_fn fn = kernels()->mm[wtype];
    CLV_ASSERT(fn != NULL);
    fn(n_in, (const uint8_t *)w + (size_t)r0 * row_bytes, row_bytes, r1 - r0, (const uint8_t *)xq,
       xq_stride, n_batch, y, y_stride);
}

void clv_cpu_matvec_ids(int32_t wtype, const void *w, size_t row_bytes, int64_t n_in, const void *xq,
                        const int32_t *ids, int64_t n_ids, float *y) {
    CLV_ASSERT(clv_cpu_matvec_supports(wtype, n_in) && n_ids >= 0);
    const clv_cpu_kernels *k = kernels();
    if (k->mv_ids[wtype]) {
        k->mv_ids[wtype](n_in, (const uint8_t *)w, row_bytes, ids, n_ids, (const uint8_t *)xq, y);
        return;
    }
    /* Runs of consecutive ids go to the row kernel; the rows up to eight ids
     * past the run are prefetched, since jumps defeat the hardware prefetcher. */
    int64_t fetched = 0;
    for (int64_t i = 0; i < n_ids;) {
        int64_t r0 = ids[i], len = 1;
        while (i + len < n_ids && ids[i + len] == r0 + len) len++;
        for (int64_t end = i + len + 8 < n_ids ? i + len + 8 : n_ids; fetched < end; fetched++)
            for (size_t o = 0; o < row_bytes; o += 64) __builtin_prefetch((const uint8_t *)w + (size_t)ids[fetched] * row_bytes + o);
        k->mm[wtype](n_in, (const uint8_t *)w + (size_t)r0 * row_bytes, row_bytes, len, (const uint8_t *)xq, 0, 1,
                     y + i, 0);
        i += len;
    }
}

void clv_cpu_matvec(int32_t wtype, const void *w, size_t row_bytes, int64_t n_in, const void *xq,
                    float *y, int64_t r0, int64_t r1) {
    clv_cpu_matmul(wtype, w, row_bytes, n_in, xq, 0, 1, y, 0, r0, r1);
}
