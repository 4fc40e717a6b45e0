/* Random weight blocks with valid scale fields, for tests of decoders that
 * must handle every bit pattern of the quantized fields (any type, including
 * those the CPU quantizer cannot write). Test-only; include once per test. */
#ifndef CLV_TEST_RANDOM_BLOCKS_H
#define CLV_TEST_RANDOM_BLOCKS_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "blocks.h"
#include "types.h"

static uint64_t rng_state = 0x243f6a8885a308d3ull;

static uint64_t rng_next(void) {
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* A finite fp16 of moderate size, or a subnormal one now and then. */
static uint16_t random_scale(void) {
    uint64_t r = rng_next();
    uint16_t bits = (r & 7) == 0 ? (uint16_t)(1 + (r >> 8) % 0x3ff)
                                 : (uint16_t)((3 + (r >> 8) % 15) << 10 | (r >> 16) % 0x400);
    return (uint16_t)(bits | ((r >> 32) & 1) << 15);
}

static void put_scale(uint8_t *p) {
    uint16_t s = random_scale();
    p[0] = (uint8_t)s;
    p[1] = (uint8_t)(s >> 8);
}

/* Random bytes with valid scale fields, `bytes` per block. */
static void random_blocks(int32_t type, uint8_t *buf, size_t n_blocks, size_t bytes) {
    for (size_t i = 0; i < n_blocks * bytes; i++) buf[i] = (uint8_t)rng_next();
    for (size_t b = 0; b < n_blocks; b++) {
        uint8_t *p = buf + b * bytes;
        switch (type) {
        case CLV_TYPE_F32: { /* finite floats; the copy is exact either way */
            uint32_t u = (uint32_t)rng_next() & 0xbfffffffu;
            memcpy(p, &u, 4);
            break;
        }
        case CLV_TYPE_Q4_0: put_scale(p + offsetof(clv_block_q4_0, d)); break;
        case CLV_TYPE_Q4_1:
            put_scale(p + offsetof(clv_block_q4_1, d));
            put_scale(p + offsetof(clv_block_q4_1, m));
            break;
        case CLV_TYPE_Q5_0: put_scale(p + offsetof(clv_block_q5_0, d)); break;
        case CLV_TYPE_Q5_1:
            put_scale(p + offsetof(clv_block_q5_1, d));
            put_scale(p + offsetof(clv_block_q5_1, m));
            break;
        case CLV_TYPE_Q8_0: put_scale(p + offsetof(clv_block_q8_0, d)); break;
        case CLV_TYPE_Q8_1:
            put_scale(p + offsetof(clv_block_q8_1, d));
            put_scale(p + offsetof(clv_block_q8_1, s));
            break;
        case CLV_TYPE_IQ4_NL: put_scale(p + offsetof(clv_block_iq4_nl, d)); break;
        case CLV_TYPE_MXFP4: p[0] = (uint8_t)(b < 4 ? b : 100 + rng_next() % 50); break; /* 0..3: edge codes */
        case CLV_TYPE_Q2_K:
            put_scale(p + offsetof(clv_block_q2_k, d));
            put_scale(p + offsetof(clv_block_q2_k, dmin));
            break;
        case CLV_TYPE_Q3_K: put_scale(p + offsetof(clv_block_q3_k, d)); break;
        case CLV_TYPE_Q4_K:
        case CLV_TYPE_Q5_K: /* same offsets of d and dmin */
            put_scale(p + offsetof(clv_block_q4_k, d));
            put_scale(p + offsetof(clv_block_q4_k, dmin));
            break;
        case CLV_TYPE_Q6_K: put_scale(p + offsetof(clv_block_q6_k, d)); break;
        case CLV_TYPE_Q8_K: {
            float d = (float)((double)(rng_next() % 1000) / 997.0 - 0.5);
            memcpy(p + offsetof(clv_block_q8_k, d), &d, 4);
            break;
        }
        case CLV_TYPE_IQ4_XS: put_scale(p + offsetof(clv_block_iq4_xs, d)); break;
        default: break; /* F16, BF16: every bit pattern is valid, NaNs included */
        }
    }
}

#endif
