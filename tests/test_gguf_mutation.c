/* Mutation test: thousands of corrupted variants of a valid GGUF file (bit
 * flips, interesting values written over counts and offsets, truncations,
 * insertions, deletions) must each open cleanly or fail with a status; the
 * walk aborts on any broken promise, and sanitizer builds catch the rest.
 * With --seed-dir DIR it only writes the base files as a fuzzing corpus. */
#include <stdint.h>
#include <sys/stat.h>

#include "fuzz/gguf_walk.h"
#include "gguf_writer.h"
#include "test.h"
#include "types.h"

#define ITERATIONS 20000

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static uint64_t rng(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* Builds a small but varied file with cleave's writer and returns its bytes. */
static uint8_t *make_base(const char *path, uint32_t alignment, size_t *size) {
    clv_gguf_writer_params wp = clv_gguf_writer_default_params();
    wp.alignment = alignment;
    clv_gguf_writer *w;
    if (clv_gguf_writer_open(path, &wp, &w) != CLV_OK) return NULL;
    clv_gguf_writer_set_str(w, "general.architecture", "llama");
    clv_gguf_writer_set_u32(w, "llama.block_count", 2);
    clv_gguf_writer_set_f32(w, "llama.rope.freq_base", 10000.0f);
    clv_gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", true);
    const char *tokens[4] = {"<s>", "</s>", "a", "\xe2\x96\x81" "b"};
    clv_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", tokens, 4);
    float scores[4] = {0, 0, -1, -2};
    clv_gguf_writer_set_arr(w, "tokenizer.ggml.scores", CLV_GGUF_F32, scores, 4);
    uint64_t u64s[2] = {1, 2};
    clv_gguf_writer_set_arr(w, "x.u64s", CLV_GGUF_U64, u64s, 2);
    const int64_t ne_a[2] = {32, 2}, ne_b[1] = {256}, ne_c[2] = {4, 3};
    clv_gguf_writer_add_tensor(w, "blk.0.attn_q.weight", CLV_TYPE_Q8_0, 2, ne_a);
    clv_gguf_writer_add_tensor(w, "blk.1.ffn_up.weight", CLV_TYPE_Q4_K, 1, ne_b);
    clv_gguf_writer_add_tensor(w, "output_norm.weight", CLV_TYPE_F32, 2, ne_c);
    clv_gguf_writer_begin_data(w);
    uint8_t bytes[256];
    for (int i = 0; i < 256; i++) bytes[i] = (uint8_t)(i * 37);
    clv_gguf_writer_write(w, bytes, 68);
    clv_gguf_writer_write(w, bytes, 144);
    clv_gguf_writer_write(w, bytes, 48);
    if (clv_gguf_writer_finish(w) != CLV_OK) return NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *data = malloc((size_t)n);
    if (data && fread(data, 1, (size_t)n, f) != (size_t)n) {
        free(data);
        data = NULL;
    }
    fclose(f);
    *size = (size_t)n;
    return data;
}

static const uint64_t interesting[] = {
    0, 1, 2, 3, 4, 7, 8, 9, 12, 13, 31, 32, 33, 63, 64, 255, 256, 4096, 65535, 0x7fffffffull, 0x80000000ull,
    0xffffffffull, 0x100000000ull, 0x7fffffffffffffffull, 0x8000000000000000ull, 0xffffffffffffffffull,
    0xfffffffffffffff0ull,
};

/* One random corruption of buf (length *len, capacity cap). */
static void mutate(uint8_t *buf, size_t *len, size_t cap) {
    size_t n = *len;
    switch (rng() % 6) {
    case 0: /* flip bits */
        for (int k = 1 + (int)(rng() % 4); k > 0 && n; k--) buf[rng() % n] ^= (uint8_t)(1u << (rng() % 8));
        break;
    case 1:
    case 2: { /* an interesting value over 1, 2, 4 or 8 bytes */
        size_t width = (size_t)1 << (rng() % 4);
        if (n < width) break;
        uint64_t v = interesting[rng() % (sizeof interesting / sizeof interesting[0])];
        if (rng() & 1) v += (uint64_t)(n - rng() % 64); /* near the file size */
        memcpy(buf + rng() % (n - width + 1), &v, width);
        break;
    }
    case 3: /* truncate */
        *len = n ? rng() % n : 0;
        break;
    case 4: { /* insert random bytes */
        size_t k = 1 + rng() % 16;
        if (n + k > cap) break;
        size_t at = n ? rng() % n : 0;
        memmove(buf + at + k, buf + at, n - at);
        for (size_t i = 0; i < k; i++) buf[at + i] = (uint8_t)rng();
        *len = n + k;
        break;
    }
    case 5: { /* delete bytes */
        if (!n) break;
        size_t at = rng() % n;
        size_t k = 1 + rng() % 16;
        if (k > n - at) k = n - at;
        memmove(buf + at, buf + at + k, n - at - k);
        *len = n - k;
        break;
    }
    }
}

int main(int argc, char **argv) {
    char path[256];
    snprintf(path, sizeof path, "/tmp/cleave-test-mutation-%d.gguf", (int)getpid());
    size_t sizes[2];
    uint8_t *bases[2];
    bases[0] = make_base(path, 32, &sizes[0]);
    bases[1] = make_base(path, 64, &sizes[1]);
    remove(path);
    if (!bases[0] || !bases[1]) {
        fprintf(stderr, "could not build the base files: %s\n", clv_last_error());
        return 1;
    }
    if (argc == 3 && !strcmp(argv[1], "--seed-dir")) {
        mkdir(argv[2], 0755);
        for (int b = 0; b < 2; b++) {
            char seed[512];
            snprintf(seed, sizeof seed, "%s/seed-%d.gguf", argv[2], b);
            FILE *f = fopen(seed, "wb");
            if (!f || fwrite(bases[b], 1, sizes[b], f) != sizes[b]) return 1;
            fclose(f);
        }
        free(bases[0]);
        free(bases[1]);
        return 0;
    }
    CHECK_STATUS(walk_gguf_image(bases[0], sizes[0], 1), CLV_OK);
    CHECK_STATUS(walk_gguf_image(bases[1], sizes[1], 0), CLV_OK);

    size_t cap = sizes[0] > sizes[1] ? sizes[0] + 1024 : sizes[1] + 1024;
    uint8_t *buf = malloc(cap);
    int counts[CLV_ERR_BUDGET + 1] = {0};
    for (int it = 0; it < ITERATIONS; it++) {
        int b = it & 1;
        size_t len = sizes[b];
        memcpy(buf, bases[b], len);
        for (int k = 1 + (int)(rng() % 3); k > 0; k--) mutate(buf, &len, cap);
        clv_status st = walk_gguf_image(buf, len, it & 2);
        CHECK(st == CLV_OK || st == CLV_ERR_FORMAT || st == CLV_ERR_UNSUPPORTED || st == CLV_ERR_ARG);
        if ((int)st <= CLV_ERR_BUDGET) counts[st]++;
    }
    printf("%d mutants: %d opened, %d format errors, %d unsupported, %d other\n", ITERATIONS, counts[CLV_OK],
           counts[CLV_ERR_FORMAT], counts[CLV_ERR_UNSUPPORTED], ITERATIONS - counts[CLV_OK] - counts[CLV_ERR_FORMAT] - counts[CLV_ERR_UNSUPPORTED]);
    /* Corruption must mostly be caught, not silently accepted. */
    CHECK(counts[CLV_ERR_FORMAT] > ITERATIONS / 2);
    free(buf);
    free(bases[0]);
    free(bases[1]);
    return test_finish("test_gguf_mutation");
}
