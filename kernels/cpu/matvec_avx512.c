/* AVX-512 path (F, BW, VL, VNNI): Ice Lake / Sapphire Rapids / Emerald
 * Rapids / Zen 4 and later. Built with those flags (kernels/CMakeLists.txt)
 * and only called when the CPU has them (matvec.c checks).
 *
 *  - Plain floats: 16 lanes, masked loads for the tail.
 *  - K-quants, IQ4_XS: 64 weights per register; products by maddubs
 *    (u8 x s8 -> i16 pairs), sub-block scales applied in integer by VNNI
 *    vpdpwssd (i16 x i16 -> i32, accumulated), one float FMA per super-block.
 *  - 32-element formats: these carry one scale per 32 weights, and turning
 *    each block's integer sum into float is what limits a one-row kernel. So
 *    rows go four to a register, one per 128-bit lane, against the activation
 *    block broadcast to all lanes; the block scales of the four rows are
 *    converted together and the activation's work (loads, scale, sum) is
 *    shared by all rows of the tile. Weights are made unsigned by an offset K
 *    (nibble q for Q4_0, q + 128 for Q8_0, table + 128 for IQ4_NL, ...) so that
 *    vpdpbusd takes them directly; the offset comes back as K * sum(x). Q8_0
 *    rows take a 256-bit half each.
 * Quantizing activations is left to the AVX2 path's routines (merged in by
 * matvec.c), which are not the bottleneck.
 *
 * Measured on a 16-core Emerald Rapids VM: 256-bit VNNI versions of the
 * K-quant kernels (k_tile256 with vpdpwssd) ran about as fast as these, the
 * one-row 256-bit kernel for 32-element formats far slower (46 vs 64 GB/s on
 * 16 threads); tiles of four rows instead of eight, and prefetching the row
 * streams, made no difference outside the noise. */
#include "matvec_impl.h"

#if defined(__x86_64__) && defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) && \
    defined(__AVX512VNNI__)

#define DOT_US(u, s) _mm256_dpbusd_epi32(_mm256_setzero_si256(), (u), (s))
#define MADD_ACC(acc, p, s) _mm256_dpwssd_epi32((acc), (p), (s))
#include "matvec_x86.h"

#define AVX512_NC 4

INL __m512i load512(const uint8_t *p) { return _mm512_loadu_si512((const void *)p); }

/* Control for _mm512_shuffle_epi8 that fills 128-bit lane t with i16 word w_t
 * of the same lane. */
INL __m512i spread_words4(int w0, int w1, int w2, int w3) {
    return _mm512_inserti64x4(_mm512_castsi256_si512(spread_words(w0, w1)), spread_words(w2, w3), 1);
}

/* --- plain floats ---------------------------------------------------------- */

INL __m512 load16(int32_t type, const uint8_t *p) {
    switch (type) {
    case CLV_TYPE_F32: return _mm512_loadu_ps((const void *)p);
    case CLV_TYPE_F16: return _mm512_cvtph_ps(load256(p));
    default: return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(load256(p)), 16));
    }
}

/* The first k < 16 elements, zeros after. */
INL __m512 load16_tail(int32_t type, const uint8_t *p, int k) {
    const __mmask16 m = (__mmask16)((1u << k) - 1);
    switch (type) {
    case CLV_TYPE_F32: return _mm512_maskz_loadu_ps(m, (const void *)p);
    case CLV_TYPE_F16: return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, (const void *)p));
    default:
        return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, (const void *)p)), 16));
    }
}

INL void float_tile(int32_t type, int64_t n, const uint8_t *w, const uint8_t *x, size_t xs, int nc, float *y,
                    size_t ys) {
    const int es = type == CLV_TYPE_F32 ? 4 : 2;
    int64_t i = 0;
    __m512 acc[8];
    for (int c = 0; c < nc; c++) acc[c] = _mm512_setzero_ps();
    if (nc == 1) { /* four accumulators: FMA latency x throughput */
        const float *xf = (const float *)(const void *)x;
        __m512 a1 = _mm512_setzero_ps(), a2 = a1, a3 = a1;
        for (; i + 64 <= n; i += 64) {
            prefetch_w(w + i * es, 64 * es);
            acc[0] = _mm512_fmadd_ps(load16(type, w + i * es), _mm512_loadu_ps(xf + i), acc[0]);
            a1 = _mm512_fmadd_ps(load16(type, w + (i + 16) * es), _mm512_loadu_ps(xf + i + 16), a1);
            a2 = _mm512_fmadd_ps(load16(type, w + (i + 32) * es), _mm512_loadu_ps(xf + i + 32), a2);
            a3 = _mm512_fmadd_ps(load16(type, w + (i + 48) * es), _mm512_loadu_ps(xf + i + 48), a3);
        }
        acc[0] = _mm512_add_ps(_mm512_add_ps(acc[0], a1), _mm512_add_ps(a2, a3));
    }
    for (; i + 16 <= n; i += 16) {
        prefetch_w(w + i * es, 16 * es);
        const __m512 wv = load16(type, w + i * es);
        for (int c = 0; c < nc; c++) {
            const float *xf = (const float *)(const void *)(x + (size_t)c * xs);
            acc[c] = _mm512_fmadd_ps(wv, _mm512_loadu_ps(xf + i), acc[c]);
        }
    }
    if (i < n) {
        const int k = (int)(n - i);
        const __m512 wv = load16_tail(type, w + i * es, k);
        for (int c = 0; c < nc; c++) {
            const float *xf = (const float *)(const void *)(x + (size_t)c * xs);
            acc[c] = _mm512_fmadd_ps(wv, _mm512_maskz_loadu_ps((__mmask16)((1u << k) - 1), xf + i), acc[c]);
        }
    }
    for (int c = 0; c < nc; c++) y[(size_t)c * ys] = _mm512_reduce_add_ps(acc[c]);
}

