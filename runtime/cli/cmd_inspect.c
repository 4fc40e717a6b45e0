/* `cleave inspect FILE.gguf [--json]`: what a GGUF file holds. */
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "gguf.h"
#include "json.h"
#include "tensor_stats.h"
#include "types.h"

#define ARRAY_PREVIEW 6   /* elements shown of a long array */
#define STRING_PREVIEW 96 /* bytes shown of a long string */

static void usage(FILE *f) {
    fprintf(f, "usage: cleave inspect FILE.gguf [--json] [--no-tensors] [--stats]\n\n"
               "Prints the architecture and key hyper-parameters, the tokenizer, every\n"
               "metadata key (long arrays abbreviated), every tensor (name, type, shape,\n"
               "bytes, offset), totals by type, and the model's total and per-layer size.\n\n"
               "  --json        machine-readable output (every metadata key, every tensor)\n"
               "  --no-tensors  leave out the per-tensor listing\n"
               "  --stats       decode every tensor and print its value statistics\n"
               "                (mean, std, min, max, non-finite count); slow on big models\n");
}

/* --- human-readable ----------------------------------------------------------- */

static void print_size(FILE *f, uint64_t bytes) {
    const char *unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)bytes;
    int u = 0;
    while (v >= 1024.0 && u < 4) {
        v /= 1024.0;
        u++;
    }
    if (u == 0) fprintf(f, "%" PRIu64 " B", bytes);
    else fprintf(f, "%.2f %s", v, unit[u]);
}

/* A string shown on one line: control characters escaped, long ones cut. */
static void print_text(FILE *f, const char *s, uint64_t len, uint64_t limit) {
    fputc('"', f);
    uint64_t n = len < limit ? len : limit;
    for (uint64_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\n') fputs("\\n", f);
        else if (c == '\t') fputs("\\t", f);
        else if (c == '\r') fputs("\\r", f);
        else if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
        else if (c < 0x20 || c == 0x7f) fprintf(f, "\\x%02x", c);
        else fputc(c, f);
    }
    fputc('"', f);
    if (len > limit) fprintf(f, "... (%" PRIu64 " bytes)", len);
}

static void print_scalar(FILE *f, int32_t type, const void *p) {
    switch (type) {
    case CLV_GGUF_U8: fprintf(f, "%u", *(const uint8_t *)p); break;
    case CLV_GGUF_I8: fprintf(f, "%d", *(const int8_t *)p); break;
    case CLV_GGUF_U16: fprintf(f, "%u", *(const uint16_t *)p); break;
    case CLV_GGUF_I16: fprintf(f, "%d", *(const int16_t *)p); break;
    case CLV_GGUF_U32: fprintf(f, "%" PRIu32, *(const uint32_t *)p); break;
    case CLV_GGUF_I32: fprintf(f, "%" PRId32, *(const int32_t *)p); break;
    case CLV_GGUF_U64: fprintf(f, "%" PRIu64, *(const uint64_t *)p); break;
    case CLV_GGUF_I64: fprintf(f, "%" PRId64, *(const int64_t *)p); break;
    case CLV_GGUF_F32: fprintf(f, "%.9g", *(const float *)p); break;
    case CLV_GGUF_F64: fprintf(f, "%.17g", *(const double *)p); break;
    case CLV_GGUF_BOOL: fputs(*(const uint8_t *)p ? "true" : "false", f); break;
    default: fputs("?", f);
    }
}

static void print_value(FILE *f, const clv_gguf_value *v, int depth) {
    if (v->type == CLV_GGUF_STRING) {
        print_text(f, v->v.str.data, v->v.str.len, STRING_PREVIEW);
        return;
    }
    if (v->type != CLV_GGUF_ARRAY) {
        if (v->type == CLV_GGUF_BOOL) fputs(v->v.b ? "true" : "false", f);
        else print_scalar(f, v->type, &v->v);
        return;
    }
    uint64_t n = v->v.arr.count;
    int32_t et = v->v.arr.elem_type;
    uint64_t shown = n > ARRAY_PREVIEW ? ARRAY_PREVIEW : n;
    fprintf(f, "[");
    for (uint64_t i = 0; i < shown; i++) {
        if (i) fputs(", ", f);
        if (et == CLV_GGUF_STRING) print_text(f, v->v.arr.strs[i].data, v->v.arr.strs[i].len, 32);
        else if (et == CLV_GGUF_ARRAY) print_value(f, &v->v.arr.arrs[i], depth + 1);
        else print_scalar(f, et, (const uint8_t *)v->v.arr.data + i * clv_gguf_value_type_size(et));
    }
    if (n > shown) fprintf(f, ", ... %" PRIu64 " %s in all", n, clv_gguf_value_type_name(et));
    fprintf(f, "]");
}

