#!/usr/bin/env python3
"""Deterministic generator for Torchport's checkpoint and pickle fixtures.

Run from the repository root:

    .venv-torch/bin/python Fixtures/generate.py

It (re)writes everything under Fixtures/checkpoints/ and Fixtures/pickles/. Running it twice gives
byte-identical files (checked by `Fixtures/generate.py --check-determinism`, which generates into two
temporary directories in two fresh processes and compares every file's sha256).

Every checkpoint `<stem>.<ext>` has a `<stem>.expected.json` next to it; its schema is documented in
Fixtures/README.md and is the contract with the Swift tests.

Sources of nondeterminism and what is done about each:
  * random initialisation: every fixture reseeds torch/random with its own fixed seed, one thread.
  * `.data/serialization_id` in zip checkpoints: torch 2.15 computes it from a hash of the record names
    and CRCs (c10::hash, no randomness), so it is already deterministic; `check_determinism` proves it.
  * legacy (non-zip) format: torch uses `str(storage._cdata)` (a heap address) as the storage key. We run
    torch's own `_legacy_save` with that single expression replaced by a deterministic, pointer-like key
    (see `_deterministic_legacy_save`). Everything else is torch's code.
  * zip entry names: torch names the top folder after the file's basename when saving to a path and
    `archive` when saving to a buffer. We save to buffers (prefix `archive`) except for
    custom-prefix.pth, which is saved to `my_model_v2.pth` on purpose.
  * str hashing (PYTHONHASHSEED): TorchScript writes `Final` constants in set order; the script
    re-executes itself with PYTHONHASHSEED=0.
  * TorchScript debug info (`*.debug_pkl`) records absolute source file paths; we patch torch's source
    lookup so recorded paths are relative to site-packages / the repository (see `_relative_sources`).
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import hashlib
import inspect
import io
import json
import os
import pickle
import pickletools
import random
import shutil
import subprocess
import sys
import tempfile
import warnings
import zipfile
from collections import OrderedDict
from pathlib import Path

# TorchScript emits module constants (`__constants__`, a set of str) in set iteration order, which
# depends on str hash randomization: re-exec with a fixed PYTHONHASHSEED before anything else runs.
if os.environ.get("PYTHONHASHSEED") != "0":
    os.environ["PYTHONHASHSEED"] = "0"
    os.execv(sys.executable, [sys.executable, *sys.argv])
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torchvision  # noqa: E402
from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet  # noqa: E402

assert torch.__version__.startswith("2.15.0"), f"need torch 2.15.0, have {torch.__version__}"
assert torchvision.__version__.startswith("0.29.2"), f"need torchvision 0.29.2, have {torchvision.__version__}"

warnings.filterwarnings("ignore")  # deprecation chatter (TypedStorage, torch.jit, weights_only probes)
torch.set_num_threads(1)
torch.use_deterministic_algorithms(True)

HERE = Path(__file__).resolve().parent
sys.dont_write_bytecode = True  # importing sibling scripts must not leave __pycache__ behind
REPO = HERE.parent
MAX_FILE_BYTES = 1 << 20  # 1 MiB per fixture
MAX_TOTAL_BYTES = 8 << 20  # 8 MiB for all fixtures together

DTYPE_NAMES = {
    torch.float32: "float32",
    torch.float64: "float64",
    torch.float16: "float16",
    torch.bfloat16: "bfloat16",
    torch.int64: "int64",
    torch.int32: "int32",
    torch.int16: "int16",
    torch.int8: "int8",
    torch.uint8: "uint8",
    torch.bool: "bool",
}


def seed(n: int) -> None:
    """Each fixture reseeds, so adding or reordering fixtures never changes the others."""
    torch.manual_seed(n)
    random.seed(n)
    np.random.seed(n)


# ---------------------------------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------------------------------


class TinyResNet(ResNet):
    """torchvision's ResNet with configurable stage widths.

    Mirrors `torchvision.models.resnet.ResNet.__init__` line by line, except that the stem and the four
    stages use `widths` instead of 64/128/256/512. It reuses torchvision's `_make_layer`, `BasicBlock`,
    `Bottleneck` (and through them `conv1x1`/`conv3x3`) and `forward`, so parameter names are exactly
    torchvision's: conv1, bn1, layer1.0.conv1.weight, layer2.0.downsample.0.weight, fc.weight, ...
    """

    def __init__(self, block, layers, widths=(8, 16, 32, 64), num_classes=10, groups=1,
                 width_per_group=64, zero_init_residual=False):
        nn.Module.__init__(self)
        norm_layer = nn.BatchNorm2d
        self._norm_layer = norm_layer
        self.inplanes = widths[0]
        self.dilation = 1
        self.groups = groups
        self.base_width = width_per_group
        self.conv1 = nn.Conv2d(3, self.inplanes, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = norm_layer(self.inplanes)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, widths[0], layers[0])
        self.layer2 = self._make_layer(block, widths[1], layers[1], stride=2)
        self.layer3 = self._make_layer(block, widths[2], layers[2], stride=2)
        self.layer4 = self._make_layer(block, widths[3], layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(widths[3] * block.expansion, num_classes)

        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)
        if zero_init_residual:
            for m in self.modules():
                if isinstance(m, Bottleneck) and m.bn3.weight is not None:
                    nn.init.constant_(m.bn3.weight, 0)
                elif isinstance(m, BasicBlock) and m.bn2.weight is not None:
                    nn.init.constant_(m.bn2.weight, 0)


def randomize_batchnorm(model: nn.Module) -> None:
    """Non-trivial BN affine parameters and running statistics (variance strictly positive)."""
    with torch.no_grad():
        for i, m in enumerate(mm for mm in model.modules() if isinstance(mm, nn.BatchNorm2d)):
            m.weight.uniform_(0.5, 1.5)
            m.bias.normal_(0.0, 0.1)
            m.running_mean.normal_(0.0, 0.1)
            m.running_var.uniform_(0.5, 2.0)
            m.num_batches_tracked.fill_(100 + i)


def tiny_resnet(block=BasicBlock, layers=(1, 1, 1, 1), widths=(8, 16, 32, 64), num_classes=10,
                groups=1, width_per_group=64, seed_value=1) -> TinyResNet:
    seed(seed_value)
    model = TinyResNet(block, list(layers), widths=widths, num_classes=num_classes, groups=groups,
                       width_per_group=width_per_group)
    randomize_batchnorm(model)
    return model.eval()


def small_state_dict(seed_value: int) -> OrderedDict:
    """A small but realistic state dict: conv + BN + linear, plus one nn.Parameter saved as such."""
    seed(seed_value)
    net = nn.Sequential(OrderedDict(conv=nn.Conv2d(3, 4, 3, bias=False), bn=nn.BatchNorm2d(4),
                                    fc=nn.Linear(4, 2)))
    randomize_batchnorm(net)
    sd = net.eval().state_dict()
    sd["scale"] = nn.Parameter(torch.randn(2, 3))  # pickled via torch._utils._rebuild_parameter
    return sd


# ---------------------------------------------------------------------------------------------------
# Saving helpers
# ---------------------------------------------------------------------------------------------------


def save_bytes(obj, **kwargs) -> bytes:
    """torch.save into a buffer (zip prefix `archive`)."""
    buf = io.BytesIO()
    torch.save(obj, buf, **kwargs)
    return buf.getvalue()


def _legacy_key(cdata: int, _keys={}) -> str:  # noqa: B006 - deliberate per-process cache
    """A deterministic stand-in for `str(storage._cdata)`: pointer-like, unique, not in save order.

    Real legacy files have heap addresses as keys (e.g. '94826212341888'); their *string* sort order,
    which fixes the order of the storage records after the pickle, is unrelated to pickling order.
    We reproduce that: keys look like addresses, and their order scrambles the save order.
    """
    if cdata not in _keys:
        n = len(_keys)
        h = int.from_bytes(hashlib.sha256(f"torchport-legacy-{n}".encode()).digest()[:3], "little")
        _keys[cdata] = str(0x55D0_0000_0000 + (h << 6) * 7 + n * 64)
    return _keys[cdata]


def _deterministic_legacy_save():
    """torch.serialization._legacy_save with `str(storage._cdata)` replaced by `_legacy_key(...)`."""
    import torch.serialization as ser

    src = inspect.getsource(ser._legacy_save)
    needle = "storage_key = str(storage._cdata)"
    assert src.count(needle) == 1, "torch's _legacy_save changed; update the patch"
    src = src.replace(needle, "storage_key = _torchport_legacy_key(storage._cdata)")
    namespace = dict(vars(ser))
    namespace["_torchport_legacy_key"] = _legacy_key
    exec(compile(src, ser.__file__, "exec"), namespace)  # noqa: S102 - torch's own source
    return namespace["_legacy_save"]


@contextlib.contextmanager
def deterministic_legacy():
    import torch.serialization as ser

    original = ser._legacy_save
    ser._legacy_save = _deterministic_legacy_save()
    _legacy_key.__defaults__[0].clear()
    try:
        yield
    finally:
        ser._legacy_save = original


def save_legacy_bytes(obj, pickle_protocol=2) -> bytes:
    with deterministic_legacy():
        return save_bytes(obj, _use_new_zipfile_serialization=False, pickle_protocol=pickle_protocol)


@contextlib.contextmanager
def _relative_sources():
    """Make TorchScript debug info record relative source paths (site-packages/... or Fixtures/...)."""
    import torch._jit_internal as ji
    import torch._sources as srcs
    import torch.jit.frontend as fe

    original = srcs.get_source_lines_and_file
    roots = sorted({str(Path(p).resolve()) for p in sys.path if p and "site-packages" in p}
                   | {str(REPO)}, key=len, reverse=True)

    def relative(obj, error_msg=None):
        lines, lineno, filename = original(obj, error_msg)
        if filename:
            resolved = str(Path(filename).resolve())
            for root in roots:
                if resolved.startswith(root + os.sep):
                    filename = os.path.relpath(resolved, root)
                    break
        return lines, lineno, filename

    mods = (srcs, fe, ji)
    saved = [m.get_source_lines_and_file for m in mods]
    for m in mods:
        m.get_source_lines_and_file = relative
    try:
        yield
    finally:
        for m, s in zip(mods, saved):
            m.get_source_lines_and_file = s


def zip_entries(data: bytes) -> list[tuple[str, bytes]]:
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        return [(i.filename, z.read(i)) for i in z.infolist()]


def write_zip_like_torch(entries, compression=zipfile.ZIP_STORED, alignment=64) -> bytes:
    """Write entries in order with Python's zipfile, fixed timestamps (DOS date 0, as torch writes).

    Stored entries get the data 64-byte aligned with an extra field of id 'FB' padded with 'Z', like
    PyTorch's writer. (Differences from torch: no streaming flag 0x08/data descriptors, no Zip64 end
    record; sizes are in the local headers. Readers must take sizes from the central directory anyway.)
    """
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=compression, allowZip64=True) as z:
        for name, data in entries:
            info = zipfile.ZipInfo(name, date_time=(1980, 0, 0, 0, 0, 0))
            info.compress_type = compression
            info.create_system = 0
            info.external_attr = 0
            if compression == zipfile.ZIP_STORED:
                offset = buf.tell()
                base = offset + 30 + len(name.encode()) + 4
                pad = (-base) % alignment
                info.extra = b"FB" + pad.to_bytes(2, "little") + b"Z" * pad
            z.writestr(info, data, compresslevel=9 if compression == zipfile.ZIP_DEFLATED else None)
    return buf.getvalue()


# ---------------------------------------------------------------------------------------------------
# Expectations: traversal, storage keys, hashes
# ---------------------------------------------------------------------------------------------------


class StorageRec:
    """What a persistent id says about a storage (key, element dtype, location, element count)."""

    def __init__(self, key, dtype, location, numel):
        self.key, self.dtype, self.location, self.numel = key, dtype, location, numel


class TensorRec:
    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), tuple(stride)


class ScriptObject:
    """Inert stand-in for TorchScript's `__torch__.*` module classes: BUILD sets attributes."""

    def __setstate__(self, state):
        self.__dict__.update(state if isinstance(state, dict) else {"_state": state})


