/* Decode attention over the KV cache (flash-decoding).
 *
 * A block of WARPS warps takes one KV head, HB of the query heads sharing it
 * (GQA) and one split of the visible keys, so each K and V row is read once
 * for all of those heads. Its warps take chunks of C consecutive keys in
 * turn. A lane holds EPL = head_dim / 32 consecutive elements of each key row
 * (a warp reads a row front to back, coalesced) and of its HB query rows.
 *
 * Scores: after the products each lane has C * HB partial dot products. A
 * reduce-scatter over the warp (each shuffle step trades away half of the
 * values a lane still holds) leaves every lane one complete score, for about
 * one shuffle per score where a butterfly per score would take five. The
 * online softmax then runs once per score, lanes in parallel, and the
 * probabilities go through shared memory to every lane for the sum over V.
 *
 * Each warp keeps its own running max, sum and weighted V; the block merges
 * its warps in shared memory and writes one partial per split (the final
 * output when there is one split); a second kernel merges the splits, one
 * block per query head. The number of splits fills the GPU about once.
 *
 * A prompt's tokens run in one launch (grid z: token), each over the keys
 * its own position sees, unsplit: the tokens fill the GPU.
 *
 * Semantics are runtime/ops_cpu_attention.c's: score = (q . k) * scale, then
 * softcap * tanh(score / softcap) when softcap > 0, softmax over the keys
 * kv_start .. kv_start + n_kv - 1, in float. */
#include <math.h>
#include <stdint.h>

#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "cuda_attention.h"
#include "types.h"

#define WARPS 4
#define FULL_MASK 0xffffffffu
/* Fewest keys per split (WARPS chunks or more): with fewer, merging costs
 * more than the parallelism brings. */
#define MIN_KEYS_PER_SPLIT 128
#define MAX_SPLITS 256
#define MAX_EPL 8 /* head_dim 256 */

