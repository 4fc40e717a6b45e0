#!/usr/bin/env python3
"""Reference behaviour of real models from Hugging Face transformers running the
same GGUF file (transformers dequantizes it to float32), for tests/test_real_models.c.

For each model it writes tests/data/real_<name>.txt with:
  - 2048 token ids of an English text (teacher forcing) and, per position, the
    reference top-1 token and the gap between its top-2 logits;
  - five prompts with transformers' greedy 64-token continuations (and the
    top-2 gap at every step);
  - the perplexity of the first 10240 tokens of the text, llama-perplexity
    style (chunks of 512, BOS first where the vocabulary adds one, the second
    half of each chunk scored).

The text is the GNU GPL version 3 followed by the Apache License 2.0, as
Debian ships them in /usr/share/common-licenses (its SHA-256 is recorded).
The C test needs only the ids, not the text.

Run: python3 tests/gen_real_model_refs.py   (needs torch, transformers, gguf;
the models come from scripts/get-model.sh).
"""
import hashlib
import math
import os
import subprocess
import sys

import torch
import transformers
from transformers import AutoModelForCausalLM, AutoTokenizer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODELS = {"smollm2-135m-instruct": "SmolLM2-135M-Instruct.Q4_1.gguf", "gemma3-270m": "gemma-3-270m-q4_k_m.gguf"}
TEXT_FILES = ["/usr/share/common-licenses/GPL-3", "/usr/share/common-licenses/Apache-2.0"]
N_FORCED = 2048
N_PPL = 10240
PPL_CTX = 512
PROMPTS = [
    "The capital of France is",
    "def fibonacci(n):\n",
    "Once upon a time, in a small village,",
    "The three laws of thermodynamics are",
    "To make a cup of tea, first",
]
N_GREEDY = 64


def model_path(name):
    return subprocess.check_output([os.path.join(ROOT, "scripts/get-model.sh"), name], text=True).strip()


@torch.no_grad()
def logits_of(model, ids):
    out = model(torch.tensor([ids]), use_cache=False)
    return out.logits[0].float()


def top2(row):
    v, i = torch.topk(row, 2)
    return int(i[0]), float(v[0] - v[1])


@torch.no_grad()
def main():
    torch.manual_seed(0)
    torch.set_num_threads(os.cpu_count() or 2)
    text = b"".join(open(f, "rb").read() for f in TEXT_FILES)
    digest = hashlib.sha256(text).hexdigest()
    for name, file in MODELS.items():
        path = model_path(name)
        d, f = os.path.dirname(path), os.path.basename(path)
        tok = AutoTokenizer.from_pretrained(d, gguf_file=f)
        model = AutoModelForCausalLM.from_pretrained(d, gguf_file=f, torch_dtype=torch.float32)
        model.eval()
        ids = tok(text.decode("utf-8"), add_special_tokens=False)["input_ids"]
        bos = tok.bos_token_id
        add_bos = bool(getattr(tok, "add_bos_token", False)) and bos is not None
        lines = [
            f"# {name}: transformers {transformers.__version__}, torch {torch.__version__}, {file}",
            f"# text: {' + '.join(TEXT_FILES)} sha256 {digest}, {len(ids)} tokens",
        ]
        # Teacher forcing: BOS (if the model adds one) + the first tokens.
        forced = ([bos] if add_bos else []) + ids[: N_FORCED - (1 if add_bos else 0)]
        lg = logits_of(model, forced)
        lines.append(f"forced {len(forced)}")
        lines.append(" ".join(map(str, forced)))
        tops = [top2(lg[i]) for i in range(len(forced))]
        lines.append(" ".join(str(t) for t, _ in tops))
        lines.append(" ".join(f"{g:.5f}" for _, g in tops))
        # Greedy continuations.
        for p in PROMPTS:
            pids = tok(p, add_special_tokens=False)["input_ids"]
            if add_bos:
                pids = [bos] + pids
            seq, gaps = list(pids), []
            for _ in range(N_GREEDY):
                t, g = top2(logits_of(model, seq)[-1])
                seq.append(t)
                gaps.append(g)
            lines.append(f"greedy {len(pids)} {N_GREEDY}")
            lines.append(" ".join(map(str, pids)))
            lines.append(" ".join(map(str, seq[len(pids):])))
            lines.append(" ".join(f"{g:.5f}" for g in gaps))
        # Perplexity, llama-perplexity conventions.
        nll, count = 0.0, 0
        chunks = min(N_PPL, len(ids)) // PPL_CTX
        for c in range(chunks):
            chunk = list(ids[c * PPL_CTX:(c + 1) * PPL_CTX])
            if add_bos:
                chunk[0] = bos
            lp = torch.log_softmax(logits_of(model, chunk).double(), dim=-1)
            for j in range(PPL_CTX // 2, PPL_CTX - 1):
                nll -= float(lp[j, chunk[j + 1]])
                count += 1
        lines.append(f"perplexity {PPL_CTX} {chunks} {math.exp(nll / count):.6f}")
        lines.append(" ".join(map(str, ids[: chunks * PPL_CTX])))
        out = os.path.join(ROOT, "tests/data", f"real_{name}.txt")
        with open(out, "w") as fh:
            fh.write("\n".join(lines) + "\n")
        print(f"{name}: wrote {out}; perplexity {math.exp(nll / count):.4f} over {chunks} chunks", flush=True)


if __name__ == "__main__":
    sys.exit(main())