/* --- K-quants and IQ4_XS against Q8_K -------------------------------------- */

/* Each adds one super-block of weights b against nc activation super-blocks
 * (x, x + xs, ...): acc[c] gets the main term, accm[c] the min term. The
 * four registers w[k] hold weights 64k..64k+63 as unsigned bytes, s[k] the
 * matching sub-block scales as i16 (one per 16 or 32 weights). */

INL const uint8_t *xqs(const uint8_t *xb) { return xb + CLV_Q8K_QS; }
INL __m256i bsums(const uint8_t *xb) { return load256(xb + CLV_Q8K_BSUMS); }

/* isum = sum_k scale_k * (w_k . x_k) for activation xb. */
INL __m512i k_dot(const __m512i w[4], const __m512i s[4], const uint8_t *xb) {
    __m512i isum = _mm512_setzero_si512();
    for (int k = 0; k < 4; k++) isum = _mm512_dpwssd_epi32(isum, _mm512_maddubs_epi16(w[k], load512(xqs(xb) + 64 * k)), s[k]);
    return isum;
}

/* Scales of 16 sub-blocks of 16 (i16 words, in the order of the elements):
 * register k covers sub-blocks 4k..4k+3, one per lane. */
INL void scales16(__m256i sc, __m512i s[4]) {
    const __m512i lo = _mm512_broadcast_i32x4(_mm256_castsi256_si128(sc));
    const __m512i hi = _mm512_broadcast_i32x4(_mm256_extracti128_si256(sc, 1));
    s[0] = _mm512_shuffle_epi8(lo, spread_words4(0, 1, 2, 3));
    s[1] = _mm512_shuffle_epi8(lo, spread_words4(4, 5, 6, 7));
    s[2] = _mm512_shuffle_epi8(hi, spread_words4(0, 1, 2, 3));
    s[3] = _mm512_shuffle_epi8(hi, spread_words4(4, 5, 6, 7));
}

/* Scales of 8 sub-blocks of 32 (i16 words in an xmm): register k covers
 * sub-blocks 2k (low half) and 2k+1 (high half). */
INL void scales32(__m128i sc, __m512i s[4]) {
    const __m512i b = _mm512_broadcast_i32x4(sc);
    for (int k = 0; k < 4; k++) s[k] = _mm512_shuffle_epi8(b, spread_words4(2 * k, 2 * k, 2 * k + 1, 2 * k + 1));
}

/* Two-bit fields of 64 bytes (qs of Q2_K/Q3_K) in element order: shift 2j of
 * byte l is element 32j + l of the first 128 (bytes 0..31) or the second. */
INL void unpack2(const uint8_t *qs, __m512i w[4]) {
    const __m512i q = load512(qs), m3 = _mm512_set1_epi8(3);
    const __m512i t0 = _mm512_and_si512(q, m3), t1 = _mm512_and_si512(_mm512_srli_epi16(q, 2), m3);
    const __m512i t2 = _mm512_and_si512(_mm512_srli_epi16(q, 4), m3), t3 = _mm512_and_si512(_mm512_srli_epi16(q, 6), m3);
    w[0] = _mm512_shuffle_i64x2(t0, t1, 0x44);
    w[1] = _mm512_shuffle_i64x2(t2, t3, 0x44);
    w[2] = _mm512_shuffle_i64x2(t0, t1, 0xEE);
    w[3] = _mm512_shuffle_i64x2(t2, t3, 0xEE);
}

/* One bit per byte of 32 bytes, for the 32-element groups 2k (low half of
 * register k) and 2k+1 (high half): bit g of byte l belongs to element 32g + l. */
INL __m512i bit_pairs(const uint8_t *p) {
    const __m256i h = load256(p);
    return _mm512_inserti64x4(_mm512_castsi256_si512(h), _mm256_srli_epi16(h, 1), 1);
}

