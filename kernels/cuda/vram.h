/* Device memory with a budget, callable from C: every byte cleave takes on
 * the GPU comes from one clv_vram, which refuses an allocation that would
 * take it past its budget (`--vram SIZE`), counts what is in use and the
 * peak, and frees whatever is left when it is freed. Also the few copies and
 * waits the engine needs, so that no other C file needs the CUDA API.
 *
 * Accounting: each allocation is one cudaMalloc, counted at its size rounded
 * up to CLV_VRAM_ALIGN. The driver's own memory (the CUDA context, page
 * granularity) is outside the budget; the default budget leaves a margin
 * for it. Callers that want a budget error before anything is allocated sum
 * clv_vram_round() of what they will ask for and compare it with
 * clv_vram_budget() first (runtime/gpu_state.c does).
 *
 * A build without CUDA has none of this: runtime/gpu_none.c answers the
 * engine's GPU entry points with "built without CUDA". */
#ifndef CLV_CUDA_VRAM_H
#define CLV_CUDA_VRAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Alignment (and accounting granule) of every allocation: cudaMalloc's. */
#define CLV_VRAM_ALIGN 256u

typedef struct clv_vram clv_vram;

typedef struct clv_vram_params {
    int device;      /* CUDA device index */
    uint64_t budget; /* bytes that may be allocated; 0: the device's free memory minus clv_vram_margin() */
    /* Testing: allocation number fail_at (1 = the first) fails as if the
     * device were out of memory; 0: never. */
    int64_t fail_at;
} clv_vram_params;

clv_vram_params clv_vram_default_params(void);

/* What the default budget leaves free for the driver and other programs:
 * 512 MiB or 5% of the device's memory, whichever is larger. */
uint64_t clv_vram_margin(uint64_t total_bytes);

/* Free and total memory of a device now, and its name (name may be NULL).
 * CLV_ERR_UNSUPPORTED when there is no such CUDA device. */
clv_status clv_vram_device_info(int device, uint64_t *free_bytes, uint64_t *total_bytes, char *name,
                                size_t name_cap);

/* Selects params->device and fixes the budget. CLV_ERR_UNSUPPORTED without a
 * usable CUDA device, CLV_ERR_NOMEM for the bookkeeping. */
clv_status clv_vram_create(const clv_vram_params *params, clv_vram **out);

/* Frees every allocation still held, then v. NULL is allowed. */
void clv_vram_free(clv_vram *v);

/* bytes rounded up to CLV_VRAM_ALIGN: what an allocation of bytes counts. */
uint64_t clv_vram_round(uint64_t bytes);

uint64_t clv_vram_budget(const clv_vram *v);
uint64_t clv_vram_used(const clv_vram *v); /* counted bytes held now */
uint64_t clv_vram_peak(const clv_vram *v); /* most counted bytes held at once */
int clv_vram_device(const clv_vram *v);

/* *out = bytes (> 0) of device memory, zeroed, CLV_VRAM_ALIGN-aligned.
 * `what` names it in messages ("KV cache"). CLV_ERR_BUDGET when it would
 * take the total past the budget, CLV_ERR_DEVICE when cudaMalloc fails;
 * either way nothing is allocated and *out is NULL. */
clv_status clv_vram_alloc(clv_vram *v, uint64_t bytes, const char *what, void **out);

/* Gives back one allocation of v (NULL is allowed). */
void clv_vram_release(clv_vram *v, void *p);

/* Copies between host and device memory on `stream` (a cudaStream_t; NULL:
 * the default stream). With pageable host memory both return once the host
 * side may be reused; to_host returns once the data is there.
 * CLV_ERR_DEVICE when the copy fails (which includes earlier asynchronous
 * errors of the device). */
clv_status clv_vram_to_device(void *dst_dev, const void *src, uint64_t bytes, void *stream);
clv_status clv_vram_to_host(void *dst, const void *src_dev, uint64_t bytes, void *stream);

/* Zeroes device memory, asynchronously on stream. */
clv_status clv_vram_zero(void *dst_dev, uint64_t bytes, void *stream);

/* A stream of its own for the engine's work (*out is a cudaStream_t), and
 * waiting for what was queued on one. */
clv_status clv_vram_stream_create(void **out);
void clv_vram_stream_free(void *stream);
clv_status clv_vram_sync(void *stream);

#ifdef __cplusplus
}
#endif

#endif