def _rebuild_tensor(storage, storage_offset, size, stride, *_rest):
    return TensorRec(storage, storage_offset, size, stride)


class RecordUnpickler(pickle.Unpickler):
    """Re-reads a torch pickle without torch's loader, to learn each tensor's storage key.

    `persistent_load` turns every persistent id into a StorageRec (the key is the `data/<key>` entry name
    in zip/TorchScript archives and the storage record key in the legacy stream); the tensor rebuild
    functions produce TensorRec. Walking this record tree in the same order as the object that
    torch.load returns gives, tensor by tensor, the storage key; the two walks are zipped by name and
    cross-checked (name, shape, stride, offset must agree) so a mismatch fails loudly.
    """

    def persistent_load(self, pid):
        pid = tuple(x.decode("ascii") if isinstance(x, bytes) else x for x in pid)
        assert pid[0] == "storage", pid
        storage_type, key, location, numel = pid[1:5]
        if len(pid) > 5:
            assert pid[5] is None, "legacy storage views are not produced by torch >= 1.x"
        dtype = torch.uint8 if storage_type is torch.UntypedStorage else storage_type.dtype
        return StorageRec(str(key), dtype, location, numel)

    def find_class(self, module, name):
        if module == "torch._utils" and name in ("_rebuild_tensor_v2", "_rebuild_tensor"):
            return _rebuild_tensor
        if module == "torch._utils" and name in ("_rebuild_parameter", "_rebuild_parameter_with_state"):
            return lambda data, *rest: data
        if module == "torch._tensor" and name == "_rebuild_from_type_v2":
            return lambda func, new_type, args, state: func(*args)
        if module.startswith("__torch__"):
            return type(name, (ScriptObject,), {"__module__": module})
        return super().find_class(module, name)


