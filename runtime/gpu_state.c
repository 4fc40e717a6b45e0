/* Device memory of a GPU context (gpu_state.h): sized first, checked against
 * the budget, then taken in three allocations (weights, KV cache, scratch),
 * each carved into aligned pieces. */
#include "gpu_state.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_attention.h"
#include "cuda_dequantize.h"
#include "cuda_graph.h"
#include "human_size.h"
#include "cuda_matmul.h"
#include "types.h"
#include "vram.h"

clv_gpu_params clv_gpu_default_params(void) {
    return (clv_gpu_params){.device = 0, .vram_budget = 0, .n_ctx = 4096, .kv_type = CLV_TYPE_F16, .n_batch = 1};
}

static int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }
/* Sizes in messages (clv_human_size); eight rotating buffers, so one
 * message can hold several. */
static const char *size_str(uint64_t b) {
    static _Thread_local char buf[8][CLV_HUMAN_SIZE_MAX];
    static _Thread_local int next;
    return clv_human_size(b, buf[next++ & 7], CLV_HUMAN_SIZE_MAX);
}

/* Hands out aligned pieces of one allocation; with base 0 it only counts,
 * so sizing and carving are the same code. */
typedef struct carve {
    uintptr_t base;
    uint64_t off;
} carve;

static void *take(carve *c, uint64_t bytes) {
    void *p = c->base ? (void *)(c->base + (uintptr_t)c->off) : NULL;
    c->off += clv_vram_round(bytes ? bytes : 1);
    return p;
}

/* The most tiles a grouping of A assignments over E experts makes (each
 * expert's rows in tiles of CLV_CUDA_EXPERT_TILE_ROWS, the last one short). */
static uint64_t max_tiles(uint64_t A, uint64_t E) { return A / CLV_CUDA_EXPERT_TILE_ROWS + E + 1; }

/* s.moe_map's int32s for A assignments of E experts: the grouping [2][A],
 * then its tiles for clv_cuda_matmul_experts (3 ints each). */
static uint64_t moe_map_ints(uint64_t A, uint64_t E) { return 2 * A + 3 * max_tiles(A, E); }

static uint64_t kv_elem(int32_t kv_type) { return kv_type == CLV_TYPE_F32 ? 4 : 2; }

/* The attention kernel's scratch for n_ctx keys, for the widest layer. */
static uint64_t attention_scratch(const clv_model *m, const clv_gpu_params *p) {
    const clv_hparams *hp = &m->hp;
    uint64_t most = 0;
    for (int64_t il = 0; il < hp->n_layer; il++) {
        clv_cuda_attention_shape sh = {p->kv_type, hp->n_head, hp->n_head_kv[il], hp->n_embd_head_k};
        uint64_t b = clv_cuda_attention_scratch_bytes(&sh, p->n_ctx);
        if (b > most) most = b;
    }
    return most;
}

