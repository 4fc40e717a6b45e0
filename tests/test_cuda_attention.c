/* GPU decode attention (kernels/cuda/cuda_attention.h) against the CPU.
 *
 * Random q, K and V for head sizes 32 to 256, GQA groups 1 to 16 (powers of
 * two and not), 1 to 33,000 visible keys, F16 and F32 caches, sliding
 * windows and soft-capping. Rows the query must not see (before the window,
 * after its position) hold NaN, so reading one shows. Each case runs with
 * the full scratch (the keys split over blocks, merged by a second kernel)
 * and with none (one split, written directly).
 *
 * References: a float64 implementation of runtime/ops_cpu_attention.c's
 * semantics, fed the same F16 bits (K and V are rounded identically on both
 * sides), and, without softcap (the CPU op has none), clv_op_attention itself
 * on a context built around hand-set hyper-parameters.
 *
 * Bound: max |gpu - ref| / max |ref| <= TOL. Both sides compute in float
 * with different summation orders, so the error is float rounding of the
 * scores (about 1e-7 of sum |q_i k_i| * scale, i.e. of the logits' size)
 * carried into the softmax weights: TOL is 1e-4 for logits up to about
 * 10, and proportionally more for larger ones (the soft-capped cases).
 *
 * Prompts (clv_cuda_attention_batch): every token of a batch against the
 * float64 reference over the keys its position sees.
 *
 * Also prints, not asserts, the achieved GB/s of K and V read for 33,000
 * keys x 8 KV heads x head size 128 (a Llama-3-8B layer at a long context).
 * Skips without a CUDA device. */
#include <cuda_runtime_api.h>

#include "context.h"
#include "cuda_attention.h"
#include "fp16.h"
#include "model.h"
#include "ops.h"
#include "status.h"
#include "test.h"
#include "types.h"

#define TOL 1e-4

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static float frand(void) {
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (float)((rng >> 11) * (1.0 / 9007199254740992.0)) * 2.0f - 1.0f;
}

#define CUDA_OK(call) CHECK_MSG((call) == cudaSuccess, "%s", #call)

typedef struct attn_case {
    int64_t head_dim, n_head_kv, group; /* group: query heads per KV head */
    int64_t pos, window;                /* the query's position; sliding window (0: none) */
    int32_t kv_type;
    float logit;   /* rough standard deviation of the scores (sets q's size) */
    float softcap; /* 0: off */
    bool cpu_op;   /* also compare with clv_op_attention (no softcap there) */
} attn_case;

static size_t elem_bytes(int32_t type) { return type == CLV_TYPE_F32 ? 4 : 2; }

/* Row r of a cache as floats. */
static void decode_row(const void *cache, int32_t type, int64_t r, int64_t width, float *out) {
    if (type == CLV_TYPE_F32) {
        memcpy(out, (const float *)cache + r * width, (size_t)width * sizeof(float));
    } else {
        const uint16_t *h = (const uint16_t *)cache + r * width;
        for (int64_t i = 0; i < width; i++) out[i] = clv_fp16_to_fp32(h[i]);
    }
}

/* Rows lo..hi random in [-1, 1) (rounded to the cache's type), the others NaN. */
static void fill_cache(void *cache, int32_t type, int64_t n_rows, int64_t width, int64_t lo, int64_t hi) {
    for (int64_t r = 0; r < n_rows; r++) {
        bool seen = r >= lo && r <= hi;
        for (int64_t i = 0; i < width; i++) {
            float x = seen ? frand() : NAN;
            if (type == CLV_TYPE_F32) ((float *)cache)[r * width + i] = x;
            else ((uint16_t *)cache)[r * width + i] = clv_fp32_to_fp16(x);
        }
    }
}

/* float64 attention over the n_kv key rows kf/vf ([n_kv][n_head_kv * hd]
 * floats): score = (q . k) * scale, optionally soft-capped, softmax. */
