#!/usr/bin/env python3
"""Deterministic generator for Torchport's tiny-model parity fixtures (checkpoints + golden outputs).

Run from the repository root:

    .venv-torch/bin/python Fixtures/generate_models.py                      # rewrites Fixtures/models/
    .venv-torch/bin/python Fixtures/generate_models.py --check-determinism  # two fresh runs, compare sha256

For every tiny network it writes `<name>.pth` (the checkpoint, zip format) and one or more golden files
`<name>[.<tag>].golden.pth` = torch.save({"input": x, "logits": y, "logits_f64": y64}) (headless and
detection-backbone models store "features"/"feature_map" instead of logits). `manifest.json` lists every
(checkpoint, golden) pair with its architecture; its schema is documented in Fixtures/README.md.

The networks are torchvision's own `ResNet` class (subclassed only to choose narrow stage widths), with
torchvision's `BasicBlock`/`Bottleneck`, `_make_layer` and `forward`, so state-dict keys are exactly
torchvision's. The detection backbone uses torchvision's `FrozenBatchNorm2d`, `BackboneWithFPN` and
`FasterRCNN` (with small heads), so its keys are exactly those of `fasterrcnn_resnet50_fpn`.

Determinism: every model and every input reseeds torch/random/numpy with its own seed; one thread;
`torch.use_deterministic_algorithms(True)`; checkpoints are saved to in-memory buffers (zip top folder
`archive/`), never to paths. Golden outputs are float32 forward passes exactly as a user would run them
(`model.eval(); with torch.no_grad(): y = model(x)`), plus a float64 reference. The float32 goldens are
byte-identical across runs on one machine; another CPU (different SIMD kernels in oneDNN) may differ in
the last bits of the float32 outputs, never in the checkpoints or inputs.
"""
from __future__ import annotations

import argparse
import copy
import hashlib
import io
import json
import math
import os
import random
import shutil
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torchvision  # noqa: E402
from torchvision.models.detection.backbone_utils import BackboneWithFPN  # noqa: E402
from torchvision.models.detection.faster_rcnn import FasterRCNN, FastRCNNPredictor, TwoMLPHead  # noqa: E402
from torchvision.models.detection.rpn import AnchorGenerator, RPNHead  # noqa: E402
from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet  # noqa: E402
from torchvision.ops.feature_pyramid_network import LastLevelMaxPool  # noqa: E402
from torchvision.ops.misc import FrozenBatchNorm2d  # noqa: E402

assert torch.__version__.startswith("2.15.0"), f"need torch 2.15.0, have {torch.__version__}"
assert torchvision.__version__.startswith("0.29.2"), f"need torchvision 0.29.2, have {torchvision.__version__}"

warnings.filterwarnings("ignore")
torch.set_num_threads(1)
torch.use_deterministic_algorithms(True)

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "models"
MAX_FILE_BYTES = 600 << 10  # 600 KiB per file
MAX_TOTAL_BYTES = 6 << 20  # 6 MiB for the whole folder
LOGIT_TARGET = 5.0  # fc is rescaled by a power of two so that max|logit| lands in [2.5, 10)


def seed(n: int) -> None:
    torch.manual_seed(n)
    random.seed(n)
    np.random.seed(n)


# ---------------------------------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------------------------------


