/* The GPU entry points of a build without CUDA (CMake picks this file
 * instead of gpu_state.c and ops_cuda.c), so callers need no #ifdef. */
#include "gpu_state.h"
#include "types.h"

static clv_status no_cuda(void) {
    return clv_fail(CLV_ERR_UNSUPPORTED, "built without CUDA: the GPU backend is not available (reconfigure with "
                                         "-DCLEAVE_CUDA=ON where nvcc is installed, or run on the CPU)");
}

clv_gpu_params clv_gpu_default_params(void) { return (clv_gpu_params){.n_ctx = 4096, .kv_type = CLV_TYPE_F16}; }

void clv_gpu_need_of(const clv_model *m, const clv_gpu_params *p, clv_gpu_need *out) {
    (void)m;
    (void)p;
    *out = (clv_gpu_need){0};
}

clv_status clv_gpu_state_create(const clv_model *m, const clv_gpu_params *p, clv_gpu_state **out) {
    (void)m;
    (void)p;
    *out = NULL;
    return no_cuda();
}

void clv_gpu_state_free(clv_gpu_state *g) { CLV_ASSERT(!g); /* none can exist */ }

const void *clv_gpu_weight(const clv_gpu_state *g, const clv_weight *w) {
    (void)g;
    (void)w;
    CLV_ASSERT(!"no GPU state without CUDA");
    return NULL;
}

clv_status clv_gpu_context_init(clv_context *ctx) {
    (void)ctx;
    return no_cuda();
}

clv_status clv_gpu_decode(clv_context *ctx, const clv_batch *batch) {
    (void)ctx;
    (void)batch;
    return no_cuda();
}