static void scratch_layout(const clv_model *m, const clv_gpu_params *p, carve *c, clv_gpu_scratch *s) {
    const clv_hparams *hp = &m->hp;
    int64_t max_ff = hp->n_ff_shexp, max_kv = 1;
    for (int64_t il = 0; il < hp->n_layer; il++) {
        max_ff = max64(max_ff, hp->n_ff[il]);
        max_kv = max64(max_kv, hp->n_head_kv[il]);
    }
    int64_t q_width = hp->n_head * hp->n_embd_head_k, o_width = hp->n_head * hp->n_embd_head_v;
    int64_t wide = max64(max64(hp->n_embd, q_width), o_width);
    int64_t E = hp->n_expert, K = hp->n_expert_used ? hp->n_expert_used : 1;
    const uint64_t f = sizeof(float), B = (uint64_t)p->n_batch;
    s->x = take(c, B * (uint64_t)hp->n_embd * f);
    s->xb = take(c, B * (uint64_t)wide * f);
    s->xb2 = take(c, B * (uint64_t)wide * f);
    s->q = take(c, B * (uint64_t)q_width * f);
    s->k = take(c, B * (uint64_t)(max_kv * hp->n_embd_head_k) * f);
    s->v = take(c, B * (uint64_t)(max_kv * hp->n_embd_head_v) * f);
    s->attn = take(c, B * (uint64_t)wide * f); /* also the routed-expert sum */
    s->ffn_a = take(c, B * (uint64_t)max_ff * f);
    s->ffn_b = take(c, B * (uint64_t)max_ff * f);
    uint64_t A = E ? B * (uint64_t)K : 0;
    s->router = take(c, B * (uint64_t)E * f);
    s->expert_ids = take(c, A * sizeof(int32_t));
    s->expert_w = take(c, A * f);
    s->moe_map = take(c, moe_map_ints(A, (uint64_t)E) * sizeof(int32_t));
    bool gather = A && !clv_gpu_moe_one_launch(hp->n_embd, hp->n_ff_exp, (int64_t)max_tiles(A, (uint64_t)E));
    s->moe_x = gather ? take(c, A * (uint64_t)hp->n_embd * f) : NULL;
    s->moe_a = take(c, A * (uint64_t)hp->n_ff_exp * f);
    s->moe_b = take(c, A * (uint64_t)hp->n_ff_exp * f);
    s->moe_c = take(c, A * (uint64_t)hp->n_embd * f);
    s->logits = take(c, (p->logits_all ? B : 1) * (uint64_t)hp->n_vocab * f);
    s->io = take(c, 2 * B * sizeof(int32_t));
    s->route_done = take(c, B * sizeof(uint32_t)); /* zeroed with the allocation */
    s->attn_partial_bytes = (size_t)attention_scratch(m, p);
    s->attn_partial = s->attn_partial_bytes ? take(c, s->attn_partial_bytes) : NULL;
    /* Tensor-core products for batches: a workspace for the widest input and
     * the most rows of any 2-D weight (a bound: every product fits). */
    s->matmul_ws_bytes = 0;
    s->matmul_ws = NULL;
    if (p->n_batch >= CLV_GPU_MATMUL_MIN_TOKENS) {
        int64_t n_in = 1, n_rows = 1;
        for (int64_t i = 0; i < m->n_weights; i++) {
            n_in = max64(n_in, m->weights[i].ne[0]);
            n_rows = max64(n_rows, m->weights[i].ne[1]);
        }
        s->matmul_ws_bytes = clv_cuda_matmul_workspace_bytes(n_in, n_rows, p->n_batch);
        s->matmul_ws = s->matmul_ws_bytes ? take(c, s->matmul_ws_bytes) : NULL;
    }
}

void clv_gpu_need_of(const clv_model *m, const clv_gpu_params *p, clv_gpu_need *out) {
    const clv_hparams *hp = &m->hp;
    memset(out, 0, sizeof *out);
    for (int64_t i = 0; i < m->n_weights; i++) out->weights += clv_vram_round(m->weights[i].bytes);
    uint64_t elem = kv_elem(p->kv_type);
    for (int64_t il = 0; il < hp->n_layer; il++) {
        uint64_t rows = (uint64_t)p->n_ctx * (uint64_t)hp->n_head_kv[il];
        out->kv += clv_vram_round(rows * (uint64_t)hp->n_embd_head_k * elem);
        out->kv += clv_vram_round(rows * (uint64_t)hp->n_embd_head_v * elem);
    }
    carve c = {0, 0};
    clv_gpu_scratch s;
    scratch_layout(m, p, &c, &s);
    out->scratch = c.off;
    out->total = out->weights + out->kv + out->scratch;
}

