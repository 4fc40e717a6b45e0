/* Builds GGUF files byte by byte, independently of cleave's writer, so that
 * tests can make files the writer would refuse to make (hostile ones). */
#ifndef CLV_TEST_GGUF_CRAFT_H
#define CLV_TEST_GGUF_CRAFT_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct craft {
    uint8_t *data;
    size_t len, cap;
} craft;

static inline void craft_bytes(craft *c, const void *p, size_t n) {
    if (c->len + n > c->cap) {
        c->cap = (c->len + n) * 2 + 64;
        c->data = realloc(c->data, c->cap);
        if (!c->data) abort();
    }
    memcpy(c->data + c->len, p, n);
    c->len += n;
}

static inline void craft_u8(craft *c, uint8_t v) { craft_bytes(c, &v, 1); }
static inline void craft_u32(craft *c, uint32_t v) { craft_bytes(c, &v, 4); }
static inline void craft_i32(craft *c, int32_t v) { craft_bytes(c, &v, 4); }
static inline void craft_u64(craft *c, uint64_t v) { craft_bytes(c, &v, 8); }
static inline void craft_i64(craft *c, int64_t v) { craft_bytes(c, &v, 8); }
static inline void craft_f32(craft *c, float v) { craft_bytes(c, &v, 4); }

static inline void craft_str(craft *c, const char *s) {
    craft_u64(c, strlen(s));
    craft_bytes(c, s, strlen(s));
}

static inline void craft_header(craft *c, uint32_t version, int64_t n_tensors, int64_t n_kv) {
    craft_bytes(c, "GGUF", 4);
    craft_u32(c, version);
    craft_i64(c, n_tensors);
    craft_i64(c, n_kv);
}

/* key + type + u32 value */
static inline void craft_kv_u32(craft *c, const char *key, uint32_t v) {
    craft_str(c, key);
    craft_i32(c, 4);
    craft_u32(c, v);
}

static inline void craft_kv_str(craft *c, const char *key, const char *v) {
    craft_str(c, key);
    craft_i32(c, 8);
    craft_str(c, v);
}

/* A tensor info with up to 4 dims. */
static inline void craft_tensor(craft *c, const char *name, uint32_t n_dims, const int64_t *ne, int32_t type,
                         uint64_t offset) {
    craft_str(c, name);
    craft_u32(c, n_dims);
    for (uint32_t d = 0; d < n_dims; d++) craft_i64(c, ne[d]);
    craft_i32(c, type);
    craft_u64(c, offset);
}

static inline void craft_pad(craft *c, size_t alignment) {
    while (c->len % alignment) craft_u8(c, 0);
}

static inline void craft_zeros(craft *c, size_t n) {
    for (size_t i = 0; i < n; i++) craft_u8(c, 0);
}

static inline int craft_save(const craft *c, const char *path, size_t len) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t n = len < c->len ? len : c->len;
    int ok = fwrite(c->data, 1, n, f) == n;
    return (fclose(f) == 0 && ok) ? 0 : -1;
}

#endif
