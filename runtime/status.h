/* Status codes and error messages.
 *
 * Two kinds of failure (DESIGN.md): anything a user or a file can cause is a
 * returned clv_status plus a message from clv_last_error(); a broken invariant
 * inside cleave is a bug and stops the program through CLV_ASSERT. */
#ifndef CLV_STATUS_H
#define CLV_STATUS_H

#include <stdio.h>
#include <stdlib.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum clv_status {
    CLV_OK = 0,
    CLV_ERR_ARG,         /* bad argument from the caller or the command line */
    CLV_ERR_IO,          /* open/read/write/mmap failed */
    CLV_ERR_FORMAT,      /* malformed or truncated file */
    CLV_ERR_UNSUPPORTED, /* valid, but cleave does not handle it (yet) */
    CLV_ERR_NOT_FOUND,   /* missing key, tensor or file */
    CLV_ERR_TYPE,        /* a value exists but has another type */
    CLV_ERR_NOMEM,       /* allocation failed */
    CLV_ERR_RANGE,       /* a value is out of the allowed range */
    CLV_ERR_BUDGET,      /* does not fit the memory budget */
    CLV_ERR_DEVICE,      /* a GPU call failed (driver, launch, out of device memory) */
} clv_status;

/* Short stable name of a status ("format error"). */
const char *clv_status_str(clv_status st);

/* The message of the last failure on this thread ("" when none). */
const char *clv_last_error(void);

/* Records a message for the calling thread and returns `st`, so that callers
 * can write `return clv_fail(CLV_ERR_FORMAT, "%s: ...", path);`. */
clv_status clv_fail(clv_status st, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Prefixes the current message with more context ("loading model: " + msg). */
void clv_error_prefix(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

void clv_clear_error(void);

/* For bugs only: never for conditions a file or a user can cause. */
#define CLV_ASSERT(cond)                                                            \
    do {                                                                            \
        if (!(cond)) {                                                              \
            fprintf(stderr, "cleave: assertion failed: %s (%s:%d)\n", #cond,        \
                    __FILE__, __LINE__);                                            \
            abort();                                                                \
        }                                                                           \
    } while (0)

#ifdef __cplusplus
}
#endif

#endif
