#!/usr/bin/env python3
"""Write a torchvision ResNet-50 state dict (seeded random init, non-trivial BN statistics).

    .venv-torch/bin/python Benchmarks/make_resnet50.py [OUT.pth] [--legacy]

OUT defaults to Benchmarks/generated/resnet50.pth (git-ignored). Zip format (torch.save default).
With --legacy, a legacy-format copy (`_use_new_zipfile_serialization=False`, the layout of the
original torchvision weights such as resnet50-19c8e357.pth) is also written, as `<stem>-legacy.pth`
next to OUT. About 98 MiB each.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
import torch.nn as nn
import torchvision

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "generated" / "resnet50.pth"


def build(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    model = torchvision.models.resnet50()  # random init, no download
    with torch.no_grad():
        for i, m in enumerate(mm for mm in model.modules() if isinstance(mm, nn.BatchNorm2d)):
            m.weight.uniform_(0.5, 1.5)
            m.bias.normal_(0.0, 0.1)
            m.running_mean.normal_(0.0, 0.1)
            m.running_var.uniform_(0.5, 2.0)
            m.num_batches_tracked.fill_(100 + i)
    return model.eval()


def legacy_path(out: Path) -> Path:
    return out.with_name(f"{out.stem}-legacy{out.suffix}")


def make(out: Path = DEFAULT_OUT, legacy: bool = False, seed: int = 0) -> list[Path]:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    sd = build(seed).state_dict()
    written = []
    torch.save(sd, out)  # the zip's top folder is named after OUT's stem, as in real checkpoints
    written.append(out)
    if legacy:
        lp = legacy_path(out)
        torch.save(sd, lp, _use_new_zipfile_serialization=False)
        written.append(lp)
    return written


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", nargs="?", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--legacy", action="store_true", help="also write <stem>-legacy.pth (pre-1.6 format)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    t0 = time.perf_counter()
    for p in make(args.out, args.legacy, args.seed):
        print(f"wrote {p} ({p.stat().st_size / 2**20:.1f} MiB)")
    print(f"took {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
