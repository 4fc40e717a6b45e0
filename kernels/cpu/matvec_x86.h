/* Internal: x86 helpers and the 32-element-format kernels shared by
 * matvec_avx2.c and matvec_avx512.c. The including file defines
 *   DOT_US(u, s): 8 x i32, each the sum of 4 products of unsigned bytes of u
 *                 with signed bytes of s (maddubs+madd on AVX2, dpbusd with VNNI)
 * and is compiled with at least AVX2, FMA and F16C. */
#ifndef CLV_CPU_MATVEC_X86_H
#define CLV_CPU_MATVEC_X86_H

#include <immintrin.h>

#include "matvec_impl.h"

#define INL static inline __attribute__((always_inline))

INL float h2f(const uint8_t *p) { return _cvtsh_ss(clv_load_u16(p)); }

/* Weights stream from DRAM once per token; a prefetch this far ahead of the
 * block being decoded keeps more misses in flight than the hardware
 * prefetchers alone (which stop at 4 KiB pages), so that many threads
 * together get closer to the memory bandwidth (16 threads of a Xeon, Q6_K:
 * 64 -> 86 GB/s at 2 KiB; 1 KiB gained less). The kernels that read four
 * or eight rows at once showed no gain and do not prefetch. Prefetches never
 * fault, so running past the end of a matrix is harmless. */
#ifndef CLV_CPU_PREFETCH
#define CLV_CPU_PREFETCH 2048
#endif
INL void prefetch_w(const uint8_t *p, int bytes) {
#if CLV_CPU_PREFETCH > 0
    for (int o = 0; o < bytes; o += 64) _mm_prefetch((const char *)(p + CLV_CPU_PREFETCH + o), _MM_HINT_T0);
#else
    (void)p;
    (void)bytes;
#endif
}

INL __m256i load256(const uint8_t *p) { return _mm256_loadu_si256((const __m256i *)(const void *)p); }
INL __m128i load128(const uint8_t *p) { return _mm_loadu_si128((const __m128i *)(const void *)p); }

INL float hsum256(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

INL int hsum256_epi32(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 1));
    return _mm_cvtsi128_si32(s);
}

/* 16 bytes of nibbles -> 32 bytes: the low nibbles, then the high ones (the
 * element order of the 32-element formats and of IQ4_XS sub-blocks). */
INL __m256i nib32(const uint8_t *p) {
    __m128i q = load128(p);
    __m256i v = _mm256_inserti128_si256(_mm256_castsi128_si256(q), _mm_srli_epi16(q, 4), 1);
    return _mm256_and_si256(v, _mm256_set1_epi8(0x0F));
}

/* Byte j = 0xFF where bit j of the little-endian u32 at p is set, else 0. */
INL __m256i bits32(const uint8_t *p) {
    __m256i v = _mm256_set1_epi32((int)clv_load_u32(p));
    v = _mm256_shuffle_epi8(v, _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2,
                                                 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3));
    v = _mm256_or_si256(v, _mm256_set1_epi64x(0x7fbfdfeff7fbfdfeLL)); /* all bits but j % 8 */
    return _mm256_cmpeq_epi8(v, _mm256_set1_epi64x(-1));
}

/* Control for _mm256_shuffle_epi8 that spreads i16 word a over the low lane
 * and word b over the high lane (indices within each lane). */
INL __m256i spread_words(int a, int b) {
    return _mm256_set_m128i(_mm_set1_epi16((short)(0x0100 + 0x0202 * b)),
                            _mm_set1_epi16((short)(0x0100 + 0x0202 * a)));
}

/* --- sub-block scales, unpacked in registers ------------------------------- */
/* (Small stack arrays written byte-wise and read back as vectors stall on
 * store forwarding; these stay in general and vector registers.) */

/* Q4_K/Q5_K: the eight 6-bit scales (bytes of *sc) and mins (*mn). */
INL void k4_scales(const uint8_t *s, uint64_t *sc, uint64_t *mn) {
    const uint32_t a = clv_load_u32(s), b = clv_load_u32(s + 4), c = clv_load_u32(s + 8);
    *sc = (a & 0x3f3f3f3fu) | (uint64_t)((c & 0x0f0f0f0fu) | ((a >> 6) & 0x03030303u) << 4) << 32;
    *mn = (b & 0x3f3f3f3fu) | (uint64_t)(((c >> 4) & 0x0f0f0f0fu) | ((b >> 6) & 0x03030303u) << 4) << 32;
}

