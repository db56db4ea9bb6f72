#!/usr/bin/env python3
"""Compare `torchport scan` with picklescan (https://pypi.org/project/picklescan/) file by file.

    .venv-torch/bin/pip install picklescan
    swift build --product torchport
    .venv-torch/bin/python scripts/picklescan_compare.py [--torchport PATH] [--json OUT] [--markdown]

Scans the hostile corpus (Fixtures/hostile/cases), the checkpoint and model fixtures, the plain
pickles and the Python-written safetensors files with both tools, maps both to one vocabulary
(safe / dangerous / unreadable, and picklescan's own "suspicious") and prints every file where they
disagree, grouped by the reason, with the globals each tool named. The reasons are explained in
docs/security.md.
"""

import argparse
import collections
import glob
import io
import json
import logging
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SETS = {
    "hostile": "Fixtures/hostile/cases/*",
    "checkpoints": "Fixtures/checkpoints/*.pt*",
    "models": "Fixtures/models/*.pth",
    "pickles": "Fixtures/pickles/*.pkl",
    "safetensors": "Fixtures/safetensors/python-written/*.safetensors",
    "fuzz-regressions": "Fixtures/fuzz/regressions/*/*",
}


def picklescan_verdict(path):
    from picklescan.scanner import scan_file_path

    try:
        r = scan_file_path(path)
    except Exception as e:  # picklescan raises on some malformed inputs
        return "unreadable", [], "%s: %s" % (type(e).__name__, str(e)[:120])
    names = sorted({"%s.%s" % (g.module, g.name) for g in r.globals if g.safety.value != "innocuous"})
    if r.infected_files > 0 or r.issues_count > 0:
        return "dangerous", names, None
    if r.scan_err:
        return "unreadable", names, "scan error"
    if r.suspicious_count > 0:
        return "suspicious", names, None
    if r.scanned_files == 0:
        return "not-scanned", names, None
    return "safe", names, None


def torchport_verdicts(binary, paths):
    out = {}
    # One process per batch of files keeps the command line short.
    for i in range(0, len(paths), 200):
        batch = paths[i:i + 200]
        p = subprocess.run([binary, "scan", "--json"] + batch, capture_output=True, text=True)
        if p.returncode not in (0, 1, 2):
            raise SystemExit("torchport scan failed (%d): %s" % (p.returncode, p.stderr[-2000:]))
        for f in json.loads(p.stdout)["files"]:
            out[f["file"]] = f
    return out