/* File-local (what static is in C): other .cu files may use the same names. */
namespace {

__host__ __device__ constexpr int ilog2(int n) { return n <= 1 ? 0 : 1 + ilog2(n >> 1); }
__host__ __device__ constexpr int pow2_floor(int n) { return n <= 1 ? 1 : 2 * pow2_floor(n >> 1); }

/* Query heads per block: HB * EPL <= 32 keeps q and the accumulators at 32
 * registers each. */
__host__ __device__ constexpr int max_heads_per_block(int epl) { return pow2_floor(32 / epl < 8 ? 32 / epl : 8); }

/* Keys per warp step: C * HB <= 32 scores (one per lane after the
 * reduction) and C * EPL <= 32 values of each of K and V per lane. */
__host__ __device__ constexpr int chunk_keys(int epl, int hb) { return pow2_floor(32 / hb < 32 / epl ? 32 / hb : 32 / epl); }

/* EPL consecutive elements of a cache row, as loaded (the widest aligned
 * vector loads), converted to float when used. */
template <int TYPE, int EPL> struct kv_slice;

template <int EPL> struct kv_slice<CLV_TYPE_F32, EPL> {
    typedef float elem;
    float x[EPL];
    __device__ __forceinline__ void load(const float *p) {
        if constexpr (EPL % 4 == 0) {
#pragma unroll
            for (int i = 0; i < EPL / 4; i++) {
                float4 t = __ldg((const float4 *)p + i);
                x[4 * i] = t.x, x[4 * i + 1] = t.y, x[4 * i + 2] = t.z, x[4 * i + 3] = t.w;
            }
        } else if constexpr (EPL % 2 == 0) {
#pragma unroll
            for (int i = 0; i < EPL / 2; i++) {
                float2 t = __ldg((const float2 *)p + i);
                x[2 * i] = t.x, x[2 * i + 1] = t.y;
            }
        } else {
#pragma unroll
            for (int e = 0; e < EPL; e++) x[e] = __ldg(p + e);
        }
    }
    __device__ __forceinline__ void to_float(float (&f)[EPL]) const {
#pragma unroll
        for (int e = 0; e < EPL; e++) f[e] = x[e];
    }
};

template <int EPL> struct kv_slice<CLV_TYPE_F16, EPL> {
    typedef uint16_t elem;
    uint32_t w[(EPL + 1) / 2]; /* two halves a word, the lower element in the low bits */
    __device__ __forceinline__ void load(const uint16_t *p) {
        if constexpr (EPL % 8 == 0) {
#pragma unroll
            for (int i = 0; i < EPL / 8; i++) {
                uint4 t = __ldg((const uint4 *)p + i);
                w[4 * i] = t.x, w[4 * i + 1] = t.y, w[4 * i + 2] = t.z, w[4 * i + 3] = t.w;
            }
        } else if constexpr (EPL % 4 == 0) {
            uint2 t = __ldg((const uint2 *)p);
            w[0] = t.x, w[1] = t.y;
        } else if constexpr (EPL % 2 == 0) {
#pragma unroll
            for (int i = 0; i < EPL / 2; i++) w[i] = __ldg((const unsigned int *)p + i);
        } else {
#pragma unroll
            for (int i = 0; i < (EPL + 1) / 2; i++) w[i] = 0;
#pragma unroll
            for (int e = 0; e < EPL; e++) w[e / 2] |= (uint32_t)__ldg((const unsigned short *)p + e) << (16 * (e & 1));
        }
    }
    __device__ __forceinline__ void to_float(float (&f)[EPL]) const {
#pragma unroll
        for (int e = 0; e < EPL; e++) f[e] = __half2float(__ushort_as_half((unsigned short)(w[e / 2] >> (16 * (e & 1)))));
    }
};

/* Sums each of the N values (N a power of two, at most 32) over the warp;
 * lane l returns the sum of value l >> (5 - log2 N). Step k trades half of
 * the values still held with the lane 16 >> k away: the lower lane keeps the
 * lower half, the upper lane the upper half; once one value is left the
 * remaining steps are a plain butterfly. Both lanes of a pair add the same
 * two numbers, so every lane holding a sum holds the same bits. */
template <int N> __device__ __forceinline__ float warp_reduce_scatter(float (&s)[N], int lane) {
#pragma unroll
    for (int k = 0; k < 5; k++) {
        const int o = 16 >> k, n = N >> k;
        if (n > 1) {
            const bool upper = (lane & o) != 0;
            /* Bounded by N / 2, not n / 2, so that nvcc unrolls it and s stays in registers. */
#pragma unroll
            for (int i = 0; i < N / 2; i++) {
                if (i < n / 2) {
                    float send = upper ? s[i] : s[i + n / 2];
                    float keep = upper ? s[i + n / 2] : s[i];
                    s[i] = keep + __shfl_xor_sync(FULL_MASK, send, o);
                }
            }
        } else {
            s[0] += __shfl_xor_sync(FULL_MASK, s[0], o);
        }
    }
    return s[0];
}

struct attn_args {
    const float *q;    /* [n_head][D] */
    const void *k, *v; /* cache rows of [n_head_kv][D] elements */
    int64_t kv_start, n_kv;
    const int32_t *pos; /* device: the query's position, the key range taken from it (NULL: kv_start, n_kv);
                           for a batch, token z's at pos[z] */
    int64_t tok_stride; /* floats between a batch's tokens' q rows (and out rows) */
    int64_t window;
    int n_head_kv, group; /* group: query heads per KV head */
    int n_split;
    float scale, softcap;
    float *out;      /* [n_head][D], written here when n_split == 1 */
    float *part_ml;  /* [n_head][n_split][2]: max, sum */
    float *part_acc; /* [n_head][n_split][D]: unnormalised sum of p v */
};

/* clv_cuda_attention_range on the device. */
__device__ __forceinline__ void device_range(int64_t pos, int64_t window, int64_t *kv_start, int64_t *n_kv) {
    int64_t lo = window > 0 && pos - window + 1 > 0 ? pos - window + 1 : 0;
    *kv_start = lo;
    *n_kv = pos - lo + 1;
}

/* Grid: x = split, y = KV head * head chunks of HB query heads, z = token
 * of a batch (one split each). */
template <int TYPE, int EPL, int HB> __global__ void __launch_bounds__(WARPS * 32) attn_split_kernel(attn_args a) {
    constexpr int D = 32 * EPL;
    constexpr int C = chunk_keys(EPL, HB);
    constexpr int N = C * HB; /* scores per chunk, 4..32 */
    constexpr int LOG_N = ilog2(N), LOG_HB = ilog2(HB);
    constexpr int REP = 32 / N; /* lanes holding each score after the reduction */
    typedef kv_slice<TYPE, EPL> slice;
    typedef typename slice::elem elem;

    __shared__ float4 p_sh[WARPS][N / 4]; /* probabilities of the chunk, [key][head] */
    __shared__ float alpha_sh[WARPS][HB]; /* rescale of the running sums */
    __shared__ float m_sh[WARPS][HB], l_sh[WARPS][HB];
    __shared__ float acc_sh[WARPS][HB * D];

    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int sp = blockIdx.x;
    const int n_chunks = (a.group + HB - 1) / HB;
    const int kvh = blockIdx.y / n_chunks, hc = blockIdx.y % n_chunks;
    const int h0 = kvh * a.group + hc * HB; /* first query head of the block */
    const int nh = a.group - hc * HB < HB ? a.group - hc * HB : HB;
    if (blockIdx.z > 0) {
        a.q += (size_t)blockIdx.z * (size_t)a.tok_stride;
        a.out += (size_t)blockIdx.z * (size_t)a.tok_stride;
        a.pos += blockIdx.z;
    }

    float q[HB][EPL];
#pragma unroll
    for (int g = 0; g < HB; g++) {
#pragma unroll
        for (int e = 0; e < EPL; e++) q[g][e] = g < nh ? a.q[(size_t)(h0 + g) * D + lane * EPL + e] : 0.0f;
    }

    /* The split's keys, divided as the CPU divides them; with the range on
     * the device, splits past the keys get none (partials of zero weight). */
    int64_t kv_start = a.kv_start, n_kv = a.n_kv;
    if (a.pos) device_range(*a.pos, a.window, &kv_start, &n_kv);
    const int64_t j0 = kv_start + n_kv * sp / a.n_split;
    const int64_t j1 = kv_start + n_kv * (sp + 1) / a.n_split;
    const size_t row = (size_t)a.n_head_kv * D;
    const elem *kp = (const elem *)a.k + (size_t)kvh * D + lane * EPL;
    const elem *vp = (const elem *)a.v + (size_t)kvh * D + lane * EPL;

    /* The score this lane holds after the reduction: key c_l, head g_l of the chunk. */
    const int i_l = lane >> (5 - LOG_N);
    const int c_l = i_l >> LOG_HB, g_l = i_l & (HB - 1);
    const bool lead = (lane & (REP - 1)) == 0;

    float acc[HB][EPL];
#pragma unroll
    for (int g = 0; g < HB; g++) {
#pragma unroll
        for (int e = 0; e < EPL; e++) acc[g][e] = 0.0f;
    }
    float m_run = -INFINITY; /* running max of head g_l */
    float l_run = 0.0f;      /* running sum of this lane's key slot c_l, head g_l */

    for (int64_t base = j0 + (int64_t)warp * C; base < j1; base += (int64_t)WARPS * C) {
        slice ks[C], vs[C];
#pragma unroll
        for (int c = 0; c < C; c++) {
            /* Keys past the split re-read its last row (in bounds) and get p = 0. */
            int64_t j = base + c < j1 ? base + c : j1 - 1;
            ks[c].load(kp + (size_t)j * row);
            vs[c].load(vp + (size_t)j * row);
        }
        float s[N];
#pragma unroll
        for (int c = 0; c < C; c++) {
            float kf[EPL];
            ks[c].to_float(kf);
#pragma unroll
            for (int g = 0; g < HB; g++) {
                float d = 0.0f;
#pragma unroll
                for (int e = 0; e < EPL; e++) d = fmaf(q[g][e], kf[e], d);
                s[c * HB + g] = d;
            }
        }
        float x = warp_reduce_scatter<N>(s, lane) * a.scale;
        if (a.softcap > 0.0f) x = a.softcap * tanhf(x / a.softcap);
        if (base + c_l >= j1) x = -INFINITY;
        /* Chunk max of head g_l: over the lanes that differ in the key bits. */
        float mx = x;
#pragma unroll
        for (int o = 16; o >= 32 / C; o >>= 1) mx = fmaxf(mx, __shfl_xor_sync(FULL_MASK, mx, o));
        /* The chunk has a valid key, so m_new is finite. */
        float m_new = fmaxf(m_run, mx);
        float alpha = expf(m_run - m_new);
        float p = expf(x - m_new);
        l_run = l_run * alpha + p;
        m_run = m_new;
        if (lead) ((float *)p_sh[warp])[i_l] = p;
        if (lead && c_l == 0) alpha_sh[warp][g_l] = alpha;
        __syncwarp();
        float pr[N], al[HB];
#pragma unroll
        for (int i = 0; i < N / 4; i++) {
            float4 t = p_sh[warp][i];
            pr[4 * i] = t.x, pr[4 * i + 1] = t.y, pr[4 * i + 2] = t.z, pr[4 * i + 3] = t.w;
        }
#pragma unroll
        for (int g = 0; g < HB; g++) al[g] = alpha_sh[warp][g];
        __syncwarp(); /* all read before the next chunk writes */
#pragma unroll
        for (int g = 0; g < HB; g++) {
#pragma unroll
            for (int e = 0; e < EPL; e++) acc[g][e] *= al[g];
        }
#pragma unroll
        for (int c = 0; c < C; c++) {
            float vf[EPL];
            vs[c].to_float(vf);
#pragma unroll
            for (int g = 0; g < HB; g++) {
#pragma unroll
                for (int e = 0; e < EPL; e++) acc[g][e] = fmaf(pr[c * HB + g], vf[e], acc[g][e]);
            }
        }
    }

    /* The warp's sum per head: over the key slots. */
#pragma unroll
    for (int o = 16; o >= 32 / C; o >>= 1) l_run += __shfl_xor_sync(FULL_MASK, l_run, o);
    if (lead && c_l == 0) {
        m_sh[warp][g_l] = m_run; /* -inf and 0 for a warp that had no keys */
        l_sh[warp][g_l] = l_run;
    }
#pragma unroll
    for (int g = 0; g < HB; g++) {
#pragma unroll
        for (int e = 0; e < EPL; e++) acc_sh[warp][g * D + lane * EPL + e] = acc[g][e];
    }
    __syncthreads();

    /* Merge the warps, skipping those without keys (a split may have none
     * when the range is on the device). */
    for (int t = threadIdx.x; t < nh * D; t += WARPS * 32) {
        const int g = t / D, d = t % D;
        float mx = -INFINITY;
#pragma unroll
        for (int w = 0; w < WARPS; w++) mx = fmaxf(mx, m_sh[w][g]);
        float sum = 0.0f, val = 0.0f;
#pragma unroll
        for (int w = 0; w < WARPS; w++) {
            if (m_sh[w][g] == -INFINITY) continue;
            float r = expf(m_sh[w][g] - mx);
            sum += l_sh[w][g] * r;
            val += acc_sh[w][g * D + d] * r;
        }
        const size_t h = (size_t)(h0 + g);
        if (a.n_split == 1) {
            a.out[h * D + d] = sum > 0.0f ? val / sum : 0.0f;
        } else {
            const size_t item = h * (size_t)a.n_split + (size_t)sp;
            a.part_acc[item * D + d] = val;
            if (d == 0) {
                a.part_ml[2 * item] = mx;
                a.part_ml[2 * item + 1] = sum;
            }
        }
    }
}

/* Grid: one block per query head, head_dim threads (one per output element). */
__global__ void attn_merge_kernel(const float *__restrict__ ml, const float *__restrict__ acc, int n_split,
                                  float *__restrict__ out) {
    const int d = threadIdx.x, D = blockDim.x;
    const size_t h = blockIdx.x;
    const float *mlh = ml + 2 * h * (size_t)n_split;
    const float *acch = acc + h * (size_t)n_split * D;
    float mx = -INFINITY;
    for (int s = 0; s < n_split; s++) mx = fmaxf(mx, mlh[2 * s]);
    float sum = 0.0f, val = 0.0f;
    for (int s = 0; s < n_split; s++) {
        float l = mlh[2 * s + 1];
        if (l == 0.0f) continue; /* a split without keys */
        float r = expf(mlh[2 * s] - mx);
        sum += l * r;
        val += acch[(size_t)s * D + d] * r;
    }
    out[h * D + d] = sum > 0.0f ? val / sum : 0.0f;
}

/* --- host side ------------------------------------------------------------ */

/* Floats of partials for n_split splits: the (max, sum) pairs, padded to 16
 * bytes, then the accumulators. */
static size_t ml_floats(int64_t n_head, int64_t n_split) { return ((size_t)(2 * n_head * n_split) + 3) & ~(size_t)3; }
static size_t partial_floats(int64_t n_head, int64_t n_split, int64_t hd) {
    return ml_floats(n_head, n_split) + (size_t)(n_head * n_split * hd);
}

static int64_t max_splits(int64_t n_kv) {
    int64_t s = n_kv / MIN_KEYS_PER_SPLIT;
    return s < 1 ? 1 : s > MAX_SPLITS ? MAX_SPLITS : s;
}

/* Looked up once (they only steer the split count, never the result). */
static int sm_count(void) {
    static const int n = [] {
        int dev = 0, v = 0;
        if (cudaGetDevice(&dev) != cudaSuccess || cudaDeviceGetAttribute(&v, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess || v < 1) {
            (void)cudaGetLastError();
            v = 100;
        }
        return v;
    }();
    return n;
}

template <int TYPE, int EPL, int HB> static int blocks_per_sm(void) {
    static const int n = [] {
        int b = 0;
        if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&b, attn_split_kernel<TYPE, EPL, HB>, WARPS * 32, 0) != cudaSuccess || b < 1) {
            (void)cudaGetLastError();
            b = 1;
        }
        return b;
    }();
    return n;
}

