#!/usr/bin/env python3
"""`torchport convert` against torch's own way, for a ~100 MB checkpoint in each layout people
bring: one `torch.save` zip, Hugging Face `.bin` shards with `pytorch_model.bin.index.json`, and a
`torch.distributed.checkpoint` folder saved by two ranks (gloo, CPU).

    swift build -c release --product torchport
    .venv-torch/bin/python Benchmarks/convert_layouts.py [--mb 100] [--repeat 3] [--json]

Inputs are generated on demand under Benchmarks/generated/layouts/ (never committed): a state
dict of float32 tensors (an MLP-like stack: 24 x [1024, 1024] plus biases and a norm), seeded.

Swift: `torchport convert IN -o OUT --force`, each run a fresh process (wall time from spawn to
exit, `/usr/bin/time` included, a millisecond; peak RSS as GNU time reports it). It does everything it always does: SHA-256 of the input,
finding the state dict, the atomic write, reading every byte back and comparing.

torch: in this warm process (torch imported once, one untimed run first), the conversion only:
  zip          torch.load(IN, weights_only=True) -> safetensors.torch.save_file
  sharded      torch.load of every shard named by the index -> save_file
  distributed  torch.distributed.checkpoint.format_utils.dcp_to_torch_save(IN, tmp.pt)
               -> torch.load -> save_file
Its peak RSS is measured in a fresh interpreter doing the same once, with the peak reset after
`import torch` (Linux /proc/self/clear_refs), so the interpreter and torch's own libraries are not
counted against it.

The target: Swift's peak RSS under 1.5x the input's size, and its time no longer than torch's.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
GENERATED = HERE / "generated" / "layouts"
TORCHPORT = HERE.parent / ".build" / "release" / "torchport"


def make_state_dict(mb: int):
    import torch
    torch.manual_seed(16)
    n = max(1, round(mb * (1 << 20) / (1024 * 1024 * 4)))
    sd = {}
    for i in range(n):
        sd[f"blocks.{i}.fc.weight"] = torch.randn(1024, 1024)
        sd[f"blocks.{i}.fc.bias"] = torch.randn(1024)
    sd["norm.weight"] = torch.ones(1024)
    return sd


def dcp_worker(rank: int, world: int, folder: str, port: int, mb: int) -> None:
    import torch
    import torch.distributed as dist
    import torch.distributed.checkpoint as dcp
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.tensor import Replicate, Shard, distribute_tensor
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    mesh = init_device_mesh("cpu", (world,))
    sd = make_state_dict(mb)
    out = {k: distribute_tensor(v, mesh, [Shard(i % 2)] if v.dim() == 2 else [Replicate()]) for i, (k, v) in enumerate(sd.items())}
    dcp.save(out, checkpoint_id=folder)
    dist.barrier()
    dist.destroy_process_group()


def generate(mb: int) -> dict:
    import socket
    import torch
    import torch.multiprocessing as mp
    folder = GENERATED / f"{mb}mb"
    paths = {"zip": folder / "model.pth", "sharded": folder / "sharded", "distributed": folder / "dcp"}
    if all(p.exists() for p in paths.values()):
        return paths
    folder.mkdir(parents=True, exist_ok=True)
    sd = make_state_dict(mb)
    torch.save(sd, paths["zip"])
    shards = paths["sharded"]
    shards.mkdir(exist_ok=True)
    names = list(sd)
    groups = [names[i::4] for i in range(4)]
    weight_map = {}
    for i, group in enumerate(groups):
        shard = f"pytorch_model-{i + 1:05d}-of-00004.bin"
        torch.save({k: sd[k] for k in group}, shards / shard)
        weight_map.update({k: shard for k in group})
    total = sum(v.numel() * v.element_size() for v in sd.values())
    (shards / "pytorch_model.bin.index.json").write_text(json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map}))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.start_processes(dcp_worker, args=(2, str(paths["distributed"]), port, mb), nprocs=2, join=True, start_method="spawn")
    return paths


def size_of(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.iterdir() if p.is_file())


def run_swift(path: Path, out: Path) -> tuple[float, int]:
    """Wall time of the whole process, and its peak RSS as GNU time reports it for its child (a
    child forked from this Python would count the parent's pages, torch's included, in its
    ru_maxrss until it execs)."""
    with tempfile.NamedTemporaryFile("r") as report:
        start = time.perf_counter()
        proc = subprocess.run(["/usr/bin/time", "-o", report.name, "-f", "%M", str(TORCHPORT), "convert", str(path),
                               "-o", str(out), "--force"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        seconds = time.perf_counter() - start
        if proc.returncode != 0:
            raise SystemExit(f"torchport convert {path} failed: {proc.stderr}")
        return seconds, int(report.read().strip().splitlines()[-1]) * 1024


TORCH_WAY = r"""
import json, sys, tempfile, os
from pathlib import Path

