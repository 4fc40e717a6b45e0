/* What every architecture file includes: the model, the ops, the blocks, and
 * small readers of options several architectures share. */
#ifndef CLV_MODELS_ARCH_COMMON_H
#define CLV_MODELS_ARCH_COMMON_H

#include "layer_blocks.h"
#include "model.h"
#include "ops.h"

/* The FFN activation: `def` unless the file says otherwise in
 * `<arch>.hidden_activation` ("silu", "gelu" or "relu": ReLU-fied models). */
clv_status clv_arch_read_activation(clv_model *m, clv_ffn_act def);

/* Which layers use the sliding window, when the file says so explicitly in
 * `<arch>.attention.sliding_window_pattern`: an integer period p (layer il is
 * sliding when il % p < p - 1) or one bool per layer. Absent: unchanged. */
clv_status clv_arch_read_swa_pattern(clv_model *m);

#endif
