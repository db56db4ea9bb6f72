#!/usr/bin/env python3
"""Compare Torchport's checkpoint loading with torch.load: time and peak memory.

    .venv-torch/bin/python Benchmarks/load_vs_torch.py [--file F] [--repeat N] [--swift-bin PATH] [--json]

1. Makes F if it is absent (a ResNet-50 state dict, see make_resnet50.py).
2. Runs `PATH load F --repeat N`. This is the Swift benchmark binary, by default
   .build/release/torchport-bench (swift build -c release --product torchport-bench). It prints one JSON object on stdout:
   {"median_ms", "min_ms", "max_ms", "peak_rss_bytes", "tensors", "bytes"}.
3. In this (warm) Python process, times `torch.load(F, weights_only=True, map_location="cpu")`
   N times after one warm-up load (time.perf_counter; median/min/max).
4. Measures torch's peak RSS in a fresh Python process that only imports torch and loads F once.
   It reports the absolute peak, and the peak during the load minus the RSS right after
   `import torch` (see RSS_PROBE).
5. Prints a side-by-side table, or a JSON summary with --json.

If the Swift binary is missing or fails, the torch half is still measured and reported.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.dont_write_bytecode = True  # importing sibling scripts must not leave __pycache__ behind
DEFAULT_FILE = HERE / "generated" / "resnet50.pth"
DEFAULT_BIN = HERE.parent / ".build" / "release" / "torchport-bench"

# Runs in a fresh interpreter. Importing torch alone sets a high-water mark of hundreds of MiB
# (shared libraries), so on Linux the probe resets the peak after the import (`5` to
# /proc/self/clear_refs) and reads VmHWM after the load. Elsewhere it falls back to ru_maxrss, which
# then includes the import.
RSS_PROBE = r"""
import gc, json, resource, sys

def status(field):
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None

def maxrss():
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r if sys.platform == "darwin" else r * 1024   # macOS: bytes, Linux: KiB

import torch
gc.collect()
import_peak = maxrss()
baseline = status("VmRSS")
try:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    reset = status("VmHWM") is not None
except OSError:
    reset = False
obj = torch.load(sys.argv[1], weights_only=True, map_location="cpu")
peak = status("VmHWM") if reset else maxrss()
print(json.dumps({"import_rss_bytes": baseline, "import_peak_rss_bytes": import_peak,
                  "peak_rss_bytes": peak, "peak_reset_after_import": reset,
                  "after_load_rss_bytes": status("VmRSS"), "lifetime_peak_rss_bytes": maxrss()}))
