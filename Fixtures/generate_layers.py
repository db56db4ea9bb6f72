#!/usr/bin/env python3
"""Deterministic generator for Torchport's layer-by-layer goldens (Fixtures/layers/), clean and fault-injected.

Run from the repository root:

    .venv-torch/bin/python Fixtures/generate_layers.py                      # rewrites Fixtures/layers/
    .venv-torch/bin/python Fixtures/generate_layers.py --check-determinism  # two fresh runs, compare sha256

For two tiny models of Fixtures/models/ (`tiny-basic-r18ish.pth`, BasicBlock; `tiny-bottleneck.pth`) it
writes goldens with every intermediate module output, made by scripts/make_golden.py's own functions
(`golden_dict`: input, logits, logits_f64, intermediates, versions, architecture):

  <model>.clean.golden.pth     the checkpoint as it is
  <model>.<fault>.golden.pth   the same checkpoint, but the golden computed by a copy of the model with one
                               fault injected at a known module (a conv output channel scaled, a BatchNorm
                               eps changed, a 3x3 conv dilated, a kernel flipped). The checkpoint file is
                               unchanged, so Torchport computing from it must diverge from the golden at
                               that module and agree everywhere before it.

`manifest.json` lists every golden with its checkpoint (relative to Fixtures/), the intermediate names in
forward order, the fault and the first module whose output differs from the clean golden's by more than
1e-4 of its max |value|; its schema is in Fixtures/README.md.

The models are rebuilt from Fixtures/models/manifest.json with generate_models.py's NarrowResNet (torchvision's
ResNet, BasicBlock/Bottleneck, _make_layer, forward) and loaded with strict=True; make_golden.py's own
inference of the architecture from the checkpoint must agree, and `scripts/make_golden.py` run as a command
must reproduce every tensor of the clean goldens.

Determinism: each input is seeded, one thread, `torch.use_deterministic_algorithms(True)`, files saved through
in-memory buffers (zip top folder `archive/`), versions stored without the build suffix (`2.15.0`, not
`2.15.0+cpu`). Byte-identical across runs on one machine; another CPU may change the last bits of float32
outputs (oneDNN kernels), never the inputs or which module diverges first.
"""
from __future__ import annotations

import argparse
import copy
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "scripts"))
sys.path.insert(0, str(HERE))

import torch  # noqa: E402
import torchvision  # noqa: E402

import generate_models as gm  # noqa: E402  (asserts torch 2.15.0 / torchvision 0.29.2)
import make_golden as mg  # noqa: E402

assert torch.__version__.startswith("2.15.0"), f"need torch 2.15.0, have {torch.__version__}"
assert torchvision.__version__.startswith("0.29.2"), f"need torchvision 0.29.2, have {torchvision.__version__}"

warnings.filterwarnings("ignore")
mg.set_deterministic(1)

DEFAULT_OUT = HERE / "layers"
MODELS = HERE / "models"
MAX_FILE_BYTES = 512 << 10  # 512 KiB per file
MAX_TOTAL_BYTES = 3 << 20  # 3 MiB for the whole folder
DIVERGENCE = 1e-4  # a module diverges when max|faulty - clean| > DIVERGENCE * max|clean|
VERSIONS = {"torch_version": torch.__version__.split("+")[0],
            "torchvision_version": torchvision.__version__.split("+")[0]}


# ---------------------------------------------------------------------------------------------------
# Faults: each takes the model copy and the module, changes it in place, returns the manifest's detail
# ---------------------------------------------------------------------------------------------------


def channel_scaled(channel: int, factor: float):
    def apply(conv: torch.nn.Conv2d) -> dict:
        with torch.no_grad():
            conv.weight[channel].mul_(factor)
        return {"kind": "channel-scaled", "channel": channel, "factor": factor,
                "detail": f"weight[{channel}] (output channel {channel}) multiplied by {factor}"}
    return apply


