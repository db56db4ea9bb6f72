#!/usr/bin/env python3
"""ResNet-50 inference speed, side by side: PyTorch eager, ONNX Runtime and Torchport, 2 threads.

    .venv-torch/bin/python Benchmarks/speed_vs_torch.py [--batches 1,8] [--runs N] [--warmup W]
                                                        [--threads T] [--torchport PATH] [--json]

1. Uses Benchmarks/generated/resnet50.pth (made with make_resnet50.py if absent; git-ignored).
2. PyTorch eager: `torch.set_num_threads(T)`, one inter-op thread, `model.eval()`,
   `torch.inference_mode()`, input 224x224 (seeded randn), W warm-up runs, then N timed runs
   (time.perf_counter around each forward): median / min / max in ms.
3. ONNX Runtime (CPUExecutionProvider): the same model exported with `torch.onnx.export` to
   Benchmarks/generated/resnet50.onnx (TorchScript-based exporter, opset 17, dynamic batch axis;
   re-exported when older than the .pth or with --reexport); session with intra_op_num_threads=T,
   inter_op_num_threads=1, ORT_SEQUENTIAL, all graph optimisations; same warm-up and timing. Its
   output is checked against torch's (max abs difference is reported).
4. Torchport: `<torchport> bench <resnet50.pth> --batch B --threads T --json` (default binary
   .build/release/torchport), which prints `median_ms`, `min_ms`, `max_ms` (other fields are kept).
   If the binary or its `bench` command is missing, the table says "torchport: not available".
5. Prints a table (ms per batch, images/s from the median) with the ratios torchport/torch and
   torchport/onnxruntime (below 1 means Torchport is faster), or one JSON object with --json.

The three engines run one after another, never concurrently: torch first, then ONNX Runtime (its
session is closed before going on), then the Torchport subprocess (given `--runs N --warmup W` when
its help lists them). The load average before and after is recorded; a warning is printed when other
processes competed for the CPUs. Exit status 2 when Torchport could not be measured.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.dont_write_bytecode = True  # importing sibling scripts must not leave __pycache__ behind
GENERATED = HERE / "generated"
DEFAULT_MODEL = GENERATED / "resnet50.pth"
DEFAULT_ONNX = GENERATED / "resnet50.onnx"
DEFAULT_BIN = REPO / ".build" / "release" / "torchport"


def summarize(times_s: list[float]) -> dict:
    ms = [t * 1000.0 for t in times_s]
    return {"median_ms": statistics.median(ms), "min_ms": min(ms), "max_ms": max(ms), "runs": len(ms)}


def time_calls(fn, warmup: int, runs: int) -> dict:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return summarize(times)


def load_model(path: Path):
    import torch
    import torchvision

    model = torchvision.models.resnet50()
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return model.eval()


def make_input(batch: int):
    import torch

    g = torch.Generator().manual_seed(1234 + batch)
    return torch.randn(batch, 3, 224, 224, generator=g)


def export_onnx(model, path: Path) -> float:
    import torch

    t0 = time.perf_counter()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".onnx.tmp")
    kwargs = dict(input_names=["input"], output_names=["logits"], opset_version=17,
                  dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}}, do_constant_folding=True)
    with torch.no_grad():
        try:
            torch.onnx.export(model, (make_input(1),), str(tmp), dynamo=False, **kwargs)
        except TypeError:  # an older torch without the `dynamo` switch
            torch.onnx.export(model, (make_input(1),), str(tmp), **kwargs)
    os.replace(tmp, path)
    return time.perf_counter() - t0


def bench_torch(model, batches, threads, warmup, runs) -> dict:
    import torch

    results = {}
    for b in batches:
        x = make_input(b)
        with torch.inference_mode():
            ref = model(x)
            results[b] = time_calls(lambda: model(x), warmup, runs)
        results[b]["_ref"] = ref.numpy()
    return results


def bench_ort(onnx_path: Path, batches, threads, warmup, runs, refs) -> tuple[dict, str]:
    import numpy as np
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(str(onnx_path), so, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    results = {}
    for b in batches:
        x = make_input(b).numpy()
        out = sess.run(None, {name: x})[0]
        r = time_calls(lambda: sess.run(None, {name: x}), warmup, runs)
        r["max_abs_diff_vs_torch"] = float(np.abs(out - refs[b]).max())
        results[b] = r
    del sess
    return results, ort.__version__


def subcommand_help(binary: Path, name: str) -> tuple[str | None, str]:
    """(help text, "") if `binary <name> --help` describes that subcommand, else (None, why not)."""
    if not (binary.is_file() and os.access(binary, os.X_OK)):
        return None, f"{binary} missing (swift build -c release)"
    try:
        p = subprocess.run([str(binary), name, "--help"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:
        return None, str(e)
    text = p.stdout + p.stderr
    usage = [ln for ln in text.splitlines() if ln.strip().upper().startswith("USAGE:")]
    if p.returncode == 0 and any(f" {name}" in ln for ln in usage):
        return text, ""
    return None, f"{binary} has no `{name}` command"


def parse_json_output(text: str):
    text = text.strip()
    try:
        return json.loads(text)
    except ValueError:
        pass
    lines = text.splitlines()
    for i in range(len(lines) - 1, -1, -1):
        if lines[i].lstrip().startswith("{"):
            try:
                return json.loads("\n".join(lines[i:]))
            except ValueError:
                continue
    return None


def bench_torchport(binary: Path, model_path: Path, batches, threads, extra_args, timeout) -> dict:
    results = {}
    for b in batches:
        cmd = [str(binary), "bench", str(model_path), "--batch", str(b), "--threads", str(threads), "--json",
               *extra_args]
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        except (OSError, subprocess.TimeoutExpired) as e:
            results[b] = {"error": str(e), "command": cmd}
            continue
        out = parse_json_output(p.stdout)
        if p.returncode != 0 or not isinstance(out, dict) or "median_ms" not in out:
            results[b] = {"error": f"exit status {p.returncode}; stdout: {p.stdout[-500:]!r}; "
                                   f"stderr: {p.stderr[-500:]!r}", "command": cmd}
            continue
        results[b] = out
    return results


def fmt_ms(r: dict | None) -> str:
    if not r or "median_ms" not in r:
        return "-"
    return f"{r['median_ms']:.1f} ({r['min_ms']:.1f}-{r['max_ms']:.1f})"


def ratio(a: dict | None, b: dict | None):
    if a and b and "median_ms" in a and "median_ms" in b and b["median_ms"] > 0:
        return a["median_ms"] / b["median_ms"]
    return None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", type=Path, default=DEFAULT_MODEL, help=f"state dict (default {DEFAULT_MODEL})")
    ap.add_argument("--onnx", type=Path, default=DEFAULT_ONNX, help=f"exported model (default {DEFAULT_ONNX})")
    ap.add_argument("--reexport", action="store_true", help="export the ONNX model even if it is up to date")
    ap.add_argument("--batches", default="1,8", help="comma-separated batch sizes (default 1,8)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--runs", type=int, default=20, help="timed runs per engine and batch (default 20)")
    ap.add_argument("--torchport", type=Path, default=DEFAULT_BIN, help=f"Swift CLI (default {DEFAULT_BIN})")
    ap.add_argument("--torchport-arg", action="append", default=[],
                    help="extra argument passed to `torchport bench` (repeatable)")
    ap.add_argument("--timeout", type=float, default=600, help="seconds per `torchport bench` call")
    ap.add_argument("--skip-ort", action="store_true", help="do not measure ONNX Runtime")
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    args = ap.parse_args()
    batches = [int(b) for b in args.batches.split(",") if b.strip()]
    log = (lambda *a: print(*a, file=sys.stderr, flush=True)) if args.json else \
        (lambda *a: print(*a, flush=True))

    import torch

    torch.set_num_threads(args.threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass

    if not args.model.exists():
        sys.path.insert(0, str(HERE))
        import make_resnet50

        log(f"making {args.model} (make_resnet50.py)")
        make_resnet50.make(args.model)
    model = load_model(args.model)

    load_before = os.getloadavg() if hasattr(os, "getloadavg") else None
    log(f"torch {torch.__version__}: batches {batches}, {args.threads} threads, warm-up {args.warmup}, "
        f"{args.runs} runs")
    t_torch = bench_torch(model, batches, args.threads, args.warmup, args.runs)
    refs = {b: r.pop("_ref") for b, r in t_torch.items()}

    t_ort, ort_version, export_s, ort_error = {}, None, None, None
    if not args.skip_ort:
        try:
            if args.reexport or not args.onnx.exists() or args.onnx.stat().st_mtime < args.model.stat().st_mtime:
                log(f"exporting {args.onnx}")
                export_s = export_onnx(model, args.onnx)
            log("onnxruntime")
            t_ort, ort_version = bench_ort(args.onnx, batches, args.threads, args.warmup, args.runs, refs)
        except Exception as e:  # noqa: BLE001 - report and carry on with the others
            ort_error = f"{type(e).__name__}: {e}"
            log(f"onnxruntime failed: {ort_error}")
    del model

    tp_help, tp_why = subcommand_help(args.torchport, "bench")
    tp_ok = tp_help is not None
    t_tp = {}
    if tp_ok:
        extra = list(args.torchport_arg)
        # same warm-up and run counts as torch/ORT when the CLI takes them (it prints what it used)
        if "--runs" in tp_help and "--runs" not in extra:
            extra += ["--runs", str(args.runs)]
        if "--warmup" in tp_help and "--warmup" not in extra:
            extra += ["--warmup", str(args.warmup)]
        log(f"torchport bench ({args.torchport} ... {' '.join(extra)})")
        t_tp = bench_torchport(args.torchport, args.model, batches, args.threads, extra, args.timeout)

    rows = []
    for b in batches:
        rows.append({
            "batch": b,
            "torch": t_torch.get(b),
            "onnxruntime": t_ort.get(b),
            "torchport": t_tp.get(b),
            "torchport_over_torch": ratio(t_tp.get(b), t_torch.get(b)),
            "torchport_over_onnxruntime": ratio(t_tp.get(b), t_ort.get(b)),
        })

    env = {"torch": torch.__version__, "onnxruntime": ort_version, "threads": args.threads,
           "warmup": args.warmup, "runs": args.runs, "model": str(args.model), "onnx": str(args.onnx),
           "onnx_export_s": export_s, "cpu_count": os.cpu_count(), "machine": platform.machine(),
           "processor": platform.processor() or None, "torchport": str(args.torchport),
           "torchport_available": tp_ok, "torchport_unavailable_reason": tp_why or None,
           "onnxruntime_error": ort_error,
           "loadavg_before": load_before,
           "loadavg_after": os.getloadavg() if hasattr(os, "getloadavg") else None}
    if args.json:
        print(json.dumps({"env": env, "results": rows}, indent=1))
        return 0 if tp_ok else 2

    print()
    print(f"ResNet-50, 224x224, {args.threads} threads; ms per batch: median (min-max) of {args.runs} runs "
          f"after {args.warmup} warm-up")
    head = ["batch", "torch eager", "onnxruntime", "torchport", "tp/torch", "tp/ort", "img/s torch",
            "img/s ort", "img/s tp"]
    table = []
    for r in rows:
        def ips(x):
            return f"{r['batch'] * 1000.0 / x['median_ms']:.1f}" if x and "median_ms" in x else "-"

        table.append([str(r["batch"]), fmt_ms(r["torch"]), fmt_ms(r["onnxruntime"]),
                      fmt_ms(r["torchport"]) if tp_ok else "n/a",
                      f"{r['torchport_over_torch']:.2f}" if r["torchport_over_torch"] else "-",
                      f"{r['torchport_over_onnxruntime']:.2f}" if r["torchport_over_onnxruntime"] else "-",
                      ips(r["torch"]), ips(r["onnxruntime"]), ips(r["torchport"])])
    widths = [max(len(h), *(len(row[i]) for row in table)) for i, h in enumerate(head)]
    print("  ".join(h.ljust(w) for h, w in zip(head, widths)))
    print("  ".join("-" * w for w in widths))
    for row in table:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)))
    for r in rows:
        if r["onnxruntime"] and "max_abs_diff_vs_torch" in r["onnxruntime"]:
            print(f"batch {r['batch']}: onnxruntime vs torch logits, max abs diff "
                  f"{r['onnxruntime']['max_abs_diff_vs_torch']:.2e}")
        if r["torchport"] and "error" in r["torchport"]:
            print(f"batch {r['batch']}: torchport failed: {r['torchport']['error']}")
    if not tp_ok:
        print(f"torchport: not available ({tp_why})")
    if ort_error:
        print(f"onnxruntime: failed ({ort_error})")
    print(f"torch {torch.__version__}, onnxruntime {ort_version}, {os.cpu_count()} CPUs ({platform.machine()})")
    la = env["loadavg_before"]
    if la and max(la[0], env["loadavg_after"][0]) > 0.5 + (os.cpu_count() or 1) - args.threads:
        print(f"warning: the machine was busy (load average {la[0]:.1f} before, "
              f"{env['loadavg_after'][0]:.1f} after); timings are noisy")
    return 0 if tp_ok else 2


if __name__ == "__main__":
    sys.exit(main())
