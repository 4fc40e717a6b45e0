/* AVX2 + FMA + F16C path. Built with those flags (kernels/CMakeLists.txt)
 * and only called when the CPU has them (matvec.c checks). Integer products
 * use maddubs (u8 x s8 -> i16 pairs) then madd (-> i32); weights are decoded
 * once per block and used against up to AVX2_NC activations. */
#include "matvec_impl.h"

#if defined(__x86_64__) && defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)

#define DOT_US(u, s) _mm256_madd_epi16(_mm256_maddubs_epi16((u), (s)), _mm256_set1_epi16(1))
#define MADD_ACC(acc, p, s) _mm256_add_epi32((acc), _mm256_madd_epi16((p), (s)))
#include "matvec_x86.h"

#define AVX2_NC 4

/* --- plain floats ---------------------------------------------------------- */

INL __m256 load8(int32_t type, const uint8_t *p) {
    switch (type) {
    case CLV_TYPE_F32: return _mm256_loadu_ps((const float *)(const void *)p);
    case CLV_TYPE_F16: return _mm256_cvtph_ps(load128(p));
    default: /* BF16: the top half of an fp32 */
        return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(load128(p)), 16));
    }
}

INL float load1(int32_t type, const uint8_t *p) {
    switch (type) {
    case CLV_TYPE_F32: return clv_load_f32(p);
    case CLV_TYPE_F16: return h2f(p);
    default: return clv_bf16_to_fp32(clv_load_u16(p));
    }
}

INL void float_tile(int32_t type, int64_t n, const uint8_t *w, const uint8_t *x, size_t xs, int nc, float *y,
                    size_t ys) {
    const int es = type == CLV_TYPE_F32 ? 4 : 2;
    int64_t i = 0;
    if (nc == 1) { /* four accumulators: FMA latency x throughput */
        const float *xf = (const float *)(const void *)x;
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        for (; i + 32 <= n; i += 32) {
            prefetch_w(w + i * es, 32 * es);
            a0 = _mm256_fmadd_ps(load8(type, w + i * es), _mm256_loadu_ps(xf + i), a0);
            a1 = _mm256_fmadd_ps(load8(type, w + (i + 8) * es), _mm256_loadu_ps(xf + i + 8), a1);
            a2 = _mm256_fmadd_ps(load8(type, w + (i + 16) * es), _mm256_loadu_ps(xf + i + 16), a2);
            a3 = _mm256_fmadd_ps(load8(type, w + (i + 24) * es), _mm256_loadu_ps(xf + i + 24), a3);
        }
        for (; i + 8 <= n; i += 8) a0 = _mm256_fmadd_ps(load8(type, w + i * es), _mm256_loadu_ps(xf + i), a0);
        float sum = hsum256(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
        for (; i < n; i++) sum += load1(type, w + i * es) * xf[i];
        y[0] = sum;
        return;
    }
    __m256 acc[8];
    for (int c = 0; c < nc; c++) acc[c] = _mm256_setzero_ps();
    for (; i + 8 <= n; i += 8) {
        if (i % 32 == 0) prefetch_w(w + i * es, 32 * es);
        const __m256 wv = load8(type, w + i * es);
        for (int c = 0; c < nc; c++) {
            const float *xf = (const float *)(const void *)(x + (size_t)c * xs);
            acc[c] = _mm256_fmadd_ps(wv, _mm256_loadu_ps(xf + i), acc[c]);
        }
    }
    for (int c = 0; c < nc; c++) {
        const float *xf = (const float *)(const void *)(x + (size_t)c * xs);
        float sum = hsum256(acc[c]);
        for (int64_t j = i; j < n; j++) sum += load1(type, w + j * es) * xf[j];
        y[(size_t)c * ys] = sum;
    }
}

/* --- 32-element formats, decode: two rows per register ----------------------- */

/* One row per 128-bit lane, the activation block broadcast to both, so the
 * per-block float work (scale, convert, FMA) is shared by two rows and the
 * activation's by four. Weights are unsigned (offset K, as in the AVX-512
 * path: K * sum(x) comes back once per block) except IQ4_NL, whose table
 * values need the sign trick: with an offset of 128 they would saturate
 * maddubs. Q8_0 keeps the one-row kernel (a row's block fills a register). */

INL __m256i lanes2(const uint8_t *p0, const uint8_t *p1) {
    return _mm256_inserti128_si256(_mm256_castsi128_si256(load128(p0)), load128(p1), 1);
}

/* Byte j = 0xFF where bit j of m is set. */
INL __m256i bits32v(uint32_t m) {
    __m256i v = _mm256_set1_epi32((int)m);
    v = _mm256_shuffle_epi8(v, _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 3,
                                                 3, 3, 3, 3, 3, 3, 3));
    v = _mm256_or_si256(v, _mm256_set1_epi64x(0x7fbfdfeff7fbfdfeLL));
    return _mm256_cmpeq_epi8(v, _mm256_set1_epi64x(-1));
}