template <int TYPE, int EPL, int HB>
static void launch(attn_args a, int64_t n_head, int64_t n_chunks, int64_t n_tokens, float *scratch,
                   size_t scratch_bytes, cudaStream_t stream) {
    constexpr int D = 32 * EPL;
    const int64_t groups = a.n_head_kv * n_chunks; /* blocks per split */
    if (n_tokens > 1) { /* a batch: its tokens fill the GPU, one split each */
        a.n_split = 1;
        attn_split_kernel<TYPE, EPL, HB><<<dim3(1u, (unsigned)groups, (unsigned)n_tokens), WARPS * 32, 0, stream>>>(a);
        return;
    }
    /* One wave of blocks: as many splits as fill every SM's resident blocks. */
    int64_t ns = (int64_t)sm_count() * blocks_per_sm<TYPE, EPL, HB>() / groups;
    if (ns > max_splits(a.n_kv)) ns = max_splits(a.n_kv);
    size_t have = scratch ? scratch_bytes / sizeof(float) : 0;
    int64_t fit = have > 3 ? (int64_t)((have - 3) / (size_t)(n_head * (D + 2))) : 0;
    if (ns > fit) ns = fit;
    if (ns < 1) ns = 1;
    a.n_split = (int)ns;
    a.part_ml = ns > 1 ? scratch : NULL;
    a.part_acc = ns > 1 ? scratch + ml_floats(n_head, ns) : NULL;
    attn_split_kernel<TYPE, EPL, HB><<<dim3((unsigned)ns, (unsigned)groups), WARPS * 32, 0, stream>>>(a);
    if (ns > 1) attn_merge_kernel<<<(unsigned)n_head, D, 0, stream>>>(a.part_ml, a.part_acc, (int)ns, a.out);
}

