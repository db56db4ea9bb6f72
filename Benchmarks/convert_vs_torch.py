#!/usr/bin/env python3
"""Compare `torchport convert` with torch.load + safetensors' save_file, and loading the converted
file with safetensors' load_file: time and peak memory, side by side in one run.

    .venv-torch/bin/python Benchmarks/convert_vs_torch.py [--file F] [--repeat N]
        [--torchport PATH] [--bench-bin PATH] [--dtype float16] [--json]

1. Makes F if it is absent (a ResNet-50 state dict, see make_resnet50.py).
2. Convert, Swift: runs `PATH convert F -o OUT --force` N times after one untimed run (page cache
   warm, as for Python), each run followed by one Python run (step 3), so both see the same load. Each run is a whole fresh process: wall time from spawn to exit
   (time.perf_counter around the child), and the child's peak RSS from os.wait4's rusage. The
   `torchport convert` being timed does everything it always does: SHA-256 of the input, name
   mapping and binding check, the atomic write with fsync, reading the file back and comparing the
   SHA-256 of every tensor.
3. Convert, Python: in this warm process (torch imported, one untimed run first),
   `torch.load(F, weights_only=True, map_location="cpu")` then
   `safetensors.torch.save_file({k: v.contiguous()}, OUT2)`, N times. Its peak RSS is measured in a
   fresh interpreter that imports torch and safetensors, resets the peak (Linux: /proc/self/clear_refs),
   and does the same once: the peak over the import is what the conversion itself costs.
4. Load, Swift: `BENCH safetensors OUT --repeat N --touch T` (torchport-bench): map and validate
   the file, then `floats`: read every tensor into a [Float] with TensorRecord.floats(), which is
   what ResNetModel(mapping:) does when binding; `sum`: every value read in place, nothing copied
   (16 lanes, as torch's vectorised sum); `none`: nothing read (tensors are views of the map).
5. Load, Python: `safetensors.torch.load_file(OUT)` N times in this warm process. load_file maps
   the file and hands back tensors over the map without reading a value (like `none`), so it is
   also timed with every value read (`t.sum()`) and with every tensor copied (`t.clone()`).
   Each row compares equal work; the target row is the first (tensors ready for binding).
6. Prints a table, or JSON with --json.

Build first: swift build -c release --product torchport && swift build -c release --product torchport-bench
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.dont_write_bytecode = True
DEFAULT_FILE = HERE / "generated" / "resnet50.pth"
DEFAULT_TORCHPORT = HERE.parent / ".build" / "release" / "torchport"
DEFAULT_BENCH = HERE.parent / ".build" / "release" / "torchport-bench"

RSS_PROBE = r"""
import json, resource, sys

def status(field):
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None

import torch
from safetensors.torch import save_file
baseline = status("VmRSS")
try:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    reset = status("VmHWM") is not None
except OSError:
    reset = False
sd = torch.load(sys.argv[1], weights_only=True, map_location="cpu")
cast = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}.get(sys.argv[3])
if cast is not None:
    sd = {k: v.to(cast) if v.is_floating_point() else v for k, v in sd.items()}
save_file({k: v.contiguous() for k, v in sd.items()}, sys.argv[2])
peak = status("VmHWM") if reset else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"import_rss_bytes": baseline, "peak_rss_bytes": peak, "peak_reset_after_import": reset,
                  "lifetime_peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))
