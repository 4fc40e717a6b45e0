/* GGUF reader: parses header, metadata and tensor infos through a bounds-checked
 * buffered pread stream, so that the same code serves mmap and plain-read use
 * and no byte is trusted before it is checked against the file size. */
#include "gguf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "types.h"

#define MAX_ARRAY_DEPTH 8
#define MAX_SPLITS 9999
#define READ_BUFFER_BYTES (256u * 1024u)

/* --- arena: all strings and arrays of one file live here ------------------ */

typedef struct arena_chunk {
    struct arena_chunk *next;
    size_t used, cap;
    _Alignas(16) unsigned char data[];
} arena_chunk;

typedef struct arena {
    arena_chunk *head;
} arena;

static void *arena_alloc(arena *a, size_t size) {
    size = (size + 15) & ~(size_t)15;
    if (!a->head || a->head->cap - a->head->used < size) {
        size_t cap = size > (1u << 20) ? size : (1u << 20);
        arena_chunk *c = malloc(sizeof *c + cap);
        if (!c) return NULL;
        c->next = a->head;
        c->used = 0;
        c->cap = cap;
        a->head = c;
    }
    void *p = a->head->data + a->head->used;
    a->head->used += size;
    return p;
}

static void arena_free(arena *a) {
    for (arena_chunk *c = a->head, *next; c; c = next) {
        next = c->next;
        free(c);
    }
    a->head = NULL;
}

/* --- the reader object ------------------------------------------------------ */

typedef struct split_file {
    char *path;
    int fd;
    uint64_t size;
    uint64_t data_offset;
    void *map; /* whole file, or NULL */
} split_file;

struct clv_gguf {
    char *path;
    uint32_t version;
    uint32_t alignment;
    uint32_t n_splits;
    split_file *splits;
    int64_t n_kv;
    clv_gguf_kv *kvs;
    int64_t *kv_sorted; /* indices sorted by key, for binary search */
    int64_t n_tensors;
    clv_gguf_tensor *tensors;
    int64_t *tensor_sorted; /* indices sorted by name */
    arena mem;
};

/* --- bounds-checked stream --------------------------------------------------- */

typedef struct stream {
    int fd;
    const char *path;
    uint64_t size;  /* file size */
    uint64_t pos;   /* logical position */
    uint8_t *buf;   /* window [buf_start, buf_start + buf_len) of the file */
    uint64_t buf_start;
    size_t buf_len;
    char section[160]; /* what is being read, for messages */
} stream;