template <int TYPE, int EPL>
static void launch_heads(int hb, attn_args a, int64_t n_head, int64_t n_chunks, int64_t n_tokens, float *scratch,
                         size_t scratch_bytes, cudaStream_t stream) {
    switch (hb) {
    case 1: launch<TYPE, EPL, 1>(a, n_head, n_chunks, n_tokens, scratch, scratch_bytes, stream); break;
    case 2: launch<TYPE, EPL, 2>(a, n_head, n_chunks, n_tokens, scratch, scratch_bytes, stream); break;
    case 4: launch<TYPE, EPL, 4>(a, n_head, n_chunks, n_tokens, scratch, scratch_bytes, stream); break;
    case 8:
        /* Not instantiated where 8 heads would not fit (never chosen there). */
        if constexpr (max_heads_per_block(EPL) >= 8) launch<TYPE, EPL, 8>(a, n_head, n_chunks, n_tokens, scratch, scratch_bytes, stream);
        else CLV_ASSERT(!"8 heads per block chosen for a large head size");
        break;
    default: CLV_ASSERT(!"heads per block not a power of two up to 8");
    }
}

template <int TYPE>
static void launch_type(int epl, int hb, attn_args a, int64_t n_head, int64_t n_chunks, int64_t n_tokens,
                        float *scratch, size_t scratch_bytes, cudaStream_t stream) {
    switch (epl) {
    case 1: launch_heads<TYPE, 1>(hb, a, n_head, n_chunks, n_tokens, scratch, scratch_bytes, stream); break;
    case 2: launch_heads<TYPE, 2>(hb, a, n_head, n_chunks, n_tokens, scratch, scratch_bytes, stream); break;
    case 3: launch_heads<TYPE, 3>(hb, a, n_head, n_chunks, n_tokens, scratch, scratch_bytes, stream); break;
    case 4: launch_heads<TYPE, 4>(hb, a, n_head, n_chunks, n_tokens, scratch, scratch_bytes, stream); break;
    case 5: launch_heads<TYPE, 5>(hb, a, n_head, n_chunks, n_tokens, scratch, scratch_bytes, stream); break;
    case 6: launch_heads<TYPE, 6>(hb, a, n_head, n_chunks, n_tokens, scratch, scratch_bytes, stream); break;
    case 7: launch_heads<TYPE, 7>(hb, a, n_head, n_chunks, n_tokens, scratch, scratch_bytes, stream); break;
    case 8: launch_heads<TYPE, 8>(hb, a, n_head, n_chunks, n_tokens, scratch, scratch_bytes, stream); break;
    default: CLV_ASSERT(!"head_dim checked before");
    }
}