static void print_shape(FILE *f, const clv_gguf_tensor *t, char *buf, size_t cap) {
    (void)f;
    size_t used = 0;
    used += (size_t)snprintf(buf + used, cap - used, "[");
    uint32_t nd = t->n_dims ? t->n_dims : 1;
    for (uint32_t d = 0; d < nd && used < cap; d++) {
        used += (size_t)snprintf(buf + used, cap - used, d ? ", %" PRId64 : "%" PRId64, t->ne[d]);
    }
    if (used < cap) snprintf(buf + used, cap - used, "]");
}

/* Layer index of "blk.N.xxx", or -1. */
static int64_t layer_of(const char *name) {
    if (strncmp(name, "blk.", 4) != 0) return -1;
    char *end;
    long long n = strtoll(name + 4, &end, 10);
    if (end == name + 4 || *end != '.' || n < 0) return -1;
    return n;
}

static const char *str_or(const clv_gguf *g, const char *key, const char *fallback) {
    const char *s;
    return clv_gguf_get_str(g, key, &s) == CLV_OK ? s : fallback;
}

typedef struct totals {
    uint64_t bytes_by_type[CLV_TYPE_COUNT];
    int64_t count_by_type[CLV_TYPE_COUNT];
    uint64_t elems_by_type[CLV_TYPE_COUNT];
    uint64_t total_bytes, total_elems;
    int64_t n_layers;      /* 1 + highest blk index */
    uint64_t *layer_bytes; /* per layer */
    uint64_t other_bytes;  /* outside blk.N */
} totals;

static int compute_totals(const clv_gguf *g, totals *tt) {
    memset(tt, 0, sizeof *tt);
    int64_t n = clv_gguf_n_tensors(g);
    for (int64_t i = 0; i < n; i++) {
        int64_t l = layer_of(clv_gguf_tensor_at(g, i)->name);
        if (l >= tt->n_layers && l < 1000000) tt->n_layers = l + 1;
    }
    tt->layer_bytes = calloc((size_t)(tt->n_layers ? tt->n_layers : 1), sizeof *tt->layer_bytes);
    if (!tt->layer_bytes) return -1;
    for (int64_t i = 0; i < n; i++) {
        const clv_gguf_tensor *t = clv_gguf_tensor_at(g, i);
        tt->bytes_by_type[t->type] += t->size;
        tt->count_by_type[t->type]++;
        tt->elems_by_type[t->type] += (uint64_t)clv_gguf_tensor_n_elems(t);
        tt->total_bytes += t->size;
        tt->total_elems += (uint64_t)clv_gguf_tensor_n_elems(t);
        int64_t l = layer_of(t->name);
        if (l >= 0 && l < tt->n_layers) tt->layer_bytes[l] += t->size;
        else tt->other_bytes += t->size;
    }
    return 0;
}

static void print_hparams(FILE *f, const clv_gguf *g, const char *arch) {
    static const char *suffixes[] = {
        "context_length", "embedding_length", "block_count", "feed_forward_length",
        "attention.head_count", "attention.head_count_kv", "attention.key_length",
        "attention.value_length", "attention.layer_norm_rms_epsilon", "attention.sliding_window",
        "rope.dimension_count", "rope.freq_base", "rope.scaling.type", "rope.scaling.factor",
        "expert_count", "expert_used_count", "expert_feed_forward_length",
        "expert_shared_feed_forward_length", "vocab_size",
    };
    char key[256];
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
        snprintf(key, sizeof key, "%s.%s", arch, suffixes[i]);
        const clv_gguf_kv *kv = clv_gguf_find(g, key);
        if (!kv) continue;
        fprintf(f, "  %-36s ", suffixes[i]);
        print_value(f, &kv->value, 0);
        fputc('\n', f);
    }
}

