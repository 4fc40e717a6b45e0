/* GB/s of the CUDA decode matvec (kernels/cuda/matvec.cu) per weight type,
 * shape and rows per warp (built with CUDA, not run by ctest).
 *
 *   bench_cuda_matvec [--type NAME] [--shape TEXT] [--reps N]
 *
 * Shapes are those decode runs: llama-3-8b's attention and FFN matrices and
 * its output, and qwen3-30b-a3b's 8 routed experts (one launch over the
 * slices the router chose) and its output. Each shape's weights are copied
 * enough times that a run cycles through more bytes than the L2 holds, so
 * the weights come from memory, as in a forward pass. Columns: microseconds
 * per product and GB/s of weight bytes for 1, 2 and 4 rows per warp and for
 * the count clv_cuda_matvec chooses ("auto"), then the fused gate/up
 * product for the FFN shapes (two matrices' bytes). For the experts' down
 * shape the rows-per-warp columns time the down product combined with the
 * weighted sum (clv_cuda_matvec_experts_combine_rows, each slot its own x),
 * and "auto" the plain experts product it replaces (without its combine
 * launch). Weights are random valid blocks: the speed does not depend on
 * the values. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cuda_runtime_api.h>

#include "cuda_matvec.h"
#include "types.h"

#include "../random_blocks.h"

typedef struct shape {
    const char *name;
    int64_t n_in, n_rows, n_sel; /* n_sel > 0: that many experts of 128 */
    bool ffn;                    /* also time the fused gate/up product */
} shape;

static const shape shapes[] = {
    {"llama8b q/o", 4096, 4096, 0, false},     {"llama8b k/v", 4096, 1024, 0, false},
    {"llama8b gate/up", 4096, 14336, 0, true}, {"llama8b down", 14336, 4096, 0, false},
    {"llama8b output", 4096, 128256, 0, false}, {"qwen3moe q", 2048, 4096, 0, false},
    {"qwen3moe k/v", 2048, 512, 0, false},       {"qwen3moe o", 4096, 2048, 0, false},
    {"qwen3moe exp gate", 2048, 768, 8, true},  {"qwen3moe exp down", 768, 2048, 8, false},
    {"qwen3moe output", 2048, 151936, 0, false},
};

