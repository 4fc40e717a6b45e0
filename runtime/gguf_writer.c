/* GGUF writer: metadata and tensor infos are kept (small) until
 * clv_gguf_writer_begin_data; tensor bytes then stream straight to the file. */
#include "gguf_writer.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "types.h"

typedef struct pending_kv {
    char *key;
    clv_gguf_value value; /* strings and arrays point into heap copies owned here */
} pending_kv;

typedef struct pending_tensor {
    char name[CLV_GGUF_MAX_NAME + 1];
    uint32_t n_dims;
    int64_t ne[CLV_GGUF_MAX_DIMS];
    int32_t type;
    uint64_t size;
    uint64_t offset;
} pending_tensor;

struct clv_gguf_writer {
    char *path;
    char *tmp_path;
    FILE *f;
    clv_gguf_writer_params params;
    pending_kv *kvs;
    int64_t n_kv, cap_kv;
    pending_tensor *tensors;
    int64_t n_tensors, cap_tensors;
    uint64_t data_size;   /* sum of aligned tensor sizes */
    bool data_started;
    int64_t cur_tensor;   /* tensor being written */
    uint64_t cur_written; /* bytes of it so far */
    bool failed;          /* a write error happened; only free is allowed */
};

clv_gguf_writer_params clv_gguf_writer_default_params(void) {
    return (clv_gguf_writer_params){.version = 3, .alignment = CLV_GGUF_DEFAULT_ALIGNMENT};
}

/* --- value copies ---------------------------------------------------------------- */

static void value_free(clv_gguf_value *v) {
    if (v->type == CLV_GGUF_STRING) {
        free((void *)v->v.str.data);
    } else if (v->type == CLV_GGUF_ARRAY) {
        if (v->v.arr.strs) {
            for (uint64_t i = 0; i < v->v.arr.count; i++) free((void *)v->v.arr.strs[i].data);
        }
        if (v->v.arr.arrs) {
            for (uint64_t i = 0; i < v->v.arr.count; i++) value_free((clv_gguf_value *)&v->v.arr.arrs[i]);
        }
        free((void *)v->v.arr.data);
        free((void *)v->v.arr.strs);
        free((void *)v->v.arr.arrs);
    }
}

static char *bytes_dup(const char *s, uint64_t len) {
    char *p = malloc((size_t)len + 1);
    if (!p) return NULL;
    memcpy(p, s, (size_t)len);
    p[len] = '\0';
    return p;
}

/* Deep copy; on failure frees what it made and returns false. */
static bool value_copy(clv_gguf_value *dst, const clv_gguf_value *src) {
    *dst = *src;
    if (src->type == CLV_GGUF_STRING) {
        dst->v.str.data = bytes_dup(src->v.str.data, src->v.str.len);
        return dst->v.str.data != NULL;
    }
    if (src->type != CLV_GGUF_ARRAY) return true;
    uint64_t n = src->v.arr.count;
    dst->v.arr.data = NULL;
    dst->v.arr.strs = NULL;
    dst->v.arr.arrs = NULL;
    if (n == 0) return true;
    int32_t et = src->v.arr.elem_type;
    if (et == CLV_GGUF_STRING) {
        clv_gguf_str *strs = calloc((size_t)n, sizeof *strs);
        if (!strs) return false;
        dst->v.arr.strs = strs;
        for (uint64_t i = 0; i < n; i++) {
            strs[i].len = src->v.arr.strs[i].len;
            strs[i].data = bytes_dup(src->v.arr.strs[i].data, strs[i].len);
            if (!strs[i].data) {
                dst->v.arr.count = i;
                value_free(dst);
                return false;
            }
        }
    } else if (et == CLV_GGUF_ARRAY) {
        clv_gguf_value *arrs = calloc((size_t)n, sizeof *arrs);
        if (!arrs) return false;
        dst->v.arr.arrs = arrs;
        for (uint64_t i = 0; i < n; i++) {
            if (!value_copy(&arrs[i], &src->v.arr.arrs[i])) {
                dst->v.arr.count = i;
                value_free(dst);
                return false;
            }
        }
    } else {
        size_t bytes = (size_t)n * clv_gguf_value_type_size(et);
        void *data = malloc(bytes);
        if (!data) return false;
        memcpy(data, src->v.arr.data, bytes);
        dst->v.arr.data = data;
    }
    return true;
}