INL void q2k_block(const uint8_t *b, const uint8_t *x, size_t xs, int nc, __m512 *acc, __m256 *accm) {
    const __m128i s8 = load128(b), m4 = _mm_set1_epi8(0x0F);
    const __m256i mn = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(s8, 4), m4));
    __m512i w[4], s[4];
    scales16(_mm256_cvtepu8_epi16(_mm_and_si128(s8, m4)), s);
    unpack2(b + 16, w);
    const float d = h2f(b + 80), dmin = h2f(b + 82);
    for (int c = 0; c < nc; c++) {
        const uint8_t *xb = x + (size_t)c * xs;
        const float dx = clv_load_f32(xb);
        acc[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(k_dot(w, s, xb)), _mm512_set1_ps(d * dx), acc[c]);
        accm[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_madd_epi16(bsums(xb), mn)), _mm256_set1_ps(-dmin * dx), accm[c]);
    }
}

INL void q3k_block(const uint8_t *b, const uint8_t *x, size_t xs, int nc, __m512 *acc, __m256 *accm) {
    (void)accm;
    const __m256i sc = _mm256_cvtepi8_epi16(k3_scales(b + 96));
    __m512i w[4], s[4];
    scales16(sc, s);
    unpack2(b + 32, w);
    const __m512i hb = bit_pairs(b);
    for (int k = 0; k < 4; k++) {
        const __mmask64 m = _mm512_test_epi8_mask(hb, _mm512_set1_epi8((char)(1 << (2 * k))));
        w[k] = _mm512_mask_add_epi8(w[k], m, w[k], _mm512_set1_epi8(4)); /* q + 4 high: the -4 goes below */
    }
    const float d = h2f(b + 108);
    for (int c = 0; c < nc; c++) {
        const uint8_t *xb = x + (size_t)c * xs;
        const __m256i off = _mm256_slli_epi32(_mm256_madd_epi16(bsums(xb), sc), 2);
        const __m512i isum = _mm512_sub_epi32(k_dot(w, s, xb), _mm512_inserti64x4(_mm512_setzero_si512(), off, 0));
        acc[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), _mm512_set1_ps(d * clv_load_f32(xb)), acc[c]);
    }
}

INL void q45k_block(bool five, const uint8_t *b, const uint8_t *x, size_t xs, int nc, __m512 *acc, __m256 *accm) {
    uint64_t sc8, mn8;
    k4_scales(b + 4, &sc8, &mn8);
    const __m128i m16 = _mm_cvtepu8_epi16(_mm_cvtsi64_si128((long long)mn8));
    const __m256i mn = _mm256_set_m128i(_mm_unpackhi_epi16(m16, m16), _mm_unpacklo_epi16(m16, m16));
    __m512i w[4], s[4];
    scales32(_mm_cvtepu8_epi16(_mm_cvtsi64_si128((long long)sc8)), s);
    const uint8_t *qs = b + (five ? 48 : 16);
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    for (int h = 0; h < 2; h++) { /* 64 bytes: chunks 2h, 2h+1, each 32 low then 32 high nibbles */
        const __m512i z = load512(qs + 64 * h);
        const __m512i lo = _mm512_and_si512(z, m4), hi = _mm512_and_si512(_mm512_srli_epi16(z, 4), m4);
        w[2 * h] = _mm512_shuffle_i64x2(lo, hi, 0x44);
        w[2 * h + 1] = _mm512_shuffle_i64x2(lo, hi, 0xEE);
    }
    if (five) {
        const __m512i hb = bit_pairs(b + 16);
        for (int k = 0; k < 4; k++) {
            const __mmask64 m = _mm512_test_epi8_mask(hb, _mm512_set1_epi8((char)(1 << (2 * k))));
            w[k] = _mm512_mask_add_epi8(w[k], m, w[k], _mm512_set1_epi8(16));
        }
    }
    const float d = h2f(b), dmin = h2f(b + 2);
    for (int c = 0; c < nc; c++) {
        const uint8_t *xb = x + (size_t)c * xs;
        const float dx = clv_load_f32(xb);
        acc[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(k_dot(w, s, xb)), _mm512_set1_ps(d * dx), acc[c]);
        accm[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_madd_epi16(bsums(xb), mn)), _mm256_set1_ps(-dmin * dx), accm[c]);
    }
}

INL void q6k_block(const uint8_t *b, const uint8_t *x, size_t xs, int nc, __m512 *acc, __m256 *accm) {
    (void)accm;
    const __m256i sc = _mm256_cvtepi8_epi16(load128(b + 192));
    __m512i w[4], s[4];
    scales16(sc, s);
    const __m512i m4 = _mm512_set1_epi8(0x0F), m2 = _mm512_set1_epi8(0x30);
    for (int h = 0; h < 2; h++) { /* 128 elements: ql 64 bytes, qh 32 bytes */
        const __m512i l = load512(b + 64 * h);
        const __m256i qh = load256(b + 128 + 32 * h);
        const __m512i hh = _mm512_inserti64x4(_mm512_castsi256_si512(qh), _mm256_srli_epi16(qh, 2), 1);
        w[2 * h] = _mm512_or_si512(_mm512_and_si512(l, m4), _mm512_and_si512(_mm512_slli_epi16(hh, 4), m2));
        w[2 * h + 1] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(l, 4), m4), _mm512_and_si512(hh, m2));
    }
    const float d = h2f(b + 208);
    for (int c = 0; c < nc; c++) {
        const uint8_t *xb = x + (size_t)c * xs;
        const __m256i off = _mm256_slli_epi32(_mm256_madd_epi16(bsums(xb), sc), 5);
        const __m512i isum = _mm512_sub_epi32(k_dot(w, s, xb), _mm512_inserti64x4(_mm512_setzero_si512(), off, 0));
        acc[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), _mm512_set1_ps(d * clv_load_f32(xb)), acc[c]);
    }
}