def record_tree(data: bytes, fmt: str):
    if fmt == "legacy":
        f = io.BytesIO(data)
        for _ in range(3):  # magic number, protocol version, sys_info
            pickle.load(f)
        return RecordUnpickler(f).load()
    entries = dict(zip_entries(data))
    (pkl,) = [n for n in entries if n.count("/") == 1 and n.endswith("/data.pkl")]
    return RecordUnpickler(io.BytesIO(entries[pkl])).load()


def _is_leaf(obj) -> bool:
    return isinstance(obj, (torch.Tensor, torch.UntypedStorage, torch.storage.TypedStorage,
                            TensorRec, StorageRec))


def _key_str(k) -> str:
    if isinstance(k, str):
        return k
    if isinstance(k, bool) or not isinstance(k, int):
        return str(k)
    return str(int(k))


def walk(root):
    """Yield (dotted name, leaf) depth-first in insertion order.

    dict keys (int keys in decimal), list/tuple indices, object attributes (vars()). Each container is
    expanded at its first visit only (tracked by id()); every tensor or storage reached is yielded,
    so a tensor reachable under two names is yielded twice.
    """
    seen: set[int] = set()
    out = []

    def join(path, part):
        return part if path == "" else f"{path}.{part}"

    def visit(obj, path):
        if _is_leaf(obj):
            out.append((path, obj))
            return
        if isinstance(obj, dict):
            items = [(_key_str(k), v) for k, v in obj.items()]
        elif isinstance(obj, (list, tuple)):
            items = [(str(i), v) for i, v in enumerate(obj)]
        elif (hasattr(obj, "__dict__") and not isinstance(obj, type) and not callable(obj)
              and type(obj).__module__ != "builtins"):
            items = list(vars(obj).items())
        else:
            return
        if id(obj) in seen:
            return
        seen.add(id(obj))
        for part, v in items:
            visit(v, join(path, part))

    visit(root, "")
    return out


def _as_tensor(leaf) -> torch.Tensor:
    """A loaded tensor, or a bare storage viewed as a 1-D tensor of its element dtype."""
    if isinstance(leaf, torch.Tensor):
        return leaf.detach().cpu()
    if isinstance(leaf, torch.storage.TypedStorage):
        t = torch.tensor([], dtype=leaf.dtype)
        return t.set_(leaf._untyped_storage, 0, (leaf._size(),), (1,))
    if isinstance(leaf, torch.UntypedStorage):
        return torch.tensor([], dtype=torch.uint8).set_(leaf, 0, (leaf.nbytes(),), (1,))
    raise TypeError(type(leaf))