/* Q3_K: the sixteen scales as signed bytes, bias removed. */
INL __m128i k3_scales(const uint8_t *s) {
    const uint32_t a = clv_load_u32(s), b = clv_load_u32(s + 4), c = clv_load_u32(s + 8);
    const uint64_t lo = ((a & 0x0f0f0f0fu) | (c & 0x03030303u) << 4) |
                        (uint64_t)((b & 0x0f0f0f0fu) | ((c >> 2) & 0x03030303u) << 4) << 32;
    const uint64_t hi = (((a >> 4) & 0x0f0f0f0fu) | ((c >> 4) & 0x03030303u) << 4) |
                        (uint64_t)(((b >> 4) & 0x0f0f0f0fu) | ((c >> 6) & 0x03030303u) << 4) << 32;
    return _mm_sub_epi8(_mm_set_epi64x((long long)hi, (long long)lo), _mm_set1_epi8(32));
}

/* IQ4_XS: the eight scales as int16, bias removed. Low nibbles come in
 * order from the 4 bytes; the 2-bit high parts are shifted into the top of
 * each word by a multiply, then down. */
INL __m128i iq4xs_scales(const uint8_t *b) {
    const __m128i l = _mm_cvtsi32_si128((int)clv_load_u32(b + 4));
    const __m128i m4 = _mm_set1_epi8(0x0F);
    const __m128i lo = _mm_cvtepu8_epi16(_mm_unpacklo_epi8(_mm_and_si128(l, m4), _mm_and_si128(_mm_srli_epi16(l, 4), m4)));
    const __m128i h = _mm_srli_epi16(_mm_mullo_epi16(_mm_set1_epi16((short)clv_load_u16(b + 2)),
                                                     _mm_setr_epi16(1 << 14, 1 << 12, 1 << 10, 1 << 8, 1 << 6, 1 << 4, 1 << 2, 1)),
                                     14);
    return _mm_sub_epi16(_mm_or_si128(lo, _mm_slli_epi16(h, 4)), _mm_set1_epi16(32));
}

/* --- 32-element formats against Q8_0 -------------------------------------- */

INL int q32_bytes(int32_t t) {
    switch (t) {
    case CLV_TYPE_Q4_0: return 18;
    case CLV_TYPE_Q4_1: return 20;
    case CLV_TYPE_Q5_0: return 22;
    case CLV_TYPE_Q5_1: return 24;
    case CLV_TYPE_Q8_0: return 34;
    case CLV_TYPE_IQ4_NL: return 18;
    default: return 17; /* MXFP4 */
    }
}

/* One weight block against the same block of nc activations (x points at
 * activation 0's block; the others are xs bytes apart). Weights are decoded
 * once, into unsigned bytes (affine formats) or signed ones; signed ones go
 * through the sign trick |w| * (x * sign w), since the byte product takes one
 * unsigned operand. Products of |w| <= 128 and |x| <= 127 stay below the
 * int16 saturation of maddubs. */
INL void q32_block(int32_t type, const uint8_t *b, const uint8_t *x, size_t xs, int nc, __m256 *acc) {
    const bool affine = type == CLV_TYPE_Q4_1 || type == CLV_TYPE_Q5_1;
    __m256i q;
    float d, m = 0.0f;
    switch (type) {
    case CLV_TYPE_Q4_0:
        q = _mm256_sub_epi8(nib32(b + 2), _mm256_set1_epi8(8));
        d = h2f(b);
        break;
    case CLV_TYPE_Q4_1:
        q = nib32(b + 4);
        d = h2f(b);
        m = h2f(b + 2);
        break;
    case CLV_TYPE_Q5_0: /* nibble - 16 where the fifth bit is clear: or 0xF0 */
        q = _mm256_or_si256(nib32(b + 6), _mm256_andnot_si256(bits32(b + 2), _mm256_set1_epi8((char)0xF0)));
        d = h2f(b);
        break;
    case CLV_TYPE_Q5_1:
        q = _mm256_or_si256(nib32(b + 8), _mm256_and_si256(bits32(b + 4), _mm256_set1_epi8(0x10)));
        d = h2f(b);
        m = h2f(b + 2);
        break;
    case CLV_TYPE_Q8_0:
        q = load256(b + 2);
        d = h2f(b);
        break;
    case CLV_TYPE_IQ4_NL:
        q = _mm256_shuffle_epi8(_mm256_broadcastsi128_si256(load128((const uint8_t *)clv_iq4nl_values)), nib32(b + 2));
        d = h2f(b);
        break;
    default: /* MXFP4 */
        q = _mm256_shuffle_epi8(_mm256_broadcastsi128_si256(load128((const uint8_t *)clv_mxfp4_values)), nib32(b + 1));
        d = clv_e8m0_half(b[0]);
        break;
    }
    const __m256i u = affine ? q : _mm256_sign_epi8(q, q);
    for (int c = 0; c < nc; c++) {
        const uint8_t *xb = x + (size_t)c * xs;
        const __m256i xv = load256(xb + 2);
        const float dx = h2f(xb);
        const __m256i p = DOT_US(u, affine ? xv : _mm256_sign_epi8(xv, q));
        acc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(d * dx), acc[c]);
        if (affine) {
            const __m256i s = DOT_US(_mm256_set1_epi8(1), xv);
            acc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_set1_ps(m * dx), acc[c]);
        }
    }
}