def convert(layout, path, out):
    import torch
    from safetensors.torch import save_file
    if layout == "zip":
        sd = torch.load(path, weights_only=True, map_location="cpu")
    elif layout == "sharded":
        index = json.loads((Path(path) / "pytorch_model.bin.index.json").read_text())
        sd = {}
        for shard in sorted(set(index["weight_map"].values())):
            sd.update(torch.load(Path(path) / shard, weights_only=True, map_location="cpu"))
    else:
        from torch.distributed.checkpoint.format_utils import dcp_to_torch_save
        with tempfile.TemporaryDirectory() as tmp:
            pt = os.path.join(tmp, "model.pt")
            dcp_to_torch_save(path, pt)
            sd = torch.load(pt, weights_only=True, map_location="cpu")
    save_file({k: v.contiguous() for k, v in sd.items()}, out)
"""

RSS_PROBE = TORCH_WAY + r"""
import torch, safetensors.torch
def status(field):
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
base = status("VmRSS")
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")
convert(sys.argv[1], sys.argv[2], sys.argv[3])
print(json.dumps({"peak": status("VmHWM"), "base": base}))
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if not TORCHPORT.exists():
        raise SystemExit(f"build first: swift build -c release --product torchport ({TORCHPORT} missing)")
    paths = generate(args.mb)
    namespace: dict = {}
    exec(TORCH_WAY, namespace)
    rows = []
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    with tempfile.TemporaryDirectory() as tmp:
        for layout, path in paths.items():
            size = size_of(path)
            out_swift, out_torch = Path(tmp) / f"{layout}-swift.safetensors", Path(tmp) / f"{layout}-torch.safetensors"
            run_swift(path, out_swift)  # warm the page cache
            namespace["convert"](layout, str(path), str(out_torch))
            swift_runs, torch_runs, swift_rss = [], [], 0
            for _ in range(args.repeat):
                seconds, rss = run_swift(path, out_swift)
                swift_runs.append(seconds)
                swift_rss = max(swift_rss, rss)
                start = time.perf_counter()
                namespace["convert"](layout, str(path), str(out_torch))
                torch_runs.append(time.perf_counter() - start)
            probe = subprocess.run([sys.executable, "-c", RSS_PROBE, layout, str(path), str(out_torch)],
                                   capture_output=True, text=True, check=True)
            torch_rss = json.loads(probe.stdout.strip().splitlines()[-1])
            rows.append({
                "layout": layout, "input_bytes": size,
                "swift_seconds": statistics.median(swift_runs), "torch_seconds": statistics.median(torch_runs),
                "swift_peak_rss": swift_rss, "torch_peak_rss_after_import": torch_rss["peak"] - torch_rss["base"],
                "swift_rss_ratio": swift_rss / size,
            })
    if args.json:
        print(json.dumps({"cpu": cpu, "cores": os.cpu_count(), "rows": rows}, indent=2))
        return
    print(f"CPU: {cpu} ({os.cpu_count()} cores); median of {args.repeat}")
    print(f"{'layout':<12} {'input':>9} {'torchport':>10} {'torch':>8} {'tp peak RSS':>12} {'x input':>8} {'torch peak':>11}")
    for r in rows:
        print(f"{r['layout']:<12} {r['input_bytes'] / 2**20:>7.1f}Mi {r['swift_seconds']:>9.2f}s {r['torch_seconds']:>7.2f}s "
              f"{r['swift_peak_rss'] / 2**20:>10.1f}Mi {r['swift_rss_ratio']:>8.2f} {r['torch_peak_rss_after_import'] / 2**20:>9.1f}Mi")


if __name__ == "__main__":
    main()
