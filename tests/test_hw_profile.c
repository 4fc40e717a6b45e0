/* Hardware profile: a quick-mode measurement gives a positive finite CPU
 * figure for every weight type the matvec kernels take and every thread
 * count, SSD figures from a scratch file under the build directory (or a
 * reason why not, and the scratch file is gone either way), the GPU part or
 * a reason why not; the file round-trips exactly and damaged files are
 * refused. */
#include <dirent.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gguf.h"
#include "gguf_writer.h"
#include "hardware.h"
#include "matvec.h"
#include "status.h"
#include "test.h"
#include "types.h"

static int n_progress;

static void progress(void *user, const char *line) {
    (void)user;
    n_progress++;
    printf("    %s\n", line);
}

static int dir_entries(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d))) n += strcmp(de->d_name, ".") && strcmp(de->d_name, "..");
    closedir(d);
    return n;
}

static bool positive(float v) { return isfinite(v) && v > 0; }

static void check_measurement(const clv_hw_profile *hw, const char *dir) {
    /* every type the kernels take, independently of the profiler's list */
    int want_types = 0;
    for (int32_t t = 0; t < CLV_TYPE_COUNT; t++) {
        if (!clv_cpu_matvec_supports(t, 256)) continue;
        want_types++;
        bool found = false;
        for (int i = 0; i < hw->n_types; i++) found |= hw->types[i] == t;
        CHECK_MSG(found, "weight type %s not measured", clv_type_name(t));
    }
    CHECK_EQ_INT(hw->n_types, want_types);
    CHECK(hw->n_types >= 16); /* F32 .. MXFP4 */

    CHECK(hw->cpu_cores >= 1 && hw->cpu_logical >= 1);
    CHECK(hw->cpu_model[0] && hw->cpu_path[0] && hw->date[0]);
    CHECK(hw->n_threads >= 1);
    CHECK_EQ_INT(hw->threads[0], 1);
    CHECK_EQ_INT(hw->threads[hw->n_threads - 1], hw->cpu_cores);
    for (int k = 1; k < hw->n_threads; k++) CHECK(hw->threads[k] > hw->threads[k - 1]);
    for (int i = 0; i < hw->n_types; i++) {
        for (int k = 0; k < hw->n_threads; k++) {
            CHECK_MSG(positive(hw->cpu_gbps[i][k]), "%s x %d threads: %g GB/s", clv_type_name(hw->types[i]),
                      hw->threads[k], (double)hw->cpu_gbps[i][k]);
            /* a 8 MiB matrix read faster than 10 TB/s would mean the timing is broken */
            CHECK(hw->cpu_gbps[i][k] < 10000);
        }
    }
    CHECK(clv_hw_cpu_gbps(hw, CLV_TYPE_Q4_K, 1) == hw->cpu_gbps[0][0] || hw->types[0] != CLV_TYPE_Q4_K);
    CHECK(clv_hw_cpu_gbps(hw, CLV_TYPE_Q8_K, 1) == 0); /* not a weight type */

    if (hw->gpu_name[0]) {
        CHECK(positive(hw->gpu_read_gbps) && positive(hw->h2d_pinned_gbps) && positive(hw->h2d_pageable_gbps) &&
              positive(hw->h2d_memcpy_gbps) && positive(hw->d2h_pinned_gbps));
        CHECK(hw->gpu_mem_bytes > 0);
        /* the acceptance check: the event-timed pinned copy agrees with a plain cudaMemcpy */
        CHECK_MSG(fabsf(hw->h2d_pinned_gbps - hw->h2d_memcpy_gbps) <= 0.2f * hw->h2d_memcpy_gbps,
                  "pinned %.1f GB/s vs cudaMemcpy %.1f GB/s", (double)hw->h2d_pinned_gbps,
                  (double)hw->h2d_memcpy_gbps);
        CHECK(hw->gpu_read_gbps > hw->h2d_pinned_gbps); /* device memory beats the bus */
        CHECK(hw->h2d_pinned_gbps >= 0.8f * hw->h2d_pageable_gbps);
    } else {
        CHECK_MSG(hw->gpu_note[0] != 0, "no GPU figures and no reason");
        CHECK(strstr(hw->gpu_note, "CUDA") != NULL);
        printf("  GPU skipped: %s\n", hw->gpu_note);
    }

    if (hw->n_qd > 0) {
        CHECK_EQ_INT(hw->n_qd, 8);
        for (int k = 0; k < hw->n_qd; k++) {
            CHECK_EQ_INT(hw->qd[k], 1 << k);
            CHECK_MSG(positive(hw->ssd_gbps[k]), "QD %d: %g GB/s", hw->qd[k], (double)hw->ssd_gbps[k]);
        }
        CHECK_EQ_INT(hw->n_iops_qd, 3);
        for (int k = 0; k < hw->n_iops_qd; k++) CHECK(positive(hw->ssd_iops[k]));
        CHECK(!strcmp(hw->ssd_dir, dir));
        CHECK_EQ_INT(hw->ssd_file_bytes, 16 << 20);
        CHECK_EQ_INT(hw->ssd_block_bytes, 1 << 20);
        if (!hw->ssd_direct) {
            CHECK(hw->ssd_note[0] != 0);
            printf("  SSD reads buffered: %s\n", hw->ssd_note);
        }
    } else {
        CHECK_MSG(hw->ssd_note[0] != 0, "no SSD figures and no reason");
        printf("  SSD skipped: %s\n", hw->ssd_note);
    }
    CHECK_MSG(dir_entries(dir) == 0, "scratch file left in %s", dir);
}