/* Row w (nb blocks) against nc activations; y[c * ys] = results. */
INL void q32_tile(int32_t type, int64_t n, const uint8_t *w, const uint8_t *x, size_t xs, int nc, float *y,
                  size_t ys) {
    const int wb = q32_bytes(type);
    const int64_t nb = n / 32;
    if (nc == 1) { /* two accumulators hide the FMA latency */
        __m256 a0[1] = {_mm256_setzero_ps()}, a1[1] = {_mm256_setzero_ps()};
        int64_t i = 0;
        for (; i + 1 < nb; i += 2) {
            prefetch_w(w + i * wb, 2 * wb);
            q32_block(type, w + i * wb, x + i * CLV_Q80_BYTES, xs, 1, a0);
            q32_block(type, w + (i + 1) * wb, x + (i + 1) * CLV_Q80_BYTES, xs, 1, a1);
        }
        if (i < nb) q32_block(type, w + i * wb, x + i * CLV_Q80_BYTES, xs, 1, a0);
        y[0] = hsum256(_mm256_add_ps(a0[0], a1[0]));
        return;
    }
    __m256 acc[8];
    for (int c = 0; c < nc; c++) acc[c] = _mm256_setzero_ps();
    for (int64_t i = 0; i < nb; i++) {
        prefetch_w(w + i * wb, wb);
        q32_block(type, w + i * wb, x + i * CLV_Q80_BYTES, xs, nc, acc);
    }
    for (int c = 0; c < nc; c++) y[(size_t)c * ys] = hsum256(acc[c]);
}

/* --- K-quants and IQ4_XS against Q8_K, 256-bit ------------------------------ */
/* The including file also defines MADD_ACC(acc, p, s): acc + the i32 pair
 * sums of the i16 products p * s (madd + add; one vpdpwssd with VNNI). */

/* Each of these adds one super-block of weight row b against nc activation
 * super-blocks (x, x + xs, ...) into acc[c]. Sub-block scales are applied in
 * integer by madd against a vector of the scale; the whole super-block is one
 * int32 sum per lane, converted once. */

/* Both lanes = lane h of v (immediates spelled out: unoptimized builds do
 * not fold them). */
INL __m256i lane_bcast(__m256i v, int h) {
    return h ? _mm256_permute2x128_si256(v, v, 0x11) : _mm256_permute2x128_si256(v, v, 0x00);
}

INL __m256i bsums256(const uint8_t *xb) { return load256(xb + CLV_Q8K_BSUMS); }
INL const uint8_t *xqs256(const uint8_t *xb) { return xb + CLV_Q8K_QS; }

