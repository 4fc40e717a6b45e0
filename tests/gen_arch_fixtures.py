#!/usr/bin/env python3
"""Writes tests/data/arch/: tiny randomly initialised Hugging Face models of every
architecture family cleave runs, as GGUF files (F32 and quantized) laid out the way
llama.cpp's converter lays out real downloads, plus the logits that transformers
computes for a fixed prompt. The C engine must reproduce those logits.

Per fixture NAME:
  NAME.f32.gguf         all weights F32
  NAME.QTYPE.gguf       matrices quantized (q8_0, or a q4_k_m-style mixture)
  NAME.logits           transformers' logits on the F32 weights,
                        float32 little-endian [n_tokens][n_vocab]
  NAME.QTYPE.logits     transformers' logits on the weights DEQUANTIZED from
                        NAME.QTYPE.gguf (same layout)
and one manifest.json describing every fixture.

Nothing is trusted blindly. The script checks every file it writes, and stops with an
error (writing no manifest.json) when a check fails:
  1. round trip: the GGUF read back with gguf.GGUFReader, the q/k permutation and the
     norm +1 undone, gives back the Hugging Face state dict exactly (F32 file) and, run
     through transformers, the stored logits;
  2. an independent NumPy forward pass written from llama.cpp's semantics (normal or
     NeoX RoPE as the arch says, the permuted rows, Gemma's stored norm weights, the
     sliding-window layer pattern, per-arch MoE rules ...) that reads nothing but the
     GGUF file agrees with transformers to better than 1e-5 relative. This is what the
     C engine has to do, so a convention error shows up here, not there;
  3. every tensor name is one gguf-py knows for the arch, every quantized tensor
     dequantizes close to its F32 source, and the fixtures total < 4,000,000 bytes.

Deterministic and idempotent: weights come from NumPy's PCG64 with fixed seeds (not
from transformers' initialisers), torch runs single-threaded, and the files written
are byte-identical from run to run on one machine.

Run from anywhere:  python3 tests/gen_arch_fixtures.py [--out DIR] [--only NAME,...]
Needs: numpy, torch, transformers (5.x), gguf (pip).
"""
import argparse
import json
import math
import os
import sys

import numpy as np
import torch
import transformers
import gguf
from gguf import GGMLQuantizationType as QT
from gguf import GGUFReader, GGUFWriter

SEED = 20250611
N_VOCAB = 256
N_TOKENS = 40
BOS_ID, EOS_ID, UNK_ID = 1, 2, 0
SIZE_LIMIT = 4_000_000          # all fixtures together, bytes
F32_REL_TOL = 1e-4              # what the C test should require on F32 files
CHECK_REL_TOL = 1e-5            # what this script requires of its own NumPy forward

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OUT = os.path.join(HERE, "data", "arch")


# --------------------------------------------------------------------------------------
# The fixtures. hf: Hugging Face config kwargs. Shapes are tiny so that 10 fixtures x
# (2 GGUF + 2 logits files) fit in 4 MB; every matrix row is a multiple of 32 (Q8_0 /
# Q5_0 blocks) and the dense FFNs of the two q4_k_m fixtures are 256 wide so that
# ffn_down rows take Q4_K / Q6_K super-blocks.
# --------------------------------------------------------------------------------------

def _common(**kw):
    base = dict(vocab_size=N_VOCAB, max_position_embeddings=256, bos_token_id=BOS_ID,
                eos_token_id=EOS_ID, pad_token_id=UNK_ID, use_cache=False,
                attn_implementation="eager")
    base.update(kw)
    return base