static void check_equal(const clv_hw_profile *a, const clv_hw_profile *b) {
    CHECK(!strcmp(a->date, b->date));
    CHECK(a->quick == b->quick);
    CHECK(!strcmp(a->cpu_model, b->cpu_model));
    CHECK(a->cpu_cores == b->cpu_cores && a->cpu_logical == b->cpu_logical);
    CHECK(!strcmp(a->cpu_path, b->cpu_path));
    CHECK(a->cpu_pinned == b->cpu_pinned);
    CHECK(a->cpu_llc_bytes == b->cpu_llc_bytes && a->cpu_matrix_bytes == b->cpu_matrix_bytes);
    CHECK_EQ_INT(a->n_threads, b->n_threads);
    CHECK(!memcmp(a->threads, b->threads, sizeof a->threads));
    CHECK_EQ_INT(a->n_types, b->n_types);
    CHECK(!memcmp(a->types, b->types, sizeof a->types));
    CHECK(!memcmp(a->cpu_gbps, b->cpu_gbps, sizeof a->cpu_gbps));
    CHECK(!strcmp(a->gpu_note, b->gpu_note) && !strcmp(a->gpu_name, b->gpu_name));
    CHECK(a->gpu_mem_bytes == b->gpu_mem_bytes && a->gpu_read_bytes == b->gpu_read_bytes &&
          a->gpu_copy_bytes == b->gpu_copy_bytes);
    CHECK(a->gpu_read_gbps == b->gpu_read_gbps && a->h2d_pinned_gbps == b->h2d_pinned_gbps &&
          a->h2d_pageable_gbps == b->h2d_pageable_gbps && a->h2d_memcpy_gbps == b->h2d_memcpy_gbps &&
          a->d2h_pinned_gbps == b->d2h_pinned_gbps);
    CHECK(!strcmp(a->ssd_note, b->ssd_note) && !strcmp(a->ssd_dir, b->ssd_dir));
    CHECK(a->ssd_direct == b->ssd_direct && a->ssd_file_bytes == b->ssd_file_bytes &&
          a->ssd_block_bytes == b->ssd_block_bytes);
    CHECK_EQ_INT(a->n_qd, b->n_qd);
    CHECK(!memcmp(a->qd, b->qd, sizeof a->qd) && !memcmp(a->ssd_gbps, b->ssd_gbps, sizeof a->ssd_gbps));
    CHECK_EQ_INT(a->n_iops_qd, b->n_iops_qd);
    CHECK(!memcmp(a->iops_qd, b->iops_qd, sizeof a->iops_qd) &&
          !memcmp(a->ssd_iops, b->ssd_iops, sizeof a->ssd_iops));
}

/* Writes a copy of the saved file with one key changed (or dropped when
 * `replace` is NULL), then expects loading it to fail with `want`. */
