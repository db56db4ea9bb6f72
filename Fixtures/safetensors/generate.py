#!/usr/bin/env python3
"""Writes the safetensors interoperability fixtures with Python's own `safetensors` library.

Run from the repository root with the fixture environment (see the Makefile's `venv`):

    .venv-torch/bin/python Fixtures/safetensors/generate.py

For each case it writes `python-written/<case>.safetensors` and `<case>.expected.json` (each
tensor's name, dtype, shape, data offsets and the sha256 of its raw little-endian bytes, in file
order), plus `swift-cases.json`, the tensors the Swift writer builds from a byte pattern for the
reverse direction (see check_swift_output.py and docs/safetensors.md).

Deterministic: seeded generators and fixed values. One caveat, which is Python's and not ours:
the Rust writer serializes `__metadata__` from a hash map, so when a file has two or more
metadata keys their order in the header changes from run to run (the expectations do not).
"""
import hashlib
import json
import os
import struct
import sys

import numpy as np
import torch
import safetensors
import safetensors.numpy
import safetensors.torch

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "python-written")

ST_NAMES = {
    torch.bool: "BOOL", torch.uint8: "U8", torch.int8: "I8", torch.int16: "I16",
    torch.uint16: "U16", torch.float16: "F16", torch.bfloat16: "BF16", torch.int32: "I32",
    torch.uint32: "U32", torch.float32: "F32", torch.complex64: "C64", torch.float64: "F64",
    torch.int64: "I64", torch.uint64: "U64", torch.float8_e4m3fn: "F8_E4M3",
    torch.float8_e5m2: "F8_E5M2",
}


def raw_bytes(t):
    """The tensor's raw little-endian bytes, in row-major order."""
    if isinstance(t, np.ndarray):
        return np.ascontiguousarray(t).tobytes()
    t = t.contiguous().reshape(-1)
    return t.view(torch.uint8).numpy().tobytes() if t.numel() else b""


