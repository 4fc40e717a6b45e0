/* Stands in for gemm.c in builds without oneDNN. */
#include "gemm.h"

bool clv_dnnl_available(void) { return false; }

const char *clv_dnnl_describe(void) { return "not built with oneDNN"; }

void clv_dnnl_single_thread(void) {}

clv_status clv_dnnl_gemm_f32(int64_t m, int64_t n, int64_t k, const float *a, int64_t lda, const float *b,
                             int64_t ldb, float *c, int64_t ldc) {
    (void)m, (void)n, (void)k, (void)a, (void)lda, (void)b, (void)ldb, (void)c, (void)ldc;
    return clv_fail(CLV_ERR_UNSUPPORTED, "cleave was built without oneDNN");
}