class NarrowResNet(ResNet):
    """`torchvision.models.resnet.ResNet` with a configurable stem width and stage widths.

    Mirrors `ResNet.__init__` line by line, except that the stem has `stem_width` channels (64 in
    torchvision) and the four stages are built with `_make_layer(block, stage_widths[i], layers[i], ...)`
    instead of 64/128/256/512. `stage_widths` are torchvision's `planes`: a stage outputs
    `planes * block.expansion` channels, and a Bottleneck's inner (3x3) width is
    `int(planes * width_per_group / 64) * groups`, exactly as in torchvision. `num_classes=None` builds
    no `fc` (an `nn.Identity`, so the state dict has no `fc.*` keys and `forward` returns the pooled
    features).
    """

    def __init__(self, block, layers, stage_widths=(8, 16, 32, 64), stem_width=8, num_classes=10,
                 groups=1, width_per_group=64, norm_layer=None):
        nn.Module.__init__(self)
        if norm_layer is None:
            norm_layer = nn.BatchNorm2d
        self._norm_layer = norm_layer
        self.inplanes = stem_width
        self.dilation = 1
        self.groups = groups
        self.base_width = width_per_group
        self.conv1 = nn.Conv2d(3, self.inplanes, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = norm_layer(self.inplanes)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, stage_widths[0], layers[0])
        self.layer2 = self._make_layer(block, stage_widths[1], layers[1], stride=2)
        self.layer3 = self._make_layer(block, stage_widths[2], layers[2], stride=2)
        self.layer4 = self._make_layer(block, stage_widths[3], layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        if num_classes is None:
            self.fc = nn.Identity()
        else:
            self.fc = nn.Linear(stage_widths[3] * block.expansion, num_classes)

        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)


def randomize_norms(model: nn.Module) -> int:
    """Non-trivial affine parameters and running statistics for every BatchNorm2d / FrozenBatchNorm2d.

    weight ~ U(0.5, 1.5), bias ~ N(0, 0.1), running_mean ~ N(0, 0.1), running_var ~ U(0.5, 2);
    BatchNorm2d also gets num_batches_tracked = 100 + i. Same recipe as Fixtures/generate.py.
    """
    n = 0
    with torch.no_grad():
        for i, m in enumerate(mm for mm in model.modules()
                              if isinstance(mm, (nn.BatchNorm2d, FrozenBatchNorm2d))):
            m.weight.uniform_(0.5, 1.5)
            m.bias.normal_(0.0, 0.1)
            m.running_mean.normal_(0.0, 0.1)
            m.running_var.uniform_(0.5, 2.0)
            if isinstance(m, nn.BatchNorm2d):
                m.num_batches_tracked.fill_(100 + i)
            n += 1
    return n


