#!/usr/bin/env bash
# Builds cleave and runs every test (ctest). Usage:
#   scripts/test.sh                      # Release build in build-test/
#   CLEAVE_SANITIZE=address,undefined scripts/test.sh   # in build-sanitize/
# Extra arguments go to ctest (e.g. -R gguf). Tests that need a GPU, a
# downloaded model or ../shared/fixtures skip with a message when absent.
set -euo pipefail
cd "$(dirname "$0")/.."

sanitize="${CLEAVE_SANITIZE:-}"
build="${CLEAVE_BUILD_DIR:-build-test}"
[ -n "$sanitize" ] && build="${CLEAVE_BUILD_DIR:-build-sanitize}"

# CUDA code is compiled for the GPU in this machine, or for one architecture
# when there is none (a compile check: GPU tests skip without a GPU).
if [ -z "${CLEAVE_CUDA_ARCHITECTURES:-}" ]; then
  if command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1; then
    CLEAVE_CUDA_ARCHITECTURES=native
  else
    CLEAVE_CUDA_ARCHITECTURES=90
  fi
fi

# Real models the tests check (cached outside the repo; tests skip without them).
for model in smollm2-135m-instruct gemma3-270m; do
  scripts/get-model.sh "$model" >/dev/null || echo "test: could not fetch $model; its tests will skip" >&2
done

jobs="$(nproc 2>/dev/null || echo 2)"
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DCLEAVE_SANITIZE="$sanitize" \
      -DCMAKE_CUDA_ARCHITECTURES="$CLEAVE_CUDA_ARCHITECTURES"
cmake --build "$build" -j "$jobs"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}"
cd "$build" && ctest --output-on-failure -j "$jobs" "$@"