static void reference(const attn_case *c, const float *q, const float *kf, const float *vf, int64_t n_kv, float scale,
                      double *out, double *score) {
    int64_t hd = c->head_dim, width = c->n_head_kv * hd;
    for (int64_t h = 0; h < c->n_head_kv * c->group; h++) {
        const float *qh = q + h * hd;
        int64_t kvh = h / c->group;
        double mx = -INFINITY;
        for (int64_t j = 0; j < n_kv; j++) {
            const float *k = kf + j * width + kvh * hd;
            double d4[4] = {0, 0, 0, 0}; /* four chains: several times faster, still float64 */
            for (int64_t i = 0; i < hd; i += 4) {
                for (int u = 0; u < 4; u++) d4[u] += (double)qh[i + u] * k[i + u];
            }
            double s = (d4[0] + d4[1] + d4[2] + d4[3]) * scale;
            if (c->softcap > 0) s = c->softcap * tanh(s / c->softcap);
            score[j] = s;
            if (s > mx) mx = s;
        }
        double sum = 0;
        double *o = out + h * hd;
        for (int64_t i = 0; i < hd; i++) o[i] = 0;
        for (int64_t j = 0; j < n_kv; j++) {
            double p = exp(score[j] - mx);
            const float *v = vf + j * width + kvh * hd;
            sum += p;
            for (int64_t i = 0; i < hd; i++) o[i] += p * v[i];
        }
        for (int64_t i = 0; i < hd; i++) o[i] /= sum;
    }
}

/* clv_op_attention for the query at c->pos: a one-layer context whose model
 * has only the hyper-parameters attention reads, its cache rows copied from
 * ours (row pos is stored again by the op, from the same values). */
static bool cpu_op(const attn_case *c, const float *q, const void *kc, const void *vc, const float *krow,
                   const float *vrow, float scale, float *out) {
    static clv_model m; /* large (per-layer arrays): not on the stack */
    memset(&m, 0, sizeof m);
    clv_hparams *hp = &m.hp;
    int64_t n_head = c->n_head_kv * c->group, hd = c->head_dim;
    snprintf(hp->arch, sizeof hp->arch, "test");
    hp->n_vocab = 1;
    hp->n_ctx_train = c->pos + 1;
    hp->n_embd = n_head * hd;
    hp->n_layer = 1;
    hp->n_head = n_head;
    hp->n_head_kv[0] = c->n_head_kv;
    hp->n_embd_head_k = hp->n_embd_head_v = hd;
    hp->attn_scale = scale;
    hp->sliding_window = c->window;
    hp->layer_swa[0] = c->window > 0;
    clv_context_params p = clv_context_default_params();
    p.n_ctx = c->pos + 1;
    p.n_batch = 1;
    p.kv_type = c->kv_type;
    p.gemm_min_batch = -1;
    clv_context *ctx = NULL;
    clv_status st = clv_context_create(&m, &p, &ctx);
    CHECK_STATUS(st, CLV_OK);
    if (st) return false;
    size_t bytes = (size_t)(c->pos + 1) * (size_t)(c->n_head_kv * hd) * elem_bytes(c->kv_type);
    memcpy(ctx->k_cache[0], kc, bytes);
    memcpy(ctx->v_cache[0], vc, bytes);
    int32_t pos = (int32_t)c->pos;
    clv_op_attention(ctx, 0, out, q, krow, vrow, 1, &pos, scale, c->window);
    clv_context_free(ctx);
    return true;
}

/* max |x - ref| / max |ref|; infinite when x has a NaN. */
static double rel_error(const float *x, const double *ref, int64_t n) {
    double worst = 0, mag = 0;
    for (int64_t i = 0; i < n; i++) {
        double e = fabs((double)x[i] - ref[i]);
        if (isnan(e)) worst = INFINITY;
        else if (e > worst) worst = e;
        if (fabs(ref[i]) > mag) mag = fabs(ref[i]);
    }
    return worst / (mag > 0 ? mag : 1);
}

/* The bound for a case: see the top of the file. */
static double tolerance(const attn_case *c) { return c->logit > 10 ? TOL * c->logit / 10 : TOL; }

