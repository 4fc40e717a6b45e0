/* GGUF writer -> reader round trips: every value type, nested arrays, tensors
 * through mmap and pread, typed getters, alignment, v2, split files. */
#include <stdint.h>
#include <unistd.h>

#include "gguf.h"
#include "gguf_writer.h"
#include "test.h"
#include "types.h"

static char tmpdir[256];

static const char *tmp_path(const char *name) {
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    return path;
}

/* Fills tensor i's bytes with a pattern that depends on i and the position. */
static uint8_t pattern(int i, uint64_t pos) { return (uint8_t)(i * 31 + pos * 7 + (pos >> 8)); }

static void write_tensor_data(clv_gguf_writer *w, int i, uint64_t size, uint64_t piece) {
    uint8_t buf[4096];
    for (uint64_t pos = 0; pos < size;) {
        uint64_t n = size - pos < piece ? size - pos : piece;
        if (n > sizeof buf) n = sizeof buf;
        for (uint64_t k = 0; k < n; k++) buf[k] = pattern(i, pos + k);
        CHECK_STATUS(clv_gguf_writer_write(w, buf, n), CLV_OK);
        pos += n;
    }
}

static void test_roundtrip(uint32_t version, uint32_t alignment) {
    char path[512];
    snprintf(path, sizeof path, "%s", tmp_path("roundtrip.gguf"));
    clv_gguf_writer_params wp = clv_gguf_writer_default_params();
    wp.version = version;
    wp.alignment = alignment;
    clv_gguf_writer *w;
    CHECK_STATUS(clv_gguf_writer_open(path, &wp, &w), CLV_OK);
    CHECK_STATUS(clv_gguf_writer_set_str(w, "general.architecture", "llama"), CLV_OK);
    CHECK_STATUS(clv_gguf_writer_set_u8(w, "t.u8", 200), CLV_OK);
    CHECK_STATUS(clv_gguf_writer_set_i8(w, "t.i8", -100), CLV_OK);
    CHECK_STATUS(clv_gguf_writer_set_u16(w, "t.u16", 60000), CLV_OK);
    CHECK_STATUS(clv_gguf_writer_set_i16(w, "t.i16", -30000), CLV_OK);
    CHECK_STATUS(clv_gguf_writer_set_u32(w, "t.u32", 4000000000u), CLV_OK);
    CHECK_STATUS(clv_gguf_writer_set_i32(w, "t.i32", -2000000000), CLV_OK);
    CHECK_STATUS(clv_gguf_writer_set_u64(w, "t.u64", UINT64_MAX), CLV_OK);
    CHECK_STATUS(clv_gguf_writer_set_i64(w, "t.i64", INT64_MIN), CLV_OK);
    CHECK_STATUS(clv_gguf_writer_set_f32(w, "t.f32", 1.5f), CLV_OK);
    CHECK_STATUS(clv_gguf_writer_set_f64(w, "t.f64", -2.25), CLV_OK);
    CHECK_STATUS(clv_gguf_writer_set_bool(w, "t.bool", true), CLV_OK);
    CHECK_STATUS(clv_gguf_writer_set_str(w, "t.empty", ""), CLV_OK);
    int32_t ints[5] = {1, -2, 3, -4, 5};
    CHECK_STATUS(clv_gguf_writer_set_arr(w, "t.arr_i32", CLV_GGUF_I32, ints, 5), CLV_OK);
    const char *strs[3] = {"a", "", "h\xc3\xa9llo"};
    CHECK_STATUS(clv_gguf_writer_set_arr_str(w, "t.arr_str", strs, 3), CLV_OK);
    CHECK_STATUS(clv_gguf_writer_set_arr(w, "t.arr_empty", CLV_GGUF_F32, NULL, 0), CLV_OK);

    /* Nested: an array of two arrays of strings. */
    clv_gguf_str inner_a[2] = {{1, "x"}, {2, "yz"}};
    clv_gguf_str inner_b[1] = {{3, "a\0b"}};
    clv_gguf_value inner[2] = {{.type = CLV_GGUF_ARRAY}, {.type = CLV_GGUF_ARRAY}};
    inner[0].v.arr.elem_type = CLV_GGUF_STRING;
    inner[0].v.arr.count = 2;
    inner[0].v.arr.strs = inner_a;
    inner[1].v.arr.elem_type = CLV_GGUF_STRING;
    inner[1].v.arr.count = 1;
    inner[1].v.arr.strs = inner_b;
    clv_gguf_value nested = {.type = CLV_GGUF_ARRAY};
    nested.v.arr.elem_type = CLV_GGUF_ARRAY;
    nested.v.arr.count = 2;
    nested.v.arr.arrs = inner;
    CHECK_STATUS(clv_gguf_writer_set_value(w, "t.nested", &nested), CLV_OK);
    /* Setting a key again replaces the value. */
    CHECK_STATUS(clv_gguf_writer_set_u32(w, "t.replaced", 1), CLV_OK);
    CHECK_STATUS(clv_gguf_writer_set_u32(w, "t.replaced", 2), CLV_OK);

    const int64_t ne_a[2] = {64, 3};
    const int64_t ne_b[1] = {256 * 2};
    const int64_t ne_c[3] = {32, 2, 5};
    const int64_t ne_z[2] = {0, 4};
    CHECK_STATUS(clv_gguf_writer_add_tensor(w, "a.weight", CLV_TYPE_F32, 2, ne_a), CLV_OK);
    CHECK_STATUS(clv_gguf_writer_add_tensor(w, "b.weight", CLV_TYPE_Q4_K, 1, ne_b), CLV_OK);
    CHECK_STATUS(clv_gguf_writer_add_tensor(w, "zero", CLV_TYPE_F16, 2, ne_z), CLV_OK);
    CHECK_STATUS(clv_gguf_writer_add_tensor(w, "c.weight", CLV_TYPE_Q8_0, 3, ne_c), CLV_OK);
    /* Rejected declarations. */
    CHECK_STATUS(clv_gguf_writer_add_tensor(w, "a.weight", CLV_TYPE_F32, 2, ne_a), CLV_ERR_ARG);
    const int64_t bad_row[1] = {100};
    CHECK_STATUS(clv_gguf_writer_add_tensor(w, "bad", CLV_TYPE_Q4_0, 1, bad_row), CLV_ERR_ARG);
    CHECK_STATUS(clv_gguf_writer_add_tensor(w, "bad", 4, 1, ne_b), CLV_ERR_ARG);

    CHECK_STATUS(clv_gguf_writer_begin_data(w), CLV_OK);
    CHECK_STATUS(clv_gguf_writer_set_u32(w, "late", 1), CLV_ERR_ARG);
    uint64_t sizes[4] = {64 * 3 * 4, 2 * 144, 0, 10 * 34};
    write_tensor_data(w, 0, sizes[0], 100); /* pieces that do not divide the size */
    write_tensor_data(w, 1, sizes[1], 4096);
    write_tensor_data(w, 3, sizes[3], 7);
    uint8_t extra = 0;
    CHECK_STATUS(clv_gguf_writer_write(w, &extra, 1), CLV_ERR_ARG);
    CHECK_STATUS(clv_gguf_writer_finish(w), CLV_OK);
    CHECK(access(tmp_path("roundtrip.gguf.tmp"), F_OK) != 0);

    for (int mode = 0; mode < 2; mode++) {
        clv_gguf_params p = clv_gguf_default_params();
        p.use_mmap = mode == 0;
        clv_gguf *g;
        CHECK_STATUS(clv_gguf_open(path, &p, &g), CLV_OK);
        if (!g) return;
        CHECK_EQ_INT(clv_gguf_version(g), version);
        CHECK_EQ_INT(clv_gguf_alignment(g), alignment);
        CHECK_EQ_INT(clv_gguf_n_tensors(g), 4);
        const char *arch = NULL;
        CHECK_STATUS(clv_gguf_get_str(g, "general.architecture", &arch), CLV_OK);
        CHECK(arch && !strcmp(arch, "llama"));
        uint32_t u32 = 0;
        int32_t i32 = 0;
        uint64_t u64 = 0;
        int64_t i64 = 0;
        float f32 = 0;
        bool b = false;
        CHECK_STATUS(clv_gguf_get_u32(g, "t.u8", &u32), CLV_OK);
        CHECK_EQ_INT(u32, 200);
        CHECK_STATUS(clv_gguf_get_i32(g, "t.i8", &i32), CLV_OK);
        CHECK_EQ_INT(i32, -100);
        CHECK_STATUS(clv_gguf_get_u32(g, "t.i8", &u32), CLV_ERR_RANGE); /* negative into unsigned */
        CHECK_STATUS(clv_gguf_get_u32(g, "t.u16", &u32), CLV_OK);
        CHECK_EQ_INT(u32, 60000);
        CHECK_STATUS(clv_gguf_get_i32(g, "t.i16", &i32), CLV_OK);
        CHECK_EQ_INT(i32, -30000);
        CHECK_STATUS(clv_gguf_get_u32(g, "t.u32", &u32), CLV_OK);
        CHECK(u32 == 4000000000u);
        CHECK_STATUS(clv_gguf_get_i32(g, "t.u32", &i32), CLV_ERR_RANGE);
        CHECK_STATUS(clv_gguf_get_i32(g, "t.i32", &i32), CLV_OK);
        CHECK_EQ_INT(i32, -2000000000);
        CHECK_STATUS(clv_gguf_get_u64(g, "t.u64", &u64), CLV_OK);
        CHECK(u64 == UINT64_MAX);
        CHECK_STATUS(clv_gguf_get_i64(g, "t.u64", &i64), CLV_ERR_RANGE);
        CHECK_STATUS(clv_gguf_get_u32(g, "t.u64", &u32), CLV_ERR_RANGE);
        CHECK_STATUS(clv_gguf_get_i64(g, "t.i64", &i64), CLV_OK);
        CHECK(i64 == INT64_MIN);
        CHECK_STATUS(clv_gguf_get_f32(g, "t.f32", &f32), CLV_OK);
        CHECK(f32 == 1.5f);
        CHECK_STATUS(clv_gguf_get_f32(g, "t.f64", &f32), CLV_OK);
        CHECK(f32 == -2.25f);
        CHECK_STATUS(clv_gguf_get_bool(g, "t.bool", &b), CLV_OK);
        CHECK(b);
        CHECK_STATUS(clv_gguf_get_u32(g, "t.replaced", &u32), CLV_OK);
        CHECK_EQ_INT(u32, 2);
        /* Missing and wrong-typed keys are statuses that name the key. */
        CHECK_STATUS(clv_gguf_get_u32(g, "no.such.key", &u32), CLV_ERR_NOT_FOUND);
        CHECK(strstr(clv_last_error(), "no.such.key") != NULL);
        CHECK_STATUS(clv_gguf_get_u32(g, "general.architecture", &u32), CLV_ERR_TYPE);
        CHECK(strstr(clv_last_error(), "general.architecture") != NULL);
        CHECK_STATUS(clv_gguf_get_str(g, "t.u32", &arch), CLV_ERR_TYPE);
        CHECK_STATUS(clv_gguf_get_bool(g, "t.u8", &b), CLV_ERR_TYPE);
        CHECK_STATUS(clv_gguf_get_f32(g, "t.bool", &f32), CLV_ERR_TYPE);
        const char *empty = NULL;
        CHECK_STATUS(clv_gguf_get_str(g, "t.empty", &empty), CLV_OK);
        CHECK(empty && empty[0] == '\0');

        const clv_gguf_value *arr;
        CHECK_STATUS(clv_gguf_get_arr(g, "t.arr_i32", CLV_GGUF_I32, &arr), CLV_OK);
        CHECK_EQ_INT(arr->v.arr.count, 5);
        CHECK(!memcmp(arr->v.arr.data, ints, sizeof ints));
        CHECK_STATUS(clv_gguf_get_arr(g, "t.arr_i32", CLV_GGUF_STRING, &arr), CLV_ERR_TYPE);
        CHECK_STATUS(clv_gguf_get_arr(g, "t.arr_str", CLV_GGUF_STRING, &arr), CLV_OK);
        CHECK_EQ_INT(arr->v.arr.count, 3);
        CHECK(!strcmp(arr->v.arr.strs[2].data, "h\xc3\xa9llo") && arr->v.arr.strs[1].len == 0);
        CHECK_STATUS(clv_gguf_get_arr(g, "t.arr_empty", CLV_GGUF_F32, &arr), CLV_OK);
        CHECK_EQ_INT(arr->v.arr.count, 0);
        CHECK_STATUS(clv_gguf_get_arr(g, "t.nested", CLV_GGUF_ARRAY, &arr), CLV_OK);
        CHECK_EQ_INT(arr->v.arr.count, 2);
        CHECK_EQ_INT(arr->v.arr.arrs[0].v.arr.count, 2);
        CHECK(!strcmp(arr->v.arr.arrs[0].v.arr.strs[1].data, "yz"));
        CHECK(arr->v.arr.arrs[1].v.arr.strs[0].len == 3 && !memcmp(arr->v.arr.arrs[1].v.arr.strs[0].data, "a\0b", 3));

        const char *names[4] = {"a.weight", "b.weight", "zero", "c.weight"};
        for (int i = 0; i < 4; i++) {
            const clv_gguf_tensor *t = clv_gguf_find_tensor(g, names[i]);
            CHECK_MSG(t != NULL, "tensor %s", names[i]);
            if (!t) continue;
            CHECK(t->size == sizes[i]);
            CHECK(t->offset % alignment == 0);
            CHECK(t->file_offset % alignment == 0);
            uint8_t *buf = malloc(t->size + 1);
            CHECK_STATUS(clv_gguf_read_tensor(g, t, 0, buf, t->size), CLV_OK);
            int bad = 0;
            for (uint64_t k = 0; k < t->size; k++) bad += buf[k] != pattern(i, k);
            CHECK_MSG(bad == 0, "tensor %s: %d bytes differ (pread)", names[i], bad);
            const uint8_t *m = clv_gguf_tensor_data(g, t);
            if (mode == 0 && t->size) {
                CHECK(m != NULL);
                if (m) CHECK(!memcmp(m, buf, t->size));
            } else if (mode == 1) {
                CHECK(m == NULL);
            }
            CHECK_STATUS(clv_gguf_read_tensor(g, t, t->size, buf, 1), CLV_ERR_RANGE);
            CHECK_STATUS(clv_gguf_read_tensor(g, t, UINT64_MAX, buf, 2), CLV_ERR_RANGE);
            free(buf);
        }
        const clv_gguf_tensor *c = clv_gguf_find_tensor(g, "c.weight");
        if (c) {
            CHECK_EQ_INT(c->n_dims, 3);
            CHECK(c->ne[0] == 32 && c->ne[1] == 2 && c->ne[2] == 5 && c->ne[3] == 1);
            CHECK_EQ_INT(c->type, CLV_TYPE_Q8_0);
        }
        CHECK(clv_gguf_find_tensor(g, "nope") == NULL);
        clv_gguf_free(g);
    }
}