def bn_eps(eps: float):
    def apply(bn: torch.nn.BatchNorm2d) -> dict:
        old = bn.eps
        bn.eps = eps
        return {"kind": "bn-eps", "eps": eps,
                "detail": f"eps {eps} instead of {old} (eps is not in the state dict)"}
    return apply


def dilated(dilation: int):
    def apply(conv: torch.nn.Conv2d) -> dict:
        assert conv.kernel_size == (3, 3) and conv.padding == (1, 1) and conv.dilation == (1, 1)
        conv.dilation = (dilation, dilation)
        conv.padding = (dilation, dilation)
        return {"kind": "conv-dilated", "dilation": [dilation, dilation], "padding": [dilation, dilation],
                "detail": f"3x3 conv run with dilation ({dilation}, {dilation}) and padding ({dilation}, "
                          f"{dilation}) instead of (1, 1) and (1, 1): same output shape, same weights"}
    return apply


def kernel_flipped():
    def apply(conv: torch.nn.Conv2d) -> dict:
        with torch.no_grad():
            conv.weight.copy_(conv.weight.flip(2, 3))
        return {"kind": "kernel-flipped",
                "detail": "weight flipped in both spatial dimensions (weight.flip(2, 3)): convolution "
                          "instead of cross-correlation"}
    return apply


# model name in Fixtures/models/manifest.json, input seed, input shape, faults (tag, module, fault)
SPECS = [
    dict(model="tiny-basic-r18ish", input_seed=3001, input_shape=[2, 3, 32, 32], faults=[
        ("channel-scaled", "layer2.0.conv1", channel_scaled(3, 1.5)),
        ("bn-eps", "layer3.0.bn2", bn_eps(1e-1)),
        ("conv-dilated", "layer1.1.conv2", dilated(2)),
        ("kernel-flipped", "layer2.1.conv1", kernel_flipped()),
    ]),
    dict(model="tiny-bottleneck", input_seed=3003, input_shape=[2, 3, 32, 32], faults=[
        ("channel-scaled", "layer3.0.conv3", channel_scaled(3, 1.5)),
        ("bn-eps", "layer1.0.downsample.1", bn_eps(1e-1)),
        ("conv-dilated", "layer2.1.conv2", dilated(2)),
    ]),
]


# ---------------------------------------------------------------------------------------------------
# Generation
# ---------------------------------------------------------------------------------------------------


def model_entry(name: str) -> dict:
    entries = json.loads((MODELS / "manifest.json").read_text())
    [e] = [e for e in entries if e["name"] == name]
    assert e["kind"] == "classifier" and e["container"] == "state_dict" and e["weights_dtype"] == "float32"
    return e


def load_model(entry: dict) -> tuple[torch.nn.Module, str]:
    """generate_models' NarrowResNet from the manifest's arch, strict load of the checkpoint; make_golden's
    own loader (architecture inferred from the shapes) must give the same architecture, weights and output."""
    a = entry["arch"]
    path = MODELS / entry["checkpoint"]
    model = gm.NarrowResNet(gm.BLOCKS[a["block"]], a["layers"], a["stage_widths"], a["stem_width"],
                            a["num_classes"], a["groups"], a["width_per_group"])
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True), strict=True)
    model.eval()
    inferred, architecture = mg.load_model(path, log=lambda s: None)
    assert mg.infer_resnet(mg.strip_prefixes(inferred.state_dict())) == a, (entry["name"], a)
    assert [n for n, _ in inferred.named_modules()] == [n for n, _ in model.named_modules()]
    for (k, v), (k2, v2) in zip(model.state_dict().items(), inferred.state_dict().items(), strict=True):
        assert k == k2 and torch.equal(v, v2), k
    return model, architecture


