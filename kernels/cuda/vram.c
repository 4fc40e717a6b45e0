/* Device memory with a budget (vram.h): one cudaMalloc per allocation, each
 * recorded so that clv_vram_free can give back whatever is left. The engine
 * makes a handful of large allocations (weights, KV cache, scratch), so a
 * plain array searched linearly is enough. */
#include "vram.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cuda_runtime_api.h>

typedef struct vram_block {
    void *ptr;
    uint64_t bytes; /* counted (rounded) size */
} vram_block;

struct clv_vram {
    int device;
    uint64_t budget, used, peak;
    int64_t n_allocs, fail_at;
    vram_block *blocks;
    int64_t n_blocks, cap_blocks;
};

static double gib(uint64_t b) { return (double)b / (double)(1ull << 30); }

clv_vram_params clv_vram_default_params(void) { return (clv_vram_params){.device = 0, .budget = 0, .fail_at = 0}; }

uint64_t clv_vram_margin(uint64_t total_bytes) {
    uint64_t pct = total_bytes / 20;
    return pct > (512ull << 20) ? pct : 512ull << 20;
}

uint64_t clv_vram_round(uint64_t bytes) { return (bytes + CLV_VRAM_ALIGN - 1) / CLV_VRAM_ALIGN * CLV_VRAM_ALIGN; }

clv_status clv_vram_device_info(int device, uint64_t *free_bytes, uint64_t *total_bytes, char *name,
                                size_t name_cap) {
    int n = 0;
    cudaError_t err = cudaGetDeviceCount(&n);
    if (err != cudaSuccess || device < 0 || device >= n) {
        (void)cudaGetLastError();
        return clv_fail(CLV_ERR_UNSUPPORTED, "no CUDA device %d (%d found%s%s)", device, err == cudaSuccess ? n : 0,
                        err == cudaSuccess ? "" : ": ", err == cudaSuccess ? "" : cudaGetErrorString(err));
    }
    size_t f = 0, t = 0;
    if ((err = cudaSetDevice(device)) != cudaSuccess || (err = cudaMemGetInfo(&f, &t)) != cudaSuccess) {
        (void)cudaGetLastError();
        return clv_fail(CLV_ERR_DEVICE, "CUDA device %d: cannot read its free memory: %s", device,
                        cudaGetErrorString(err));
    }
    if (free_bytes) *free_bytes = f;
    if (total_bytes) *total_bytes = t;
    if (name && name_cap) {
        struct cudaDeviceProp prop;
        if (cudaGetDeviceProperties(&prop, device) == cudaSuccess) snprintf(name, name_cap, "%s", prop.name);
        else snprintf(name, name_cap, "CUDA device %d", device);
    }
    return CLV_OK;
}

clv_status clv_vram_create(const clv_vram_params *params, clv_vram **out) {
    *out = NULL;
    clv_vram_params p = params ? *params : clv_vram_default_params();
    uint64_t free_bytes = 0, total = 0;
    clv_status st = clv_vram_device_info(p.device, &free_bytes, &total, NULL, 0);
    if (st) return st;
    clv_vram *v = calloc(1, sizeof *v);
    if (!v) return clv_fail(CLV_ERR_NOMEM, "no memory for the device allocator");
    v->device = p.device;
    v->fail_at = p.fail_at;
    if (p.budget) v->budget = p.budget;
    else {
        uint64_t margin = clv_vram_margin(total);
        v->budget = free_bytes > margin ? free_bytes - margin : 0;
    }
    *out = v;
    return CLV_OK;
}

void clv_vram_free(clv_vram *v) {
    if (!v) return;
    if (v->n_blocks) cudaSetDevice(v->device);
    for (int64_t i = 0; i < v->n_blocks; i++) cudaFree(v->blocks[i].ptr);
    free(v->blocks);
    free(v);
}

uint64_t clv_vram_budget(const clv_vram *v) { return v->budget; }
uint64_t clv_vram_used(const clv_vram *v) { return v->used; }
uint64_t clv_vram_peak(const clv_vram *v) { return v->peak; }
int clv_vram_device(const clv_vram *v) { return v->device; }