def tensor_sha256(t: torch.Tensor) -> str:
    flat = t.detach().cpu().contiguous().reshape(-1)
    return hashlib.sha256(flat.view(torch.uint8).numpy().tobytes()).hexdigest()


def tensor_entry(name, leaf, storage_key):
    t = _as_tensor(leaf)
    is_storage = not isinstance(leaf, torch.Tensor)
    return {
        "name": name,
        "dtype": DTYPE_NAMES[t.dtype],
        "shape": list(t.shape),
        "stride": list(t.stride()),
        "storage_offset": 0 if is_storage else t.storage_offset(),
        "storage_key": storage_key,
        "numel": t.numel(),
        "sha256": tensor_sha256(t),
    }


def _rec_geometry(rec):
    if isinstance(rec, TensorRec):
        return list(rec.size), list(rec.stride), rec.offset, rec.storage.key
    return [rec.numel], [1], 0, rec.key


def describe(data: bytes, fmt: str, loaded) -> list[dict]:
    """Expectations for every tensor in `loaded` (what torch.load returned for `data`)."""
    got = walk(loaded)
    recs = walk(record_tree(data, fmt))
    assert [n for n, _ in got] == [n for n, _ in recs], "record tree and torch.load disagree"
    entries = []
    for (name, leaf), (_, rec) in zip(got, recs):
        e = tensor_entry(name, leaf, None)
        shape, stride, offset, key = _rec_geometry(rec)
        assert (e["shape"], e["stride"], e["storage_offset"]) == (shape, stride, offset), name
        e["storage_key"] = key
        entries.append(e)
    return entries


def describe_torchscript(data: bytes, module) -> list[dict]:
    recs = dict(walk(record_tree(data, "torchscript")))
    named = dict(module.named_parameters()) | dict(module.named_buffers())
    entries = []
    for name, t in named.items():
        rec = recs.get(name)
        key = None
        e = tensor_entry(name, t, None)
        if isinstance(rec, TensorRec):
            shape, stride, offset, key = _rec_geometry(rec)
            assert (e["shape"], e["stride"], e["storage_offset"]) == (shape, stride, offset), name
        e["storage_key"] = key
        entries.append(e)
    return entries


# ---------------------------------------------------------------------------------------------------
# Fixture writing
# ---------------------------------------------------------------------------------------------------


def zip_prefix(data: bytes) -> str:
    (pkl,) = [n for n, _ in zip_entries(data) if n.count("/") == 1 and n.endswith("/data.pkl")]
    return pkl.split("/")[0]


def zip_byteorder(data: bytes) -> str:
    entries = {n.split("/", 1)[1]: d for n, d in zip_entries(data)}
    return entries["byteorder"].decode() if "byteorder" in entries else "little"


def try_load(data: bytes, **kwargs):
    try:
        return torch.load(io.BytesIO(data), map_location="cpu", **kwargs), None
    except Exception as e:  # noqa: BLE001 - the failure is the finding
        return None, f"{type(e).__name__}: {str(e).strip().splitlines()[-1] if str(e).strip() else ''}"


class Writer:
    def __init__(self, out: Path):
        self.out = out
        self.written: list[Path] = []
        self.notes: list[str] = []

    def _write(self, name: str, data: bytes) -> None:
        path = self.out / name
        path.write_bytes(data)
        self.written.append(path)

    def _expect(self, filename: str, body: dict) -> None:
        stem = filename.rsplit(".", 1)[0]
        text = json.dumps(body, sort_keys=True, indent=1, ensure_ascii=False) + "\n"
        self._write(f"{stem}.expected.json", text.encode())

    def checkpoint(self, filename: str, data: bytes, description: str, *, fmt: str | None = None,
                   extra: dict | None = None, reference=None) -> dict:
        """Write a torch.save-style checkpoint and its expectations.

        `reference`, when given, is the object the file must load to (values compared exactly).
        """
        if fmt is None:
            fmt = "zip" if data[:4] == b"PK\x03\x04" else "legacy"
        loaded, err = try_load(data, weights_only=False)
        _, wo_err = try_load(data, weights_only=True)
        if loaded is None:
            raise RuntimeError(f"{filename}: torch.load failed: {err}")
        if reference is not None:
            assert_same(reference, loaded, filename)
        body = {
            "file": filename,
            "description": description,
            "format": fmt,
            "prefix": zip_prefix(data) if fmt == "zip" else None,
            "byteorder": zip_byteorder(data) if fmt == "zip" else "little",
            "torch_loads": True,
            "torch_weights_only_loads": wo_err is None,
            "top_level_keys": [_key_str(k) for k in loaded] if isinstance(loaded, dict) else None,
            "tensors": describe(data, fmt, loaded),
        }
        if extra:
            body.update(extra)
        self._write(filename, data)
        self._expect(filename, body)
        return body

    def raw(self, filename: str, data: bytes) -> None:
        self._write(filename, data)


def assert_same(a, b, where):
    """Exact structural + bitwise equality of two loaded objects (tensors by bytes, NaN-safe)."""
    wa, wb = walk(a), walk(b)
    assert [n for n, _ in wa] == [n for n, _ in wb], where
    for (n, x), (_, y) in zip(wa, wb):
        tx, ty = _as_tensor(x), _as_tensor(y)
        assert tx.dtype == ty.dtype and tx.shape == ty.shape, (where, n)
        assert tensor_sha256(tx) == tensor_sha256(ty), (where, n)


# ---------------------------------------------------------------------------------------------------
# The fixtures
# ---------------------------------------------------------------------------------------------------


