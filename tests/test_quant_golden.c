/* cleave's scalar dequantizer against values decoded by an independent
 * implementation (the gguf Python package), bit for bit, for every type it
 * supports. The fixture tests/data/quant_golden.bin is written by
 * tests/gen_quant_golden.py (layout described there); ctest needs no Python. */
#include <stdint.h>

#include "blocks.h"
#include "dequantize.h"
#include "status.h"
#include "test.h"
#include "types.h"

#define GOLDEN_PATH CLEAVE_SOURCE_DIR "/tests/data/quant_golden.bin"

static uint32_t read_u32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint8_t *read_file(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    uint8_t *buf = NULL;
    if (fseek(f, 0, SEEK_END) == 0) {
        long len = ftell(f);
        if (len > 0 && fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t)len))) {
            if (fread(buf, 1, (size_t)len, f) != (size_t)len) {
                free(buf);
                buf = NULL;
            } else {
                *size = (size_t)len;
            }
        }
    }
    fclose(f);
    return buf;
}

/* Every type the fixture must cover (REFERENCE.md section 2). */
static const int32_t required_types[] = {
    CLV_TYPE_F32,  CLV_TYPE_F16,  CLV_TYPE_BF16, CLV_TYPE_Q4_0, CLV_TYPE_Q4_1,   CLV_TYPE_Q5_0,
    CLV_TYPE_Q5_1, CLV_TYPE_Q8_0, CLV_TYPE_Q2_K, CLV_TYPE_Q3_K, CLV_TYPE_Q4_K,   CLV_TYPE_Q5_K,
    CLV_TYPE_Q6_K, CLV_TYPE_IQ4_NL, CLV_TYPE_IQ4_XS, CLV_TYPE_MXFP4,
};
#define N_REQUIRED (int)(sizeof required_types / sizeof required_types[0])

static void check_entry(int32_t type, uint32_t n, const uint8_t *raw, uint32_t raw_bytes,
                        const uint8_t *want_le) {
    uint64_t bytes = 0;
    CHECK_MSG(clv_type_bytes(type, n, &bytes) && bytes == raw_bytes, "%s: %u elements in %u bytes",
              clv_type_name(type), n, raw_bytes);
    if (bytes != raw_bytes) return;
    float *got = malloc((size_t)n * sizeof(float));
    CLV_ASSERT(got);
    CHECK_STATUS(clv_dequantize_row(type, raw, got, n), CLV_OK);
    int mismatches = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t want = read_u32(want_le + 4 * (size_t)i);
        uint32_t have = clv_fp32_bits(got[i]);
        if (want != have && mismatches++ < 5) {
            fprintf(stderr, "%s element %u: got 0x%08x (%g), want 0x%08x (%g)\n", clv_type_name(type),
                    i, have, (double)got[i], want, (double)clv_fp32_from_bits(want));
        }
    }
    CHECK_MSG(mismatches == 0, "%s: %d of %u values differ", clv_type_name(type), mismatches, n);

    /* Decoding from an odd address must give the same values. */
    uint8_t *shifted = malloc(raw_bytes + 1);
    float *again = malloc((size_t)n * sizeof(float));
    CLV_ASSERT(shifted && again);
    memcpy(shifted + 1, raw, raw_bytes);
    CHECK_STATUS(clv_dequantize_row(type, shifted + 1, again, n), CLV_OK);
    CHECK_MSG(memcmp(got, again, (size_t)n * sizeof(float)) == 0, "%s: unaligned source differs",
              clv_type_name(type));
    free(shifted);
    free(again);
    free(got);
}

int main(void) {
    size_t size = 0;
    uint8_t *buf = read_file(GOLDEN_PATH, &size);
    CHECK_MSG(buf != NULL, "cannot read %s (regenerate with tests/gen_quant_golden.py)", GOLDEN_PATH);
    if (!buf) return test_finish("test_quant_golden");

    bool seen[CLV_TYPE_COUNT] = {false};
    size_t pos = 16;
    CHECK(size >= 16 && memcmp(buf, "CLVQGOLD", 8) == 0 && read_u32(buf + 8) == 1);
    uint32_t count = size >= 16 ? read_u32(buf + 12) : 0;
    for (uint32_t e = 0; e < count; e++) {
        if (size - pos < 12) break;
        int32_t type = (int32_t)read_u32(buf + pos);
        uint32_t n = read_u32(buf + pos + 4);
        uint32_t raw_bytes = read_u32(buf + pos + 8);
        pos += 12;
        if (size - pos < (uint64_t)raw_bytes + 4ull * n) break;
        CHECK_MSG(clv_type_can_dequantize(type), "fixture type %s", clv_type_name(type));
        if (clv_type_can_dequantize(type)) check_entry(type, n, buf + pos, raw_bytes, buf + pos + raw_bytes);
        if (type >= 0 && type < CLV_TYPE_COUNT) seen[type] = true;
        pos += raw_bytes + 4ull * n;
        printf("  %-7s %5u values: checked\n", clv_type_name(type), n);
    }
    CHECK_MSG(pos == size, "fixture truncated or with trailing bytes (%zu of %zu read)", pos, size);
    for (int i = 0; i < N_REQUIRED; i++) {
        CHECK_MSG(seen[required_types[i]], "fixture lacks %s", clv_type_name(required_types[i]));
    }
    free(buf);

    /* Unsupported types and bad lengths are errors, not crashes. */
    float out[32];
    uint8_t zeros[64] = {0};
    CHECK_STATUS(clv_dequantize_row(CLV_TYPE_IQ2_XXS, zeros, out, 256), CLV_ERR_UNSUPPORTED);
    CHECK(strstr(clv_last_error(), "IQ2_XXS") != NULL);
    CHECK_STATUS(clv_dequantize_row(12345, zeros, out, 32), CLV_ERR_UNSUPPORTED);
    CHECK_STATUS(clv_dequantize_row(CLV_TYPE_Q4_0, zeros, out, 31), CLV_ERR_ARG);
    CHECK_STATUS(clv_dequantize_row(CLV_TYPE_Q4_0, zeros, out, -32), CLV_ERR_ARG);
    CHECK_STATUS(clv_dequantize_row(CLV_TYPE_Q4_0, NULL, NULL, 0), CLV_OK);
    CHECK(!clv_type_can_dequantize(CLV_TYPE_IQ1_S));
    CHECK(!clv_type_can_dequantize(-1));
    return test_finish("test_quant_golden");
}
