#!/usr/bin/env python3
"""The packed engine's kernels as SwiftPM compiles them: no `unsafeFlags`, so C in release is -O2.

Compiles the micro-kernel files (Sources/CKernels/microkernels_avx512.c and microkernels_avx2.c)
the way `swift build -c release` does (the toolchain's clang, -O2, plus nothing of ours) and checks
the code of every micro-kernel: none may move a vector register to or from the stack (AVX-512's
tile_*, direct*_*: zmm; AVX2's sub-tiles tile2_*, direct2_*: ymm). (Winograd's tp_winograd_run, in winograd.c, whose M buffer lives on the stack by design, is
not held to it.) A kernel whose accumulators do not stay in registers loses half its speed or more
(see docs/performance.md), and nothing at run time would say so.

With --mca (needs llvm-mca, Debian's `llvm`), it also prints each hot loop's FMAs per cycle as
llvm-mca's model of a CPU predicts them (default skylake-avx512), for -O2 and, for comparison,
-O3 (what Package.swift used to force). This is a model, not a measurement on the CPU: the
machine the project runs on may not have AVX-512 at all.

    python3 Benchmarks/kernel_codegen.py             # the check (exit 1 on a spill)
    python3 Benchmarks/kernel_codegen.py --mca       # plus the throughput table
    python3 Benchmarks/kernel_codegen.py --source OLD.c --mca   # another version of the micro-kernels
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CKERNELS = os.path.join(ROOT, "Sources", "CKernels")
KERNELS = os.path.join(CKERNELS, "microkernels_avx512.c")
# Each micro-kernel file: its checked functions, how many there must be, their vector registers.
FILES = [
    (KERNELS, re.compile(r"^(tile|direct7?)_\d+_\d+$"), 2 * 14 + 2 * 14 + 2 * 7, "zmm"),
    (os.path.join(CKERNELS, "microkernels_avx2.c"), re.compile(r"^(tile2|direct2)_\d+$"), 2 * 6, "ymm"),
]
INCLUDE = os.path.join(CKERNELS, "include")
HOT = ["tile_14_2", "tile_14_1", "direct_14_2", "direct_14_1", "direct7_14_2", "tile_8_2"]
MICRO = re.compile(r"^(tile|direct7?)_\d+_\d+$")


def toolchain_tool(name):
    """The Swift toolchain's tool (the clang SwiftPM uses), else one on PATH."""
    swift = shutil.which("swift")
    if swift:
        candidate = os.path.join(os.path.dirname(os.path.realpath(swift)), name)
        if os.path.exists(candidate):
            return candidate
    found = shutil.which(name)
    if not found:
        sys.exit(f"kernel_codegen: {name} not found (the Swift toolchain's bin folder has it)")
    return found


def compile_c(source, level, out, assembly=False):
    # The flags SwiftPM passes for a C target in release (swift build -c release -v), without
    # its module-map and dependency-file flags.
    cmd = [toolchain_tool("clang"), "-target", "x86_64-unknown-linux-gnu", f"-{level}", "-fPIC", "-fblocks",
           "-fno-omit-frame-pointer", "-g", "-DSWIFT_PACKAGE=1", "-I", INCLUDE, "-I", CKERNELS,
           "-S" if assembly else "-c", source, "-o", out]
    subprocess.run(cmd, check=True)


def functions(obj):
    """Function name -> its instructions, from the object's disassembly."""
    text = subprocess.run([toolchain_tool("llvm-objdump"), "-d", "--no-show-raw-insn", "--no-leading-addr", obj],
                          check=True, capture_output=True, text=True).stdout
    result, current = {}, None
    for line in text.splitlines():
        m = re.match(r"^<(\S+)>:", line)
        if m:
            current = m.group(1)
            result[current] = []
        elif current and line.strip():
            result[current].append(line.strip())
    return result


def stack_vector_moves(instructions, register="zmm"):
    return sum(1 for i in instructions if register in i and re.search(r"\((%rsp|%rbp)", i))


def hot_loop(assembly, name):
    """The basic block of `name` with the most FMAs (the unrolled reduction step), as llvm-mca input."""
    lines = open(assembly).read().splitlines()
    inside, blocks, block = False, [], []
    for line in lines:
        if line.startswith(name + ":"):
            inside = True
            continue
        if not inside:
            continue
        if line.startswith(".Lfunc_end"):
            break
        if re.match(r"^\.LBB\S+:", line) or line.startswith("# %bb"):
            blocks.append(block)
            block = []
            continue
        s = line.strip()
        if s and not s.startswith(("#", ".")):
            block.append(s.split("#")[0])
    blocks.append(block)
    best = max(blocks, key=lambda b: sum("vfmadd" in i for i in b))
    return [i for i in best if not i.startswith("j")]


def mca(loop, cpu):
    fmas = sum("vfmadd" in i for i in loop)
    if fmas == 0:
        return None
    with tempfile.NamedTemporaryFile("w", suffix=".s", delete=False) as f:
        f.write("\n".join(loop) + "\n")
    out = subprocess.run(["llvm-mca", f"-mcpu={cpu}", "-iterations=200", f.name], capture_output=True, text=True).stdout
    os.unlink(f.name)
    m = re.search(r"Total Cycles:\s+(\d+)", out)
    return fmas * 200 / int(m.group(1)) if m else None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--source", default=KERNELS, help="the micro-kernel file to compile (default: the package's microkernels_avx512.c)")
    ap.add_argument("--mca", action="store_true", help="print llvm-mca's FMAs per cycle for the hot loops")
    ap.add_argument("--cpu", default="skylake-avx512", help="llvm-mca's CPU model (default skylake-avx512)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        files = FILES if args.source == KERNELS else [(args.source,) + FILES[0][1:]]
        spilled = {}
        for source, pattern, expected, register in files:
            obj = os.path.join(tmp, "kernels.o")
            compile_c(source, "O2", obj)
            funcs = {n: i for n, i in functions(obj).items() if pattern.match(n)}
            if len(funcs) < expected:
                print(f"kernel_codegen: found only {len(funcs)} micro-kernels in {source}")
                return 1
            these = {n: stack_vector_moves(i, register) for n, i in funcs.items() if stack_vector_moves(i, register)}
            print(f"{os.path.basename(source)}: {len(funcs)} micro-kernels at -O2 (SwiftPM's release default): "
                  f"{len(these)} move {register} registers through the stack")
            for name, count in sorted(these.items()):
                print(f"  {name}: {count} {register} loads/stores on the stack")
            spilled.update(these)
        if args.mca:
            if not shutil.which("llvm-mca"):
                print("kernel_codegen: llvm-mca not found (apt-get install llvm)")
                return 1
            print(f"\nFMAs per cycle of the hot loop, llvm-mca -mcpu={args.cpu} (peak 2.0):")
            print(f"{'kernel':14} {'-O2':>6} {'-O3':>6}")
            for level in ("O2", "O3"):
                compile_c(args.source, level, os.path.join(tmp, f"{level}.s"), assembly=True)
            for name in HOT:
                rates = [mca(hot_loop(os.path.join(tmp, f"{level}.s"), name), args.cpu) for level in ("O2", "O3")]
                print(f"{name:14} " + " ".join(f"{r:6.2f}" if r else "     -" for r in rates))
        return 1 if spilled else 0


if __name__ == "__main__":
    sys.exit(main())