INL int r2_offset(int32_t type) {
    switch (type) {
    case CLV_TYPE_Q4_0: return 8;
    case CLV_TYPE_Q5_0: return 16;
    case CLV_TYPE_MXFP4: return 12;
    default: return 1; /* Q4_1, Q5_1: sum(x) for the offset term; IQ4_NL: unused */
    }
}

typedef struct r2_rows {
    __m256i lo, hi; /* elements 0..15 / 16..31 of each row's block, row r in lane r */
    __m128 d, m;    /* scales (and offsets) of the two rows in elements 0, 1 */
} r2_rows;

INL __m128 h2f_x2(const uint8_t *p0, const uint8_t *p1) {
    return _mm_cvtph_ps(_mm_cvtsi32_si128((int)((uint32_t)clv_load_u16(p0) | (uint32_t)clv_load_u16(p1) << 16)));
}

INL r2_rows r2_load(int32_t type, const uint8_t *b0, const uint8_t *b1) {
    r2_rows r;
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    const int qs = type == CLV_TYPE_MXFP4 ? 1 : type == CLV_TYPE_Q4_1 ? 4 : type == CLV_TYPE_Q5_0 ? 6 : type == CLV_TYPE_Q5_1 ? 8 : 2;
    const __m256i z = lanes2(b0 + qs, b1 + qs);
    r.lo = _mm256_and_si256(z, m4);
    r.hi = _mm256_and_si256(_mm256_srli_epi16(z, 4), m4);
    r.m = _mm_setzero_ps();
    if (type == CLV_TYPE_Q5_0 || type == CLV_TYPE_Q5_1) {
        const int o = type == CLV_TYPE_Q5_0 ? 2 : 4;
        const uint32_t h0 = clv_load_u32(b0 + o), h1 = clv_load_u32(b1 + o);
        const __m256i sixteen = _mm256_set1_epi8(16);
        r.lo = _mm256_or_si256(r.lo, _mm256_and_si256(bits32v((h0 & 0xFFFF) | h1 << 16), sixteen));
        r.hi = _mm256_or_si256(r.hi, _mm256_and_si256(bits32v(h0 >> 16 | (h1 >> 16) << 16), sixteen));
    }
    if (type == CLV_TYPE_IQ4_NL || type == CLV_TYPE_MXFP4) {
        __m256i t = _mm256_broadcastsi128_si256(load128((const uint8_t *)(type == CLV_TYPE_IQ4_NL ? clv_iq4nl_values : clv_mxfp4_values)));
        if (type == CLV_TYPE_MXFP4) t = _mm256_add_epi8(t, _mm256_set1_epi8(12)); /* 0..24 */
        r.lo = _mm256_shuffle_epi8(t, r.lo);
        r.hi = _mm256_shuffle_epi8(t, r.hi);
    }
    if (type == CLV_TYPE_MXFP4) r.d = _mm_setr_ps(clv_e8m0_half(b0[0]), clv_e8m0_half(b1[0]), 0.0f, 0.0f);
    else r.d = h2f_x2(b0, b1);
    if (type == CLV_TYPE_Q4_1 || type == CLV_TYPE_Q5_1) r.m = h2f_x2(b0 + 2, b1 + 2);
    return r;
}