INL void q2k_block256(const uint8_t *b, const uint8_t *x, size_t xs, int nc, __m256 *acc) {
    const __m128i s8 = load128(b);
    const __m256i sc = _mm256_cvtepu8_epi16(_mm_and_si128(s8, _mm_set1_epi8(0x0F)));
    const __m256i mn = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(s8, 4), _mm_set1_epi8(0x0F)));
    const float d = h2f(b + 80), dmin = h2f(b + 82);
    __m256i isum[8];
    for (int c = 0; c < nc; c++) isum[c] = _mm256_setzero_si256();
    for (int h = 0; h < 2; h++) {
        const __m256i qv = load256(b + 16 + 32 * h);
        const __m256i sch = lane_bcast(sc, h); /* scales 8h..8h+7 */
        for (int j = 0; j < 4; j++) {
            const __m256i q = _mm256_and_si256(_mm256_srli_epi16(qv, 2 * j), _mm256_set1_epi8(3));
            const __m256i s = _mm256_shuffle_epi8(sch, spread_words(2 * j, 2 * j + 1));
            for (int c = 0; c < nc; c++) {
                const __m256i xv = load256(xqs256(x + (size_t)c * xs) + 128 * h + 32 * j);
                isum[c] = MADD_ACC(isum[c], _mm256_maddubs_epi16(q, xv), s);
            }
        }
    }
    for (int c = 0; c < nc; c++) {
        const uint8_t *xb = x + (size_t)c * xs;
        const float dx = clv_load_f32(xb);
        const __m256i msum = _mm256_madd_epi16(bsums256(xb), mn);
        acc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[c]), _mm256_set1_ps(d * dx), acc[c]);
        acc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(msum), _mm256_set1_ps(-dmin * dx), acc[c]);
    }
}

/* q3 = q2 | high << 2 in 0..7; the -4 comes back through the block sums. */
INL void q3k_block256(const uint8_t *b, const uint8_t *x, size_t xs, int nc, __m256 *acc) {
    const __m256i sc = _mm256_cvtepi8_epi16(k3_scales(b + 96));
    const __m256i hm = load256(b);
    const float d = h2f(b + 108);
    __m256i isum[8];
    for (int c = 0; c < nc; c++) isum[c] = _mm256_setzero_si256();
    for (int h = 0; h < 2; h++) {
        const __m256i qv = load256(b + 32 + 32 * h);
        const __m256i sch = lane_bcast(sc, h);
        for (int j = 0; j < 4; j++) {
            const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(hm, 4 * h + j), _mm256_set1_epi8(1));
            const __m256i q = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(qv, 2 * j), _mm256_set1_epi8(3)),
                                              _mm256_slli_epi16(hi, 2));
            const __m256i s = _mm256_shuffle_epi8(sch, spread_words(2 * j, 2 * j + 1));
            for (int c = 0; c < nc; c++) {
                const __m256i xv = load256(xqs256(x + (size_t)c * xs) + 128 * h + 32 * j);
                isum[c] = MADD_ACC(isum[c], _mm256_maddubs_epi16(q, xv), s);
            }
        }
    }
    for (int c = 0; c < nc; c++) {
        const uint8_t *xb = x + (size_t)c * xs;
        const __m256i off = _mm256_slli_epi32(_mm256_madd_epi16(bsums256(xb), sc), 2);
        const __m256i t = _mm256_sub_epi32(isum[c], off);
        acc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(t), _mm256_set1_ps(d * clv_load_f32(xb)), acc[c]);
    }
}

INL void q45k_block256(bool five, const uint8_t *b, const uint8_t *x, size_t xs, int nc, __m256 *acc) {
    uint64_t sc8, mn8;
    k4_scales(b + 4, &sc8, &mn8);
    const __m256i sc = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(_mm_cvtsi64_si128((long long)sc8)));
    const __m128i m16 = _mm_cvtepu8_epi16(_mm_cvtsi64_si128((long long)mn8));
    const __m256i mn = _mm256_set_m128i(_mm_unpackhi_epi16(m16, m16), _mm_unpacklo_epi16(m16, m16));
    const float d = h2f(b), dmin = h2f(b + 2);
    const uint8_t *qs = b + (five ? 48 : 16);
    const __m256i hv = five ? load256(b + 16) : _mm256_setzero_si256();
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    __m256i isum[8];
    for (int c = 0; c < nc; c++) isum[c] = _mm256_setzero_si256();
    for (int k = 0; k < 4; k++) {
        const __m256i qv = load256(qs + 32 * k);
        __m256i lo = _mm256_and_si256(qv, m4), hi = _mm256_and_si256(_mm256_srli_epi16(qv, 4), m4);
        if (five) {
            const __m256i one = _mm256_set1_epi8(1);
            lo = _mm256_or_si256(lo, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hv, 2 * k), one), 4));
            hi = _mm256_or_si256(hi, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hv, 2 * k + 1), one), 4));
        }
        const __m256i s0 = _mm256_shuffle_epi8(sc, spread_words(2 * k, 2 * k));
        const __m256i s1 = _mm256_shuffle_epi8(sc, spread_words(2 * k + 1, 2 * k + 1));
        for (int c = 0; c < nc; c++) {
            const uint8_t *xq = xqs256(x + (size_t)c * xs) + 64 * k;
            isum[c] = MADD_ACC(isum[c], _mm256_maddubs_epi16(lo, load256(xq)), s0);
            isum[c] = MADD_ACC(isum[c], _mm256_maddubs_epi16(hi, load256(xq + 32)), s1);
        }
    }
    for (int c = 0; c < nc; c++) {
        const uint8_t *xb = x + (size_t)c * xs;
        const float dx = clv_load_f32(xb);
        const __m256i msum = _mm256_madd_epi16(bsums256(xb), mn);
        acc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[c]), _mm256_set1_ps(d * dx), acc[c]);
        acc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(msum), _mm256_set1_ps(-dmin * dx), acc[c]);
    }
}

