/* The hardware profile on disk: a GGUF file with metadata only
 * (general.type = "hardware"); docs/profiler.md lists the keys. Loading
 * checks every value it takes, so a damaged or hand-edited file is an error
 * with a message, never a plan built on garbage. */
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gguf.h"
#include "gguf_writer.h"
#include "hw_internal.h"
#include "matvec.h"
#include "types.h"

#define HW_VERSION 1

/* "cleave.hw.cpu.q4_k.gbps" */
static void type_key(char *key, size_t cap, int32_t type) {
    char name[32];
    snprintf(name, sizeof name, "%s", clv_type_name(type));
    for (char *c = name; *c; c++) *c = (char)tolower((unsigned char)*c);
    snprintf(key, cap, "cleave.hw.cpu.%s.gbps", name);
}

clv_status clv_hw_save(const clv_hw_profile *hw, const char *path) {
    clv_gguf_writer *w = NULL;
    clv_status st = clv_gguf_writer_open(path, NULL, &w);
    if (st) return st;
    const char *type_names[CLV_HW_MAX_TYPES];
    for (int i = 0; i < hw->n_types; i++) type_names[i] = clv_type_name(hw->types[i]);

#define TRY(call)                  \
    do {                           \
        if ((st = (call))) goto out; \
    } while (0)
    TRY(clv_gguf_writer_set_str(w, "general.type", "hardware"));
    TRY(clv_gguf_writer_set_u32(w, "cleave.hw.version", HW_VERSION));
    TRY(clv_gguf_writer_set_str(w, "cleave.hw.date", hw->date));
    TRY(clv_gguf_writer_set_bool(w, "cleave.hw.quick", hw->quick));

    TRY(clv_gguf_writer_set_str(w, "cleave.hw.cpu.model", hw->cpu_model));
    TRY(clv_gguf_writer_set_i32(w, "cleave.hw.cpu.cores", hw->cpu_cores));
    TRY(clv_gguf_writer_set_i32(w, "cleave.hw.cpu.logical", hw->cpu_logical));
    TRY(clv_gguf_writer_set_str(w, "cleave.hw.cpu.path", hw->cpu_path));
    TRY(clv_gguf_writer_set_bool(w, "cleave.hw.cpu.pinned", hw->cpu_pinned));
    TRY(clv_gguf_writer_set_u64(w, "cleave.hw.cpu.llc_bytes", hw->cpu_llc_bytes));
    TRY(clv_gguf_writer_set_u64(w, "cleave.hw.cpu.matrix_bytes", hw->cpu_matrix_bytes));
    TRY(clv_gguf_writer_set_arr(w, "cleave.hw.cpu.threads", CLV_GGUF_I32, hw->threads, (uint64_t)hw->n_threads));
    TRY(clv_gguf_writer_set_arr_str(w, "cleave.hw.cpu.types", type_names, (uint64_t)hw->n_types));
    for (int i = 0; i < hw->n_types; i++) {
        char key[64];
        type_key(key, sizeof key, hw->types[i]);
        TRY(clv_gguf_writer_set_arr(w, key, CLV_GGUF_F32, hw->cpu_gbps[i], (uint64_t)hw->n_threads));
    }

    if (hw->gpu_note[0]) TRY(clv_gguf_writer_set_str(w, "cleave.hw.gpu.note", hw->gpu_note));
    if (hw->gpu_name[0]) {
        TRY(clv_gguf_writer_set_str(w, "cleave.hw.gpu.name", hw->gpu_name));
        TRY(clv_gguf_writer_set_u64(w, "cleave.hw.gpu.memory_bytes", hw->gpu_mem_bytes));
        TRY(clv_gguf_writer_set_u64(w, "cleave.hw.gpu.read_bytes", hw->gpu_read_bytes));
        TRY(clv_gguf_writer_set_u64(w, "cleave.hw.gpu.copy_bytes", hw->gpu_copy_bytes));
        TRY(clv_gguf_writer_set_f32(w, "cleave.hw.gpu.read_gbps", hw->gpu_read_gbps));
        TRY(clv_gguf_writer_set_f32(w, "cleave.hw.h2d.pinned_gbps", hw->h2d_pinned_gbps));
        TRY(clv_gguf_writer_set_f32(w, "cleave.hw.h2d.pageable_gbps", hw->h2d_pageable_gbps));
        TRY(clv_gguf_writer_set_f32(w, "cleave.hw.h2d.memcpy_gbps", hw->h2d_memcpy_gbps));
        TRY(clv_gguf_writer_set_f32(w, "cleave.hw.d2h.pinned_gbps", hw->d2h_pinned_gbps));
    }

    if (hw->ssd_note[0]) TRY(clv_gguf_writer_set_str(w, "cleave.hw.ssd.note", hw->ssd_note));
    if (hw->n_qd > 0) {
        TRY(clv_gguf_writer_set_str(w, "cleave.hw.ssd.dir", hw->ssd_dir));
        TRY(clv_gguf_writer_set_bool(w, "cleave.hw.ssd.direct", hw->ssd_direct));
        TRY(clv_gguf_writer_set_u64(w, "cleave.hw.ssd.file_bytes", hw->ssd_file_bytes));
        TRY(clv_gguf_writer_set_u32(w, "cleave.hw.ssd.block_bytes", hw->ssd_block_bytes));
        TRY(clv_gguf_writer_set_arr(w, "cleave.hw.ssd.qd", CLV_GGUF_I32, hw->qd, (uint64_t)hw->n_qd));
        TRY(clv_gguf_writer_set_arr(w, "cleave.hw.ssd.gbps", CLV_GGUF_F32, hw->ssd_gbps, (uint64_t)hw->n_qd));
        TRY(clv_gguf_writer_set_arr(w, "cleave.hw.ssd.iops_qd", CLV_GGUF_I32, hw->iops_qd,
                                    (uint64_t)hw->n_iops_qd));
        TRY(clv_gguf_writer_set_arr(w, "cleave.hw.ssd.iops", CLV_GGUF_F32, hw->ssd_iops, (uint64_t)hw->n_iops_qd));
    }
#undef TRY
    return clv_gguf_writer_finish(w);
out:
    clv_gguf_writer_free(w);
    return st;
}

