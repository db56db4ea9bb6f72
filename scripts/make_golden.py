#!/usr/bin/env python3
"""Write a golden file for `torchport verify`: what real PyTorch computes for a checkpoint, layer by layer.

    python make_golden.py --checkpoint model.pth -o model.golden.pth                # seeded random input
    python make_golden.py --arch resnet50 --state-dict weights.pth --images cat.jpg dog.png -o r50.golden.pth
    python make_golden.py --checkpoint ckpt.pth --seed 1 --batch 4 --size 160 200 --intermediates layer3,fc -o g.pth

It needs your own torch and torchvision (any reasonably recent release, Python 3.9+; nothing else, and
Pillow for --images). It runs on the CPU, on one thread, with `torch.use_deterministic_algorithms(True)`,
and prints the versions it used.

The model
  --checkpoint FILE (or --state-dict FILE, the same thing) takes any layout: a bare state dict, a wrapper
  such as {"model": ...}, {"state_dict": ...}, {"model_state_dict": ...} (the ResNet is found by its stem,
  `<root>conv1.weight` with 3 input channels, as Torchport does: the root with the most tensors wins), key
  prefixes `module.` (DataParallel) and `_orig_mod.` (torch.compile), a detection model's `backbone.body.`,
  float16/bfloat16 weights (widened to float32), a TorchScript archive (its state dict), or a whole pickled
  model (run as it is). Without --arch the torchvision ResNet is rebuilt from the tensor shapes (block type,
  blocks per stage, widths, groups, width_per_group, classes; no `fc` gives a headless model, fc =
  Identity) and loaded with strict=True. With --arch NAME (resnet18 ... wide_resnet101_2, or any
  torchvision classification model) that constructor is used instead; --num-classes overrides the class
  count read from `fc.weight`.

  torch.load runs with weights_only=True. Files that need the full unpickler (a whole pickled model, a
  training checkpoint holding an argparse.Namespace) are refused unless you pass --trust-pickle, which
  lets the file run code on your machine: check it first (`torchport scan FILE`).

The input
  --seed N --batch B --size H [W]   torch.manual_seed(N); torch.randn(B, 3, H, W) (default 0, 2, 224)
  --images A.jpg B.png ...          torchvision's ImageNet evaluation preprocessing, one sample per image:
                                    Resize(256), CenterCrop(224), ToTensor, Normalize(ImageNet mean, std)
                                    on PIL's convert("RGB") (--resize / --crop change 256 / 224)

The golden (-o FILE) is torch.save of a dict, in this order:
  input          float32 N x 3 x H x W, exactly as fed to the model
  logits         float32 N x C, the model in eval() under torch.no_grad() (a headless model, fc = Identity,
                 stores `features` N x C' and `feature_map`, layer4's output, instead)
  logits_f64     the same model converted to float64, run on input.double() (`features_f64`,
                 `feature_map_f64` for a headless model)
  intermediates  {module name: its output}, float32, contiguous, in forward order (the order the forward
                 hooks fired, so a container comes after its children): names as model.named_modules()
                 gives them (conv1, bn1, relu, maxpool, layer1.0.conv1, layer1.0.bn1, ...,
                 layer1.0.downsample.0, layer1.0.downsample.1, layer1.0.downsample, layer1.0, ..., layer1,
                 ..., layer4, avgpool, fc).
                 A module called more than once per forward is left out (each block's shared `relu`), since
                 one name would hold several outputs. They are large (batch 2 at 224 x 224: about 56 MiB
                 for resnet18, 240 MiB for resnet50): --intermediates none leaves the key out;
                 --intermediates layer3,fc keeps the named modules and everything under them.
  torch_version, torchvision_version   strings
  architecture   "resnet50", or a description such as "ResNet(Bottleneck, layers=[1, 2, 1, 1], ...)"

Two runs with the same arguments write the same bytes on one machine (the file is saved through an
in-memory buffer, so the zip's top folder is always `archive/`). Another CPU may change the last bits of the
float32 outputs (different SIMD kernels), never the input.
"""
from __future__ import annotations

