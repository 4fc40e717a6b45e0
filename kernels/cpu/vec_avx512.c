/* AVX-512 vector ops (the bodies are in vec_x86.h), 16 lanes. */
#include "vec_impl.h"

#if defined(__x86_64__) && defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__)
#include <immintrin.h>

typedef __m512 V;
typedef __m512i VI;
#define VN 16
#define vload(p) _mm512_loadu_ps(p)
#define vstore(p, v) _mm512_storeu_ps((p), (v))
#define vset1(f) _mm512_set1_ps(f)
#define vzero() _mm512_setzero_ps()
#define vadd _mm512_add_ps
#define vsub _mm512_sub_ps
#define vmul _mm512_mul_ps
#define vdiv _mm512_div_ps
#define vmax _mm512_max_ps
#define vmin _mm512_min_ps
#define vfma _mm512_fmadd_ps
#define vfnma _mm512_fnmadd_ps
#define vround(v) _mm512_roundscale_ps((v), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
#define vcvt_i _mm512_cvtps_epi32
#define vi_srai1(v) _mm512_srai_epi32((v), 1)
#define vi_sub _mm512_sub_epi32
#define vi_add _mm512_add_epi32
#define vi_set1 _mm512_set1_epi32
#define vi_slli23(v) _mm512_slli_epi32((v), 23)
#define vcast_f _mm512_castsi512_ps
#define vhsum _mm512_reduce_add_ps
#define vhmax _mm512_reduce_max_ps

static inline V vload_f16(const uint16_t *p) { return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)p)); }

static inline void vstore_f16(uint16_t *p, V v) {
    _mm256_storeu_si256((__m256i *)(void *)p, _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}

/* 16 int8 -> 16 floats */
static inline V vload_i8(const int8_t *p) {
    return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(const void *)p)));
}

static inline V vload_bf16(const uint16_t *p) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(const void *)p)), 16));
}

/* Integer round to nearest even (the hardware bf16 convert flushes
 * subnormals, clv_fp32_to_bf16 does not); NaN gets the quiet bit. */
static inline void vstore_bf16(uint16_t *p, V v) {
    const __m512i b = _mm512_castps_si512(v);
    const __m512i r = _mm512_srli_epi32(
        _mm512_add_epi32(_mm512_add_epi32(b, _mm512_set1_epi32(0x7fff)), _mm512_and_si512(_mm512_srli_epi32(b, 16), _mm512_set1_epi32(1))), 16);
    const __m512i q = _mm512_or_si512(_mm512_srli_epi32(b, 16), _mm512_set1_epi32(0x40));
    const __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(b, _mm512_set1_epi32(0x7fffffff)), _mm512_set1_epi32(0x7f800000));
    _mm256_storeu_si256((__m256i *)(void *)p, _mm512_cvtepi32_epi16(_mm512_mask_blend_epi32(nan, r, q)));
}

#include "vec_x86.h"

const clv_vec_kernels clv_vec_kernels_avx512 = CLV_VEC_TABLE;

#else
const clv_vec_kernels clv_vec_kernels_avx512 = {.built = false};
#endif
