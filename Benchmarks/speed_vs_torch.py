#!/usr/bin/env python3
"""ResNet-50 inference speed, side by side: PyTorch eager, ONNX Runtime and Torchport, 2 threads.

    .venv-torch/bin/python Benchmarks/speed_vs_torch.py [--batches 1,8] [--runs N] [--rounds R]
                                  [--pause P] [--warmup W] [--threads T] [--torchport PATH] [--json]

1. Uses Benchmarks/generated/resnet50.pth (made with make_resnet50.py if absent; git-ignored).
2. PyTorch eager: `torch.set_num_threads(T)`, one inter-op thread, `model.eval()`,
   `torch.inference_mode()`, input 224x224 (seeded randn), W warm-up runs, then N timed runs
   (time.perf_counter around each forward): median / min / max in ms.
3. ONNX Runtime (CPUExecutionProvider): the same model exported with `torch.onnx.export` to
   Benchmarks/generated/resnet50.onnx (TorchScript-based exporter, opset 17, dynamic batch axis;
   re-exported when older than the .pth or with --reexport); session with intra_op_num_threads=T,
   inter_op_num_threads=1, ORT_SEQUENTIAL, all graph optimisations; same warm-up and timing. Its
   output is checked against torch's (max abs difference is reported).
4. Torchport: one persistent `<torchport> bench <resnet50.pth> --threads T --warmup W --serve`
   process (default binary .build/release/torchport), loaded once like the other two engines,
   asked for "BATCH RUNS" timed runs at a time (it warms up at the first request of a batch
   size); then one `bench --batch B --runs 1 --json` per batch for its report's other fields. A
   binary without `--serve` (an older build) runs as one `bench --batch B --runs R --warmup W
   --json` subprocess per round instead. If the binary or its `bench` command is missing, the
   table says "torchport: not available".
5. Prints a table (ms per batch, images/s from the median) with the ratios torchport/torch and
   torchport/onnxruntime (below 1 means Torchport is faster), or one JSON object with --json.

The engines never run concurrently, and they take turns: each is loaded and warmed up (W runs per
batch size) once, then the N timed runs of each are split into R rounds (default 10), and every
round runs torch, ONNX Runtime and Torchport for each batch size, in an order that rotates from
round to round, with a pause of P seconds (default 1) before each engine's runs: an engine's
threads keep the CPUs busy for a while after its last run (ONNX Runtime's spin for the better part
of a second: Torchport's batch-1 pass measured 104 ms right after an ONNX Runtime run, 61 ms 0.05 s
after, 55 ms 0.2 s after, 42 ms 1 s after, and 39 to 45 ms after its own runs or torch's), and the
next engine must not pay for it. A slow period of this shared machine then hits all
three instead of whichever ran during it; medians and extremes are over all N runs. The paired
ratios are the median over the rounds of each round's ratio of medians (both sides of a ratio
measured within a second or so of each other). The load average before and after is recorded; a warning is printed
when other processes competed for the CPUs. Exit status 2 when Torchport could not be measured.
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


def summarize(ms: list[float]) -> dict:
    return {"median_ms": statistics.median(ms), "min_ms": min(ms), "max_ms": max(ms), "runs": len(ms)}


def time_calls(fn, warmup: int, runs: int) -> list[float]:
    """Milliseconds of each of `runs` calls after `warmup` untimed ones."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000.0)
    return times


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


def ort_session(onnx_path: Path, threads: int):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(onnx_path), so, providers=["CPUExecutionProvider"]), ort.__version__


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


