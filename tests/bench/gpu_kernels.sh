#!/usr/bin/env bash
# Where a `cleave bench` run's GPU time goes, kernel by kernel: runs it under
# Nsight Compute collecting only each kernel's duration, then prints the
# kernels by total time (share, launches, mean) as a Markdown table.
#
#   tests/bench/gpu_kernels.sh MODEL.gguf -p 512 -n 0 -r 1
#
# The arguments after the model go to `cleave bench` (--gpu all is added).
# ncu serialises the launches, so the sum is GPU time, not wall time; the
# shares are what to compare. Environment:
# CLEAVE (binary, default build/cleave), NCU (default ncu), LAUNCHES (most
# kernels profiled, default 3000: a qwen3-30b-a3b pp512 pass is about 1000),
# TOP (rows printed, default 25).
set -euo pipefail
model="${1:?usage: tests/bench/gpu_kernels.sh MODEL.gguf [cleave bench options]}"
shift
cleave="${CLEAVE:-build/cleave}"
ncu="${NCU:-ncu}"
[ -x "$cleave" ] || { echo "gpu_kernels.sh: no cleave binary at $cleave (set CLEAVE)" >&2; exit 2; }
command -v "$ncu" > /dev/null || { echo "gpu_kernels.sh: no $ncu on PATH (set NCU)" >&2; exit 2; }

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
# The clocks are left alone (--clock-control none): fixed base clocks would
# understate a card that boosts.
"$ncu" --clock-control none --metrics gpu__time_duration.sum --csv --page raw \
  --launch-count "${LAUNCHES:-3000}" "$cleave" bench -m "$model" --gpu all "$@" > "$tmp/raw.csv" 2> "$tmp/err" ||
  { cat "$tmp/err" >&2; echo "gpu_kernels.sh: ncu failed" >&2; exit 1; }

# ncu's CSV: a header row naming "Kernel Name" and the metric, a units row,
# then one row per launch; kernel names contain commas inside quotes.
python3 - "$tmp/raw.csv" "${TOP:-25}" <<'PY'
import collections, csv, sys
path, top = sys.argv[1], int(sys.argv[2])
hdr, agg = None, collections.defaultdict(lambda: [0, 0.0])
with open(path, newline="") as f:
    for row in csv.reader(f):
        if "Kernel Name" in row and "gpu__time_duration.sum" in row:
            hdr = row
            name_i, time_i = row.index("Kernel Name"), row.index("gpu__time_duration.sum")
            continue
        if hdr is None or len(row) != len(hdr):
            continue
        try:
            ns = float(row[time_i].replace(",", ""))
        except ValueError:
            continue  # the units row
        a = agg[row[name_i]]
        a[0] += 1
        a[1] += ns
if not agg:
    sys.exit("gpu_kernels.sh: ncu recorded no kernels")
total = sum(v[1] for v in agg.values())
print(f"{sum(v[0] for v in agg.values())} launches, {total / 1e6:.3f} ms of GPU time")
print("| kernel | ms | share | launches | us per launch |")
print("| --- | ---: | ---: | ---: | ---: |")
for name, (n, ns) in sorted(agg.items(), key=lambda kv: -kv[1][1])[:top]:
    short = name if len(name) <= 90 else name[:87] + "..."
    print(f"| `{short}` | {ns / 1e6:.3f} | {100 * ns / total:.1f}% | {n} | {ns / n / 1e3:.1f} |")
PY
