/* GGUF files: reading (header, metadata, tensor infos, split files) and
 * reaching tensor data by mmap or by plain reads into caller buffers.
 *
 * Every file is treated as hostile: each length, count and offset is checked
 * against the file size before it is used, and a bad file gives a status plus
 * a message (clv_last_error) naming the file, the section and the offset.
 * Writing lives in gguf_writer.h. */
#ifndef CLV_GGUF_H
#define CLV_GGUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "status.h"

#define CLV_GGUF_MAGIC "GGUF"
#define CLV_GGUF_DEFAULT_ALIGNMENT 32
#define CLV_GGUF_MAX_DIMS 4
#define CLV_GGUF_MAX_NAME 63 /* bytes of a tensor name, excluding a terminator */

typedef enum clv_gguf_value_type {
    CLV_GGUF_U8 = 0,
    CLV_GGUF_I8 = 1,
    CLV_GGUF_U16 = 2,
    CLV_GGUF_I16 = 3,
    CLV_GGUF_U32 = 4,
    CLV_GGUF_I32 = 5,
    CLV_GGUF_F32 = 6,
    CLV_GGUF_BOOL = 7,
    CLV_GGUF_STRING = 8,
    CLV_GGUF_ARRAY = 9,
    CLV_GGUF_U64 = 10,
    CLV_GGUF_I64 = 11,
    CLV_GGUF_F64 = 12,
    CLV_GGUF_VALUE_TYPE_COUNT
} clv_gguf_value_type;

/* "u32", "string", ... ("?" for an unknown number). */
const char *clv_gguf_value_type_name(int32_t type);

/* Bytes of one scalar of this type (0 for string, array and unknown types). */
size_t clv_gguf_value_type_size(int32_t type);

/* A string inside a GGUF file: bytes are NOT NUL-terminated in the file, but
 * the reader stores each with a terminating NUL after `len` bytes for
 * convenience. Strings may contain NUL bytes; use len. */
typedef struct clv_gguf_str {
    uint64_t len;
    const char *data;
} clv_gguf_str;

/* A metadata value. Arrays hold `count` elements of `elem_type`: numbers
 * packed little-endian in `data` (host order: cleave runs on little-endian
 * hosts only), strings as clv_gguf_str in `strs`, nested arrays as values in
 * `arrs`. */
typedef struct clv_gguf_value {
    int32_t type; /* clv_gguf_value_type */
    union {
        uint8_t u8;
        int8_t i8;
        uint16_t u16;
        int16_t i16;
        uint32_t u32;
        int32_t i32;
        float f32;
        bool b;
        uint64_t u64;
        int64_t i64;
        double f64;
        clv_gguf_str str;
        struct {
            int32_t elem_type;
            uint64_t count;
            const void *data;                  /* numeric and bool elements */
            const clv_gguf_str *strs;          /* string elements */
            const struct clv_gguf_value *arrs; /* nested array elements */
        } arr;
    } v;
} clv_gguf_value;

typedef struct clv_gguf_kv {
    clv_gguf_str key;
    clv_gguf_value value;
    uint64_t file_offset; /* where the pair starts (for messages) */
} clv_gguf_kv;

typedef struct clv_gguf_tensor {
    const char *name;  /* NUL-terminated */
    uint32_t n_dims;
    int64_t ne[CLV_GGUF_MAX_DIMS]; /* unused dims are 1; ne[0] is contiguous */
    int32_t type;      /* clv_type */
    uint64_t offset;   /* from the start of its file's data section */
    uint64_t size;     /* bytes */
    uint32_t split;    /* index of the file (split) that holds the data */
    uint64_t file_offset; /* absolute offset inside that file */
} clv_gguf_tensor;

typedef struct clv_gguf clv_gguf;

typedef struct clv_gguf_params {
    bool use_mmap;      /* map tensor data (default true); off: plain reads only */
    bool load_splits;   /* open the other files of a split model (default true) */
    bool verbose;       /* print what is opened to stderr */
} clv_gguf_params;

clv_gguf_params clv_gguf_default_params(void);

/* Opens and validates a GGUF file (and its splits). On failure *out is NULL
 * and clv_last_error() says what is wrong and where. */