static void check_case(const attn_case *c) {
    int64_t hd = c->head_dim, n_head = c->n_head_kv * c->group, width = c->n_head_kv * hd;
    int64_t lo = 0, n_kv = 0;
    clv_cuda_attention_range(c->pos, c->window, &lo, &n_kv);
    int64_t n_rows = c->pos + 3; /* two NaN rows after the query's */
    size_t cache_bytes = (size_t)(n_rows * width) * elem_bytes(c->kv_type);
    float scale = 1.0f / sqrtf((float)hd);
    float *q = malloc(sizeof(float) * (size_t)(n_head * hd));
    void *kc = malloc(cache_bytes), *vc = malloc(cache_bytes);
    float *kf = malloc(sizeof(float) * (size_t)(n_kv * width)), *vf = malloc(sizeof(float) * (size_t)(n_kv * width));
    float *gpu = malloc(sizeof(float) * (size_t)(n_head * hd)), *cpu = malloc(sizeof(float) * (size_t)(n_head * hd));
    double *ref = malloc(sizeof(double) * (size_t)(n_head * hd)), *cpu_ref = malloc(sizeof(double) * (size_t)(n_head * hd));
    double *score = malloc(sizeof(double) * (size_t)n_kv);
    bool allocated = q && kc && vc && kf && vf && gpu && cpu && ref && cpu_ref && score;
    CHECK(allocated);
    if (!allocated) goto done;
    /* q uniform in +-a with k uniform in +-1: score std = a / 3 (with scale 1/sqrt(hd)). */
    for (int64_t i = 0; i < n_head * hd; i++) q[i] = frand() * 3.0f * c->logit;
    fill_cache(kc, c->kv_type, n_rows, width, lo, c->pos);
    fill_cache(vc, c->kv_type, n_rows, width, lo, c->pos);
    for (int64_t j = 0; j < n_kv; j++) {
        decode_row(kc, c->kv_type, lo + j, width, kf + j * width);
        decode_row(vc, c->kv_type, lo + j, width, vf + j * width);
    }
    reference(c, q, kf, vf, n_kv, scale, ref, score);
    double tol = tolerance(c);
    char name[160];
    snprintf(name, sizeof name, "%s hd %3lld, %lld x %2lld heads, keys %5lld..%5lld%s", clv_type_name(c->kv_type),
             (long long)hd, (long long)c->n_head_kv, (long long)c->group, (long long)lo, (long long)c->pos,
             c->softcap > 0 ? ", softcap" : "");

    bool have_cpu = c->cpu_op && c->softcap == 0 &&
                    cpu_op(c, q, kc, vc, kf + (n_kv - 1) * width, vf + (n_kv - 1) * width, scale, cpu);
    if (have_cpu) {
        double e = rel_error(cpu, ref, n_head * hd);
        CHECK_MSG(e <= tol, "%s: CPU op against float64: error %.3g", name, e);
    }

    clv_cuda_attention_shape shape = {c->kv_type, n_head, c->n_head_kv, hd};
    size_t scratch_bytes = clv_cuda_attention_scratch_bytes(&shape, n_kv);
    float *q_dev = NULL, *out_dev = NULL;
    void *k_dev = NULL, *v_dev = NULL, *scratch_dev = NULL;
    CUDA_OK(cudaMalloc((void **)&q_dev, sizeof(float) * (size_t)(n_head * hd)));
    CUDA_OK(cudaMalloc((void **)&out_dev, sizeof(float) * (size_t)(n_head * hd)));
    CUDA_OK(cudaMalloc(&k_dev, cache_bytes));
    CUDA_OK(cudaMalloc(&v_dev, cache_bytes));
    if (scratch_bytes) CUDA_OK(cudaMalloc(&scratch_dev, scratch_bytes));
    CUDA_OK(cudaMemcpy(q_dev, q, sizeof(float) * (size_t)(n_head * hd), cudaMemcpyHostToDevice));
    CUDA_OK(cudaMemcpy(k_dev, kc, cache_bytes, cudaMemcpyHostToDevice));
    CUDA_OK(cudaMemcpy(v_dev, vc, cache_bytes, cudaMemcpyHostToDevice));
    /* Split (full scratch), then unsplit (none). */
    for (int pass = 0; pass < 2; pass++) {
        size_t sb = pass == 0 ? scratch_bytes : 0;
        if (pass == 1 && scratch_bytes == 0) break; /* the first pass did not split either */
        CUDA_OK(cudaMemset(out_dev, 0xff, sizeof(float) * (size_t)(n_head * hd))); /* NaN */
        CHECK_STATUS(clv_cuda_attention_decode(&shape, q_dev, k_dev, v_dev, lo, n_kv, scale, c->softcap, out_dev,
                                               sb ? scratch_dev : NULL, sb, NULL),
                     CLV_OK);
        CUDA_OK(cudaMemcpy(gpu, out_dev, sizeof(float) * (size_t)(n_head * hd), cudaMemcpyDeviceToHost));
        double e = rel_error(gpu, ref, n_head * hd);
        CHECK_MSG(e <= tol, "%s, %s: error %.3g > %.3g", name, pass ? "no split" : "split", e, tol);
        double e_cpu = -1;
        if (have_cpu) {
            for (int64_t i = 0; i < n_head * hd; i++) cpu_ref[i] = cpu[i];
            e_cpu = rel_error(gpu, cpu_ref, n_head * hd);
            CHECK_MSG(e_cpu <= tol, "%s, %s: against the CPU op: error %.3g > %.3g", name, pass ? "no split" : "split",
                      e_cpu, tol);
        }
        printf("%s, %-8s: error %.2e (bound %.0e)", name, pass ? "no split" : "split", e, tol);
        if (e_cpu >= 0) printf(", against the CPU op %.2e", e_cpu);
        printf("\n");
    }
    /* The key range from the position on the device (what a captured decode
     * graph runs), the splits planned for four times the keys there are, so
     * that some get none. */
    {
        int64_t n_max = 4 * (c->pos + 1);
        size_t sb = clv_cuda_attention_scratch_bytes(&shape, n_max);
        void *sd = NULL;
        int32_t *pos_dev = NULL, pos32 = (int32_t)c->pos;
        if (sb) CUDA_OK(cudaMalloc(&sd, sb));
        CUDA_OK(cudaMalloc((void **)&pos_dev, sizeof pos32));
        CUDA_OK(cudaMemcpy(pos_dev, &pos32, sizeof pos32, cudaMemcpyHostToDevice));
        CUDA_OK(cudaMemset(out_dev, 0xff, sizeof(float) * (size_t)(n_head * hd)));
        CHECK_STATUS(clv_cuda_attention_decode_at(&shape, q_dev, k_dev, v_dev, pos_dev, c->window, n_max, scale,
                                                  c->softcap, out_dev, sd, sb, NULL),
                     CLV_OK);
        CUDA_OK(cudaMemcpy(gpu, out_dev, sizeof(float) * (size_t)(n_head * hd), cudaMemcpyDeviceToHost));
        double e = rel_error(gpu, ref, n_head * hd);
        CHECK_MSG(e <= tol, "%s, range on the device: error %.3g > %.3g", name, e, tol);
        CUDA_OK(cudaMemset(out_dev, 0xff, sizeof(float) * (size_t)(n_head * hd)));
        CHECK_STATUS(clv_cuda_attention_decode_generic_at(&shape, q_dev, k_dev, v_dev, pos_dev, c->window, scale,
                                                          c->softcap, out_dev, NULL),
                     CLV_OK);
        CUDA_OK(cudaMemcpy(gpu, out_dev, sizeof(float) * (size_t)(n_head * hd), cudaMemcpyDeviceToHost));
        double eg = rel_error(gpu, ref, n_head * hd);
        CHECK_MSG(eg <= tol, "%s, generic, range on the device: error %.3g > %.3g", name, eg, tol);
        printf("%s, device range: error %.2e, generic %.2e (bound %.0e)\n", name, e, eg, tol);
        cudaFree(sd);
        cudaFree(pos_dev);
    }
    cudaFree(q_dev);
    cudaFree(out_dev);
    cudaFree(k_dev);
    cudaFree(v_dev);
    cudaFree(scratch_dev);
done:
    free(q), free(kc), free(vc), free(kf), free(vf), free(gpu), free(cpu), free(ref), free(cpu_ref), free(score);
}

