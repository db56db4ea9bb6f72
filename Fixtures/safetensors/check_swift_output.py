#!/usr/bin/env python3
"""Checks the files the Swift writer wrote, with Python's own `safetensors`, and records a verdict.

    TORCHPORT_REGENERATE_SAFETENSORS=1 swift test --filter SafeTensors   # writes swift-written/
    .venv-torch/bin/python Fixtures/safetensors/check_swift_output.py     # writes python-verdict.json

For every `swift-written/*.safetensors`:
  * Python loads it (`safetensors.deserialize` for raw bytes, `safetensors.torch.load_file`);
  * its tensors (names, dtypes, shapes, sha256 of raw bytes, file order) and metadata match the
    expectation: `python-written/<name>.expected.json` for rewritten Python files, the byte
    pattern of `swift-cases.json` for the Swift-built cases;
  * it is byte-identical to what Python writes for the same tensors and metadata (the Python file
    itself, or `safetensors.torch.save` of the pattern tensors), except for the order of metadata
    keys when there are two or more (Python's order is a hash map's; Swift sorts by UTF-8 bytes),
    and except for `asGiven` cases, which are written in the order given on purpose.

`python-verdict.json` records the sha256 of each file it judged, so `swift test` (no Python) can
check that the verdict is about the committed bytes.
"""
import hashlib
import json
import os
import struct
import sys

import torch
import safetensors
import safetensors.torch

HERE = os.path.dirname(os.path.abspath(__file__))
PY_DIR = os.path.join(HERE, "python-written")
SWIFT_DIR = os.path.join(HERE, "swift-written")

TORCH = {
    "BOOL": torch.bool, "U8": torch.uint8, "I8": torch.int8, "I16": torch.int16,
    "F16": torch.float16, "BF16": torch.bfloat16, "I32": torch.int32, "F32": torch.float32,
    "C64": torch.complex64, "F64": torch.float64, "I64": torch.int64,
}
SIZE = {"BOOL": 1, "U8": 1, "I8": 1, "I16": 2, "F16": 2, "BF16": 2, "I32": 4, "F32": 4,
        "C64": 8, "F64": 8, "I64": 8}


def split(data):
    (n,) = struct.unpack("<Q", data[:8])
    pairs = json.loads(data[8:8 + n].decode("utf-8"), object_pairs_hook=list)
    return n, pairs, data[8 + n:]


def pattern(i, dtype, count):
    if dtype == "BOOL":
        return bytes((i + j) % 2 for j in range(count))
    return bytes((31 * j + 7 * (i + 1)) % 256 for j in range(count))


def tensor_from(raw, dtype, shape):
    if len(raw) == 0:
        return torch.empty(shape, dtype=TORCH[dtype])
    return torch.frombuffer(bytearray(raw), dtype=torch.uint8).view(TORCH[dtype]).reshape(shape).clone()


def raw_of(t):
    t = t.contiguous().reshape(-1)
    return t.view(torch.uint8).numpy().tobytes() if t.numel() else b""


def compare_with_python(swift, python, problems, notes):
    """Byte identity, or identity except for the order of metadata keys."""
    if swift == python:
        notes["byte_identical_to_python"] = True
        return
    notes["byte_identical_to_python"] = False
    sn, spairs, sdata = split(swift)
    pn, ppairs, pdata = split(python)
    smeta = dict(next((v for k, v in spairs if k == "__metadata__"), []) or [])
    pmeta = dict(next((v for k, v in ppairs if k == "__metadata__"), []) or [])
    same = (sn == pn and sdata == pdata and smeta == pmeta and len(pmeta) >= 2
            and [p for p in spairs if p[0] != "__metadata__"] == [p for p in ppairs if p[0] != "__metadata__"])
    notes["identical_except_metadata_order"] = same
    if not same:
        problems.append("differs from Python's serialization beyond the order of metadata keys")


def check_common(path, data, problems):
    """Loads with Python; returns {name: (dtype, shape, raw)} in file order, and the metadata."""
    with safetensors.safe_open(path, framework="pt") as f:
        opened = {k: raw_of(f.get_tensor(k)) for k in f.keys()}
        opened_metadata = f.metadata()
    n, pairs, buffer = split(data)
    if n % 8 != 0:
        problems.append(f"header length {n} is not a multiple of 8")
    header_text = data[8:8 + n].decode("utf-8")
    if header_text != header_text.rstrip(" ") + " " * (len(header_text) - len(header_text.rstrip(" "))):
        problems.append("header padding is not spaces")
    metadata = dict(next((v for k, v in pairs if k == "__metadata__"), []) or []) or None
    if any(k == "__metadata__" for k, _ in pairs):
        keys = [k for k, _ in next(v for k, v in pairs if k == "__metadata__")]
        if keys != sorted(keys, key=lambda s: s.encode("utf-8")):
            problems.append("metadata keys are not sorted by UTF-8 bytes")
        if metadata is None:
            metadata = {}
    raw = {name: info for name, info in safetensors.deserialize(data)}
    order = [k for k, v in sorted(((k, dict(v)) for k, v in pairs if k != "__metadata__"),
                                  key=lambda kv: tuple(kv[1]["data_offsets"]))]
    loaded = safetensors.torch.load(data)
    out = {}
    for name in order:
        info = raw[name]
        out[name] = (info["dtype"], list(info["shape"]), bytes(info["data"]))
        if raw_of(loaded[name]) != bytes(info["data"]):
            problems.append(f"{name}: torch's load disagrees with the raw bytes")
        if opened.get(name) != bytes(info["data"]):
            problems.append(f"{name}: safe_open disagrees with the raw bytes")
    if (opened_metadata or None) != (metadata or None):
        problems.append(f"safe_open's metadata {opened_metadata!r} differs from the header's")
    return out, metadata, order