clv_status clv_gguf_open(const char *path, const clv_gguf_params *params, clv_gguf **out);
void clv_gguf_free(clv_gguf *g);

const char *clv_gguf_path(const clv_gguf *g);
uint32_t clv_gguf_version(const clv_gguf *g);
uint32_t clv_gguf_alignment(const clv_gguf *g);
uint32_t clv_gguf_n_splits(const clv_gguf *g);
const char *clv_gguf_split_path(const clv_gguf *g, uint32_t split);
uint64_t clv_gguf_split_size(const clv_gguf *g, uint32_t split);      /* file bytes */
uint64_t clv_gguf_split_data_offset(const clv_gguf *g, uint32_t split); /* data section */

/* --- metadata ------------------------------------------------------------ */

int64_t clv_gguf_n_kv(const clv_gguf *g);
const clv_gguf_kv *clv_gguf_kv_at(const clv_gguf *g, int64_t i);
/* NULL when the key is absent. */
const clv_gguf_kv *clv_gguf_find(const clv_gguf *g, const char *key);

/* Typed getters. Missing key: CLV_ERR_NOT_FOUND; present with another type:
 * CLV_ERR_TYPE; the message names the key. Integer getters accept any
 * integer type whose value fits the requested one (CLV_ERR_RANGE otherwise);
 * float getters accept f32 and f64. *out is untouched on failure. */
clv_status clv_gguf_get_u32(const clv_gguf *g, const char *key, uint32_t *out);
clv_status clv_gguf_get_i32(const clv_gguf *g, const char *key, int32_t *out);
clv_status clv_gguf_get_u64(const clv_gguf *g, const char *key, uint64_t *out);
clv_status clv_gguf_get_i64(const clv_gguf *g, const char *key, int64_t *out);
clv_status clv_gguf_get_f32(const clv_gguf *g, const char *key, float *out);
clv_status clv_gguf_get_bool(const clv_gguf *g, const char *key, bool *out);
/* The string, NUL-terminated (it may hold NULs; use clv_gguf_get_str_len). */
clv_status clv_gguf_get_str(const clv_gguf *g, const char *key, const char **out);
clv_status clv_gguf_get_str_len(const clv_gguf *g, const char *key, clv_gguf_str *out);
/* An array value; elem_type is checked when want_elem_type >= 0. */
clv_status clv_gguf_get_arr(const clv_gguf *g, const char *key, int32_t want_elem_type,
                            const clv_gguf_value **out);

/* The same rules for a value already at hand (elements of arrays, etc.). */
clv_status clv_gguf_value_to_i64(const clv_gguf_value *v, int64_t *out);
clv_status clv_gguf_value_to_u64(const clv_gguf_value *v, uint64_t *out);
clv_status clv_gguf_value_to_f64(const clv_gguf_value *v, double *out);

/* --- tensors ------------------------------------------------------------- */

int64_t clv_gguf_n_tensors(const clv_gguf *g);
const clv_gguf_tensor *clv_gguf_tensor_at(const clv_gguf *g, int64_t i);
/* NULL when absent. */
const clv_gguf_tensor *clv_gguf_find_tensor(const clv_gguf *g, const char *name);
int64_t clv_gguf_tensor_n_elems(const clv_gguf_tensor *t);

/* Pointer to the tensor's bytes in the mapping, or NULL when the file was
 * opened without mmap (or mapping failed). */
const void *clv_gguf_tensor_data(const clv_gguf *g, const clv_gguf_tensor *t);

/* Reads `size` bytes starting `offset` bytes into the tensor into dst, with
 * pread (no mmap needed). CLV_ERR_RANGE when the range leaves the tensor,
 * CLV_ERR_IO on a read error or short read. */
clv_status clv_gguf_read_tensor(const clv_gguf *g, const clv_gguf_tensor *t, uint64_t offset,
                                void *dst, uint64_t size);

/* The open file descriptor of a split, for callers that issue their own reads
 * (io_uring, O_DIRECT on a separately opened descriptor). */
int clv_gguf_split_fd(const clv_gguf *g, uint32_t split);

#endif