static void print_human(FILE *f, const clv_gguf *g, const totals *tt, bool with_tensors) {
    const char *arch = str_or(g, "general.architecture", "(none)");
    fprintf(f, "file          %s\n", clv_gguf_path(g));
    fprintf(f, "format        GGUF v%u, alignment %u, %u file(s), data at offset %" PRIu64 "\n",
            clv_gguf_version(g), clv_gguf_alignment(g), clv_gguf_n_splits(g), clv_gguf_split_data_offset(g, 0));
    fprintf(f, "name          %s\n", str_or(g, "general.name", "(none)"));
    fprintf(f, "architecture  %s\n", arch);
    uint32_t ftype;
    if (clv_gguf_get_u32(g, "general.file_type", &ftype) == CLV_OK) {
        const char *name = clv_file_type_name(ftype);
        fprintf(f, "file type     %s (%u)\n", name ? name : "unknown", ftype);
    }
    fprintf(f, "parameters    %" PRIu64 " (%.3f B)\n", tt->total_elems, (double)tt->total_elems / 1e9);
    fprintf(f, "size          ");
    print_size(f, tt->total_bytes);
    fprintf(f, " of tensor data (%.3f bits per weight)\n",
            tt->total_elems ? 8.0 * (double)tt->total_bytes / (double)tt->total_elems : 0.0);

    fprintf(f, "\nhyper-parameters (%s.*):\n", arch);
    print_hparams(f, g, arch);

    const clv_gguf_value *tokens = NULL;
    fprintf(f, "\ntokenizer     %s", str_or(g, "tokenizer.ggml.model", "(none)"));
    fprintf(f, ", pre-tokenizer %s", str_or(g, "tokenizer.ggml.pre", "(none)"));
    if (clv_gguf_get_arr(g, "tokenizer.ggml.tokens", CLV_GGUF_STRING, &tokens) == CLV_OK) {
        fprintf(f, ", %" PRIu64 " tokens", tokens->v.arr.count);
    }
    const clv_gguf_value *merges = NULL;
    if (clv_gguf_get_arr(g, "tokenizer.ggml.merges", CLV_GGUF_STRING, &merges) == CLV_OK) {
        fprintf(f, ", %" PRIu64 " merges", merges->v.arr.count);
    }
    fprintf(f, "\n");
    clv_clear_error();

    fprintf(f, "\nmetadata (%" PRId64 " keys):\n", clv_gguf_n_kv(g));
    for (int64_t i = 0; i < clv_gguf_n_kv(g); i++) {
        const clv_gguf_kv *kv = clv_gguf_kv_at(g, i);
        const clv_gguf_value *v = &kv->value;
        char type[48];
        if (v->type == CLV_GGUF_ARRAY) {
            snprintf(type, sizeof type, "%s[%" PRIu64 "]", clv_gguf_value_type_name(v->v.arr.elem_type), v->v.arr.count);
        } else {
            snprintf(type, sizeof type, "%s", clv_gguf_value_type_name(v->type));
        }
        fprintf(f, "  %-44s %-14s ", kv->key.data, type);
        print_value(f, v, 0);
        fputc('\n', f);
    }

    if (with_tensors) {
        fprintf(f, "\ntensors (%" PRId64 "):\n", clv_gguf_n_tensors(g));
        fprintf(f, "  %-40s %-8s %-28s %14s %14s\n", "name", "type", "shape", "bytes", "offset");
        for (int64_t i = 0; i < clv_gguf_n_tensors(g); i++) {
            const clv_gguf_tensor *t = clv_gguf_tensor_at(g, i);
            char shape[128];
            print_shape(f, t, shape, sizeof shape);
            fprintf(f, "  %-40s %-8s %-28s %14" PRIu64 " %14" PRIu64 "%s\n", t->name, clv_type_name(t->type), shape,
                    t->size, t->offset, clv_gguf_n_splits(g) > 1 ? "" : "");
        }
    }

    fprintf(f, "\ntotals by type:\n");
    for (int t = 0; t < CLV_TYPE_COUNT; t++) {
        if (!tt->count_by_type[t]) continue;
        fprintf(f, "  %-8s %6" PRId64 " tensors %14" PRIu64 " params  ", clv_type_name(t), tt->count_by_type[t],
                tt->elems_by_type[t]);
        print_size(f, tt->bytes_by_type[t]);
        fprintf(f, " (%.1f%%)\n", tt->total_bytes ? 100.0 * (double)tt->bytes_by_type[t] / (double)tt->total_bytes : 0.0);
    }

    fprintf(f, "\nsize by layer:\n");
    for (int64_t l = 0; l < tt->n_layers; l++) {
        fprintf(f, "  blk.%-4" PRId64 " ", l);
        print_size(f, tt->layer_bytes[l]);
        fputc('\n', f);
    }
    fprintf(f, "  other     ");
    print_size(f, tt->other_bytes);
    fprintf(f, " (embeddings, output, norms outside layers)\n  total     ");
    print_size(f, tt->total_bytes);
    fputc('\n', f);
}

