#include "status.h"

#include <stdarg.h>
#include <string.h>

#define ERROR_MESSAGE_MAX 1024

static _Thread_local char last_error[ERROR_MESSAGE_MAX];

const char *clv_status_str(clv_status st) {
    switch (st) {
    case CLV_OK: return "ok";
    case CLV_ERR_ARG: return "invalid argument";
    case CLV_ERR_IO: return "I/O error";
    case CLV_ERR_FORMAT: return "format error";
    case CLV_ERR_UNSUPPORTED: return "unsupported";
    case CLV_ERR_NOT_FOUND: return "not found";
    case CLV_ERR_TYPE: return "wrong type";
    case CLV_ERR_NOMEM: return "out of memory";
    case CLV_ERR_RANGE: return "out of range";
    case CLV_ERR_BUDGET: return "over budget";
    case CLV_ERR_DEVICE: return "device error";
    }
    return "unknown status";
}

const char *clv_last_error(void) { return last_error; }

void clv_clear_error(void) { last_error[0] = '\0'; }

clv_status clv_fail(clv_status st, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    return st;
}

void clv_error_prefix(const char *fmt, ...) {
    char prefix[ERROR_MESSAGE_MAX / 2];
    char old[ERROR_MESSAGE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, last_error, sizeof old);
    snprintf(last_error, sizeof last_error, "%s%.*s", prefix, (int)(sizeof last_error / 2 - 1), old);
}