import argparse
import copy
import inspect
import io
import os
import re
import sys
import warnings
from pathlib import Path

os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torchvision  # noqa: E402
from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet  # noqa: E402

IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]

# torchvision's ResNets: (block, blocks per stage, groups, width_per_group); stem 64, planes 64/128/256/512.
TORCHVISION_RESNETS = {
    "resnet18": ("basic", [2, 2, 2, 2], 1, 64),
    "resnet34": ("basic", [3, 4, 6, 3], 1, 64),
    "resnet50": ("bottleneck", [3, 4, 6, 3], 1, 64),
    "resnet101": ("bottleneck", [3, 4, 23, 3], 1, 64),
    "resnet152": ("bottleneck", [3, 8, 36, 3], 1, 64),
    "resnext50_32x4d": ("bottleneck", [3, 4, 6, 3], 32, 4),
    "resnext101_32x8d": ("bottleneck", [3, 4, 23, 3], 32, 8),
    "resnext101_64x4d": ("bottleneck", [3, 4, 23, 3], 64, 4),
    "wide_resnet50_2": ("bottleneck", [3, 4, 6, 3], 1, 128),
    "wide_resnet101_2": ("bottleneck", [3, 4, 23, 3], 1, 128),
}
BLOCKS = {"basic": BasicBlock, "bottleneck": Bottleneck}
WRAPPER_PREFIXES = ("module.", "_orig_mod.")
WRAPPER_KEYS = ("model", "state_dict", "model_state_dict", "net", "network", "model_ema", "ema")


def set_deterministic(threads: int = 1) -> None:
    """One thread, deterministic algorithms, CPU only (call before building or running anything)."""
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)


def versions() -> dict[str, str]:
    """The versions as plain `str`: torch.__version__ is a TorchVersion, which torch.load(weights_only=True)
    and Torchport's reader would refuse as an unknown class."""
    return {"torch_version": "".join(str(torch.__version__)),
            "torchvision_version": "".join(str(torchvision.__version__))}


# ---------------------------------------------------------------------------------------------------
# Loading a checkpoint of any layout
# ---------------------------------------------------------------------------------------------------


class CheckpointError(Exception):
    pass