/* A prompt of n_tok tokens at positions last - n_tok + 1 .. last in one
 * launch (clv_cuda_attention_batch), each token against the float64
 * reference over its own keys. Rows after `last` hold NaN. */
static void check_batch(int64_t hd, int64_t n_head_kv, int64_t group, int64_t last, int64_t n_tok, int64_t window,
                        int32_t kv_type, float logit, float softcap) {
    attn_case c = {hd, n_head_kv, group, last, window, kv_type, logit, softcap, false};
    int64_t n_head = n_head_kv * group, width = n_head_kv * hd, n_rows = last + 3, qn = n_head * hd;
    size_t cache_bytes = (size_t)(n_rows * width) * elem_bytes(kv_type);
    float scale = 1.0f / sqrtf((float)hd);
    float *q = malloc(sizeof(float) * (size_t)(n_tok * qn)), *gpu = malloc(sizeof(float) * (size_t)(n_tok * qn));
    void *kc = malloc(cache_bytes), *vc = malloc(cache_bytes);
    float *kf = malloc(sizeof(float) * (size_t)(n_rows * width)), *vf = malloc(sizeof(float) * (size_t)(n_rows * width));
    double *ref = malloc(sizeof(double) * (size_t)qn), *score = malloc(sizeof(double) * (size_t)n_rows);
    int32_t *pos = malloc(sizeof(int32_t) * (size_t)n_tok);
    for (int64_t i = 0; i < n_tok * qn; i++) q[i] = frand() * 3.0f * logit;
    fill_cache(kc, kv_type, n_rows, width, 0, last);
    fill_cache(vc, kv_type, n_rows, width, 0, last);
    for (int64_t j = 0; j < n_rows; j++) {
        decode_row(kc, kv_type, j, width, kf + j * width);
        decode_row(vc, kv_type, j, width, vf + j * width);
    }
    for (int64_t t = 0; t < n_tok; t++) pos[t] = (int32_t)(last - n_tok + 1 + t);
    clv_cuda_attention_shape shape = {kv_type, n_head, n_head_kv, hd};
    float *q_dev = NULL, *out_dev = NULL;
    void *k_dev = NULL, *v_dev = NULL;
    int32_t *pos_dev = NULL;
    CUDA_OK(cudaMalloc((void **)&q_dev, sizeof(float) * (size_t)(n_tok * qn)));
    CUDA_OK(cudaMalloc((void **)&out_dev, sizeof(float) * (size_t)(n_tok * qn)));
    CUDA_OK(cudaMalloc(&k_dev, cache_bytes));
    CUDA_OK(cudaMalloc(&v_dev, cache_bytes));
    CUDA_OK(cudaMalloc((void **)&pos_dev, sizeof(int32_t) * (size_t)n_tok));
    CUDA_OK(cudaMemcpy(q_dev, q, sizeof(float) * (size_t)(n_tok * qn), cudaMemcpyHostToDevice));
    CUDA_OK(cudaMemcpy(k_dev, kc, cache_bytes, cudaMemcpyHostToDevice));
    CUDA_OK(cudaMemcpy(v_dev, vc, cache_bytes, cudaMemcpyHostToDevice));
    CUDA_OK(cudaMemcpy(pos_dev, pos, sizeof(int32_t) * (size_t)n_tok, cudaMemcpyHostToDevice));
    CUDA_OK(cudaMemset(out_dev, 0xff, sizeof(float) * (size_t)(n_tok * qn)));
    CHECK_STATUS(clv_cuda_attention_batch(&shape, q_dev, k_dev, v_dev, pos_dev, n_tok, window, scale, softcap, out_dev,
                                          NULL),
                 CLV_OK);
    CUDA_OK(cudaMemcpy(gpu, out_dev, sizeof(float) * (size_t)(n_tok * qn), cudaMemcpyDeviceToHost));
    double worst = 0, tol = tolerance(&c);
    for (int64_t t = 0; t < n_tok; t++) {
        int64_t lo = 0, n_kv = 0;
        clv_cuda_attention_range(pos[t], window, &lo, &n_kv);
        reference(&c, q + t * qn, kf + lo * width, vf + lo * width, n_kv, scale, ref, score);
        double e = rel_error(gpu + t * qn, ref, qn);
        if (!(e <= worst)) worst = e;
    }
    CHECK_MSG(worst <= tol, "batch of %lld, %s hd %lld, %lld x %lld heads, last %lld, window %lld: error %.3g > %.3g",
              (long long)n_tok, clv_type_name(kv_type), (long long)hd, (long long)n_head_kv, (long long)group,
              (long long)last, (long long)window, worst, tol);
    printf("batch of %4lld, %s hd %3lld, %lld x %2lld heads, positions ..%5lld, window %4lld%s: worst error %.2e "
           "(bound %.0e)\n",
           (long long)n_tok, clv_type_name(kv_type), (long long)hd, (long long)n_head_kv, (long long)group,
           (long long)last, (long long)window, softcap > 0 ? ", softcap" : "", worst, tol);
    /* refusals: no positions, too many tokens */
    CHECK_STATUS(clv_cuda_attention_batch(&shape, q_dev, k_dev, v_dev, NULL, n_tok, window, scale, softcap, out_dev,
                                          NULL),
                 CLV_ERR_ARG);
    CHECK_STATUS(clv_cuda_attention_batch(&shape, q_dev, k_dev, v_dev, pos_dev, 65536, window, scale, softcap,
                                          out_dev, NULL),
                 CLV_ERR_ARG);
    cudaFree(q_dev), cudaFree(out_dev), cudaFree(k_dev), cudaFree(v_dev), cudaFree(pos_dev);
    free(q), free(gpu), free(kc), free(vc), free(kf), free(vf), free(ref), free(score), free(pos);
}

