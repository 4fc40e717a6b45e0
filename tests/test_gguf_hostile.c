/* Hostile GGUF files: every one must give a status and a message that names
 * the file, the section and the offset, and never crash or over-allocate. */
#include <unistd.h>

#include "gguf.h"
#include "gguf_craft.h"
#include "test.h"
#include "types.h"

static char path[256];

/* Section boundaries of the base file, recorded while building it. */
typedef struct layout {
    size_t end_header, end_kv[3], end_info[2], data_start, end;
} layout;

static craft base_file(layout *lo) {
    craft c = {0};
    craft_header(&c, 3, 2, 3);
    lo->end_header = c.len;
    craft_kv_str(&c, "general.architecture", "llama");
    lo->end_kv[0] = c.len;
    craft_kv_u32(&c, "test.u32", 7);
    lo->end_kv[1] = c.len;
    craft_str(&c, "test.arr");
    craft_i32(&c, 9);
    craft_i32(&c, 8);
    craft_u64(&c, 2);
    craft_str(&c, "x");
    craft_str(&c, "yz");
    lo->end_kv[2] = c.len;
    const int64_t ne_a[1] = {8}, ne_b[2] = {32, 2};
    craft_tensor(&c, "a", 1, ne_a, 0, 0);
    lo->end_info[0] = c.len;
    craft_tensor(&c, "b", 2, ne_b, 8, 32);
    lo->end_info[1] = c.len;
    craft_pad(&c, 32);
    lo->data_start = c.len;
    for (int i = 0; i < 32 + 68; i++) craft_u8(&c, (uint8_t)i);
    lo->end = c.len;
    return c;
}

/* Opens `len` bytes of c; expects status `want` and `needle` in the message. */
static void expect(const craft *c, size_t len, clv_status want, const char *needle, const char *label) {
    if (craft_save(c, path, len) != 0) {
        CHECK_MSG(0, "cannot write %s", path);
        return;
    }
    for (int mmap_mode = 0; mmap_mode < 2; mmap_mode++) {
        clv_gguf_params p = clv_gguf_default_params();
        p.use_mmap = mmap_mode == 0;
        clv_gguf *g = NULL;
        clv_status st = clv_gguf_open(path, &p, &g);
        CHECK_MSG(st == want, "%s: got %s (%s), want %s", label, clv_status_str(st), clv_last_error(),
                  clv_status_str(want));
        if (st != CLV_OK) {
            CHECK_MSG(g == NULL, "%s: handle left on failure", label);
            CHECK_MSG(strstr(clv_last_error(), path) != NULL, "%s: message does not name the file: %s", label,
                      clv_last_error());
            if (needle) {
                CHECK_MSG(strstr(clv_last_error(), needle) != NULL, "%s: message lacks '%s': %s", label, needle,
                          clv_last_error());
            }
        }
        clv_gguf_free(g);
    }
}

static void test_truncation(void) {
    layout lo;
    craft c = base_file(&lo);
    expect(&c, c.len, CLV_OK, NULL, "whole file");
    /* Every possible truncation fails, at every byte. */
    char label[64];
    for (size_t len = 0; len < c.len; len++) {
        snprintf(label, sizeof label, "truncated to %zu bytes", len);
        expect(&c, len, CLV_ERR_FORMAT, NULL, label);
    }
    /* At section boundaries the message names the section. */
    expect(&c, 2, CLV_ERR_FORMAT, "header", "inside magic");
    expect(&c, lo.end_header, CLV_ERR_FORMAT, "tensor count", "end of header");
    expect(&c, lo.end_kv[0] + 3, CLV_ERR_FORMAT, "metadata pair 1", "inside key 1");
    expect(&c, lo.end_kv[1] + 20, CLV_ERR_FORMAT, "metadata 'test.arr'", "inside array");
    expect(&c, lo.end_kv[2], CLV_ERR_FORMAT, "tensor info 0", "end of metadata");
    expect(&c, lo.end_info[0] + 12, CLV_ERR_FORMAT, "tensor info 1 'b'", "inside tensor info 1");
    expect(&c, lo.end_info[1], CLV_ERR_FORMAT, "past the end", "no data section");
    expect(&c, lo.data_start + 40, CLV_ERR_FORMAT, "tensor 'b'", "inside tensor data");
    expect(&c, 0, CLV_ERR_FORMAT, "offset 0", "empty file");
    free(c.data);
}