/* ---- loading -------------------------------------------------------------- */

typedef struct loader {
    const clv_gguf *g;
    const char *path;
} loader;

/* A missing key or a value of the wrong type or range makes the file a bad
 * profile: CLV_ERR_FORMAT, keeping the reader's message (file and key). */
static clv_status bad(clv_status st) {
    return st == CLV_ERR_NOT_FOUND || st == CLV_ERR_TYPE || st == CLV_ERR_RANGE ? CLV_ERR_FORMAT : st;
}

static clv_status get_str(const loader *l, const char *key, char *out, size_t cap) {
    clv_gguf_str s;
    clv_status st = clv_gguf_get_str_len(l->g, key, &s);
    if (st) return bad(st);
    if (s.len >= cap || memchr(s.data, 0, s.len)) {
        return clv_fail(CLV_ERR_FORMAT, "%s: hardware profile: '%s' is too long or holds a NUL", l->path, key);
    }
    memcpy(out, s.data, s.len);
    out[s.len] = 0;
    return CLV_OK;
}

static bool has(const loader *l, const char *key) { return clv_gguf_find(l->g, key) != NULL; }

static clv_status get_u64(const loader *l, const char *key, uint64_t *out) {
    return bad(clv_gguf_get_u64(l->g, key, out));
}

static clv_status get_bool(const loader *l, const char *key, bool *out) {
    return bad(clv_gguf_get_bool(l->g, key, out));
}