void clv_gpu_state_free(clv_gpu_state *g) {
    if (!g) return;
    if (g->matmul) {
        (void)clv_vram_sync(g->stream); /* no product may still use the handle */
        clv_cuda_matmul_free(g->matmul);
    }
    if (g->decode_graph) (void)clv_vram_sync(g->stream); /* no replay may still run */
    clv_cuda_graph_free(g->decode_graph);
    clv_vram_stream_free(g->stream);
    clv_vram_free(g->vram); /* every allocation still held */
    free(g->io_host);
    free(g->moe_ids_host);
    free(g->moe_map_host);
    free(g->moe_offset);
    free(g->obs_x);
    free(g->obs_h);
    free(g->obs_w);
    free(g->weight_dev);
    free(g->k_cache);
    free(g->v_cache);
    free(g);
}

const void *clv_gpu_weight(const clv_gpu_state *g, const clv_weight *w) {
    const clv_model *m = g->model;
    CLV_ASSERT(w >= m->weights && w < m->weights + m->n_weights); /* a weight of this model */
    return g->weight_dev[w - m->weights];
}

/* CLV_ERR_BUDGET naming the need, its parts and the budget. */
static clv_status over_budget(const clv_gpu_params *p, const clv_gpu_need *n, uint64_t budget, uint64_t free_bytes,
                              uint64_t total_bytes) {
    char parts[256];
    snprintf(parts, sizeof parts, "weights %s, KV cache %s for %lld positions, scratch %s", size_str(n->weights),
             size_str(n->kv), (long long)p->n_ctx, size_str(n->scratch));
    if (p->vram_budget) {
        return clv_fail(CLV_ERR_BUDGET,
                        "model needs %s of VRAM (%s); --vram is %s: raise --vram, use a shorter "
                        "context (-c) or an F16 KV cache, or run on the CPU",
                        size_str(n->total), parts, size_str(budget));
    }
    return clv_fail(CLV_ERR_BUDGET,
                    "model needs %s of VRAM (%s); CUDA device %d has %s free, %s of it usable "
                    "after a margin of %s: use a shorter context (-c) or run on the CPU",
                    size_str(n->total), parts, p->device, size_str(free_bytes), size_str(budget),
                    size_str(clv_vram_margin(total_bytes)));
}