"""


def fmt_bytes(n: float | None) -> str:
    if n is None:
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError


def fmt_ms(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f} ms"


def count_tensors(obj) -> tuple[int, int]:
    """(number of tensors, their total bytes) reachable through dicts/lists/tuples."""
    import torch

    seen: set[int] = set()
    n = nbytes = 0
    stack = [obj]
    while stack:
        o = stack.pop()
        if isinstance(o, torch.Tensor):
            n += 1
            nbytes += o.numel() * o.element_size()
        elif isinstance(o, (dict, list, tuple)) and id(o) not in seen:
            seen.add(id(o))
            stack.extend(o.values() if isinstance(o, dict) else o)
    return n, nbytes


def run_swift(binary: Path, file: Path, repeat: int) -> dict:
    if not binary.exists():
        return {"error": f"not built: {binary}"}
    cmd = [str(binary), "load", str(file), "--repeat", str(repeat)]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
    except (OSError, subprocess.TimeoutExpired) as e:
        return {"error": f"{' '.join(cmd)}: {e}"}
    if p.returncode != 0:
        return {"error": f"{' '.join(cmd)} exited {p.returncode}: {p.stderr.strip()[-500:]}"}
    for line in reversed(p.stdout.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except json.JSONDecodeError:
                break
    return {"error": f"no JSON object on stdout of {' '.join(cmd)}: {p.stdout.strip()[-500:]!r}"}


def time_torch(file: Path, repeat: int) -> dict:
    import torch

    obj = torch.load(file, weights_only=True, map_location="cpu")  # warm-up: page cache, imports
    tensors, nbytes = count_tensors(obj)
    del obj
    gc.collect()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        obj = torch.load(file, weights_only=True, map_location="cpu")
        times.append((time.perf_counter() - t0) * 1000)
        del obj
        gc.collect()
    return {"median_ms": statistics.median(times), "min_ms": min(times), "max_ms": max(times),
            "tensors": tensors, "bytes": nbytes, "torch_version": torch.__version__,
            "threads": torch.get_num_threads()}


def torch_peak_rss(file: Path) -> dict:
    p = subprocess.run([sys.executable, "-c", RSS_PROBE, str(file)], capture_output=True, text=True,
                       timeout=3600)
    if p.returncode != 0:
        return {"error": p.stderr.strip()[-500:]}
    r = json.loads(p.stdout.strip().splitlines()[-1])
    base = r["import_rss_bytes"] if r["import_rss_bytes"] is not None else r["import_peak_rss_bytes"]
    r["delta_peak_rss_bytes"] = r["peak_rss_bytes"] - base
    return r


def ensure_file(file: Path) -> bool:
    if file.exists():
        return False
    sys.path.insert(0, str(HERE))
    import make_resnet50

    stem = file.stem
    if stem.endswith("-legacy"):  # make both, keep the legacy one under the requested name
        base = file.with_name(stem[: -len("-legacy")] + file.suffix)
        make_resnet50.make(base, legacy=True)
    else:
        make_resnet50.make(file)
    assert file.exists(), file
    return True


def table(s: dict) -> str:
    sw, th, rss = s["torchport"], s["torch"], s["torch_rss"]
    size = s["file_bytes"]
    ok = "error" not in sw

    def ratio(x):
        return "-" if x is None else f"{x / size:.2f}x"

    rows = [
        ("", "torchport", "torch.load"),
        ("median", fmt_ms(sw.get("median_ms")), fmt_ms(th["median_ms"])),
        ("min / max", f"{fmt_ms(sw.get('min_ms'))} / {fmt_ms(sw.get('max_ms'))}" if ok else "-",
         f"{fmt_ms(th['min_ms'])} / {fmt_ms(th['max_ms'])}"),
        ("tensors", str(sw.get("tensors", "-")), str(th["tensors"])),
        ("tensor bytes", fmt_bytes(sw.get("bytes")), fmt_bytes(th["bytes"])),
        ("peak RSS, whole process", fmt_bytes(sw.get("peak_rss_bytes")),
         fmt_bytes(rss.get("lifetime_peak_rss_bytes"))),
        ("  / file size", ratio(sw.get("peak_rss_bytes")), ratio(rss.get("lifetime_peak_rss_bytes"))),
        ("RSS after import torch", "-", fmt_bytes(rss.get("import_rss_bytes"))),
        ("peak RSS during load", "-", fmt_bytes(rss.get("peak_rss_bytes"))),
        ("peak RSS over import", "-", fmt_bytes(rss.get("delta_peak_rss_bytes"))),
        ("  / file size", "-", ratio(rss.get("delta_peak_rss_bytes"))),
    ]
    w0 = max(len(r[0]) for r in rows)
    w1 = max(len(r[1]) for r in rows)
    lines = [f"file: {s['file']}  ({fmt_bytes(size)}, {s['format']}), repeat {s['repeat']}"]
    lines += [f"  {a:<{w0}}  {b:>{w1}}  {c}" for a, b, c in rows]
    if ok and sw.get("median_ms"):
        lines.append(f"  speed ratio torch/torchport (median): {th['median_ms'] / sw['median_ms']:.2f}x")
    if not ok:
        lines.append(f"  torchport: {sw['error']}")
    if "error" in rss:
        lines.append(f"  torch RSS probe failed: {rss['error']}")
    elif not rss.get("peak_reset_after_import"):
        lines.append("  note: could not reset the peak after `import torch`; torch's peak includes it")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--file", type=Path, default=DEFAULT_FILE)
    ap.add_argument("--repeat", type=int, default=10)
    ap.add_argument("--swift-bin", type=Path, default=DEFAULT_BIN)
    ap.add_argument("--json", action="store_true", help="print a machine-readable summary")
    args = ap.parse_args()
    if args.repeat < 1:
        ap.error("--repeat must be >= 1")

    made = ensure_file(args.file)
    with open(args.file, "rb") as f:
        magic = f.read(4)
    summary = {
        "file": str(args.file),
        "file_bytes": args.file.stat().st_size,
        "format": "zip" if magic == b"PK\x03\x04" else "legacy",
        "file_created": made,
        "repeat": args.repeat,
        "cpu_count": os.cpu_count(),
        "torchport": run_swift(args.swift_bin, args.file, args.repeat),
        "torch": time_torch(args.file, args.repeat),
        "torch_rss": torch_peak_rss(args.file),
    }
    sw = summary["torchport"]
    if "error" not in sw and sw.get("median_ms"):
        summary["speed_ratio_torch_over_torchport"] = summary["torch"]["median_ms"] / sw["median_ms"]
    print(json.dumps(summary, indent=1, sort_keys=True) if args.json else table(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