static clv_status stream_error(const stream *s, clv_status st, uint64_t at, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static clv_status stream_error(const stream *s, clv_status st, uint64_t at, const char *fmt, ...) {
    char what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return clv_fail(st, "%s: %s at offset %llu: %s", s->path, s->section, (unsigned long long)at, what);
}

static void stream_section(stream *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void stream_section(stream *s, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->section, sizeof s->section, fmt, ap);
    va_end(ap);
}

static uint64_t stream_remaining(const stream *s) { return s->size - s->pos; }

static clv_status stream_read(stream *s, void *dst, uint64_t n, const char *what) {
    if (n > stream_remaining(s)) {
        return stream_error(s, CLV_ERR_FORMAT, s->pos,
                            "file truncated: %s needs %llu bytes, %llu left", what,
                            (unsigned long long)n, (unsigned long long)stream_remaining(s));
    }
    uint8_t *out = dst;
    while (n > 0) {
        if (s->pos >= s->buf_start && s->pos < s->buf_start + s->buf_len) {
            size_t off = (size_t)(s->pos - s->buf_start);
            size_t take = s->buf_len - off;
            if (take > n) take = (size_t)n;
            memcpy(out, s->buf + off, take);
            out += take;
            s->pos += take;
            n -= take;
            continue;
        }
        /* Large reads go straight to the destination. */
        if (n >= READ_BUFFER_BYTES) {
            ssize_t got = pread(s->fd, out, (size_t)n, (off_t)s->pos);
            if (got <= 0) {
                return stream_error(s, CLV_ERR_IO, s->pos, "read failed: %s",
                                    got < 0 ? strerror(errno) : "unexpected end of file");
            }
            out += got;
            s->pos += (uint64_t)got;
            n -= (uint64_t)got;
            continue;
        }
        uint64_t want = stream_remaining(s) < READ_BUFFER_BYTES ? stream_remaining(s) : READ_BUFFER_BYTES;
        ssize_t got = pread(s->fd, s->buf, (size_t)want, (off_t)s->pos);
        if (got <= 0) {
            return stream_error(s, CLV_ERR_IO, s->pos, "read failed: %s",
                                got < 0 ? strerror(errno) : "unexpected end of file");
        }
        s->buf_start = s->pos;
        s->buf_len = (size_t)got;
    }
    return CLV_OK;
}

#define READ_SCALAR(s, var, what) stream_read((s), &(var), sizeof(var), (what))

static clv_status stream_read_string(stream *s, arena *a, clv_gguf_str *out, const char *what) {
    uint64_t at = s->pos;
    uint64_t len;
    clv_status st = READ_SCALAR(s, len, what);
    if (st) return st;
    if (len > stream_remaining(s)) {
        return stream_error(s, CLV_ERR_FORMAT, at,
                            "%s has length %llu but only %llu bytes are left in the file", what,
                            (unsigned long long)len, (unsigned long long)stream_remaining(s));
    }
    char *data = arena_alloc(a, (size_t)len + 1);
    if (!data) return stream_error(s, CLV_ERR_NOMEM, at, "no memory for a %llu-byte string", (unsigned long long)len);
    st = stream_read(s, data, len, what);
    if (st) return st;
    data[len] = '\0';
    out->len = len;
    out->data = data;
    return CLV_OK;
}

/* --- values ------------------------------------------------------------------- */

const char *clv_gguf_value_type_name(int32_t type) {
    static const char *names[CLV_GGUF_VALUE_TYPE_COUNT] = {
        "u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string", "array", "u64", "i64", "f64"};
    return (type >= 0 && type < CLV_GGUF_VALUE_TYPE_COUNT) ? names[type] : "?";
}

size_t clv_gguf_value_type_size(int32_t type) {
    switch (type) {
    case CLV_GGUF_U8: case CLV_GGUF_I8: case CLV_GGUF_BOOL: return 1;
    case CLV_GGUF_U16: case CLV_GGUF_I16: return 2;
    case CLV_GGUF_U32: case CLV_GGUF_I32: case CLV_GGUF_F32: return 4;
    case CLV_GGUF_U64: case CLV_GGUF_I64: case CLV_GGUF_F64: return 8;
    default: return 0;
    }
}

/* Smallest number of file bytes one element of this type takes: bounds array
 * counts before anything is allocated for them. */
static uint64_t min_encoded_size(int32_t type) {
    if (type == CLV_GGUF_STRING) return 8;
    if (type == CLV_GGUF_ARRAY) return 4 + 8;
    return clv_gguf_value_type_size(type);
}

static clv_status read_value(stream *s, arena *a, int32_t type, clv_gguf_value *out, int depth);

static clv_status read_array(stream *s, arena *a, clv_gguf_value *out, int depth) {
    uint64_t at = s->pos;
    int32_t elem_type;
    uint64_t count;
    clv_status st = READ_SCALAR(s, elem_type, "array element type");
    if (st) return st;
    if (elem_type < 0 || elem_type >= CLV_GGUF_VALUE_TYPE_COUNT) {
        return stream_error(s, CLV_ERR_FORMAT, at, "unknown array element type %d", elem_type);
    }
    if (elem_type == CLV_GGUF_ARRAY && depth + 1 >= MAX_ARRAY_DEPTH) {
        return stream_error(s, CLV_ERR_FORMAT, at, "arrays nested deeper than %d", MAX_ARRAY_DEPTH);
    }
    st = READ_SCALAR(s, count, "array length");
    if (st) return st;
    uint64_t min_size = min_encoded_size(elem_type);
    if (count > stream_remaining(s) / min_size) {
        return stream_error(s, CLV_ERR_FORMAT, at,
                            "array of %llu %s elements cannot fit in the %llu bytes left",
                            (unsigned long long)count, clv_gguf_value_type_name(elem_type),
                            (unsigned long long)stream_remaining(s));
    }
    out->v.arr.elem_type = elem_type;
    out->v.arr.count = count;
    out->v.arr.data = NULL;
    out->v.arr.strs = NULL;
    out->v.arr.arrs = NULL;
    if (count == 0) return CLV_OK;

    if (elem_type == CLV_GGUF_STRING) {
        clv_gguf_str *strs = arena_alloc(a, (size_t)count * sizeof *strs);
        if (!strs) return stream_error(s, CLV_ERR_NOMEM, at, "no memory for %llu strings", (unsigned long long)count);
        for (uint64_t i = 0; i < count; i++) {
            st = stream_read_string(s, a, &strs[i], "array string");
            if (st) return st;
        }
        out->v.arr.strs = strs;
    } else if (elem_type == CLV_GGUF_ARRAY) {
        clv_gguf_value *arrs = arena_alloc(a, (size_t)count * sizeof *arrs);
        if (!arrs) return stream_error(s, CLV_ERR_NOMEM, at, "no memory for %llu arrays", (unsigned long long)count);
        for (uint64_t i = 0; i < count; i++) {
            arrs[i].type = CLV_GGUF_ARRAY;
            st = read_array(s, a, &arrs[i], depth + 1);
            if (st) return st;
        }
        out->v.arr.arrs = arrs;
    } else {
        uint64_t bytes = count * min_size; /* cannot overflow: bounded by the file size */
        void *data = arena_alloc(a, (size_t)bytes);
        if (!data) return stream_error(s, CLV_ERR_NOMEM, at, "no memory for a %llu-byte array", (unsigned long long)bytes);
        st = stream_read(s, data, bytes, "array data");
        if (st) return st;
        if (elem_type == CLV_GGUF_BOOL) {
            const uint8_t *b = data;
            for (uint64_t i = 0; i < count; i++) {
                if (b[i] > 1) return stream_error(s, CLV_ERR_FORMAT, at, "bool element %llu is %u, not 0 or 1", (unsigned long long)i, b[i]);
            }
        }
        out->v.arr.data = data;
    }
    return CLV_OK;
}

static clv_status read_value(stream *s, arena *a, int32_t type, clv_gguf_value *out, int depth) {
    out->type = type;
    switch (type) {
    case CLV_GGUF_U8: return READ_SCALAR(s, out->v.u8, "u8 value");
    case CLV_GGUF_I8: return READ_SCALAR(s, out->v.i8, "i8 value");
    case CLV_GGUF_U16: return READ_SCALAR(s, out->v.u16, "u16 value");
    case CLV_GGUF_I16: return READ_SCALAR(s, out->v.i16, "i16 value");
    case CLV_GGUF_U32: return READ_SCALAR(s, out->v.u32, "u32 value");
    case CLV_GGUF_I32: return READ_SCALAR(s, out->v.i32, "i32 value");
    case CLV_GGUF_F32: return READ_SCALAR(s, out->v.f32, "f32 value");
    case CLV_GGUF_U64: return READ_SCALAR(s, out->v.u64, "u64 value");
    case CLV_GGUF_I64: return READ_SCALAR(s, out->v.i64, "i64 value");
    case CLV_GGUF_F64: return READ_SCALAR(s, out->v.f64, "f64 value");
    case CLV_GGUF_BOOL: {
        uint64_t at = s->pos;
        uint8_t b;
        clv_status st = READ_SCALAR(s, b, "bool value");
        if (st) return st;
        if (b > 1) return stream_error(s, CLV_ERR_FORMAT, at, "bool value is %u, not 0 or 1", b);
        out->v.b = b != 0;
        return CLV_OK;
    }
    case CLV_GGUF_STRING: return stream_read_string(s, a, &out->v.str, "string value");
    case CLV_GGUF_ARRAY: return read_array(s, a, out, depth);
    default:
        return stream_error(s, CLV_ERR_FORMAT, s->pos, "unknown value type %d", type);
    }
}

/* --- sorting and lookup --------------------------------------------------------- */

static int str_cmp(const char *a, uint64_t alen, const char *b, uint64_t blen) {
    uint64_t n = alen < blen ? alen : blen;
    int c = memcmp(a, b, (size_t)n);
    if (c) return c;
    return (alen > blen) - (alen < blen);
}

/* qsort has no context argument in C11; a small merge sort keeps this reentrant. */
typedef int (*index_cmp)(const void *ctx, int64_t a, int64_t b);

static void merge_sort(int64_t *idx, int64_t *tmp, int64_t n, const void *ctx, index_cmp cmp) {
    if (n < 2) return;
    int64_t mid = n / 2;
    merge_sort(idx, tmp, mid, ctx, cmp);
    merge_sort(idx + mid, tmp, n - mid, ctx, cmp);
    int64_t i = 0, j = mid, k = 0;
    while (i < mid && j < n) tmp[k++] = cmp(ctx, idx[i], idx[j]) <= 0 ? idx[i++] : idx[j++];
    while (i < mid) tmp[k++] = idx[i++];
    while (j < n) tmp[k++] = idx[j++];
    memcpy(idx, tmp, (size_t)n * sizeof *idx);
}

static int64_t *sorted_indices(int64_t n, const void *ctx, index_cmp cmp) {
    int64_t *idx = malloc((size_t)(n ? n : 1) * sizeof *idx);
    int64_t *tmp = malloc((size_t)(n ? n : 1) * sizeof *tmp);
    if (!idx || !tmp) {
        free(idx);
        free(tmp);
        return NULL;
    }
    for (int64_t i = 0; i < n; i++) idx[i] = i;
    merge_sort(idx, tmp, n, ctx, cmp);
    free(tmp);
    return idx;
}

static int kv_cmp(const void *ctx, int64_t a, int64_t b) {
    const clv_gguf_kv *kv = ctx;
    return str_cmp(kv[a].key.data, kv[a].key.len, kv[b].key.data, kv[b].key.len);
}

static int tensor_name_cmp(const void *ctx, int64_t a, int64_t b) {
    const clv_gguf_tensor *t = ctx;
    return strcmp(t[a].name, t[b].name);
}

static int tensor_place_cmp(const void *ctx, int64_t a, int64_t b) {
    const clv_gguf_tensor *t = ctx;
    if (t[a].split != t[b].split) return t[a].split < t[b].split ? -1 : 1;
    if (t[a].offset != t[b].offset) return t[a].offset < t[b].offset ? -1 : 1;
    return 0;
}

/* --- one file ------------------------------------------------------------------- */

typedef struct parsed_file {
    uint32_t version;
    uint32_t alignment;
    int64_t n_kv;
    clv_gguf_kv *kvs;
    int64_t n_tensors;
    clv_gguf_tensor *tensors;
    uint64_t size;
    uint64_t data_offset;
} parsed_file;

static const clv_gguf_kv *find_in(const clv_gguf_kv *kvs, int64_t n, const char *key) {
    size_t len = strlen(key);
    for (int64_t i = 0; i < n; i++) {
        if (str_cmp(kvs[i].key.data, kvs[i].key.len, key, len) == 0) return &kvs[i];
    }
    return NULL;
}

static bool is_power_of_two(uint64_t x) { return x && !(x & (x - 1)); }

static clv_status parse_header(stream *s, arena *a, parsed_file *pf) {
    char magic[4];
    int64_t n_tensors, n_kv;
    clv_status st;

    stream_section(s, "header");
    if ((st = stream_read(s, magic, 4, "magic"))) return st;
    if (memcmp(magic, CLV_GGUF_MAGIC, 4) != 0) {
        return stream_error(s, CLV_ERR_FORMAT, 0, "not a GGUF file (magic %02x %02x %02x %02x)",
                            (uint8_t)magic[0], (uint8_t)magic[1], (uint8_t)magic[2], (uint8_t)magic[3]);
    }
    if ((st = READ_SCALAR(s, pf->version, "version"))) return st;
    if ((pf->version & 0xFFFF) == 0) {
        return stream_error(s, CLV_ERR_UNSUPPORTED, 4, "file is big-endian (version field 0x%08x)", pf->version);
    }
    if (pf->version == 1) return stream_error(s, CLV_ERR_UNSUPPORTED, 4, "GGUF version 1 is not supported (only 2 and 3)");
    if (pf->version != 2 && pf->version != 3) {
        return stream_error(s, CLV_ERR_UNSUPPORTED, 4, "unknown GGUF version %u (cleave reads 2 and 3)", pf->version);
    }
    if ((st = READ_SCALAR(s, n_tensors, "tensor count"))) return st;
    if ((st = READ_SCALAR(s, n_kv, "metadata count"))) return st;
    /* Each tensor info takes at least 8+4+4+8 bytes, each pair 8+1+4+1. */
    if (n_tensors < 0 || (uint64_t)n_tensors > stream_remaining(s) / 24) {
        return stream_error(s, CLV_ERR_FORMAT, 8, "tensor count %lld does not fit in a %llu-byte file",
                            (long long)n_tensors, (unsigned long long)s->size);
    }
    if (n_kv < 0 || (uint64_t)n_kv > stream_remaining(s) / 14) {
        return stream_error(s, CLV_ERR_FORMAT, 16, "metadata count %lld does not fit in a %llu-byte file",
                            (long long)n_kv, (unsigned long long)s->size);
    }
    pf->n_tensors = n_tensors;
    pf->n_kv = n_kv;

    /* --- metadata --- */
    pf->kvs = arena_alloc(a, (size_t)(n_kv ? n_kv : 1) * sizeof *pf->kvs);
    if (!pf->kvs) return stream_error(s, CLV_ERR_NOMEM, s->pos, "no memory for %lld metadata pairs", (long long)n_kv);
    for (int64_t i = 0; i < n_kv; i++) {
        clv_gguf_kv *kv = &pf->kvs[i];
        int32_t type;
        kv->file_offset = s->pos;
        stream_section(s, "metadata pair %lld", (long long)i);
        if ((st = stream_read_string(s, a, &kv->key, "key"))) return st;
        if (kv->key.len == 0) return stream_error(s, CLV_ERR_FORMAT, kv->file_offset, "empty key");
        stream_section(s, "metadata '%.100s'", kv->key.data);
        if ((st = READ_SCALAR(s, type, "value type"))) return st;
        if ((st = read_value(s, a, type, &kv->value, 0))) return st;
    }

    /* Duplicate keys: sort, then compare neighbours. */
    if (n_kv > 1) {
        int64_t *idx = sorted_indices(n_kv, pf->kvs, kv_cmp);
        if (!idx) return stream_error(s, CLV_ERR_NOMEM, s->pos, "no memory");
        for (int64_t i = 1; i < n_kv; i++) {
            if (kv_cmp(pf->kvs, idx[i - 1], idx[i]) == 0) {
                const clv_gguf_kv *kv = &pf->kvs[idx[i]];
                stream_section(s, "metadata");
                free(idx);
                return stream_error(s, CLV_ERR_FORMAT, kv->file_offset, "duplicate key '%.100s'", kv->key.data);
            }
        }
        free(idx);
    }

    pf->alignment = CLV_GGUF_DEFAULT_ALIGNMENT;
    const clv_gguf_kv *al = find_in(pf->kvs, n_kv, "general.alignment");
    if (al) {
        stream_section(s, "metadata 'general.alignment'");
        if (al->value.type != CLV_GGUF_U32) {
            return stream_error(s, CLV_ERR_FORMAT, al->file_offset, "general.alignment has type %s, not u32",
                                clv_gguf_value_type_name(al->value.type));
        }
        if (!is_power_of_two(al->value.v.u32)) {
            return stream_error(s, CLV_ERR_FORMAT, al->file_offset, "general.alignment %u is not a power of two",
                                al->value.v.u32);
        }
        pf->alignment = al->value.v.u32;
    }

    /* --- tensor infos --- */
    pf->tensors = arena_alloc(a, (size_t)(n_tensors ? n_tensors : 1) * sizeof *pf->tensors);
    if (!pf->tensors) return stream_error(s, CLV_ERR_NOMEM, s->pos, "no memory for %lld tensors", (long long)n_tensors);
    for (int64_t i = 0; i < n_tensors; i++) {
        clv_gguf_tensor *t = &pf->tensors[i];
        uint64_t at = s->pos;
        clv_gguf_str name;
        stream_section(s, "tensor info %lld", (long long)i);
        if ((st = stream_read_string(s, a, &name, "tensor name"))) return st;
        if (name.len == 0) return stream_error(s, CLV_ERR_FORMAT, at, "empty tensor name");
        if (name.len > CLV_GGUF_MAX_NAME) {
            return stream_error(s, CLV_ERR_FORMAT, at, "tensor name of %llu bytes (at most %d)",
                                (unsigned long long)name.len, CLV_GGUF_MAX_NAME);
        }
        if (memchr(name.data, '\0', (size_t)name.len)) {
            return stream_error(s, CLV_ERR_FORMAT, at, "tensor name contains a NUL byte");
        }
        t->name = name.data;
        stream_section(s, "tensor info %lld '%s'", (long long)i, t->name);
        if ((st = READ_SCALAR(s, t->n_dims, "dimension count"))) return st;
        if (t->n_dims > CLV_GGUF_MAX_DIMS) {
            return stream_error(s, CLV_ERR_FORMAT, at, "%u dimensions (at most %d)", t->n_dims, CLV_GGUF_MAX_DIMS);
        }
        int64_t n_elems = 1;
        for (int d = 0; d < CLV_GGUF_MAX_DIMS; d++) t->ne[d] = 1;
        for (uint32_t d = 0; d < t->n_dims; d++) {
            if ((st = READ_SCALAR(s, t->ne[d], "dimension"))) return st;
            if (t->ne[d] < 0) return stream_error(s, CLV_ERR_FORMAT, at, "dimension %u is negative (%lld)", d, (long long)t->ne[d]);
            if (t->ne[d] != 0 && n_elems > INT64_MAX / t->ne[d]) {
                return stream_error(s, CLV_ERR_FORMAT, at, "element count overflows");
            }
            n_elems *= t->ne[d];
        }
        if ((st = READ_SCALAR(s, t->type, "type"))) return st;
        const clv_type_info *info = clv_type_get(t->type);
        if (!info) return stream_error(s, CLV_ERR_FORMAT, at, "unknown tensor type %d", t->type);
        if (t->ne[0] % info->block_elems != 0) {
            return stream_error(s, CLV_ERR_FORMAT, at, "row length %lld is not a multiple of %s's block of %d",
                                (long long)t->ne[0], info->name, info->block_elems);
        }
        if (!clv_type_bytes(t->type, n_elems, &t->size)) {
            return stream_error(s, CLV_ERR_FORMAT, at, "tensor size overflows");
        }
        if ((st = READ_SCALAR(s, t->offset, "data offset"))) return st;
        if (t->offset % pf->alignment != 0) {
            return stream_error(s, CLV_ERR_FORMAT, at, "data offset %llu is not a multiple of the alignment %u",
                                (unsigned long long)t->offset, pf->alignment);
        }
    }

    /* --- data section --- */
    stream_section(s, "data section");
    uint64_t end_of_infos = s->pos;
    uint64_t pad = (pf->alignment - end_of_infos % pf->alignment) % pf->alignment;
    pf->data_offset = end_of_infos + pad;
    pf->size = s->size;
    if (n_tensors > 0 && pf->data_offset > s->size) {
        return stream_error(s, CLV_ERR_FORMAT, end_of_infos, "data section would start at %llu, past the end of the file",
                            (unsigned long long)pf->data_offset);
    }
    for (int64_t i = 0; i < n_tensors; i++) {
        clv_gguf_tensor *t = &pf->tensors[i];
        uint64_t avail = pf->data_offset <= s->size ? s->size - pf->data_offset : 0;
        if (t->offset > avail || t->size > avail - t->offset) {
            stream_section(s, "tensor '%s'", t->name);
            return stream_error(s, CLV_ERR_FORMAT, pf->data_offset,
                                "data [%llu, +%llu) lies past the end of the file (%llu data bytes)",
                                (unsigned long long)t->offset, (unsigned long long)t->size, (unsigned long long)avail);
        }
        t->file_offset = pf->data_offset + t->offset;
    }
    return CLV_OK;
}

static clv_status parse_file(const char *path, arena *a, int *fd_out, parsed_file *pf) {
    memset(pf, 0, sizeof *pf);
    *fd_out = -1;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return clv_fail(errno == ENOENT ? CLV_ERR_NOT_FOUND : CLV_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return clv_fail(CLV_ERR_IO, "%s: not a regular file", path);
    }
    stream s = {.fd = fd, .path = path, .size = (uint64_t)sb.st_size};
    s.buf = malloc(READ_BUFFER_BYTES);
    if (!s.buf) {
        close(fd);
        return clv_fail(CLV_ERR_NOMEM, "%s: no memory for the read buffer", path);
    }
    clv_status st = parse_header(&s, a, pf);
    free(s.buf);
    if (st) {
        close(fd);
        return st;
    }
    *fd_out = fd;
    return CLV_OK;
}

/* --- split files ---------------------------------------------------------------- */

/* For "dir/name-00002-of-00005.gguf" fills prefix "dir/name" and returns true. */
static bool split_pattern(const char *path, char *prefix, size_t cap, int *no, int *count) {
    size_t len = strlen(path);
    const size_t tail = strlen("-00001-of-00005.gguf");
    if (len < tail || len - tail >= cap) return false;
    const char *p = path + len - tail;
    int a, b;
    char dash1, dash2;
    if (sscanf(p, "%c%5d-of-%5d%c", &dash1, &a, &b, &dash2) != 4 || dash1 != '-' || dash2 != '.') return false;
    if (strcmp(p + tail - 5, ".gguf") != 0) return false;
    memcpy(prefix, path, len - tail);
    prefix[len - tail] = '\0';
    *no = a;
    *count = b;
    return true;
}

static char *split_name(const char *prefix, int no, int count) {
    size_t n = strlen(prefix) + 32;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s-%05d-of-%05d.gguf", prefix, no, count);
    return p;
}

static clv_status get_split_key(const parsed_file *pf, const char *path, const char *key, uint64_t *out, bool *present) {
    const clv_gguf_kv *kv = find_in(pf->kvs, pf->n_kv, key);
    *present = kv != NULL;
    if (!kv) return CLV_OK;
    if (clv_gguf_value_to_u64(&kv->value, out) != CLV_OK) {
        return clv_fail(CLV_ERR_FORMAT, "%s: metadata '%s' at offset %llu: not a non-negative integer", path, key,
                        (unsigned long long)kv->file_offset);
    }
    return CLV_OK;
}

/* --- open / free ------------------------------------------------------------------ */

clv_gguf_params clv_gguf_default_params(void) {
    return (clv_gguf_params){.use_mmap = true, .load_splits = true, .verbose = false};
}

void clv_gguf_free(clv_gguf *g) {
    if (!g) return;
    for (uint32_t i = 0; i < g->n_splits; i++) {
        split_file *sf = &g->splits[i];
        if (sf->map) munmap(sf->map, (size_t)sf->size);
        if (sf->fd >= 0) close(sf->fd);
        free(sf->path);
    }
    free(g->splits);
    free(g->path);
    free(g->kv_sorted);
    free(g->tensor_sorted);
    free(g->tensors);
    arena_free(&g->mem);
    free(g);
}

static clv_status add_split(clv_gguf *g, const char *path, int fd, const parsed_file *pf) {
    split_file *sf = &g->splits[g->n_splits];
    sf->path = strdup(path);
    sf->fd = fd;
    sf->size = pf->size;
    sf->data_offset = pf->data_offset;
    sf->map = NULL;
    g->n_splits++;
    if (!sf->path) return clv_fail(CLV_ERR_NOMEM, "%s: no memory", path);
    return CLV_OK;
}

static clv_status open_impl(const char *path, const clv_gguf_params *params, clv_gguf *g) {
    parsed_file first;
    int fd;
    clv_status st = parse_file(path, &g->mem, &fd, &first);
    if (st) return st;

    uint64_t split_count = 1, split_no = 0, split_tensors = 0;
    bool has_count, has_no, has_tensors;
    if ((st = get_split_key(&first, path, "split.count", &split_count, &has_count)) ||
        (st = get_split_key(&first, path, "split.no", &split_no, &has_no)) ||
        (st = get_split_key(&first, path, "split.tensors.count", &split_tensors, &has_tensors))) {
        close(fd);
        return st;
    }
    if (!has_count || split_count == 0) split_count = 1;
    if (split_count > MAX_SPLITS) {
        close(fd);
        return clv_fail(CLV_ERR_FORMAT, "%s: split.count %llu is absurd", path, (unsigned long long)split_count);
    }
    if (split_count > 1 && split_no != 0) {
        close(fd);
        return clv_fail(CLV_ERR_ARG, "%s: this is part %llu of a %llu-part model; open the first part",
                        path, (unsigned long long)split_no + 1, (unsigned long long)split_count);
    }
    if (!params->load_splits) split_count = 1;

    g->version = first.version;
    g->alignment = first.alignment;
    g->n_kv = first.n_kv;
    g->kvs = first.kvs;
    g->splits = calloc((size_t)split_count, sizeof *g->splits);
    if (!g->splits) {
        close(fd);
        return clv_fail(CLV_ERR_NOMEM, "%s: no memory", path);
    }
    if ((st = add_split(g, path, fd, &first))) return st;

    /* Gather tensor infos of all parts. */
    parsed_file *parts = calloc((size_t)split_count, sizeof *parts);
    if (!parts) return clv_fail(CLV_ERR_NOMEM, "%s: no memory", path);
    parts[0] = first;
    int64_t total = first.n_tensors;
    char prefix[4096];
    int pat_no, pat_count;
    if (split_count > 1 && !split_pattern(path, prefix, sizeof prefix, &pat_no, &pat_count)) {
        free(parts);
        return clv_fail(CLV_ERR_FORMAT, "%s: split.count is %llu but the name does not end in -00001-of-%05llu.gguf",
                        path, (unsigned long long)split_count, (unsigned long long)split_count);
    }
    for (uint64_t i = 1; i < split_count; i++) {
        char *part_path = split_name(prefix, (int)i + 1, (int)split_count);
        if (!part_path) {
            free(parts);
            return clv_fail(CLV_ERR_NOMEM, "no memory");
        }
        st = parse_file(part_path, &g->mem, &fd, &parts[i]);
        if (st == CLV_OK) st = add_split(g, part_path, fd, &parts[i]);
        uint64_t no = 0;
        bool present = false;
        if (st == CLV_OK) st = get_split_key(&parts[i], part_path, "split.no", &no, &present);
        if (st == CLV_OK && (!present || no != i)) {
            st = clv_fail(CLV_ERR_FORMAT, "%s: split.no is %s%llu, expected %llu", part_path,
                          present ? "" : "missing, ", (unsigned long long)no, (unsigned long long)i);
        }
        if (st == CLV_OK && parts[i].n_tensors > INT64_MAX - total) {
            st = clv_fail(CLV_ERR_FORMAT, "%s: too many tensors", part_path);
        }
        free(part_path);
        if (st) {
            free(parts);
            return st;
        }
        total += parts[i].n_tensors;
    }
    if (has_tensors && split_count > 1 && (uint64_t)total != split_tensors) {
        free(parts);
        return clv_fail(CLV_ERR_FORMAT, "%s: split.tensors.count is %llu but the parts hold %lld tensors", path,
                        (unsigned long long)split_tensors, (long long)total);
    }

    g->tensors = malloc((size_t)(total ? total : 1) * sizeof *g->tensors);
    if (!g->tensors) {
        free(parts);
        return clv_fail(CLV_ERR_NOMEM, "%s: no memory for %lld tensor infos", path, (long long)total);
    }
    g->n_tensors = 0;
    for (uint64_t i = 0; i < split_count; i++) {
        for (int64_t j = 0; j < parts[i].n_tensors; j++) {
            clv_gguf_tensor t = parts[i].tensors[j];
            t.split = (uint32_t)i;
            g->tensors[g->n_tensors++] = t;
        }
    }
    free(parts);

    /* Unique names; no two tensors share bytes. */
    g->tensor_sorted = sorted_indices(g->n_tensors, g->tensors, tensor_name_cmp);
    g->kv_sorted = sorted_indices(g->n_kv, g->kvs, kv_cmp);
    if (!g->tensor_sorted || !g->kv_sorted) return clv_fail(CLV_ERR_NOMEM, "%s: no memory", path);
    for (int64_t i = 1; i < g->n_tensors; i++) {
        const clv_gguf_tensor *a = &g->tensors[g->tensor_sorted[i - 1]], *b = &g->tensors[g->tensor_sorted[i]];
        if (strcmp(a->name, b->name) == 0) {
            return clv_fail(CLV_ERR_FORMAT, "%s: tensor infos: duplicate tensor name '%s'", g->splits[b->split].path, b->name);
        }
    }
    int64_t *by_place = sorted_indices(g->n_tensors, g->tensors, tensor_place_cmp);
    if (!by_place) return clv_fail(CLV_ERR_NOMEM, "%s: no memory", path);
    for (int64_t i = 1; i < g->n_tensors; i++) {
        const clv_gguf_tensor *a = &g->tensors[by_place[i - 1]], *b = &g->tensors[by_place[i]];
        if (a->split == b->split && a->size > 0 && b->size > 0 && a->offset + a->size > b->offset) {
            st = clv_fail(CLV_ERR_FORMAT, "%s: data section at offset %llu: tensors '%s' [%llu, +%llu) and '%s' [%llu, +%llu) overlap",
                          g->splits[a->split].path, (unsigned long long)g->splits[a->split].data_offset, a->name,
                          (unsigned long long)a->offset, (unsigned long long)a->size, b->name,
                          (unsigned long long)b->offset, (unsigned long long)b->size);
            free(by_place);
            return st;
        }
    }
    free(by_place);

    if (params->use_mmap) {
        for (uint32_t i = 0; i < g->n_splits; i++) {
            split_file *sf = &g->splits[i];
            if (sf->size == 0) continue;
            void *m = mmap(NULL, (size_t)sf->size, PROT_READ, MAP_SHARED, sf->fd, 0);
            if (m == MAP_FAILED) return clv_fail(CLV_ERR_IO, "%s: mmap failed: %s", sf->path, strerror(errno));
            sf->map = m;
        }
    }
    if (params->verbose) {
        fprintf(stderr, "gguf: %s: v%u, %lld tensors, %lld metadata pairs, %u file(s)\n", path, g->version,
                (long long)g->n_tensors, (long long)g->n_kv, g->n_splits);
    }
    return CLV_OK;
}

clv_status clv_gguf_open(const char *path, const clv_gguf_params *params, clv_gguf **out) {
    *out = NULL;
    clv_gguf_params defaults = clv_gguf_default_params();
    if (!params) params = &defaults;
    if (!path) return clv_fail(CLV_ERR_ARG, "no GGUF path given");
    clv_gguf *g = calloc(1, sizeof *g);
    if (!g) return clv_fail(CLV_ERR_NOMEM, "%s: no memory", path);
    g->path = strdup(path);
    if (!g->path) {
        free(g);
        return clv_fail(CLV_ERR_NOMEM, "%s: no memory", path);
    }
    clv_status st = open_impl(path, params, g);
    if (st) {
        clv_gguf_free(g);
        return st;
    }
    *out = g;
    return CLV_OK;
}

/* --- accessors ----------------------------------------------------------------- */

const char *clv_gguf_path(const clv_gguf *g) { return g->path; }
uint32_t clv_gguf_version(const clv_gguf *g) { return g->version; }
uint32_t clv_gguf_alignment(const clv_gguf *g) { return g->alignment; }
uint32_t clv_gguf_n_splits(const clv_gguf *g) { return g->n_splits; }

const char *clv_gguf_split_path(const clv_gguf *g, uint32_t split) {
    CLV_ASSERT(split < g->n_splits);
    return g->splits[split].path;
}

uint64_t clv_gguf_split_size(const clv_gguf *g, uint32_t split) {
    CLV_ASSERT(split < g->n_splits);
    return g->splits[split].size;
}

uint64_t clv_gguf_split_data_offset(const clv_gguf *g, uint32_t split) {
    CLV_ASSERT(split < g->n_splits);
    return g->splits[split].data_offset;
}

int clv_gguf_split_fd(const clv_gguf *g, uint32_t split) {
    CLV_ASSERT(split < g->n_splits);
    return g->splits[split].fd;
}

int64_t clv_gguf_n_kv(const clv_gguf *g) { return g->n_kv; }

const clv_gguf_kv *clv_gguf_kv_at(const clv_gguf *g, int64_t i) {
    CLV_ASSERT(i >= 0 && i < g->n_kv);
    return &g->kvs[i];
}

const clv_gguf_kv *clv_gguf_find(const clv_gguf *g, const char *key) {
    uint64_t len = strlen(key);
    int64_t lo = 0, hi = g->n_kv - 1;
    while (lo <= hi) {
        int64_t mid = lo + (hi - lo) / 2;
        const clv_gguf_kv *kv = &g->kvs[g->kv_sorted[mid]];
        int c = str_cmp(kv->key.data, kv->key.len, key, len);
        if (c == 0) return kv;
        if (c < 0) lo = mid + 1;
        else hi = mid - 1;
    }
    return NULL;
}

int64_t clv_gguf_n_tensors(const clv_gguf *g) { return g->n_tensors; }

const clv_gguf_tensor *clv_gguf_tensor_at(const clv_gguf *g, int64_t i) {
    CLV_ASSERT(i >= 0 && i < g->n_tensors);
    return &g->tensors[i];
}

const clv_gguf_tensor *clv_gguf_find_tensor(const clv_gguf *g, const char *name) {
    int64_t lo = 0, hi = g->n_tensors - 1;
    while (lo <= hi) {
        int64_t mid = lo + (hi - lo) / 2;
        const clv_gguf_tensor *t = &g->tensors[g->tensor_sorted[mid]];
        int c = strcmp(t->name, name);
        if (c == 0) return t;
        if (c < 0) lo = mid + 1;
        else hi = mid - 1;
    }
    return NULL;
}

int64_t clv_gguf_tensor_n_elems(const clv_gguf_tensor *t) {
    return t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3];
}