static bool value_valid(const clv_gguf_value *v, int depth) {
    if (v->type < 0 || v->type >= CLV_GGUF_VALUE_TYPE_COUNT) return false;
    if (v->type != CLV_GGUF_ARRAY) return true;
    int32_t et = v->v.arr.elem_type;
    if (et < 0 || et >= CLV_GGUF_VALUE_TYPE_COUNT || depth > 8) return false;
    if (v->v.arr.count == 0) return true;
    if (et == CLV_GGUF_STRING) return v->v.arr.strs != NULL;
    if (et == CLV_GGUF_ARRAY) {
        if (!v->v.arr.arrs) return false;
        for (uint64_t i = 0; i < v->v.arr.count; i++) {
            if (v->v.arr.arrs[i].type != CLV_GGUF_ARRAY || !value_valid(&v->v.arr.arrs[i], depth + 1)) return false;
        }
        return true;
    }
    return v->v.arr.data != NULL;
}

/* --- open / free ----------------------------------------------------------------- */

clv_status clv_gguf_writer_open(const char *path, const clv_gguf_writer_params *params, clv_gguf_writer **out) {
    *out = NULL;
    clv_gguf_writer_params p = params ? *params : clv_gguf_writer_default_params();
    if (p.version != 2 && p.version != 3) return clv_fail(CLV_ERR_ARG, "%s: cannot write GGUF version %u", path, p.version);
    if (p.alignment == 0 || (p.alignment & (p.alignment - 1))) {
        return clv_fail(CLV_ERR_ARG, "%s: alignment %u is not a power of two", path, p.alignment);
    }
    clv_gguf_writer *w = calloc(1, sizeof *w);
    if (!w) return clv_fail(CLV_ERR_NOMEM, "%s: no memory", path);
    w->params = p;
    w->path = strdup(path);
    size_t n = strlen(path) + 5;
    w->tmp_path = malloc(n);
    if (!w->path || !w->tmp_path) {
        clv_gguf_writer_free(w);
        return clv_fail(CLV_ERR_NOMEM, "%s: no memory", path);
    }
    snprintf(w->tmp_path, n, "%s.tmp", path);
    w->f = fopen(w->tmp_path, "wb");
    if (!w->f) {
        clv_status st = clv_fail(CLV_ERR_IO, "%s: cannot create: %s", w->tmp_path, strerror(errno));
        clv_gguf_writer_free(w);
        return st;
    }
    setvbuf(w->f, NULL, _IOFBF, 1 << 20);
    if (p.alignment != CLV_GGUF_DEFAULT_ALIGNMENT) clv_gguf_writer_set_u32(w, "general.alignment", p.alignment);
    *out = w;
    return CLV_OK;
}

void clv_gguf_writer_free(clv_gguf_writer *w) {
    if (!w) return;
    if (w->f) {
        fclose(w->f);
        remove(w->tmp_path);
    }
    for (int64_t i = 0; i < w->n_kv; i++) {
        free(w->kvs[i].key);
        value_free(&w->kvs[i].value);
    }
    free(w->kvs);
    free(w->tensors);
    free(w->path);
    free(w->tmp_path);
    free(w);
}

/* --- metadata ---------------------------------------------------------------------- */

clv_status clv_gguf_writer_set_value(clv_gguf_writer *w, const char *key, const clv_gguf_value *v) {
    if (w->data_started) return clv_fail(CLV_ERR_ARG, "%s: metadata '%s' set after tensor data began", w->path, key);
    if (!key || !*key) return clv_fail(CLV_ERR_ARG, "%s: empty metadata key", w->path);
    if (!value_valid(v, 0)) return clv_fail(CLV_ERR_ARG, "%s: metadata '%s': invalid value", w->path, key);
    clv_gguf_value copy;
    if (!value_copy(&copy, v)) return clv_fail(CLV_ERR_NOMEM, "%s: no memory for metadata '%s'", w->path, key);
    for (int64_t i = 0; i < w->n_kv; i++) {
        if (strcmp(w->kvs[i].key, key) == 0) {
            value_free(&w->kvs[i].value);
            w->kvs[i].value = copy;
            return CLV_OK;
        }
    }
    if (w->n_kv == w->cap_kv) {
        int64_t cap = w->cap_kv ? w->cap_kv * 2 : 32;
        pending_kv *kvs = realloc(w->kvs, (size_t)cap * sizeof *kvs);
        if (!kvs) {
            value_free(&copy);
            return clv_fail(CLV_ERR_NOMEM, "%s: no memory", w->path);
        }
        w->kvs = kvs;
        w->cap_kv = cap;
    }
    char *k = strdup(key);
    if (!k) {
        value_free(&copy);
        return clv_fail(CLV_ERR_NOMEM, "%s: no memory", w->path);
    }
    w->kvs[w->n_kv].key = k;
    w->kvs[w->n_kv].value = copy;
    w->n_kv++;
    return CLV_OK;
}