def judge_rewrite(name, path, data, problems, notes):
    expected = json.load(open(os.path.join(PY_DIR, name + ".expected.json"), encoding="utf-8"))
    tensors, metadata, order = check_common(path, data, problems)
    if metadata != expected["metadata"]:
        problems.append(f"metadata {metadata!r} != {expected['metadata']!r}")
    if order != [t["name"] for t in expected["tensors"]]:
        problems.append(f"tensor order {order} differs from Python's")
    for t in expected["tensors"]:
        got = tensors.get(t["name"])
        if got is None:
            problems.append(f"{t['name']}: missing")
            continue
        dtype, shape, raw = got
        if dtype != t["dtype"] or shape != t["shape"] or hashlib.sha256(raw).hexdigest() != t["sha256"]:
            problems.append(f"{t['name']}: {dtype} {shape} sha256 differ from the expectation")
    with open(os.path.join(PY_DIR, name + ".safetensors"), "rb") as f:
        compare_with_python(data, f.read(), problems, notes)


def judge_pattern(case, path, data, problems, notes):
    tensors, metadata, order = check_common(path, data, problems)
    if metadata != case["metadata"]:
        problems.append(f"metadata {metadata!r} != {case['metadata']!r}")
    built = {}
    for i, t in enumerate(case["tensors"]):
        count = SIZE[t["dtype"]]
        for d in t["shape"]:
            count *= d
        want = pattern(i, t["dtype"], count)
        built[t["name"]] = tensor_from(want, t["dtype"], t["shape"])
        got = tensors.get(t["name"])
        if got is None:
            problems.append(f"{t['name']}: missing")
        elif got != (t["dtype"], t["shape"], want):
            problems.append(f"{t['name']}: dtype, shape or bytes differ from the pattern")
    if case["order"] == "asGiven":
        if order != [t["name"] for t in case["tensors"]]:
            problems.append(f"order {order} is not the order given")
        notes["byte_identical_to_python"] = None
        notes["note"] = "written in the order given (asGiven), which Python's writer does not offer"
    else:
        python = safetensors.torch.save(built, metadata=case["metadata"])
        compare_with_python(data, python, problems, notes)


def main():
    cases = {c["file"]: c for c in json.load(open(os.path.join(HERE, "swift-cases.json"), encoding="utf-8"))["cases"]}
    files = {}
    for fname in sorted(os.listdir(SWIFT_DIR)):
        if not fname.endswith(".safetensors"):
            continue
        path = os.path.join(SWIFT_DIR, fname)
        with open(path, "rb") as f:
            data = f.read()
        problems, notes = [], {}
        try:
            if fname in cases:
                judge_pattern(cases[fname], path, data, problems, notes)
            elif os.path.exists(os.path.join(PY_DIR, fname[:-len(".safetensors")] + ".expected.json")):
                judge_rewrite(fname[:-len(".safetensors")], path, data, problems, notes)
            else:
                problems.append("no expectation for this file")
        except Exception as e:  # a file Python cannot read is a failed verdict, not a crash
            problems.append(f"{type(e).__name__}: {e}")
        files[fname] = dict(sha256=hashlib.sha256(data).hexdigest(), ok=not problems,
                            problems=problems, **notes)
        print(("ok  " if not problems else "FAIL") + f" {fname} {notes}" + "".join(f"\n     {p}" for p in problems))
    missing = sorted(set(cases) - set(files))
    verdict = {
        "ok": bool(files) and all(f["ok"] for f in files.values()) and not missing,
        "missing": missing,
        "safetensors_version": safetensors.__version__,
        "torch_version": torch.__version__.split("+")[0],
        "files": files,
    }
    with open(os.path.join(HERE, "python-verdict.json"), "w", encoding="utf-8") as f:
        json.dump(verdict, f, indent=1, ensure_ascii=False, sort_keys=True)
        f.write("\n")
    print("verdict:", "ok" if verdict["ok"] else "FAILED")
    return 0 if verdict["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
