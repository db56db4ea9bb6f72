#!/usr/bin/env python3
"""Writes torch-casts.safetensors: float bit patterns and what torch's CPU casts make of them.

    .venv-torch/bin/python Fixtures/casts/generate.py

`torchport convert --dtype float16|bfloat16` must give the bits of torch's `.half()` /
`.bfloat16()`; Tests/ResNetTests/FloatCastTests.swift compares FloatCast with this file.

Tensors (all one-dimensional, raw bit patterns kept exactly):
  f32, f64, f16, bf16     inputs: edge cases (zeros, infinities, NaNs with payloads, float32 and
                          float16 subnormals, overflow thresholds, every kind of rounding tie and its
                          neighbours, values that round twice from float64) plus seeded random ones
  <in>.to_<out>           torch's result of `input.to(out)` for the whole tensor at once

Metadata: the torch version, the CPU capability torch ran with, and `nan_exact`: the conversions
whose NaN bit patterns torch produces consistently (the same whole-tensor and element by element).
For the others torch's vectorised kernel and its scalar tail disagree on NaN bits (e.g. float64 ->
bfloat16 gives 0xFFFF or 0x7FC0 depending on the position), so only NaN-ness can be compared.
"""
import struct
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

HERE = Path(__file__).resolve().parent
rng = np.random.default_rng(20240611)


def u32(values):
    return np.array(values, dtype=np.uint64).astype(np.uint32)


def f32_inputs():
    special = [
        0x00000000, 0x80000000, 0x7F800000, 0xFF800000,                     # zeros, infinities
        0x7FC00000, 0xFFC00000, 0x7F800001, 0xFF800001, 0x7FA00000,         # NaNs: quiet, signalling,
        0x7FFFFFFF, 0xFFFFFFFF, 0x7FBFFFFF, 0x7F802000, 0x7F801FFF,         # payloads above and below
        0x7FC00001, 0x7FE00000, 0x7F804000,                                 # the 13 bits float16 drops
        0x7F7FFFFF, 0xFF7FFFFF, 0x00800000, 0x80800000,                     # float32 max, min normal
        0x00000001, 0x80000001, 0x007FFFFF, 0x00400000, 0x80400000,         # float32 subnormals
        0x477FE000, 0x477FEFFF, 0x477FF000, 0x477FF001, 0xC77FF000,         # 65504, 65520 (-> inf)
        0x47800000, 0x501502F9, 0x3F800000, 0xBF800000, 0x40490FDB,         # 65536, 1e10, +-1, pi
        0x38800000, 0x387FFFFF, 0x38800001, 0x387FE000, 0x387FF000,         # float16 min normal 2^-14
        0x387FEFFF, 0x387FF001, 0x33800000, 0x33000000, 0x33000001,         # 2^-24, 2^-25 (tie -> 0)
        0x32FFFFFF, 0x33400000, 0x33A00000, 0x33C00000, 0x34200000,         # 1.5, 2.5, 3, 5 x 2^-25
        0x3F808000, 0x3F818000, 0x3F807FFF, 0x3F808001, 0x3F818001,         # bfloat16 ties (even, odd)
        0x7F7F8000, 0x7F7F7FFF, 0x7F7EFFFF, 0x7F7F0000, 0x00008000,         # bfloat16 overflow, subnormal tie
        0x00018000, 0x00017FFF, 0x0000FFFF, 0x007F8000, 0x007FFFFF,
        0x3F801000, 0x3F803000, 0x3F800FFF, 0x3F801001,                     # float16 ties at 1.0
    ]
    out = list(special)

    # Float16 rounding ties: the float32 midway between two adjacent finite float16 values, and
    # its neighbours one float32 ulp either side, for random normal and subnormal float16 values.
    def f16_midpoints(bits):
        vals = []
        for h in bits:
            lo = np.array([h], dtype=np.uint16).view(np.float16).astype(np.float32)[0]
            hi = np.array([h + 1], dtype=np.uint16).view(np.float16).astype(np.float32)[0]
            mid = np.float32((np.float64(lo) + np.float64(hi)) / 2)
            m = int(np.array([mid], dtype=np.float32).view(np.uint32)[0])
            vals += [m - 1, m, m + 1]
        return vals

    normal = rng.integers(0x0400, 0x7BFF, size=600)
    normal = np.where(rng.random(600) < 0.5, normal, normal | 0x8000) & 0xFFFF
    out += f16_midpoints([int(h) for h in normal if (h & 0x7FFF) < 0x7BFF])
    out += f16_midpoints([int(h) for h in rng.integers(0x0000, 0x03FF, size=200)])
    # Bfloat16 ties: the low 16 bits exactly 0x8000, and one below and above, over all exponents.
    for b in rng.integers(0, 0x7F7F, size=600):
        b = int(b) | (0x8000 if rng.random() < 0.5 else 0)
        m = (b << 16) | 0x8000
        out += [m - 1, m, m + 1]
    out += [int(x) for x in rng.integers(0, 2**32, size=500, dtype=np.uint64)]
    out += [int(x) for x in rng.normal(0, 0.05, size=500).astype(np.float32).view(np.uint32)]
    return np.array(out, dtype=np.uint64).astype(np.uint32).view(np.float32)