/* A positive, finite figure. */
static clv_status get_gbps(const loader *l, const char *key, float *out) {
    clv_status st = clv_gguf_get_f32(l->g, key, out);
    if (st) return bad(st);
    if (!isfinite(*out) || *out <= 0) {
        return clv_fail(CLV_ERR_FORMAT, "%s: hardware profile: '%s' = %g: not a positive figure", l->path, key,
                        (double)*out);
    }
    return CLV_OK;
}

/* An i32 array of 1..max strictly increasing positive values. */
static clv_status get_counts(const loader *l, const char *key, int32_t *out, int max, int32_t *n) {
    const clv_gguf_value *v;
    clv_status st = clv_gguf_get_arr(l->g, key, CLV_GGUF_I32, &v);
    if (st) return bad(st);
    if (v->v.arr.count < 1 || v->v.arr.count > (uint64_t)max) {
        return clv_fail(CLV_ERR_FORMAT, "%s: hardware profile: '%s' has %llu entries, expected 1..%d", l->path, key,
                        (unsigned long long)v->v.arr.count, max);
    }
    memcpy(out, v->v.arr.data, v->v.arr.count * sizeof(int32_t));
    for (uint64_t i = 0; i < v->v.arr.count; i++) {
        if (out[i] < 1 || (i > 0 && out[i] <= out[i - 1])) {
            return clv_fail(CLV_ERR_FORMAT, "%s: hardware profile: '%s' must be increasing positive counts", l->path,
                            key);
        }
    }
    *n = (int32_t)v->v.arr.count;
    return CLV_OK;
}

/* An f32 array of exactly n positive, finite figures. */
static clv_status get_figures(const loader *l, const char *key, float *out, int32_t n) {
    const clv_gguf_value *v;
    clv_status st = clv_gguf_get_arr(l->g, key, CLV_GGUF_F32, &v);
    if (st) return bad(st);
    if (v->v.arr.count != (uint64_t)n) {
        return clv_fail(CLV_ERR_FORMAT, "%s: hardware profile: '%s' has %llu entries, expected %d", l->path, key,
                        (unsigned long long)v->v.arr.count, (int)n);
    }
    memcpy(out, v->v.arr.data, (size_t)n * sizeof(float));
    for (int32_t i = 0; i < n; i++) {
        if (!isfinite(out[i]) || out[i] <= 0) {
            return clv_fail(CLV_ERR_FORMAT, "%s: hardware profile: '%s'[%d] = %g: not a positive figure", l->path,
                            key, (int)i, (double)out[i]);
        }
    }
    return CLV_OK;
}