static void check_refused(const char *good, const char *bad_path, const char *key, const clv_gguf_value *replace,
                          clv_status want) {
    clv_gguf *g = NULL;
    CHECK_STATUS(clv_gguf_open(good, NULL, &g), CLV_OK);
    if (!g) return;
    clv_gguf_writer *w = NULL;
    CHECK_STATUS(clv_gguf_writer_open(bad_path, NULL, &w), CLV_OK);
    for (int64_t i = 0; w && i < clv_gguf_n_kv(g); i++) {
        const clv_gguf_kv *kv = clv_gguf_kv_at(g, i);
        bool hit = !strcmp(kv->key.data, key);
        if (hit && !replace) continue;
        CHECK_STATUS(clv_gguf_writer_set_value(w, kv->key.data, hit ? replace : &kv->value), CLV_OK);
    }
    clv_gguf_free(g);
    CHECK_STATUS(clv_gguf_writer_finish(w), CLV_OK);
    clv_hw_profile *hw = NULL;
    clv_status st = clv_hw_load(bad_path, &hw);
    CHECK_MSG(st == want, "%s: got %s (%s), want %s", key, clv_status_str(st), clv_last_error(),
              clv_status_str(want));
    CHECK(hw == NULL);
    if (st != CLV_OK) printf("  refused (%s): %s\n", key, clv_last_error());
    free(hw);
}

static void check_corrupt(const char *good, const char *bad_path) {
    clv_gguf_value v;
    memset(&v, 0, sizeof v);

    v.type = CLV_GGUF_STRING;
    v.v.str.data = "profile";
    v.v.str.len = 7;
    check_refused(good, bad_path, "general.type", &v, CLV_ERR_FORMAT);
    check_refused(good, bad_path, "cleave.hw.cpu.threads", NULL, CLV_ERR_FORMAT);
    check_refused(good, bad_path, "cleave.hw.cpu.q4_k.gbps", NULL, CLV_ERR_FORMAT);

    clv_hw_profile *hw = NULL;
    CHECK_STATUS(clv_hw_load(good, &hw), CLV_OK);
    if (!hw) return;
    float *arr = calloc((size_t)hw->n_threads + 1, sizeof(float));
    for (int k = 0; k <= hw->n_threads; k++) arr[k] = 1.0f;
    v.type = CLV_GGUF_ARRAY;
    v.v.arr.elem_type = CLV_GGUF_F32;
    v.v.arr.count = (uint64_t)hw->n_threads + 1; /* one figure too many */
    v.v.arr.data = arr;
    check_refused(good, bad_path, "cleave.hw.cpu.q8_0.gbps", &v, CLV_ERR_FORMAT);
    v.v.arr.count = (uint64_t)hw->n_threads;
    arr[hw->n_threads - 1] = NAN;
    check_refused(good, bad_path, "cleave.hw.cpu.f16.gbps", &v, CLV_ERR_FORMAT);
    arr[hw->n_threads - 1] = 1.0f;
    arr[0] = -3.0f;
    check_refused(good, bad_path, "cleave.hw.cpu.f16.gbps", &v, CLV_ERR_FORMAT);
    free(arr);

    int32_t dec[2] = {4, 2};
    v.v.arr.elem_type = CLV_GGUF_I32;
    v.v.arr.count = 2;
    v.v.arr.data = dec;
    check_refused(good, bad_path, "cleave.hw.cpu.threads", &v, CLV_ERR_FORMAT);

    const char *types_bad[1] = {"Q8_K"};
    clv_gguf_str s = {4, types_bad[0]};
    v.v.arr.elem_type = CLV_GGUF_STRING;
    v.v.arr.count = 1;
    v.v.arr.data = NULL;
    v.v.arr.strs = &s;
    check_refused(good, bad_path, "cleave.hw.cpu.types", &v, CLV_ERR_FORMAT);

    memset(&v, 0, sizeof v);
    v.type = CLV_GGUF_U32;
    v.v.u32 = 99;
    check_refused(good, bad_path, "cleave.hw.version", &v, CLV_ERR_UNSUPPORTED);
    v.type = CLV_GGUF_F32;
    v.v.f32 = 1.0f;
    check_refused(good, bad_path, "cleave.hw.cpu.model", &v, CLV_ERR_FORMAT); /* wrong type */
    if (hw->n_qd > 0) check_refused(good, bad_path, "cleave.hw.ssd.gbps", NULL, CLV_ERR_FORMAT);
    if (!hw->gpu_name[0]) check_refused(good, bad_path, "cleave.hw.gpu.note", NULL, CLV_ERR_FORMAT);
    free(hw);

    /* truncated: the GGUF reader refuses it */
    FILE *f = fopen(good, "rb");
    CHECK(f != NULL);
    if (!f) return;
    char buf[4096];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    f = fopen(bad_path, "wb");
    fwrite(buf, 1, n / 2, f);
    fclose(f);
    hw = NULL;
    clv_status st = clv_hw_load(bad_path, &hw);
    CHECK_MSG(st != CLV_OK && hw == NULL, "truncated file loaded");
    printf("  refused (truncated): %s\n", clv_last_error());
    free(hw);
}