static void refusals(void) {
    clv_cuda_attention_shape ok = {CLV_TYPE_F16, 8, 2, 128};
    void *buf = NULL;
    CUDA_OK(cudaMalloc(&buf, 1 << 16));
    float *f = buf;
    char *b = buf;
    clv_cuda_attention_shape s = ok;
    CHECK_STATUS(clv_cuda_attention_decode(&s, f, b, b, 0, 1, 1, 0, f, NULL, 0, NULL), CLV_OK);
    s.head_dim = 80;
    CHECK_STATUS(clv_cuda_attention_decode(&s, f, b, b, 0, 1, 1, 0, f, NULL, 0, NULL), CLV_ERR_UNSUPPORTED);
    s.head_dim = 288;
    CHECK_STATUS(clv_cuda_attention_decode(&s, f, b, b, 0, 1, 1, 0, f, NULL, 0, NULL), CLV_ERR_UNSUPPORTED);
    s = ok, s.kv_type = CLV_TYPE_Q8_0;
    CHECK_STATUS(clv_cuda_attention_decode(&s, f, b, b, 0, 1, 1, 0, f, NULL, 0, NULL), CLV_ERR_UNSUPPORTED);
    s = ok, s.n_head = 6, s.n_head_kv = 4;
    CHECK_STATUS(clv_cuda_attention_decode(&s, f, b, b, 0, 1, 1, 0, f, NULL, 0, NULL), CLV_ERR_ARG);
    s = ok, s.n_head_kv = 0;
    CHECK_STATUS(clv_cuda_attention_decode(&s, f, b, b, 0, 1, 1, 0, f, NULL, 0, NULL), CLV_ERR_ARG);
    CHECK_STATUS(clv_cuda_attention_decode(NULL, f, b, b, 0, 1, 1, 0, f, NULL, 0, NULL), CLV_ERR_ARG);
    CHECK_STATUS(clv_cuda_attention_decode(&ok, f, b, b, 0, 0, 1, 0, f, NULL, 0, NULL), CLV_ERR_ARG);
    CHECK_STATUS(clv_cuda_attention_decode(&ok, f, b, b, -1, 1, 1, 0, f, NULL, 0, NULL), CLV_ERR_ARG);
    CHECK_STATUS(clv_cuda_attention_decode(&ok, f, b, b, 0, 1, 1, -1, f, NULL, 0, NULL), CLV_ERR_ARG);
    CHECK_STATUS(clv_cuda_attention_decode(&ok, NULL, b, b, 0, 1, 1, 0, f, NULL, 0, NULL), CLV_ERR_ARG);
    CHECK_STATUS(clv_cuda_attention_decode(&ok, f, b, b, 0, 1, 1, 0, f, NULL, 64, NULL), CLV_ERR_ARG);
    CHECK_STATUS(clv_cuda_attention_decode(&ok, f, b + 8, b, 0, 1, 1, 0, f, NULL, 0, NULL), CLV_ERR_ARG);
    CHECK_STATUS(clv_cuda_attention_decode(&ok, f, b, b + 2, 0, 1, 1, 0, f, NULL, 0, NULL), CLV_ERR_ARG);
    CUDA_OK(cudaDeviceSynchronize());
    /* Scratch: none below two splits' worth of keys, then growing with the keys. */
    CHECK(clv_cuda_attention_scratch_bytes(&ok, 1) == 0);
    CHECK(clv_cuda_attention_scratch_bytes(&ok, 4096) > 0);
    CHECK(clv_cuda_attention_scratch_bytes(&ok, 33000) >= clv_cuda_attention_scratch_bytes(&ok, 4096));
    cudaFree(buf);
}

