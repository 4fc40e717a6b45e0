#include "types.h"

#include <strings.h>

/* Block sizes of every type a GGUF file may name; sizes follow the format's
 * block definitions (see kernels/blocks.h for the ones cleave decodes). */
static const clv_type_info type_table[CLV_TYPE_COUNT] = {
    [CLV_TYPE_F32] = {"F32", 1, 4},
    [CLV_TYPE_F16] = {"F16", 1, 2},
    [CLV_TYPE_Q4_0] = {"Q4_0", 32, 18},
    [CLV_TYPE_Q4_1] = {"Q4_1", 32, 20},
    [CLV_TYPE_Q5_0] = {"Q5_0", 32, 22},
    [CLV_TYPE_Q5_1] = {"Q5_1", 32, 24},
    [CLV_TYPE_Q8_0] = {"Q8_0", 32, 34},
    [CLV_TYPE_Q8_1] = {"Q8_1", 32, 36},
    [CLV_TYPE_Q2_K] = {"Q2_K", 256, 84},
    [CLV_TYPE_Q3_K] = {"Q3_K", 256, 110},
    [CLV_TYPE_Q4_K] = {"Q4_K", 256, 144},
    [CLV_TYPE_Q5_K] = {"Q5_K", 256, 176},
    [CLV_TYPE_Q6_K] = {"Q6_K", 256, 210},
    [CLV_TYPE_Q8_K] = {"Q8_K", 256, 292},
    [CLV_TYPE_IQ2_XXS] = {"IQ2_XXS", 256, 66},
    [CLV_TYPE_IQ2_XS] = {"IQ2_XS", 256, 74},
    [CLV_TYPE_IQ3_XXS] = {"IQ3_XXS", 256, 98},
    [CLV_TYPE_IQ1_S] = {"IQ1_S", 256, 50},
    [CLV_TYPE_IQ4_NL] = {"IQ4_NL", 32, 18},
    [CLV_TYPE_IQ3_S] = {"IQ3_S", 256, 110},
    [CLV_TYPE_IQ2_S] = {"IQ2_S", 256, 82},
    [CLV_TYPE_IQ4_XS] = {"IQ4_XS", 256, 136},
    [CLV_TYPE_I8] = {"I8", 1, 1},
    [CLV_TYPE_I16] = {"I16", 1, 2},
    [CLV_TYPE_I32] = {"I32", 1, 4},
    [CLV_TYPE_I64] = {"I64", 1, 8},
    [CLV_TYPE_F64] = {"F64", 1, 8},
    [CLV_TYPE_IQ1_M] = {"IQ1_M", 256, 56},
    [CLV_TYPE_BF16] = {"BF16", 1, 2},
    [CLV_TYPE_TQ1_0] = {"TQ1_0", 256, 54},
    [CLV_TYPE_TQ2_0] = {"TQ2_0", 256, 66},
    [CLV_TYPE_MXFP4] = {"MXFP4", 32, 17},
    [CLV_TYPE_NVFP4] = {"NVFP4", 64, 36},
    [CLV_TYPE_Q1_0] = {"Q1_0", 128, 18},
};

const clv_type_info *clv_type_get(int32_t type) {
    if (type < 0 || type >= CLV_TYPE_COUNT || type_table[type].name == NULL) return NULL;
    return &type_table[type];
}

const char *clv_type_name(int32_t type) {
    const clv_type_info *info = clv_type_get(type);
    return info ? info->name : "unknown";
}

int32_t clv_type_from_name(const char *name) {
    for (int32_t t = 0; t < CLV_TYPE_COUNT; t++) {
        if (type_table[t].name && strcasecmp(type_table[t].name, name) == 0) return t;
    }
    return -1;
}

bool clv_type_bytes(int32_t type, int64_t n_elems, uint64_t *bytes) {
    const clv_type_info *info = clv_type_get(type);
    if (!info || n_elems < 0 || n_elems % info->block_elems != 0) return false;
    uint64_t blocks = (uint64_t)(n_elems / info->block_elems);
    if (blocks > UINT64_MAX / (uint64_t)info->block_bytes) return false;
    *bytes = blocks * (uint64_t)info->block_bytes;
    return true;
}

/* general.file_type: the recipe a whole file was quantized with. */
const char *clv_file_type_name(uint32_t file_type) {
    static const char *names[] = {
        [0] = "F32", [1] = "F16", [2] = "Q4_0", [3] = "Q4_1", [7] = "Q8_0", [8] = "Q5_0", [9] = "Q5_1",
        [10] = "Q2_K", [11] = "Q3_K_S", [12] = "Q3_K_M", [13] = "Q3_K_L", [14] = "Q4_K_S", [15] = "Q4_K_M",
        [16] = "Q5_K_S", [17] = "Q5_K_M", [18] = "Q6_K", [19] = "IQ2_XXS", [20] = "IQ2_XS", [21] = "Q2_K_S",
        [22] = "IQ3_XS", [23] = "IQ3_XXS", [24] = "IQ1_S", [25] = "IQ4_NL", [26] = "IQ3_S", [27] = "IQ3_M",
        [28] = "IQ2_S", [29] = "IQ2_M", [30] = "IQ4_XS", [31] = "IQ1_M", [32] = "BF16", [36] = "TQ1_0",
        [37] = "TQ2_0", [38] = "MXFP4_MOE",
    };
    if (file_type >= sizeof names / sizeof names[0]) return NULL;
    return names[file_type];
}
