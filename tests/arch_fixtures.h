/* The architecture fixtures (tests/data/arch, made by scripts from
 * transformers): their manifest, their reference logits files, and the
 * error measure the logits tests hold cleave's logits to. */
#ifndef CLV_TEST_ARCH_FIXTURES_H
#define CLV_TEST_ARCH_FIXTURES_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "json.h"
#include "status.h"

/* The fixtures' folder in the source tree. */
static inline const char *arch_fixture_dir(void) {
    static char dir[4096];
    if (!dir[0]) snprintf(dir, sizeof dir, "%s/tests/data/arch", CLEAVE_SOURCE_DIR);
    return dir;
}

/* manifest.json, parsed; NULL (and the reason on stderr) when it cannot be read. */
static inline clv_json *arch_fixture_manifest(void) {
    char path[8192];
    snprintf(path, sizeof path, "%s/manifest.json", arch_fixture_dir());
    clv_json *manifest = NULL;
    if (clv_json_parse_file(path, NULL, &manifest) != CLV_OK) {
        fprintf(stderr, "%s\n", clv_last_error());
        return NULL;
    }
    return manifest;
}

/* A fixture's prompt_token_ids as int32 (malloc'd, *n of them), or NULL
 * when it has none. */
static inline int32_t *arch_fixture_prompt(const clv_json *fx, int64_t *n) {
    const clv_json *ids = clv_json_get(fx, "prompt_token_ids");
    *n = (int64_t)clv_json_count(ids);
    if (*n <= 0) return NULL;
    int32_t *prompt = malloc((size_t)*n * sizeof *prompt);
    for (int64_t t = 0; prompt && t < *n; t++) prompt[t] = (int32_t)clv_json_int(clv_json_at(ids, (size_t)t));
    return prompt;
}

/* n floats of a fixture's reference logits file, or NULL. */
static inline float *arch_fixture_logits(const char *name, int64_t n) {
    char path[8192];
    snprintf(path, sizeof path, "%s/%s", arch_fixture_dir(), name);
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    float *v = malloc((size_t)n * sizeof *v);
    if (v && fread(v, sizeof *v, (size_t)n, f) != (size_t)n) {
        free(v);
        v = NULL;
    }
    fclose(f);
    return v;
}

/* max |got - want| / max |want| over a row of n logits (NaN counts as worst). */
static inline double arch_row_error(const float *got, const float *want, int64_t n) {
    double maxdiff = 0, maxref = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - want[i]);
        if (!(d <= maxdiff)) maxdiff = d;
        if (fabs(want[i]) > maxref) maxref = fabs(want[i]);
    }
    return maxdiff / (maxref > 0 ? maxref : 1);
}

#endif
