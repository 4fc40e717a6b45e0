#!/usr/bin/env bash
# The standard CPU benchmark table: builds cleave, makes the synthetic models
# (cleave mkmodel) and runs `cleave bench` on each, writing every log and
# table to OUTDIR. Used for the figures in docs/benchmarks.md.
#
#   tests/bench/cpu-table.sh OUTDIR [MODELDIR] [PRESETS...]
#
# MODELDIR (default /dev/shm) holds the generated models (an 18.6 GB file for
# qwen3-30b-a3b: use a RAM disk or a fast SSD). PRESETS default to
# "qwen3-30b-a3b llama-3-8b". Environment: THREADS (default: all cores),
# REPS (default 3), STEP_TIMEOUT seconds per step (default 300).
set -uo pipefail
out="${1:?usage: tests/bench/cpu-table.sh OUTDIR [MODELDIR] [PRESETS...]}"
models="${2:-/dev/shm}"
shift $(( $# >= 2 ? 2 : $# ))
presets=("$@")
[ "${#presets[@]}" -gt 0 ] || presets=(qwen3-30b-a3b llama-3-8b)
threads="${THREADS:-$(nproc)}"
reps="${REPS:-3}"
step="${STEP_TIMEOUT:-300}"
cd "$(dirname "$0")/../.."
mkdir -p "$out"

{ date -u; uname -a; lscpu | grep -E "Model name|^CPU\(s\)|Thread|Core|Socket|NUMA node\(s\)|L3"; free -g | head -2; } > "$out/machine.txt" 2>&1
cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release -DCLEAVE_CUDA=OFF -DCLEAVE_FUZZ=OFF > "$out/build.log" 2>&1 &&
  cmake --build build-bench -j"$(nproc)" --target cleave >> "$out/build.log" 2>&1 || { echo "build failed" >&2; exit 1; }

for p in "${presets[@]}"; do
  f="$models/$p.Q4_K_M.gguf"
  timeout "$step" build-bench/cleave mkmodel --shape "$p" --type Q4_K_M -o "$f" -q > "$out/mkmodel-$p.log" 2>&1
  echo "mkmodel $p: $(tail -n 1 "$out/mkmodel-$p.log")" >> "$out/summary.txt"
  timeout "$step" build-bench/cleave bench -m "$f" -p 512 -n 128 -r "$reps" -t "$threads" -o md > "$out/bench-$p.md" 2> "$out/bench-$p.log"
  cat "$out/bench-$p.md" >> "$out/summary.txt"
  rm -f "$f"
done
cat "$out/summary.txt"
