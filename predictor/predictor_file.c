/* The predictor side file: a GGUF container (general.type = "predictor")
 * with per-layer arrays under cleave.predictor.* and four tensors per layer
 * that has a predictor (docs/predictor.md lists them). The reader trusts
 * nothing: every key's type and length, every tensor's type and shape, and
 * every value's finiteness is checked before use. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gguf.h"
#include "gguf_writer.h"
#include "neuron_predictor.h"
#include "predictor_internal.h"
#include "types.h"

#define PREDICTOR_VERSION 1
#define MAX_N_FF (1 << 24)
#define MAX_RANK 65536

#define K_TYPE "general.type"
#define K_VERSION "cleave.predictor.version"
#define K_ARCH "cleave.predictor.model.architecture"
#define K_NAME "cleave.predictor.model.name"
#define K_N_LAYER "cleave.predictor.block_count"
#define K_N_EMBD "cleave.predictor.embedding_length"
#define K_ACT "cleave.predictor.ffn_activation"
#define K_SPARSITY "cleave.predictor.sparsity"
#define K_SELECTION "cleave.predictor.selection"
#define K_RECALL_TARGET "cleave.predictor.target_recall"
#define K_N_FF "cleave.predictor.feed_forward_length"
#define K_RANK "cleave.predictor.rank"
#define K_LOGIT_T "cleave.predictor.logit_threshold"
#define K_ACT_T "cleave.predictor.act_threshold"
#define K_RECALL "cleave.predictor.recall"
#define K_PRECISION "cleave.predictor.precision"
#define K_PRED_SHARE "cleave.predictor.predicted_share"
#define K_ACT_SHARE "cleave.predictor.active_share"
#define K_N_TRAIN "cleave.predictor.n_train"
#define K_N_HOLDOUT "cleave.predictor.n_holdout"
#define K_Z_LIMIT "cleave.predictor.z_limit" /* optional: files before the guard lack it */

/* --- writing --------------------------------------------------------------------- */

