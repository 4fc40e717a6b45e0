/* Device memory under a budget (kernels/cuda/vram.h, runtime/gpu_state.h):
 * - the allocator refuses what would pass its budget and counts use and peak;
 * - a fixture model with a budget one byte below its need is refused with a
 *   message naming the need, its parts and the budget, and the device's free
 *   memory (cudaMemGetInfo) is what it was: nothing was allocated;
 * - with exactly its need it is uploaded: the bytes counted are the weights
 *   (each aligned), the KV cache and the scratch, the device's free memory
 *   falls by no more than that (plus the driver's rounding), the weights
 *   read back equal the file's, and freeing gives the memory back;
 * - an allocation failing part-way (injected) frees what was taken;
 * - a GPU context (clv_context_params.gpu) over budget is refused the same way.
 * Skips without a CUDA device. */
#include <cuda_runtime_api.h>

#include "context.h"
#include "gpu_state.h"
#include "model.h"
#include "test.h"
#include "types.h"
#include "vram.h"

/* What the driver may keep or round beyond the bytes asked for: 2 MiB pages
 * for each of the few allocations, and a stream's own memory. Refusals must
 * leave free memory exactly as it was; after a free it must come back to
 * within this. */
#define DRIVER_SLACK (8ull << 20)

static bool about(uint64_t a, uint64_t b) { return a + DRIVER_SLACK >= b && b + DRIVER_SLACK >= a; }

static uint64_t device_free(void) {
    size_t f = 0, t = 0;
    CHECK(cudaMemGetInfo(&f, &t) == cudaSuccess);
    return f;
}

static void test_allocator(void) {
    clv_vram_params vp = clv_vram_default_params();
    vp.budget = 3 * 1024;
    clv_vram *v = NULL;
    CHECK_STATUS(clv_vram_create(&vp, &v), CLV_OK);
    if (!v) return;
    CHECK_EQ_INT(clv_vram_budget(v), 3 * 1024);
    void *a = NULL, *b = NULL, *c = NULL;
    CHECK_STATUS(clv_vram_alloc(v, 1000, "a", &a), CLV_OK); /* counts 1024 */
    CHECK((uintptr_t)a % CLV_VRAM_ALIGN == 0);
    CHECK_STATUS(clv_vram_alloc(v, 2048, "b", &b), CLV_OK);
    CHECK_EQ_INT(clv_vram_used(v), 3 * 1024);
    CHECK_STATUS(clv_vram_alloc(v, 1, "one byte more", &c), CLV_ERR_BUDGET);
    CHECK(c == NULL);
    CHECK_MSG(strstr(clv_last_error(), "one byte more") && strstr(clv_last_error(), "--vram"), "%s",
              clv_last_error());
    clv_vram_release(v, a);
    CHECK_EQ_INT(clv_vram_used(v), 2048);
    CHECK_STATUS(clv_vram_alloc(v, 1024, "c", &c), CLV_OK);
    CHECK_EQ_INT(clv_vram_peak(v), 3 * 1024);
    /* Zeroed. */
    unsigned char host[1024];
    memset(host, 0xab, sizeof host);
    CHECK_STATUS(clv_vram_to_host(host, c, sizeof host, NULL), CLV_OK);
    bool zero = true;
    for (size_t i = 0; i < sizeof host; i++) zero &= host[i] == 0;
    CHECK(zero);
    clv_vram_free(v); /* b and c still held: freed here */
    clv_vram_free(NULL);

    /* The default budget: free memory minus the margin. */
    uint64_t f = 0, t = 0;
    CHECK_STATUS(clv_vram_device_info(0, &f, &t, NULL, 0), CLV_OK);
    CHECK_STATUS(clv_vram_create(NULL, &v), CLV_OK);
    if (v) {
        uint64_t want = f > clv_vram_margin(t) ? f - clv_vram_margin(t) : 0;
        /* Free memory may move a little between the two reads. */
        CHECK_MSG(clv_vram_budget(v) <= want + (64u << 20) && clv_vram_budget(v) + (64u << 20) >= want,
                  "default budget %llu, free %llu - margin %llu", (unsigned long long)clv_vram_budget(v),
                  (unsigned long long)f, (unsigned long long)clv_vram_margin(t));
    }
    clv_vram_free(v);
    CHECK(clv_vram_margin(0) == 512ull << 20);
    CHECK(clv_vram_margin(100ull << 30) == 5ull << 30);
    CHECK_STATUS(clv_vram_device_info(1 << 20, &f, &t, NULL, 0), CLV_ERR_UNSUPPORTED);
}