const void *clv_gguf_tensor_data(const clv_gguf *g, const clv_gguf_tensor *t) {
    CLV_ASSERT(t->split < g->n_splits);
    const split_file *sf = &g->splits[t->split];
    if (!sf->map) return NULL;
    return (const uint8_t *)sf->map + t->file_offset;
}

clv_status clv_gguf_read_tensor(const clv_gguf *g, const clv_gguf_tensor *t, uint64_t offset, void *dst,
                                uint64_t size) {
    CLV_ASSERT(t->split < g->n_splits);
    if (offset > t->size || size > t->size - offset) {
        return clv_fail(CLV_ERR_RANGE, "tensor '%s': read of [%llu, +%llu) leaves its %llu bytes", t->name,
                        (unsigned long long)offset, (unsigned long long)size, (unsigned long long)t->size);
    }
    const split_file *sf = &g->splits[t->split];
    uint8_t *out = dst;
    uint64_t pos = t->file_offset + offset;
    while (size > 0) {
        size_t chunk = size > (1u << 30) ? (1u << 30) : (size_t)size;
        ssize_t got = pread(sf->fd, out, chunk, (off_t)pos);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) {
            return clv_fail(CLV_ERR_IO, "%s: reading tensor '%s' at offset %llu: %s", sf->path, t->name,
                            (unsigned long long)pos, got < 0 ? strerror(errno) : "unexpected end of file");
        }
        out += got;
        pos += (uint64_t)got;
        size -= (uint64_t)got;
    }
    return CLV_OK;
}

