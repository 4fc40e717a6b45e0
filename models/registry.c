/* The supported architectures: adding one is a file in models/ plus a line here. */
#include <stdio.h>
#include <string.h>

#include "model.h"

extern const clv_arch clv_arch_llama, clv_arch_qwen2, clv_arch_qwen3, clv_arch_qwen2moe, clv_arch_qwen3moe,
    clv_arch_olmoe, clv_arch_gemma3;

static const clv_arch *const archs[] = {
    &clv_arch_llama, &clv_arch_qwen2, &clv_arch_qwen3, &clv_arch_qwen2moe,
    &clv_arch_qwen3moe, &clv_arch_olmoe, &clv_arch_gemma3,
};

#define N_ARCHS (sizeof archs / sizeof archs[0])

const clv_arch *clv_arch_find(const char *name) {
    for (size_t i = 0; i < N_ARCHS; i++) {
        if (!strcmp(archs[i]->name, name)) return archs[i];
    }
    return NULL;
}

const char *clv_arch_list(void) {
    static char list[256];
    if (!list[0]) {
        size_t n = 0;
        for (size_t i = 0; i < N_ARCHS && n < sizeof list; i++) {
            n += (size_t)snprintf(list + n, sizeof list - n, "%s%s", i ? ", " : "", archs[i]->name);
        }
    }
    return list;
}