def fx_resnet(w: Writer, sd) -> None:
    w.checkpoint("tiny-resnet-basic.pth", save_bytes(sd),
                 "Bundled default: torchvision BasicBlock ResNet, layers [1,1,1,1], widths 8/16/32/64, "
                 "10 classes, eval mode, random BN statistics; zip format, protocol 2.",
                 extra={"architecture": {"block": "BasicBlock", "layers": [1, 1, 1, 1],
                                         "widths": [8, 16, 32, 64], "num_classes": 10}})
    w.checkpoint("tiny-resnet-basic-legacy.pth", save_legacy_bytes(sd),
                 "Same state dict as tiny-resnet-basic.pth in the legacy (pre-1.6) pickle stream; "
                 "storage keys are pointer-like numbers whose sort order differs from save order.",
                 reference=sd)


def fx_bottleneck(w: Writer) -> None:
    m = tiny_resnet(Bottleneck, (1, 1, 1, 1), widths=(8, 16, 32, 64), num_classes=5, groups=2,
                    width_per_group=32, seed_value=11)
    w.checkpoint("tiny-resnet-bottleneck.pth", save_bytes(m.state_dict()),
                 "torchvision Bottleneck ResNet (expansion 4), layers [1,1,1,1], widths 8/16/32/64, "
                 "groups 2, width_per_group 32, 5 classes (fc.weight [5, 256]); downsample in every "
                 "stage including layer1.",
                 extra={"architecture": {"block": "Bottleneck", "layers": [1, 1, 1, 1],
                                         "widths": [8, 16, 32, 64], "num_classes": 5, "groups": 2,
                                         "width_per_group": 32}})


def fx_protocols(w: Writer) -> None:
    sd = small_state_dict(20)
    for p in (4, 5):
        w.checkpoint(f"protocol{p}.pth", save_bytes(sd, pickle_protocol=p),
                     f"Small state dict (conv/bn/fc + an nn.Parameter) pickled with protocol {p} "
                     "(FRAME, SHORT_BINUNICODE, MEMOIZE, STACK_GLOBAL).",
                     extra={"pickle_protocol": p}, reference=sd)
    try:
        data = save_legacy_bytes(sd, pickle_protocol=1)
        loaded, err = try_load(data, weights_only=False)
        if loaded is None:
            raise RuntimeError(err)
    except Exception as e:  # noqa: BLE001
        w.notes.append(f"protocol1-legacy.pth skipped: {e}")
        return
    w.checkpoint("protocol1-legacy.pth", data,
                 "Small state dict in the legacy stream with pickle protocol 1 (BINPUT/BINGET, "
                 "no PROTO opcode, OrderedDict via REDUCE).",
                 extra={"pickle_protocol": 1}, reference=sd)


def fx_dtypes(w: Writer) -> None:
    seed(30)
    specials = [float("nan"), float("inf"), float("-inf"), -0.0, 0.0, 1.0, -2.5]
    sub32 = float(np.finfo(np.float32).smallest_subnormal)
    sub64 = float(np.finfo(np.float64).smallest_subnormal)
    sub16 = float(np.finfo(np.float16).smallest_subnormal)
    obj = {
        "float32": torch.tensor(specials + [sub32, 3.4028234663852886e38, 1e-3], dtype=torch.float32),
        "float64": torch.tensor(specials + [sub64, 1.7976931348623157e308, 1e-300], dtype=torch.float64),
        "float16": torch.tensor(specials + [sub16, 65504.0, 1e-3], dtype=torch.float16),
        "bfloat16": torch.tensor(specials + [9.183549615799121e-41, 3.3895313892515355e38, 1e-3],
                                 dtype=torch.bfloat16),
        "int64": torch.tensor([0, 1, -1, 2**63 - 1, -(2**63), 2**40], dtype=torch.int64),
        "int32": torch.tensor([0, 1, -1, 2**31 - 1, -(2**31)], dtype=torch.int32),
        "int16": torch.tensor([0, 1, -1, 2**15 - 1, -(2**15)], dtype=torch.int16),
        "int8": torch.tensor([0, 1, -1, 127, -128], dtype=torch.int8),
        "uint8": torch.tensor([0, 1, 127, 128, 255], dtype=torch.uint8),
        "bool": torch.tensor([True, False, False, True, True]),
        "matrix_float32": torch.randn(3, 4),
        "scalar_int64": torch.tensor(5),  # like num_batches_tracked
        "scalar_float32": torch.tensor(-1.25),
        "scalar_float16": torch.tensor(0.5, dtype=torch.float16),
        "scalar_bool": torch.tensor(True),
        "scalar_float64_nan": torch.tensor(float("nan"), dtype=torch.float64),
        "empty_float32": torch.empty(0, 3),
        "empty_int64_1d": torch.empty(0, dtype=torch.int64),
    }
    assert torch.isnan(obj["float32"][0]) and obj["float32"][7].item() == sub32 and sub32 > 0
    assert obj["bfloat16"][7].item() > 0 and obj["bfloat16"][7].item() < 1.1754943508222875e-38
    assert torch.signbit(obj["float16"][3])
    w.checkpoint("dtypes.pth", save_bytes(obj),
                 "One tensor per dtype (float32/64/16, bfloat16, int64/32/16/8, uint8, bool); float "
                 "ones hold NaN, +inf, -inf, -0.0, 0, 1, -2.5, the smallest subnormal, the largest "
                 "finite value and 1e-3 (or 1e-300); 0-dim tensors; empty tensors.",
                 reference=obj)


