/* Pieces of the hardware profile shared between its files (hardware.c runs
 * them in order; hw_cpu.c, hw_ssd.c or hw_ssd_none.c measure). */
#ifndef CLV_HW_INTERNAL_H
#define CLV_HW_INTERNAL_H

#include "hardware.h"

/* Seconds on a monotonic clock. */
double clv_hw_now(void);

/* Formats one progress line and hands it to progress (when not NULL). */
void clv_hw_report(clv_hw_progress_fn progress, void *user, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* True when the CPU part can generate valid weights of this type (and the
 * matvec kernels take it): the types the profile lists. */
bool clv_hw_cpu_type_measurable(int32_t type);

/* Fills the CPU part of hw (model, cores, caches, the GB/s table). */
clv_status clv_hw_measure_cpu(const clv_hw_params *params, clv_hw_progress_fn progress, void *user,
                              clv_hw_profile *hw);

/* Checks the scratch directory (an existing, writable one) has room for
 * `bytes` before anything is measured; CLV_OK without liburing (no file). */
clv_status clv_hw_ssd_check(const char *dir, uint64_t bytes);

/* Fills the SSD part of hw. CLV_ERR_UNSUPPORTED (with the reason as message)
 * when it cannot run here: built without liburing, io_uring refused. */
clv_status clv_hw_measure_ssd(const clv_hw_params *params, const char *dir, uint64_t bytes,
                              clv_hw_progress_fn progress, void *user, clv_hw_profile *hw);

#endif