clv_status clv_predictor_save(const clv_predictor_set *s, const char *path) {
    int64_t n = s->n_layer;
    int64_t *n_ff = malloc((size_t)n * sizeof *n_ff), *rank = malloc((size_t)n * sizeof *rank);
    int64_t *n_train = malloc((size_t)n * sizeof *n_train), *n_hold = malloc((size_t)n * sizeof *n_hold);
    float *f32[6], *z_limit = malloc((size_t)n * sizeof(float));
    for (int i = 0; i < 6; i++) f32[i] = malloc((size_t)n * sizeof(float));
    clv_gguf_writer *w = NULL;
    clv_status st = CLV_OK;
    for (int i = 0; i < 6; i++) {
        if (!f32[i]) st = CLV_ERR_NOMEM;
    }
    if (st || !n_ff || !rank || !n_train || !n_hold || !z_limit) {
        st = clv_fail(CLV_ERR_NOMEM, "%s: out of memory", path);
        goto done;
    }
    for (int64_t il = 0; il < n; il++) {
        const clv_predictor_layer *L = &s->layers[il];
        n_ff[il] = L->n_ff, rank[il] = L->rank, n_train[il] = L->n_train, n_hold[il] = L->n_holdout;
        f32[0][il] = L->logit_threshold, f32[1][il] = L->act_threshold, f32[2][il] = L->recall;
        f32[3][il] = L->precision, f32[4][il] = L->predicted_share, f32[5][il] = L->active_share;
        z_limit[il] = L->rank > 0 ? L->z_limit : 0.0f;
    }
    clv_gguf_writer_params wp = clv_gguf_writer_default_params();
    st = clv_gguf_writer_open(path, &wp, &w);
    if (!st) st = clv_gguf_writer_set_str(w, K_TYPE, "predictor");
    if (!st) st = clv_gguf_writer_set_u32(w, K_VERSION, PREDICTOR_VERSION);
    if (!st) st = clv_gguf_writer_set_str(w, K_ARCH, s->arch);
    if (!st) st = clv_gguf_writer_set_str(w, K_NAME, s->model_name);
    if (!st) st = clv_gguf_writer_set_u32(w, K_N_LAYER, (uint32_t)n);
    if (!st) st = clv_gguf_writer_set_u32(w, K_N_EMBD, (uint32_t)s->n_embd);
    if (!st) st = clv_gguf_writer_set_i32(w, K_ACT, s->act);
    if (!st) st = clv_gguf_writer_set_f32(w, K_SPARSITY, s->sparsity);
    if (!st) st = clv_gguf_writer_set_str(w, K_SELECTION, s->top_k ? "top-k" : "threshold");
    if (!st) st = clv_gguf_writer_set_f32(w, K_RECALL_TARGET, s->target_recall);
    if (!st) st = clv_gguf_writer_set_arr(w, K_N_FF, CLV_GGUF_I64, n_ff, (uint64_t)n);
    if (!st) st = clv_gguf_writer_set_arr(w, K_RANK, CLV_GGUF_I64, rank, (uint64_t)n);
    const char *fkeys[6] = {K_LOGIT_T, K_ACT_T, K_RECALL, K_PRECISION, K_PRED_SHARE, K_ACT_SHARE};
    for (int i = 0; i < 6 && !st; i++) st = clv_gguf_writer_set_arr(w, fkeys[i], CLV_GGUF_F32, f32[i], (uint64_t)n);
    if (!st) st = clv_gguf_writer_set_arr(w, K_Z_LIMIT, CLV_GGUF_F32, z_limit, (uint64_t)n);
    if (!st) st = clv_gguf_writer_set_arr(w, K_N_TRAIN, CLV_GGUF_I64, n_train, (uint64_t)n);
    if (!st) st = clv_gguf_writer_set_arr(w, K_N_HOLDOUT, CLV_GGUF_I64, n_hold, (uint64_t)n);
    for (int64_t il = 0; il < n && !st; il++) {
        const clv_predictor_layer *L = &s->layers[il];
        if (L->rank <= 0) continue;
        char name[CLV_GGUF_MAX_NAME + 1];
        int64_t ne_w1[2] = {s->n_embd, L->rank}, ne_b1[1] = {L->rank};
        int64_t ne_w2[2] = {L->rank, L->n_ff}, ne_b2[1] = {L->n_ff};
        snprintf(name, sizeof name, "blk.%lld.pred_w1", (long long)il);
        st = clv_gguf_writer_add_tensor(w, name, L->w1.type, 2, ne_w1);
        snprintf(name, sizeof name, "blk.%lld.pred_b1", (long long)il);
        if (!st) st = clv_gguf_writer_add_tensor(w, name, CLV_TYPE_F32, 1, ne_b1);
        snprintf(name, sizeof name, "blk.%lld.pred_w2", (long long)il);
        if (!st) st = clv_gguf_writer_add_tensor(w, name, L->w2.type, 2, ne_w2);
        snprintf(name, sizeof name, "blk.%lld.pred_b2", (long long)il);
        if (!st) st = clv_gguf_writer_add_tensor(w, name, CLV_TYPE_F32, 1, ne_b2);
        if (L->z_limit > 0) {
            int64_t ne_x[1] = {s->n_embd};
            snprintf(name, sizeof name, "blk.%lld.pred_x_mean", (long long)il);
            if (!st) st = clv_gguf_writer_add_tensor(w, name, CLV_TYPE_F32, 1, ne_x);
            snprintf(name, sizeof name, "blk.%lld.pred_x_inv_sd", (long long)il);
            if (!st) st = clv_gguf_writer_add_tensor(w, name, CLV_TYPE_F32, 1, ne_x);
        }
    }
    if (!st) st = clv_gguf_writer_begin_data(w);
    for (int64_t il = 0; il < n && !st; il++) {
        const clv_predictor_layer *L = &s->layers[il];
        if (L->rank <= 0) continue;
        st = clv_gguf_writer_write(w, L->w1.data, L->w1.bytes);
        if (!st) st = clv_gguf_writer_write(w, L->b1, (uint64_t)L->rank * sizeof(float));
        if (!st) st = clv_gguf_writer_write(w, L->w2.data, L->w2.bytes);
        if (!st) st = clv_gguf_writer_write(w, L->b2, (uint64_t)L->n_ff * sizeof(float));
        if (!st && L->z_limit > 0) {
            st = clv_gguf_writer_write(w, L->x_mean, (uint64_t)s->n_embd * sizeof(float));
            if (!st) st = clv_gguf_writer_write(w, L->x_inv_sd, (uint64_t)s->n_embd * sizeof(float));
        }
    }
    if (!st) {
        st = clv_gguf_writer_finish(w); /* frees w */
        w = NULL;
    }
done:
    clv_gguf_writer_free(w);
    free(n_ff);
    free(rank);
    free(n_train);
    free(n_hold);
    for (int i = 0; i < 6; i++) free(f32[i]);
    free(z_limit);
    return st;
}