/* --- typed getters ------------------------------------------------------------------ */

clv_status clv_gguf_value_to_i64(const clv_gguf_value *v, int64_t *out) {
    switch (v->type) {
    case CLV_GGUF_U8: *out = v->v.u8; return CLV_OK;
    case CLV_GGUF_I8: *out = v->v.i8; return CLV_OK;
    case CLV_GGUF_U16: *out = v->v.u16; return CLV_OK;
    case CLV_GGUF_I16: *out = v->v.i16; return CLV_OK;
    case CLV_GGUF_U32: *out = v->v.u32; return CLV_OK;
    case CLV_GGUF_I32: *out = v->v.i32; return CLV_OK;
    case CLV_GGUF_I64: *out = v->v.i64; return CLV_OK;
    case CLV_GGUF_U64:
        if (v->v.u64 > (uint64_t)INT64_MAX) return CLV_ERR_RANGE;
        *out = (int64_t)v->v.u64;
        return CLV_OK;
    default: return CLV_ERR_TYPE;
    }
}

clv_status clv_gguf_value_to_u64(const clv_gguf_value *v, uint64_t *out) {
    if (v->type == CLV_GGUF_U64) {
        *out = v->v.u64;
        return CLV_OK;
    }
    int64_t x = 0;
    clv_status st = clv_gguf_value_to_i64(v, &x);
    if (st) return st;
    if (x < 0) return CLV_ERR_RANGE;
    *out = (uint64_t)x;
    return CLV_OK;
}