"""


def stats(times_ms: list[float]) -> dict:
    return {"median_ms": statistics.median(times_ms), "min_ms": min(times_ms), "max_ms": max(times_ms)}


def fmt_ms(x):
    return "-" if x is None else f"{x:.1f} ms"


def fmt_bytes(n):
    if n is None:
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024


TIME = Path("/usr/bin/time")


def run_child_rusage(cmd: list[str]) -> tuple[float, int, int, str, float]:
    """(wall ms, peak RSS bytes, exit status, stderr, CPU seconds) of one fresh process.

    The peak RSS comes from /usr/bin/time when present: a child forked from this Python (hundreds
    of MiB once torch is imported) would report the parent's RSS as its own peak, since Linux
    counts the pages a child inherits until it execs."""
    wrapped = [str(TIME), "-f", "TORCHPORT-BENCH %M %U %S"] + cmd if TIME.exists() else cmd
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        p = subprocess.Popen(wrapped, stdout=out, stderr=err)
        _, status, usage = os.wait4(p.pid, 0)
        wall = (time.perf_counter() - t0) * 1000
        code = os.waitstatus_to_exitcode(status)
        err.seek(0)
        text = err.read().decode(errors="replace")
    peak = usage.ru_maxrss * (1 if sys.platform == "darwin" else 1024)
    cpu = usage.ru_utime + usage.ru_stime
    if TIME.exists():
        lines = text.rstrip("\n").split("\n")
        if lines and lines[-1].startswith("TORCHPORT-BENCH "):
            kib, user, system = lines[-1].split()[1:4]
            peak, cpu = int(kib) * 1024, float(user) + float(system)
            text = "\n".join(lines[:-1])
    return wall, peak, code, text, cpu


def convert_side_by_side(binary: Path, file: Path, ours: Path, theirs: Path, repeat: int,
                         dtype: str | None) -> tuple[dict, dict]:
    """Times both conversions in alternation (Swift run i, then Python run i), so that both see the
    same machine: on a shared machine the load changes from second to second."""
    import torch
    from safetensors.torch import save_file

    cast = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}.get(dtype)

    def python_once():
        sd = torch.load(file, weights_only=True, map_location="cpu")
        if cast is not None:
            sd = {k: v.to(cast) if v.is_floating_point() else v for k, v in sd.items()}
        save_file({k: v.contiguous() for k, v in sd.items()}, str(theirs))
        return len(sd)

    tensors = python_once()  # warm-up: imports, page cache
    gc.collect()
    py_times = []
    swift: dict = {}
    cmd = [str(binary), "convert", str(file), "-o", str(ours), "--force"] + (["--dtype", dtype] if dtype else [])
    if not binary.exists():
        swift = {"error": f"not built: {binary}"}
    else:
        _, _, code, stderr, _ = run_child_rusage(cmd)  # warm-up
        if code != 0:
            swift = {"error": f"{' '.join(cmd)} exited {code}: {stderr.strip()[-500:]}"}
    sw_times, peaks, sw_cpu, py_cpu = [], [], [], []
    for _ in range(repeat):
        if "error" not in swift:
            wall, peak, code, stderr, cpu = run_child_rusage(cmd)
            if code != 0:
                swift = {"error": f"{' '.join(cmd)} exited {code}: {stderr.strip()[-500:]}"}
            else:
                sw_times.append(wall)
                peaks.append(peak)
                sw_cpu.append(cpu)
        r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
        python_once()
        t1, r1 = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
        py_times.append((t1 - t0) * 1000)
        py_cpu.append(r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime)
        gc.collect()
    py = {**stats(py_times), "tensors": tensors, "torch_version": torch.__version__, "threads": torch.get_num_threads(),
          "cpu_seconds_median": statistics.median(py_cpu)}
    if "error" in swift:
        return swift, py
    summary = json.loads(subprocess.run(cmd + ["--json"], capture_output=True, text=True, check=True).stdout)
    ratios = [p / s for p, s in zip(py_times, sw_times)]
    swift = {**stats(sw_times), "peak_rss_bytes": max(peaks), "peak_rss_median_bytes": statistics.median(peaks),
             "command": " ".join(cmd), "tensors": summary["tensors"], "bytes": summary["bytes"],
             "internal_seconds": summary["seconds"], "output_bytes": ours.stat().st_size,
             "paired_ratio_torch_over_torchport_median": statistics.median(ratios),
             "cpu_seconds_median": statistics.median(sw_cpu)}
    return swift, py


def torch_convert_rss(file: Path, out: Path, dtype: str | None) -> dict:
    p = subprocess.run([sys.executable, "-c", RSS_PROBE, str(file), str(out), dtype or "keep"],
                       capture_output=True, text=True)
    if p.returncode != 0:
        return {"error": p.stderr.strip()[-500:]}
    r = json.loads(p.stdout.strip().splitlines()[-1])
    r["delta_peak_rss_bytes"] = r["peak_rss_bytes"] - (r["import_rss_bytes"] or 0)
    return r


def load_swift(binary: Path, file: Path, repeat: int, touch: str) -> dict:
    if not binary.exists():
        return {"error": f"not built: {binary}"}
    cmd = [str(binary), "safetensors", str(file), "--repeat", str(repeat), "--touch", touch]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        return {"error": f"{' '.join(cmd)} exited {p.returncode}: {p.stderr.strip()[-500:]}"}
    return json.loads(p.stdout.strip().splitlines()[-1])


def load_python(file: Path, repeat: int) -> dict:
    """load_file alone (tensors over a lazy mmap: no value read yet), then with every value read
    (`t.sum()`), then with every tensor copied into memory of its own (`t.clone()`)."""
    import torch
    from safetensors.torch import load_file

    def plain():
        return load_file(str(file))

    def summed():
        sd = load_file(str(file))
        for t in sd.values():
            t.sum()
        return sd

    def cloned():
        return {k: t.clone() for k, t in load_file(str(file)).items()}

    out = {}
    for name, fn in (("load_file", plain), ("load_file_sum", summed), ("load_file_clone", cloned)):
        sd = fn()  # warm-up
        tensors = len(sd)
        del sd
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            sd = fn()
            times.append((time.perf_counter() - t0) * 1000)
            del sd
            gc.collect()
        out[name] = {**stats(times), "tensors": tensors}
    out["threads"] = torch.get_num_threads()
    return out


def ensure_file(file: Path) -> bool:
    if file.exists():
        return False
    sys.path.insert(0, str(HERE))
    import make_resnet50

    make_resnet50.make(file)
    return True


def table(s: dict) -> str:
    size = s["file_bytes"]
    cs, ct, cr = s["convert"]["torchport"], s["convert"]["torch"], s["convert"]["torch_rss"]

    def ratio(x):
        return "-" if x is None else f"{x / size:.2f}x file"

    lines = [f"file: {s['file']} ({fmt_bytes(size)}), repeat {s['repeat']}, {s['cpu_count']} CPUs"
             + (f", --dtype {s['dtype']}" if s["dtype"] else "")]
    lines.append("convert                 torchport convert (whole process)   torch.load + save_file (warm Python)")
    if "error" in cs:
        lines.append(f"  torchport: {cs['error']}")
    else:
        lines.append(f"  median                {fmt_ms(cs['median_ms']):>34}   {fmt_ms(ct['median_ms'])}")
        lines.append(f"  min / max             {fmt_ms(cs['min_ms']) + ' / ' + fmt_ms(cs['max_ms']):>34}"
                     f"   {fmt_ms(ct['min_ms'])} / {fmt_ms(ct['max_ms'])}")
        lines.append(f"  peak RSS              {fmt_bytes(cs['peak_rss_bytes']) + ' (' + ratio(cs['peak_rss_bytes']) + ')':>34}"
                     f"   {fmt_bytes(cr.get('delta_peak_rss_bytes'))} over import ({ratio(cr.get('delta_peak_rss_bytes'))}),"
                     f" {fmt_bytes(cr.get('lifetime_peak_rss_bytes'))} whole process")
        lines.append(f"  CPU time (user+sys)   {cs['cpu_seconds_median'] * 1000:>31.0f} ms   {ct['cpu_seconds_median'] * 1000:.0f} ms")
        lines.append(f"  time ratio torch/torchport: {ct['median_ms'] / cs['median_ms']:.2f}x of medians,"
                     f" {cs['paired_ratio_torch_over_torchport_median']:.2f}x median of paired runs"
                     f"   (target >= 1); peak RSS {cs['peak_rss_bytes'] / size:.2f}x file (target <= 1.5)")
    ld = s["load"]
    py = ld["safetensors"]
    lines.append("load the converted file   torchport-bench safetensors       safetensors.torch (warm Python)")
    rows = [("tensors ready, no value read", "torchport_none", "load_file"),
            ("every value read", "torchport_sum", "load_file_sum"),
            ("every tensor copied out", "torchport_floats", "load_file_clone")]
    for label, ours, theirs in rows:
        sw = ld[ours]
        if "error" in sw:
            lines.append(f"  {label}: torchport: {sw['error']}")
            continue
        lines.append(f"  {label:<28}{fmt_ms(sw['median_ms']):>12} (min {fmt_ms(sw['min_ms'])})"
                     f"     {fmt_ms(py[theirs]['median_ms'])} (min {fmt_ms(py[theirs]['min_ms'])})"
                     f"   python/torchport {py[theirs]['median_ms'] / sw['median_ms']:.2f}x")
    if "error" not in ld["torchport_none"]:
        # Like for like: load_file hands back tensors over the map without reading a value; so
        # does Torchport (validated records, ready for binding, which then reads them).
        lines.append(f"  target: tensors ready for binding, torchport vs load_file (both mapped, no value read):"
                     f" {py['load_file']['median_ms'] / ld['torchport_none']['median_ms']:.2f}x (>= 1 meets it)")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--file", type=Path, default=DEFAULT_FILE)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--torchport", type=Path, default=DEFAULT_TORCHPORT)
    ap.add_argument("--bench-bin", type=Path, default=DEFAULT_BENCH)
    ap.add_argument("--dtype", choices=["float32", "float16", "bfloat16"])
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if args.repeat < 1:
        ap.error("--repeat must be >= 1")
    made = ensure_file(args.file)
    with tempfile.TemporaryDirectory(dir=args.file.parent, prefix="convert-bench-") as tmp:
        ours, theirs = Path(tmp) / "torchport.safetensors", Path(tmp) / "python.safetensors"
        summary = {
            "file": str(args.file), "file_bytes": args.file.stat().st_size, "file_created": made,
            "repeat": args.repeat, "cpu_count": os.cpu_count(), "dtype": args.dtype,
        }
        swift, torch_times = convert_side_by_side(args.torchport, args.file, ours, theirs, args.repeat, args.dtype)
        summary["convert"] = {"torchport": swift, "torch": torch_times, "torch_rss": torch_convert_rss(args.file, theirs, args.dtype)}
        # Both loaders read the same file: the one torchport wrote (Python's own when it failed).
        loaded = ours if ours.exists() else theirs
        summary["load"] = {
            "file": loaded.name,
            "torchport_floats": load_swift(args.bench_bin, loaded, args.repeat, "floats"),
            "torchport_sum": load_swift(args.bench_bin, loaded, args.repeat, "sum"),
            "torchport_none": load_swift(args.bench_bin, loaded, args.repeat, "none"),
            "safetensors": load_python(loaded, args.repeat),
        }
    cs, ct = summary["convert"]["torchport"], summary["convert"]["torch"]
    if "error" not in cs:
        summary["convert"]["time_ratio_torch_over_torchport"] = ct["median_ms"] / cs["median_ms"]
        summary["convert"]["peak_rss_over_file"] = cs["peak_rss_bytes"] / summary["file_bytes"]
    ls, lp = summary["load"]["torchport_floats"], summary["load"]["safetensors"]["load_file"]
    if "error" not in ls:
        summary["load"]["time_ratio_load_file_over_torchport_floats"] = lp["median_ms"] / ls["median_ms"]
    print(json.dumps(summary, indent=1, sort_keys=True) if args.json else table(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