clv_status clv_gpu_state_create(const clv_model *m, const clv_gpu_params *params, clv_gpu_state **out) {
    *out = NULL;
    clv_gpu_params p = params ? *params : clv_gpu_default_params();
    const clv_hparams *hp = &m->hp;
    if (p.n_ctx < 1) return clv_fail(CLV_ERR_ARG, "GPU context: %lld positions", (long long)p.n_ctx);
    if (p.n_batch < 1 || p.n_batch > (1 << 20))
        return clv_fail(CLV_ERR_ARG, "GPU context: batches of %lld tokens", (long long)p.n_batch);
    if (p.kv_type != CLV_TYPE_F16 && p.kv_type != CLV_TYPE_F32) {
        return clv_fail(CLV_ERR_ARG, "GPU KV cache type %s is not supported (F16 or F32)", clv_type_name(p.kv_type));
    }
    for (int64_t i = 0; i < m->n_weights; i++) {
        const clv_weight *w = &m->weights[i];
        if (!clv_cuda_can_dequantize(w->type)) {
            return clv_fail(CLV_ERR_UNSUPPORTED, "%s: the GPU kernels do not decode weight type %s; run on the CPU",
                            w->name, clv_type_name(w->type));
        }
    }
    clv_gpu_need need;
    clv_gpu_need_of(m, &p, &need);

    /* The budget first: a model that does not fit takes nothing. */
    uint64_t free_bytes = 0, total_bytes = 0;
    clv_status st = clv_vram_device_info(p.device, &free_bytes, &total_bytes, NULL, 0);
    if (st) return st;
    clv_vram_params vp = clv_vram_default_params();
    vp.device = p.device;
    vp.budget = p.vram_budget;
    vp.fail_at = p.fail_alloc_at;
    clv_vram *vram = NULL;
    if ((st = clv_vram_create(&vp, &vram))) return st;
    if (need.total > clv_vram_budget(vram)) {
        st = over_budget(&p, &need, clv_vram_budget(vram), free_bytes, total_bytes);
        clv_vram_free(vram);
        return st;
    }
    if (need.total > free_bytes) {
        clv_vram_free(vram);
        return clv_fail(CLV_ERR_BUDGET,
                        "model needs %s of VRAM; --vram allows %s but CUDA device %d has only %s "
                        "free: other programs hold the rest",
                        size_str(need.total), size_str(p.vram_budget), p.device, size_str(free_bytes));
    }

    clv_gpu_state *g = calloc(1, sizeof *g);
    if (!g) {
        clv_vram_free(vram);
        return clv_fail(CLV_ERR_NOMEM, "no memory for the GPU state");
    }
    g->vram = vram;
    g->model = m;
    g->params = p;
    g->need = need;
    g->weight_dev = calloc((size_t)(m->n_weights ? m->n_weights : 1), sizeof *g->weight_dev);
    g->k_cache = calloc((size_t)hp->n_layer, sizeof *g->k_cache);
    g->v_cache = calloc((size_t)hp->n_layer, sizeof *g->v_cache);
    g->io_host = calloc(2 * (size_t)p.n_batch, sizeof *g->io_host);
    size_t A = hp->n_expert ? (size_t)p.n_batch * (size_t)hp->n_expert_used : 1;
    g->moe_ids_host = calloc(A, sizeof *g->moe_ids_host);
    g->moe_map_host = calloc(moe_map_ints(A, (uint64_t)hp->n_expert), sizeof *g->moe_map_host);
    g->moe_offset = calloc((size_t)hp->n_expert + 1, sizeof *g->moe_offset);
    if (!g->weight_dev || !g->k_cache || !g->v_cache || !g->io_host || !g->moe_ids_host || !g->moe_map_host ||
        !g->moe_offset) {
        clv_gpu_state_free(g);
        return clv_fail(CLV_ERR_NOMEM, "no memory for the GPU state");
    }
    if ((st = clv_vram_stream_create(&g->stream))) goto fail;

    /* Weights: one allocation, each tensor at an aligned offset. */
    if ((st = clv_vram_alloc(vram, need.weights, "model weights", &g->weights))) goto fail;
    carve c = {(uintptr_t)g->weights, 0};
    for (int64_t i = 0; i < m->n_weights && !st; i++) {
        const clv_weight *w = &m->weights[i];
        void *dst = take(&c, w->bytes);
        g->weight_dev[i] = dst;
        st = clv_vram_to_device(dst, w->data, w->bytes, NULL);
        if (st) clv_error_prefix("uploading %s: ", w->name);
    }
    if (st) goto fail;
    CLV_ASSERT(c.off == need.weights);

    /* KV cache: K and V of each layer in turn. */
    if ((st = clv_vram_alloc(vram, need.kv, "KV cache", &g->kv))) goto fail;
    c = (carve){(uintptr_t)g->kv, 0};
    uint64_t elem = kv_elem(p.kv_type);
    for (int64_t il = 0; il < hp->n_layer; il++) {
        uint64_t rows = (uint64_t)p.n_ctx * (uint64_t)hp->n_head_kv[il];
        g->k_cache[il] = take(&c, rows * (uint64_t)hp->n_embd_head_k * elem);
        g->v_cache[il] = take(&c, rows * (uint64_t)hp->n_embd_head_v * elem);
    }
    CLV_ASSERT(c.off == need.kv);

    if ((st = clv_vram_alloc(vram, need.scratch, "GPU scratch buffers", &g->scratch_block))) goto fail;
    c = (carve){(uintptr_t)g->scratch_block, 0};
    scratch_layout(m, &p, &c, &g->s);
    CLV_ASSERT(c.off == need.scratch);
    if (g->s.matmul_ws && (st = clv_cuda_matmul_create(g->stream, &g->matmul))) goto fail;
    /* Uploads ran on the default stream; the ops run on g->stream. */
    if ((st = clv_vram_sync(NULL))) goto fail;
    *out = g;
    return CLV_OK;
fail:
    clv_gpu_state_free(g); /* frees whatever was allocated */
    return st;
}