/* --- reading ------------------------------------------------------------------------ */

/* A numeric array of n_layer elements of elem_type, copied to dst (the
 * reader's packed data need not be aligned). */
static clv_status get_layer_arr(const clv_gguf *g, const char *path, const char *key, int32_t elem_type,
                                int64_t n_layer, void *dst) {
    const clv_gguf_value *v = NULL;
    clv_status st = clv_gguf_get_arr(g, key, elem_type, &v);
    if (st) {
        clv_error_prefix("%s: not a valid predictor file: ", path);
        return CLV_ERR_FORMAT;
    }
    if (v->v.arr.count != (uint64_t)n_layer) {
        return clv_fail(CLV_ERR_FORMAT, "%s: %s has %llu entries for %lld layers", path, key,
                        (unsigned long long)v->v.arr.count, (long long)n_layer);
    }
    memcpy(dst, v->v.arr.data, (size_t)n_layer * clv_gguf_value_type_size(elem_type));
    return CLV_OK;
}

/* Reads tensor `name` of `type` and shape {ne0, ne1} (ne1 0: 1-D) into dst. */
static clv_status read_tensor(const clv_gguf *g, const char *path, const char *name, int32_t type, int64_t ne0,
                              int64_t ne1, void *dst, uint64_t bytes) {
    const clv_gguf_tensor *t = clv_gguf_find_tensor(g, name);
    if (!t) return clv_fail(CLV_ERR_FORMAT, "%s: tensor '%s' is missing", path, name);
    uint32_t want_dims = ne1 ? 2 : 1;
    if (t->type != type || t->n_dims != want_dims || t->ne[0] != ne0 || (ne1 && t->ne[1] != ne1) || t->size != bytes) {
        return clv_fail(CLV_ERR_FORMAT, "%s: tensor '%s' is %s {%lld, %lld}, expected %s {%lld, %lld}", path, name,
                        clv_type_name(t->type), (long long)t->ne[0], (long long)t->ne[1], clv_type_name(type),
                        (long long)ne0, (long long)(ne1 ? ne1 : 1));
    }
    clv_status st = clv_gguf_read_tensor(g, t, 0, dst, bytes);
    if (st) clv_error_prefix("%s: tensor '%s': ", path, name);
    return st;
}

static bool fp16_finite(const uint16_t *h, uint64_t n) {
    for (uint64_t i = 0; i < n; i++) {
        if ((h[i] & 0x7c00u) == 0x7c00u) return false;
    }
    return true;
}

/* Every value of a predictor weight finite: F16 elements, or the per-block
 * F16 scales of Q8_0 and Q4_0 (first in their blocks; the integer values
 * always are). */