FIXTURES = [
    dict(name="llama", arch="llama", hf_class="LlamaForCausalLM", family="llama",
         quant="q8_0", weight_std=0.2,
         what="Llama-2 style: GQA 2:1, n_embd = n_head*head_dim (no key_length key), "
              "untied output, SiLU, normal RoPE on permuted q/k rows, base 10000",
         hf=_common(hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                    num_key_value_heads=1, head_dim=16, intermediate_size=64,
                    hidden_act="silu", rms_norm_eps=1e-5, tie_word_embeddings=False,
                    rope_parameters={"rope_type": "default", "rope_theta": 10000.0})),
    dict(name="llama_rope_freqs", arch="llama", hf_class="LlamaForCausalLM", family="llama",
         quant="q8_0", weight_std=0.2,
         what="Llama-3 style: rope_type llama3 (factor 8, low 1, high 4, original "
              "context 64) carried as rope_freqs.weight; base 500000; key_length "
              "written (HF config has head_dim); tied output; GQA 2:1",
         hf=_common(hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                    num_key_value_heads=1, head_dim=16, intermediate_size=64,
                    hidden_act="silu", rms_norm_eps=1e-5, tie_word_embeddings=True,
                    rope_parameters={"rope_type": "llama3", "rope_theta": 500000.0,
                                     "factor": 8.0, "low_freq_factor": 1.0,
                                     "high_freq_factor": 4.0,
                                     "original_max_position_embeddings": 64})),
    dict(name="llama_relu", arch="llama", hf_class="LlamaForCausalLM", family="llama",
         quant="q4_k_m", weight_std=0.2,
         what="ReluLLaMA / ProSparse style: hidden_act relu (llama.hidden_activation "
              "= \"relu\"), wide FFN (256) so ffn_down is Q4_K / Q6_K in the "
              "quantized file; tied output (so token_embd takes the output's Q6_K "
              "rule, falling back to Q8_0); GQA 2:1",
         hf=_common(hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                    num_key_value_heads=1, head_dim=16, intermediate_size=256,
                    hidden_act="relu", rms_norm_eps=1e-5, tie_word_embeddings=True,
                    rope_parameters={"rope_type": "default", "rope_theta": 10000.0})),
    dict(name="mixtral", arch="llama", hf_class="MixtralForCausalLM", family="llama",
         quant="q8_0", weight_std=0.2,
         what="Mixtral style MoE under arch llama: 8 experts, top-2, softmax then top-k "
              "renormalised; expert width in llama.feed_forward_length (no "
              "expert_feed_forward_length key, as in real files); untied; GQA 2:1",
         hf=_common(hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                    num_key_value_heads=1, head_dim=16, intermediate_size=32,
                    num_local_experts=8, num_experts_per_tok=2, hidden_act="silu",
                    rms_norm_eps=1e-5, tie_word_embeddings=False, sliding_window=None,
                    experts_implementation="eager",
                    rope_parameters={"rope_type": "default", "rope_theta": 1000000.0})),
    dict(name="qwen2", arch="qwen2", hf_class="Qwen2ForCausalLM", family="qwen",
         quant="q8_0", weight_std=0.2,
         what="Qwen2: q/k/v biases, NeoX RoPE, tied output, GQA 2:1",
         hf=_common(hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                    num_key_value_heads=1, intermediate_size=64, hidden_act="silu",
                    rms_norm_eps=1e-6, tie_word_embeddings=True, use_sliding_window=False,
                    rope_parameters={"rope_type": "default", "rope_theta": 1000000.0})),
    dict(name="qwen3", arch="qwen3", hf_class="Qwen3ForCausalLM", family="qwen",
         quant="q4_k_m", weight_std=0.2,
         what="Qwen3: per-head RMS q/k norms before RoPE, NeoX RoPE, tied output, "
              "n_head*head_dim = 2*n_embd, wide FFN (256) for Q4_K / Q6_K ffn_down",
         hf=_common(hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                    num_key_value_heads=2, head_dim=16, intermediate_size=256,
                    hidden_act="silu", rms_norm_eps=1e-6, tie_word_embeddings=True,
                    attention_bias=False, use_sliding_window=False,
                    rope_parameters={"rope_type": "default", "rope_theta": 1000000.0})),
    dict(name="qwen2moe", arch="qwen2moe", hf_class="Qwen2MoeForCausalLM", family="qwen",
         quant="q8_0", weight_std=0.2,
         what="Qwen1.5/2-MoE: 8 experts top-2, softmax, top-k NOT renormalised; shared "
              "expert (32 wide) scaled by sigmoid(ffn_gate_inp_shexp . x); q/k/v "
              "biases; NeoX RoPE; untied",
         hf=_common(hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                    num_key_value_heads=1, intermediate_size=64, moe_intermediate_size=32,
                    shared_expert_intermediate_size=32, num_experts=8,
                    num_experts_per_tok=2, norm_topk_prob=False, decoder_sparse_step=1,
                    mlp_only_layers=[], qkv_bias=True, hidden_act="silu",
                    rms_norm_eps=1e-6, tie_word_embeddings=False, use_sliding_window=False,
                    experts_implementation="eager",
                    rope_parameters={"rope_type": "default", "rope_theta": 1000000.0})),
    dict(name="qwen3moe", arch="qwen3moe", hf_class="Qwen3MoeForCausalLM", family="qwen",
         quant="q8_0", weight_std=0.2,
         what="Qwen3-MoE: qwen3 attention (per-head q/k norms), 8 experts top-2, top-k "
              "renormalised (norm_topk_prob true, as in the real models); untied",
         hf=_common(hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                    num_key_value_heads=2, head_dim=16, intermediate_size=64,
                    moe_intermediate_size=32, num_experts=8, num_experts_per_tok=2,
                    norm_topk_prob=True, decoder_sparse_step=1, mlp_only_layers=[],
                    hidden_act="silu", rms_norm_eps=1e-6, tie_word_embeddings=False,
                    use_sliding_window=False, experts_implementation="eager",
                    rope_parameters={"rope_type": "default", "rope_theta": 1000000.0})),
    dict(name="olmoe", arch="olmoe", hf_class="OlmoeForCausalLM", family="olmoe",
         quant="q8_0", weight_std=0.2,
         what="OLMoE: RMS q/k norms over the full projection width (before the head "
              "split), NeoX RoPE, 8 experts top-2 not renormalised, no GQA (llama.cpp's "
              "olmoe shapes need n_head_kv = n_head), expert width in "
              "olmoe.feed_forward_length; untied",
         hf=_common(hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                    num_key_value_heads=2, intermediate_size=32, num_experts=8,
                    num_experts_per_tok=2, norm_topk_prob=False, hidden_act="silu",
                    rms_norm_eps=1e-5, tie_word_embeddings=False, clip_qkv=None,
                    experts_implementation="eager",
                    rope_parameters={"rope_type": "default", "rope_theta": 10000.0})),
    dict(name="gemma3", arch="gemma3", hf_class="Gemma3ForCausalLM", family="gemma3",
         quant="q8_0", weight_std=0.2,
         what="Gemma3 (text): 6 layers so the fixed 5-local:1-global pattern has a "
              "global layer (layer 5); sliding window 8 < prompt; local RoPE base 10000, "
              "global 1e6; per-head q/k norms; post-attention and post-FFN norms; "
              "embeddings x sqrt(n_embd); GELU-tanh; norm weights stored +1; attention "
              "scale query_pre_attn_scalar^-0.5 = head_dim^-0.5; GQA 4:1; tied",
         hf=_common(hidden_size=32, num_hidden_layers=6, num_attention_heads=4,
                    num_key_value_heads=1, head_dim=16, intermediate_size=32,
                    hidden_activation="gelu_pytorch_tanh", rms_norm_eps=1e-6,
                    tie_word_embeddings=True, query_pre_attn_scalar=16, sliding_window=8,
                    final_logit_softcapping=None, attn_logit_softcapping=None,
                    rope_parameters={
                        "full_attention": {"rope_type": "default", "rope_theta": 1000000.0},
                        "sliding_attention": {"rope_type": "default", "rope_theta": 10000.0}})),
]

# Top-k renormalisation of the routing weights, per GGUF arch, as llama.cpp hard-codes it
# (no key says it for these archs) and as the matching transformers classes do.
MOE_RENORMALISE = {"llama": True, "qwen2moe": False, "qwen3moe": True, "olmoe": False}
# llama.cpp's RoPE mode per arch: "normal" rotates pairs (2i, 2i+1) of the (permuted) file
# rows, "neox" rotates (i, i + d/2).
ROPE_MODE = {"llama": "normal", "qwen2": "neox", "qwen3": "neox", "qwen2moe": "neox",
             "qwen3moe": "neox", "olmoe": "neox", "gemma3": "neox"}
GEMMA3_SWA_PERIOD = 6   # llama.cpp: layer il is sliding when il % 6 < 5


def hf_classes(spec):
    return getattr(transformers, spec["hf_class"])


def build_config(spec):
    kw = dict(spec["hf"])
    config_class = getattr(transformers, spec["hf_class"].replace("ForCausalLM", "Config"))
    if spec["hf_class"] == "Gemma3ForCausalLM":
        config_class = transformers.Gemma3TextConfig
    cfg = config_class(**kw)
    cfg._attn_implementation = "eager"
    return cfg


def head_dim_of(cfg, spec):
    if spec["family"] == "olmoe":  # OLMoE has no head_dim field
        return cfg.hidden_size // cfg.num_attention_heads
    return getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads


def is_moe(spec):
    return spec["hf_class"] in ("MixtralForCausalLM", "Qwen2MoeForCausalLM",
                                "Qwen3MoeForCausalLM", "OlmoeForCausalLM")


# --------------------------------------------------------------------------------------
# Weights: generated here, not by transformers' initialisers, so that they do not change
# with the transformers version.
# --------------------------------------------------------------------------------------

def name_seed(name):
    # A stable per-fixture seed (Python's hash() is salted per process).
    return SEED + sum((i + 1) * ord(c) for i, c in enumerate(name))


def random_state_dict(model, spec, attempt=0):
    rng = np.random.default_rng(name_seed(spec["name"]) + 7919 * attempt)
    gemma = spec["family"] == "gemma3"
    std = spec["weight_std"]
    tied = model.config.tie_word_embeddings
    out = {}
    for key, ref in model.state_dict().items():
        if tied and key == "lm_head.weight":
            continue   # shares storage with the embedding
        shape = tuple(ref.shape)
        if key.endswith("norm.weight"):
            # Gemma's RMSNorm multiplies by (1 + w); everyone else by w. Randomise around
            # the effective value 1 so that a dropped norm or a missing +1 shows.
            w = 0.15 * rng.standard_normal(shape)
            if not gemma:
                w = 1.0 + w
            else:
                # Make 1 + w exact in float32 so that storing 1 + w (as llama.cpp's
                # converter does) and subtracting 1 again round-trips bit for bit.
                w = (np.float32(1.0) + w.astype(np.float32)) - np.float32(1.0)
        elif key.endswith(".bias"):
            w = 0.1 * rng.standard_normal(shape)
        elif key.endswith("shared_expert_gate.weight"):
            w = 0.3 * rng.standard_normal(shape)
        elif key.endswith("mlp.gate.weight"):       # MoE router
            w = 0.3 * rng.standard_normal(shape)
        else:
            w = std * rng.standard_normal(shape)
        out[key] = torch.from_numpy(w.astype(np.float32))
    return out