/* q6 in 0..63 unsigned; the -32 comes back through the block sums. */
INL void q6k_block256(const uint8_t *b, const uint8_t *x, size_t xs, int nc, __m256 *acc) {
    const __m256i sc = _mm256_cvtepi8_epi16(load128(b + 192));
    const float d = h2f(b + 208);
    const __m256i m4 = _mm256_set1_epi8(0x0F), m2 = _mm256_set1_epi8(0x30);
    __m256i isum[8];
    for (int c = 0; c < nc; c++) isum[c] = _mm256_setzero_si256();
    for (int h = 0; h < 2; h++) {
        const __m256i l0 = load256(b + 64 * h), l1 = load256(b + 64 * h + 32), hv = load256(b + 128 + 32 * h);
        const __m256i sch = lane_bcast(sc, h);
        __m256i q[4];
        q[0] = _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_and_si256(_mm256_slli_epi16(hv, 4), m2));
        q[1] = _mm256_or_si256(_mm256_and_si256(l1, m4), _mm256_and_si256(_mm256_slli_epi16(hv, 2), m2));
        q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4), _mm256_and_si256(hv, m2));
        q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4), _mm256_and_si256(_mm256_srli_epi16(hv, 2), m2));
        for (int g = 0; g < 4; g++) {
            const __m256i s = _mm256_shuffle_epi8(sch, spread_words(2 * g, 2 * g + 1));
            for (int c = 0; c < nc; c++) {
                const __m256i xv = load256(xqs256(x + (size_t)c * xs) + 128 * h + 32 * g);
                isum[c] = MADD_ACC(isum[c], _mm256_maddubs_epi16(q[g], xv), s);
            }
        }
    }
    for (int c = 0; c < nc; c++) {
        const uint8_t *xb = x + (size_t)c * xs;
        const __m256i off = _mm256_slli_epi32(_mm256_madd_epi16(bsums256(xb), sc), 5);
        const __m256i t = _mm256_sub_epi32(isum[c], off);
        acc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(t), _mm256_set1_ps(d * clv_load_f32(xb)), acc[c]);
    }
}

INL void iq4xs_block256(const uint8_t *b, const uint8_t *x, size_t xs, int nc, __m256 *acc) {
    const __m256i sc = _mm256_broadcastsi128_si256(iq4xs_scales(b));
    const __m256i table = _mm256_broadcastsi128_si256(load128((const uint8_t *)clv_iq4nl_values));
    const float d = h2f(b);
    __m256i isum[8];
    for (int c = 0; c < nc; c++) isum[c] = _mm256_setzero_si256();
    for (int ib = 0; ib < 8; ib++) {
        const __m256i q = _mm256_shuffle_epi8(table, nib32(b + 8 + 16 * ib));
        const __m256i u = _mm256_sign_epi8(q, q);
        const __m256i s = _mm256_shuffle_epi8(sc, spread_words(ib, ib));
        for (int c = 0; c < nc; c++) {
            const __m256i xv = load256(xqs256(x + (size_t)c * xs) + 32 * ib);
            isum[c] = MADD_ACC(isum[c], _mm256_maddubs_epi16(u, _mm256_sign_epi8(xv, q)), s);
        }
    }
    for (int c = 0; c < nc; c++) {
        const float dx = clv_load_f32(x + (size_t)c * xs);
        acc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[c]), _mm256_set1_ps(d * dx), acc[c]);
    }
}