INL __m256 spread2(__m128 v) { return _mm256_permutevar8x32_ps(_mm256_castps128_ps256(v), _mm256_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1)); }

/* Rows w + r * rb, r < 2 * G (the first nr real, the others repeat the last),
 * against nc activations xs bytes apart: y[c * ys + r] for r < nr. */
INL void r2_tile(int32_t type, int G, int64_t n, const uint8_t *w, size_t rb, int nr, const uint8_t *x, size_t xs,
                 int nc, float *y, size_t ys) {
    const int wb = q32_bytes(type);
    const bool affine = type == CLV_TYPE_Q4_1 || type == CLV_TYPE_Q5_1, sign = type == CLV_TYPE_IQ4_NL;
    const __m256i ones = _mm256_set1_epi16(1), kv = _mm256_set1_epi8((char)r2_offset(type));
    const uint8_t *row[4];
    for (int r = 0; r < 2 * G; r++) row[r] = w + (size_t)(r < nr ? r : nr - 1) * rb;
    __m256 acc[2][4];
    for (int g = 0; g < G; g++) {
        for (int c = 0; c < nc; c++) acc[g][c] = _mm256_setzero_ps();
    }
    for (int64_t i = 0; i < n / 32; i++) {
        const size_t o = (size_t)i * (size_t)wb;
        r2_rows rows[2];
        for (int g = 0; g < G; g++) rows[g] = r2_load(type, row[2 * g] + o, row[2 * g + 1] + o);
        for (int c = 0; c < nc; c++) {
            const uint8_t *xb = x + (size_t)c * xs + (size_t)i * CLV_Q80_BYTES;
            const __m256i xlo = _mm256_broadcastsi128_si256(load128(xb + 2)), xhi = _mm256_broadcastsi128_si256(load128(xb + 18));
            const __m128 dx = _mm_set1_ps(h2f(xb));
            __m256i ksum = _mm256_setzero_si256();
            if (!sign) ksum = _mm256_madd_epi16(_mm256_add_epi16(_mm256_maddubs_epi16(kv, xlo), _mm256_maddubs_epi16(kv, xhi)), ones);
            for (int g = 0; g < G; g++) {
                const r2_rows *r = &rows[g];
                __m256i p;
                if (sign) {
                    p = _mm256_add_epi32(
                        _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_sign_epi8(r->lo, r->lo), _mm256_sign_epi8(xlo, r->lo)), ones),
                        _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_sign_epi8(r->hi, r->hi), _mm256_sign_epi8(xhi, r->hi)), ones));
                } else { /* pair sums <= 2 * 31 * 127 each, their sum fits int16 */
                    p = _mm256_madd_epi16(_mm256_add_epi16(_mm256_maddubs_epi16(r->lo, xlo), _mm256_maddubs_epi16(r->hi, xhi)), ones);
                    if (!affine) p = _mm256_sub_epi32(p, ksum);
                }
                acc[g][c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), spread2(_mm_mul_ps(r->d, dx)), acc[g][c]);
                if (affine) acc[g][c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(ksum), spread2(_mm_mul_ps(r->m, dx)), acc[g][c]);
            }
        }
    }
    for (int g = 0; g < G; g++) {
        for (int c = 0; c < nc; c++) {
            const __m128 a = _mm256_castps256_ps128(acc[g][c]), b = _mm256_extractf128_ps(acc[g][c], 1);
            const __m128 h = _mm_hadd_ps(a, b);
            const __m128 s = _mm_hadd_ps(h, h); /* row 2g, row 2g+1, ... */
            if (2 * g < nr) y[(size_t)c * ys + (size_t)(2 * g)] = _mm_cvtss_f32(s);
            if (2 * g + 1 < nr) y[(size_t)c * ys + (size_t)(2 * g + 1)] = _mm_cvtss_f32(_mm_shuffle_ps(s, s, 1));
        }
    }
}