int main(void) {
    char dir[4096], file[4200], bad_path[4200];
    snprintf(dir, sizeof dir, "%s/tests/hw-scratch-XXXXXX", CLEAVE_BINARY_DIR);
    if (!mkdtemp(dir)) {
        fprintf(stderr, "cannot create %s\n", dir);
        return 1;
    }
    snprintf(file, sizeof file, "%s.hw", dir);
    snprintf(bad_path, sizeof bad_path, "%s.bad.hw", dir);

    /* parameters a user can get wrong */
    clv_hw_profile *hw = NULL;
    clv_hw_params prm = clv_hw_default_params();
    prm.quick = true;
    prm.ssd_dir = "/nonexistent/cleave-hw";
    CHECK_STATUS(clv_hw_measure(&prm, NULL, NULL, &hw), CLV_ERR_IO);
    CHECK(hw == NULL);
    prm.ssd_dir = dir;
    prm.ssd_bytes = 3 << 20;
    CHECK_STATUS(clv_hw_measure(&prm, NULL, NULL, &hw), CLV_ERR_ARG);
    prm.ssd_bytes = 0;

    printf("quick measurement:\n");
    CHECK_STATUS(clv_hw_measure(&prm, progress, NULL, &hw), CLV_OK);
    if (hw) {
        CHECK(n_progress > hw->n_types);
        check_measurement(hw, dir);
        clv_hw_print(stdout, hw);

        CHECK_STATUS(clv_hw_save(hw, file), CLV_OK);
        clv_hw_profile *back = NULL;
        CHECK_STATUS(clv_hw_load(file, &back), CLV_OK);
        if (back) check_equal(hw, back);
        free(back);
        check_corrupt(file, bad_path);

        /* a profile with everything present (as on a GPU machine) round-trips too */
        snprintf(hw->gpu_name, sizeof hw->gpu_name, "Test GPU");
        hw->gpu_note[0] = 0;
        hw->gpu_mem_bytes = (uint64_t)80 << 30;
        hw->gpu_read_bytes = (uint64_t)1 << 30;
        hw->gpu_copy_bytes = (uint64_t)256 << 20;
        hw->gpu_read_gbps = 3000.5f;
        hw->h2d_pinned_gbps = 52.25f;
        hw->h2d_pageable_gbps = 20.125f;
        hw->h2d_memcpy_gbps = 51.75f;
        hw->d2h_pinned_gbps = 50.5f;
        if (hw->n_qd == 0) {
            snprintf(hw->ssd_dir, sizeof hw->ssd_dir, "/mnt/nvme");
            hw->ssd_direct = true;
            hw->ssd_file_bytes = (uint64_t)1 << 30;
            hw->ssd_block_bytes = 1 << 20;
            hw->n_qd = 2;
            hw->qd[0] = 1, hw->qd[1] = 2;
            hw->ssd_gbps[0] = 1.5f, hw->ssd_gbps[1] = 2.75f;
            hw->n_iops_qd = 1;
            hw->iops_qd[0] = 1;
            hw->ssd_iops[0] = 12345.0f;
        }
        CHECK_STATUS(clv_hw_save(hw, file), CLV_OK);
        CHECK_STATUS(clv_hw_load(file, &back), CLV_OK);
        if (back) check_equal(hw, back);
        free(back);
        free(hw);
    }
    remove(file);
    remove(bad_path);
    rmdir(dir);
    return test_finish("test_hw_profile");
}
