/* Opens a GGUF image held in memory and touches everything the reader
 * exposes; shared by the libFuzzer target and the mutation test. Returns the
 * open status; aborts (a bug) if an opened file breaks the reader's promises. */
#ifndef CLV_TEST_GGUF_WALK_H
#define CLV_TEST_GGUF_WALK_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "gguf.h"

static inline uint64_t walk_value(const clv_gguf_value *v) {
    uint64_t h = (uint64_t)v->type;
    if (v->type == CLV_GGUF_STRING) {
        for (uint64_t i = 0; i < v->v.str.len; i++) h += (uint8_t)v->v.str.data[i];
        CLV_ASSERT(v->v.str.data[v->v.str.len] == '\0');
    } else if (v->type == CLV_GGUF_ARRAY) {
        for (uint64_t i = 0; i < v->v.arr.count; i++) {
            if (v->v.arr.elem_type == CLV_GGUF_STRING) h += v->v.arr.strs[i].len;
            else if (v->v.arr.elem_type == CLV_GGUF_ARRAY) h += walk_value(&v->v.arr.arrs[i]);
            else h += ((const uint8_t *)v->v.arr.data)[i * clv_gguf_value_type_size(v->v.arr.elem_type)];
        }
    }
    return h;
}

static inline clv_status walk_gguf_image(const uint8_t *data, size_t size, int use_mmap) {
    int fd = memfd_create("gguf-walk", 0);
    CLV_ASSERT(fd >= 0);
    size_t done = 0;
    while (done < size) {
        ssize_t n = write(fd, data + done, size - done);
        CLV_ASSERT(n > 0);
        done += (size_t)n;
    }
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    clv_gguf_params p = clv_gguf_default_params();
    p.use_mmap = use_mmap != 0;
    clv_gguf *g = NULL;
    clv_status st = clv_gguf_open(path, &p, &g);
    if (st == CLV_OK) {
        volatile uint64_t sink = 0;
        for (int64_t i = 0; i < clv_gguf_n_kv(g); i++) sink += walk_value(&clv_gguf_kv_at(g, i)->value);
        uint32_t u32;
        const char *s;
        const clv_gguf_value *arr;
        float f;
        (void)clv_gguf_get_u32(g, "general.alignment", &u32);
        (void)clv_gguf_get_str(g, "general.architecture", &s);
        (void)clv_gguf_get_arr(g, "tokenizer.ggml.tokens", CLV_GGUF_STRING, &arr);
        (void)clv_gguf_get_f32(g, "x", &f);
        uint8_t buf[64];
        for (int64_t i = 0; i < clv_gguf_n_tensors(g); i++) {
            const clv_gguf_tensor *t = clv_gguf_tensor_at(g, i);
            uint64_t fsize = clv_gguf_split_size(g, t->split);
            CLV_ASSERT(t->file_offset <= fsize && t->size <= fsize - t->file_offset);
            CLV_ASSERT(clv_gguf_find_tensor(g, t->name) == t);
            uint64_t n = t->size < sizeof buf ? t->size : sizeof buf;
            CLV_ASSERT(clv_gguf_read_tensor(g, t, t->size - n, buf, n) == CLV_OK);
            const uint8_t *m = clv_gguf_tensor_data(g, t);
            if (m && t->size) sink += m[0] + m[t->size - 1];
        }
        (void)sink;
    } else {
        CLV_ASSERT(g == NULL);
        CLV_ASSERT(clv_last_error()[0] != '\0');
    }
    clv_gguf_free(g);
    close(fd);
    return st;
}

#endif