/* Decodes every tensor; returns the number that could not be decoded or hold
 * non-finite values (so scripts can check a file with the exit status). */
static int print_stats(FILE *f, const clv_gguf *g) {
    int bad = 0;
    fprintf(f, "\nvalue statistics (decoded):\n");
    fprintf(f, "  %-40s %-8s %12s %12s %12s %12s %10s\n", "name", "type", "mean", "std", "min", "max", "nonfinite");
    for (int64_t i = 0; i < clv_gguf_n_tensors(g); i++) {
        const clv_gguf_tensor *t = clv_gguf_tensor_at(g, i);
        clv_tensor_stats st;
        if (clv_tensor_stats_compute(g, t, &st) != CLV_OK) {
            fprintf(f, "  %-40s %-8s %s\n", t->name, clv_type_name(t->type), clv_last_error());
            bad++;
            continue;
        }
        fprintf(f, "  %-40s %-8s %12.5g %12.5g %12.5g %12.5g %10" PRId64 "\n", t->name, clv_type_name(t->type),
                st.mean, st.std, st.min, st.max, st.nonfinite);
        if (st.nonfinite) bad++;
    }
    return bad;
}

/* --- JSON ------------------------------------------------------------------------- */

/* A JSON string (bytes that are not valid UTF-8 become U+FFFD, so the output
 * always parses). */
static void json_string(FILE *f, const char *s, uint64_t len) {
    clv_json *v = clv_json_new_string(s, (size_t)len);
    if (!v || clv_json_fwrite(f, v, NULL) != CLV_OK) fputs("null", f);
    clv_json_free(v);
}

static void json_number(FILE *f, double d) {
    if (isfinite(d)) fprintf(f, "%.17g", d);
    else fputs("null", f); /* JSON has no inf/nan */
}

static void json_scalar(FILE *f, int32_t type, const void *p) {
    if (type == CLV_GGUF_F32 || type == CLV_GGUF_F64) {
        double d = type == CLV_GGUF_F32 ? *(const float *)p : *(const double *)p;
        json_number(f, d);
        return;
    }
    print_scalar(f, type, p);
}

static void json_value(FILE *f, const clv_gguf_value *v) {
    if (v->type == CLV_GGUF_STRING) {
        json_string(f, v->v.str.data, v->v.str.len);
    } else if (v->type == CLV_GGUF_BOOL) {
        fputs(v->v.b ? "true" : "false", f);
    } else if (v->type != CLV_GGUF_ARRAY) {
        json_scalar(f, v->type, &v->v);
    } else {
        int32_t et = v->v.arr.elem_type;
        fputc('[', f);
        for (uint64_t i = 0; i < v->v.arr.count; i++) {
            if (i) fputc(',', f);
            if (et == CLV_GGUF_STRING) json_string(f, v->v.arr.strs[i].data, v->v.arr.strs[i].len);
            else if (et == CLV_GGUF_ARRAY) json_value(f, &v->v.arr.arrs[i]);
            else json_scalar(f, et, (const uint8_t *)v->v.arr.data + i * clv_gguf_value_type_size(et));
        }
        fputc(']', f);
    }
}