clv_status clv_vram_alloc(clv_vram *v, uint64_t bytes, const char *what, void **out) {
    *out = NULL;
    CLV_ASSERT(bytes > 0);
    uint64_t need = clv_vram_round(bytes);
    if (need < bytes || need > v->budget || v->used > v->budget - need) {
        return clv_fail(CLV_ERR_BUDGET,
                        "%s needs %.2f GiB of VRAM more, %.2f GiB of the %.2f GiB budget is in use; raise --vram",
                        what, gib(need), gib(v->used), gib(v->budget));
    }
    if (v->n_blocks == v->cap_blocks) {
        int64_t cap = v->cap_blocks ? 2 * v->cap_blocks : 16;
        vram_block *b = realloc(v->blocks, (size_t)cap * sizeof *b);
        if (!b) return clv_fail(CLV_ERR_NOMEM, "no memory for the device allocator's list");
        v->blocks = b;
        v->cap_blocks = cap;
    }
    v->n_allocs++;
    void *p = NULL;
    cudaError_t err = cudaSetDevice(v->device);
    if (err == cudaSuccess) {
        err = v->fail_at && v->n_allocs == v->fail_at ? cudaErrorMemoryAllocation : cudaMalloc(&p, (size_t)need);
    }
    if (err == cudaSuccess && (err = cudaMemset(p, 0, (size_t)need)) != cudaSuccess) cudaFree(p);
    if (err != cudaSuccess) {
        (void)cudaGetLastError();
        size_t f = 0, t = 0;
        cudaMemGetInfo(&f, &t);
        return clv_fail(CLV_ERR_DEVICE,
                        "%s: cannot allocate %.2f GiB on CUDA device %d (%.2f GiB free there): %s; other programs "
                        "may hold the memory, or lower --vram to leave more margin",
                        what, gib(need), v->device, gib(f), cudaGetErrorString(err));
    }
    v->blocks[v->n_blocks++] = (vram_block){p, need};
    v->used += need;
    if (v->used > v->peak) v->peak = v->used;
    *out = p;
    return CLV_OK;
}

void clv_vram_release(clv_vram *v, void *p) {
    if (!p) return;
    for (int64_t i = 0; i < v->n_blocks; i++) {
        if (v->blocks[i].ptr != p) continue;
        cudaSetDevice(v->device);
        cudaFree(p);
        v->used -= v->blocks[i].bytes;
        v->blocks[i] = v->blocks[--v->n_blocks];
        return;
    }
    CLV_ASSERT(!"clv_vram_release: not an allocation of this clv_vram");
}

static clv_status copy(void *dst, const void *src, uint64_t bytes, enum cudaMemcpyKind kind, void *stream) {
    if (!bytes) return CLV_OK;
    cudaError_t err = cudaMemcpyAsync(dst, src, (size_t)bytes, kind, (cudaStream_t)stream);
    if (err == cudaSuccess && kind == cudaMemcpyDeviceToHost) err = cudaStreamSynchronize((cudaStream_t)stream);
    if (err != cudaSuccess) {
        (void)cudaGetLastError();
        return clv_fail(CLV_ERR_DEVICE, "CUDA copy of %llu bytes %s the device failed: %s", (unsigned long long)bytes,
                        kind == cudaMemcpyHostToDevice ? "to" : "from", cudaGetErrorString(err));
    }
    return CLV_OK;
}

clv_status clv_vram_to_device(void *dst_dev, const void *src, uint64_t bytes, void *stream) {
    return copy(dst_dev, src, bytes, cudaMemcpyHostToDevice, stream);
}

clv_status clv_vram_to_host(void *dst, const void *src_dev, uint64_t bytes, void *stream) {
    return copy(dst, src_dev, bytes, cudaMemcpyDeviceToHost, stream);
}

clv_status clv_vram_zero(void *dst_dev, uint64_t bytes, void *stream) {
    cudaError_t err = cudaMemsetAsync(dst_dev, 0, (size_t)bytes, (cudaStream_t)stream);
    if (err != cudaSuccess) {
        (void)cudaGetLastError();
        return clv_fail(CLV_ERR_DEVICE, "CUDA memset of %llu bytes failed: %s", (unsigned long long)bytes,
                        cudaGetErrorString(err));
    }
    return CLV_OK;
}

clv_status clv_vram_stream_create(void **out) {
    cudaStream_t s = NULL;
    /* A blocking stream: ordered after work on the legacy default stream,
     * such as the zeroing of new allocations. */
    cudaError_t err = cudaStreamCreate(&s);
    if (err != cudaSuccess) {
        (void)cudaGetLastError();
        *out = NULL;
        return clv_fail(CLV_ERR_DEVICE, "cannot create a CUDA stream: %s", cudaGetErrorString(err));
    }
    *out = s;
    return CLV_OK;
}

void clv_vram_stream_free(void *stream) {
    if (stream) cudaStreamDestroy((cudaStream_t)stream);
}

clv_status clv_vram_sync(void *stream) {
    cudaError_t err = cudaStreamSynchronize((cudaStream_t)stream);
    if (err == cudaSuccess) err = cudaGetLastError();
    if (err != cudaSuccess) {
        (void)cudaGetLastError();
        return clv_fail(CLV_ERR_DEVICE, "CUDA work failed: %s", cudaGetErrorString(err));
    }
    return CLV_OK;
}