/* Signed table values: |v| against x negated where v < 0 (no byte sign op
 * at this width: a mask subtract). */
INL void iq4xs_block(const uint8_t *b, const uint8_t *x, size_t xs, int nc, __m512 *acc, __m256 *accm) {
    (void)accm;
    __m512i u[4], s[4];
    __mmask64 neg[4];
    scales32(iq4xs_scales(b), s);
    const __m512i table = _mm512_broadcast_i32x4(load128((const uint8_t *)clv_iq4nl_values));
    for (int k = 0; k < 4; k++) { /* sub-blocks 2k, 2k+1: lanes lo(A), hi(A), lo(B), hi(B) */
        const __m512i y = _mm512_castsi256_si512(load256(b + 8 + 32 * k));
        __m512i z = _mm512_shuffle_i64x2(y, y, 0x50);
        z = _mm512_and_si512(_mm512_mask_srli_epi16(z, 0xFF00FF00u, z, 4), _mm512_set1_epi8(0x0F));
        const __m512i v = _mm512_shuffle_epi8(table, z);
        neg[k] = _mm512_movepi8_mask(v);
        u[k] = _mm512_abs_epi8(v);
    }
    const float d = h2f(b);
    for (int c = 0; c < nc; c++) {
        const uint8_t *xb = x + (size_t)c * xs;
        __m512i isum = _mm512_setzero_si512();
        for (int k = 0; k < 4; k++) {
            const __m512i xv = load512(xqs(xb) + 64 * k);
            const __m512i sx = _mm512_mask_sub_epi8(xv, neg[k], _mm512_setzero_si512(), xv);
            isum = _mm512_dpwssd_epi32(isum, _mm512_maddubs_epi16(u[k], sx), s[k]);
        }
        acc[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), _mm512_set1_ps(d * clv_load_f32(xb)), acc[c]);
    }
}

INL int k_bytes(int32_t type) {
    switch (type) {
    case CLV_TYPE_Q2_K: return 84;
    case CLV_TYPE_Q3_K: return 110;
    case CLV_TYPE_Q4_K: return 144;
    case CLV_TYPE_Q5_K: return 176;
    case CLV_TYPE_Q6_K: return 210;
    default: return 136; /* IQ4_XS */
    }
}

INL void k_tile(int32_t type, int64_t n, const uint8_t *w, const uint8_t *x, size_t xs, int nc, float *y,
                size_t ys) {
    const int wb = k_bytes(type);
    __m512 acc[8];
    __m256 accm[8];
    for (int c = 0; c < nc; c++) {
        acc[c] = _mm512_setzero_ps();
        accm[c] = _mm256_setzero_ps();
    }
    for (int64_t i = 0; i < n / 256; i++) {
        const uint8_t *b = w + i * wb, *xb = x + i * CLV_Q8K_BYTES;
        prefetch_w(b, wb);
        switch (type) {
        case CLV_TYPE_Q2_K: q2k_block(b, xb, xs, nc, acc, accm); break;
        case CLV_TYPE_Q3_K: q3k_block(b, xb, xs, nc, acc, accm); break;
        case CLV_TYPE_Q4_K: q45k_block(false, b, xb, xs, nc, acc, accm); break;
        case CLV_TYPE_Q5_K: q45k_block(true, b, xb, xs, nc, acc, accm); break;
        case CLV_TYPE_Q6_K: q6k_block(b, xb, xs, nc, acc, accm); break;
        default: iq4xs_block(b, xb, xs, nc, acc, accm); break;
        }
    }
    const bool mins = type == CLV_TYPE_Q2_K || type == CLV_TYPE_Q4_K || type == CLV_TYPE_Q5_K;
    for (int c = 0; c < nc; c++) y[(size_t)c * ys] = _mm512_reduce_add_ps(acc[c]) + (mins ? hsum256(accm[c]) : 0.0f);
}

/* --- 32-element formats: four rows per register ---------------------------- */

/* Four fp16 values, 2-byte aligned or not, as floats. */
INL __m128 h2f_x4(const uint8_t *p0, const uint8_t *p1, const uint8_t *p2, const uint8_t *p3) {
    const uint64_t v = (uint64_t)clv_load_u16(p0) | (uint64_t)clv_load_u16(p1) << 16 |
                       (uint64_t)clv_load_u16(p2) << 32 | (uint64_t)clv_load_u16(p3) << 48;
    return _mm_cvtph_ps(_mm_cvtsi64_si128((long long)v));
}