#ifndef BENCH_REPS
#define BENCH_REPS 20
#endif

static void bandwidth(int32_t type) {
    const int64_t n_kv = 33000, n_head_kv = 8, group = 4, hd = 128;
    clv_cuda_attention_shape shape = {type, n_head_kv * group, n_head_kv, hd};
    size_t bytes = (size_t)(n_kv * n_head_kv * hd) * elem_bytes(type); /* each of K and V */
    size_t scratch_bytes = clv_cuda_attention_scratch_bytes(&shape, n_kv);
    float *q = malloc(sizeof(float) * (size_t)(n_head_kv * group * hd));
    for (int64_t i = 0; i < n_head_kv * group * hd; i++) q[i] = frand();
    float *q_dev = NULL, *out_dev = NULL;
    void *k_dev = NULL, *v_dev = NULL, *scratch_dev = NULL;
    CUDA_OK(cudaMalloc((void **)&q_dev, sizeof(float) * (size_t)(n_head_kv * group * hd)));
    CUDA_OK(cudaMalloc((void **)&out_dev, sizeof(float) * (size_t)(n_head_kv * group * hd)));
    CUDA_OK(cudaMalloc(&k_dev, bytes));
    CUDA_OK(cudaMalloc(&v_dev, bytes));
    if (scratch_bytes) CUDA_OK(cudaMalloc(&scratch_dev, scratch_bytes));
    CUDA_OK(cudaMemset(k_dev, 0, bytes)); /* zeros: the speed does not depend on values */
    CUDA_OK(cudaMemset(v_dev, 0, bytes));
    CUDA_OK(cudaMemcpy(q_dev, q, sizeof(float) * (size_t)(n_head_kv * group * hd), cudaMemcpyHostToDevice));
    cudaEvent_t t0, t1;
    cudaEventCreate(&t0);
    cudaEventCreate(&t1);
    float scale = 1.0f / sqrtf((float)hd);
    CHECK_STATUS(clv_cuda_attention_decode(&shape, q_dev, k_dev, v_dev, 0, n_kv, scale, 0, out_dev, scratch_dev,
                                           scratch_bytes, NULL),
                 CLV_OK);
    cudaEventRecord(t0, NULL);
    for (int i = 0; i < BENCH_REPS; i++) {
        clv_cuda_attention_decode(&shape, q_dev, k_dev, v_dev, 0, n_kv, scale, 0, out_dev, scratch_dev, scratch_bytes,
                                  NULL);
    }
    cudaEventRecord(t1, NULL);
    cudaEventSynchronize(t1);
    CUDA_OK(cudaGetLastError());
    float ms = 0;
    cudaEventElapsedTime(&ms, t0, t1);
    printf("%s KV cache, %lld keys x %lld KV heads x %lld (%lld query heads, %.0f MiB of K and V): %.1f us per call, "
           "%.0f GB/s\n",
           clv_type_name(type), (long long)n_kv, (long long)n_head_kv, (long long)hd, (long long)(n_head_kv * group),
           2.0 * bytes / 1048576.0, 1000.0 * ms / BENCH_REPS, 2.0 * bytes * BENCH_REPS / (ms * 1e-3) / 1e9);
    cudaEventDestroy(t0);
    cudaEventDestroy(t1);
    cudaFree(q_dev);
    cudaFree(out_dev);
    cudaFree(k_dev);
    cudaFree(v_dev);
    cudaFree(scratch_dev);
    free(q);
}