/* A model in three parts, named and keyed the way split tools write them. */
static void test_splits(void) {
    const int n_parts = 3;
    char path[512];
    for (int part = 0; part < n_parts; part++) {
        snprintf(path, sizeof path, "%s/model-%05d-of-%05d.gguf", tmpdir, part + 1, n_parts);
        clv_gguf_writer *w;
        CHECK_STATUS(clv_gguf_writer_open(path, NULL, &w), CLV_OK);
        if (part == 0) CHECK_STATUS(clv_gguf_writer_set_str(w, "general.architecture", "qwen3"), CLV_OK);
        CHECK_STATUS(clv_gguf_writer_set_u16(w, "split.no", (uint16_t)part), CLV_OK);
        CHECK_STATUS(clv_gguf_writer_set_u16(w, "split.count", (uint16_t)n_parts), CLV_OK);
        CHECK_STATUS(clv_gguf_writer_set_i32(w, "split.tensors.count", 2 * n_parts), CLV_OK);
        for (int k = 0; k < 2; k++) {
            char name[32];
            snprintf(name, sizeof name, "t%d", part * 2 + k);
            const int64_t ne[1] = {8 + part};
            CHECK_STATUS(clv_gguf_writer_add_tensor(w, name, CLV_TYPE_F32, 1, ne), CLV_OK);
        }
        CHECK_STATUS(clv_gguf_writer_begin_data(w), CLV_OK);
        for (int k = 0; k < 2; k++) {
            float v[16];
            for (int j = 0; j < 8 + part; j++) v[j] = (float)(100 * (part * 2 + k) + j);
            CHECK_STATUS(clv_gguf_writer_write(w, v, (uint64_t)(8 + part) * 4), CLV_OK);
        }
        CHECK_STATUS(clv_gguf_writer_finish(w), CLV_OK);
    }
    snprintf(path, sizeof path, "%s/model-00001-of-00003.gguf", tmpdir);
    clv_gguf *g;
    CHECK_STATUS(clv_gguf_open(path, NULL, &g), CLV_OK);
    if (g) {
        CHECK_EQ_INT(clv_gguf_n_splits(g), 3);
        CHECK_EQ_INT(clv_gguf_n_tensors(g), 6);
        for (int i = 0; i < 6; i++) {
            char name[32];
            snprintf(name, sizeof name, "t%d", i);
            const clv_gguf_tensor *t = clv_gguf_find_tensor(g, name);
            CHECK(t != NULL);
            if (!t) continue;
            CHECK_EQ_INT(t->split, i / 2);
            const float *v = clv_gguf_tensor_data(g, t);
            float r[16];
            CHECK_STATUS(clv_gguf_read_tensor(g, t, 0, r, t->size), CLV_OK);
            CHECK(v && v[3] == (float)(100 * i + 3) && r[3] == v[3]);
        }
        clv_gguf_free(g);
    }
    /* Opening a later part points the user at the first. */
    snprintf(path, sizeof path, "%s/model-00002-of-00003.gguf", tmpdir);
    CHECK_STATUS(clv_gguf_open(path, NULL, &g), CLV_ERR_ARG);
    CHECK(strstr(clv_last_error(), "first part") != NULL);
    /* A missing part is an error naming it. */
    snprintf(path, sizeof path, "%s/model-00003-of-00003.gguf", tmpdir);
    unlink(path);
    snprintf(path, sizeof path, "%s/model-00001-of-00003.gguf", tmpdir);
    CHECK_STATUS(clv_gguf_open(path, NULL, &g), CLV_ERR_NOT_FOUND);
    CHECK(strstr(clv_last_error(), "00003-of-00003") != NULL);
    /* Without split loading, the first part opens alone. */
    clv_gguf_params p = clv_gguf_default_params();
    p.load_splits = false;
    CHECK_STATUS(clv_gguf_open(path, &p, &g), CLV_OK);
    if (g) CHECK_EQ_INT(clv_gguf_n_tensors(g), 2);
    clv_gguf_free(g);
}

