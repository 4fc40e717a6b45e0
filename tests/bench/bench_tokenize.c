/* Tokenizer speed on one core: MB/s and tokens/s tokenizing about 1 MB of
 * English prose (generated from a word list with a fixed seed) or a file.
 *
 *   bench_tokenize [-f TEXT_FILE] [-n REPEATS] MODEL.gguf...
 *
 * With no model given, uses the cached SmolLM2 and Gemma 3 files and the
 * gpt-2 and llama-spm fixture vocabularies, where present. Not a test. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "tokenizer.h"

static const char *const words[] = {
    "the", "of", "and", "to", "in", "a", "is", "that", "for", "it", "as", "was", "with", "be",
    "by", "on", "not", "he", "this", "are", "or", "his", "from", "at", "which", "but", "have",
    "an", "had", "they", "you", "were", "their", "one", "all", "we", "can", "her", "has",
    "there", "been", "if", "more", "when", "will", "would", "who", "so", "no", "model",
    "language", "memory", "expert", "token", "system", "between", "through", "important",
    "government", "development", "information", "however", "understanding", "performance",
    "particularly", "computation", "architecture", "experiment", "measurement", "results",
    "network", "probability", "distribution", "attention", "mixture", "knowledge", "history",
    "people", "water", "world", "children", "morning", "question", "answer", "different",
    "beautiful", "quickly", "remember", "thousand", "yesterday", "mountain", "river",
    "don't", "it's", "we'll", "they're", "I've", "2024", "3.5", "100", "GPU", "CPU", "MoE",
};

static const char *const ends[] = {".", ".", ".", "?", "!", ";", ":", ","};

static char *make_text(size_t target, size_t *len) {
    char *buf = malloc(target + 256);
    uint64_t state = 0x2545F4914F6CDD1Dull;
    size_t n = 0;
    int in_sentence = 0;
    while (n < target) {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        const char *w = words[state % (sizeof words / sizeof words[0])];
        size_t wl = strlen(w);
        if (!in_sentence) { /* capitalised first word */
            buf[n++] = (char)(w[0] >= 'a' && w[0] <= 'z' ? w[0] - 32 : w[0]);
            memcpy(buf + n, w + 1, wl - 1);
            n += wl - 1;
        } else {
            buf[n++] = ' ';
            memcpy(buf + n, w, wl);
            n += wl;
        }
        in_sentence++;
        if (in_sentence > 6 && (state >> 20) % 9 == 0) {
            const char *e = ends[(state >> 32) % (sizeof ends / sizeof ends[0])];
            buf[n++] = e[0];
            if (e[0] == ',' || e[0] == ';' || e[0] == ':') continue;
            in_sentence = 0;
            if ((state >> 40) % 6 == 0) buf[n++] = '\n', buf[n++] = '\n';
            else buf[n++] = ' ';
        }
    }
    *len = n;
    return buf;
}

static char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static void bench(const char *path, const char *text, size_t len, int repeats) {
    clv_gguf *g = NULL;
    clv_tokenizer *tok = NULL;
    clv_gguf_params gp = clv_gguf_default_params();
    gp.use_mmap = false;
    double t0 = now();
    if (clv_gguf_open(path, &gp, &g) || clv_tokenizer_load_gguf(g, &tok)) {
        fprintf(stderr, "%s: %s\n", path, clv_last_error());
        clv_gguf_free(g);
        return;
    }
    double load = now() - t0;
    size_t cap = clv_tokenize_max_tokens(len), n = 0;
    int32_t *ids = malloc(cap * sizeof *ids);
    clv_tokenize_params tp = clv_tokenize_default_params();
    double best = 1e30;
    for (int r = 0; r < repeats; r++) {
        t0 = now();
        if (clv_tokenize(tok, text, len, &tp, ids, cap, &n)) {
            fprintf(stderr, "%s: %s\n", path, clv_last_error());
            break;
        }
        double s = now() - t0;
        if (s < best) best = s;
    }
    /* Decoding back, for completeness. */
    char *back = malloc(len + 16);
    t0 = now();
    int64_t bl = clv_detokenize(tok, ids, n, NULL, back, len + 16);
    double dec = now() - t0;
    const char *name = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    printf("%-36s load %6.1f ms | %.2f MB -> %8zu tokens in %7.1f ms: %6.2f MB/s, %5.2f M tokens/s"
           " | decode %5.1f ms%s\n",
           name, load * 1e3, (double)len / 1e6, n, best * 1e3, (double)len / 1e6 / best,
           (double)n / 1e6 / best, dec * 1e3,
           bl == (int64_t)len && !memcmp(back, text, len) ? "" : " (text differs)");
    free(back);
    free(ids);
    clv_tokenizer_free(tok);
    clv_gguf_free(g);
}

int main(int argc, char **argv) {
    const char *file = NULL;
    int repeats = 3;
    const char *models[64];
    int n_models = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-f") && i + 1 < argc) file = argv[++i];
        else if (!strcmp(argv[i], "-n") && i + 1 < argc) repeats = atoi(argv[++i]);
        else if (n_models < 64) models[n_models++] = argv[i];
    }
    static char defaults[4][4096];
    if (n_models == 0) {
        const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
        char cache[3000];
        if (xdg && *xdg) snprintf(cache, sizeof cache, "%s/cleave/models", xdg);
        else snprintf(cache, sizeof cache, "%s/.cache/cleave/models", home ? home : ".");
        snprintf(defaults[0], sizeof defaults[0], "%s/SmolLM2-135M-Instruct.Q4_1.gguf", cache);
        snprintf(defaults[1], sizeof defaults[1], "%s/gemma-3-270m-q4_k_m.gguf", cache);
#ifdef CLEAVE_SOURCE_DIR
        snprintf(defaults[2], sizeof defaults[2], "%s/../shared/fixtures/vocab/ggml-vocab-gpt-2.gguf",
                 CLEAVE_SOURCE_DIR);
        snprintf(defaults[3], sizeof defaults[3], "%s/../shared/fixtures/vocab/ggml-vocab-llama-spm.gguf",
                 CLEAVE_SOURCE_DIR);
#endif
        for (int i = 0; i < 4; i++) {
            struct stat sb;
            if (defaults[i][0] && stat(defaults[i], &sb) == 0) models[n_models++] = defaults[i];
        }
        if (n_models == 0) {
            fprintf(stderr, "usage: bench_tokenize [-f TEXT_FILE] [-n REPEATS] MODEL.gguf...\n");
            return 2;
        }
    }
    size_t len;
    char *text = file ? read_file(file, &len) : make_text(1 << 20, &len);
    if (!text) {
        perror(file);
        return 1;
    }
    for (int i = 0; i < n_models; i++) bench(models[i], text, len, repeats);
    free(text);
    return 0;
}