def reason(path, ts, ps, tfile):
    """A short, stable explanation of a disagreement (see docs/security.md)."""
    refused = [g for g in tfile["globals"] if g["dangerous"]]
    risks = {g["risk"] for g in refused}
    if ts == "ambiguous":
        return "Torchport flags bytes torch.load could read otherwise (case twins, end records, frames past STOP)"
    if ts == "dangerous" and ps in ("safe", "suspicious", "not-scanned", "unreadable") and not refused and tfile.get("risks"):
        return "Torchport flags a risk that is not a global (a TorchScript archive, BUILD on a class)"
    if ts == "dangerous" and ps in ("safe", "suspicious", "not-scanned"):
        entries = {l["entry"] for g in refused for l in g["locations"]}
        if entries and all(e.startswith("tar:") or (e.startswith("pickle:") and e not in ("pickle:0", "pickle:magic"))
                           for e in entries):
            return "picklescan stops where torch.load reads on (legacy magic in other forms, frames past STOP, V7 tar)"
        if any(g["after_stop"] for g in refused) and all(g["after_stop"] for g in refused):
            return "torchport flags globals after STOP that picklescan's zip scan ignores"
        if risks == {"unknown-import"}:
            return "allowlist vs blocklist: off Torchport's allowlist, not on picklescan's blocklist"
        return "picklescan's blocklist misses a code-execution global Torchport names"
    if ts == "unreadable" and ps in ("safe", "suspicious", "not-scanned"):
        return "Torchport cannot vouch for a file it cannot decode (malformed container or pickle); picklescan reports what it could parse"
    if ts == "safe" and ps == "unreadable":
        return "picklescan fails on a container or pickle that Torchport decodes (or skips as not a pickle)"
    if ts == "safe" and ps == "dangerous":
        return "picklescan flags a global Torchport treats as data"
    if ts == "unreadable" and ps == "dangerous":
        return "both refuse the file: picklescan names a global found before the damage, Torchport reports the damage"
    if ts == "dangerous" and ps == "unreadable":
        return "Torchport names a dangerous global; picklescan gave up on the file"
    if ts == "safe" and ps == "suspicious":
        return "picklescan calls suspicious a global Torchport allowlists"
    return "other (%s vs %s)" % (ts, ps)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--torchport", default=None, help="torchport binary (default: .build/debug or release)")
    ap.add_argument("--json", help="write the per-file comparison here")
    ap.add_argument("--markdown", action="store_true", help="print the summary as Markdown tables")
    args = ap.parse_args()
    logging.disable(logging.CRITICAL)  # picklescan logs every finding; we print our own summary
    os.chdir(ROOT)

    binary = args.torchport
    if binary is None:
        for c in (".build/release/torchport", ".build/debug/torchport", ".build-sec/debug/torchport"):
            if os.access(c, os.X_OK):
                binary = c
                break
    if binary is None:
        raise SystemExit("no torchport binary: swift build --product torchport, or pass --torchport")

    files = []
    for name, pattern in SETS.items():
        files += [(name, p) for p in sorted(glob.glob(pattern)) if os.path.isfile(p)]
    tp = torchport_verdicts(binary, [p for _, p in files])

    rows = []
    for group, path in files:
        t = tp[path]
        ps, pnames, perr = picklescan_verdict(path)
        tnames = sorted({g["global"] for g in t["globals"] if g["dangerous"]})
        rows.append(dict(set=group, file=path, torchport=t["verdict"], picklescan=ps, torchport_globals=tnames,
                         picklescan_globals=pnames, picklescan_error=perr, torchport_error=t.get("error"),
                         reason=None if (t["verdict"] == ps) else reason(path, t["verdict"], ps, t)))

    matrix = collections.Counter((r["set"], r["torchport"], r["picklescan"]) for r in rows)
    diffs = [r for r in rows if r["reason"]]
    by_reason = collections.defaultdict(list)
    for r in diffs:
        by_reason[r["reason"]].append(r)

    if args.markdown:
        print("| set | Torchport | picklescan | files |")
        print("|---|---|---|---|")
        for (s, t, p), n in sorted(matrix.items()):
            print("| %s | %s | %s | %d |" % (s, t, p, n))
        print()
        print("| reason | files | examples |")
        print("|---|---|---|")
        for why, rs in sorted(by_reason.items(), key=lambda kv: -len(kv[1])):
            ex = ", ".join("`%s`" % os.path.basename(r["file"]) for r in rs[:4])
            print("| %s | %d | %s |" % (why, len(rs), ex))
    else:
        print("%d files; verdicts (set, torchport, picklescan):" % len(rows))
        for (s, t, p), n in sorted(matrix.items()):
            print("  %-16s %-11s %-11s %4d" % (s, t, p, n))
        print("\n%d disagreements:" % len(diffs))
        for why, rs in sorted(by_reason.items(), key=lambda kv: -len(kv[1])):
            print("\n[%d] %s" % (len(rs), why))
            for r in rs:
                extra = r["picklescan_error"] or ""
                print("  %-52s torchport=%-10s %s | picklescan=%-10s %s %s" % (
                    os.path.relpath(r["file"], "Fixtures"), r["torchport"], ",".join(r["torchport_globals"])[:60],
                    r["picklescan"], ",".join(r["picklescan_globals"])[:60], extra[:80]))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    # Never a false "safe": a file picklescan calls dangerous must not be safe for Torchport.
    missed = [r for r in rows if r["picklescan"] == "dangerous" and r["torchport"] == "safe"]
    if missed:
        print("\nTorchport calls safe what picklescan calls dangerous:", [r["file"] for r in missed])
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