def header_of(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    return n, header, data


def bits(dtype, values, np_dtype):
    """A tensor of `dtype` from explicit bit patterns (for NaN payloads, -0.0, subnormals)."""
    return torch.from_numpy(np.array(values, dtype=np_dtype)).view(dtype)


def cases():
    g = torch.Generator().manual_seed(20240611)
    rng = np.random.default_rng(20240611)
    yield "dtypes-numpy", "safetensors.numpy.save_file", {
        "flag": np.array([True, False, True, True, False]),
        "u8": rng.integers(0, 256, size=(2, 3), dtype=np.uint8),
        "i8": np.array([-128, -1, 0, 127], dtype=np.int8),
        "i16": np.array([-32768, 1234, 32767], dtype=np.int16),
        "f16": rng.standard_normal((2, 2)).astype(np.float16),
        "i32": np.array([-2**31, 7, 2**31 - 1], dtype=np.int32),
        "f32": rng.standard_normal((2, 3)).astype(np.float32),
        "f64": rng.standard_normal(2),
        "i64": np.array([-2**63, 42, 2**63 - 1], dtype=np.int64),
        "c64": (rng.standard_normal(2) + 1j * rng.standard_normal(2)).astype(np.complex64),
    }, {"format": "np"}
    yield "bf16-torch", "safetensors.torch.save_file", {
        "bf16": torch.randn(3, 4, generator=g).to(torch.bfloat16),
        "f32": torch.randn(4, generator=g),
        "f16": torch.randn(2, generator=g).half(),
    }, None
    yield "scalars-and-empty", "safetensors.torch.save_file", {
        "scalar_f32": torch.tensor(3.5),
        "scalar_i64": torch.tensor(-7, dtype=torch.int64),
        "scalar_bool": torch.tensor(True),
        "empty_0x3": torch.zeros(0, 3),
        "empty_i8": torch.zeros(0, dtype=torch.int8),
        "empty_2x0x2": torch.zeros(2, 0, 2, dtype=torch.float64),
        "one": torch.ones(1, dtype=torch.bfloat16),
    }, {"kind": "edge cases"}
    yield "unicode-metadata", "safetensors.torch.save_file", {
        "emb.\u00e9": torch.arange(6, dtype=torch.float32).reshape(2, 3),
        "quote\"back\\slash\ttab": torch.arange(3, dtype=torch.int16),
        "\u65e5\u672c\u8a9e.weight": torch.arange(4, dtype=torch.int64),
        "rocket\U0001F680": torch.tensor([1, 0, 1], dtype=torch.bool),
    }, {
        "format": "pt",
        "note": "h\u00e9llo \u2014 \u65e5\u672c\u8a9e \U0001F680",
        "escapes": "tab\tnewline\n\"quoted\" back\\slash \x01 \x7f /",
        "": "empty key",
    }
    yield "special-floats", "safetensors.torch.save_file", {
        "f32": bits(torch.float32, [0x7FC00001, 0xFFC12345, 0x80000000, 0x7F800000, 0xFF800000,
                                    0x00000001, 0x7F7FFFFF, 0x3F800000], np.uint32),
        "f16": bits(torch.float16, [0x7E01, 0xFC00, 0x7C00, 0x8000, 0x0001, 0x7BFF], np.uint16),
        "bf16": bits(torch.bfloat16, [0x7FC1, 0xFF80, 0x7F80, 0x8000, 0x0001, 0x7F7F], np.uint16),
        "f64": bits(torch.float64, [0x7FF8000000000001, 0x8000000000000000, 0x0000000000000001,
                                    0x7FF0000000000000], np.uint64),
    }, None
    yield "tensor-4d-float32", "safetensors.torch.save_file", {
        "conv1.weight": torch.randn(4, 3, 3, 3, generator=g),
        "bn1.running_mean": torch.randn(4, generator=g),
        "bn1.num_batches_tracked": torch.tensor(12, dtype=torch.int64),
        "fc.weight": torch.randn(10, 4, generator=g),
        "fc.bias": torch.randn(10, generator=g),
    }, {"format": "pt"}
    yield "no-tensors", "safetensors.torch.save_file", {}, {"format": "pt"}
    # Dtypes the format defines but Torchport's DType does not: read must refuse them by name.
    yield "unsupported-u16", "safetensors.torch.save_file", {
        "counts": torch.tensor([1, 2, 65535], dtype=torch.uint16),
    }, None
    yield "unsupported-f8", "safetensors.torch.save_file", {
        "scale": torch.tensor([0.5, 1.0], dtype=torch.float32).to(torch.float8_e4m3fn),
    }, None


UNSUPPORTED = {"U16", "U32", "U64", "F8_E4M3", "F8_E5M2"}

# Tensors the Swift writer builds from a byte pattern (see docs/safetensors.md): byte j of the
# i-th tensor (0-based, in this list's order) is (31*j + 7*(i+1)) mod 256; for BOOL it is (i+j) mod 2.
SWIFT_CASES = {
    "cases": [
        {
            "file": "swift-pattern.safetensors",
            "order": "safetensors",
            "metadata": {
                "format": "torchport", "arch": "resnet18", "num_classes": "10",
                "source_sha256": "0" * 64, "source_format": "zip", "dtype": "float32",
                "converter_version": "0.1.0",
            },
            "tensors": [
                {"name": "layer1.0.conv1.weight", "dtype": "F32", "shape": [2, 3, 1, 1]},
                {"name": "bn.num_batches_tracked", "dtype": "I64", "shape": []},
                {"name": "half", "dtype": "F16", "shape": [3]},
                {"name": "brain", "dtype": "BF16", "shape": [2, 2]},
                {"name": "double", "dtype": "F64", "shape": [2]},
                {"name": "complex", "dtype": "C64", "shape": [1]},
                {"name": "i32", "dtype": "I32", "shape": [3]},
                {"name": "i16", "dtype": "I16", "shape": [1, 1]},
                {"name": "i8", "dtype": "I8", "shape": [5]},
                {"name": "u8", "dtype": "U8", "shape": [5]},
                {"name": "mask", "dtype": "BOOL", "shape": [7]},
                {"name": "empty", "dtype": "F32", "shape": [0, 3]},
            ],
        },
        {
            "file": "swift-pattern-as-given.safetensors",
            "order": "asGiven",
            "metadata": None,
            "tensors": [
                {"name": "z.mask", "dtype": "BOOL", "shape": [3]},
                {"name": "y.i8", "dtype": "I8", "shape": [3]},
                {"name": "x.f64", "dtype": "F64", "shape": [2, 1]},
                {"name": "w.f32", "dtype": "F32", "shape": []},
            ],
        },
    ]
}


def main():
    os.makedirs(OUT, exist_ok=True)
    for name, writer, tensors, metadata in cases():
        path = os.path.join(OUT, name + ".safetensors")
        if writer == "safetensors.numpy.save_file":
            safetensors.numpy.save_file(tensors, path, metadata=metadata)
        else:
            safetensors.torch.save_file(tensors, path, metadata=metadata)
        n, header, data = header_of(path)
        entries = sorted(((k, v) for k, v in header.items() if k != "__metadata__"),
                         key=lambda kv: (kv[1]["data_offsets"][0], kv[1]["data_offsets"][1]))
        listed = []
        for k, v in entries:
            t = tensors[k]
            raw = raw_bytes(t)
            b, e = v["data_offsets"]
            assert data[8 + n + b:8 + n + e] == raw, (name, k)
            listed.append({
                "name": k, "dtype": v["dtype"], "shape": v["shape"], "data_offsets": [b, e],
                "nbytes": len(raw), "sha256": hashlib.sha256(raw).hexdigest(),
            })
        refused = next((t for t in listed if t["dtype"] in UNSUPPORTED), None)
        expected = {
            "file": name + ".safetensors",
            "writer": writer,
            "safetensors_version": safetensors.__version__,
            "torch_version": torch.__version__.split("+")[0],
            "header_size": n,
            "file_size": len(data),
            "metadata": header.get("__metadata__"),
            "metadata_order_deterministic": len(header.get("__metadata__") or {}) <= 1,
            "tensors": listed,
            "error": {"code": "unsupportedDType", "key": refused["name"], "dtype": refused["dtype"]}
            if refused else None,
        }
        with open(os.path.join(OUT, name + ".expected.json"), "w", encoding="utf-8") as f:
            json.dump(expected, f, indent=1, ensure_ascii=False, sort_keys=True)
            f.write("\n")
        print(f"wrote {path} ({len(data)} bytes)")
    with open(os.path.join(HERE, "swift-cases.json"), "w", encoding="utf-8") as f:
        json.dump(SWIFT_CASES, f, indent=1, ensure_ascii=False)
        f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