def relative(a: torch.Tensor, ref: torch.Tensor) -> float:
    """max|a - ref| / max|ref| in float64 (inf when ref is all zero and a is not)."""
    d = (a.double() - ref.double()).abs().max().item()
    s = ref.double().abs().max().item()
    return d / s if s > 0 else (0.0 if d == 0 else float("inf"))


def golden_entry(name: str, golden_file: str, entry: dict, architecture: str, spec: dict, golden: dict,
                 left_out: list[str]) -> dict:
    y, y64 = golden["logits"], golden["logits_f64"]
    return {
        "name": name,
        "golden": golden_file,
        "checkpoint": f"models/{entry['checkpoint']}",
        "architecture": architecture,
        "arch": entry["arch"],
        "input_shape": list(golden["input"].shape),
        "input_seed": spec["input_seed"],
        "golden_keys": list(golden),
        "output_shape": list(y.shape),
        "output_scale": y64.abs().max().item(),
        "f32_vs_f64_max_abs": (y.double() - y64).abs().max().item(),
        "intermediates": list(golden["intermediates"]),
        "left_out": left_out,
    }


def generate_model(spec: dict, out: Path) -> list[dict]:
    entry = model_entry(spec["model"])
    model, architecture = load_model(entry)
    n, _, h, w = spec["input_shape"]
    x = mg.random_input(spec["input_seed"], n, h, w)
    assert list(x.shape) == spec["input_shape"]

    clean, left_out = mg.golden_dict(model, x, "all", architecture, VERSIONS)
    order = list(clean["intermediates"])
    assert order[-1] == "fc" and torch.equal(clean["intermediates"]["fc"], clean["logits"])
    assert all(n.endswith(".relu") for n in left_out) and "relu" in order
    base = spec["model"]
    entries = []
    files = {f"{base}.clean.golden.pth": clean}
    e = golden_entry(f"{base}.clean", f"{base}.clean.golden.pth", entry, architecture, spec, clean, left_out)
    e |= {"fault": None, "first_divergent_module": None, "first_divergence": None, "divergent_modules": [],
          "unaffected_after_fault": [], "logits_vs_clean": 0.0}
    entries.append(e)

    for tag, module_name, fault in spec["faults"]:
        faulty = copy.deepcopy(model)
        module = faulty.get_submodule(module_name)
        detail = fault(module)
        golden, left = mg.golden_dict(faulty, x, "all", architecture, VERSIONS)
        assert left == left_out and list(golden["intermediates"]) == order, tag
        assert torch.equal(golden["input"], clean["input"])
        rel = {n: relative(golden["intermediates"][n], clean["intermediates"][n]) for n in order}
        divergent = [n for n in order if rel[n] > DIVERGENCE]
        first = divergent[0]
        # the fault shows at its own module first; everything that ran before it is bit-identical
        assert first == module_name, (tag, first, module_name)
        for n in order[: order.index(module_name)]:
            assert torch.equal(golden["intermediates"][n], clean["intermediates"][n]), (tag, n)
        assert relative(golden["logits"], clean["logits"]) > DIVERGENCE, tag
        golden_file = f"{base}.{tag}.golden.pth"
        files[golden_file] = golden
        e = golden_entry(f"{base}.{tag}", golden_file, entry, architecture, spec, golden, left)
        e |= {
            "fault": {"module": module_name} | detail,
            "first_divergent_module": first,
            "first_divergence": rel[first],
            "divergent_modules": divergent,
            "unaffected_after_fault": [n for n in order[order.index(first):] if n not in divergent],
            "logits_vs_clean": relative(golden["logits"], clean["logits"]),
        }
        entries.append(e)

    for fname, golden in files.items():
        (out / fname).write_bytes(mg.save_bytes(golden))
    return entries