/* MXFP4 scales 2^(e-128) of four blocks, as clv_e8m0_half does. */
INL __m128 e8m0_x4(const uint8_t *p0, const uint8_t *p1, const uint8_t *p2, const uint8_t *p3) {
    const uint32_t v = (uint32_t)p0[0] | (uint32_t)p1[0] << 8 | (uint32_t)p2[0] << 16 | (uint32_t)p3[0] << 24;
    const __m128i e = _mm_cvtepu8_epi32(_mm_cvtsi32_si128((int)v));
    const __m128i normal = _mm_slli_epi32(_mm_sub_epi32(e, _mm_set1_epi32(1)), 23);
    const __m128i sub = _mm_sllv_epi32(_mm_set1_epi32(0x00200000), e);
    return _mm_castsi128_ps(_mm_mask_blend_epi32(_mm_cmplt_epu32_mask(e, _mm_set1_epi32(2)), normal, sub));
}

/* 128-bit lane t of the result is the 16 bytes at p[t]. */
INL __m512i lanes4(const uint8_t *p0, const uint8_t *p1, const uint8_t *p2, const uint8_t *p3) {
    __m512i z = _mm512_castsi128_si512(load128(p0));
    z = _mm512_inserti32x4(z, load128(p1), 1);
    z = _mm512_inserti32x4(z, load128(p2), 2);
    return _mm512_inserti32x4(z, load128(p3), 3);
}

/* Lane t = x[t] for x a 4-float vector. */
INL __m512 spread_lanes(__m128 v) {
    return _mm512_permutexvar_ps(_mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3), _mm512_castps128_ps512(v));
}

/* 64-bit mask of lane t = bits 16t..16t+15 from the 16-bit fields f[t]. */
INL __mmask64 mask4(uint32_t f0, uint32_t f1, uint32_t f2, uint32_t f3) {
    return (__mmask64)((uint64_t)(f0 & 0xFFFF) | (uint64_t)(f1 & 0xFFFF) << 16 | (uint64_t)(f2 & 0xFFFF) << 32 |
                       (uint64_t)(f3 & 0xFFFF) << 48);
}

/* The offset that makes weights unsigned (see the top of the file). */
INL int q32_offset(int32_t type) {
    switch (type) {
    case CLV_TYPE_Q4_0: return 8;
    case CLV_TYPE_Q5_0: return 16;
    case CLV_TYPE_Q8_0:
    case CLV_TYPE_IQ4_NL:
    case CLV_TYPE_MXFP4: return 128;
    default: return 0; /* Q4_1, Q5_1: unsigned already */
    }
}

/* The 16 table values plus 128, as unsigned bytes. */
INL __m512i table_u(const int8_t *t) {
    return _mm512_xor_si512(_mm512_broadcast_i32x4(load128((const uint8_t *)t)), _mm512_set1_epi8((char)0x80));
}

/* One group of four rows at block i: the weights as unsigned bytes, lo
 * (elements 0..15 of each row's block, one row per lane) and hi (16..31),
 * or for Q8_0 two registers of two rows each (q8[0]: rows 0, 1; q8[1]: 2, 3);
 * the row scales d (and offsets m for Q4_1/Q5_1). */
typedef struct q32_rows {
    __m512i lo, hi;
    __m128 d, m;
} q32_rows;

INL q32_rows q32_load(int32_t type, const uint8_t *const b[4]) {
    q32_rows r;
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    r.m = _mm_setzero_ps();
    if (type == CLV_TYPE_Q8_0) {
        const __m512i flip = _mm512_set1_epi8((char)0x80);
        r.lo = _mm512_xor_si512(_mm512_inserti64x4(_mm512_castsi256_si512(load256(b[0] + 2)), load256(b[1] + 2), 1), flip);
        r.hi = _mm512_xor_si512(_mm512_inserti64x4(_mm512_castsi256_si512(load256(b[2] + 2)), load256(b[3] + 2), 1), flip);
        r.d = h2f_x4(b[0], b[1], b[2], b[3]);
        return r;
    }
    const int qs = type == CLV_TYPE_MXFP4 ? 1 : type == CLV_TYPE_Q4_1 ? 4 : type == CLV_TYPE_Q5_0 ? 6 : type == CLV_TYPE_Q5_1 ? 8 : 2;
    const __m512i z = lanes4(b[0] + qs, b[1] + qs, b[2] + qs, b[3] + qs);
    r.lo = _mm512_and_si512(z, m4);
    r.hi = _mm512_and_si512(_mm512_srli_epi16(z, 4), m4);
    if (type == CLV_TYPE_Q5_0 || type == CLV_TYPE_Q5_1) {
        const int o = type == CLV_TYPE_Q5_0 ? 2 : 4;
        const uint32_t h0 = clv_load_u32(b[0] + o), h1 = clv_load_u32(b[1] + o), h2 = clv_load_u32(b[2] + o),
                       h3 = clv_load_u32(b[3] + o);
        const __m512i sixteen = _mm512_set1_epi8(16);
        r.lo = _mm512_mask_add_epi8(r.lo, mask4(h0, h1, h2, h3), r.lo, sixteen);
        r.hi = _mm512_mask_add_epi8(r.hi, mask4(h0 >> 16, h1 >> 16, h2 >> 16, h3 >> 16), r.hi, sixteen);
    }
    if (type == CLV_TYPE_IQ4_NL || type == CLV_TYPE_MXFP4) {
        const __m512i t = table_u(type == CLV_TYPE_IQ4_NL ? clv_iq4nl_values : clv_mxfp4_values);
        r.lo = _mm512_shuffle_epi8(t, r.lo);
        r.hi = _mm512_shuffle_epi8(t, r.hi);
    }
    if (type == CLV_TYPE_MXFP4) r.d = e8m0_x4(b[0], b[1], b[2], b[3]);
    else r.d = h2f_x4(b[0], b[1], b[2], b[3]);
    if (type == CLV_TYPE_Q4_1 || type == CLV_TYPE_Q5_1) r.m = h2f_x4(b[0] + 2, b[1] + 2, b[2] + 2, b[3] + 2);
    return r;
}