static bool shape_ok(const clv_cuda_attention_shape *s) {
    return s && s->n_head >= 1 && s->n_head_kv >= 1 && s->n_head % s->n_head_kv == 0 && s->head_dim >= 1 &&
           s->n_head <= (1 << 20);
}

static bool head_dim_supported(int64_t hd) { return hd % 32 == 0 && hd / 32 >= 1 && hd / 32 <= MAX_EPL; }

} // namespace

extern "C" size_t clv_cuda_attention_scratch_bytes(const clv_cuda_attention_shape *shape, int64_t n_kv_max) {
    if (!shape_ok(shape) || n_kv_max < 1) return 0;
    int64_t ns = max_splits(n_kv_max);
    return ns > 1 ? partial_floats(shape->n_head, ns, shape->head_dim) * sizeof(float) : 0;
}

/* n_tokens > 1: a batch, pos_dev[t] token t's position. */
static clv_status decode(const clv_cuda_attention_shape *shape, const float *q_dev, const void *k_cache_dev,
                         const void *v_cache_dev, int64_t kv_start, int64_t n_kv, const int32_t *pos_dev,
                         int64_t n_tokens, int64_t window, float scale, float softcap, float *out_dev,
                         void *scratch_dev, size_t scratch_bytes, void *stream) {
    if (!shape_ok(shape)) {
        return clv_fail(CLV_ERR_ARG, "CUDA attention: %lld query heads over %lld KV heads",
                        shape ? (long long)shape->n_head : 0LL, shape ? (long long)shape->n_head_kv : 0LL);
    }
    if (shape->kv_type != CLV_TYPE_F16 && shape->kv_type != CLV_TYPE_F32) {
        return clv_fail(CLV_ERR_UNSUPPORTED, "CUDA attention: KV cache type %s (%d) is not supported (F16 or F32)",
                        clv_type_name(shape->kv_type), (int)shape->kv_type);
    }
    if (!head_dim_supported(shape->head_dim)) {
        return clv_fail(CLV_ERR_UNSUPPORTED, "CUDA attention: head size %lld is not supported (a multiple of 32 up to %d)",
                        (long long)shape->head_dim, 32 * MAX_EPL);
    }
    if (n_kv < 1 || kv_start < 0 || kv_start > INT64_MAX / 2 - n_kv) {
        return clv_fail(CLV_ERR_ARG, "CUDA attention: %lld keys from position %lld", (long long)n_kv,
                        (long long)kv_start);
    }
    if (!(softcap >= 0.0f)) return clv_fail(CLV_ERR_ARG, "CUDA attention: softcap %g is negative", (double)softcap);
    if (!q_dev || !k_cache_dev || !v_cache_dev || !out_dev || (!scratch_dev && scratch_bytes)) {
        return clv_fail(CLV_ERR_ARG, "CUDA attention: a NULL device pointer");
    }
    if ((uintptr_t)k_cache_dev % 16 || (uintptr_t)v_cache_dev % 16 || (uintptr_t)q_dev % 4 ||
        (uintptr_t)out_dev % 4 || (uintptr_t)scratch_dev % 4) {
        return clv_fail(CLV_ERR_ARG, "CUDA attention: misaligned device pointer (K and V caches need 16 bytes)");
    }
    const int epl = (int)(shape->head_dim / 32);
    const int64_t group = shape->n_head / shape->n_head_kv;
    int hb = 1;
    while (hb < group && hb < max_heads_per_block(epl)) hb *= 2;
    const int64_t n_chunks = (group + hb - 1) / hb;
    if (n_tokens < 1 || n_tokens > 65535 || (n_tokens > 1 && !pos_dev)) {
        return clv_fail(CLV_ERR_ARG, "CUDA attention: a batch of %lld tokens (at most 65535, with positions)",
                        (long long)n_tokens);
    }
    if (shape->n_head_kv * n_chunks > 65535) {
        return clv_fail(CLV_ERR_UNSUPPORTED, "CUDA attention: %lld KV heads are too many for one launch",
                        (long long)shape->n_head_kv);
    }
    attn_args a = {};
    a.q = q_dev;
    a.k = k_cache_dev;
    a.v = v_cache_dev;
    a.kv_start = kv_start;
    a.n_kv = n_kv; /* with pos_dev, the most keys: what the splits are planned for */
    a.pos = pos_dev;
    a.window = window;
    a.tok_stride = shape->n_head * shape->head_dim;
    a.n_head_kv = (int)shape->n_head_kv;
    a.group = (int)group;
    a.scale = scale;
    a.softcap = softcap;
    a.out = out_dev;
    cudaStream_t s = (cudaStream_t)stream;
    float *scratch = (float *)scratch_dev;
    if (shape->kv_type == CLV_TYPE_F16) {
        launch_type<CLV_TYPE_F16>(epl, hb, a, shape->n_head, n_chunks, n_tokens, scratch, scratch_bytes, s);
    } else {
        launch_type<CLV_TYPE_F32>(epl, hb, a, shape->n_head, n_chunks, n_tokens, scratch, scratch_bytes, s);
    }
    cudaError_t err = cudaGetLastError();
    if (err != cudaSuccess) {
        return clv_fail(CLV_ERR_DEVICE, "CUDA attention (%s, %lld heads, head size %lld, %lld keys): launch failed: %s",
                        clv_type_name(shape->kv_type), (long long)shape->n_head, (long long)shape->head_dim,
                        (long long)n_kv, cudaGetErrorString(err));
    }
    return CLV_OK;
}