def layer4_and_features(body: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(layer4 feature map, avgpool+flatten features) of a torchvision ResNet (fc not applied)."""
    m = body
    x = m.maxpool(m.relu(m.bn1(m.conv1(x))))
    x = m.layer4(m.layer3(m.layer2(m.layer1(x))))
    return x, torch.flatten(m.avgpool(x), 1)


# ---------------------------------------------------------------------------------------------------
# Specs
# ---------------------------------------------------------------------------------------------------

BASIC, BOTTLENECK = "basic", "bottleneck"
BLOCKS = {BASIC: BasicBlock, BOTTLENECK: Bottleneck}

# inputs: (golden tag or "" for <name>.golden.pth, shape, input seed)
SPECS = [
    dict(name="tiny-basic-r18ish", block=BASIC, layers=[2, 2, 2, 2], stage_widths=[8, 16, 32, 48],
         stem_width=8, num_classes=10, seed=1001, inputs=[("", [2, 3, 64, 64], 2001)],
         note="BasicBlock [2,2,2,2] (resnet18 layout), widths 8/16/32/48"),
    dict(name="tiny-basic-r34ish", block=BASIC, layers=[3, 4, 6, 3], stage_widths=[4, 8, 16, 32],
         stem_width=4, num_classes=7, seed=1002, inputs=[("", [2, 3, 48, 48], 2002)],
         note="BasicBlock [3,4,6,3] (resnet34 layout), widths 4/8/16/32"),
    dict(name="tiny-bottleneck", block=BOTTLENECK, layers=[1, 2, 1, 1], stage_widths=[8, 16, 24, 32],
         stem_width=8, num_classes=5, seed=1003, inputs=[("", [2, 3, 64, 64], 2003)],
         note="Bottleneck [1,2,1,1], planes 8/16/24/32 (outputs 32/64/96/128)"),
    dict(name="tiny-resnext", block=BOTTLENECK, layers=[1, 2, 2, 1], stage_widths=[4, 8, 16, 32],
         stem_width=8, num_classes=6, groups=4, width_per_group=32, seed=1004,
         inputs=[("", [2, 3, 64, 64], 2004)],
         note="ResNeXt-style Bottleneck, groups=4, width_per_group=32: grouped 3x3 convs with 8/16/32/64 "
              "channels in 4 groups (2/4/8/16 per group), i.e. inner width = 2 x planes as in "
              "resnext50_32x4d. (width_per_group=4 with planes this narrow gives int(8*4/64)=0 channels.)"),
    dict(name="tiny-wide", block=BOTTLENECK, layers=[1, 1, 2, 1], stage_widths=[4, 8, 16, 32],
         stem_width=8, num_classes=3, width_per_group=128, seed=1005, inputs=[("", [2, 3, 64, 64], 2005)],
         note="wide_resnet style Bottleneck, width_per_group=128: inner width 8/16/32/64 = 2 x planes"),
    dict(name="tiny-odd-head-c1", block=BASIC, layers=[1, 1, 1, 1], stage_widths=[8, 16, 32, 64],
         stem_width=8, num_classes=1, seed=1006,
         inputs=[("", [1, 3, 33, 47], 2006), ("17x17", [1, 3, 17, 17], 2007)],
         note="1 output class; odd non-square input 33x47 and a tiny 17x17 input (layer4 map 1x1)"),
    dict(name="tiny-odd-head-c37", block=BASIC, layers=[1, 1, 1, 1], stage_widths=[8, 16, 32, 64],
         stem_width=8, num_classes=37, seed=1008, inputs=[("", [3, 3, 97, 31], 2008)],
         note="37 classes; odd non-square input 97x31, batch 3"),
    dict(name="tiny-headless", block=BASIC, layers=[1, 1, 1, 1], stage_widths=[8, 16, 32, 64],
         stem_width=16, num_classes=None, seed=1009, kind="headless", inputs=[("", [2, 3, 64, 64], 2009)],
         note="feature extractor: no fc.* keys (fc = nn.Identity); stem width 16 != layer1 width 8, so "
              "layer1.0 has a downsample"),
    dict(name="tiny-detection-backbone", block=BASIC, layers=[1, 1, 1, 1], stage_widths=[8, 16, 32, 64],
         stem_width=8, num_classes=None, seed=1010, kind="detection-backbone", norm="frozen",
         inputs=[("", [2, 3, 64, 64], 2010)],
         note="FasterRCNN state dict (torchvision FasterRCNN with BackboneWithFPN(out_channels=16), "
              "RPNHead, TwoMLPHead(784, 32), FastRCNNPredictor(32, 3)); body uses FrozenBatchNorm2d; keys "
              "backbone.body.* (the ResNet), backbone.fpn.*, rpn.*, roi_heads.*"),
    dict(name="tiny-half", block=BASIC, layers=[1, 1, 1, 1], stage_widths=[8, 16, 32, 64], stem_width=8,
         num_classes=10, seed=1011, weights_dtype="float16", inputs=[("", [2, 3, 64, 64], 2011)],
         note="float16 weights and BN buffers (model.half().state_dict()); golden from the float16 "
              "weights widened to float32"),
    dict(name="tiny-bf16", block=BASIC, layers=[1, 1, 1, 1], stage_widths=[8, 16, 32, 64], stem_width=8,
         num_classes=10, seed=1012, weights_dtype="bfloat16", inputs=[("", [2, 3, 64, 64], 2012)],
         note="bfloat16 weights and BN buffers (model.bfloat16().state_dict()); golden from the bfloat16 "
              "weights widened to float32"),
    dict(name="tiny-wrapped-dp", block=BASIC, layers=[2, 1, 1, 1], stage_widths=[8, 16, 32, 64],
         stem_width=8, num_classes=4, seed=1013, container="training-dataparallel",
         inputs=[("", [2, 3, 64, 64], 2013)],
         note="training checkpoint {'model': DataParallel(model).state_dict() ('module.' prefixes), "
              "'epoch': 1, 'args': argparse.Namespace}"),
]


def build(spec: dict) -> nn.Module:
    seed(spec["seed"])
    norm = FrozenBatchNorm2d if spec.get("norm") == "frozen" else None
    model = NarrowResNet(BLOCKS[spec["block"]], spec["layers"], stage_widths=spec["stage_widths"],
                         stem_width=spec["stem_width"], num_classes=spec["num_classes"],
                         groups=spec.get("groups", 1), width_per_group=spec.get("width_per_group", 64),
                         norm_layer=norm)
    randomize_norms(model)
    return model.eval()


def make_input(shape, input_seed: int) -> torch.Tensor:
    seed(input_seed)
    return torch.randn(*shape, dtype=torch.float32)


def calibrate_fc(model: NarrowResNet, xs: list[torch.Tensor]) -> float:
    """Scale fc by a power of two (exact in floating point) so that max|logit| is in [2.5, 10)."""
    ref = copy.deepcopy(model).double()
    with torch.no_grad():
        peak = max(ref(x.double()).abs().max().item() for x in xs)
    scale = 2.0 ** round(math.log2(LOGIT_TARGET / peak))
    with torch.no_grad():
        model.fc.weight.mul_(scale)
        model.fc.bias.mul_(scale)
    return scale


def detection_model(body: NarrowResNet) -> FasterRCNN:
    """A torchvision FasterRCNN around `body` with small heads, laid out like fasterrcnn_resnet50_fpn.

    Same as `_resnet_fpn_extractor(body, trainable_layers=3)` (layers frozen the same way, returned
    layers 1..4, LastLevelMaxPool) except for FPN out_channels = 16 instead of 256 (size).
    """
    trainable = ["layer4", "layer3", "layer2"]
    for name, p in body.named_parameters():
        if not any(name.startswith(t) for t in trainable):
            p.requires_grad_(False)
    return_layers = {f"layer{k}": str(v) for v, k in enumerate([1, 2, 3, 4])}
    in_channels_stage2 = body.inplanes // 8
    in_channels_list = [in_channels_stage2 * 2 ** (i - 1) for i in [1, 2, 3, 4]]
    backbone = BackboneWithFPN(body, return_layers, in_channels_list, out_channels=16,
                               extra_blocks=LastLevelMaxPool())
    anchors = AnchorGenerator(((32,), (64,), (128,), (256,), (512,)), ((0.5, 1.0, 2.0),) * 5)
    rcnn = FasterRCNN(backbone, num_classes=None, rpn_anchor_generator=anchors,
                      rpn_head=RPNHead(16, anchors.num_anchors_per_location()[0]),
                      box_head=TwoMLPHead(16 * 7 * 7, 32), box_predictor=FastRCNNPredictor(32, 3))
    return rcnn.eval()


# ---------------------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------------------


def save_bytes(obj) -> bytes:
    """torch.save into a buffer: zip format, top folder `archive/` (independent of the output path)."""
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def forward_f32(model: nn.Module, x: torch.Tensor, kind: str) -> dict:
    model.eval()
    with torch.no_grad():
        if kind == "classifier":
            return {"logits": model(x)}
        fmap, feats = layer4_and_features(model, x)
        return {"features": feats, "feature_map": fmap}


def forward_f64(model: nn.Module, x: torch.Tensor, kind: str) -> dict:
    ref = copy.deepcopy(model).double().eval()
    out = forward_f32(ref, x.double(), kind)
    return {f"{k}_f64": v for k, v in out.items()}


def arch_of(spec: dict) -> dict:
    return {"block": spec["block"], "layers": spec["layers"], "groups": spec.get("groups", 1),
            "width_per_group": spec.get("width_per_group", 64), "stage_widths": spec["stage_widths"],
            "num_classes": spec["num_classes"], "stem_width": spec["stem_width"]}


def generate_one(spec: dict, out: Path) -> list[dict]:
    name = spec["name"]
    kind = spec.get("kind", "classifier")
    wdtype = spec.get("weights_dtype", "float32")
    model = build(spec)
    xs = [(tag, make_input(shape, s)) for tag, shape, s in spec["inputs"]]
    fc_scale = None
    if kind == "classifier":
        fc_scale = calibrate_fc(model, [x for _, x in xs])

    # the checkpoint, and the float32 model the goldens come from
    if wdtype in ("float16", "bfloat16"):
        dt = getattr(torch, wdtype)
        low = copy.deepcopy(model).to(dt)
        ckpt = low.state_dict()
        assert all(v.dtype == dt for k, v in ckpt.items() if not k.endswith("num_batches_tracked"))
        ref_model = copy.deepcopy(low).float().eval()  # the weights exactly as stored, widened
    else:
        ref_model = model
        if kind == "detection-backbone":
            rcnn = detection_model(model)
            ckpt = rcnn.state_dict()
            assert any(k.startswith("backbone.fpn.") for k in ckpt)
            assert not any(k.endswith("num_batches_tracked") for k in ckpt)
            body_keys = [k for k in ckpt if k.startswith("backbone.body.")]
            assert "backbone.body.layer4.0.conv1.weight" in body_keys
            assert not any(".fc." in k for k in ckpt)
            # the body's own forward (IntermediateLayerGetter) must agree with ours on layer4
            with torch.no_grad():
                got = rcnn.backbone.body(xs[0][1])["3"]
                want, _ = layer4_and_features(model, xs[0][1])
            assert torch.equal(got, want)
        elif spec.get("container") == "training-dataparallel":
            dp = nn.DataParallel(copy.deepcopy(model)).state_dict()
            assert all(k.startswith("module.") for k in dp)
            ckpt = {"model": dp, "epoch": 1,
                    "args": argparse.Namespace(model="tiny-resnet", lr=0.1, epochs=2, batch_size=8,
                                               data_path="/data/imagenet", distributed=False)}
        else:
            ckpt = model.state_dict()
    if kind == "headless":
        assert not any(k.startswith("fc.") for k in ckpt)

    ckpt_name = f"{name}.pth"
    (out / ckpt_name).write_bytes(save_bytes(ckpt))

    entries = []
    for tag, x in xs:
        golden = {"input": x}
        golden |= forward_f32(ref_model, x, kind)
        golden |= forward_f64(ref_model, x, kind)
        for k, v in golden.items():
            assert v.dtype == (torch.float64 if k.endswith("_f64") else torch.float32), k
            assert torch.isfinite(v).all(), (name, k)
        golden_name = f"{name}.{tag}.golden.pth" if tag else f"{name}.golden.pth"
        (out / golden_name).write_bytes(save_bytes(golden))
        main = "logits" if kind == "classifier" else "features"
        y, y64 = golden[main], golden[main + "_f64"]
        scale = y64.abs().max().item()
        entry = {
            "name": name if not tag else f"{name}.{tag}",
            "checkpoint": ckpt_name,
            "golden": golden_name,
            "arch": arch_of(spec),
            "input_shape": list(x.shape),
            "kind": kind,
            "weights_dtype": wdtype,
            "norm_layer": "FrozenBatchNorm2d" if spec.get("norm") == "frozen" else "BatchNorm2d",
            "container": spec.get("container", "detection" if kind == "detection-backbone"
                                   else "state_dict"),
            "state_dict_prefix": {"training-dataparallel": "module.",
                                  "detection": "backbone.body."}.get(
                spec.get("container", "detection" if kind == "detection-backbone" else ""), ""),
            "golden_keys": sorted(golden),
            "output_shape": list(y.shape),
            "feature_map_shape": list(golden["feature_map"].shape) if "feature_map" in golden else None,
            "output_scale": scale,  # max |reference output| (float64)
            "f32_vs_f64_max_abs": (y.double() - y64).abs().max().item(),
            "fc_scale": fc_scale,
            "note": spec["note"],
        }
        if "feature_map" in golden:
            entry["feature_map_f32_vs_f64_max_abs"] = (
                golden["feature_map"].double() - golden["feature_map_f64"]).abs().max().item()
        entries.append(entry)
    return entries


def generate(out: Path) -> list[dict]:
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    manifest = []
    for spec in SPECS:
        manifest.extend(generate_one(spec, out))
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")

    files = sorted(p for p in out.iterdir() if p.is_file())
    total = sum(p.stat().st_size for p in files)
    for p in files:
        assert p.stat().st_size <= MAX_FILE_BYTES, f"{p.name} is {p.stat().st_size} bytes (> 600 KiB)"
        print(f"{p.stat().st_size:>9}  {p.name}")
    assert total <= MAX_TOTAL_BYTES, f"models total {total} bytes (> 6 MiB)"
    print(f"{total:>9}  total ({len(files)} files)")
    check_roundtrip(out, manifest)
    return manifest


def check_roundtrip(out: Path, manifest: list[dict]) -> None:
    """Reload every file with weights_only=True where possible and re-run the forward from disk."""
    for e in manifest:
        ck = torch.load(out / e["checkpoint"], map_location="cpu",
                        weights_only=e["container"] != "training-dataparallel")
        g = torch.load(out / e["golden"], map_location="cpu", weights_only=True)
        if e["container"] == "training-dataparallel":
            sd = {k.removeprefix("module."): v for k, v in ck["model"].items()}
        elif e["container"] == "detection":
            sd = {k.removeprefix("backbone.body."): v for k, v in ck.items()
                  if k.startswith("backbone.body.")}
        else:
            sd = ck
        a = e["arch"]
        norm = FrozenBatchNorm2d if e["norm_layer"] == "FrozenBatchNorm2d" else None
        m = NarrowResNet(BLOCKS[a["block"]], a["layers"], a["stage_widths"], a["stem_width"],
                         a["num_classes"], a["groups"], a["width_per_group"], norm_layer=norm)
        m.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in sd.items()},
                          strict=True)
        got = forward_f32(m.eval(), g["input"], e["kind"])
        for k, v in got.items():
            assert torch.equal(v, g[k]), (e["name"], k)
    print(f"round trip: {len(manifest)} goldens reproduced bit-exactly from the files on disk")


def digests(root: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.iterdir())
            if p.is_file()}


def check_determinism(script: str = __file__, default_out: Path = DEFAULT_OUT) -> int:
    """Runs `script --out DIR` twice in fresh processes and compares every file's sha256, then with
    `default_out` (the committed files). Shared by the generators of models/ and layers/."""
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(2):
            d = Path(tmp) / f"run{i}"
            subprocess.run([sys.executable, script, "--out", str(d)], check=True, stdout=subprocess.DEVNULL)
            results.append(digests(d))
    a, b = results
    bad = sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))
    if bad:
        print("NOT deterministic:", *bad, sep="\n  ")
        return 1
    print(f"deterministic: {len(a)} files byte-identical across two runs")
    label = f"Fixtures/{default_out.name}/"
    if default_out.exists():
        committed = digests(default_out)
        diff = sorted(k for k in a.keys() | committed.keys() if a.get(k) != committed.get(k))
        if diff:
            print(f"differs from {label} (regenerate, or another CPU changed float32 bits):",
                  *diff, sep="\n  ")
            return 1
        print(f"and identical to {label}")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (default Fixtures/models)")
    ap.add_argument("--check-determinism", action="store_true",
                    help="generate twice into temporary folders in fresh processes and compare sha256 "
                         "(and against Fixtures/models/)")
    args = ap.parse_args()
    if args.check_determinism:
        return check_determinism()
    generate(args.out.resolve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