int main(void) {
    int n_dev = 0;
    if (cudaGetDeviceCount(&n_dev) != cudaSuccess || n_dev == 0) TEST_SKIP("no CUDA device");
    refusals();

    /* Few keys: every head size, group and type, against the CPU op too. */
    const int64_t dims[] = {64, 128, 256}, groups[] = {1, 4, 8}, positions[] = {0, 6, 299};
    const int32_t types[] = {CLV_TYPE_F16, CLV_TYPE_F32};
    for (int d = 0; d < 3; d++) {
        for (int g = 0; g < 3; g++) {
            for (int t = 0; t < 2; t++) {
                for (int p = 0; p < 3; p++) {
                    attn_case c = {dims[d], 2, groups[g], positions[p], 0, types[t], 2.0f, 0, true};
                    check_case(&c);
                }
            }
        }
    }
    /* 4096 keys. */
    for (int d = 0; d < 3; d++) {
        for (int g = 0; g < 3; g++) {
            attn_case c = {dims[d], 4, groups[g], 4095, 0, types[(d + g) % 2], 4.0f, 0, true};
            check_case(&c);
        }
    }
    const attn_case more[] = {
        /* 33,000 keys: Llama-3-8B's layer, peaky scores, no GQA, two head
         * chunks of a group of 8 at head size 256. */
        {128, 8, 4, 32999, 0, CLV_TYPE_F16, 2.0f, 0, true},
        {128, 8, 8, 32999, 0, CLV_TYPE_F32, 8.0f, 0, false},
        {64, 4, 1, 32999, 0, CLV_TYPE_F32, 1.0f, 0, true},
        {256, 2, 8, 32999, 0, CLV_TYPE_F16, 4.0f, 0, false},
        /* Soft-capping (Gemma 2: 50), scores well past the cap. */
        {128, 2, 4, 32999, 0, CLV_TYPE_F32, 30.0f, 20.0f, false},
        {256, 2, 2, 700, 0, CLV_TYPE_F16, 40.0f, 50.0f, false},
        {64, 1, 1, 6, 0, CLV_TYPE_F32, 8.0f, 5.0f, false},
        /* Sliding windows: Gemma 3's local layers (1024 keys), a window that
         * does not bite yet, one cutting a long context. */
        {256, 2, 2, 5000, 1024, CLV_TYPE_F16, 2.0f, 0, true},
        {128, 2, 4, 100, 4096, CLV_TYPE_F32, 2.0f, 0, true},
        {128, 4, 2, 33000, 4096, CLV_TYPE_F16, 4.0f, 0, true},
        {64, 1, 8, 33000, 1024, CLV_TYPE_F16, 30.0f, 50.0f, false},
        /* Groups that are not a power of two or exceed a block's heads, other head sizes. */
        {96, 2, 6, 500, 0, CLV_TYPE_F16, 2.0f, 0, true},
        {128, 1, 12, 1000, 0, CLV_TYPE_F32, 2.0f, 0, true},
        {32, 3, 3, 2000, 0, CLV_TYPE_F32, 2.0f, 0, true},
        {160, 2, 2, 777, 0, CLV_TYPE_F16, 2.0f, 0, true},
        {224, 1, 5, 129, 0, CLV_TYPE_F32, 2.0f, 0, true},
        {192, 2, 16, 3000, 0, CLV_TYPE_F16, 2.0f, 0, true},
    };
    for (size_t i = 0; i < sizeof more / sizeof more[0]; i++) check_case(&more[i]);

    /* Prompts in one launch: qwen3-30b-a3b's layer over a 512-token prompt,
     * a prompt after 200 earlier tokens, a window that cuts it, an odd
     * group, soft-capping, one token. */
    check_batch(128, 4, 8, 511, 512, 0, CLV_TYPE_F16, 2.0f, 0);
    check_batch(128, 8, 4, 263, 64, 0, CLV_TYPE_F32, 4.0f, 0);
    check_batch(256, 2, 2, 1500, 100, 1024, CLV_TYPE_F16, 2.0f, 0);
    check_batch(96, 2, 6, 40, 41, 0, CLV_TYPE_F16, 2.0f, 0);
    check_batch(64, 1, 1, 99, 20, 0, CLV_TYPE_F32, 30.0f, 20.0f);
    check_batch(64, 2, 2, 7, 1, 0, CLV_TYPE_F32, 2.0f, 0);

    bandwidth(CLV_TYPE_F16);
    bandwidth(CLV_TYPE_F32);
    return test_finish("test_cuda_attention");
}