def f64_inputs():
    vals = [0.0, -0.0, float("inf"), float("-inf"), float("nan"), -float("nan"),
            struct.unpack("<d", struct.pack("<Q", 0x7FF0000000000001))[0],         # signalling NaN
            struct.unpack("<d", struct.pack("<Q", 0x7FF8000000000001))[0],
            1e39, -1e39, 3.5e38, 1e-46, 1e-45, 7e-46, 1.5e-45, 65519.99, 65520.0, 65504.0,
            2.0**-25, 2.0**-25 * (1 + 2**-30), 2.0**-24, 2.0**-14, 2.0**-149, 2.0**-150,
            2.0**-150 * (1 + 2**-20), 1 + 2**-11 + 2**-40, 1 + 2**-11 - 2**-40, 1 + 2**-8 + 2**-40,
            1 + 2**-8 - 2**-40, 1 + 3 * 2**-11 + 2**-40, 1 + 3 * 2**-8 - 2**-40]
    # Values a hair above and below float16 / bfloat16 ties: rounding once (float64 -> float16)
    # and twice (via float32, as torch does) can differ.
    for e in rng.integers(-14, 15, size=150):
        m = int(rng.integers(0, 1024))
        tie = (1 + (2 * m + 1) / 2048) * 2.0**int(e)
        vals += [tie * (1 + 2**-40), tie * (1 - 2**-40)]
    for e in rng.integers(-120, 120, size=150):
        m = int(rng.integers(0, 128))
        tie = (1 + (2 * m + 1) / 256) * 2.0**int(e)
        vals += [tie * (1 + 2**-40), -tie * (1 - 2**-40)]
    vals += list(rng.normal(0, 1, size=200))
    vals += list(np.exp(rng.uniform(-110, 95, size=200)) * np.sign(rng.normal(size=200)))
    return np.array(vals, dtype=np.float64)


def f16_inputs():
    special = list(range(0x7C00, 0x7C10)) + list(range(0x7DF8, 0x7E08)) + list(range(0x7FF0, 0x8000))
    special += [b | 0x8000 for b in special] + [0x0000, 0x8000, 0x0001, 0x8001, 0x03FF, 0x0400, 0x7BFF, 0xFBFF]
    sub = [int(b) for b in rng.integers(0x0001, 0x03FF, size=300)]
    normal = [int(b) for b in rng.integers(0x0400, 0x7BFF, size=600)]
    bits = special + sub + [b | 0x8000 for b in sub[:100]] + normal + [b | 0x8000 for b in normal[:200]]
    return np.array(bits, dtype=np.uint16)


def bf16_inputs():
    special = list(range(0x7F80, 0x7F90)) + list(range(0x7FB8, 0x7FC8)) + list(range(0x7FF0, 0x8000))
    special += [b | 0x8000 for b in special] + [0x0000, 0x8000, 0x0001, 0x007F, 0x0080, 0x7F7F, 0xFF7F,
                                                0x477F, 0x4780, 0x3380, 0x3300, 0x3880]
    rand = [int(b) for b in rng.integers(0x0000, 0x7F80, size=800)]
    bits = special + rand + [b | 0x8000 for b in rand[:300]]
    return np.array(bits, dtype=np.uint16)


DTYPES = {"f32": torch.float32, "f64": torch.float64, "f16": torch.float16, "bf16": torch.bfloat16}
BITS = {torch.float32: torch.int32, torch.float64: torch.int64, torch.float16: torch.int16, torch.bfloat16: torch.int16}


def bits_of(t):
    return t.view(BITS[t.dtype])


def main():
    inputs = {
        "f32": torch.from_numpy(f32_inputs().copy()),
        "f64": torch.from_numpy(f64_inputs().copy()),
        "f16": torch.from_numpy(f16_inputs().view(np.int16).copy()).view(torch.float16),
        "bf16": torch.from_numpy(bf16_inputs().view(np.int16).copy()).view(torch.bfloat16),
    }
    tensors = dict(inputs)
    nan_exact = []
    for src, x in inputs.items():
        for dst in ("f32", "f16", "bf16"):
            if dst == src:
                continue
            whole = x.to(DTYPES[dst])
            one_by_one = torch.cat([x[i:i + 1].to(DTYPES[dst]) for i in range(x.numel())])
            nan = torch.isnan(whole)
            assert torch.equal(nan, torch.isnan(one_by_one))
            assert torch.equal(bits_of(whole)[~nan], bits_of(one_by_one)[~nan]), (src, dst)
            if torch.equal(bits_of(whole), bits_of(one_by_one)):
                nan_exact.append(f"{src}.to_{dst}")
            tensors[f"{src}.to_{dst}"] = whole
    metadata = {
        "torch": torch.__version__,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "nan_exact": ",".join(nan_exact),
    }
    save_file(tensors, str(HERE / "torch-casts.safetensors"), metadata=metadata)
    sizes = {k: v.numel() for k, v in inputs.items()}
    print(f"wrote torch-casts.safetensors: {sizes}; NaN bits consistent for {nan_exact}")


if __name__ == "__main__":
    main()
