/* Rotary position embedding on the CPU. */
#include <math.h>

#include "ops.h"
#include "ops_cpu.h"
#include "types.h"

typedef struct rope_args {
    float *x;
    int64_t n_heads, head_dim;
    const int32_t *pos;
    const clv_rope_params *rp;
    const float *factors;
} rope_args;

static void rope_tokens(void *p, int64_t b, int64_t e) {
    rope_args *a = p;
    const clv_rope_params *rp = a->rp;
    int64_t half = rp->n_rot / 2;
    for (int64_t t = b; t < e; t++) {
        for (int64_t i = 0; i < half; i++) {
            /* theta_i = pos * base^(-2i/n_rot), computed in float like the reference. */
            float inv_freq = 1.0f / powf(rp->freq_base, (float)(2 * i) / (float)rp->n_rot);
            if (a->factors) inv_freq /= a->factors[i];
            float theta = (float)a->pos[t] * rp->freq_scale * inv_freq;
            float c = cosf(theta), s = sinf(theta);
            for (int64_t h = 0; h < a->n_heads; h++) {
                float *v = a->x + (t * a->n_heads + h) * a->head_dim;
                int64_t i0 = rp->type == CLV_ROPE_NEOX ? i : 2 * i;
                int64_t i1 = rp->type == CLV_ROPE_NEOX ? i + half : 2 * i + 1;
                float x0 = v[i0], x1 = v[i1];
                v[i0] = x0 * c - x1 * s;
                v[i1] = x0 * s + x1 * c;
            }
        }
    }
}

void clv_cpu_op_rope(clv_context *ctx, float *x, int64_t n_tokens, int64_t n_heads, int64_t head_dim,
                     const int32_t *pos, const clv_rope_params *rp) {
    if (rp->type == CLV_ROPE_NONE || rp->n_rot == 0) return;
    const float *factors = NULL;
    if (rp->freq_factors) {
        CLV_ASSERT(rp->freq_factors->type == CLV_TYPE_F32 && rp->freq_factors->ne[0] >= rp->n_rot / 2);
        factors = rp->freq_factors->data;
    }
    rope_args a = {x, n_heads, head_dim, pos, rp, factors};
    clv_cpu_parallel_for(ctx, n_tokens, 1, (double)(rp->n_rot * n_heads) * 4, rope_tokens, &a);
}