def load_file(path: str | Path, trust_pickle: bool = False):
    """torch.load on the CPU, weights_only=True unless `trust_pickle`; TorchScript archives via torch.jit."""
    path = Path(path)
    if "weights_only" not in inspect.signature(torch.load).parameters:  # torch < 1.13
        if not trust_pickle:
            raise CheckpointError(f"this torch ({torch.__version__}) has no weights_only loader, so loading "
                                  f"{path} may run code from it: pass --trust-pickle if you trust the file")
        return torch.load(path, map_location="cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # noqa: BLE001 - torch raises several types here
            first = e
        if _is_torchscript(path):
            return torch.jit.load(str(path), map_location="cpu")
        if not trust_pickle:
            why = re.sub(r"\x1b\[[0-9;]*m", "", str(first))
            why = next((ln.strip() for ln in why.splitlines() if "error:" in ln.lower()),
                       why.strip().splitlines()[0] if why.strip() else "")
            raise CheckpointError(
                f"{path}: torch.load(weights_only=True) refused it ({type(first).__name__}: {why}). It needs the full "
                "unpickler (a whole pickled model, or a training checkpoint with other objects). Pass "
                "--trust-pickle to load it anyway: that lets the file run code on this machine, so check "
                "it first (`torchport scan FILE`).") from None
        return torch.load(path, map_location="cpu", weights_only=False)


def _is_torchscript(path: Path) -> bool:
    import zipfile
    try:
        with zipfile.ZipFile(path) as z:
            return any(n.split("/", 1)[-1] == "constants.pkl" for n in z.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


def unwrap_module(obj):
    """A whole pickled nn.Module (not TorchScript), through DataParallel / torch.compile wrappers; else None."""
    if not isinstance(obj, nn.Module) or isinstance(obj, torch.jit.ScriptModule):
        return None
    while True:
        if isinstance(obj, (nn.DataParallel, nn.parallel.DistributedDataParallel)):
            obj = obj.module
        elif hasattr(obj, "_orig_mod") and isinstance(getattr(obj, "_orig_mod"), nn.Module):
            obj = obj._orig_mod
        else:
            return obj


def unwrap_state_dict(obj):
    """Into training-checkpoint wrappers ({"model": ...}, {"state_dict": ...}, ...) until the tensors."""
    while isinstance(obj, dict) and not all(isinstance(v, torch.Tensor) for v in obj.values()):
        inner = next((obj[k] for k in WRAPPER_KEYS if isinstance(obj.get(k), (dict, nn.Module))), None)
        if inner is None:
            break
        obj = inner
    return obj


def flatten_tensors(obj, prefix: str = "", out: dict | None = None, seen: set | None = None) -> dict:
    """Every tensor reachable from `obj` by dotted path: dict keys, list/tuple indices, a module's state dict."""
    out = {} if out is None else out
    seen = set() if seen is None else seen
    if isinstance(obj, torch.Tensor):
        out.setdefault(prefix.rstrip("."), obj)
        return out
    if id(obj) in seen:
        return out
    seen.add(id(obj))
    if isinstance(obj, nn.Module):
        for k, v in obj.state_dict().items():
            out.setdefault(prefix + k, v)
    elif isinstance(obj, dict):
        for k, v in obj.items():
            flatten_tensors(v, f"{prefix}{k}.", out, seen)
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            flatten_tensors(v, f"{prefix}{i}.", out, seen)
    return out


def find_resnet_state_dict(tensors: dict) -> tuple[str, dict]:
    """(root, canonical state dict): the root is the prefix of a ResNet stem `<root>conv1.weight` [C, 3, k, k]
    with the most tensors under it (the first in the file on a tie), as Torchport's NameMapping chooses."""
    roots = []
    for name, t in tensors.items():
        if name.endswith("conv1.weight") and t.dim() == 4 and t.shape[1] == 3:
            root = name[: -len("conv1.weight")]
            if (root == "" or root.endswith(".")) and "layer" not in root and root not in roots:
                roots.append(root)
    if not roots:
        shown = ", ".join(list(tensors)[:8])
        raise CheckpointError(f"no ResNet stem (<prefix>conv1.weight with 3 input channels) among "
                              f"{len(tensors)} tensors: {shown}")
    count = {r: sum(1 for n in tensors if n.startswith(r)) for r in roots}
    root = max(roots, key=lambda r: (count[r], -roots.index(r)))
    sd = {n[len(root):]: t for n, t in tensors.items() if n.startswith(root)}
    return root, sd


def strip_prefixes(sd: dict) -> dict:
    """Drop `module.` / `_orig_mod.` prefixes shared by every key (repeatedly, in any order)."""
    while sd:
        for p in WRAPPER_PREFIXES:
            if all(k.startswith(p) for k in sd):
                sd = {k[len(p):]: v for k, v in sd.items()}
                break
        else:
            return sd
    return sd


# ---------------------------------------------------------------------------------------------------
# The architecture, from the tensor shapes
# ---------------------------------------------------------------------------------------------------


def infer_resnet(sd: dict) -> dict:
    """Block type, blocks per stage, stem width, planes, groups, width_per_group and classes of a torchvision
    ResNet state dict (canonical names). Raises CheckpointError when the shapes describe no such ResNet."""
    def shape(name):
        if name not in sd:
            raise CheckpointError(f"not a torchvision ResNet: no '{name}'")
        return list(sd[name].shape)

    block = "bottleneck" if "layer1.0.conv3.weight" in sd else "basic"
    layers = []
    for k in range(1, 5):
        idx = {int(n.split(".")[1]) for n in sd if n.startswith(f"layer{k}.") and n.split(".")[1].isdigit()}
        if not idx or idx != set(range(len(idx))):
            raise CheckpointError(f"not a torchvision ResNet: layer{k} blocks {sorted(idx)}")
        layers.append(len(idx))
    stem = shape("conv1.weight")[0]
    if block == "basic":
        planes = [shape(f"layer{k}.0.conv1.weight")[0] for k in range(1, 5)]
        groups, width_per_group = 1, 64
    else:
        planes = [shape(f"layer{k}.0.conv3.weight")[0] // 4 for k in range(1, 5)]
        w2 = shape("layer1.0.conv2.weight")
        groups = w2[0] // w2[1]
        width_per_group = w2[0] * 64 // (planes[0] * groups)
        for k in range(1, 5):
            width = shape(f"layer{k}.0.conv2.weight")[0]
            if int(planes[k - 1] * (width_per_group / 64.0)) * groups != width:
                raise CheckpointError(f"not a torchvision ResNet: layer{k} inner width {width} does not fit "
                                      f"planes {planes[k - 1]}, groups {groups}, width_per_group {width_per_group}")
    num_classes = shape("fc.weight")[0] if "fc.weight" in sd else None
    return {"block": block, "layers": layers, "groups": groups, "width_per_group": width_per_group,
            "stage_widths": planes, "num_classes": num_classes, "stem_width": stem}


def describe(arch: dict) -> str:
    """`resnet50` (`resnet50, 10 classes`, `resnet50, headless`) or a structural description."""
    for name, (block, layers, groups, wpg) in TORCHVISION_RESNETS.items():
        if (arch["block"], arch["layers"], arch["groups"], arch["width_per_group"]) == (block, layers, groups, wpg) \
                and arch["stem_width"] == 64 and arch["stage_widths"] == [64, 128, 256, 512]:
            if arch["num_classes"] == 1000:
                return name
            return f"{name}, " + ("headless" if arch["num_classes"] is None else f"{arch['num_classes']} classes")
    cls = "BasicBlock" if arch["block"] == "basic" else "Bottleneck"
    return (f"ResNet({cls}, layers={arch['layers']}, stem_width={arch['stem_width']}, "
            f"planes={arch['stage_widths']}, groups={arch['groups']}, width_per_group={arch['width_per_group']}, "
            f"num_classes={arch['num_classes']})")


class NarrowResNet(ResNet):
    """torchvision's ResNet with any stem width and stage widths (`planes`): `ResNet.__init__` line by line
    except for the widths; torchvision's blocks, `_make_layer` and `forward`. num_classes=None: fc = Identity."""

    def __init__(self, block, layers, stage_widths=(64, 128, 256, 512), stem_width=64, num_classes=1000,
                 groups=1, width_per_group=64, norm_layer=None):
        nn.Module.__init__(self)
        norm_layer = norm_layer or nn.BatchNorm2d
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
        self.fc = nn.Identity() if num_classes is None else nn.Linear(stage_widths[3] * block.expansion, num_classes)


def build_resnet(arch: dict) -> nn.Module:
    """torchvision's own ResNet for the standard widths, NarrowResNet otherwise (same module names)."""
    block = BLOCKS[arch["block"]]
    if arch["stem_width"] == 64 and arch["stage_widths"] == [64, 128, 256, 512]:
        model = ResNet(block, arch["layers"], num_classes=arch["num_classes"] or 1000, groups=arch["groups"],
                       width_per_group=arch["width_per_group"])
        if arch["num_classes"] is None:
            model.fc = nn.Identity()
        return model
    return NarrowResNet(block, arch["layers"], arch["stage_widths"], arch["stem_width"], arch["num_classes"],
                        arch["groups"], arch["width_per_group"])


def load_strict(model: nn.Module, sd: dict) -> None:
    """load_state_dict(strict=True), floating tensors cast to the model's dtype; a state dict that does not
    fit raises CheckpointError listing (the first few) missing, unexpected and mis-shaped keys."""
    own = model.state_dict()
    # FrozenBatchNorm2d (detection backbones) has no num_batches_tracked; BatchNorm2d fills it in
    sd = {k: v for k, v in sd.items() if not (k.endswith("num_batches_tracked") and k not in own)}
    missing = [k for k in own if k not in sd and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in sd if k not in own]
    shapes = [f"{k} {list(sd[k].shape)} (model {list(own[k].shape)})" for k in own
              if k in sd and sd[k].shape != own[k].shape]
    if missing or unexpected or shapes:
        def few(xs):
            return ", ".join(xs[:4]) + (f", ... ({len(xs)} in all)" if len(xs) > 4 else "")
        parts = [f"{what}: {few(xs)}" for what, xs in
                 (("missing", missing), ("unexpected", unexpected), ("other shape", shapes)) if xs]
        hint = ""
        try:
            hint = f"; its shapes describe {describe(infer_resnet(sd))} (leave out --arch to use that)"
        except CheckpointError:
            pass
        raise CheckpointError(f"the state dict does not fit {type(model).__name__}: " + "; ".join(parts) + hint)
    model.load_state_dict({k: (v.to(own[k].dtype) if v.is_floating_point() else v) for k, v in sd.items()},
                          strict=True)


def load_model(path: str | Path, arch: str | None = None, num_classes: int | None = None,
               trust_pickle: bool = False, log=print) -> tuple[nn.Module, str]:
    """(model in eval mode, float32, its architecture string) from a checkpoint of any layout."""
    obj = load_file(path, trust_pickle=trust_pickle)
    whole = unwrap_module(obj)
    if whole is not None and arch is None:
        log(f"model: a whole pickled {type(whole).__module__}.{type(whole).__qualname__}, run as it is")
        return whole.float().eval(), type(whole).__qualname__
    tensors = flatten_tensors(obj)
    if arch is None:
        root, sd = find_resnet_state_dict(tensors)
        sd = strip_prefixes(sd)
        dtypes = sorted({str(v.dtype).removeprefix("torch.") for v in sd.values() if v.is_floating_point()})
        spec = infer_resnet(sd)
        name = describe(spec)
        model = build_resnet(spec)
        load_strict(model, sd)
        log(f"model: {name}" + (f" (state dict under '{root}')" if root else "")
            + (f", {'/'.join(dtypes)} weights widened to float32" if dtypes != ["float32"] else ""))
        return model.float().eval(), name
    sd = strip_prefixes(flatten_tensors(unwrap_state_dict(obj)))
    if arch in TORCHVISION_RESNETS and "conv1.weight" not in sd:
        _, sd = find_resnet_state_dict(tensors)
        sd = strip_prefixes(sd)
    if not sd:
        raise CheckpointError(f"{path}: no tensors found")
    ctor = getattr(torchvision.models, arch, None)
    if ctor is None or not callable(ctor):
        raise CheckpointError(f"torchvision.models has no '{arch}'")
    headless = arch in TORCHVISION_RESNETS and "fc.weight" not in sd
    if num_classes is None and "fc.weight" in sd:
        num_classes = sd["fc.weight"].shape[0]
    model = ctor(**({} if num_classes is None else {"num_classes": num_classes}))
    if headless:
        model.fc = nn.Identity()
    load_strict(model, sd)
    name = arch if num_classes in (None, 1000) and not headless else \
        f"{arch}, " + ("headless" if headless else f"{num_classes} classes")
    log(f"model: torchvision.models.{arch}" + (" (fc = Identity)" if headless else
                                               f" with {num_classes} classes" if num_classes else ""))
    return model.float().eval(), name


# ---------------------------------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------------------------------


def random_input(seed: int, batch: int, height: int, width: int | None = None) -> torch.Tensor:
    """torch.manual_seed(seed); torch.randn(batch, 3, height, width), float32."""
    torch.manual_seed(seed)
    return torch.randn(batch, 3, height, height if width is None else width, dtype=torch.float32)


def image_input(paths: list[str], resize: int = 256, crop: int = 224) -> torch.Tensor:
    """torchvision's ImageNet evaluation preprocessing of each image, stacked: N x 3 x crop x crop."""
    from PIL import Image
    from torchvision import transforms
    tf = transforms.Compose([transforms.Resize(resize), transforms.CenterCrop(crop), transforms.ToTensor(),
                             transforms.Normalize(mean=IMAGENET_MEAN, std=IMAGENET_STD)])
    batch = []
    for p in paths:
        with Image.open(p) as im:
            batch.append(tf(im.convert("RGB")))
    return torch.stack(batch).float().contiguous()


# ---------------------------------------------------------------------------------------------------
# Running with hooks
# ---------------------------------------------------------------------------------------------------


def selector(spec: str):
    """A predicate on module names for `all`, `none`, or comma-separated names (each keeps itself and
    everything under it)."""
    if spec == "all":
        return lambda name: True
    if spec == "none":
        return lambda name: False
    prefixes = [p.strip() for p in spec.split(",") if p.strip()]
    return lambda name: any(name == p or name.startswith(p + ".") for p in prefixes)


def run_with_hooks(model: nn.Module, x: torch.Tensor, keep=lambda name: True,
                   dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, dict, list[str]]:
    """(output, {name: output as `dtype`} of every submodule called exactly once for which `keep(name)`,
    in hook firing order, [names of all submodules called more than once]). Outputs are cloned when the
    hook fires: later in-place operations (ReLU(inplace=True), `out += identity`) would change them."""
    captured: dict[str, torch.Tensor] = {}
    calls: dict[str, int] = {}
    handles = []

    def hook(name):
        def fn(_module, _inputs, output):
            calls[name] = calls.get(name, 0) + 1
            if calls[name] == 1 and keep(name) and isinstance(output, torch.Tensor) and output.is_floating_point():
                captured[name] = output.detach().to(dtype).clone(memory_format=torch.contiguous_format)
        return fn

    for name, module in model.named_modules():
        if name:
            handles.append(module.register_forward_hook(hook(name)))
    try:
        with torch.no_grad():
            y = model(x)
    finally:
        for h in handles:
            h.remove()
    repeated = [n for n, c in calls.items() if c > 1]
    inter = {n: t for n, t in captured.items() if calls[n] == 1}
    return y, inter, repeated


def is_headless(model: nn.Module) -> bool:
    """A torchvision-style ResNet whose fc is an Identity: it returns pooled features, not logits."""
    return isinstance(getattr(model, "fc", None), nn.Identity) and isinstance(getattr(model, "layer4", None), nn.Module)


def golden_dict(model: nn.Module, x: torch.Tensor, intermediates: str = "all", architecture: str = "",
                version_info: dict | None = None) -> tuple[dict, list[str]]:
    """(the golden described in the module docstring, the names of the modules left out because they are
    called more than once per forward). `version_info` replaces `versions()` (the generator pins it)."""
    model.eval()
    x = x.to(torch.float32).contiguous()
    headless = is_headless(model)
    wanted = selector(intermediates)
    keep = (lambda n: wanted(n) or n == "layer4") if headless else wanted
    y, inter, repeated = run_with_hooks(model, x, keep)
    if not isinstance(y, torch.Tensor):
        raise RuntimeError(f"the model returns a {type(y).__name__}, not a tensor")
    with torch.no_grad():
        plain = model(x)
    if not torch.equal(plain, y):
        raise RuntimeError("the forward with hooks differs from the one without: a hook changed the computation")
    ref = copy.deepcopy(model).double().eval()
    y64, inter64, _ = run_with_hooks(ref, x.double(), (lambda n: n == "layer4") if headless else (lambda n: False),
                                     torch.float64)
    golden = {"input": x}
    if headless:
        golden["features"] = y.contiguous()
        golden["feature_map"] = inter["layer4"]
        golden["features_f64"] = y64.contiguous()
        golden["feature_map_f64"] = inter64["layer4"]
    else:
        golden["logits"] = y.contiguous()
        golden["logits_f64"] = y64.contiguous()
    if intermediates != "none":
        golden["intermediates"] = {n: t for n, t in inter.items() if wanted(n)}
    golden |= version_info if version_info is not None else versions()
    golden["architecture"] = architecture or type(model).__qualname__
    return golden, repeated


def save_bytes(obj) -> bytes:
    """torch.save into a buffer: the zip's top folder is `archive/` whatever the output file is called."""
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


# ---------------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------------


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="make_golden.py", description=__doc__.split("\n\n")[0],
                                 epilog=__doc__.split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    src = ap.add_argument_group("model")
    src.add_argument("--checkpoint", "--state-dict", dest="checkpoint", metavar="FILE", required=True,
                     help="the checkpoint (any layout, see below)")
    src.add_argument("--arch", metavar="NAME", help="torchvision.models constructor to load it into "
                     "(default: rebuild the ResNet from the tensor shapes)")
    src.add_argument("--num-classes", type=int, metavar="C", help="with --arch: the number of classes "
                     "(default: fc.weight's rows)")
    src.add_argument("--trust-pickle", action="store_true", help="load with weights_only=False if needed "
                     "(runs code from the file; check it with `torchport scan` first)")
    inp = ap.add_argument_group("input (seeded random unless --images)")
    inp.add_argument("--seed", type=int, default=0, help="torch.manual_seed for the input (default 0)")
    inp.add_argument("--batch", type=int, default=2, help="N (default 2)")
    inp.add_argument("--size", type=int, nargs="+", default=[224], metavar=("H", "W"),
                     help="height and width; one number for a square (default 224)")
    inp.add_argument("--images", nargs="+", metavar="IMAGE", help="images instead, one sample each")
    inp.add_argument("--resize", type=int, default=256, help="with --images: Resize (default 256)")
    inp.add_argument("--crop", type=int, default=224, help="with --images: CenterCrop (default 224)")
    out = ap.add_argument_group("output")
    out.add_argument("-o", "--output", required=True, metavar="FILE", help="the golden to write")
    out.add_argument("--intermediates", default="all", metavar="all|none|NAME,...",
                     help="which module outputs to store (default all)")
    args = ap.parse_args(argv)
    if len(args.size) > 2:
        ap.error("--size takes H or H W")
    if args.batch < 1 or min(args.size) < 1:
        ap.error("--batch and --size must be positive")

    set_deterministic()
    print(f"torch {torch.__version__}, torchvision {torchvision.__version__}, CPU, 1 thread, "
          "deterministic algorithms", file=sys.stderr)
    log = lambda s: print(s, file=sys.stderr)  # noqa: E731
    try:
        model, architecture = load_model(args.checkpoint, args.arch, args.num_classes, args.trust_pickle, log=log)
    except (CheckpointError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.images:
        x = image_input(args.images, args.resize, args.crop)
        log(f"input: {len(args.images)} image(s), Resize({args.resize}), CenterCrop({args.crop}), ToTensor, "
            "Normalize(ImageNet)")
    else:
        x = random_input(args.seed, args.batch, *args.size)
        log(f"input: torch.manual_seed({args.seed}); torch.randn{tuple(x.shape)}")
    torch.manual_seed(0)
    golden, repeated = golden_dict(model, x, args.intermediates, architecture)
    data = save_bytes(golden)
    Path(args.output).write_bytes(data)
    main_key = "logits" if "logits" in golden else "features"
    err = (golden[main_key].double() - golden[main_key + "_f64"]).abs().max().item()
    scale = golden[main_key + "_f64"].abs().max().item()
    inter = golden.get("intermediates", {})
    log(f"{main_key}: {list(golden[main_key].shape)}, max|float64| {scale:.4g}, float32 vs float64 max|d| "
        f"{err:.3g} ({err / scale if scale else 0:.2g} relative)")
    log(f"intermediates: {len(inter)}" + (f" ({', '.join(inter)})" if 0 < len(inter) <= 3 else
                                         f" ({next(iter(inter))} ... {list(inter)[-1]})" if inter else "")
        + (f"; left out, called more than once: {', '.join(repeated)}" if repeated else ""))
    log(f"wrote {args.output} ({len(data):,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