static clv_status load_cpu(const loader *l, clv_hw_profile *hw) {
    clv_status st;
    int32_t v;
    if ((st = get_str(l, "cleave.hw.cpu.model", hw->cpu_model, sizeof hw->cpu_model))) return st;
    if ((st = bad(clv_gguf_get_i32(l->g, "cleave.hw.cpu.cores", &v)))) return st;
    hw->cpu_cores = v;
    if ((st = bad(clv_gguf_get_i32(l->g, "cleave.hw.cpu.logical", &v)))) return st;
    hw->cpu_logical = v;
    if (hw->cpu_cores < 1 || hw->cpu_logical < 1) {
        return clv_fail(CLV_ERR_FORMAT, "%s: hardware profile: %d cores, %d logical CPUs", l->path, hw->cpu_cores,
                        hw->cpu_logical);
    }
    if ((st = get_str(l, "cleave.hw.cpu.path", hw->cpu_path, sizeof hw->cpu_path))) return st;
    if ((st = get_bool(l, "cleave.hw.cpu.pinned", &hw->cpu_pinned))) return st;
    if ((st = get_u64(l, "cleave.hw.cpu.llc_bytes", &hw->cpu_llc_bytes))) return st;
    if ((st = get_u64(l, "cleave.hw.cpu.matrix_bytes", &hw->cpu_matrix_bytes))) return st;
    if ((st = get_counts(l, "cleave.hw.cpu.threads", hw->threads, CLV_HW_MAX_THREAD_COUNTS, &hw->n_threads))) {
        return st;
    }

    const clv_gguf_value *types;
    if ((st = bad(clv_gguf_get_arr(l->g, "cleave.hw.cpu.types", CLV_GGUF_STRING, &types)))) return st;
    if (types->v.arr.count < 1 || types->v.arr.count > CLV_HW_MAX_TYPES) {
        return clv_fail(CLV_ERR_FORMAT, "%s: hardware profile: %llu CPU weight types, expected 1..%d", l->path,
                        (unsigned long long)types->v.arr.count, CLV_HW_MAX_TYPES);
    }
    hw->n_types = (int32_t)types->v.arr.count;
    for (int32_t i = 0; i < hw->n_types; i++) {
        const clv_gguf_str *s = &types->v.arr.strs[i];
        int32_t t = strlen(s->data) == s->len ? clv_type_from_name(s->data) : -1;
        if (t < 0 || !clv_cpu_matvec_supports(t, 256)) {
            return clv_fail(CLV_ERR_FORMAT, "%s: hardware profile: '%.32s' is no CPU weight type", l->path, s->data);
        }
        for (int32_t j = 0; j < i; j++) {
            if (hw->types[j] == t) {
                return clv_fail(CLV_ERR_FORMAT, "%s: hardware profile: weight type %s listed twice", l->path,
                                clv_type_name(t));
            }
        }
        hw->types[i] = t;
        char key[64];
        type_key(key, sizeof key, t);
        if ((st = get_figures(l, key, hw->cpu_gbps[i], hw->n_threads))) return st;
    }
    return CLV_OK;
}

/* A part (GPU, SSD) has figures, or a note saying why not, or both. Reads the
 * note; *present tells whether the figures' first key is there. */
static clv_status load_note(const loader *l, const char *part, const char *note_key, const char *first_key, char *note,
                            size_t cap, bool *present) {
    clv_status st;
    if (has(l, note_key) && (st = get_str(l, note_key, note, cap))) return st;
    *present = has(l, first_key);
    if (!*present && !note[0])
        return clv_fail(CLV_ERR_FORMAT, "%s: hardware profile: neither %s figures nor a note why not", l->path, part);
    return CLV_OK;
}

static clv_status load_gpu(const loader *l, clv_hw_profile *hw) {
    bool present;
    clv_status st = load_note(l, "GPU", "cleave.hw.gpu.note", "cleave.hw.gpu.name", hw->gpu_note,
                              sizeof hw->gpu_note, &present);
    if (st || !present) return st;
    if ((st = get_str(l, "cleave.hw.gpu.name", hw->gpu_name, sizeof hw->gpu_name))) return st;
    if (!hw->gpu_name[0]) return clv_fail(CLV_ERR_FORMAT, "%s: hardware profile: empty GPU name", l->path);
    if ((st = get_u64(l, "cleave.hw.gpu.memory_bytes", &hw->gpu_mem_bytes))) return st;
    if ((st = get_u64(l, "cleave.hw.gpu.read_bytes", &hw->gpu_read_bytes))) return st;
    if ((st = get_u64(l, "cleave.hw.gpu.copy_bytes", &hw->gpu_copy_bytes))) return st;
    if ((st = get_gbps(l, "cleave.hw.gpu.read_gbps", &hw->gpu_read_gbps))) return st;
    if ((st = get_gbps(l, "cleave.hw.h2d.pinned_gbps", &hw->h2d_pinned_gbps))) return st;
    if ((st = get_gbps(l, "cleave.hw.h2d.pageable_gbps", &hw->h2d_pageable_gbps))) return st;
    if ((st = get_gbps(l, "cleave.hw.h2d.memcpy_gbps", &hw->h2d_memcpy_gbps))) return st;
    return get_gbps(l, "cleave.hw.d2h.pinned_gbps", &hw->d2h_pinned_gbps);
}

