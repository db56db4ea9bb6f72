#!/usr/bin/env python3
"""Full-size parity: every torchvision ResNet architecture, Torchport (Swift) against PyTorch.

    .venv-torch/bin/python scripts/parity.py [--only resnet18,resnet50] [--torchport PATH]
                                             [--rtol R|auto] [--atol A] [--regenerate]
                                             [--bn-stats calibrated|random] [--json]

For each architecture (resnet18/34/50/101/152, resnext50_32x4d, resnext101_32x8d, resnext101_64x4d,
wide_resnet50_2, wide_resnet101_2):

1. Unless the files exist (or with --regenerate), builds `torchvision.models.<arch>()` (seeded random
   init, no download), gives every BatchNorm non-trivial affine parameters and running statistics
   (seeded; see `set_bn`), and writes to Benchmarks/generated/zoo/ (git-ignored):
     <arch>.pth          the state dict (torch.save to the path: zip format, top folder `<arch>/`)
     <arch>.golden.pth   {"input": x [2,3,224,224] float32 (seeded randn),
                          "logits": float32 (model.eval(), torch.no_grad(), as a user runs it),
                          "logits_f64": the same model and input in float64}
     <arch>.golden.json  metadata: params, seeds, logit scale, torch's own float32-vs-float64 error
2. Runs `<torchport> verify <arch>.pth --golden <arch>.golden.pth --json [--rtol R] [--atol A]`
   (default binary .build/release/torchport) and parses its JSON defensively: `passed`,
   `max_abs_error`, `max_rel_error` (relative to the logit scale max|ref|), `top1_agreement`/`samples`,
   `rtol` and `reference_f64` if present; the whole object is kept in the --json summary.
3. Prints a table: arch, params, max abs error, max error / logit scale, top-1 agreement, tolerance,
   verdict, and how far each float32 result (Torchport's, torch's) is from torch's float64 logits.

Tolerance. Without --rtol, verify's own default applies (1e-5 of the logit scale). PyTorch's float32
logits are themselves 1e-6 (resnet18) to 3e-4 (resnet152) of the logit scale away from float64 on
these models, and two correct float32 implementations differ by about the sum of their errors, so a
fixed 1e-5 fails the deep models even when Torchport is exactly as accurate as PyTorch (the table
then says so). `--rtol auto` uses, per architecture, max(1e-5, 4 x torch's own float32-vs-float64
error), i.e. it passes an implementation at most 3x less accurate than PyTorch's float32 path.

Exit status: 0 if every selected architecture passed, 1 if any failed or errored, 2 if the Swift
binary is missing (the goldens are still generated).

BatchNorm statistics (--bn-stats):
  calibrated (default): weight ~ U(0.5, 1.5), bias ~ N(0, 0.1); running_mean/var are then the real
    statistics of a seeded calibration batch (one train-mode pass, cumulative averaging), so every
    channel has its own non-trivial mean and variance and activations stay at trained-network scale
    (logits O(1)).
  random: the recipe of Benchmarks/make_resnet50.py (running_mean ~ N(0, 0.1), running_var ~ U(0.5, 2)).
    Deep models then blow up (resnet152 logits ~1e8, wide_resnet101_2 ~1e5), which still tests parity
    relative to the logit scale but is far from real weights.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import time
import zlib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ZOO = REPO / "Benchmarks" / "generated" / "zoo"
DEFAULT_BIN = REPO / ".build" / "release" / "torchport"

ARCHS = ["resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "resnext50_32x4d",
         "resnext101_32x8d", "resnext101_64x4d", "wide_resnet50_2", "wide_resnet101_2"]
INPUT_SHAPE = (2, 3, 224, 224)
GOLDEN_FORMAT = 1  # bump when the golden recipe changes, so stale files are regenerated


def arch_seed(arch: str) -> int:
    return zlib.crc32(arch.encode()) & 0x7FFFFFFF


# ---------------------------------------------------------------------------------------------------
# Generation (torch needed only here)
# ---------------------------------------------------------------------------------------------------


def set_bn(model, mode: str, seed: int) -> None:
    import torch
    import torch.nn as nn

    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    torch.manual_seed(seed + 1)
    with torch.no_grad():
        for i, m in enumerate(bns):
            m.weight.uniform_(0.5, 1.5)
            m.bias.normal_(0.0, 0.1)
            if mode == "random":
                m.running_mean.normal_(0.0, 0.1)
                m.running_var.uniform_(0.5, 2.0)
        # The last BatchNorm of each residual branch gets a small gamma, as in trained ResNets
        # (torchvision's own zero_init_residual option goes further and sets it to zero). Without
        # it the residual stream of a random deep net grows with depth and torch's own float32
        # error against float64 reaches 3e-4 of the logit scale on resnet152; with it, ~1e-6.
        from torchvision.models.resnet import BasicBlock, Bottleneck
        for block in model.modules():
            if isinstance(block, Bottleneck):
                block.bn3.weight.uniform_(0.05, 0.3)
            elif isinstance(block, BasicBlock):
                block.bn2.weight.uniform_(0.05, 0.3)
    if mode == "calibrated":
        for m in bns:
            m.reset_running_stats()
            m.momentum = None  # cumulative average: after one batch, exactly that batch's statistics
        torch.manual_seed(seed + 2)
        calib = torch.randn(*INPUT_SHAPE)
        model.train()
        with torch.no_grad():
            model(calib)
        for m in bns:
            m.momentum = 0.1
    with torch.no_grad():
        for i, m in enumerate(bns):
            m.num_batches_tracked.fill_(100 + i)
    model.eval()


def generate(arch: str, bn_mode: str, zoo: Path) -> dict:
    import torch
    import torchvision

    torch.set_num_threads(max(1, os.cpu_count() or 1))
    seed = arch_seed(arch)
    t0 = time.perf_counter()
    torch.manual_seed(seed)
    model = getattr(torchvision.models, arch)()  # random init, weights=None: no download
    set_bn(model, bn_mode, seed)
    torch.manual_seed(seed + 3)
    x = torch.randn(*INPUT_SHAPE, dtype=torch.float32)
    with torch.no_grad():
        y = model(x)
    zoo.mkdir(parents=True, exist_ok=True)
    ckpt, golden = zoo / f"{arch}.pth", zoo / f"{arch}.golden.pth"
    torch.save(model.state_dict(), ckpt)
    params = sum(p.numel() for p in model.parameters())
    with torch.no_grad():
        y64 = model.double()(x.double())
    del model
    torch.save({"input": x, "logits": y, "logits_f64": y64}, golden)
    scale = y64.abs().max().item()
    meta = {
        "golden_format": GOLDEN_FORMAT,
        "arch": arch,
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "seed": seed,
        "bn_stats": bn_mode,
        "params": params,
        "input_shape": list(x.shape),
        "logits_shape": list(y.shape),
        "logit_scale": scale,
        "torch_f32_vs_f64_max_abs": (y.double() - y64).abs().max().item(),
        "torch_f32_vs_f64_max_rel": (y.double() - y64).abs().max().item() / scale,
        "torch_f32_vs_f64_top1_agree": (y.argmax(1) == y64.argmax(1)).float().mean().item(),
        "checkpoint_bytes": ckpt.stat().st_size,
        "seconds": round(time.perf_counter() - t0, 2),
    }
    (zoo / f"{arch}.golden.json").write_text(json.dumps(meta, indent=1) + "\n")
    return meta


def ensure(arch: str, bn_mode: str, zoo: Path, regenerate: bool) -> tuple[dict, bool]:
    meta_path = zoo / f"{arch}.golden.json"
    files = [zoo / f"{arch}.pth", zoo / f"{arch}.golden.pth", meta_path]
    if not regenerate and all(p.exists() for p in files):
        try:
            meta = json.loads(meta_path.read_text())
            if meta.get("golden_format") == GOLDEN_FORMAT and meta.get("bn_stats") == bn_mode:
                return meta, False
        except (OSError, ValueError):
            pass
    return generate(arch, bn_mode, zoo), True


# ---------------------------------------------------------------------------------------------------
# Running the Swift side
# ---------------------------------------------------------------------------------------------------


def parse_json_output(text: str):
    """The whole stdout as JSON, else the last line (or trailing block) that parses as a JSON object."""
    text = text.strip()
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        pass
    lines = text.splitlines()
    for i in range(len(lines) - 1, -1, -1):
        chunk = "\n".join(lines[i:])
        if chunk.lstrip().startswith("{"):
            try:
                return json.loads(chunk)
            except ValueError:
                continue
    return None


def first(d: dict, *names):
    """The first present field among `names`, searched at top level, then one level down."""
    for n in names:
        if n in d:
            return d[n]
    for v in d.values():
        if isinstance(v, dict):
            for n in names:
                if n in v:
                    return v[n]
    return None


def has_subcommand(binary: Path, name: str) -> tuple[bool, str]:
    """Whether `binary <name> --help` describes that subcommand (ArgumentParser prints its USAGE line)."""
    try:
        p = subprocess.run([str(binary), name, "--help"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:
        return False, str(e)
    usage = [ln for ln in (p.stdout + p.stderr).splitlines() if ln.strip().upper().startswith("USAGE:")]
    ok = p.returncode == 0 and any(f" {name}" in ln for ln in usage)
    return ok, "" if ok else f"{binary} has no `{name}` command"


AUTO_FACTOR = 4.0  # --rtol auto: this many times torch's own float32-vs-float64 error (relative)
AUTO_FLOOR = 1e-5


def auto_rtol(meta: dict) -> float:
    """A tolerance that passes an implementation exactly as accurate as PyTorch's own float32 path.

    |swift - torch| <= |swift - f64| + |torch - f64|: if Torchport's error against float64 is at most
    3x torch's, the difference is at most 4x torch's error. Rounded up to two significant digits.
    """
    r = max(AUTO_FLOOR, AUTO_FACTOR * float(meta.get("torch_f32_vs_f64_max_rel") or 0.0))
    e = math.floor(math.log10(r)) - 1
    return float(f"{math.ceil(r / 10**e - 1e-9) * 10**e:.2g}")


def run_verify(binary: Path, arch: str, zoo: Path, timeout: float, tol_args: list[str]) -> dict:
    cmd = [str(binary), "verify", str(zoo / f"{arch}.pth"), "--golden", str(zoo / f"{arch}.golden.pth"),
           "--json", *tol_args]
    t0 = time.perf_counter()
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"status": "error", "error": f"timed out after {timeout:.0f} s", "command": cmd}
    except OSError as e:
        return {"status": "error", "error": str(e), "command": cmd}
    res = {"command": cmd, "returncode": p.returncode, "seconds": round(time.perf_counter() - t0, 2)}
    out = parse_json_output(p.stdout)
    if not isinstance(out, dict):
        res.update(status="error", error="no JSON object on stdout",
                   stdout_tail=p.stdout[-2000:], stderr_tail=p.stderr[-2000:])
        return res
    res["torchport"] = out
    passed = first(out, "passed", "pass", "ok")
    if passed is None:
        res["status"] = "pass" if p.returncode == 0 else "fail"
        res["note"] = "no 'passed' field; verdict from the exit status"
    else:
        res["status"] = "pass" if bool(passed) else "fail"
    if p.returncode != 0 and res["status"] == "pass":
        res["status"] = "fail"
        res["note"] = f"'passed' is true but exit status {p.returncode}"
    if p.stderr.strip():
        res["stderr_tail"] = p.stderr[-2000:]
    return res


# ---------------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------------


def fmt_num(v, spec=".2e") -> str:
    if isinstance(v, bool) or v is None:
        return "-" if v is None else str(v)
    if isinstance(v, (int, float)):
        if isinstance(v, float) and (math.isnan(v) or math.isinf(v)):
            return str(v)
        return format(v, spec)
    return str(v)


def fmt_params(n) -> str:
    return f"{n / 1e6:.1f}M" if isinstance(n, (int, float)) else "-"


def top1_text(tp: dict) -> str:
    v = first(tp, "top1_agreement", "top1_agree", "top1", "argmax_agreement", "top1_match", "top1_matches")
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "NO"
    n = first(tp, "samples", "batch", "n")
    if isinstance(v, int) and isinstance(n, int):
        return f"{v}/{n}"
    if isinstance(v, float) and 0.0 <= v <= 1.0:
        return f"{v * 100:.0f}%"
    if isinstance(v, dict) or isinstance(v, list):
        return json.dumps(v, separators=(",", ":"))[:20]
    return str(v)


def print_table(rows: list[dict], binary: Path, available: bool, why: str) -> None:
    head = ["arch", "params", "max abs err", "max err/scale", "top-1", "rtol", "verdict", "time s",
            "swift vs f64", "torch vs f64"]
    table = []
    for r in rows:
        tp = r.get("torchport") or {}
        abs_err = first(tp, "max_abs_error", "max_abs_err", "max_abs_diff", "max_abs")
        rel_err = first(tp, "max_rel_error", "max_rel_err", "max_error_relative_to_scale", "max_rel")
        rtol = first(tp, "rtol")
        f64 = tp.get("reference_f64") if isinstance(tp.get("reference_f64"), dict) else {}
        swift64 = f64.get("computed_max_rel_error")
        torch64 = f64.get("pytorch_max_rel_error", r["meta"].get("torch_f32_vs_f64_max_rel"))
        verdict = {"pass": "PASS", "fail": "FAIL", "error": "ERROR", "not-run": "not run"}[r["status"]]
        table.append([r["arch"], fmt_params(r["meta"].get("params")), fmt_num(abs_err), fmt_num(rel_err),
                      top1_text(tp), fmt_num(rtol, ".1e"), verdict, fmt_num(r.get("seconds"), ".1f"),
                      fmt_num(swift64, ".1e"), fmt_num(torch64, ".1e")])
    widths = [max(len(h), *(len(row[i]) for row in table)) for i, h in enumerate(head)]
    print("  ".join(h.ljust(w) for h, w in zip(head, widths)))
    print("  ".join("-" * w for w in widths))
    for row in table:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)))
    if not available:
        print(f"\ntorchport: not available ({why})")
    print("\nmax err/scale = max|swift - torch| / max|torch logits| (float32 vs float32); rtol: the "
          "tolerance verify used (relative to the logit scale); swift vs f64 / torch vs f64: each float32 "
          "result against torch's float64 logits, same measure (how accurate each side is).")
    for r in rows:
        tp = r.get("torchport") or {}
        crit = first(tp, "criterion")
        if crit:
            per_row = len({first(x.get("torchport") or {}, "rtol") for x in rows if x.get("torchport")}) > 1
            print(f"criterion ({r['arch']}{'; rtol differs per row' if per_row else ''}): {crit}")
            break
    for r in rows:
        if r["status"] == "fail":
            tp = r.get("torchport") or {}
            f64 = tp.get("reference_f64") if isinstance(tp.get("reference_f64"), dict) else {}
            a, b = f64.get("computed_max_rel_error"), f64.get("pytorch_max_rel_error")
            if isinstance(a, (int, float)) and isinstance(b, (int, float)) and b > 0 and a <= 3 * b:
                print(f"{r['arch']}: FAIL, but Torchport is as accurate as torch against float64 "
                      f"({a:.1e} vs {b:.1e}); the tolerance is below float32 noise (try --rtol auto)")
        for k in ("error", "note"):
            if r.get(k):
                print(f"{r['arch']}: {k}: {r[k]}")
        if r["status"] in ("error", "fail") and r.get("stderr_tail"):
            print(f"{r['arch']}: stderr: {r['stderr_tail'].strip()[-500:]}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", help="comma-separated subset of: " + ",".join(ARCHS))
    ap.add_argument("--torchport", type=Path, default=DEFAULT_BIN, help=f"Swift CLI (default {DEFAULT_BIN})")
    ap.add_argument("--zoo", type=Path, default=ZOO, help=f"where checkpoints and goldens go (default {ZOO})")
    ap.add_argument("--regenerate", action="store_true", help="rewrite checkpoints and goldens even if present")
    ap.add_argument("--bn-stats", choices=["calibrated", "random"], default="calibrated",
                    help="how BatchNorm running statistics are set (see the module docstring)")
    ap.add_argument("--rtol", help="passed to `torchport verify --rtol` (default: verify's own, 1e-5); "
                                   f"'auto' = max({AUTO_FLOOR:g}, {AUTO_FACTOR:g} x torch's own float32-vs-"
                                   "float64 error) per architecture")
    ap.add_argument("--atol", help="passed to `torchport verify --atol`")
    ap.add_argument("--timeout", type=float, default=900, help="seconds per `torchport verify` (default 900)")
    ap.add_argument("--json", action="store_true", help="print one JSON summary instead of the table")
    args = ap.parse_args()

    archs = ARCHS
    if args.only:
        archs = [a.strip() for a in args.only.split(",") if a.strip()]
        unknown = [a for a in archs if a not in ARCHS]
        if unknown:
            ap.error(f"unknown architecture(s): {', '.join(unknown)}; choose from {', '.join(ARCHS)}")
    binary = args.torchport if args.torchport.is_absolute() else (Path.cwd() / args.torchport)
    available = binary.is_file() and os.access(binary, os.X_OK)
    if not available and shutil.which(str(args.torchport)):
        binary, available = Path(shutil.which(str(args.torchport))), True
    why = "" if available else f"{binary} missing; build it with `swift build -c release`"
    if available:
        available, why = has_subcommand(binary, "verify")

    rows = []
    for arch in archs:
        meta, made = ensure(arch, args.bn_stats, args.zoo, args.regenerate)
        if not args.json:
            state = f"generated in {meta['seconds']} s" if made else "exists"
            print(f"{arch}: {state} ({meta['params'] / 1e6:.1f}M params, logit scale "
                  f"{meta['logit_scale']:.3g})", file=sys.stderr, flush=True)
        row = {"arch": arch, "meta": meta, "generated": made}
        if available:
            tol = []
            if args.rtol:
                tol += ["--rtol", f"{auto_rtol(meta):.2g}" if args.rtol == "auto" else args.rtol]
            if args.atol:
                tol += ["--atol", args.atol]
            row["tol_args"] = tol
            row |= run_verify(binary, arch, args.zoo, args.timeout, tol)
        else:
            row["status"] = "not-run"
        rows.append(row)

    if args.json:
        print(json.dumps({"torchport": str(binary), "torchport_available": available,
                          "torchport_unavailable_reason": why or None, "zoo": str(args.zoo),
                          "bn_stats": args.bn_stats, "results": rows}, indent=1))
    else:
        print()
        print_table(rows, binary, available, why)
    if not available:
        return 2
    return 0 if all(r["status"] == "pass" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