def fx_views(w: Writer) -> None:
    seed(40)
    conv = torch.randn(8, 4, 3, 3).contiguous(memory_format=torch.channels_last)
    a = torch.randn(3, 5)
    b = torch.randn(6, 4)
    c = torch.randn(2, 3, 4)
    obj = {
        "channels_last": conv,
        "transposed": a.t(),
        "sliced": b[2:5, 1:],
        "expanded": torch.arange(3.0).expand(4, 3),
        "permuted": c.permute(2, 0, 1),
        "contiguous": torch.randn(2, 2),
    }
    assert conv.stride() == (36, 1, 12, 4)
    for k in ("channels_last", "transposed", "sliced", "expanded", "permuted"):
        assert not obj[k].is_contiguous(), k
    body = w.checkpoint("views.pth", save_bytes(obj),
                        "Views saved as they are: channels_last conv weight [8,4,3,3] strides "
                        "(36,1,12,4); a transposed 2-D view; a slice with storage offset 9 of a [6,4] "
                        "storage; a zero-stride expand; a permuted 3-D tensor; one contiguous tensor.",
                        reference=obj)
    # the expectations must really carry the non-contiguous geometry
    by = {t["name"]: t for t in body["tensors"]}
    assert by["channels_last"]["stride"] == [36, 1, 12, 4]
    assert by["transposed"]["stride"] == [1, 5]
    assert by["sliced"]["storage_offset"] == 9 and by["sliced"]["stride"] == [4, 1]
    assert by["expanded"]["stride"] == [0, 1]
    assert by["permuted"]["stride"] == [1, 12, 4]


def fx_shared(w: Writer) -> None:
    seed(50)
    big = torch.randn(100)
    obj = {"a": big[:10], "b": big[10:40].view(5, 6), "c": big, "d": big[50:].view(10, 5).t(),
           "e": big[99:]}
    data = save_bytes(obj)
    storages = [n for n, _ in zip_entries(data) if "/data/" in n]
    assert len(storages) == 1, storages
    body = w.checkpoint("shared-storage.pth", data,
                        "Five views of one 100-element float32 storage at offsets 0, 10, 0, 50, 99; "
                        "the archive has a single data/ entry.", reference=obj)
    assert {t["storage_key"] for t in body["tensors"]} == {"0"}


def fx_cuda_tagged(w: Writer) -> None:
    sd = small_state_dict(60)
    import torch.serialization as ser

    def tag(storage):
        return "cuda:0" if storage.device.type == "cpu" else None

    def restore(storage, location):
        return None

    ser.register_package(-100, tag, restore)
    elem = next(e for e in ser._package_registry if e[1] is tag)
    try:
        data = save_bytes(sd)
    finally:
        ser._package_registry.remove(elem)
    pkl = next(d for n, d in zip_entries(data) if n.endswith("/data.pkl"))
    assert b"cuda:0" in pkl and b"cpu" not in pkl
    recs = walk(record_tree(data, "zip"))
    assert all(r.storage.location == "cuda:0" for _, r in recs)
    w.checkpoint("cuda-tagged.pth", data,
                 "Small state dict whose storages are all recorded with location 'cuda:0' (written "
                 "without a GPU); load with map_location='cpu'.",
                 extra={"location": "cuda:0"}, reference=sd)