clv_status clv_gguf_value_to_f64(const clv_gguf_value *v, double *out) {
    if (v->type == CLV_GGUF_F32) *out = v->v.f32;
    else if (v->type == CLV_GGUF_F64) *out = v->v.f64;
    else return CLV_ERR_TYPE;
    return CLV_OK;
}

static clv_status lookup(const clv_gguf *g, const char *key, const clv_gguf_value **v) {
    const clv_gguf_kv *kv = clv_gguf_find(g, key);
    if (!kv) return clv_fail(CLV_ERR_NOT_FOUND, "%s: metadata key '%s' is missing", g->path, key);
    *v = &kv->value;
    return CLV_OK;
}

static clv_status convert_fail(const clv_gguf *g, const char *key, const clv_gguf_value *v, clv_status st,
                               const char *want) {
    if (st == CLV_ERR_RANGE) return clv_fail(st, "%s: metadata '%s' does not fit in %s", g->path, key, want);
    return clv_fail(CLV_ERR_TYPE, "%s: metadata '%s' has type %s, expected %s", g->path, key,
                    clv_gguf_value_type_name(v->type), want);
}

static clv_status get_int(const clv_gguf *g, const char *key, int64_t lo, uint64_t hi, const char *want,
                          uint64_t *as_u, int64_t *as_i) {
    const clv_gguf_value *v = NULL;
    clv_status st = lookup(g, key, &v);
    if (st) return st;
    int64_t x = 0;
    uint64_t u = 0;
    if (v->type == CLV_GGUF_U64) {
        u = v->v.u64;
        if (u > hi) return convert_fail(g, key, v, CLV_ERR_RANGE, want);
        if (as_u) *as_u = u;
        if (as_i) *as_i = (int64_t)u;
        return CLV_OK;
    }
    st = clv_gguf_value_to_i64(v, &x);
    if (st) return convert_fail(g, key, v, st, want);
    if (x < lo || (x >= 0 && (uint64_t)x > hi)) return convert_fail(g, key, v, CLV_ERR_RANGE, want);
    if (as_u) *as_u = (uint64_t)x;
    if (as_i) *as_i = x;
    return CLV_OK;
}