def generate(out: Path) -> list[dict]:
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    manifest = []
    for spec in SPECS:
        manifest.extend(generate_model(spec, out))
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")

    files = sorted(p for p in out.iterdir() if p.is_file())
    total = sum(p.stat().st_size for p in files)
    for p in files:
        assert p.stat().st_size <= MAX_FILE_BYTES, f"{p.name} is {p.stat().st_size} bytes (> 512 KiB)"
        print(f"{p.stat().st_size:>9}  {p.name}")
    assert total <= MAX_TOTAL_BYTES, f"layers total {total} bytes (> 3 MiB)"
    print(f"{total:>9}  total ({len(files)} files)")
    for e in manifest:
        if e["fault"]:
            f = e["fault"]
            print(f"  {e['name']}: {f['kind']} at {f['module']}, first divergent {e['first_divergent_module']} "
                  f"({e['first_divergence']:.3g}), logits {e['logits_vs_clean']:.3g}")
    check_roundtrip(out, manifest)
    check_command_line(out, manifest)
    return manifest


def check_roundtrip(out: Path, manifest: list[dict]) -> None:
    """Reload every golden (weights_only=True) and recompute it from the checkpoint on disk (plus the fault)."""
    faults = {f"{s['model']}.{tag}": (module, fault) for s in SPECS for tag, module, fault in s["faults"]}
    for e in manifest:
        g = torch.load(out / e["golden"], map_location="cpu", weights_only=True)
        assert list(g) == e["golden_keys"] and list(g["intermediates"]) == e["intermediates"], e["name"]
        assert g["torch_version"] == "2.15.0" and isinstance(g["architecture"], str)
        model, _ = load_model(model_entry(e["name"].split(".")[0]))
        if e["fault"]:
            module, fault = faults[e["name"]]
            fault(model.get_submodule(module))
        again, _ = mg.golden_dict(model, g["input"], "all", e["architecture"], VERSIONS)
        for k, v in again.items():
            if isinstance(v, dict):
                assert all(torch.equal(t, g[k][n]) for n, t in v.items()), (e["name"], k)
            elif isinstance(v, torch.Tensor):
                assert torch.equal(v, g[k]) and v.is_contiguous(), (e["name"], k)
            else:
                assert v == g[k], (e["name"], k)
        for n, t in g["intermediates"].items():
            assert t.dtype == torch.float32 and t.is_contiguous() and torch.isfinite(t).all(), (e["name"], n)
    print(f"round trip: {len(manifest)} goldens reproduced bit-exactly from the files on disk")


def check_command_line(out: Path, manifest: list[dict]) -> None:
    """scripts/make_golden.py as a user runs it reproduces every tensor of the clean goldens."""
    with tempfile.TemporaryDirectory() as tmp:
        for e in manifest:
            if e["fault"]:
                continue
            dst = Path(tmp) / "g.pth"
            n, _, h, w = e["input_shape"]
            subprocess.run([sys.executable, str(REPO / "scripts" / "make_golden.py"),
                            "--checkpoint", str(HERE / e["checkpoint"]), "--seed", str(e["input_seed"]),
                            "--batch", str(n), "--size", str(h), str(w), "-o", str(dst)],
                           check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            a = torch.load(dst, weights_only=True)
            b = torch.load(out / e["golden"], weights_only=True)
            assert list(a) == list(b) and list(a["intermediates"]) == list(b["intermediates"])
            for k in a:
                if isinstance(a[k], torch.Tensor):
                    assert torch.equal(a[k], b[k]), k
                elif isinstance(a[k], dict):
                    assert all(torch.equal(t, b[k][n]) for n, t in a[k].items()), k
            assert a["architecture"] == b["architecture"]
    print("command line: scripts/make_golden.py reproduces the clean goldens")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (default Fixtures/layers)")
    ap.add_argument("--check-determinism", action="store_true",
                    help="generate twice into temporary folders in fresh processes and compare sha256 "
                         "(and against Fixtures/layers/)")
    args = ap.parse_args()
    if args.check_determinism:
        return gm.check_determinism(__file__, DEFAULT_OUT)
    generate(args.out.resolve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