/* One activation block, in the shape the rows want: the 32 bytes broadcast
 * (per lane: elements 0..15 in lo, 16..31 in hi; for Q8_0 the 32 bytes in
 * each half), its scale, and in ksum K * sum(x) (or sum(x) for the affine
 * formats) as per-lane partial sums. */
typedef struct q32_act {
    __m512i lo, hi, ksum;
    float d;
} q32_act;

INL q32_act q32_act_load(int32_t type, const uint8_t *xb) {
    q32_act a;
    const int k = q32_offset(type);
    a.d = h2f(xb);
    if (type == CLV_TYPE_Q8_0) {
        a.lo = _mm512_broadcast_i64x4(load256(xb + 2));
        a.hi = a.lo;
        a.ksum = _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_set1_epi8((char)k), a.lo);
        return a;
    }
    a.lo = _mm512_broadcast_i32x4(load128(xb + 2));
    a.hi = _mm512_broadcast_i32x4(load128(xb + 18));
    const __m512i kv = _mm512_set1_epi8((char)(k ? k : 1));
    a.ksum = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), kv, a.lo), kv, a.hi);
    return a;
}

/* acc += (rows . act) scaled, per lane (one row per lane; Q8_0: acc covers
 * rows 0, 1 per half and acc2 rows 2, 3). */
INL void q32_accumulate(int32_t type, const q32_rows *r, const q32_act *a, __m512 *acc, __m512 *acc2) {
    const __m128 s = _mm_mul_ps(r->d, _mm_set1_ps(a->d));
    if (type == CLV_TYPE_Q8_0) {
        const __m512i p01 = _mm512_sub_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), r->lo, a->lo), a->ksum);
        const __m512i p23 = _mm512_sub_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), r->hi, a->lo), a->ksum);
        const __m512 sv = _mm512_castps128_ps512(s);
        *acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p01),
                               _mm512_permutexvar_ps(_mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1), sv), *acc);
        *acc2 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p23),
                                _mm512_permutexvar_ps(_mm512_setr_epi32(2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3), sv), *acc2);
        return;
    }
    __m512i p = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), r->lo, a->lo), r->hi, a->hi);
    const bool affine = type == CLV_TYPE_Q4_1 || type == CLV_TYPE_Q5_1;
    if (!affine) p = _mm512_sub_epi32(p, a->ksum);
    *acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), spread_lanes(s), *acc);
    if (affine) {
        const __m128 ms = _mm_mul_ps(r->m, _mm_set1_ps(a->d));
        *acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(a->ksum), spread_lanes(ms), *acc);
    }
}

/* The four lane sums of v. */
INL __m128 lane_sums(__m512 v) {
    const __m128 a = _mm512_castps512_ps128(v), b = _mm512_extractf32x4_ps(v, 1);
    const __m128 c = _mm512_extractf32x4_ps(v, 2), d = _mm512_extractf32x4_ps(v, 3);
    return _mm_hadd_ps(_mm_hadd_ps(a, b), _mm_hadd_ps(c, d));
}

/* The two half sums of v, in elements 0 and 1. */
INL __m128 half_sums(__m512 v) {
    const __m256 lo = _mm512_castps512_ps256(v);
    const __m256 hi = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1));
    const __m128 a = _mm_add_ps(_mm256_castps256_ps128(lo), _mm256_extractf128_ps(lo, 1));
    const __m128 b = _mm_add_ps(_mm256_castps256_ps128(hi), _mm256_extractf128_ps(hi, 1));
    const __m128 h = _mm_hadd_ps(a, b); /* a01 a23 b01 b23 */
    return _mm_hadd_ps(h, h);          /* a b a b */
}

/* Rows w + r * rb for r < 4 * G (the first nr real; the others repeat the
 * last real row and are not stored) against nc activations:
 * y[c * ys + r] for r < nr. */