/* Decode in tiles of four rows; batches in tiles of two rows by AVX2_NC
 * activations (groups of activations that stay in cache, as X86_MM_DRIVER). */
#define R2_MM(name, type)                                                                                        \
    static void name(int64_t n, const uint8_t *w, size_t rb, int64_t nrows, const uint8_t *x, size_t xs,         \
                     int64_t nbatch, float *y, size_t ys) {                                                      \
        if (nbatch == 1) {                                                                                       \
            for (int64_t r = 0; r < nrows; r += 4)                                                               \
                r2_tile(type, 2, n, w + r * rb, rb, nrows - r < 4 ? (int)(nrows - r) : 4, x, xs, 1, y + r, ys); \
            return;                                                                                              \
        }                                                                                                        \
        const int64_t group = clv_cpu_batch_group(xs, n / 32 * CLV_Q80_BYTES, nbatch);                           \
        for (int64_t b0 = 0; b0 < nbatch; b0 += group) {                                                         \
            const int64_t b1 = b0 + group < nbatch ? b0 + group : nbatch;                                        \
            for (int64_t r = 0; r < nrows; r += 2) {                                                             \
                const int nr = nrows - r < 2 ? (int)(nrows - r) : 2;                                             \
                const uint8_t *wr = w + r * rb;                                                                  \
                int64_t b = b0;                                                                                  \
                for (; b + AVX2_NC <= b1; b += AVX2_NC)                                                          \
                    r2_tile(type, 1, n, wr, rb, nr, x + b * xs, xs, AVX2_NC, y + b * ys + r, ys);                \
                switch (b1 - b) {                                                                                \
                case 1: r2_tile(type, 1, n, wr, rb, nr, x + b * xs, xs, 1, y + b * ys + r, ys); break;           \
                case 2: r2_tile(type, 1, n, wr, rb, nr, x + b * xs, xs, 2, y + b * ys + r, ys); break;           \
                case 3: r2_tile(type, 1, n, wr, rb, nr, x + b * xs, xs, 3, y + b * ys + r, ys); break;           \
                default: break;                                                                                  \
                }                                                                                                \
            }                                                                                                    \
        }                                                                                                        \
    }

/* --- activation quantizers (byte-identical to quantize.c) ------------------ */

INL float hmax256(__m256 v) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
}

/* 32 floats times id, rounded half-even (the default MXCSR mode, as the
 * reference's round) and clamped to [-127, 127], as bytes in order; the four
 * int32 vectors go to i32 for the block sums. */
INL __m256i round32(const float *x, float id, __m256i i32[4]) {
    const __m256 s = _mm256_set1_ps(id);
    const __m256i lo = _mm256_set1_epi32(-127), hi = _mm256_set1_epi32(127);
    for (int k = 0; k < 4; k++) {
        __m256i v = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + 8 * k), s));
        i32[k] = _mm256_min_epi32(_mm256_max_epi32(v, lo), hi);
    }
    /* packs work per 128-bit lane: bytes end up as dwords 0,4,1,5,2,6,3,7 */
    const __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(i32[0], i32[1]), _mm256_packs_epi32(i32[2], i32[3]));
    return _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

INL __m256 absmax_acc(__m256 m, const float *x) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    return _mm256_max_ps(m, _mm256_andnot_ps(sign, _mm256_loadu_ps(x)));
}

static void quant_q8_0(const float *x, void *xq, int64_t n) {
    uint8_t *out = (uint8_t *)xq;
    for (int64_t i = 0; i < n / 32; i++, x += 32, out += CLV_Q80_BYTES) {
        __m256 m = _mm256_setzero_ps();
        for (int k = 0; k < 4; k++) m = absmax_acc(m, x + 8 * k);
        const clv_fp16 dh = clv_fp32_to_fp16(hmax256(m) / 127.0f);
        const float d = clv_fp16_to_fp32(dh);
        __m256i i32[4];
        const __m256i q = round32(x, d != 0.0f ? 1.0f / d : 0.0f, i32);
        memcpy(out, &dh, 2);
        _mm256_storeu_si256((__m256i *)(void *)(out + 2), q);
    }
}