static void patch_u64(craft *c, size_t at, uint64_t v) { memcpy(c->data + at, &v, 8); }
static void patch_u32(craft *c, size_t at, uint32_t v) { memcpy(c->data + at, &v, 4); }

static void test_header(void) {
    layout lo;
    craft c = base_file(&lo);
    c.data[0] = 'X';
    expect(&c, c.len, CLV_ERR_FORMAT, "not a GGUF file", "bad magic");
    c.data[0] = 'G';
    patch_u32(&c, 4, 1);
    expect(&c, c.len, CLV_ERR_UNSUPPORTED, "version 1", "v1");
    patch_u32(&c, 4, 4);
    expect(&c, c.len, CLV_ERR_UNSUPPORTED, "version 4", "v4");
    patch_u32(&c, 4, 3u << 24);
    expect(&c, c.len, CLV_ERR_UNSUPPORTED, "big-endian", "big-endian");
    patch_u32(&c, 4, 2);
    expect(&c, c.len, CLV_OK, NULL, "v2 reads like v3");
    patch_u32(&c, 4, 3);
    /* Absurd counts. */
    patch_u64(&c, 8, (uint64_t)INT64_MAX);
    expect(&c, c.len, CLV_ERR_FORMAT, "tensor count", "huge tensor count");
    patch_u64(&c, 8, (uint64_t)-1);
    expect(&c, c.len, CLV_ERR_FORMAT, "tensor count", "negative tensor count");
    patch_u64(&c, 8, 2);
    patch_u64(&c, 16, 1ull << 62);
    expect(&c, c.len, CLV_ERR_FORMAT, "metadata count", "huge kv count");
    patch_u64(&c, 16, 4);
    expect(&c, c.len, CLV_ERR_FORMAT, NULL, "one pair too many");
    patch_u64(&c, 16, 3);
    patch_u64(&c, 8, 3);
    expect(&c, c.len, CLV_ERR_FORMAT, NULL, "one tensor too many");
    free(c.data);
}

static void test_metadata(void) {
    layout lo;
    craft c = base_file(&lo);
    size_t key0 = lo.end_header; /* u64 length of "general.architecture" */
    patch_u64(&c, key0, 1ull << 63);
    expect(&c, c.len, CLV_ERR_FORMAT, "length", "huge key length");
    patch_u64(&c, key0, 0);
    expect(&c, c.len, CLV_ERR_FORMAT, NULL, "empty key");
    patch_u64(&c, key0, 20);
    /* Unknown value type. */
    size_t type1 = lo.end_kv[0] + 8 + strlen("test.u32");
    patch_u32(&c, type1, 13);
    expect(&c, c.len, CLV_ERR_FORMAT, "unknown value type 13", "value type 13");
    patch_u32(&c, type1, (uint32_t)-5);
    expect(&c, c.len, CLV_ERR_FORMAT, "unknown value type", "value type -5");
    patch_u32(&c, type1, 4);
    /* Array: bad element type, absurd count. */
    size_t arr = lo.end_kv[1] + 8 + strlen("test.arr") + 4;
    patch_u32(&c, arr, 77);
    expect(&c, c.len, CLV_ERR_FORMAT, "element type 77", "array elem type");
    patch_u32(&c, arr, 8);
    patch_u64(&c, arr + 4, 1ull << 60);
    expect(&c, c.len, CLV_ERR_FORMAT, "cannot fit", "huge string array");
    patch_u64(&c, arr + 4, 2);
    /* String inside the array claiming more bytes than there are. */
    patch_u64(&c, arr + 12, 1ull << 40);
    expect(&c, c.len, CLV_ERR_FORMAT, "length", "huge array string");
    patch_u64(&c, arr + 12, 1);
    expect(&c, c.len, CLV_OK, NULL, "restored");
    free(c.data);

    /* Duplicate keys. */
    craft d = {0};
    craft_header(&d, 3, 0, 2);
    craft_kv_u32(&d, "k", 1);
    craft_kv_u32(&d, "k", 2);
    expect(&d, d.len, CLV_ERR_FORMAT, "duplicate key 'k'", "duplicate key");
    free(d.data);

    /* Bool that is neither 0 nor 1. */
    craft b = {0};
    craft_header(&b, 3, 0, 1);
    craft_str(&b, "flag");
    craft_i32(&b, 7);
    craft_u8(&b, 2);
    expect(&b, b.len, CLV_ERR_FORMAT, "bool", "bool 2");
    free(b.data);

    /* Alignment: wrong type, zero, not a power of two. */
    const uint32_t bad_align[] = {0, 3, 48};
    for (int i = 0; i < 3; i++) {
        craft a = {0};
        craft_header(&a, 3, 0, 1);
        craft_kv_u32(&a, "general.alignment", bad_align[i]);
        expect(&a, a.len, CLV_ERR_FORMAT, "power of two", "bad alignment");
        free(a.data);
    }
    craft a = {0};
    craft_header(&a, 3, 0, 1);
    craft_kv_str(&a, "general.alignment", "32");
    expect(&a, a.len, CLV_ERR_FORMAT, "not u32", "alignment as string");
    free(a.data);

    /* Nested arrays deeper than the reader allows. */
    craft n = {0};
    craft_header(&n, 3, 0, 1);
    craft_str(&n, "deep");
    craft_i32(&n, 9);
    for (int i = 0; i < 64; i++) {
        craft_i32(&n, 9);
        craft_u64(&n, 1);
    }
    craft_i32(&n, 4);
    craft_u64(&n, 0);
    expect(&n, n.len, CLV_ERR_FORMAT, "nested deeper", "deep nesting");
    free(n.data);
}