def make_model(spec, state, attempt=0):
    cfg = build_config(spec)
    torch.manual_seed(0)   # transformers initialises before we overwrite; keep it fixed
    model = hf_classes(spec)(cfg)
    model.eval()
    if state is None:
        state = random_state_dict(model, spec, attempt)
    missing, unexpected = model.load_state_dict(state, strict=False)
    # A tied lm_head is not a separate entry; anything else missing is a bug.
    missing = [m for m in missing if not (m == "lm_head.weight" and cfg.tie_word_embeddings)]
    if missing or unexpected:
        raise RuntimeError(f"{spec['name']}: state dict mismatch: missing {missing}, "
                           f"unexpected {unexpected}")
    if getattr(cfg, "_experts_implementation", None) not in (None, "eager"):
        raise RuntimeError(f"{spec['name']}: experts implementation "
                           f"{cfg._experts_implementation}, wanted eager")
    return model, cfg, state


def run_hf(model, ids):
    with torch.no_grad():
        out = model(input_ids=torch.tensor([ids], dtype=torch.long))
    return out.logits[0].to(torch.float32).numpy().copy()


def prompt_ids():
    rng = np.random.default_rng(SEED)
    rest = rng.integers(3, N_VOCAB, size=N_TOKENS - 1)
    return [BOS_ID] + [int(t) for t in rest]


# --------------------------------------------------------------------------------------
# Hugging Face <-> GGUF tensor mapping
# --------------------------------------------------------------------------------------

def permute_qk(w, n_head):
    """HF rows (half-split RoPE) -> llama.cpp file rows (adjacent-pair RoPE): within each
    head of size d, file row 2i = HF row i and file row 2i+1 = HF row i + d/2."""
    rows = w.shape[0]
    d = rows // n_head
    rest = w.shape[1:]
    return w.reshape(n_head, 2, d // 2, *rest).swapaxes(1, 2).reshape(rows, *rest)


def unpermute_qk(w, n_head):
    rows = w.shape[0]
    d = rows // n_head
    rest = w.shape[1:]
    return w.reshape(n_head, d // 2, 2, *rest).swapaxes(1, 2).reshape(rows, *rest)


def llama3_rope_factors(cfg):
    """rope_freqs.weight: the divisor llama.cpp applies to each RoPE frequency; equal to
    inv_freq / inv_freq_llama3 of transformers' llama3 rope."""
    p = cfg.rope_parameters
    base = p["rope_theta"]
    dim = cfg.head_dim
    factor = p["factor"]
    lo, hi = p["low_freq_factor"], p["high_freq_factor"]
    old_ctx = p["original_max_position_embeddings"]
    lo_wavelen = old_ctx / lo
    hi_wavelen = old_ctx / hi
    inv = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.float32) / dim))
    out = []
    for f in inv.tolist():
        wavelen = 2 * math.pi / f
        if wavelen < hi_wavelen:
            out.append(1.0)
        elif wavelen > lo_wavelen:
            out.append(factor)
        else:
            smooth = (old_ctx / wavelen - lo) / (hi - lo)
            out.append(1.0 / ((1.0 - smooth) / factor + smooth))
    return np.array(out, dtype=np.float32)


def layer_map(spec):
    """(hf suffix, gguf name) for the per-layer tensors that map one to one."""
    fam = spec["family"]
    m = [("input_layernorm.weight", "attn_norm.weight"),
         ("self_attn.q_proj.weight", "attn_q.weight"),
         ("self_attn.k_proj.weight", "attn_k.weight"),
         ("self_attn.v_proj.weight", "attn_v.weight"),
         ("self_attn.o_proj.weight", "attn_output.weight"),
         ("self_attn.q_proj.bias", "attn_q.bias"),
         ("self_attn.k_proj.bias", "attn_k.bias"),
         ("self_attn.v_proj.bias", "attn_v.bias"),
         ("self_attn.q_norm.weight", "attn_q_norm.weight"),
         ("self_attn.k_norm.weight", "attn_k_norm.weight"),
         ("mlp.gate_proj.weight", "ffn_gate.weight"),
         ("mlp.up_proj.weight", "ffn_up.weight"),
         ("mlp.down_proj.weight", "ffn_down.weight"),
         ("mlp.gate.weight", "ffn_gate_inp.weight"),
         ("mlp.shared_expert.gate_proj.weight", "ffn_gate_shexp.weight"),
         ("mlp.shared_expert.up_proj.weight", "ffn_up_shexp.weight"),
         ("mlp.shared_expert.down_proj.weight", "ffn_down_shexp.weight"),
         ("mlp.shared_expert_gate.weight", "ffn_gate_inp_shexp.weight")]
    if fam == "gemma3":
        m += [("post_attention_layernorm.weight", "post_attention_norm.weight"),
              ("pre_feedforward_layernorm.weight", "ffn_norm.weight"),
              ("post_feedforward_layernorm.weight", "post_ffw_norm.weight")]
    else:
        m += [("post_attention_layernorm.weight", "ffn_norm.weight")]
    return m


def hf_to_gguf(spec, cfg, state):
    """Returns [(gguf name, float32 array in GGUF's numpy order)] in file order."""
    sd = {k: v.numpy().astype(np.float32) for k, v in state.items()}
    llama_family = spec["family"] == "llama"
    gemma = spec["family"] == "gemma3"
    nh, nkv = cfg.num_attention_heads, cfg.num_key_value_heads

    def fix(hf_key, arr):
        if gemma and hf_key.endswith("norm.weight"):
            arr = arr + np.float32(1.0)   # llama.cpp's converter stores 1 + w for Gemma3
        if llama_family and ".q_proj." in hf_key:
            arr = permute_qk(arr, nh)
        if llama_family and ".k_proj." in hf_key:
            arr = permute_qk(arr, nkv)
        return np.ascontiguousarray(arr, dtype=np.float32)

    out = [("token_embd.weight", fix("model.embed_tokens.weight", sd.pop("model.embed_tokens.weight")))]
    if "rope_type" in cfg.rope_parameters and cfg.rope_parameters["rope_type"] == "llama3":
        out.append(("rope_freqs.weight", llama3_rope_factors(cfg)))
    for il in range(cfg.num_hidden_layers):
        pre = f"model.layers.{il}."
        for hf_suffix, gg in layer_map(spec):
            key = pre + hf_suffix
            if key in sd:
                out.append((f"blk.{il}.{gg}", fix(key, sd.pop(key))))
        gu = sd.pop(pre + "mlp.experts.gate_up_proj", None)
        if gu is not None:   # [E, 2F, H]: gate rows first, then up rows
            f = gu.shape[1] // 2
            out.append((f"blk.{il}.ffn_gate_exps.weight", np.ascontiguousarray(gu[:, :f, :])))
            out.append((f"blk.{il}.ffn_up_exps.weight", np.ascontiguousarray(gu[:, f:, :])))
            out.append((f"blk.{il}.ffn_down_exps.weight",
                        np.ascontiguousarray(sd.pop(pre + "mlp.experts.down_proj"))))
    out.append(("output_norm.weight", fix("model.norm.weight", sd.pop("model.norm.weight"))))
    lm = sd.pop("lm_head.weight", None)
    if not cfg.tie_word_embeddings:
        out.append(("output.weight", fix("lm_head.weight", lm)))
    if sd:
        raise RuntimeError(f"{spec['name']}: HF tensors left unmapped: {sorted(sd)}")
    return out