def bench_torchport(binary: Path, model_path: Path, batch, threads, extra_args, timeout) -> dict:
    """One `torchport bench` subprocess: its JSON report (with `times_ms`), or {"error": ...}."""
    cmd = [str(binary), "bench", str(model_path), "--batch", str(batch), "--threads", str(threads), "--json",
           *extra_args]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as e:
        return {"error": str(e), "command": cmd}
    out = parse_json_output(p.stdout)
    if p.returncode != 0 or not isinstance(out, dict) or "median_ms" not in out:
        return {"error": f"exit status {p.returncode}; stdout: {p.stdout[-500:]!r}; stderr: {p.stderr[-500:]!r}",
                "command": cmd}
    return out


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
    ap.add_argument("--rounds", type=int, default=10,
                    help="rounds the runs are split into, the engines taking turns (default 10)")
    ap.add_argument("--pause", type=float, default=1.0,
                    help="seconds of rest before each engine's runs in a round (default 1; see above)")
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
    rounds = max(1, min(args.rounds, args.runs))
    per_round = [args.runs // rounds + (1 if r < args.runs % rounds else 0) for r in range(rounds)]
    log(f"torch {torch.__version__}: batches {batches}, {args.threads} threads, warm-up {args.warmup}, "
        f"{args.runs} runs in {rounds} rounds")

    inputs = {b: make_input(b) for b in batches}
    with torch.inference_mode():
        refs = {b: model(inputs[b]).numpy() for b in batches}

    sess, ort_version, export_s, ort_error, ort_diff = None, None, None, None, {}
    if not args.skip_ort:
        try:
            if args.reexport or not args.onnx.exists() or args.onnx.stat().st_mtime < args.model.stat().st_mtime:
                log(f"exporting {args.onnx}")
                export_s = export_onnx(model, args.onnx)
            sess, ort_version = ort_session(args.onnx, args.threads)
            import numpy as np

            name = sess.get_inputs()[0].name
            for b in batches:
                ort_diff[b] = float(np.abs(sess.run(None, {name: inputs[b].numpy()})[0] - refs[b]).max())
        except Exception as e:  # noqa: BLE001 - report and carry on with the others
            ort_error = f"{type(e).__name__}: {e}"
            log(f"onnxruntime failed: {ort_error}")
            sess = None

    tp_help, tp_why = subcommand_help(args.torchport, "bench")
    tp_ok = tp_help is not None
    extra = list(args.torchport_arg)
    tp_reports: dict = {b: [] for b in batches}
    server = None
    if tp_ok and "--serve" in tp_help:
        server = subprocess.Popen([str(args.torchport), "bench", str(args.model), "--threads", str(args.threads),
                                   "--warmup", str(args.warmup), "--serve", *extra],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)

    def served(b: int, runs: int) -> dict:
        """`runs` timed runs from the persistent Torchport process: {"times_ms": [...]} or {"error": ...}."""
        try:
            server.stdin.write(f"{b} {runs}\n")
            server.stdin.flush()
            line = server.stdout.readline()
            out = json.loads(line)
            return out if isinstance(out, dict) and "times_ms" in out else {"error": f"unexpected reply {line!r}"}
        except (OSError, ValueError) as e:
            return {"error": f"torchport bench --serve: {e}"}

    # Warm-up, once per engine and batch size (Torchport's comes with its first request).
    for b in batches:
        with torch.inference_mode():
            time_calls(lambda: model(inputs[b]), args.warmup, 0)
        if sess is not None:
            time_calls(lambda: sess.run(None, {sess.get_inputs()[0].name: inputs[b].numpy()}), args.warmup, 0)
    engines = ("torch", "onnxruntime", "torchport")
    times = {engine: {b: [] for b in batches} for engine in engines}
    # Each round's median per engine and batch: the ratios are also taken round by round (paired),
    # so that a slow spell of the machine weighs on both sides of a ratio.
    round_medians = {engine: {b: [] for b in batches} for engine in engines}
    for r, runs in enumerate(per_round):
        if runs == 0:
            continue
        log(f"round {r + 1}/{rounds}: {runs} runs each")
        for b in batches:
            x = inputs[b]
            got = {}
            # The order rotates from round to round, so that no engine always follows the same one.
            order = engines[r % 3:] + engines[:r % 3]
            for engine in order:
                time.sleep(args.pause)
                if engine == "torch":
                    with torch.inference_mode():
                        got[engine] = time_calls(lambda: model(x), 0, runs)
                elif engine == "onnxruntime" and sess is not None:
                    feed = {sess.get_inputs()[0].name: x.numpy()}
                    got[engine] = time_calls(lambda: sess.run(None, feed), 0, runs)
                elif engine == "torchport" and tp_ok:
                    if server is not None:
                        report = served(b, runs)
                    else:  # an older binary: a subprocess per round, with its own warm-up
                        report = bench_torchport(args.torchport, args.model, b, args.threads,
                                                 extra + ["--runs", str(runs), "--warmup", str(args.warmup)], args.timeout)
                    tp_reports[b].append(report)
                    if "times_ms" in report:
                        got[engine] = report["times_ms"]
            for engine, ms in got.items():
                times[engine][b] += ms
                round_medians[engine][b].append(statistics.median(ms))
    del model, sess
    if server is not None:
        server.stdin.close()
        server.wait(timeout=60)
        # The report's other fields (engine, memory, arena), from one short run per batch size.
        for b in batches:
            if tp_reports[b] and all("error" not in rep for rep in tp_reports[b]):
                meta = bench_torchport(args.torchport, args.model, b, args.threads, extra + ["--runs", "1"], args.timeout)
                tp_reports[b].append(meta)

    def paired(a: str, b_: str, b: int):
        """Median over the rounds of (a's round median / b_'s round median)."""
        xs, ys = round_medians[a][b], round_medians[b_][b]
        if not xs or len(xs) != len(ys):
            return None
        return statistics.median(x / y for x, y in zip(xs, ys))

    def result(engine, b):
        if engine == "torchport":
            errors = [rep for rep in tp_reports[b] if "error" in rep]
            if errors:
                return errors[0]
            if not times["torchport"][b]:
                return None
            out = dict(tp_reports[b][-1])
            out.update(summarize(times["torchport"][b]))
            out.pop("times_ms", None)
            return out
        if not times[engine][b]:
            return None
        out = summarize(times[engine][b])
        if engine == "onnxruntime" and b in ort_diff:
            out["max_abs_diff_vs_torch"] = ort_diff[b]
        return out

    t_torch = {b: result("torch", b) for b in batches}
    t_ort = {b: result("onnxruntime", b) for b in batches}
    t_tp = {b: result("torchport", b) for b in batches}

    rows = []
    for b in batches:
        rows.append({
            "batch": b,
            "torch": t_torch.get(b),
            "onnxruntime": t_ort.get(b),
            "torchport": t_tp.get(b),
            "torchport_over_torch": ratio(t_tp.get(b), t_torch.get(b)),
            "torchport_over_onnxruntime": ratio(t_tp.get(b), t_ort.get(b)),
            "torchport_over_torch_paired": paired("torchport", "torch", b),
            "torchport_over_onnxruntime_paired": paired("torchport", "onnxruntime", b),
        })

    env = {"torch": torch.__version__, "onnxruntime": ort_version, "threads": args.threads,
           "warmup": args.warmup, "runs": args.runs, "rounds": rounds, "pause_s": args.pause, "model": str(args.model),
           "onnx": str(args.onnx),
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
          f"in {rounds} interleaved rounds ({args.pause:g} s rest before each engine's turn), after {args.warmup} "
          f"warm-up runs")
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
        po, pt = r["torchport_over_onnxruntime_paired"], r["torchport_over_torch_paired"]
        if po or pt:
            print(f"batch {r['batch']}: paired ratios (median over the rounds of each round's ratio of medians): "
                  f"tp/ort {po:.2f}, tp/torch {pt:.2f}" if po and pt else
                  f"batch {r['batch']}: paired ratio tp/torch {pt:.2f}" if pt else
                  f"batch {r['batch']}: paired ratio tp/ort {po:.2f}")
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
