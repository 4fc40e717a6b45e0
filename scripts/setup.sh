#!/usr/bin/env bash
# Installs what cleave needs to build on Debian/Ubuntu: a C compiler, CMake,
# hwloc, libnuma, liburing and oneDNN development packages (oneDNN's CMake
# package wants OpenCL's headers), the Unicode database (tokenizer tables)
# and Python 3 (fixture scripts only).
#
# As root it installs what is missing; otherwise it prints the command to run.
# The CUDA toolkit is not installed here: when nvcc is on the machine
# (/usr/local/cuda/bin or PATH), CMake builds the CUDA backend too.
set -euo pipefail

packages=(build-essential cmake pkg-config libhwloc-dev libnuma-dev liburing-dev libdnnl-dev
          ocl-icd-opencl-dev unicode-data python3)
optional=(clang libclang-rt-dev)   # libFuzzer targets; skipped when unavailable

if ! command -v dpkg-query >/dev/null; then
  echo "setup: not a Debian/Ubuntu system; install: ${packages[*]} (and clang for fuzzing)" >&2
  exit 0
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
missing_optional=()
for p in "${optional[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing_optional+=("$p")
done
# clang's runtime package carries its version in the name; one installed is enough.
if [ "${#missing_optional[@]}" -gt 0 ] && command -v clang >/dev/null &&
   [ -e "$(clang -print-file-name=libclang_rt.fuzzer-x86_64.a 2>/dev/null)" ]; then
  missing_optional=()
fi

if [ "${#missing[@]}" -eq 0 ] && [ "${#missing_optional[@]}" -eq 0 ]; then
  echo "setup: all build dependencies are installed"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  [ "${#missing[@]}" -gt 0 ] && echo "setup: missing packages; run: sudo apt-get install -y ${missing[*]}" >&2
  [ "${#missing_optional[@]}" -gt 0 ] && echo "setup: optional (fuzzing): sudo apt-get install -y clang libclang-rt-dev" >&2
  [ "${#missing[@]}" -gt 0 ] && exit 1
  exit 0
fi

export DEBIAN_FRONTEND=noninteractive
echo "setup: installing ${missing[*]} ${missing_optional[*]}"
apt-get update -qq
if [ "${#missing[@]}" -gt 0 ]; then
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
if [ "${#missing_optional[@]}" -gt 0 ]; then
  # Older releases name the runtime libclang-rt-NN-dev; leave fuzzing out if neither exists.
  apt-get install -y -qq --no-install-recommends clang libclang-rt-dev 2>/dev/null ||
    apt-get install -y -qq --no-install-recommends clang "libclang-rt-$(clang --version 2>/dev/null | sed -n 's/.*version \([0-9]*\).*/\1/p' | head -n1)-dev" 2>/dev/null ||
    echo "setup: clang's libFuzzer runtime is not available; fuzz targets will be skipped"
fi
echo "setup: done"
