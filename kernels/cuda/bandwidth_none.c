/* The GPU bandwidth entry point of a build without CUDA (CMake picks this
 * file instead of bandwidth.cu), so callers need no #ifdef. */
#include "bandwidth.h"

clv_status clv_cuda_measure_bandwidth(const clv_cuda_bandwidth_params *params, clv_cuda_bandwidth *out) {
    (void)params;
    (void)out;
    return clv_fail(CLV_ERR_UNSUPPORTED, "built without CUDA (reconfigure with -DCLEAVE_CUDA=ON where nvcc is "
                                         "installed): GPU figures skipped");
}
