/* Writing GGUF files, streaming: metadata and tensor infos are declared first,
 * then tensor data is written in declaration order, in as many pieces as the
 * caller likes, so no whole model ever sits in memory.
 *
 * The file is written to "PATH.tmp" and renamed over PATH only by a
 * successful clv_gguf_writer_finish, so a failed or abandoned write never
 * leaves a half file under the final name. */
#ifndef CLV_GGUF_WRITER_H
#define CLV_GGUF_WRITER_H

#include "gguf.h"

typedef struct clv_gguf_writer clv_gguf_writer;

typedef struct clv_gguf_writer_params {
    uint32_t version;   /* 3 (default) or 2 */
    uint32_t alignment; /* power of two; default 32, written as general.alignment if not 32 */
} clv_gguf_writer_params;

clv_gguf_writer_params clv_gguf_writer_default_params(void);

clv_status clv_gguf_writer_open(const char *path, const clv_gguf_writer_params *params,
                                clv_gguf_writer **out);
/* Abandons an unfinished file (removes PATH.tmp); accepts NULL. */
void clv_gguf_writer_free(clv_gguf_writer *w);

/* --- metadata (before clv_gguf_writer_begin_data). A key set twice keeps
 * its first position and takes the new value. */
clv_status clv_gguf_writer_set_u8(clv_gguf_writer *w, const char *key, uint8_t v);
clv_status clv_gguf_writer_set_i8(clv_gguf_writer *w, const char *key, int8_t v);
clv_status clv_gguf_writer_set_u16(clv_gguf_writer *w, const char *key, uint16_t v);
clv_status clv_gguf_writer_set_i16(clv_gguf_writer *w, const char *key, int16_t v);
clv_status clv_gguf_writer_set_u32(clv_gguf_writer *w, const char *key, uint32_t v);
clv_status clv_gguf_writer_set_i32(clv_gguf_writer *w, const char *key, int32_t v);
clv_status clv_gguf_writer_set_u64(clv_gguf_writer *w, const char *key, uint64_t v);
clv_status clv_gguf_writer_set_i64(clv_gguf_writer *w, const char *key, int64_t v);
clv_status clv_gguf_writer_set_f32(clv_gguf_writer *w, const char *key, float v);
clv_status clv_gguf_writer_set_f64(clv_gguf_writer *w, const char *key, double v);
clv_status clv_gguf_writer_set_bool(clv_gguf_writer *w, const char *key, bool v);
clv_status clv_gguf_writer_set_str(clv_gguf_writer *w, const char *key, const char *v);
/* Numeric or bool array: `count` packed little-endian elements. */
clv_status clv_gguf_writer_set_arr(clv_gguf_writer *w, const char *key, int32_t elem_type,
                                   const void *data, uint64_t count);
clv_status clv_gguf_writer_set_arr_str(clv_gguf_writer *w, const char *key,
                                       const char *const *strs, uint64_t count);
/* Any value, including nested arrays and strings with NULs (copies it). */
clv_status clv_gguf_writer_set_value(clv_gguf_writer *w, const char *key,
                                     const clv_gguf_value *v);

/* --- tensors: declared in the order their data will be written. ne has
 * n_dims entries; ne[0] must be a multiple of the type's block size. */
clv_status clv_gguf_writer_add_tensor(clv_gguf_writer *w, const char *name, int32_t type,
                                      uint32_t n_dims, const int64_t *ne);

/* Writes header, metadata and tensor infos; after it, only data. */
clv_status clv_gguf_writer_begin_data(clv_gguf_writer *w);

/* Appends bytes of the current tensor; moves to the next tensor (with
 * alignment padding) once the current one is complete. A piece may not cross
 * a tensor boundary. */
clv_status clv_gguf_writer_write(clv_gguf_writer *w, const void *data, uint64_t size);

/* Checks every tensor was written in full, flushes, renames PATH.tmp to PATH
 * and frees the writer (also on failure). */
clv_status clv_gguf_writer_finish(clv_gguf_writer *w);

#endif
