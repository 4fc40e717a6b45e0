/* IEEE binary16 (fp16) and bfloat16 <-> fp32 conversions, exact and portable.
 *
 * Bit manipulation only, so results do not depend on the compiler, the CPU
 * (F16C or not) or the device: the CUDA code includes this header too.
 * fp16/bf16 -> fp32 is exact for every input, NaN payloads included.
 * fp32 -> fp16/bf16 rounds to nearest, ties to even; overflow gives inf;
 * NaN stays NaN (made quiet, sign and top payload bits kept). */
#ifndef CLV_FP16_H
#define CLV_FP16_H

#include <stdint.h>
#include <string.h>

#ifdef __CUDACC__
#define CLV_HD __host__ __device__
#else
#define CLV_HD
#endif

typedef uint16_t clv_fp16; /* raw bits of an IEEE binary16 */
typedef uint16_t clv_bf16; /* raw bits of a bfloat16 (top half of an fp32) */

CLV_HD static inline uint32_t clv_fp32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

CLV_HD static inline float clv_fp32_from_bits(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

CLV_HD static inline float clv_fp16_to_fp32(clv_fp16 h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t mant = h & 0x3ffu;
    if (exp == 0x1f) return clv_fp32_from_bits(sign | 0x7f800000u | (mant << 13)); /* inf, NaN */
    if (exp != 0) return clv_fp32_from_bits(sign | ((exp + 112u) << 23) | (mant << 13));
    if (mant == 0) return clv_fp32_from_bits(sign);
    /* subnormal: mant * 2^-24, renormalized for fp32 */
    uint32_t e = 113; /* fp32 biased exponent of 2^-14 */
    while (!(mant & 0x400u)) {
        mant <<= 1;
        e--;
    }
    return clv_fp32_from_bits(sign | (e << 23) | ((mant & 0x3ffu) << 13));
}

CLV_HD static inline clv_fp16 clv_fp32_to_fp16(float f) {
    uint32_t x = clv_fp32_bits(f);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);
    uint32_t ax = x & 0x7fffffffu;
    if (ax > 0x7f800000u) return (clv_fp16)(sign | 0x7e00u | ((ax >> 13) & 0x3ffu));
    /* 65520 = halfway between the largest fp16 (65504) and 2^16: ties go to inf */
    if (ax >= 0x477ff000u) return (clv_fp16)(sign | 0x7c00u);
    if (ax >= 0x38800000u) { /* normal fp16 range (>= 2^-14): rebias, round mantissa */
        uint32_t r = ax - 0x38000000u;
        r = (r + 0xfffu + ((r >> 13) & 1u)) >> 13; /* a carry correctly bumps the exponent */
        return (clv_fp16)(sign | r);
    }
    if (ax <= 0x33000000u) return (clv_fp16)sign; /* <= 2^-25 rounds (ties to even) to 0 */
    /* subnormal fp16: units of 2^-24 */
    uint32_t e = ax >> 23;
    uint32_t m = (ax & 0x7fffffu) | 0x800000u;
    uint32_t shift = 126u - e; /* 14..24 */
    uint32_t q = m >> shift;
    uint32_t rem = m & ((1u << shift) - 1u);
    uint32_t halfway = 1u << (shift - 1u);
    if (rem > halfway || (rem == halfway && (q & 1u))) q++; /* 0x400 is the smallest normal: fine */
    return (clv_fp16)(sign | q);
}

CLV_HD static inline float clv_bf16_to_fp32(clv_bf16 h) {
    return clv_fp32_from_bits((uint32_t)h << 16);
}

CLV_HD static inline clv_bf16 clv_fp32_to_bf16(float f) {
    uint32_t x = clv_fp32_bits(f);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (clv_bf16)((x >> 16) | 0x40u); /* quiet NaN */
    return (clv_bf16)((x + 0x7fffu + ((x >> 16) & 1u)) >> 16); /* overflow carries into inf */
}

#endif