static bool weight_finite(const clv_weight *w) {
    if (w->type == CLV_TYPE_F16) return fp16_finite(w->data, (uint64_t)(w->ne[0] * w->ne[1]));
    CLV_ASSERT(w->type == CLV_TYPE_Q8_0 || w->type == CLV_TYPE_Q4_0);
    const uint8_t *p = w->data;
    const clv_type_info *ti = clv_type_get(w->type);
    uint64_t n_blocks = w->bytes / (uint64_t)ti->block_bytes;
    for (uint64_t b = 0; b < n_blocks; b++) {
        uint16_t d;
        memcpy(&d, p + b * (uint64_t)ti->block_bytes, sizeof d);
        if (!fp16_finite(&d, 1)) return false;
    }
    return true;
}

static bool f32_finite(const float *v, uint64_t n) {
    for (uint64_t i = 0; i < n; i++) {
        if (!isfinite(v[i])) return false;
    }
    return true;
}

static clv_status load_from(const clv_gguf *g, const char *path, clv_predictor_set **out) {
    const char *type = NULL;
    if (clv_gguf_get_str(g, K_TYPE, &type) || strcmp(type, "predictor") != 0) {
        return clv_fail(CLV_ERR_FORMAT, "%s: not a predictor file (general.type is %s%s%s)", path, type ? "'" : "",
                        type ? type : "absent", type ? "'" : "");
    }
    uint32_t version = 0, n_layer = 0, n_embd = 0;
    if (clv_gguf_get_u32(g, K_VERSION, &version)) {
        clv_error_prefix("%s: not a valid predictor file: ", path);
        return CLV_ERR_FORMAT;
    }
    if (version != PREDICTOR_VERSION) {
        return clv_fail(CLV_ERR_UNSUPPORTED, "%s: predictor file version %u (this cleave reads version %d)", path,
                        version, PREDICTOR_VERSION);
    }
    if (clv_gguf_get_u32(g, K_N_LAYER, &n_layer) || clv_gguf_get_u32(g, K_N_EMBD, &n_embd)) {
        clv_error_prefix("%s: not a valid predictor file: ", path);
        return CLV_ERR_FORMAT;
    }
    if (n_layer < 1 || n_layer > CLV_MAX_LAYERS || n_embd < 1 || n_embd > (1u << 20)) {
        return clv_fail(CLV_ERR_FORMAT, "%s: implausible shape: %u layers, n_embd %u", path, n_layer, n_embd);
    }
    int64_t n_ff[CLV_MAX_LAYERS], rank[CLV_MAX_LAYERS], n_train[CLV_MAX_LAYERS], n_hold[CLV_MAX_LAYERS];
    float f32[6][CLV_MAX_LAYERS];
    const char *fkeys[6] = {K_LOGIT_T, K_ACT_T, K_RECALL, K_PRECISION, K_PRED_SHARE, K_ACT_SHARE};
    clv_status st = get_layer_arr(g, path, K_N_FF, CLV_GGUF_I64, n_layer, n_ff);
    if (!st) st = get_layer_arr(g, path, K_RANK, CLV_GGUF_I64, n_layer, rank);
    if (!st) st = get_layer_arr(g, path, K_N_TRAIN, CLV_GGUF_I64, n_layer, n_train);
    if (!st) st = get_layer_arr(g, path, K_N_HOLDOUT, CLV_GGUF_I64, n_layer, n_hold);
    for (int i = 0; i < 6 && !st; i++) st = get_layer_arr(g, path, fkeys[i], CLV_GGUF_F32, n_layer, f32[i]);
    float z_limit[CLV_MAX_LAYERS] = {0};
    bool has_guard = clv_gguf_find(g, K_Z_LIMIT) != NULL;
    if (!st && has_guard) st = get_layer_arr(g, path, K_Z_LIMIT, CLV_GGUF_F32, n_layer, z_limit);
    if (st) return st;

    clv_predictor_set *s = NULL;
    st = clv_pred_set_alloc(n_layer, n_embd, &s);
    if (st) return st;
    const char *arch = NULL, *name = NULL;
    if (!clv_gguf_get_str(g, K_ARCH, &arch)) snprintf(s->arch, sizeof s->arch, "%s", arch);
    if (!clv_gguf_get_str(g, K_NAME, &name)) snprintf(s->model_name, sizeof s->model_name, "%s", name);
    clv_clear_error();
    int32_t act = 0;
    float sparsity = 0, target = 0;
    if (clv_gguf_get_i32(g, K_ACT, &act) || clv_gguf_get_f32(g, K_SPARSITY, &sparsity) ||
        clv_gguf_get_f32(g, K_RECALL_TARGET, &target)) {
        clv_error_prefix("%s: not a valid predictor file: ", path);
        st = CLV_ERR_FORMAT;
        goto fail;
    }
    if (!(sparsity >= 0 && sparsity < 1)) {
        st = clv_fail(CLV_ERR_FORMAT, "%s: %s = %g is outside [0, 1)", path, K_SPARSITY, (double)sparsity);
        goto fail;
    }
    s->act = act, s->sparsity = sparsity, s->target_recall = target;
    /* absent in files from before per-token top-k: those select by threshold */
    if (clv_gguf_find(g, K_SELECTION)) {
        const char *sel = NULL;
        if (clv_gguf_get_str(g, K_SELECTION, &sel) || (strcmp(sel, "top-k") && strcmp(sel, "threshold"))) {
            clv_clear_error();
            st = clv_fail(CLV_ERR_FORMAT, "%s: %s is not \"top-k\" or \"threshold\"", path, K_SELECTION);
            goto fail;
        }
        s->top_k = !strcmp(sel, "top-k");
    }
    for (int64_t il = 0; il < n_layer; il++) {
        clv_predictor_layer *L = &s->layers[il];
        for (int i = 0; i < 6; i++) {
            if (!isfinite(f32[i][il])) {
                st = clv_fail(CLV_ERR_FORMAT, "%s: %s[%lld] is not finite", path, fkeys[i], (long long)il);
                goto fail;
            }
        }
        if (n_ff[il] < 0 || n_ff[il] > MAX_N_FF || rank[il] < 0 || rank[il] > MAX_RANK ||
            (rank[il] > 0 && n_ff[il] == 0) || n_train[il] < 0 || n_hold[il] < 0) {
            st = clv_fail(CLV_ERR_FORMAT, "%s: layer %lld: implausible n_ff %lld, rank %lld or sample counts", path,
                          (long long)il, (long long)n_ff[il], (long long)rank[il]);
            goto fail;
        }
        L->n_ff = n_ff[il];
        L->logit_threshold = f32[0][il], L->act_threshold = f32[1][il], L->recall = f32[2][il];
        L->precision = f32[3][il], L->predicted_share = f32[4][il], L->active_share = f32[5][il];
        L->n_train = n_train[il], L->n_holdout = n_hold[il];
        if (rank[il] > 0) {
            char tn[CLV_GGUF_MAX_NAME + 1];
            snprintf(tn, sizeof tn, "blk.%lld.pred_w1", (long long)il);
            /* the weights' type is w1's; w2 must match it (read_tensor checks) */
            const clv_gguf_tensor *t1 = clv_gguf_find_tensor(g, tn);
            if (!t1) {
                st = clv_fail(CLV_ERR_FORMAT, "%s: tensor '%s' is missing", path, tn);
                goto fail;
            }
            if (!clv_predictor_weight_type_ok(t1->type, n_embd, rank[il])) {
                st = clv_fail(CLV_ERR_FORMAT, "%s: tensor '%s' is %s; predictor weights are F16, or Q8_0 or Q4_0 for "
                                              "shapes of whole blocks",
                              path, tn, clv_type_name(t1->type));
                goto fail;
            }
            if ((st = clv_predictor_layer_alloc(s, il, rank[il], t1->type))) goto fail;
            int64_t r = L->rank, f = L->n_ff;
            st = read_tensor(g, path, tn, L->w1.type, n_embd, r, (void *)(uintptr_t)L->w1.data, L->w1.bytes);
            snprintf(tn, sizeof tn, "blk.%lld.pred_b1", (long long)il);
            if (!st) st = read_tensor(g, path, tn, CLV_TYPE_F32, r, 0, L->b1, (uint64_t)r * sizeof(float));
            snprintf(tn, sizeof tn, "blk.%lld.pred_w2", (long long)il);
            if (!st) st = read_tensor(g, path, tn, L->w2.type, r, f, (void *)(uintptr_t)L->w2.data, L->w2.bytes);
            snprintf(tn, sizeof tn, "blk.%lld.pred_b2", (long long)il);
            if (!st) st = read_tensor(g, path, tn, CLV_TYPE_F32, f, 0, L->b2, (uint64_t)f * sizeof(float));
            if (st) goto fail;
            if (has_guard && !(z_limit[il] >= 0 && isfinite(z_limit[il]))) {
                st = clv_fail(CLV_ERR_FORMAT, "%s: %s[%lld] = %g is not a z-score limit", path, K_Z_LIMIT,
                              (long long)il, (double)z_limit[il]);
                goto fail;
            }
            if (z_limit[il] > 0) {
                L->z_limit = z_limit[il];
                snprintf(tn, sizeof tn, "blk.%lld.pred_x_mean", (long long)il);
                st = read_tensor(g, path, tn, CLV_TYPE_F32, n_embd, 0, L->x_mean, (uint64_t)n_embd * sizeof(float));
                snprintf(tn, sizeof tn, "blk.%lld.pred_x_inv_sd", (long long)il);
                if (!st)
                    st = read_tensor(g, path, tn, CLV_TYPE_F32, n_embd, 0, L->x_inv_sd,
                                     (uint64_t)n_embd * sizeof(float));
                if (st) goto fail;
                for (int64_t i = 0; i < (int64_t)n_embd; i++) {
                    if (!isfinite(L->x_mean[i]) || !(L->x_inv_sd[i] > 0) || !isfinite(L->x_inv_sd[i])) {
                        st = clv_fail(CLV_ERR_FORMAT, "%s: layer %lld: the guard's input statistics hold "
                                                      "non-finite or non-positive values",
                                      path, (long long)il);
                        goto fail;
                    }
                }
            }
            if (!weight_finite(&L->w1) || !weight_finite(&L->w2) ||
                !f32_finite(L->b1, (uint64_t)r) || !f32_finite(L->b2, (uint64_t)f)) {
                st = clv_fail(CLV_ERR_FORMAT, "%s: layer %lld: the predictor's weights hold non-finite values", path,
                              (long long)il);
                goto fail;
            }
        }
        clv_pred_refresh_view(s, il);
    }
    *out = s;
    return CLV_OK;
fail:
    clv_predictor_free(s);
    return st;
}

clv_status clv_predictor_load(const char *path, const clv_model *m, clv_predictor_set **out) {
    *out = NULL;
    clv_gguf_params gp = clv_gguf_default_params();
    gp.use_mmap = false;
    gp.load_splits = false;
    clv_gguf *g = NULL;
    clv_status st = clv_gguf_open(path, &gp, &g);
    if (st) return st;
    clv_predictor_set *s = NULL;
    st = load_from(g, path, &s);
    clv_gguf_free(g);
    if (!st && m) {
        st = clv_predictor_check_model(s, m);
        if (st) {
            clv_error_prefix("%s: ", path);
            clv_predictor_free(s);
            s = NULL;
        }
    }
    *out = s;
    return st;
}