def fx_training(w: Writer, model: TinyResNet) -> None:
    seed(70)
    m = copy.deepcopy(model).train()
    opt = torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=30, gamma=0.1)
    x = torch.randn(4, 3, 32, 32)
    y = torch.tensor([0, 3, 7, 9])
    loss = nn.functional.cross_entropy(m(x), y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    sched.step()
    m.eval()
    ckpt = {
        "model": m.state_dict(),
        "optimizer": opt.state_dict(),
        "lr_scheduler": sched.state_dict(),
        "epoch": 3,
        "args": argparse.Namespace(lr=0.1, epochs=90, model="resnet-tiny", data_path="/data"),
    }
    assert all("momentum_buffer" in s for s in ckpt["optimizer"]["state"].values())
    w.checkpoint("training-checkpoint.pth", save_bytes(ckpt),
                 "torchvision reference-script style: model (after one SGD step in train mode), "
                 "optimizer (SGD momentum 0.9, momentum buffers present), lr_scheduler (StepLR), "
                 "epoch, args (argparse.Namespace).", reference=ckpt)


def fx_wrapped(w: Writer, sd) -> None:
    w.checkpoint("state-dict-wrapped.pth", save_bytes({"state_dict": sd}),
                 "{'state_dict': <tiny-resnet-basic state dict>}")
    w.checkpoint("model-state-dict-wrapped.pth", save_bytes({"model_state_dict": sd, "epoch": 1}),
                 "{'model_state_dict': <tiny-resnet-basic state dict>, 'epoch': 1}")
    dp = torch.nn.DataParallel(copy.deepcopy(_MODEL)).state_dict()
    assert all(k.startswith("module.") for k in dp)
    w.checkpoint("dataparallel.pth", save_bytes(dp),
                 "torch.nn.DataParallel(model).state_dict(): tiny-resnet-basic with 'module.' prefixes.")
    compiled = torch.compile(copy.deepcopy(_MODEL)).state_dict()  # never run, never compiled
    assert all(k.startswith("_orig_mod.") for k in compiled)
    w.checkpoint("compiled.pth", save_bytes(compiled),
                 "torch.compile(model).state_dict(): tiny-resnet-basic with '_orig_mod.' prefixes.")


def fx_torchscript(w: Writer, model: TinyResNet) -> None:
    with _relative_sources():
        try:
            scripted = torch.jit.script(copy.deepcopy(model))
            how = "torch.jit.script"
        except Exception as e:  # noqa: BLE001
            w.notes.append(f"torch.jit.script failed ({e}); traced instead")
            scripted = torch.jit.trace(copy.deepcopy(model), torch.randn(1, 3, 32, 32))
            how = "torch.jit.trace"
        buf = io.BytesIO()
        torch.jit.save(scripted, buf)
    data = buf.getvalue()
    for n, d in zip_entries(data):
        assert str(REPO).encode() not in d, f"absolute path leaked into {n}"
    back = torch.jit.load(io.BytesIO(data), map_location="cpu")
    assert_same(dict(model.state_dict()), dict(back.state_dict()), "torchscript")
    _, wo_err = try_load(data, weights_only=True)
    body = {
        "file": "torchscript-tiny.pt",
        "description": f"{how}(tiny-resnet-basic model) saved with torch.jit.save. Parameters are "
                       "attributes of __torch__.* objects in data.pkl; code/ holds TorchScript source "
                       "that must never be interpreted.",
        "format": "torchscript",
        "prefix": zip_prefix(data),
        "byteorder": zip_byteorder(data),
        "torch_loads": True,  # via torch.jit.load (torch.load dispatches there when weights_only=False)
        "torch_weights_only_loads": wo_err is None,
        "top_level_keys": None,
        "tensors": describe_torchscript(data, back),
    }
    w.raw("torchscript-tiny.pt", data)
    w._expect("torchscript-tiny.pt", body)


def fx_big_endian(w: Writer) -> None:
    seed(90)
    obj = {
        "weight": torch.randn(3, 4),
        "half": torch.randn(5).half(),
        "index": torch.tensor([1, -2, 2**40], dtype=torch.int64),
        "bf16": torch.randn(2, 3).bfloat16(),
        "num_batches_tracked": torch.tensor(7),
        "mask": torch.tensor([True, False, True]),
        "int32_t": torch.tensor([[1, 2], [3, -4]], dtype=torch.int32).t(),
    }
    little = save_bytes(obj)
    dtypes = {}
    for _, rec in walk(record_tree(little, "zip")):
        dtypes[rec.storage.key] = rec.storage.dtype
    out = []
    for name, data in zip_entries(little):
        prefix, rest = name.split("/", 1)
        if rest == "byteorder":
            assert data == b"little"
            data = b"big"
        elif rest.startswith("data/"):
            size = torch.empty((), dtype=dtypes[rest[5:]]).element_size()
            if size > 1:
                data = np.frombuffer(data, dtype=f"<u{size}").byteswap().tobytes()
        out.append((name, data))
    big = write_zip_like_torch(out)
    w.checkpoint("big-endian.pth", big,
                 "A small multi-dtype state dict (float32, float16, int64, bfloat16, 0-dim int64, bool, "
                 "a transposed int32) as a big-endian machine writes it: byteorder 'big', each data/ "
                 "entry byte-swapped per element size. Re-packed with Python's zipfile (stored, 64-byte "
                 "aligned data, 'FB' padding extra field). Tensor hashes are of little-endian values.",
                 reference=obj)


def fx_custom_prefix(w: Writer) -> None:
    sd = small_state_dict(100)
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "my_model_v2.pth"
        torch.save(sd, p)
        data = p.read_bytes()
    assert zip_prefix(data) == "my_model_v2"
    w.checkpoint("custom-prefix.pth", data,
                 "Small state dict saved to a path named my_model_v2.pth, so every entry lives under "
                 "'my_model_v2/' rather than 'archive/'.", reference=sd)


def fx_untyped(w: Writer) -> None:
    seed(110)
    t = torch.arange(12, dtype=torch.uint8).view(3, 4)
    f = torch.randn(4)
    g = torch.arange(5, dtype=torch.int32)
    obj = {"raw": t.untyped_storage(), "t": t, "raw_f32_bytes": f.untyped_storage(),
           "typed_int32": g.storage()}
    w.checkpoint("untyped-storage.pth", save_bytes(obj),
                 "Bare storages: 'raw' is the UntypedStorage of uint8 tensor 't' (same storage key); "
                 "'raw_f32_bytes' is the 16-byte UntypedStorage of a float32 tensor (listed as uint8); "
                 "'typed_int32' is a TypedStorage (listed as int32). torch.load returns TypedStorage "
                 "objects for all bare storages.", reference=obj)


def fx_deflated(w: Writer) -> None:
    sd = small_state_dict(120)
    data = write_zip_like_torch(zip_entries(save_bytes(sd)), compression=zipfile.ZIP_DEFLATED)
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        assert all(i.compress_type == zipfile.ZIP_DEFLATED for i in z.infolist())
    loaded, err = try_load(data, weights_only=False)
    if loaded is not None:
        w.checkpoint("deflated.pth", data,
                     "Small state dict re-packed with every entry ZIP_DEFLATED (level 9).",
                     reference=sd)
        return
    # torch refuses: still describe what is inside, from the stored twin
    w.notes.append(f"deflated.pth: torch.load refuses it ({err})")
    stored = save_bytes(sd)
    ref = torch.load(io.BytesIO(stored), weights_only=False)
    body = {
        "file": "deflated.pth",
        "description": "Small state dict re-packed with every entry ZIP_DEFLATED (level 9). torch "
                       f"refuses it: {err}",
        "format": "zip",
        "prefix": zip_prefix(data),
        "byteorder": zip_byteorder(data),
        "torch_loads": False,
        "torch_weights_only_loads": False,
        "top_level_keys": [_key_str(k) for k in ref],
        "tensors": describe(stored, "zip", ref),
    }
    w.raw("deflated.pth", data)
    w._expect("deflated.pth", body)


# ---------------------------------------------------------------------------------------------------
# Plain pickles
# ---------------------------------------------------------------------------------------------------


def make_plain():
    shared = [9, 9]
    return {"int": 7, "neg": -300, "big": 2**70, "huge": -(2**2100), "float": 1.5e-3,
            "str": "h\u00e9llo \u2713", "bytes": b"\x00\xffab", "list": [1, [2, 3], (4, 5)],
            "tuple": (), "none": None, "t": True, "f": False, "shared": [shared, shared],
            "intkey": {1: "one", 2: "two"}}


def tagged(v):
    """JSON-safe, type-tagged rendering of a plain Python value (ints as decimal strings)."""
    if v is None:
        return {"none": None}
    if isinstance(v, bool):
        return {"bool": v}
    if isinstance(v, int):
        return {"int": str(v)}
    if isinstance(v, float):
        return {"float": v, "float_hex": v.hex()}
    if isinstance(v, str):
        return {"str": v}
    if isinstance(v, bytes):
        return {"bytes_hex": v.hex()}
    if isinstance(v, list):
        return {"list": [tagged(x) for x in v]}
    if isinstance(v, tuple):
        return {"tuple": [tagged(x) for x in v]}
    if isinstance(v, dict):
        return {"dict": [[tagged(k), tagged(x)] for k, x in v.items()]}
    raise TypeError(type(v))


def write_pickles(out: Path) -> list[Path]:
    written = []
    files = {}
    for proto in range(6):
        data = pickle.dumps(make_plain(), protocol=proto)  # fresh object each time: real memo sharing
        back = pickle.loads(data)
        assert back == make_plain() and back["shared"][0] is back["shared"][1]
        p = out / f"plain-protocol{proto}.pkl"
        p.write_bytes(data)
        written.append(p)
        files[p.name] = {"protocol": proto, "sha256": hashlib.sha256(data).hexdigest(),
                         "size": len(data),
                         "opcodes": sorted({op.name for op, _, _ in pickletools.genops(data)})}
    body = {
        "description": "pickle.dumps(PLAIN, protocol=N) for N = 0..5 with CPython "
                       f"{sys.version.split()[0]}. 'value' is PLAIN in tagged form (ints as decimal "
                       "strings). PLAIN['shared'][0] and PLAIN['shared'][1] are the same list object "
                       "(a memo GET in every protocol); PLAIN['list'][2] and PLAIN['tuple'] are tuples.",
        "value": tagged(make_plain()),
        "shared_identity": [["shared", "0"], ["shared", "1"]],
        "files": files,
    }
    p = out / "plain.expected.json"
    p.write_text(json.dumps(body, sort_keys=True, indent=1, ensure_ascii=False) + "\n")
    written.append(p)
    return written


# ---------------------------------------------------------------------------------------------------
# Driver
# ---------------------------------------------------------------------------------------------------

_MODEL: TinyResNet


def generate(root: Path) -> list[str]:
    global _MODEL
    ckpt_dir, pkl_dir = root / "checkpoints", root / "pickles"
    for d in (ckpt_dir, pkl_dir):
        if d.exists():
            shutil.rmtree(d)
        d.mkdir(parents=True)

    w = Writer(ckpt_dir)
    _MODEL = tiny_resnet(BasicBlock, (1, 1, 1, 1), widths=(8, 16, 32, 64), num_classes=10, seed_value=1)
    sd = _MODEL.state_dict()
    fx_resnet(w, sd)
    fx_bottleneck(w)
    fx_protocols(w)
    fx_dtypes(w)
    fx_views(w)
    fx_shared(w)
    fx_cuda_tagged(w)
    fx_training(w, _MODEL)
    fx_wrapped(w, sd)
    fx_torchscript(w, _MODEL)
    fx_big_endian(w)
    fx_custom_prefix(w)
    fx_untyped(w)
    fx_deflated(w)
    written = w.written + write_pickles(pkl_dir)

    total = sum(p.stat().st_size for p in written)
    for p in written:
        assert p.stat().st_size <= MAX_FILE_BYTES, f"{p.name} is over 1 MiB"
    assert total <= MAX_TOTAL_BYTES, f"fixtures total {total} bytes"
    for p in written:
        print(f"{p.stat().st_size:>9}  {p.relative_to(root)}")
    print(f"{total:>9}  total ({len(written)} files)")
    for n in w.notes:
        print("note:", n)
    # independent, torch-free cross-check of every expectations file against the raw bytes
    sys.path.insert(0, str(HERE))
    import verify_expectations

    for p in sorted(ckpt_dir.glob("*.expected.json")):
        verify_expectations.check(p)
    print("expectations verified against raw bytes (verify_expectations.py)")
    return w.notes


def digests(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and p.suffix != ".py" and p.name != "README.md"}


def check_determinism() -> int:
    """Generate twice, in two fresh processes, into two temporary trees; compare all bytes."""
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(2):
            out = Path(tmp) / f"run{i}"
            subprocess.run([sys.executable, __file__, "--out", str(out)], check=True,
                           stdout=subprocess.DEVNULL)
            results.append(digests(out))
    a, b = results
    bad = sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))
    if bad:
        print("NOT deterministic:", *bad, sep="\n  ")
        return 1
    print(f"deterministic: {len(a)} files byte-identical across two runs")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=HERE,
                    help="root to write checkpoints/ and pickles/ under (default: Fixtures/)")
    ap.add_argument("--check-determinism", action="store_true",
                    help="generate twice into temporary directories and compare sha256 of every file")
    args = ap.parse_args()
    if args.check_determinism:
        return check_determinism()
    generate(args.out.resolve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
