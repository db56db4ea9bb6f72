#!/usr/bin/env python3
"""Converts every `Fixtures/formats/` checkpoint with the built `torchport` and loads the result into
the model it came from with `load_state_dict(strict=True)`, then compares every tensor with torch's own
`state_dict()` (torch.equal, same dtype). Writes the outcome to `Fixtures/formats/strict-load.txt`
(committed: `make test` needs no torch; the Swift tests check the same bytes against expected.json).

    swift build && .venv-torch/bin/python Fixtures/check_formats.py [--torchport .build/debug/torchport]
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
from safetensors.torch import load_file

sys.path.insert(0, str(Path(__file__).resolve().parent))
import generate_formats as g  # noqa: E402

ROOT = Path(__file__).resolve().parent
FORMATS = ROOT / "formats"


def models() -> dict:
    return {
        "vit-tiny.pth": lambda: g.vit_tiny(),
        "densenet-tiny.pth": lambda: g.densenet_tiny(),
        "mobilenet-v2-narrow.pth": lambda: g.mobilenet_narrow(),
        "training-vit.pth": lambda: g.vit_tiny(),
        "lightning-densenet.ckpt": lambda: g.densenet_tiny(),
        "hf-vit.bin": lambda: g.vit_tiny(),
        "whole-resnet.pth": lambda: g.resnet_whole(),
        "whole-mobilenet.pth": lambda: g.mobilenet_narrow(),
        "sharded-bin": lambda: g.densenet_tiny(),
        "sharded-safetensors": lambda: g.vit_tiny(),
        "dcp": None,
        "dcp-resnet": lambda: g.resnet_whole(),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--torchport", default=str(ROOT.parent / ".build/debug/torchport"))
    args = ap.parse_args()
    lines = [f"# {Path(__file__).name}: torch {torch.__version__}; convert, then load_state_dict(strict=True)"]
    failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        for name, make in models().items():
            out = Path(tmp) / (name.replace("/", "_") + ".safetensors")
            r = subprocess.run([args.torchport, "convert", str(FORMATS / name), "-o", str(out)],
                               capture_output=True, text=True)
            if r.returncode != 0:
                lines.append(f"{name}: NOT CONVERTED: {r.stderr.strip().splitlines()[-1] if r.stderr else r.returncode}")
                failed += 1
                continue
            sd = load_file(str(out))
            if make is None:
                reference = g.dcp_full_tensors()
                ok = sd.keys() == reference.keys() and all(
                    sd[k].dtype == v.dtype and torch.equal(sd[k], v) for k, v in reference.items())
                lines.append(f"{name}: {len(sd)} tensors equal to the full tensors the ranks saved: {ok}")
                failed += not ok
                continue
            model = make()
            reference = {k: v.clone() for k, v in model.state_dict().items()}
            # Load into a model with other values, so the check sees the file's values arrive.
            with torch.no_grad():
                for p in model.state_dict().values():
                    p.zero_()
            result = model.load_state_dict(sd, strict=True)
            loaded = model.state_dict()
            # Training checkpoints hold the weights after one optimizer step: compare with the file's.
            same = all(loaded[k].dtype == sd[k].dtype and torch.equal(loaded[k], sd[k]) for k in loaded)
            lines.append(f"{name}: {type(model).__name__} load_state_dict(strict=True) -> {result}; "
                         f"{len(sd)} tensors loaded bit-identical: {same}")
            failed += not same
    text = "\n".join(lines) + "\n"
    (FORMATS / "strict-load.txt").write_text(text)
    print(text, end="")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
