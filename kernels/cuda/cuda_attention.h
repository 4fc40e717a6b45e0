/* GPU attention for decode, callable from C: one query position, every head,
 * over a layer's KV cache, split over the key range (flash-decoding); and a
 * prompt's tokens in one launch.
 *
 * Semantics are runtime/ops_cpu_attention.c's for one token: for query head
 * h (KV head h / (n_head / n_head_kv)), score_j = (q_h . k_j) * scale over
 * the visible keys j, optionally soft-capped, softmax, out_h = sum_j p_j v_j.
 * tests/test_cuda_attention.c checks it against a float64 reference and
 * against clv_op_attention. */
#ifndef CLV_CUDA_ATTENTION_H
#define CLV_CUDA_ATTENTION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The dimensions of one layer's attention. */
typedef struct clv_cuda_attention_shape {
    int32_t kv_type;   /* the cache's element type: CLV_TYPE_F16 or CLV_TYPE_F32 */
    int64_t n_head;    /* query heads; a multiple of n_head_kv (GQA) */
    int64_t n_head_kv; /* KV heads */
    int64_t head_dim;  /* of q, K and V: a multiple of 32, at most 256 */
} clv_cuda_attention_shape;

/* Device scratch that clv_cuda_attention_decode needs for up to n_kv_max
 * visible keys (0 when it never splits the keys); allocate it once, e.g. for
 * the context's length. */
size_t clv_cuda_attention_scratch_bytes(const clv_cuda_attention_shape *shape, int64_t n_kv_max);

/* The keys a query at position pos sees, as the CPU op has them: with a
 * sliding window (window > 0) positions pos - window + 1 .. pos (from 0 at
 * the start), else 0 .. pos. */
static inline void clv_cuda_attention_range(int64_t pos, int64_t window, int64_t *kv_start, int64_t *n_kv) {
    int64_t lo = window > 0 && pos - window + 1 > 0 ? pos - window + 1 : 0;
    *kv_start = lo;
    *n_kv = pos - lo + 1;
}

/* out[h][:] = attention of q[h][:] over cache rows kv_start .. kv_start +
 * n_kv - 1, for every query head h.
 *
 * All pointers are device memory: q_dev [n_head][head_dim] floats,
 * out_dev [n_head][head_dim] floats (not overlapping q), k_cache_dev and
 * v_cache_dev the layer's caches in the CPU's layout, row p (position p)
 * holding [n_head_kv][head_dim] elements of kv_type, rows packed, both
 * 16-byte aligned. scale multiplies q.k; softcap > 0 then maps each score s to
 * softcap * tanh(s / softcap) (attention logit soft-capping), 0 turns it off.
 *
 * scratch_dev (scratch_bytes, 4-byte aligned) holds the per-split partials;
 * with less than clv_cuda_attention_scratch_bytes(shape, n_kv) the keys are
 * split fewer ways (slower, same result up to rounding); NULL and 0 are
 * allowed. Nothing is allocated. Runs asynchronously on `stream` (a
 * cudaStream_t; NULL: the default stream); two calls sharing a scratch
 * buffer must be ordered on one stream.
 *
 * CLV_ERR_UNSUPPORTED for another cache type or head size, CLV_ERR_ARG for
 * inconsistent dimensions, an empty or negative key range, a negative
 * softcap, NULL or misaligned pointers; CLV_ERR_DEVICE when a launch fails. */
clv_status clv_cuda_attention_decode(const clv_cuda_attention_shape *shape, const float *q_dev,
                                     const void *k_cache_dev, const void *v_cache_dev, int64_t kv_start, int64_t n_kv,
                                     float scale, float softcap, float *out_dev, void *scratch_dev,
                                     size_t scratch_bytes, void *stream);

/* The same for any head size up to 256 (attention_generic.cu): one warp per
 * query head, keys in order, no scratch. Slow; for the head sizes
 * clv_cuda_attention_decode answers CLV_ERR_UNSUPPORTED for (small test
 * models, odd sizes). Same arguments and errors, less the alignment and the
 * scratch; CLV_ERR_UNSUPPORTED for a head size above 256. */
clv_status clv_cuda_attention_decode_generic(const clv_cuda_attention_shape *shape, const float *q_dev,
                                             const void *k_cache_dev, const void *v_cache_dev, int64_t kv_start,
                                             int64_t n_kv, float scale, float softcap, float *out_dev, void *stream);

/* The same with the key range taken on the device from *pos_dev (the
 * query's position) and window, as clv_cuda_attention_range takes it, so
 * that a captured CUDA graph serves every position. The split count is
 * planned for n_kv_max keys (the most the range can hold); splits past the
 * keys do nothing. Rounding may differ from clv_cuda_attention_decode's,
 * which plans for the actual count. */
clv_status clv_cuda_attention_decode_at(const clv_cuda_attention_shape *shape, const float *q_dev,
                                        const void *k_cache_dev, const void *v_cache_dev, const int32_t *pos_dev,
                                        int64_t window, int64_t n_kv_max, float scale, float softcap, float *out_dev,
                                        void *scratch_dev, size_t scratch_bytes, void *stream);
clv_status clv_cuda_attention_decode_generic_at(const clv_cuda_attention_shape *shape, const float *q_dev,
                                                const void *k_cache_dev, const void *v_cache_dev,
                                                const int32_t *pos_dev, int64_t window, float scale, float softcap,
                                                float *out_dev, void *stream);

/* A prompt's attention in one launch: for t < n_tokens, out_dev + t *
 * n_head * head_dim = the attention of q_dev + t * n_head * head_dim at
 * position pos_dev[t] (device memory), over the keys that position sees
 * (clv_cuda_attention_range with window). Every token's K and V must be in
 * the cache already (a token sees the batch's tokens before it). No
 * scratch: the keys are not split. Head sizes and errors as
 * clv_cuda_attention_decode; CLV_ERR_ARG also for more than 65535 tokens. */
clv_status clv_cuda_attention_batch(const clv_cuda_attention_shape *shape, const float *q_dev,
                                    const void *k_cache_dev, const void *v_cache_dev, const int32_t *pos_dev,
                                    int64_t n_tokens, int64_t window, float scale, float softcap, float *out_dev,
                                    void *stream);

/* True when clv_cuda_attention_decode takes this head size (a multiple of 32
 * up to 256); the generic kernel takes the others up to 256. */
static inline bool clv_cuda_attention_fast_head_dim(int64_t head_dim) {
    return head_dim >= 32 && head_dim <= 256 && head_dim % 32 == 0;
}

#ifdef __cplusplus
}
#endif

#endif