INL void q32x4_tile_rows(int32_t type, int G, int64_t n, const uint8_t *const *row, int nr, const uint8_t *x,
                         size_t xs, int nc, float *y, size_t ys) {
    const int wb = q32_bytes(type);
    __m512 acc[2][8], acc2[2][8];
    for (int g = 0; g < G; g++) {
        for (int c = 0; c < nc; c++) acc[g][c] = acc2[g][c] = _mm512_setzero_ps();
    }
    for (int64_t i = 0; i < n / 32; i++) {
        const size_t o = (size_t)i * (size_t)wb;
        q32_rows rows[2];
        for (int g = 0; g < G; g++) {
            const uint8_t *b[4] = {row[4 * g] + o, row[4 * g + 1] + o, row[4 * g + 2] + o, row[4 * g + 3] + o};
            rows[g] = q32_load(type, b);
        }
        for (int c = 0; c < nc; c++) {
            const q32_act a = q32_act_load(type, x + (size_t)c * xs + (size_t)i * CLV_Q80_BYTES);
            for (int g = 0; g < G; g++) q32_accumulate(type, &rows[g], &a, &acc[g][c], &acc2[g][c]);
        }
    }
    for (int g = 0; g < G; g++) {
        for (int c = 0; c < nc; c++) {
            float out[4];
            if (type == CLV_TYPE_Q8_0) {
                const __m128 s01 = half_sums(acc[g][c]), s23 = half_sums(acc2[g][c]);
                _mm_storeu_ps(out, _mm_shuffle_ps(s01, s23, 0x44));
            } else {
                _mm_storeu_ps(out, lane_sums(acc[g][c]));
            }
            for (int r = 0; r < 4 && 4 * g + r < nr; r++) y[(size_t)c * ys + (size_t)(4 * g + r)] = out[r];
        }
    }
}

INL void q32x4_tile(int32_t type, int G, int64_t n, const uint8_t *w, size_t rb, int nr, const uint8_t *x, size_t xs,
                  int nc, float *y, size_t ys) {
    const uint8_t *row[8];
    for (int r = 0; r < 4 * G; r++) row[r] = w + (size_t)(r < nr ? r : nr - 1) * rb;
    q32x4_tile_rows(type, G, n, row, nr, x, xs, nc, y, ys);
}

/* The rows of ids[k0 .. k1) into cache: the ids jump, so the hardware
 * prefetcher cannot follow them and the kernel would wait on memory latency
 * rather than bandwidth. */
static inline void prefetch_rows(const uint8_t *w, size_t rb, const int32_t *ids, int64_t k0, int64_t k1) {
    for (int64_t k = k0; k < k1; k++)
        for (size_t o = 0; o < rb; o += 64) __builtin_prefetch(w + (size_t)ids[k] * rb + o);
}

/* Rows by id, eight at a time as decode takes them, the next eight
 * prefetched. */
#define Q32_MV_IDS512(name, type)                                                                           \
    static void name(int64_t n, const uint8_t *w, size_t rb, const int32_t *ids, int64_t n_ids,              \
                     const uint8_t *x, float *y) {                                                           \
        prefetch_rows(w, rb, ids, 0, n_ids < 8 ? n_ids : 8);                                                 \
        for (int64_t k = 0; k < n_ids; k += 8) {                                                             \
            const int nr = n_ids - k < 8 ? (int)(n_ids - k) : 8;                                             \
            prefetch_rows(w, rb, ids, k + 8, n_ids - k - 8 < 8 ? n_ids : k + 16);                            \
            const uint8_t *row[8];                                                                           \
            for (int r = 0; r < 8; r++) row[r] = w + (size_t)ids[k + (r < nr ? r : nr - 1)] * rb;             \
            q32x4_tile_rows(type, 2, n, row, nr, x, 0, 1, y + k, 0);                                         \
        }                                                                                                    \
    }

/* Decode (one activation) takes eight rows at a time, a batch four rows by
 * AVX512_NC activations. */
#define Q32_MM512(name, type)                                                                                    \
    static void name(int64_t n, const uint8_t *w, size_t rb, int64_t nrows, const uint8_t *x, size_t xs,         \
                     int64_t nbatch, float *y, size_t ys) {                                                      \
        if (nbatch == 1) {                                                                                       \
            for (int64_t r = 0; r < nrows; r += 8)                                                               \
                q32x4_tile(type, 2, n, w + r * rb, rb, nrows - r < 8 ? (int)(nrows - r) : 8, x, xs, 1, y + r, ys); \
            return;                                                                                              \
        }                                                                                                        \
        const int64_t group = clv_cpu_batch_group(xs, n / 32 * CLV_Q80_BYTES, nbatch);                           \
        for (int64_t b0 = 0; b0 < nbatch; b0 += group) {                                                         \
            const int64_t b1 = b0 + group < nbatch ? b0 + group : nbatch;                                        \
            for (int64_t r = 0; r < nrows; r += 4) {                                                             \
                const int nr = nrows - r < 4 ? (int)(nrows - r) : 4;                                             \
                const uint8_t *wr = w + r * rb;                                                                  \
                int64_t b = b0;                                                                                  \
                for (; b + AVX512_NC <= b1; b += AVX512_NC)                                                      \
                    q32x4_tile(type, 1, n, wr, rb, nr, x + b * xs, xs, AVX512_NC, y + b * ys + r, ys);             \
                switch (b1 - b) {                                                                                \
                case 1: q32x4_tile(type, 1, n, wr, rb, nr, x + b * xs, xs, 1, y + b * ys + r, ys); break;          \
                case 2: q32x4_tile(type, 1, n, wr, rb, nr, x + b * xs, xs, 2, y + b * ys + r, ys); break;          \
                case 3: q32x4_tile(type, 1, n, wr, rb, nr, x + b * xs, xs, 3, y + b * ys + r, ys); break;          \
                default: break;                                                                                  \
                }                                                                                                \
            }                                                                                                    \
        }                                                                                                        \
    }