static void quant_q8_k(const float *x, void *xq, int64_t n) {
    uint8_t *out = (uint8_t *)xq;
    for (int64_t i = 0; i < n / 256; i++, x += 256, out += CLV_Q8K_BYTES) {
        __m256 m = _mm256_setzero_ps();
        for (int k = 0; k < 32; k++) m = absmax_acc(m, x + 8 * k);
        const float d = hmax256(m) / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        memcpy(out, &d, 4);
        int16_t bs[16];
        for (int g = 0; g < 8; g++) {
            __m256i i32[4];
            const __m256i q = round32(x + 32 * g, id, i32);
            _mm256_storeu_si256((__m256i *)(void *)(out + CLV_Q8K_QS + 32 * g), q);
            bs[2 * g] = (int16_t)hsum256_epi32(_mm256_add_epi32(i32[0], i32[1]));
            bs[2 * g + 1] = (int16_t)hsum256_epi32(_mm256_add_epi32(i32[2], i32[3]));
        }
        memcpy(out + CLV_Q8K_BSUMS, bs, sizeof bs);
    }
}

/* --- tables ------------------------------------------------------------------ */

X86_MM_DRIVER(mm_f32, AVX2_NC, n * 4, float_tile, CLV_TYPE_F32)
X86_MM_DRIVER(mm_f16, AVX2_NC, n * 4, float_tile, CLV_TYPE_F16)
X86_MM_DRIVER(mm_bf16, AVX2_NC, n * 4, float_tile, CLV_TYPE_BF16)
Q32_MM(mm_q8_0, CLV_TYPE_Q8_0, AVX2_NC)
R2_MM(mm_q4_0, CLV_TYPE_Q4_0)
R2_MM(mm_q4_1, CLV_TYPE_Q4_1)
R2_MM(mm_q5_0, CLV_TYPE_Q5_0)
R2_MM(mm_q5_1, CLV_TYPE_Q5_1)
R2_MM(mm_iq4_nl, CLV_TYPE_IQ4_NL)
R2_MM(mm_mxfp4, CLV_TYPE_MXFP4)
#define K_MM(name, type) X86_MM_DRIVER(name, AVX2_NC, n / 256 * CLV_Q8K_BYTES, k_tile256, type)
K_MM(mm_q2_k, CLV_TYPE_Q2_K)
K_MM(mm_q3_k, CLV_TYPE_Q3_K)
K_MM(mm_q4_k, CLV_TYPE_Q4_K)
K_MM(mm_q5_k, CLV_TYPE_Q5_K)
K_MM(mm_q6_k, CLV_TYPE_Q6_K)
K_MM(mm_iq4_xs, CLV_TYPE_IQ4_XS)

const clv_cpu_kernels clv_cpu_kernels_avx2 = {
    .built = true,
    .mm = {
        [CLV_TYPE_F32] = mm_f32, [CLV_TYPE_F16] = mm_f16, [CLV_TYPE_BF16] = mm_bf16,
        [CLV_TYPE_Q4_0] = mm_q4_0, [CLV_TYPE_Q4_1] = mm_q4_1, [CLV_TYPE_Q5_0] = mm_q5_0,
        [CLV_TYPE_Q5_1] = mm_q5_1, [CLV_TYPE_Q8_0] = mm_q8_0, [CLV_TYPE_IQ4_NL] = mm_iq4_nl,
        [CLV_TYPE_MXFP4] = mm_mxfp4, [CLV_TYPE_Q2_K] = mm_q2_k, [CLV_TYPE_Q3_K] = mm_q3_k,
        [CLV_TYPE_Q4_K] = mm_q4_k, [CLV_TYPE_Q5_K] = mm_q5_k, [CLV_TYPE_Q6_K] = mm_q6_k,
        [CLV_TYPE_IQ4_XS] = mm_iq4_xs,
    },
    .quant_q8_0 = quant_q8_0,
    .quant_q8_k = quant_q8_k,
};

#else
const clv_cpu_kernels clv_cpu_kernels_avx2 = {.built = false};
#endif