extern "C" clv_status clv_cuda_attention_decode(const clv_cuda_attention_shape *shape, const float *q_dev,
                                                const void *k_cache_dev, const void *v_cache_dev, int64_t kv_start,
                                                int64_t n_kv, float scale, float softcap, float *out_dev,
                                                void *scratch_dev, size_t scratch_bytes, void *stream) {
    return decode(shape, q_dev, k_cache_dev, v_cache_dev, kv_start, n_kv, NULL, 1, 0, scale, softcap, out_dev,
                  scratch_dev, scratch_bytes, stream);
}

extern "C" clv_status clv_cuda_attention_decode_at(const clv_cuda_attention_shape *shape, const float *q_dev,
                                                   const void *k_cache_dev, const void *v_cache_dev,
                                                   const int32_t *pos_dev, int64_t window, int64_t n_kv_max,
                                                   float scale, float softcap, float *out_dev, void *scratch_dev,
                                                   size_t scratch_bytes, void *stream) {
    if (!pos_dev || window < 0) return clv_fail(CLV_ERR_ARG, "CUDA attention: no position, or a negative window");
    return decode(shape, q_dev, k_cache_dev, v_cache_dev, 0, n_kv_max, pos_dev, 1, window, scale, softcap, out_dev,
                  scratch_dev, scratch_bytes, stream);
}

extern "C" clv_status clv_cuda_attention_batch(const clv_cuda_attention_shape *shape, const float *q_dev,
                                               const void *k_cache_dev, const void *v_cache_dev,
                                               const int32_t *pos_dev, int64_t n_tokens, int64_t window, float scale,
                                               float softcap, float *out_dev, void *stream) {
    if (!pos_dev || window < 0) return clv_fail(CLV_ERR_ARG, "CUDA attention: no positions, or a negative window");
    /* n_kv only passes the checks: each token's range comes from its position */
    return decode(shape, q_dev, k_cache_dev, v_cache_dev, 0, 1, pos_dev, n_tokens, window, scale, softcap, out_dev,
                  NULL, 0, stream);
}