#define DEFINE_SETTER(suffix, ctype, tag, field)                                         \
    clv_status clv_gguf_writer_set_##suffix(clv_gguf_writer *w, const char *key, ctype v) { \
        clv_gguf_value val = {.type = tag};                                               \
        val.v.field = v;                                                                  \
        return clv_gguf_writer_set_value(w, key, &val);                                   \
    }

DEFINE_SETTER(u8, uint8_t, CLV_GGUF_U8, u8)
DEFINE_SETTER(i8, int8_t, CLV_GGUF_I8, i8)
DEFINE_SETTER(u16, uint16_t, CLV_GGUF_U16, u16)
DEFINE_SETTER(i16, int16_t, CLV_GGUF_I16, i16)
DEFINE_SETTER(u32, uint32_t, CLV_GGUF_U32, u32)
DEFINE_SETTER(i32, int32_t, CLV_GGUF_I32, i32)
DEFINE_SETTER(u64, uint64_t, CLV_GGUF_U64, u64)
DEFINE_SETTER(i64, int64_t, CLV_GGUF_I64, i64)
DEFINE_SETTER(f32, float, CLV_GGUF_F32, f32)
DEFINE_SETTER(f64, double, CLV_GGUF_F64, f64)
DEFINE_SETTER(bool, bool, CLV_GGUF_BOOL, b)

clv_status clv_gguf_writer_set_str(clv_gguf_writer *w, const char *key, const char *s) {
    clv_gguf_value val = {.type = CLV_GGUF_STRING};
    val.v.str.data = s;
    val.v.str.len = strlen(s);
    return clv_gguf_writer_set_value(w, key, &val);
}

clv_status clv_gguf_writer_set_arr(clv_gguf_writer *w, const char *key, int32_t elem_type, const void *data,
                                   uint64_t count) {
    if (clv_gguf_value_type_size(elem_type) == 0) {
        return clv_fail(CLV_ERR_ARG, "%s: metadata '%s': %s arrays need set_arr_str or set_value", w->path, key,
                        clv_gguf_value_type_name(elem_type));
    }
    clv_gguf_value val = {.type = CLV_GGUF_ARRAY};
    val.v.arr.elem_type = elem_type;
    val.v.arr.count = count;
    val.v.arr.data = data;
    return clv_gguf_writer_set_value(w, key, &val);
}

clv_status clv_gguf_writer_set_arr_str(clv_gguf_writer *w, const char *key, const char *const *strs, uint64_t count) {
    clv_gguf_str *tmp = malloc((size_t)(count ? count : 1) * sizeof *tmp);
    if (!tmp) return clv_fail(CLV_ERR_NOMEM, "%s: no memory", w->path);
    for (uint64_t i = 0; i < count; i++) {
        tmp[i].data = strs[i];
        tmp[i].len = strlen(strs[i]);
    }
    clv_gguf_value val = {.type = CLV_GGUF_ARRAY};
    val.v.arr.elem_type = CLV_GGUF_STRING;
    val.v.arr.count = count;
    val.v.arr.strs = tmp;
    clv_status st = clv_gguf_writer_set_value(w, key, &val);
    free(tmp);
    return st;
}

/* --- tensors ------------------------------------------------------------------------ */