def gguf_to_hf(spec, cfg, tensors):
    """Inverse of hf_to_gguf: {gguf name: float32 array} -> HF state dict."""
    t = dict(tensors)
    llama_family = spec["family"] == "llama"
    gemma = spec["family"] == "gemma3"
    nh, nkv = cfg.num_attention_heads, cfg.num_key_value_heads

    def unfix(hf_key, arr):
        arr = np.array(arr, dtype=np.float32)
        if gemma and hf_key.endswith("norm.weight"):
            arr = arr - np.float32(1.0)
        if llama_family and ".q_proj." in hf_key:
            arr = unpermute_qk(arr, nh)
        if llama_family and ".k_proj." in hf_key:
            arr = unpermute_qk(arr, nkv)
        return torch.from_numpy(np.ascontiguousarray(arr))

    sd = {"model.embed_tokens.weight": unfix("model.embed_tokens.weight", t.pop("token_embd.weight")),
          "model.norm.weight": unfix("model.norm.weight", t.pop("output_norm.weight"))}
    t.pop("rope_freqs.weight", None)   # derived from the config, checked separately
    for il in range(cfg.num_hidden_layers):
        pre = f"model.layers.{il}."
        for hf_suffix, gg in layer_map(spec):
            name = f"blk.{il}.{gg}"
            if name in t:
                sd[pre + hf_suffix] = unfix(pre + hf_suffix, t.pop(name))
        g = t.pop(f"blk.{il}.ffn_gate_exps.weight", None)
        if g is not None:
            u = t.pop(f"blk.{il}.ffn_up_exps.weight")
            sd[pre + "mlp.experts.gate_up_proj"] = torch.from_numpy(
                np.ascontiguousarray(np.concatenate([g, u], axis=1), dtype=np.float32))
            sd[pre + "mlp.experts.down_proj"] = torch.from_numpy(
                np.ascontiguousarray(t.pop(f"blk.{il}.ffn_down_exps.weight"), dtype=np.float32))
    if "output.weight" in t:
        sd["lm_head.weight"] = unfix("lm_head.weight", t.pop("output.weight"))
    if t:
        raise RuntimeError(f"{spec['name']}: GGUF tensors left unmapped: {sorted(t)}")
    return sd


# --------------------------------------------------------------------------------------
# Quantization
# --------------------------------------------------------------------------------------

def _fp16_round(x):
    return x.astype(np.float16).astype(np.float32)


