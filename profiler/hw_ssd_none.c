/* SSD part of the hardware profile in a build without liburing (CMake picks
 * this file instead of hw_ssd.c): the figures are skipped with the reason. */
#include "hw_internal.h"

clv_status clv_hw_ssd_check(const char *dir, uint64_t bytes) {
    (void)dir;
    (void)bytes;
    return CLV_OK; /* no scratch file will be written */
}

clv_status clv_hw_measure_ssd(const clv_hw_params *params, const char *dir, uint64_t bytes,
                              clv_hw_progress_fn progress, void *user, clv_hw_profile *hw) {
    (void)params, (void)dir, (void)bytes, (void)progress, (void)user, (void)hw;
    return clv_fail(CLV_ERR_UNSUPPORTED, "built without liburing: the SSD figures need io_uring (install "
                                         "liburing-dev and reconfigure); SSD figures skipped");
}
