#!/usr/bin/env python3
"""Checks the red team's corpus cases (class 11) against real torch: that torch.load
(weights_only=False) does what `torchport scan` says it would.

Run with the pinned torch (`make venv`), from the repository root:

    .venv-torch/bin/python Fixtures/hostile/verify_with_torch.py

Each payload only creates a marker file in a temporary folder (`os.system("touch ...")` is
rewritten to the marker path before loading); nothing else is touched. Prints one line per case
and exits 1 when torch does not behave as the case's `scan` verdict claims.
"""
import contextlib
import io
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
MARKER_CMD = b"touch /tmp/torchport-red-team"

CHILD = r'''
import os, sys, warnings
warnings.simplefilter("ignore")
sys.path.insert(0, os.getcwd())
import torch
try:
    result = torch.load(sys.argv[1], weights_only=False)
    if isinstance(result, dict) and "w" in result and hasattr(result["w"], "tolist"):
        print("LOADED w=%s" % result["w"].tolist())
    else:
        print("LOADED %s" % type(result).__name__)
except BaseException as e:
    print("RAISED %s: %s" % (type(e).__name__, str(e)[:120]))
import argparse
print("Namespace.dump_patches=%s" % getattr(argparse.Namespace, "dump_patches", None))
'''


def run_case(path, marker_dir):
    marker = os.path.join(marker_dir, "ran")
    data = open(path, "rb").read()
    # `touch ran` in the child's folder, padded to the same length: every length prefix and
    # offset in the file stays right.
    data = data.replace(MARKER_CMD, b"touch ran".ljust(len(MARKER_CMD)))
    with tempfile.NamedTemporaryFile(dir=marker_dir, suffix=".pth", delete=False) as f:
        f.write(data)
    out = subprocess.run([sys.executable, "-c", CHILD, f.name], cwd=marker_dir, capture_output=True, text=True,
                         timeout=120).stdout.strip()
    return os.path.exists(marker), " ".join(out.split("\n"))


def main():
    manifest = json.load(open(os.path.join(HERE, "manifest.json")))
    failures = 0
    for c in manifest:
        if c["class"] != 11:
            continue
        name = os.path.basename(c["file"])[:-4]
        with tempfile.TemporaryDirectory() as tmp:
            if name == "redteam-torch-module-plain-zip":
                # A folder named __torch__ beside the checkpoint, as a repository could ship it.
                os.makedirs(os.path.join(tmp, "__torch__"))
                with open(os.path.join(tmp, "__torch__", "__init__.py"), "w") as f:
                    f.write("open('ran', 'w').close()\ndef Payload(*a):\n    return None\n")
            ran, out = run_case(os.path.join(HERE, c["file"]), tmp)
        if name == "redteam-case-twin-storage":
            ok = "w=[0.0, 0.0, 0.0, 0.0]" in out      # torch reads the zeros of the twin
            claim = "torch reads the zero twin"
        elif name == "redteam-namespace-dump-patches":
            ok = "Namespace.dump_patches=True" in out   # the class itself was changed
            claim = "argparse.Namespace.dump_patches is set"
        elif c["scan"] == "dangerous" and name != "redteam-escape-in-name":
            ok = ran
            claim = "the payload runs"
        else:
            ok = True
            claim = "(not a payload that runs by itself)"
        failures += 0 if ok else 1
        print("%-40s scan=%-10s %s: %s   [%s]" % (name, c["scan"], claim, "yes" if ok else "NO", out[:90]))
    print("%d passed, %d failed" % (sum(1 for c in manifest if c["class"] == 11) - failures, failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