/* A file with the given tensor infos and `data_bytes` of data. */
static void tensors_file(craft *c, int n, const char *const *names, const uint32_t *n_dims, const int64_t (*ne)[4],
                         const int32_t *types, const uint64_t *offsets, size_t data_bytes) {
    c->len = 0;
    craft_header(c, 3, n, 0);
    for (int i = 0; i < n; i++) craft_tensor(c, names[i], n_dims[i], ne[i], types[i], offsets[i]);
    craft_pad(c, 32);
    craft_zeros(c, data_bytes);
}

static void test_tensors(void) {
    craft c = {0};
    const char *names2[2] = {"a", "b"};
    const uint32_t dims1[2] = {1, 1};
    const int64_t ne8[2][4] = {{8}, {8}};
    const int32_t f32[2] = {0, 0};

    const uint64_t ok_off[2] = {0, 32};
    tensors_file(&c, 2, names2, dims1, ne8, f32, ok_off, 64);
    expect(&c, c.len, CLV_OK, NULL, "two tensors");

    const uint64_t overlap[2] = {0, 0};
    tensors_file(&c, 2, names2, dims1, ne8, f32, overlap, 64);
    expect(&c, c.len, CLV_ERR_FORMAT, "overlap", "same offset");
    const int64_t ne16[2][4] = {{16}, {8}};
    tensors_file(&c, 2, names2, dims1, ne16, f32, ok_off, 96);
    expect(&c, c.len, CLV_ERR_FORMAT, "overlap", "partial overlap");

    const uint64_t misaligned[2] = {0, 40};
    tensors_file(&c, 2, names2, dims1, ne8, f32, misaligned, 96);
    expect(&c, c.len, CLV_ERR_FORMAT, "alignment", "misaligned");

    const uint64_t past[2] = {0, 1ull << 40};
    tensors_file(&c, 2, names2, dims1, ne8, f32, past, 64);
    expect(&c, c.len, CLV_ERR_FORMAT, "past the end", "offset past end");
    const uint64_t wrap[2] = {0, UINT64_MAX - 31};
    tensors_file(&c, 2, names2, dims1, ne8, f32, wrap, 64);
    expect(&c, c.len, CLV_ERR_FORMAT, NULL, "offset that wraps");

    const char *dup[2] = {"a", "a"};
    tensors_file(&c, 2, dup, dims1, ne8, f32, ok_off, 64);
    expect(&c, c.len, CLV_ERR_FORMAT, "duplicate tensor name 'a'", "duplicate names");

    const int32_t unknown[4] = {4, 31, 1000, -1};
    for (int i = 0; i < 4; i++) {
        int32_t types[1] = {unknown[i]};
        tensors_file(&c, 1, names2, dims1, ne8, types, ok_off, 64);
        expect(&c, c.len, CLV_ERR_FORMAT, "unknown tensor type", "unknown type");
    }

    const int32_t q4[1] = {CLV_TYPE_Q4_0};
    tensors_file(&c, 1, names2, dims1, ne8, q4, ok_off, 64);
    expect(&c, c.len, CLV_ERR_FORMAT, "multiple of", "row not a block multiple");

    const int64_t ne5[5] = {8, 1, 1, 1, 1};
    c.len = 0;
    craft_header(&c, 3, 1, 0);
    craft_tensor(&c, "a", 5, ne5, 0, 0);
    craft_pad(&c, 32);
    craft_zeros(&c, 64);
    expect(&c, c.len, CLV_ERR_FORMAT, "dimensions", "five dims");

    const uint32_t dims2[1] = {2};
    const int64_t neg[1][4] = {{8, -1}};
    tensors_file(&c, 1, names2, dims2, neg, f32, ok_off, 64);
    expect(&c, c.len, CLV_ERR_FORMAT, "negative", "negative dim");

    const uint32_t dims4[1] = {4};
    const int64_t huge[1][4] = {{1ll << 20, 1ll << 20, 1ll << 20, 1ll << 20}};
    tensors_file(&c, 1, names2, dims4, huge, f32, ok_off, 64);
    expect(&c, c.len, CLV_ERR_FORMAT, "overflows", "element count overflow");
    const int64_t big[1][4] = {{1ll << 31, 1ll << 31, 1, 1}};
    tensors_file(&c, 1, names2, dims4, big, f32, ok_off, 64);
    expect(&c, c.len, CLV_ERR_FORMAT, NULL, "size overflow or past end");

    char longname[80];
    memset(longname, 'n', 64);
    longname[64] = '\0';
    const char *ln[1] = {longname};
    tensors_file(&c, 1, ln, dims1, ne8, f32, ok_off, 64);
    expect(&c, c.len, CLV_ERR_FORMAT, "tensor name of 64 bytes", "name too long");
    longname[63] = '\0';
    tensors_file(&c, 1, ln, dims1, ne8, f32, ok_off, 64);
    expect(&c, c.len, CLV_OK, NULL, "63-byte name");

    const char *empty[1] = {""};
    tensors_file(&c, 1, empty, dims1, ne8, f32, ok_off, 64);
    expect(&c, c.len, CLV_ERR_FORMAT, "empty tensor name", "empty name");

    /* A zero-sized tensor anywhere is fine and overlaps nothing. */
    const int64_t ne0[2][4] = {{8}, {0}};
    tensors_file(&c, 2, names2, dims1, ne0, f32, overlap, 32);
    expect(&c, c.len, CLV_OK, NULL, "zero-sized tensor");

    /* Found by fuzzing: a file that ends before its data section would start,
     * holding only zero-sized tensors. */
    const int64_t none[1][4] = {{0}};
    c.len = 0;
    craft_header(&c, 3, 1, 0);
    craft_tensor(&c, "z", 1, none[0], 0, 0);
    CHECK(c.len % 32 != 0);
    expect(&c, c.len, CLV_ERR_FORMAT, "past the end", "data section past the end");
    free(c.data);
}

static void test_not_a_file(void) {
    clv_gguf *g;
    CHECK_STATUS(clv_gguf_open("/nonexistent/model.gguf", NULL, &g), CLV_ERR_NOT_FOUND);
    CHECK(strstr(clv_last_error(), "/nonexistent/model.gguf") != NULL);
    CHECK_STATUS(clv_gguf_open("/tmp", NULL, &g), CLV_ERR_IO);
    CHECK(g == NULL);
}

int main(void) {
    snprintf(path, sizeof path, "/tmp/cleave-test-hostile-%d.gguf", (int)getpid());
    test_truncation();
    test_header();
    test_metadata();
    test_tensors();
    test_not_a_file();
    remove(path);
    return test_finish("test_gguf_hostile");
}
