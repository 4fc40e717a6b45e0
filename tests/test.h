/* A minimal test harness: each test executable is one ctest test. CHECK
 * records a failure and goes on; the process exits non-zero if any failed,
 * or with TEST_SKIP_CODE (ctest reports "skipped") via TEST_SKIP. */
#ifndef CLV_TEST_H
#define CLV_TEST_H

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TEST_SKIP_CODE 77

static int test_failures;
static int test_checks;

#define CHECK(cond)                                                                 \
    do {                                                                            \
        test_checks++;                                                              \
        if (!(cond)) {                                                              \
            test_failures++;                                                        \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                           \
    } while (0)

#define CHECK_MSG(cond, ...)                                                        \
    do {                                                                            \
        test_checks++;                                                              \
        if (!(cond)) {                                                              \
            test_failures++;                                                        \
            fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                           \
            fprintf(stderr, "\n");                                                  \
        }                                                                           \
    } while (0)

#define CHECK_EQ_INT(a, b)                                                          \
    do {                                                                            \
        long long va_ = (long long)(a), vb_ = (long long)(b);                       \
        CHECK_MSG(va_ == vb_, "%lld != %lld", va_, vb_);                            \
    } while (0)

#define CHECK_STATUS(expr, want)                                                    \
    do {                                                                            \
        clv_status st_ = (expr);                                                    \
        CHECK_MSG(st_ == (want), "got %s (%s), want %s", clv_status_str(st_),       \
                  clv_last_error(), clv_status_str(want));                          \
    } while (0)

#define TEST_SKIP(...)                                                              \
    do {                                                                            \
        printf("SKIP: ");                                                           \
        printf(__VA_ARGS__);                                                        \
        printf("\n");                                                               \
        exit(TEST_SKIP_CODE);                                                       \
    } while (0)

static inline int test_finish(const char *name) {
    printf("%s: %d checks, %d failed\n", name, test_checks, test_failures);
    return test_failures ? 1 : 0;
}

/* Folder of ../shared/fixtures as seen from the source tree, or NULL. */
static inline const char *test_fixtures_dir(void) {
    const char *env = getenv("CLEAVE_FIXTURES");
    if (env && *env) return env;
#ifdef CLEAVE_SOURCE_DIR
    static char path[4096];
    snprintf(path, sizeof path, "%s/../shared/fixtures", CLEAVE_SOURCE_DIR);
    return path;
#else
    return NULL;
#endif
}

/* Where scripts/get-model.sh caches `file`: ${XDG_CACHE_HOME:-$HOME/.cache}/cleave/models,
 * or $CLEAVE_MODEL_DIR when set. */
static inline void test_model_path(const char *file, char *out, size_t cap) {
    const char *dir = getenv("CLEAVE_MODEL_DIR");
    const char *cache = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    if (dir && *dir) snprintf(out, cap, "%.2000s/%s", dir, file);
    else if (cache && *cache) snprintf(out, cap, "%.2000s/cleave/models/%s", cache, file);
    else snprintf(out, cap, "%.2000s/.cache/cleave/models/%s", home ? home : ".", file);
}

#endif