clv_status clv_gguf_get_u32(const clv_gguf *g, const char *key, uint32_t *out) {
    uint64_t u = 0;
    clv_status st = get_int(g, key, 0, UINT32_MAX, "u32", &u, NULL);
    if (!st) *out = (uint32_t)u;
    return st;
}

clv_status clv_gguf_get_i32(const clv_gguf *g, const char *key, int32_t *out) {
    int64_t i = 0;
    clv_status st = get_int(g, key, INT32_MIN, INT32_MAX, "i32", NULL, &i);
    if (!st) *out = (int32_t)i;
    return st;
}

clv_status clv_gguf_get_u64(const clv_gguf *g, const char *key, uint64_t *out) {
    return get_int(g, key, 0, UINT64_MAX, "u64", out, NULL);
}

clv_status clv_gguf_get_i64(const clv_gguf *g, const char *key, int64_t *out) {
    return get_int(g, key, INT64_MIN, INT64_MAX, "i64", NULL, out);
}

clv_status clv_gguf_get_f32(const clv_gguf *g, const char *key, float *out) {
    const clv_gguf_value *v = NULL;
    clv_status st = lookup(g, key, &v);
    if (st) return st;
    double d;
    if (clv_gguf_value_to_f64(v, &d)) return convert_fail(g, key, v, CLV_ERR_TYPE, "f32");
    *out = (float)d;
    return CLV_OK;
}

