#!/usr/bin/env python3
"""Writes tests/data/quant_golden.bin: random blocks of every type cleave
dequantizes, with the float32 values that the `gguf` PyPI package (an
independent implementation of the formats) decodes them to.
test_quant_golden.c requires cleave's scalar dequantizer to match bit for bit.

Blocks are random bytes, except that fp16 scale fields get random finite
values (moderate, plus one block of subnormals) and MXFP4 exponents a sane
range plus the edge codes 0, 1, 2 and 255, so every value is well defined.

File layout (little-endian):
  "CLVQGOLD", u32 version (1), u32 entry count, then per entry:
  i32 ggml type, u32 elements, u32 raw bytes, raw bytes, elements x f32.

Run from anywhere: python3 tests/gen_quant_golden.py [output path]
"""
import os
import struct
import sys

import numpy as np
from gguf import GGML_QUANT_SIZES, GGMLQuantizationType as T
from gguf.quants import dequantize

SEED = 20240601

# Offsets of the fp16 scale fields in each block (REFERENCE.md section 2).
FP16_FIELDS = {
    T.Q4_0: [0],
    T.Q4_1: [0, 2],
    T.Q5_0: [0],
    T.Q5_1: [0, 2],
    T.Q8_0: [0],
    T.Q2_K: [80, 82],
    T.Q3_K: [108],
    T.Q4_K: [0, 2],
    T.Q5_K: [0, 2],
    T.Q6_K: [208],
    T.IQ4_NL: [0],
    T.IQ4_XS: [0],
}


def random_fp16(rng, subnormal):
    if subnormal:
        bits = int(rng.integers(1, 0x400))
    else:  # |x| in [2^-12, 2^3): moderate scales, no overflow anywhere
        bits = (int(rng.integers(3, 18)) << 10) | int(rng.integers(0, 0x400))
    if rng.integers(0, 2):
        bits |= 0x8000
    return bits


def quant_blocks(rng, qtype, n_blocks):
    block_elems, block_bytes = GGML_QUANT_SIZES[qtype]
    raw = bytearray(rng.integers(0, 256, size=n_blocks * block_bytes, dtype=np.uint8).tobytes())
    for b in range(n_blocks):
        base = b * block_bytes
        if qtype == T.MXFP4:
            e = [int(rng.integers(100, 150)), int(rng.integers(100, 150)), int(rng.integers(110, 140)),
                 0, 1, 2, 255][b]
            raw[base] = e
            continue
        for off in FP16_FIELDS[qtype]:
            struct.pack_into("<H", raw, base + off, random_fp16(rng, subnormal=(b == n_blocks - 1)))
    return bytes(raw), n_blocks * block_elems


def special_f32():
    bits = [0x00000000, 0x80000000, 0x7F800000, 0xFF800000, 0x7FC00000, 0x7F800001, 0xFFC12345,
            0x00000001, 0x807FFFFF, 0x3F800000, 0xC0490FDB, 0x7F7FFFFF]
    return np.array(bits, dtype=np.uint32)


def special_fp16():
    bits = [0x0000, 0x8000, 0x0001, 0x8001, 0x03FF, 0x0400, 0x3C00, 0xBC00, 0x7BFF, 0xFBFF,
            0x7C00, 0xFC00, 0x7E00, 0x7C01, 0xFD55, 0x7FFF, 0x3555, 0x0200]
    return np.array(bits, dtype=np.uint16)


def plain_values(rng, qtype):
    if qtype == T.F32:
        rand = rng.standard_normal(52).astype(np.float32).view(np.uint32)
        bits = np.concatenate([special_f32(), rand]).astype(np.uint32)
    else:
        rand = rng.integers(0, 1 << 16, size=46, dtype=np.uint32).astype(np.uint16)
        bits = np.concatenate([special_fp16(), rand]).astype(np.uint16)
    raw = bits.astype(bits.dtype.newbyteorder("<")).tobytes()
    return raw, len(bits)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    out_path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "data", "quant_golden.bin")
    rng = np.random.default_rng(SEED)

    types = [T.F32, T.F16, T.BF16, T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q8_0, T.Q2_K, T.Q3_K, T.Q4_K,
             T.Q5_K, T.Q6_K, T.IQ4_NL, T.IQ4_XS, T.MXFP4]
    entries = []
    for qtype in types:
        if qtype in (T.F32, T.F16, T.BF16):
            raw, n = plain_values(rng, qtype)
        else:
            raw, n = quant_blocks(rng, qtype, 7 if qtype == T.MXFP4 else 4)
        with np.errstate(over="ignore"):  # MXFP4 with e = 255 overflows to inf on purpose
            values = dequantize(np.frombuffer(raw, dtype=np.uint8), qtype)
        values = np.asarray(values, dtype=np.float32).reshape(-1)
        assert values.size == n, (qtype.name, values.size, n)
        entries.append((int(qtype), n, raw, values.astype("<f4").tobytes()))

    with open(out_path, "wb") as f:
        f.write(b"CLVQGOLD")
        f.write(struct.pack("<II", 1, len(entries)))
        for qtype, n, raw, values in entries:
            f.write(struct.pack("<iII", qtype, n, len(raw)))
            f.write(raw)
            f.write(values)
    print(f"wrote {out_path}: {len(entries)} types, {os.path.getsize(out_path)} bytes")


if __name__ == "__main__":
    main()
