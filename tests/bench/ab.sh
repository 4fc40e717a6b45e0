#!/usr/bin/env bash
# Decode speed of several `cleave bench` configurations of one model, measured
# in alternation so that a shared or throttling machine slows them alike:
# ROUNDS rounds, each running every configuration once (-r 1), then the median
# tokens/s of each and its ratio to the first configuration.
#
#   tests/bench/ab.sh MODEL.gguf "" "--sparsity 0.5" "--predictor m.predictor"
#
# Each argument after the model is one configuration's extra options ("" is
# plain dense). Environment: CLEAVE (binary, default build/cleave), ROUNDS
# (default 9), TOKENS (default 64), THREADS (default: all cores).
set -euo pipefail
model="${1:?usage: tests/bench/ab.sh MODEL.gguf CONFIG...}"
shift
[ "$#" -ge 1 ] || { echo "ab.sh: give at least one configuration (\"\" for dense)" >&2; exit 2; }
cleave="${CLEAVE:-build/cleave}"
rounds="${ROUNDS:-9}"
tokens="${TOKENS:-64}"
threads="${THREADS:-$(nproc)}"
[ -x "$cleave" ] || { echo "ab.sh: no cleave binary at $cleave (set CLEAVE)" >&2; exit 2; }

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
configs=("$@")
for ((r = 1; r <= rounds; r++)); do
  for i in "${!configs[@]}"; do
    # shellcheck disable=SC2086 # a configuration is a list of options
    "$cleave" bench -m "$model" -p 0 -n "$tokens" -r 1 -t "$threads" -o csv ${configs[$i]} 2>/dev/null |
      awk -F, 'NR == 2 { print $7, $9 }' >> "$tmp/$i" ||
      { echo "ab.sh: cleave bench failed for configuration '${configs[$i]}'" >&2; exit 1; }
  done
  echo "ab.sh: round $r of $rounds" >&2
done

echo "$(basename "$model"), tg$tokens, $threads threads, $rounds alternating rounds, $(date -u +%F)"
echo "| configuration | median tok/s | min | max | weight MiB/token | ratio to first |"
echo "| --- | ---: | ---: | ---: | ---: | ---: |"
first=""
for i in "${!configs[@]}"; do
  read -r med lo hi bytes < <(sort -g "$tmp/$i" | awk '{ v[NR] = $1; b = $2 } END {
      m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
      printf "%.2f %.2f %.2f %.2f\n", m, v[1], v[NR], b / 1048576 }')
  [ -n "$first" ] || first="$med"
  name="${configs[$i]:-dense}"
  echo "| $name | $med | $lo | $hi | $bytes | $(awk -v a="$med" -v b="$first" 'BEGIN { printf "%.3fx", a / b }') |"
done