INL void k_block256(int32_t type, const uint8_t *b, const uint8_t *x, size_t xs, int nc, __m256 *acc) {
    switch (type) {
    case CLV_TYPE_Q2_K: q2k_block256(b, x, xs, nc, acc); break;
    case CLV_TYPE_Q3_K: q3k_block256(b, x, xs, nc, acc); break;
    case CLV_TYPE_Q4_K: q45k_block256(false, b, x, xs, nc, acc); break;
    case CLV_TYPE_Q5_K: q45k_block256(true, b, x, xs, nc, acc); break;
    case CLV_TYPE_Q6_K: q6k_block256(b, x, xs, nc, acc); break;
    default: iq4xs_block256(b, x, xs, nc, acc); break;
    }
}

INL int kq_bytes(int32_t type) {
    switch (type) {
    case CLV_TYPE_Q2_K: return 84;
    case CLV_TYPE_Q3_K: return 110;
    case CLV_TYPE_Q4_K: return 144;
    case CLV_TYPE_Q5_K: return 176;
    case CLV_TYPE_Q6_K: return 210;
    default: return 136; /* IQ4_XS */
    }
}

INL void k_tile256(int32_t type, int64_t n, const uint8_t *w, const uint8_t *x, size_t xs, int nc, float *y,
                size_t ys) {
    const int wb = kq_bytes(type);
    __m256 acc[8];
    for (int c = 0; c < nc; c++) acc[c] = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / 256; i++) {
        prefetch_w(w + i * wb, wb);
        k_block256(type, w + i * wb, x + i * CLV_Q8K_BYTES, xs, nc, acc);
    }
    for (int c = 0; c < nc; c++) y[(size_t)c * ys] = hsum256(acc[c]);
}

/* Rows one at a time against groups of activations that stay in cache, NC at
 * a time (tile(..., nc, ...) with nc a constant at each call). */
#define X86_MM_DRIVER(name, NC, act_bytes, tile, ...)                                                      \
    static void name(int64_t n, const uint8_t *w, size_t rb, int64_t nrows, const uint8_t *x, size_t xs,   \
                     int64_t nbatch, float *y, size_t ys) {                                                \
        const int64_t group = clv_cpu_batch_group(xs, (act_bytes), nbatch);                                \
        for (int64_t b0 = 0; b0 < nbatch; b0 += group) {                                                   \
            const int64_t b1 = b0 + group < nbatch ? b0 + group : nbatch;                                  \
            for (int64_t r = 0; r < nrows; r++) {                                                          \
                const uint8_t *wr = w + r * rb;                                                            \
                int64_t b = b0;                                                                            \
                for (; b + (NC) <= b1; b += (NC)) tile(__VA_ARGS__, n, wr, x + b * xs, xs, (NC), y + b * ys + r, ys); \
                switch (b1 - b) {                                                                          \
                case 1: tile(__VA_ARGS__, n, wr, x + b * xs, xs, 1, y + b * ys + r, ys); break;            \
                case 2: tile(__VA_ARGS__, n, wr, x + b * xs, xs, 2, y + b * ys + r, ys); break;            \
                case 3: tile(__VA_ARGS__, n, wr, x + b * xs, xs, 3, y + b * ys + r, ys); break;            \
                case 4: if ((NC) > 4) tile(__VA_ARGS__, n, wr, x + b * xs, xs, 4, y + b * ys + r, ys); break;            \
                case 5: if ((NC) > 5) tile(__VA_ARGS__, n, wr, x + b * xs, xs, 5, y + b * ys + r, ys); break;            \
                case 6: if ((NC) > 6) tile(__VA_ARGS__, n, wr, x + b * xs, xs, 6, y + b * ys + r, ys); break;            \
                case 7: if ((NC) > 7) tile(__VA_ARGS__, n, wr, x + b * xs, xs, 7, y + b * ys + r, ys); break;            \
                default: break;                                                                            \
                }                                                                                          \
            }                                                                                              \
        }                                                                                                  \
    }

#define Q32_MM(name, type, NC) X86_MM_DRIVER(name, NC, n / 32 * CLV_Q80_BYTES, q32_tile, type)

#endif