Q32_MV_IDS512(mv_ids_q4_0, CLV_TYPE_Q4_0)
Q32_MV_IDS512(mv_ids_q4_1, CLV_TYPE_Q4_1)
Q32_MV_IDS512(mv_ids_q5_0, CLV_TYPE_Q5_0)
Q32_MV_IDS512(mv_ids_q5_1, CLV_TYPE_Q5_1)
Q32_MV_IDS512(mv_ids_q8_0, CLV_TYPE_Q8_0)
Q32_MV_IDS512(mv_ids_iq4_nl, CLV_TYPE_IQ4_NL)
Q32_MV_IDS512(mv_ids_mxfp4, CLV_TYPE_MXFP4)

/* --- tables ------------------------------------------------------------------ */

X86_MM_DRIVER(mm_f32, AVX512_NC, n * 4, float_tile, CLV_TYPE_F32)
X86_MM_DRIVER(mm_f16, AVX512_NC, n * 4, float_tile, CLV_TYPE_F16)
X86_MM_DRIVER(mm_bf16, AVX512_NC, n * 4, float_tile, CLV_TYPE_BF16)
Q32_MM512(mm_q4_0, CLV_TYPE_Q4_0)
Q32_MM512(mm_q4_1, CLV_TYPE_Q4_1)
Q32_MM512(mm_q5_0, CLV_TYPE_Q5_0)
Q32_MM512(mm_q5_1, CLV_TYPE_Q5_1)
Q32_MM512(mm_q8_0, CLV_TYPE_Q8_0)
Q32_MM512(mm_iq4_nl, CLV_TYPE_IQ4_NL)
Q32_MM512(mm_mxfp4, CLV_TYPE_MXFP4)
#define K_MM(name, type) X86_MM_DRIVER(name, AVX512_NC, n / 256 * CLV_Q8K_BYTES, k_tile, type)
K_MM(mm_q2_k, CLV_TYPE_Q2_K)
K_MM(mm_q3_k, CLV_TYPE_Q3_K)
K_MM(mm_q4_k, CLV_TYPE_Q4_K)
K_MM(mm_q5_k, CLV_TYPE_Q5_K)
K_MM(mm_q6_k, CLV_TYPE_Q6_K)
K_MM(mm_iq4_xs, CLV_TYPE_IQ4_XS)

const clv_cpu_kernels clv_cpu_kernels_avx512 = {
    .built = true,
    .mm = {
        [CLV_TYPE_F32] = mm_f32, [CLV_TYPE_F16] = mm_f16, [CLV_TYPE_BF16] = mm_bf16,
        [CLV_TYPE_Q4_0] = mm_q4_0, [CLV_TYPE_Q4_1] = mm_q4_1, [CLV_TYPE_Q5_0] = mm_q5_0,
        [CLV_TYPE_Q5_1] = mm_q5_1, [CLV_TYPE_Q8_0] = mm_q8_0, [CLV_TYPE_IQ4_NL] = mm_iq4_nl,
        [CLV_TYPE_MXFP4] = mm_mxfp4, [CLV_TYPE_Q2_K] = mm_q2_k, [CLV_TYPE_Q3_K] = mm_q3_k,
        [CLV_TYPE_Q4_K] = mm_q4_k, [CLV_TYPE_Q5_K] = mm_q5_k, [CLV_TYPE_Q6_K] = mm_q6_k,
        [CLV_TYPE_IQ4_XS] = mm_iq4_xs,
    },
    .mv_ids = {
        [CLV_TYPE_Q4_0] = mv_ids_q4_0, [CLV_TYPE_Q4_1] = mv_ids_q4_1, [CLV_TYPE_Q5_0] = mv_ids_q5_0,
        [CLV_TYPE_Q5_1] = mv_ids_q5_1, [CLV_TYPE_Q8_0] = mv_ids_q8_0, [CLV_TYPE_IQ4_NL] = mv_ids_iq4_nl,
        [CLV_TYPE_MXFP4] = mv_ids_mxfp4,
    },
};

#else
const clv_cpu_kernels clv_cpu_kernels_avx512 = {.built = false};
#endif
