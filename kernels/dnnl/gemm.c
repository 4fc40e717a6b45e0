/* oneDNN's sgemm on the calling thread (see gemm.h). */
#include "gemm.h"

#include <omp.h>
#include <stdio.h>

#include <oneapi/dnnl/dnnl.h>

bool clv_dnnl_available(void) { return true; }

const char *clv_dnnl_describe(void) {
    static char buf[96];
    const dnnl_version_t *v = dnnl_version();
    snprintf(buf, sizeof buf, "oneDNN %d.%d.%d", v->major, v->minor, v->patch);
    return buf;
}

void clv_dnnl_single_thread(void) {
    /* libgomp keeps this setting per calling thread: oneDNN then runs its
     * work inline instead of starting a team beside the engine's threads. */
    if (omp_get_max_threads() != 1) omp_set_num_threads(1);
}

clv_status clv_dnnl_gemm_f32(int64_t m, int64_t n, int64_t k, const float *a, int64_t lda, const float *b,
                             int64_t ldb, float *c, int64_t ldc) {
    dnnl_status_t st = dnnl_sgemm('N', 'T', m, n, k, 1.0f, a, lda, b, ldb, 0.0f, c, ldc);
    if (st == dnnl_out_of_memory)
        return clv_fail(CLV_ERR_NOMEM, "oneDNN sgemm (%lld x %lld x %lld): out of memory", (long long)m,
                        (long long)n, (long long)k);
    if (st != dnnl_success)
        return clv_fail(CLV_ERR_ARG, "oneDNN sgemm (%lld x %lld x %lld) failed with status %d", (long long)m,
                        (long long)n, (long long)k, (int)st);
    return CLV_OK;
}