static uint64_t align_up(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

clv_status clv_gguf_writer_add_tensor(clv_gguf_writer *w, const char *name, int32_t type, uint32_t n_dims,
                                      const int64_t *ne) {
    if (w->data_started) return clv_fail(CLV_ERR_ARG, "%s: tensor '%s' added after data began", w->path, name);
    size_t len = strlen(name);
    if (len == 0 || len > CLV_GGUF_MAX_NAME) {
        return clv_fail(CLV_ERR_ARG, "%s: tensor name '%s' must have 1 to %d bytes", w->path, name, CLV_GGUF_MAX_NAME);
    }
    if (n_dims > CLV_GGUF_MAX_DIMS) return clv_fail(CLV_ERR_ARG, "%s: tensor '%s' has %u dims", w->path, name, n_dims);
    const clv_type_info *info = clv_type_get(type);
    if (!info) return clv_fail(CLV_ERR_ARG, "%s: tensor '%s' has unknown type %d", w->path, name, type);
    for (int64_t i = 0; i < w->n_tensors; i++) {
        if (strcmp(w->tensors[i].name, name) == 0) return clv_fail(CLV_ERR_ARG, "%s: duplicate tensor '%s'", w->path, name);
    }
    pending_tensor t = {.n_dims = n_dims, .type = type};
    memcpy(t.name, name, len + 1);
    int64_t n = 1;
    for (int d = 0; d < CLV_GGUF_MAX_DIMS; d++) t.ne[d] = 1;
    for (uint32_t d = 0; d < n_dims; d++) {
        if (ne[d] < 0 || (ne[d] && n > INT64_MAX / ne[d])) {
            return clv_fail(CLV_ERR_ARG, "%s: tensor '%s' has a bad shape", w->path, name);
        }
        t.ne[d] = ne[d];
        n *= ne[d];
    }
    if (t.ne[0] % info->block_elems) {
        return clv_fail(CLV_ERR_ARG, "%s: tensor '%s': row length %lld is not a multiple of %s's block of %d", w->path,
                        name, (long long)t.ne[0], info->name, info->block_elems);
    }
    if (!clv_type_bytes(type, n, &t.size)) return clv_fail(CLV_ERR_ARG, "%s: tensor '%s' is too large", w->path, name);
    if (w->n_tensors == w->cap_tensors) {
        int64_t cap = w->cap_tensors ? w->cap_tensors * 2 : 64;
        pending_tensor *ts = realloc(w->tensors, (size_t)cap * sizeof *ts);
        if (!ts) return clv_fail(CLV_ERR_NOMEM, "%s: no memory", w->path);
        w->tensors = ts;
        w->cap_tensors = cap;
    }
    t.offset = w->data_size;
    w->data_size = align_up(t.offset + t.size, w->params.alignment);
    w->tensors[w->n_tensors++] = t;
    return CLV_OK;
}

/* --- output -------------------------------------------------------------------------- */

static bool put(clv_gguf_writer *w, const void *p, size_t n) {
    if (n && fwrite(p, 1, n, w->f) != n) {
        w->failed = true;
        return false;
    }
    return true;
}

static bool put_str(clv_gguf_writer *w, const char *s, uint64_t len) {
    return put(w, &len, sizeof len) && put(w, s, (size_t)len);
}

static bool put_value(clv_gguf_writer *w, const clv_gguf_value *v) {
    switch (v->type) {
    case CLV_GGUF_STRING: return put_str(w, v->v.str.data, v->v.str.len);
    case CLV_GGUF_BOOL: {
        uint8_t b = v->v.b ? 1 : 0;
        return put(w, &b, 1);
    }
    case CLV_GGUF_ARRAY: {
        int32_t et = v->v.arr.elem_type;
        uint64_t n = v->v.arr.count;
        if (!put(w, &et, sizeof et) || !put(w, &n, sizeof n)) return false;
        if (et == CLV_GGUF_STRING) {
            for (uint64_t i = 0; i < n; i++) {
                if (!put_str(w, v->v.arr.strs[i].data, v->v.arr.strs[i].len)) return false;
            }
            return true;
        }
        if (et == CLV_GGUF_ARRAY) {
            for (uint64_t i = 0; i < n; i++) {
                if (!put_value(w, &v->v.arr.arrs[i])) return false;
            }
            return true;
        }
        return put(w, v->v.arr.data, (size_t)n * clv_gguf_value_type_size(et));
    }
    default: return put(w, &v->v, clv_gguf_value_type_size(v->type));
    }
}

static bool put_zeros(clv_gguf_writer *w, uint64_t n) {
    static const uint8_t zeros[256];
    while (n > 0) {
        size_t k = n > sizeof zeros ? sizeof zeros : (size_t)n;
        if (!put(w, zeros, k)) return false;
        n -= k;
    }
    return true;
}

static clv_status write_failed(clv_gguf_writer *w) {
    w->failed = true;
    return clv_fail(CLV_ERR_IO, "%s: write failed: %s", w->tmp_path, strerror(errno));
}

clv_status clv_gguf_writer_begin_data(clv_gguf_writer *w) {
    if (w->data_started || w->failed) return clv_fail(CLV_ERR_ARG, "%s: begin_data called twice", w->path);
    uint32_t version = w->params.version;
    int64_t n_tensors = w->n_tensors, n_kv = w->n_kv;
    bool ok = put(w, CLV_GGUF_MAGIC, 4) && put(w, &version, 4) && put(w, &n_tensors, 8) && put(w, &n_kv, 8);
    for (int64_t i = 0; ok && i < w->n_kv; i++) {
        int32_t type = w->kvs[i].value.type;
        ok = put_str(w, w->kvs[i].key, strlen(w->kvs[i].key)) && put(w, &type, 4) && put_value(w, &w->kvs[i].value);
    }
    for (int64_t i = 0; ok && i < w->n_tensors; i++) {
        const pending_tensor *t = &w->tensors[i];
        ok = put_str(w, t->name, strlen(t->name)) && put(w, &t->n_dims, 4) && put(w, t->ne, 8 * (size_t)t->n_dims) &&
             put(w, &t->type, 4) && put(w, &t->offset, 8);
    }
    if (ok) {
        long pos = ftell(w->f);
        ok = pos >= 0 && put_zeros(w, align_up((uint64_t)pos, w->params.alignment) - (uint64_t)pos);
    }
    if (!ok) return write_failed(w);
    w->data_started = true;
    w->cur_tensor = 0;
    w->cur_written = 0;
    return CLV_OK;
}

/* Skips finished tensors (and zero-sized ones), writing their padding. */
static bool advance(clv_gguf_writer *w) {
    while (w->cur_tensor < w->n_tensors && w->cur_written == w->tensors[w->cur_tensor].size) {
        const pending_tensor *t = &w->tensors[w->cur_tensor];
        uint64_t end = t->offset + t->size;
        if (!put_zeros(w, align_up(end, w->params.alignment) - end)) return false;
        w->cur_tensor++;
        w->cur_written = 0;
    }
    return true;
}

clv_status clv_gguf_writer_write(clv_gguf_writer *w, const void *data, uint64_t size) {
    if (!w->data_started || w->failed) return clv_fail(CLV_ERR_ARG, "%s: write before begin_data or after an error", w->path);
    if (!advance(w)) return write_failed(w);
    if (size == 0) return CLV_OK;
    if (w->cur_tensor >= w->n_tensors) return clv_fail(CLV_ERR_ARG, "%s: more data than the declared tensors hold", w->path);
    const pending_tensor *t = &w->tensors[w->cur_tensor];
    if (size > t->size - w->cur_written) {
        return clv_fail(CLV_ERR_ARG, "%s: %llu bytes would cross the end of tensor '%s' (%llu of %llu written)", w->path,
                        (unsigned long long)size, t->name, (unsigned long long)w->cur_written, (unsigned long long)t->size);
    }
    if (!put(w, data, (size_t)size)) return write_failed(w);
    w->cur_written += size;
    if (!advance(w)) return write_failed(w);
    return CLV_OK;
}

clv_status clv_gguf_writer_finish(clv_gguf_writer *w) {
    clv_status st = CLV_OK;
    if (!w->data_started) st = clv_gguf_writer_begin_data(w);
    if (!st && !advance(w)) st = write_failed(w);
    if (!st && w->cur_tensor < w->n_tensors) {
        st = clv_fail(CLV_ERR_ARG, "%s: tensor '%s' has %llu of %llu bytes written", w->path,
                      w->tensors[w->cur_tensor].name, (unsigned long long)w->cur_written,
                      (unsigned long long)w->tensors[w->cur_tensor].size);
    }
    if (!st) {
        int rc = fflush(w->f);
        FILE *f = w->f;
        w->f = NULL;
        if (fclose(f) != 0 || rc != 0) {
            st = clv_fail(CLV_ERR_IO, "%s: write failed: %s", w->tmp_path, strerror(errno));
            remove(w->tmp_path);
        } else if (rename(w->tmp_path, w->path) != 0) {
            st = clv_fail(CLV_ERR_IO, "%s: cannot rename %s into place: %s", w->path, w->tmp_path, strerror(errno));
            remove(w->tmp_path);
        }
    }
    clv_gguf_writer_free(w);
    return st;
}