clv_status clv_gguf_get_bool(const clv_gguf *g, const char *key, bool *out) {
    const clv_gguf_value *v = NULL;
    clv_status st = lookup(g, key, &v);
    if (st) return st;
    if (v->type != CLV_GGUF_BOOL) return convert_fail(g, key, v, CLV_ERR_TYPE, "bool");
    *out = v->v.b;
    return CLV_OK;
}

clv_status clv_gguf_get_str_len(const clv_gguf *g, const char *key, clv_gguf_str *out) {
    const clv_gguf_value *v = NULL;
    clv_status st = lookup(g, key, &v);
    if (st) return st;
    if (v->type != CLV_GGUF_STRING) return convert_fail(g, key, v, CLV_ERR_TYPE, "string");
    *out = v->v.str;
    return CLV_OK;
}

clv_status clv_gguf_get_str(const clv_gguf *g, const char *key, const char **out) {
    clv_gguf_str s = {0, NULL};
    clv_status st = clv_gguf_get_str_len(g, key, &s);
    if (!st) *out = s.data;
    return st;
}

clv_status clv_gguf_get_arr(const clv_gguf *g, const char *key, int32_t want_elem_type, const clv_gguf_value **out) {
    const clv_gguf_value *v = NULL;
    clv_status st = lookup(g, key, &v);
    if (st) return st;
    if (v->type != CLV_GGUF_ARRAY) return convert_fail(g, key, v, CLV_ERR_TYPE, "array");
    if (want_elem_type >= 0 && v->v.arr.elem_type != want_elem_type) {
        return clv_fail(CLV_ERR_TYPE, "%s: metadata '%s' is an array of %s, expected %s", g->path, key,
                        clv_gguf_value_type_name(v->v.arr.elem_type), clv_gguf_value_type_name(want_elem_type));
    }
    *out = v;
    return CLV_OK;
}
