#!/usr/bin/env python3
"""Check every Fixtures/checkpoints/*.expected.json against the raw bytes of its checkpoint.

Needs no torch, only numpy and the standard library (so any python3 with numpy will do):

    python3 Fixtures/verify_expectations.py [ROOT]

For each listed tensor it takes the storage bytes named by `storage_key` (the zip entry
`<prefix>/data/<key>`, or the record in the legacy stream), byte-swaps them if `byteorder` is `big`,
applies `storage_offset`, `shape` and `stride` (in elements) and compares the sha256 of the
row-major result with `sha256`. It does what a correct reader does, independently of the generator's
torch-based path, so a wrong key, stride or offset in an expectations file fails here. It also
checks `prefix`, `byteorder`, that `numel` matches `shape`, and that every view stays inside its
storage.
"""
from __future__ import annotations

import hashlib
import io
import json
import math
import pickle
import pickletools
import sys
import zipfile
from pathlib import Path

import numpy as np

ELEMENT_SIZE = {"float32": 4, "float64": 8, "float16": 2, "bfloat16": 2, "int64": 8, "int32": 4,
                "int16": 2, "int8": 1, "uint8": 1, "bool": 1}


def zip_storages(data: bytes, exp: dict) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        names = z.namelist()
        (pkl,) = [n for n in names if n.count("/") == 1 and n.endswith("/data.pkl")]
        prefix = pkl.split("/")[0]
        assert prefix == exp["prefix"], (prefix, exp["prefix"])
        order = f"{prefix}/byteorder"
        byteorder = z.read(order).decode() if order in names else "little"
        assert byteorder == exp["byteorder"], (byteorder, exp["byteorder"])
        return {n[len(prefix) + 6:]: z.read(n) for n in names if n.startswith(f"{prefix}/data/")}


def legacy_storages(data: bytes, key_sizes: dict[str, int]) -> dict[str, bytes]:
    f = io.BytesIO(data)
    for _ in range(4):  # magic number, protocol version, sys_info, main pickle: skip to STOP
        for op, _, _ in pickletools.genops(f):
            if op.name == "STOP":
                break
    keys = pickle.load(f)  # a plain list of str
    assert keys == sorted(keys), "legacy storage keys must be sorted"
    out = {}
    for key in keys:
        count = int.from_bytes(f.read(8), "little")
        nbytes = count * key_sizes.get(key, 1)
        out[key] = f.read(nbytes)
        assert len(out[key]) == nbytes, f"storage {key} truncated"
    assert f.read() == b"", "trailing bytes after the last storage"
    return out



def check(path: Path) -> int:
    exp = json.loads(path.read_text())
    data = (path.parent / exp["file"]).read_bytes()
    tensors = exp["tensors"]
    if exp["format"] == "legacy":
        assert exp["prefix"] is None
        sizes = {t["storage_key"]: ELEMENT_SIZE[t["dtype"]] for t in tensors}
        storages = legacy_storages(data, sizes)
    else:
        storages = zip_storages(data, exp)
    for t in tensors:
        where = f"{exp['file']}: {t['name']}"
        assert t["numel"] == math.prod(t["shape"]), where
        assert len(t["shape"]) == len(t["stride"]), where
        if t["storage_key"] is None:
            continue
        size = ELEMENT_SIZE[t["dtype"]]
        raw = storages[t["storage_key"]]
        assert len(raw) % size == 0, where
        elems = np.frombuffer(raw, dtype=f"<u{size}")
        if exp["byteorder"] == "big" and size > 1:
            elems = elems.byteswap()
        if t["numel"] == 0:
            values = b""
        else:
            last = t["storage_offset"] + sum((n - 1) * s for n, s in zip(t["shape"], t["stride"]))
            assert 0 <= t["storage_offset"] and last < len(elems), f"{where}: view outside storage"
            view = np.lib.stride_tricks.as_strided(
                elems[t["storage_offset"]:], shape=t["shape"],
                strides=[s * size for s in t["stride"]], writeable=False)
            values = np.ascontiguousarray(view).astype(f"<u{size}").tobytes()
        assert hashlib.sha256(values).hexdigest() == t["sha256"], f"{where}: sha256 mismatch"
    return len(tensors)


def main() -> int:
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent
    files = sorted((root / "checkpoints").glob("*.expected.json"))
    n = sum(check(p) for p in files)
    print(f"verified {n} tensors in {len(files)} expectations files against raw bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