static void test_writer_errors(void) {
    clv_gguf_writer *w;
    CHECK_STATUS(clv_gguf_writer_open("/nonexistent-dir/x.gguf", NULL, &w), CLV_ERR_IO);
    clv_gguf_writer_params wp = clv_gguf_writer_default_params();
    wp.alignment = 48;
    CHECK_STATUS(clv_gguf_writer_open(tmp_path("x.gguf"), &wp, &w), CLV_ERR_ARG);
    /* An unfinished tensor fails finish and leaves no file behind. */
    CHECK_STATUS(clv_gguf_writer_open(tmp_path("short.gguf"), NULL, &w), CLV_OK);
    const int64_t ne[1] = {16};
    CHECK_STATUS(clv_gguf_writer_add_tensor(w, "t", CLV_TYPE_F32, 1, ne), CLV_OK);
    CHECK_STATUS(clv_gguf_writer_begin_data(w), CLV_OK);
    float v[4] = {0};
    CHECK_STATUS(clv_gguf_writer_write(w, v, sizeof v), CLV_OK);
    CHECK_STATUS(clv_gguf_writer_finish(w), CLV_ERR_ARG);
    CHECK(access(tmp_path("short.gguf"), F_OK) != 0);
    CHECK(access(tmp_path("short.gguf.tmp"), F_OK) != 0);
    clv_gguf_writer_free(NULL);
    clv_gguf_free(NULL);
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/cleave-test-gguf-XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    test_roundtrip(3, 32);
    test_roundtrip(2, 32);
    test_roundtrip(3, 64);
    test_roundtrip(3, 4096);
    test_splits();
    test_writer_errors();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    return test_finish("test_gguf");
}