#define CUDA_CHECK(call)                                                                                         \
    do {                                                                                                         \
        cudaError_t e_ = (call);                                                                                 \
        if (e_ != cudaSuccess) {                                                                                 \
            fprintf(stderr, "%s: %s\n", #call, cudaGetErrorString(e_));                                          \
            exit(1);                                                                                             \
        }                                                                                                        \
    } while (0)

#define L2_BYTES (256ull << 20) /* more than any current GPU's L2 */
#define N_EXPERT 128

static void die_status(clv_status st) {
    if (st != CLV_OK) {
        fprintf(stderr, "bench_cuda_matvec: %s\n", clv_last_error());
        exit(1);
    }
}

/* Microseconds per product over `reps` products cycling through `copies`
 * copies of the weights; r: rows per warp (0: chosen), glu: fused gate/up. */
static double time_it(int32_t type, uint8_t *w, size_t row_bytes, size_t mat_bytes, int copies, const shape *sh,
                      const int32_t *ids, const float *x, float *y, int r, bool glu, int reps) {
    static float *xs, *wts; /* the combined product's inputs: a slot's own x, and weights */
    if (!xs) {
        CUDA_CHECK(cudaMalloc((void **)&xs, sizeof(float) * 64 * 16384));
        CUDA_CHECK(cudaMalloc((void **)&wts, sizeof(float) * 64));
        CUDA_CHECK(cudaMemset(xs, 0, sizeof(float) * 64 * 16384));
        CUDA_CHECK(cudaMemset(wts, 0, sizeof(float) * 64));
    }
    cudaEvent_t t0, t1;
    CUDA_CHECK(cudaEventCreate(&t0));
    CUDA_CHECK(cudaEventCreate(&t1));
    for (int i = -2; i < reps; i++) { /* two untimed warm-up products */
        if (i == 0) CUDA_CHECK(cudaEventRecord(t0, NULL));
        int c = (i + 2) % copies;
        uint8_t *wc = w + (size_t)c * mat_bytes;
        uint8_t *up = w + (size_t)((c + 1) % copies) * mat_bytes;
        if (sh->n_sel > 0 && r != 0) {
            die_status(clv_cuda_matvec_experts_combine_rows(type, wc, row_bytes, sh->n_in, sh->n_rows, N_EXPERT, ids,
                                                            wts, 1, sh->n_sel, xs, sh->n_in, y, sh->n_rows, r, NULL));
        } else if (sh->n_sel > 0) {
            if (glu) {
                die_status(clv_cuda_matvec_experts_glu(type, wc, up, row_bytes, sh->n_in, sh->n_rows, N_EXPERT, ids,
                                                       sh->n_sel, x, 0, y, sh->n_rows, CLV_CUDA_ACT_SILU, NULL));
            } else {
                die_status(clv_cuda_matvec_experts(type, wc, row_bytes, sh->n_in, sh->n_rows, N_EXPERT, ids,
                                                   sh->n_sel, x, 0, y, sh->n_rows, NULL));
            }
        } else if (glu) {
            die_status(clv_cuda_matvec_glu(type, wc, up, row_bytes, sh->n_in, sh->n_rows, x, y, CLV_CUDA_ACT_SILU,
                                           NULL));
        } else {
            die_status(clv_cuda_matvec_rows(type, wc, row_bytes, sh->n_in, sh->n_rows, x, y, r, NULL));
        }
    }
    CUDA_CHECK(cudaEventRecord(t1, NULL));
    CUDA_CHECK(cudaEventSynchronize(t1));
    float ms = 0;
    CUDA_CHECK(cudaEventElapsedTime(&ms, t0, t1));
    cudaEventDestroy(t0);
    cudaEventDestroy(t1);
    return 1000.0 * ms / reps;
}

int main(int argc, char **argv) {
    const char *only = NULL, *shape_only = NULL; /* a type's name; a part of a shape's name */
    int reps = 200;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--type") && i + 1 < argc) {
            only = argv[++i];
        } else if (!strcmp(argv[i], "--shape") && i + 1 < argc) {
            shape_only = argv[++i];
        } else if (!strcmp(argv[i], "--reps") && i + 1 < argc) {
            reps = atoi(argv[++i]);
        } else {
            fprintf(stderr, "usage: bench_cuda_matvec [--type NAME] [--shape TEXT] [--reps N]\n");
            return 2;
        }
    }
    int n_dev = 0;
    if (cudaGetDeviceCount(&n_dev) != cudaSuccess || n_dev == 0) {
        printf("bench_cuda_matvec: no CUDA device\n");
        return 0;
    }
    if (reps < 1) reps = 1;
    const int32_t types[] = {CLV_TYPE_Q4_K, CLV_TYPE_Q6_K, CLV_TYPE_Q8_0, CLV_TYPE_Q5_K, CLV_TYPE_Q4_0};
    printf("%-18s %-5s %9s | %17s | %17s | %17s | %17s | %17s\n", "shape", "type", "MiB", "r=1 us  GB/s",
           "r=2 us  GB/s", "r=4 us  GB/s", "auto us  GB/s", "gate+up us  GB/s");
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
        int32_t type = types[t];
        if (only && strcmp(only, clv_type_name(type)) != 0) continue;
        const clv_type_info *info = clv_type_get(type);
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
            const shape *sh = &shapes[s];
            if (shape_only && !strstr(sh->name, shape_only)) continue;
            uint64_t row_bytes = 0;
            if (!clv_type_bytes(type, sh->n_in, &row_bytes)) continue;
            int64_t n_mat = sh->n_sel > 0 ? N_EXPERT : 1;
            size_t mat_bytes = (size_t)row_bytes * (size_t)sh->n_rows * (size_t)n_mat;
            int copies = (int)(L2_BYTES / mat_bytes) + 2;
            /* one random matrix (set), copied */
            uint8_t *host = malloc(mat_bytes);
            random_blocks(type, host, mat_bytes / (size_t)info->block_bytes, (size_t)info->block_bytes);
            uint8_t *w = NULL;
            CUDA_CHECK(cudaMalloc((void **)&w, mat_bytes * (size_t)copies));
            for (int c = 0; c < copies; c++) CUDA_CHECK(cudaMemcpy(w + (size_t)c * mat_bytes, host, mat_bytes, cudaMemcpyHostToDevice));
            free(host);
            float *x = NULL, *y = NULL;
            int32_t *ids = NULL;
            int64_t n_sel = sh->n_sel > 0 ? sh->n_sel : 1;
            CUDA_CHECK(cudaMalloc((void **)&x, sizeof(float) * (size_t)sh->n_in));
            CUDA_CHECK(cudaMalloc((void **)&y, sizeof(float) * (size_t)(sh->n_rows * n_sel)));
            CUDA_CHECK(cudaMalloc((void **)&ids, sizeof(int32_t) * (size_t)n_sel));
            float *hx = malloc(sizeof(float) * (size_t)sh->n_in);
            for (int64_t i = 0; i < sh->n_in; i++) hx[i] = (float)((i * 7919) % 2001 - 1000) / 1000.0f;
            CUDA_CHECK(cudaMemcpy(x, hx, sizeof(float) * (size_t)sh->n_in, cudaMemcpyHostToDevice));
            free(hx);
            int32_t hids[64];
            for (int64_t i = 0; i < n_sel && i < 64; i++) hids[i] = (int32_t)((i * 37 + 5) % N_EXPERT);
            CUDA_CHECK(cudaMemcpy(ids, hids, sizeof(int32_t) * (size_t)n_sel, cudaMemcpyHostToDevice));
            /* bytes one product reads: the chosen experts' matrices */
            double bytes = (double)row_bytes * (double)sh->n_rows * (double)n_sel;
            printf("%-18s %-5s %9.1f", sh->name, clv_type_name(type), bytes / 1048576.0);
            const int rs[] = {1, 2, 4, 0};
            for (int i = 0; i < 4; i++) {
                if (sh->n_sel > 0 && rs[i] != 0 && sh->ffn) { /* gate/up experts: only the chosen count */
                    printf(" | %17s", "-");
                    continue;
                }
                double us = time_it(type, w, (size_t)row_bytes, mat_bytes, copies, sh, ids, x, y, rs[i], false, reps);
                printf(" | %8.1f %8.0f", us, bytes / (us * 1e-6) / 1e9);
            }
            if (sh->ffn && copies > 1) {
                double us = time_it(type, w, (size_t)row_bytes, mat_bytes, copies, sh, ids, x, y, 0, true, reps);
                printf(" | %8.1f %8.0f", us, 2 * bytes / (us * 1e-6) / 1e9);
            }
            printf("\n");
            fflush(stdout);
            cudaFree(w), cudaFree(x), cudaFree(y), cudaFree(ids);
        }
    }
    return 0;
}