static void print_json(FILE *f, const clv_gguf *g, const totals *tt, bool with_tensors) {
    fprintf(f, "{\"file\":");
    json_string(f, clv_gguf_path(g), strlen(clv_gguf_path(g)));
    fprintf(f, ",\"version\":%u,\"alignment\":%u,\"splits\":%u,\"data_offset\":%" PRIu64, clv_gguf_version(g),
            clv_gguf_alignment(g), clv_gguf_n_splits(g), clv_gguf_split_data_offset(g, 0));
    const char *arch = str_or(g, "general.architecture", NULL);
    fprintf(f, ",\"architecture\":");
    if (arch) json_string(f, arch, strlen(arch));
    else fputs("null", f);
    fprintf(f, ",\"n_params\":%" PRIu64 ",\"n_bytes\":%" PRIu64, tt->total_elems, tt->total_bytes);

    fprintf(f, ",\"metadata\":{");
    for (int64_t i = 0; i < clv_gguf_n_kv(g); i++) {
        const clv_gguf_kv *kv = clv_gguf_kv_at(g, i);
        if (i) fputc(',', f);
        json_string(f, kv->key.data, kv->key.len);
        fputc(':', f);
        json_value(f, &kv->value);
    }
    fputc('}', f);

    fprintf(f, ",\"metadata_types\":{");
    for (int64_t i = 0; i < clv_gguf_n_kv(g); i++) {
        const clv_gguf_kv *kv = clv_gguf_kv_at(g, i);
        if (i) fputc(',', f);
        json_string(f, kv->key.data, kv->key.len);
        const char *tn = clv_gguf_value_type_name(kv->value.type);
        if (kv->value.type == CLV_GGUF_ARRAY) {
            fprintf(f, ":\"%s[%s]\"", tn, clv_gguf_value_type_name(kv->value.v.arr.elem_type));
        } else {
            fprintf(f, ":\"%s\"", tn);
        }
    }
    fputc('}', f);

    if (with_tensors) {
        fprintf(f, ",\"tensors\":[");
        for (int64_t i = 0; i < clv_gguf_n_tensors(g); i++) {
            const clv_gguf_tensor *t = clv_gguf_tensor_at(g, i);
            if (i) fputc(',', f);
            fprintf(f, "{\"name\":");
            json_string(f, t->name, strlen(t->name));
            fprintf(f, ",\"type\":\"%s\",\"shape\":[", clv_type_name(t->type));
            for (uint32_t d = 0; d < (t->n_dims ? t->n_dims : 1); d++) fprintf(f, d ? ",%" PRId64 : "%" PRId64, t->ne[d]);
            fprintf(f, "],\"bytes\":%" PRIu64 ",\"offset\":%" PRIu64 ",\"split\":%u}", t->size, t->offset, t->split);
        }
        fputc(']', f);
    }

    fprintf(f, ",\"totals_by_type\":{");
    bool first = true;
    for (int t = 0; t < CLV_TYPE_COUNT; t++) {
        if (!tt->count_by_type[t]) continue;
        fprintf(f, "%s\"%s\":{\"tensors\":%" PRId64 ",\"params\":%" PRIu64 ",\"bytes\":%" PRIu64 "}", first ? "" : ",",
                clv_type_name(t), tt->count_by_type[t], tt->elems_by_type[t], tt->bytes_by_type[t]);
        first = false;
    }
    fprintf(f, "},\"layer_bytes\":[");
    for (int64_t l = 0; l < tt->n_layers; l++) fprintf(f, l ? ",%" PRIu64 : "%" PRIu64, tt->layer_bytes[l]);
    fprintf(f, "],\"other_bytes\":%" PRIu64 "}\n", tt->other_bytes);
}

int clv_cmd_inspect(int argc, char **argv) {
    const char *path = NULL;
    bool json = false, with_tensors = true, stats = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json")) json = true;
        else if (!strcmp(argv[i], "--no-tensors")) with_tensors = false;
        else if (!strcmp(argv[i], "--stats")) stats = true;
        else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "-m") && i + 1 < argc) path = argv[++i];
        else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "cleave inspect: unknown option '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        } else if (!path) path = argv[i];
        else {
            fprintf(stderr, "cleave inspect: one file at a time ('%s' and '%s')\n", path, argv[i]);
            return 2;
        }
    }
    if (!path) {
        usage(stderr);
        return 2;
    }
    clv_gguf_params params = clv_gguf_default_params();
    params.use_mmap = stats; /* plain inspection reads metadata only */
    clv_gguf *g;
    if (clv_gguf_open(path, &params, &g) != CLV_OK) {
        fprintf(stderr, "cleave inspect: %s\n", clv_last_error());
        return 1;
    }
    totals tt;
    if (compute_totals(g, &tt) != 0) {
        fprintf(stderr, "cleave inspect: out of memory\n");
        clv_gguf_free(g);
        return 1;
    }
    if (json) print_json(stdout, g, &tt, with_tensors);
    else print_human(stdout, g, &tt, with_tensors);
    int bad = stats && !json ? print_stats(stdout, g) : 0;
    if (bad) fprintf(stderr, "cleave inspect: %d tensor(s) could not be decoded or hold non-finite values\n", bad);
    free(tt.layer_bytes);
    clv_gguf_free(g);
    return (ferror(stdout) || bad) ? 1 : 0;
}
