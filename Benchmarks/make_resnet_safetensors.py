#!/usr/bin/env python3
"""Write a torchvision ResNet state dict as .safetensors with NumPy alone (no torch): seeded
random weights, non-trivial BatchNorm statistics, torchvision's names and shapes. For timing
where torch is not installed (make_resnet50.py writes the same kind of model with torch).

    python3 Benchmarks/make_resnet_safetensors.py [OUT] [--arch resnet50] [--seed 0]

OUT defaults to Benchmarks/generated/<arch>.safetensors (git-ignored). Convolutions are drawn as
torchvision initialises them (Kaiming normal, fan out); BatchNorm as make_resnet50.py sets it
(weight U(0.5, 1.5), bias N(0, 0.1), running mean N(0, 0.1), running variance U(0.5, 2)).
"""
from __future__ import annotations

import argparse
import json
import struct
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
# (block, layers): torchvision's ResNets without groups or extra width.
ARCHS = {
    "resnet18": ("basic", [2, 2, 2, 2]),
    "resnet34": ("basic", [3, 4, 6, 3]),
    "resnet50": ("bottleneck", [3, 4, 6, 3]),
    "resnet101": ("bottleneck", [3, 4, 23, 3]),
    "resnet152": ("bottleneck", [3, 8, 36, 3]),
}


def state_dict(arch: str, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    sd: dict[str, np.ndarray] = {}

    def conv(name: str, cout: int, cin: int, k: int) -> None:
        sd[name + ".weight"] = rng.normal(0.0, np.sqrt(2.0 / (cout * k * k)), (cout, cin, k, k)).astype(np.float32)

    def bn(name: str, c: int) -> None:
        sd[name + ".weight"] = rng.uniform(0.5, 1.5, c).astype(np.float32)
        sd[name + ".bias"] = rng.normal(0.0, 0.1, c).astype(np.float32)
        sd[name + ".running_mean"] = rng.normal(0.0, 0.1, c).astype(np.float32)
        sd[name + ".running_var"] = rng.uniform(0.5, 2.0, c).astype(np.float32)
        sd[name + ".num_batches_tracked"] = np.array(100, dtype=np.int64)

    block, layers = ARCHS[arch]
    expansion = 4 if block == "bottleneck" else 1
    conv("conv1", 64, 3, 7)
    bn("bn1", 64)
    cin = 64
    for s, count in enumerate(layers):
        width = 64 << s
        for i in range(count):
            p = f"layer{s + 1}.{i}"
            stride = 2 if s > 0 and i == 0 else 1
            if block == "basic":
                conv(p + ".conv1", width, cin, 3); bn(p + ".bn1", width)
                conv(p + ".conv2", width, width, 3); bn(p + ".bn2", width)
            else:
                conv(p + ".conv1", width, cin, 1); bn(p + ".bn1", width)
                conv(p + ".conv2", width, width, 3); bn(p + ".bn2", width)
                conv(p + ".conv3", width * expansion, width, 1); bn(p + ".bn3", width * expansion)
            if i == 0 and (stride != 1 or cin != width * expansion):
                conv(p + ".downsample.0", width * expansion, cin, 1); bn(p + ".downsample.1", width * expansion)
            cin = width * expansion
    bound = 1.0 / np.sqrt(cin)
    sd["fc.weight"] = rng.uniform(-bound, bound, (1000, cin)).astype(np.float32)
    sd["fc.bias"] = rng.uniform(-bound, bound, 1000).astype(np.float32)
    return sd


def write_safetensors(sd: dict[str, np.ndarray], out: Path) -> None:
    header: dict[str, object] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, a in sd.items():
        dtype = {np.dtype(np.float32): "F32", np.dtype(np.int64): "I64"}[a.dtype]
        header[name] = {"dtype": dtype, "shape": list(a.shape), "data_offsets": [offset, offset + a.nbytes]}
        offset += a.nbytes
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for a in sd.values():
            f.write(np.ascontiguousarray(a).astype(a.dtype.newbyteorder("<")).tobytes())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", nargs="?", type=Path)
    ap.add_argument("--arch", choices=sorted(ARCHS), default="resnet50")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    out = args.out or HERE / "generated" / f"{args.arch}.safetensors"
    write_safetensors(state_dict(args.arch, args.seed), out)
    print(f"wrote {out} ({out.stat().st_size / 2**20:.1f} MiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
