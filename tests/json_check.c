/* json_check FILE PATH...: exits 0 when FILE parses as JSON and holds every
 * PATH (keys separated by "/", numbers index arrays: "results/0/test"). Used by
 * ctest to validate the JSON that cleave's commands print. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

static const clv_json *walk(const clv_json *v, const char *path) {
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *part = strtok(buf, "/"); part && v; part = strtok(NULL, "/")) {
        char *end;
        long i = strtol(part, &end, 10);
        if (*end == '\0' && clv_json_kind_of(v) == CLV_JSON_ARRAY) v = clv_json_at(v, (size_t)i);
        else v = clv_json_get(v, part);
    }
    return v;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: json_check FILE PATH...\n");
        return 2;
    }
    clv_json *doc = NULL;
    if (clv_json_parse_file(argv[1], NULL, &doc) != CLV_OK) {
        fprintf(stderr, "json_check: %s\n", clv_last_error());
        return 1;
    }
    int missing = 0;
    for (int i = 2; i < argc; i++) {
        if (!walk(doc, argv[i])) {
            fprintf(stderr, "json_check: %s: no '%s'\n", argv[1], argv[i]);
            missing++;
        }
    }
    clv_json_free(doc);
    if (!missing) printf("json_check: %s: valid, %d paths present\n", argv[1], argc - 2);
    return missing ? 1 : 0;
}