def quantize_q4_k(x):
    """A plain (not error-optimising) Q4_K encoder: 256-element super-blocks of 8
    sub-blocks of 32, each y = d*sc*q - dmin*m with 6-bit sc, m. Layout: d, dmin (fp16),
    scales[12], qs[128]."""
    rows = x.reshape(-1, 256).astype(np.float32)
    n = rows.shape[0]
    sub = rows.reshape(n, 8, 32)
    lo = np.minimum(sub.min(axis=2), 0.0)
    hi = sub.max(axis=2)
    scale = (hi - lo) / 15.0                     # step of each sub-block
    minv = -lo                                   # >= 0, subtracted
    d = _fp16_round(scale.max(axis=1) / 63.0)
    dmin = _fp16_round(minv.max(axis=1) / 63.0)
    sc = np.where(d[:, None] > 0, np.rint(scale / np.where(d[:, None] > 0, d[:, None], 1)), 0)
    m = np.where(dmin[:, None] > 0, np.rint(minv / np.where(dmin[:, None] > 0, dmin[:, None], 1)), 0)
    sc = np.clip(sc, 0, 63).astype(np.uint8)
    m = np.clip(m, 0, 63).astype(np.uint8)
    step = d[:, None] * sc
    offs = dmin[:, None] * m
    safe = np.where(step > 0, step, 1.0)
    q = np.where(step[:, :, None] > 0,
                 np.rint((sub + offs[:, :, None]) / safe[:, :, None]), 0)
    q = np.clip(q, 0, 15).astype(np.uint8)                       # [n, 8, 32]
    s = np.zeros((n, 12), dtype=np.uint8)
    for j in range(4):
        s[:, j] = sc[:, j] & 63
        s[:, j + 4] = m[:, j] & 63
    for j in range(4, 8):
        s[:, j + 4] = (sc[:, j] & 0xF) | ((m[:, j] & 0xF) << 4)
        s[:, j - 4] |= (sc[:, j] >> 4) << 6
        s[:, j] |= (m[:, j] >> 4) << 6
    qs = np.zeros((n, 128), dtype=np.uint8)
    for c in range(4):
        qs[:, 32 * c:32 * c + 32] = q[:, 2 * c, :] | (q[:, 2 * c + 1, :] << 4)
    out = np.concatenate([d.astype(np.float16).view(np.uint8).reshape(n, 2),
                          dmin.astype(np.float16).view(np.uint8).reshape(n, 2), s, qs], axis=1)
    return out.reshape(*x.shape[:-1], x.shape[-1] // 256 * 144)


def quantize_q6_k(x):
    """A plain Q6_K encoder: 256-element super-blocks of 16 sub-blocks of 16 with int8
    scales, q in [-32, 31]. Layout: ql[128], qh[64], scales[16] (int8), d (fp16)."""
    rows = x.reshape(-1, 256).astype(np.float32)
    n = rows.shape[0]
    sub = rows.reshape(n, 16, 16)
    amax = np.abs(sub).max(axis=2)
    scale = amax / 31.0
    d = _fp16_round(np.abs(scale).max(axis=1) / 127.0)
    sc = np.where(d[:, None] > 0, np.rint(scale / np.where(d[:, None] > 0, d[:, None], 1)), 0)
    sc = np.clip(sc, -128, 127).astype(np.int8)
    step = d[:, None] * sc.astype(np.float32)
    safe = np.where(step != 0, step, 1.0)
    q = np.where(step[:, :, None] != 0, np.rint(sub / safe[:, :, None]), 0)
    q = (np.clip(q, -32, 31) + 32).astype(np.uint8).reshape(n, 256)
    ql = np.zeros((n, 128), dtype=np.uint8)
    qh = np.zeros((n, 64), dtype=np.uint8)
    for h in range(2):
        e = q[:, 128 * h:128 * h + 128]
        for l in range(32):
            a, b, c_, d_ = e[:, l], e[:, l + 32], e[:, l + 64], e[:, l + 96]
            ql[:, 64 * h + l] = (a & 0xF) | ((c_ & 0xF) << 4)
            ql[:, 64 * h + l + 32] = (b & 0xF) | ((d_ & 0xF) << 4)
            qh[:, 32 * h + l] = (a >> 4) | ((b >> 4) << 2) | ((c_ >> 4) << 4) | ((d_ >> 4) << 6)
    out = np.concatenate([ql, qh, sc.view(np.uint8), d.astype(np.float16).view(np.uint8).reshape(n, 2)],
                         axis=1)
    return out.reshape(*x.shape[:-1], x.shape[-1] // 256 * 210)


def quantize_tensor(arr, qtype):
    if qtype == QT.F32:
        return arr.astype(np.float32)
    if qtype == QT.Q4_K:
        return quantize_q4_k(arr)
    if qtype == QT.Q6_K:
        return quantize_q6_k(arr)
    return gguf.quants.quantize(arr, qtype)


def use_more_bits(il, n_layer):
    # llama.cpp's Q4_K_M rule for which ffn_down / attn_v layers get Q6_K.
    return il < n_layer // 8 or il >= 7 * n_layer // 8 or (il - n_layer // 8) % 3 == 2


def choose_qtype(name, arr, scheme, n_layer, has_output):
    """Per-tensor type, modelled on llama.cpp (convert + llama-quantize)."""
    base = name.rsplit(".", 1)[0].split(".")[-1]
    one_d = arr.ndim == 1 or (arr.ndim == 2 and arr.shape[0] == 1)
    if scheme == "f32" or one_d or name.endswith(".bias") or base == "ffn_gate_inp" \
            or base == "rope_freqs" or name.endswith("norm.weight"):
        return QT.F32
    if scheme == "q8_0":
        return QT.Q8_0
    assert scheme == "q4_k_m"
    il = int(name.split(".")[1]) if name.startswith("blk.") else -1
    if base == "output" or (base == "token_embd" and not has_output):
        want = QT.Q6_K
    elif base in ("attn_v", "ffn_down", "ffn_down_exps", "ffn_down_shexp") \
            and use_more_bits(il, n_layer):
        want = QT.Q6_K
    else:
        want = QT.Q4_K
    if arr.shape[-1] % 256 != 0:   # llama.cpp's fallback for rows K-quants cannot hold
        want = {QT.Q4_K: QT.Q5_0, QT.Q6_K: QT.Q8_0}[want]
    return want


FILE_TYPE = {"f32": gguf.LlamaFileType.ALL_F32, "q8_0": gguf.LlamaFileType.MOSTLY_Q8_0,
             "q4_k_m": gguf.LlamaFileType.MOSTLY_Q4_K_M}


# --------------------------------------------------------------------------------------
# GGUF writing
# --------------------------------------------------------------------------------------

def vocab():
    """A minimal SentencePiece-style ("llama") vocabulary of N_VOCAB pieces: <unk>, <s>,
    </s>, the word-start marker, printable ASCII, then word-start + letter pieces and
    two-letter pieces; scores decrease with id (earlier pieces merge first)."""
    pieces = ["<unk>", "<s>", "</s>", "\u2581"]
    pieces += [chr(c) for c in range(0x21, 0x7F)]
    pieces += ["\u2581" + chr(c) for c in range(ord("a"), ord("z") + 1)]
    letters = "etaoinshrdlucmfwypvbgkqjxz"
    for a in letters:
        for b in letters:
            if len(pieces) >= N_VOCAB:
                break
            pieces.append(a + b)
    pieces = pieces[:N_VOCAB]
    assert len(set(pieces)) == N_VOCAB
    types = [gguf.TokenType.UNKNOWN, gguf.TokenType.CONTROL, gguf.TokenType.CONTROL]
    types += [gguf.TokenType.NORMAL] * (N_VOCAB - 3)
    scores = [0.0, 0.0, 0.0] + [float(-i) for i in range(N_VOCAB - 3)]
    return pieces, scores, types


def write_gguf(path, spec, cfg, tensors, scheme):
    arch = spec["arch"]
    n_layer = cfg.num_hidden_layers
    hd = head_dim_of(cfg, spec)
    w = GGUFWriter(path, arch)
    w.add_name(f"cleave-fixture-{spec['name']}")
    w.add_context_length(cfg.max_position_embeddings)
    w.add_embedding_length(cfg.hidden_size)
    w.add_block_count(n_layer)
    w.add_feed_forward_length(cfg.intermediate_size)
    w.add_head_count(cfg.num_attention_heads)
    w.add_head_count_kv(cfg.num_key_value_heads)
    # key_length / value_length: written where the HF config carries head_dim (as the
    # converter does), and always where head_dim != n_embd / n_head.
    has_head_dim_field = spec["name"] not in ("llama", "llama_relu", "qwen2", "qwen2moe", "olmoe")
    if has_head_dim_field or hd != cfg.hidden_size // cfg.num_attention_heads:
        w.add_key_length(hd)
        w.add_value_length(hd)
    w.add_layer_norm_rms_eps(cfg.rms_norm_eps)
    rp = cfg.rope_parameters
    if spec["family"] == "gemma3":
        w.add_rope_freq_base(rp["full_attention"]["rope_theta"])
        w.add_rope_freq_base_swa(rp["sliding_attention"]["rope_theta"])
        w.add_sliding_window(cfg.sliding_window)
    else:
        w.add_rope_freq_base(rp["rope_theta"])
    w.add_rope_dimension_count(hd)
    w.add_vocab_size(cfg.vocab_size)
    if spec["name"] == "llama_relu":
        # No llama.cpp key marks a ReLU llama; this is the <arch>.hidden_activation string
        # key that llama.cpp reads for other archs (modern-bert, ...).
        w.add_string(f"{arch}.hidden_activation", "relu")
    if is_moe(spec):
        n_exp = getattr(cfg, "num_local_experts", None) or cfg.num_experts
        w.add_expert_count(n_exp)
        w.add_expert_used_count(cfg.num_experts_per_tok)
        if spec["arch"] in ("qwen2moe", "qwen3moe"):
            w.add_expert_feed_forward_length(cfg.moe_intermediate_size)
        if spec["arch"] == "qwen2moe":
            w.add_expert_shared_feed_forward_length(cfg.shared_expert_intermediate_size)
    w.add_file_type(FILE_TYPE[scheme])
    if scheme != "f32":
        w.add_quantization_version(gguf.GGML_QUANT_VERSION)

    pieces, scores, types = vocab()
    w.add_tokenizer_model("llama")
    w.add_token_list(pieces)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_bos_token_id(BOS_ID)
    w.add_eos_token_id(EOS_ID)
    w.add_unk_token_id(UNK_ID)
    w.add_add_bos_token(True)
    w.add_add_eos_token(False)

    has_output = any(n == "output.weight" for n, _ in tensors)
    types_used = {}
    for name, arr in tensors:
        qt = choose_qtype(name, arr, scheme, n_layer, has_output)
        data = quantize_tensor(arr, qt)
        if qt == QT.F32:
            w.add_tensor(name, data)
        else:
            w.add_tensor(name, data, raw_shape=data.shape, raw_dtype=qt)
        types_used[name] = qt.name
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return types_used


def read_gguf(path):
    """-> (fields {key: python value}, {tensor name: (float32 numpy array, type name)})"""
    r = GGUFReader(path)
    fields = {}
    for key, f in r.fields.items():
        if not f.types:
            continue
        fields[key] = f.contents()
    tensors = {}
    for t in r.tensors:
        arr = gguf.quants.dequantize(np.array(t.data), t.tensor_type)
        shape = [int(x) for x in reversed(t.shape.tolist())]
        tensors[t.name] = (np.array(arr, dtype=np.float32).reshape(shape), t.tensor_type.name)
    return fields, tensors


# --------------------------------------------------------------------------------------
# An independent forward pass from the GGUF alone, following llama.cpp's semantics.
# float64 throughout so that it is the more accurate side of every comparison.
# --------------------------------------------------------------------------------------

def _rms_norm(x, w, eps):
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * w


def _rope(x, pos, base, mode, freq_factors=None):
    """x: [T, n_heads, d]; rotates the whole head (n_rot = d here)."""
    d = x.shape[-1]
    i = np.arange(d // 2, dtype=np.float64)
    theta = base ** (-2.0 * i / d)
    if freq_factors is not None:
        theta = theta / freq_factors
    ang = pos[:, None] * theta[None, :]                      # [T, d/2]
    cos, sin = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]
    y = np.empty_like(x)
    if mode == "normal":
        a, b = x[..., 0::2], x[..., 1::2]
        y[..., 0::2] = a * cos - b * sin
        y[..., 1::2] = a * sin + b * cos
    else:
        a, b = x[..., :d // 2], x[..., d // 2:]
        y[..., :d // 2] = a * cos - b * sin
        y[..., d // 2:] = a * sin + b * cos
    return y


def _gelu_tanh(x):
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def _act(name, x):
    if name == "silu":
        return x / (1.0 + np.exp(-x))
    if name == "relu":
        return np.maximum(x, 0.0)
    if name == "gelu_tanh":
        return _gelu_tanh(x)
    raise ValueError(name)


# Deliberate mistakes reference_forward can make, to show that each fixture catches them
# (an engine making one is off by far more than the 1e-4 tolerance).
MISTAKES = {
    "rope_mode_swapped": "normal RoPE where neox is right and vice versa (for llama: the "
                         "q/k permutation ignored)",
    "no_rope_freqs": "rope_freqs.weight ignored",
    "no_sliding_window": "gemma3: every layer attends to the whole prompt",
    "all_layers_sliding": "gemma3: the global layer (il % 6 == 5) also windowed",
    "swa_uses_global_base": "gemma3: sliding layers use rope.freq_base, not freq_base_swa",
    "no_embedding_scale": "gemma3: embeddings not multiplied by sqrt(n_embd)",
    "norm_weight_minus_one": "gemma3: norm weights used as 1 + stored (the +1 applied twice)",
    "topk_renorm_flipped": "MoE: top-k weights renormalised where they must not be, or not "
                           "where they must",
    "no_shared_expert_gate": "qwen2moe: shared expert added without its sigmoid gate",
    "silu_for_relu": "llama_relu: SiLU instead of the file's hidden_activation relu",
    "qk_norm_per_head": "olmoe: q/k norms applied per head instead of over the full width",
    "kv_head_interleaved": "GQA: query head h read KV head h % n_head_kv instead of "
                           "h / (n_head / n_head_kv)",
    "no_qkv_bias": "q/k/v biases ignored",
    "window_off_by_one": "gemma3: sliding layers see n_swa + 1 keys instead of n_swa",
    "attn_scale_from_n_embd": "gemma3: attention scale 1/sqrt(n_embd / n_head) (the 27B "
                              "rule) instead of 1/sqrt(head_dim)",
}


def applicable_mistakes(arch, fields, names):
    out = ["rope_mode_swapped"]
    if "rope_freqs.weight" in names:
        out.append("no_rope_freqs")
    if arch == "gemma3":
        out += ["no_sliding_window", "all_layers_sliding", "swa_uses_global_base",
                "no_embedding_scale", "norm_weight_minus_one"]
    if fields.get(f"{arch}.expert_count", 0):
        out.append("topk_renorm_flipped")
    if "blk.0.ffn_gate_inp_shexp.weight" in names:
        out.append("no_shared_expert_gate")
    if fields.get(f"{arch}.hidden_activation") == "relu":
        out.append("silu_for_relu")
    if arch == "olmoe":
        out.append("qk_norm_per_head")
    n_head = fields[f"{arch}.attention.head_count"]
    if n_head // fields.get(f"{arch}.attention.head_count_kv", n_head) > 1 \
            and fields.get(f"{arch}.attention.head_count_kv", n_head) > 1:
        out.append("kv_head_interleaved")
    if "blk.0.attn_q.bias" in names:
        out.append("no_qkv_bias")
    if arch == "gemma3":
        out += ["window_off_by_one", "attn_scale_from_n_embd"]
    return out


def reference_forward(path, ids, mistake=None, loaded=None):
    fields, tens = loaded if loaded is not None else read_gguf(path)
    W = {k: v[0].astype(np.float64) for k, v in tens.items()}
    arch = fields["general.architecture"]
    g = lambda k, d=None: fields.get(f"{arch}.{k}", d)
    n_embd, n_layer = g("embedding_length"), g("block_count")
    n_head = g("attention.head_count")
    n_head_kv = g("attention.head_count_kv", n_head)
    hd = g("attention.key_length", n_embd // n_head)
    eps = g("attention.layer_norm_rms_epsilon")
    base = g("rope.freq_base", 10000.0)
    base_swa = g("rope.freq_base_swa", 10000.0)
    n_swa = g("attention.sliding_window", 0)
    n_expert, n_used = g("expert_count", 0), g("expert_used_count", 0)
    act = g("hidden_activation", "gelu_tanh" if arch == "gemma3" else "silu")
    mode = ROPE_MODE[arch]
    ff = W.get("rope_freqs.weight")
    renorm = MOE_RENORMALISE.get(arch, False)
    if mistake == "rope_mode_swapped":
        mode = "neox" if mode == "normal" else "normal"
    if mistake == "no_rope_freqs":
        ff = None
    if mistake == "no_sliding_window":
        n_swa = 0
    if mistake == "swa_uses_global_base":
        base_swa = base
    if mistake == "norm_weight_minus_one":
        W = {k: (v + 1.0 if k.endswith("norm.weight") else v) for k, v in W.items()}
    if mistake == "topk_renorm_flipped":
        renorm = not renorm
    if mistake == "silu_for_relu":
        act = "silu"
    scale = 1.0 / math.sqrt(hd)
    if mistake == "attn_scale_from_n_embd":
        scale = 1.0 / math.sqrt(n_embd // n_head)
    window = n_swa + 1 if mistake == "window_off_by_one" else n_swa

    T = len(ids)
    pos = np.arange(T, dtype=np.float64)
    x = W["token_embd.weight"][ids]
    if arch == "gemma3" and mistake != "no_embedding_scale":
        x = x * np.float64(np.float32(math.sqrt(n_embd)))
    causal = pos[None, :] <= pos[:, None]                     # [q, k]
    group = n_head // n_head_kv
    for il in range(n_layer):
        p = f"blk.{il}."
        swa = arch == "gemma3" and n_swa > 0 and (il % GEMMA3_SWA_PERIOD < GEMMA3_SWA_PERIOD - 1
                                                  or mistake == "all_layers_sliding")
        h = _rms_norm(x, W[p + "attn_norm.weight"], eps)
        q = h @ W[p + "attn_q.weight"].T
        k = h @ W[p + "attn_k.weight"].T
        v = h @ W[p + "attn_v.weight"].T
        if p + "attn_q.bias" in W and mistake != "no_qkv_bias":
            q, k, v = q + W[p + "attn_q.bias"], k + W[p + "attn_k.bias"], v + W[p + "attn_v.bias"]
        if arch == "olmoe" and mistake != "qk_norm_per_head":
            # norms over the whole projection, before the head split
            q = _rms_norm(q, W[p + "attn_q_norm.weight"], eps)
            k = _rms_norm(k, W[p + "attn_k_norm.weight"], eps)
        q = q.reshape(T, n_head, hd)
        k = k.reshape(T, n_head_kv, hd)
        v = v.reshape(T, n_head_kv, hd)
        if arch == "olmoe" and mistake == "qk_norm_per_head":
            q = _rms_norm(q, W[p + "attn_q_norm.weight"].reshape(n_head, hd), eps)
            k = _rms_norm(k, W[p + "attn_k_norm.weight"].reshape(n_head_kv, hd), eps)
        if arch in ("qwen3", "qwen3moe", "gemma3"):   # per-head norms
            q = _rms_norm(q, W[p + "attn_q_norm.weight"], eps)
            k = _rms_norm(k, W[p + "attn_k_norm.weight"], eps)
        b = base_swa if swa else base
        q = _rope(q, pos, b, mode, ff)
        k = _rope(k, pos, b, mode, ff)
        mask = causal & ((pos[:, None] - pos[None, :]) < window) if swa else causal
        att = np.empty((T, n_head, hd))
        for hh in range(n_head):
            kv = hh % n_head_kv if mistake == "kv_head_interleaved" else hh // group
            s = (q[:, hh, :] @ k[:, kv, :].T) * scale
            s = np.where(mask, s, -np.inf)
            s = np.exp(s - s.max(axis=1, keepdims=True))
            s = s / s.sum(axis=1, keepdims=True)
            att[:, hh, :] = s @ v[:, kv, :]
        o = att.reshape(T, n_head * hd) @ W[p + "attn_output.weight"].T
        if arch == "gemma3":
            o = _rms_norm(o, W[p + "post_attention_norm.weight"], eps)
        x = x + o
        h = _rms_norm(x, W[p + "ffn_norm.weight"], eps)
        if n_expert > 0:
            logits = h @ W[p + "ffn_gate_inp.weight"].T              # [T, E]
            probs = np.exp(logits - logits.max(axis=1, keepdims=True))
            probs /= probs.sum(axis=1, keepdims=True)
            y = np.zeros_like(h)
            for t in range(T):
                top = np.argsort(-probs[t], kind="stable")[:n_used]
                wts = probs[t, top]
                if renorm:
                    wts = wts / wts.sum()
                for e, wt in zip(top, wts):
                    gate = W[p + "ffn_gate_exps.weight"][e] @ h[t]
                    up = W[p + "ffn_up_exps.weight"][e] @ h[t]
                    y[t] += wt * (W[p + "ffn_down_exps.weight"][e] @ (_act(act, gate) * up))
            if p + "ffn_gate_inp_shexp.weight" in W:
                gsh = 1.0 / (1.0 + np.exp(-(h @ W[p + "ffn_gate_inp_shexp.weight"].reshape(-1))))
                if mistake == "no_shared_expert_gate":
                    gsh = np.ones_like(gsh)
                sh = _act(act, h @ W[p + "ffn_gate_shexp.weight"].T) * (h @ W[p + "ffn_up_shexp.weight"].T)
                y = y + gsh[:, None] * (sh @ W[p + "ffn_down_shexp.weight"].T)
        else:
            y = (_act(act, h @ W[p + "ffn_gate.weight"].T) * (h @ W[p + "ffn_up.weight"].T)) \
                @ W[p + "ffn_down.weight"].T
        if arch == "gemma3":
            y = _rms_norm(y, W[p + "post_ffw_norm.weight"], eps)
        x = x + y
    x = _rms_norm(x, W["output_norm.weight"], eps)
    out = W.get("output.weight", W["token_embd.weight"])
    return x @ out.T


def rel_err(x, ref):
    """max over positions of max|x - ref| / max|ref| (per-row normalised)."""
    num = np.abs(x.astype(np.float64) - ref.astype(np.float64)).max(axis=1)
    den = np.abs(ref.astype(np.float64)).max(axis=1)
    return float((num / den).max())


def check_names(spec, names):
    arch_enum = next(a for a, n in gguf.MODEL_ARCH_NAMES.items() if n == spec["arch"])
    known = set()
    for t in gguf.MODEL_TENSORS[arch_enum]:
        tmpl = gguf.TENSOR_NAMES[t]
        for il in range(64):
            known.add(tmpl.format(bid=il))
    for n in names:
        stem = n.rsplit(".", 1)[0]
        if stem not in known:
            raise RuntimeError(f"{spec['name']}: tensor {n} is not a {spec['arch']} tensor in gguf-py")


# --------------------------------------------------------------------------------------

def routing_summary(model, ids):
    """Per layer: how often each expert is selected, and the smallest gap, over the
    prompt's tokens, between the k-th and (k+1)-th largest router logit. A gap near zero
    would let float rounding flip the expert choice and make the fixture fragile."""
    counts, margins = [], []
    hooks = []

    def hook(mod, inp, out):
        logits, _, idx = out
        counts.append(np.bincount(idx.reshape(-1).numpy(), minlength=mod.num_experts).tolist())
        srt = torch.sort(logits.double(), dim=-1, descending=True).values
        margins.append(float((srt[:, mod.top_k - 1] - srt[:, mod.top_k]).min()))

    for layer in model.model.layers:
        hooks.append(layer.mlp.gate.register_forward_hook(hook))
    run_hf(model, ids)
    for h in hooks:
        h.remove()
    return counts, margins


class Redraw(Exception):
    """This weight draw makes a poor fixture; try the next one."""


MIN_EXPERT_USES = 2          # per expert per layer over the prompt
# Router-logit gap at the top-k boundary. 1e-2 leaves room for an engine that quantizes
# activations (as llama.cpp's quantized dot products do) without flipping an expert.
MIN_ROUTER_GAP_F32 = 1e-2
MIN_ROUTER_GAP_QUANT = 1e-2


def write_logits(path, logits):
    np.ascontiguousarray(logits, dtype="<f4").tofile(path)


def build_fixture(spec, out_dir, ids):
    # Weights are drawn again (deterministically: seed + attempt) while a draw makes a
    # fragile MoE fixture; dense fixtures take the first draw.
    for attempt in range(100):
        try:
            return build_attempt(spec, out_dir, ids, attempt)
        except Redraw as e:
            last = str(e)
    raise RuntimeError(f"{spec['name']}: no usable weight draw; last: {last}")


def build_attempt(spec, out_dir, ids, attempt):
    name = spec["name"]
    model, cfg, state = make_model(spec, None, attempt)
    info = {"name": name, "weight_draw": attempt}
    if is_moe(spec):
        counts, margins = routing_summary(model, ids)
        if min(min(c) for c in counts) < MIN_EXPERT_USES:
            raise Redraw(f"expert use counts {counts}")
        if min(margins) < MIN_ROUTER_GAP_F32:
            raise Redraw(f"router gap {min(margins):.2g}")
        info["expert_selection_counts"] = counts
        info["min_router_topk_gap_f32"] = min(margins)
    ref = run_hf(model, ids)
    std = float(ref.std())
    if not (0.3 < std < 5.0):
        raise RuntimeError(f"{name}: logit std {std:.3f} is not O(1)")

    tensors = hf_to_gguf(spec, cfg, state)
    check_names(spec, [n for n, _ in tensors])
    if "rope_freqs.weight" in dict(tensors):
        # rope_freqs must reproduce transformers' llama3 inverse frequencies exactly.
        inv = model.model.rotary_emb.inv_freq.double().numpy()
        hd = cfg.head_dim
        plain = 1.0 / (cfg.rope_parameters["rope_theta"] ** (np.arange(0, hd, 2) / hd))
        got = plain / dict(tensors)["rope_freqs.weight"]
        if np.abs(got / inv - 1).max() > 1e-5:
            raise RuntimeError(f"{name}: rope_freqs do not reproduce transformers' inv_freq")

    files = {}
    for scheme in ("f32", spec["quant"]):
        fname = f"{name}.{scheme}.gguf"
        path = os.path.join(out_dir, fname)
        types_used = write_gguf(path, spec, cfg, tensors, scheme)
        fields, back = read_gguf(path)
        if fields["general.architecture"] != spec["arch"]:
            raise RuntimeError(f"{fname}: architecture reads back as {fields['general.architecture']}")
        # Round trip through the inverse mapping into transformers.
        sd = gguf_to_hf(spec, cfg, {k: v[0] for k, v in back.items()})
        if scheme == "f32":
            for k, v in sd.items():
                if not torch.equal(v, state[k]):
                    raise RuntimeError(f"{fname}: {k} does not round-trip bit-exactly")
        else:
            for k, v in sd.items():
                a, b = v.double(), state[k].double()
                err = float((a - b).abs().max() / b.abs().max())
                limit = 0.02 if "norm" in k or k.endswith("bias") else 0.2
                if err > limit:
                    raise RuntimeError(f"{fname}: {k} dequantizes {err:.3g} away from F32")
        m2, _, _ = make_model(spec, sd)
        logits = run_hf(m2, ids)
        if is_moe(spec) and scheme != "f32":
            _, qmargins = routing_summary(m2, ids)
            if min(qmargins) < MIN_ROUTER_GAP_QUANT:
                raise Redraw(f"{scheme} router gap {min(qmargins):.2g}")
            info["min_router_topk_gap_" + scheme] = min(qmargins)
        if scheme == "f32":
            if not np.array_equal(logits, ref):
                raise RuntimeError(f"{fname}: round-trip logits differ from the original model")
            logits_name = f"{name}.logits"
        else:
            logits_name = f"{name}.{scheme}.logits"
        write_logits(os.path.join(out_dir, logits_name), logits)
        # The independent llama.cpp-semantics forward pass from the file alone.
        loaded = (fields, back)
        np_logits = reference_forward(path, ids, loaded=loaded)
        e_np = rel_err(logits, np_logits)
        if e_np > CHECK_REL_TOL:
            raise RuntimeError(f"{fname}: NumPy llama.cpp-semantics forward differs from "
                               f"transformers by {e_np:.3g} relative")
        if scheme == "f32":
            # Each convention the fixture carries must matter: the same forward pass with
            # one deliberate mistake has to miss transformers by far more than 1e-4.
            sens = {}
            for mistake in applicable_mistakes(spec["arch"], fields, set(back)):
                e = rel_err(reference_forward(path, ids, mistake, loaded), logits)
                if e < 100 * F32_REL_TOL:
                    raise RuntimeError(f"{fname}: mistake {mistake} changes the logits by "
                                       f"only {e:.3g}; the fixture does not exercise it")
                sens[mistake] = e
            info["mistakes_caught_rel_err"] = sens
        hist = {}
        for t in types_used.values():
            hist[t] = hist.get(t, 0) + 1
        entry = {"gguf": fname, "logits": logits_name, "file_type": int(FILE_TYPE[scheme]),
                 "tensor_types": hist,
                 "numpy_reference_rel_err": e_np}
        if scheme == "f32":
            entry["rel_tolerance"] = F32_REL_TOL
        else:
            entry["rel_tolerance_vs_own_logits"] = F32_REL_TOL
            entry["dequant_vs_f32_max_abs_diff"] = float(np.abs(logits - ref).max())
            entry["dequant_vs_f32_rel_err"] = rel_err(logits, ref)
            if len(hist) > 2:   # mixed files: say which tensor got which type
                entry["tensor_type_by_name"] = types_used
        files[scheme] = entry
    ordered = {
        "name": name, "arch": spec["arch"], "hf_class": spec["hf_class"],
        "transformers_version": transformers.__version__, "what": spec["what"],
        "n_vocab": N_VOCAB, "n_tokens": len(ids), "prompt_token_ids": ids,
        "quant": spec["quant"], "files": files,
        "config": {k: v for k, v in spec["hf"].items() if k != "attn_implementation"},
        "logit_std": std,
    }
    ordered.update(info)
    return ordered
    return info


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=DEFAULT_OUT)
    ap.add_argument("--only", default="", help="comma-separated fixture names")
    args = ap.parse_args()

    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    os.makedirs(args.out, exist_ok=True)
    only = set(filter(None, args.only.split(",")))
    ids = prompt_ids()

    fixtures = []
    for spec in FIXTURES:
        if only and spec["name"] not in only:
            continue
        info = build_fixture(spec, args.out, ids)
        fixtures.append(info)
        q = info["files"][spec["quant"]]
        print(f"{spec['name']:18s} {spec['arch']:9s} logit std {info['logit_std']:.2f}  "
              f"numpy-ref rel {info['files']['f32']['numpy_reference_rel_err']:.1e}  "
              f"{spec['quant']} vs f32 rel {q['dequant_vs_f32_rel_err']:.3f}")

    manifest = {
        "about": "Reference logits for tiny random models; see README.md. Logits files are "
                 "float32 little-endian [n_tokens][n_vocab].",
        "generator": "tests/gen_arch_fixtures.py",
        "transformers_version": transformers.__version__,
        "torch_version": torch.__version__.split("+")[0],
        "gguf_py_version": getattr(gguf, "__version__", None) or _gguf_version(),
        "prompt_token_ids": ids,
        "n_tokens": len(ids),
        "n_vocab": N_VOCAB,
        "rel_err_definition": "max over positions t of max_v |x[t,v] - ref[t,v]| / max_v |ref[t,v]|",
        "fixtures": fixtures,
    }
    if only:
        print("--only given: manifest.json not written")
    else:
        # Files of fixtures that no longer exist would otherwise linger.
        wanted = {f["files"][k][x] for f in fixtures for k in f["files"] for x in ("gguf", "logits")}
        for fn in sorted(os.listdir(args.out)):
            if fn.endswith((".gguf", ".logits")) and fn not in wanted:
                os.remove(os.path.join(args.out, fn))
                print(f"removed stale {fn}")
        with open(os.path.join(args.out, "manifest.json"), "w") as f:
            f.write(to_json(manifest) + "\n")

    total = 0
    for fn in sorted(os.listdir(args.out)):
        if os.path.isfile(os.path.join(args.out, fn)):
            total += os.path.getsize(os.path.join(args.out, fn))
    print(f"total size of {args.out}: {total} bytes")
    if total >= SIZE_LIMIT:
        print(f"error: fixtures exceed {SIZE_LIMIT} bytes", file=sys.stderr)
        return 1
    return 0


def to_json(v, indent=0):
    """json.dumps(indent=1), except that lists of numbers stay on one line."""
    pad = " " * (indent + 1)
    if isinstance(v, dict):
        if not v:
            return "{}"
        items = [f"{pad}{json.dumps(k)}: {to_json(x, indent + 1)}" for k, x in v.items()]
        return "{\n" + ",\n".join(items) + "\n" + " " * indent + "}"
    if isinstance(v, list):
        if all(not isinstance(x, (dict, list)) for x in v):
            return json.dumps(v)
        items = [pad + to_json(x, indent + 1) for x in v]
        return "[\n" + ",\n".join(items) + "\n" + " " * indent + "]"
    return json.dumps(v)


def _gguf_version():
    try:
        from importlib.metadata import version
        return version("gguf")
    except Exception:
        return None


if __name__ == "__main__":
    sys.exit(main())