static void check_model(const char *file) {
    char path[8192];
    snprintf(path, sizeof path, "%s/tests/data/arch/%s", CLEAVE_SOURCE_DIR, file);
    clv_model *m = NULL;
    CHECK_STATUS(clv_model_load(path, NULL, &m), CLV_OK);
    if (!m) return;
    const clv_hparams *hp = &m->hp;
    clv_gpu_params p = clv_gpu_default_params();
    p.n_ctx = 256;
    p.kv_type = CLV_TYPE_F16;
    clv_gpu_need need;
    clv_gpu_need_of(m, &p, &need);
    uint64_t weights = 0, kv = 0;
    for (int64_t i = 0; i < m->n_weights; i++) weights += clv_vram_round(m->weights[i].bytes);
    for (int64_t il = 0; il < hp->n_layer; il++) {
        kv += clv_vram_round((uint64_t)(p.n_ctx * hp->n_head_kv[il] * hp->n_embd_head_k) * 2);
        kv += clv_vram_round((uint64_t)(p.n_ctx * hp->n_head_kv[il] * hp->n_embd_head_v) * 2);
    }
    CHECK_EQ_INT(need.weights, weights);
    CHECK(need.weights >= m->weight_bytes);
    CHECK_EQ_INT(need.kv, kv);
    CHECK(need.scratch >= (uint64_t)hp->n_vocab * 4);
    CHECK_EQ_INT(need.total, need.weights + need.kv + need.scratch);

    /* One byte short: refused, nothing allocated. */
    uint64_t free0 = device_free();
    clv_gpu_state *g = NULL;
    p.vram_budget = need.total - 1;
    CHECK_STATUS(clv_gpu_state_create(m, &p, &g), CLV_ERR_BUDGET);
    CHECK(g == NULL);
    const char *msg = clv_last_error();
    CHECK_MSG(strstr(msg, "model needs") && strstr(msg, "iB of VRAM") && strstr(msg, "weights") &&
                  strstr(msg, "KV cache") && strstr(msg, "scratch") && strstr(msg, "--vram is"),
              "%s", msg);
    printf("%s, budget one byte short: %s\n", file, msg);
    uint64_t free1 = device_free();
    CHECK_MSG(free1 == free0, "%s: free device memory %llu before the refusal, %llu after", file,
              (unsigned long long)free0, (unsigned long long)free1);

    /* Exactly the need: uploaded, every byte counted. */
    p.vram_budget = need.total;
    CHECK_STATUS(clv_gpu_state_create(m, &p, &g), CLV_OK);
    if (g) {
        CHECK_EQ_INT(clv_vram_used(g->vram), need.total);
        CHECK_EQ_INT(clv_vram_peak(g->vram), need.total);
        CHECK_EQ_INT(clv_vram_budget(g->vram), need.total);
        /* The promise: no more than the budget taken from the device. */
        uint64_t free2 = device_free();
        CHECK_MSG(free2 + need.total + DRIVER_SLACK >= free0, "%s: device free memory fell by %lld, the need is %llu",
                  file, (long long)(free0 - free2), (unsigned long long)need.total);
        for (int64_t i = 0; i < m->n_weights; i++) {
            const clv_weight *w = &m->weights[i];
            const void *d = clv_gpu_weight(g, w);
            CHECK((uintptr_t)d % CLV_VRAM_ALIGN == 0);
            void *back = malloc(w->bytes);
            CHECK_STATUS(clv_vram_to_host(back, d, w->bytes, NULL), CLV_OK);
            CHECK_MSG(memcmp(back, w->data, w->bytes) == 0, "%s: %s differs on the device", file, w->name);
            free(back);
        }
        for (int64_t il = 0; il < hp->n_layer; il++) CHECK(g->k_cache[il] && g->v_cache[il]);
        CHECK(g->s.x && g->s.logits && g->s.io);
    }
    clv_gpu_state_free(g);
    g = NULL;
    uint64_t free3 = device_free();
    CHECK_MSG(about(free3, free0), "%s: free device memory %llu before, %llu after freeing", file,
              (unsigned long long)free0, (unsigned long long)free3);

    /* The KV cache's allocation (the 2nd) or the scratch's (3rd) fails. */
    for (int at = 2; at <= 3; at++) {
        p.fail_alloc_at = at;
        CHECK_STATUS(clv_gpu_state_create(m, &p, &g), CLV_ERR_DEVICE);
        CHECK(g == NULL);
        CHECK_MSG(strstr(clv_last_error(), at == 2 ? "KV cache" : "scratch"), "%s", clv_last_error());
        uint64_t free4 = device_free();
        CHECK_MSG(about(free4, free0), "%s: allocation %d failing: free device memory %llu before, %llu after", file, at,
                  (unsigned long long)free0, (unsigned long long)free4);
    }
    p.fail_alloc_at = 0;

    /* Through a context. */
    clv_context_params cp = clv_context_default_params();
    cp.n_ctx = p.n_ctx;
    cp.gpu = true;
    cp.vram_budget = need.total / 2;
    clv_context *ctx = NULL;
    uint64_t free_ctx = device_free();
    CHECK_STATUS(clv_context_create(m, &cp, &ctx), CLV_ERR_BUDGET);
    CHECK(ctx == NULL);
    CHECK_MSG(strstr(clv_last_error(), "--vram is"), "%s", clv_last_error());
    uint64_t free5 = device_free();
    CHECK_MSG(free5 == free_ctx, "%s: a refused GPU context left device memory allocated (%llu free before, %llu "
              "after)", file, (unsigned long long)free_ctx, (unsigned long long)free5);
    cp.vram_budget = 0; /* the default: plenty for a fixture */
    CHECK_STATUS(clv_context_create(m, &cp, &ctx), CLV_OK);
    /* a context's scratch holds n_batch tokens and the tensor-core workspace */
    if (ctx) {
        clv_gpu_params pc = p;
        pc.n_batch = ctx->params.n_batch; /* the context's, after it capped it to n_ctx */
        pc.logits_all = ctx->params.logits_all;
        clv_gpu_need need_ctx;
        clv_gpu_need_of(m, &pc, &need_ctx);
        CHECK(need_ctx.scratch > need.scratch);
        CHECK_EQ_INT(clv_vram_used(ctx->gpu->vram), need_ctx.total);
    }
    clv_context_free(ctx);
    uint64_t free6 = device_free();
    CHECK_MSG(about(free6, free0), "%s: a freed GPU context left device memory allocated (%llu free before, %llu "
              "after)", file, (unsigned long long)free0, (unsigned long long)free6);
    printf("%s: weights %llu B, KV cache %llu B, scratch %llu B: all counted and given back\n", file,
           (unsigned long long)need.weights, (unsigned long long)need.kv, (unsigned long long)need.scratch);
    clv_model_free(m);
}

int main(void) {
    int n_dev = 0;
    if (cudaGetDeviceCount(&n_dev) != cudaSuccess || n_dev == 0) TEST_SKIP("no CUDA device");
    /* The CUDA context's own memory is taken now, before any free-memory reading. */
    if (cudaFree(0) != cudaSuccess) TEST_SKIP("CUDA device 0 is not usable");
    test_allocator();
    check_model("llama.f32.gguf");
    check_model("qwen3moe.q8_0.gguf");
    check_model("qwen2moe.q8_0.gguf");
    return test_finish("test_gpu_budget");
}
