/* oneDNN's GEMM for prompt batches: for large batches, decoding a panel of
 * weight rows to float once and multiplying it with every token through a
 * tuned GEMM beats quantizing the activations and decoding each weight block
 * once per tile of tokens. A build without oneDNN links gemm_none.c instead,
 * and clv_dnnl_available() says so. */
#ifndef CLV_DNNL_GEMM_H
#define CLV_DNNL_GEMM_H

#include <stdbool.h>
#include <stdint.h>

#include "status.h"

/* Whether this build has oneDNN. */
bool clv_dnnl_available(void);

/* "oneDNN 2.6.3 (cpu runtime: OpenMP)" or "not built with oneDNN". */
const char *clv_dnnl_describe(void);

/* Makes oneDNN calls from the calling thread run on that thread alone: the
 * engine's thread pool does the splitting. Cheap; call it in each worker. */
void clv_dnnl_single_thread(void);

/* C[m][n] = sum_k A[m][k] * B[n][k] (row-major; B is the weight panel, one
 * row per output), on the calling thread. CLV_ERR_UNSUPPORTED without
 * oneDNN, CLV_ERR_NOMEM or CLV_ERR_ARG when oneDNN refuses. */
clv_status clv_dnnl_gemm_f32(int64_t m, int64_t n, int64_t k, const float *a, int64_t lda, const float *b,
                             int64_t ldb, float *c, int64_t ldc);

#endif