static clv_status load_ssd(const loader *l, clv_hw_profile *hw) {
    bool present;
    clv_status st = load_note(l, "SSD", "cleave.hw.ssd.note", "cleave.hw.ssd.qd", hw->ssd_note,
                              sizeof hw->ssd_note, &present);
    if (st || !present) return st;
    if ((st = get_str(l, "cleave.hw.ssd.dir", hw->ssd_dir, sizeof hw->ssd_dir))) return st;
    if ((st = get_bool(l, "cleave.hw.ssd.direct", &hw->ssd_direct))) return st;
    if ((st = get_u64(l, "cleave.hw.ssd.file_bytes", &hw->ssd_file_bytes))) return st;
    if ((st = bad(clv_gguf_get_u32(l->g, "cleave.hw.ssd.block_bytes", &hw->ssd_block_bytes)))) return st;
    if (hw->ssd_block_bytes == 0 || hw->ssd_file_bytes < hw->ssd_block_bytes) {
        return clv_fail(CLV_ERR_FORMAT, "%s: hardware profile: SSD block %u bytes, file %llu bytes", l->path,
                        hw->ssd_block_bytes, (unsigned long long)hw->ssd_file_bytes);
    }
    if ((st = get_counts(l, "cleave.hw.ssd.qd", hw->qd, CLV_HW_MAX_QD, &hw->n_qd))) return st;
    if ((st = get_figures(l, "cleave.hw.ssd.gbps", hw->ssd_gbps, hw->n_qd))) return st;
    if ((st = get_counts(l, "cleave.hw.ssd.iops_qd", hw->iops_qd, CLV_HW_MAX_IOPS_QD, &hw->n_iops_qd))) return st;
    return get_figures(l, "cleave.hw.ssd.iops", hw->ssd_iops, hw->n_iops_qd);
}

clv_status clv_hw_load(const char *path, clv_hw_profile **out) {
    *out = NULL;
    clv_gguf_params gp = clv_gguf_default_params();
    gp.use_mmap = false;
    gp.load_splits = false;
    clv_gguf *g = NULL;
    clv_status st = clv_gguf_open(path, &gp, &g);
    if (st) return st;
    loader l = {g, path};
    clv_hw_profile *hw = calloc(1, sizeof *hw);
    if (!hw) {
        clv_gguf_free(g);
        return clv_fail(CLV_ERR_NOMEM, "%s: out of memory", path);
    }

    char kind[32];
    uint32_t version = 0;
    if ((st = get_str(&l, "general.type", kind, sizeof kind))) goto fail;
    if (strcmp(kind, "hardware") != 0) {
        st = clv_fail(CLV_ERR_FORMAT, "%s: general.type is '%s': not a hardware profile (make one with "
                                      "`cleave profile --hardware -o FILE.hw`)",
                      path, kind);
        goto fail;
    }
    if ((st = bad(clv_gguf_get_u32(g, "cleave.hw.version", &version)))) goto fail;
    if (version != HW_VERSION) {
        st = clv_fail(CLV_ERR_UNSUPPORTED, "%s: hardware profile version %u; this cleave reads version %d", path,
                      version, HW_VERSION);
        goto fail;
    }
    if ((st = get_str(&l, "cleave.hw.date", hw->date, sizeof hw->date))) goto fail;
    if ((st = get_bool(&l, "cleave.hw.quick", &hw->quick))) goto fail;
    if ((st = load_cpu(&l, hw))) goto fail;
    if ((st = load_gpu(&l, hw))) goto fail;
    if ((st = load_ssd(&l, hw))) goto fail;
    clv_gguf_free(g);
    *out = hw;
    return CLV_OK;
fail:
    clv_gguf_free(g);
    free(hw);
    return st;
}
