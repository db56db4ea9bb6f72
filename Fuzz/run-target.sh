#!/usr/bin/env bash
# Runs one libFuzzer target of torchport-fuzz (built by `make fuzz`) for a given time.
#
#   Fuzz/run-target.sh TARGET SECONDS
#
# The corpus is a work folder, .build-fuzz/corpus/TARGET, seeded from the committed fixtures that
# suit the target (files up to FUZZ_SEED_MAX bytes), Fixtures/fuzz/seeds/TARGET and every
# regression file; findings go to .build-fuzz/findings/TARGET/ (not artifacts/, which SwiftPM owns in
# a scratch path and prunes on every build), the log to .build-fuzz/logs/.
# FUZZ_FORK=1 keeps fuzzing after a crash, timeout or OOM (libFuzzer fork mode, one job).
set -euo pipefail
target=${1:?usage: Fuzz/run-target.sh TARGET SECONDS}
seconds=${2:-60}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bin=.build-fuzz/release/torchport-fuzz
work=.build-fuzz
corpus=$work/corpus/$target
artifacts=$work/findings/$target
seedmax=${FUZZ_SEED_MAX:-131072}
mkdir -p "$corpus" "$artifacts" "$work/logs"
[ -x "$bin" ] || { echo "missing $bin: run 'make fuzz'" >&2; exit 1; }
[ -f "Fixtures/fuzz/$target.dict" ] || { echo "unknown target '$target' (no Fixtures/fuzz/$target.dict)" >&2; exit 1; }

# Seeds: a file is copied under its content hash, so re-seeding never duplicates.
seed() {
    local f
    for f in "$@"; do
        [ -f "$f" ] || continue
        [ "$(stat -c %s "$f")" -le "$seedmax" ] || continue
        cp "$f" "$corpus/seed-$(sha1sum "$f" | cut -c1-16)"
    done
}
is_zip() { [ "$(head -c 2 "$1")" = "PK" ]; }
pickles_and_zips=(Fixtures/checkpoints/*.pt* Fixtures/models/*.pth Fixtures/hostile/cases/*)
case "$target" in
zip)
    for f in "${pickles_and_zips[@]}"; do is_zip "$f" && seed "$f"; done ;;
legacy)
    for f in "${pickles_and_zips[@]}" Fixtures/pickles/*.pkl; do is_zip "$f" || seed "$f"; done ;;
unpickler)
    seed Fixtures/pickles/*.pkl
    # Every pickle inside the zip fixtures (data.pkl, constants.pkl, ...).
    python3 - "$corpus" "$seedmax" "${pickles_and_zips[@]}" <<'PY'
import hashlib, sys, zipfile
out, seedmax, files = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
for f in files:
    try:
        z = zipfile.ZipFile(f)
        for info in z.infolist():
            if info.filename.endswith(".pkl") and info.file_size <= seedmax:
                data = z.read(info)
                open(f"{out}/seed-{hashlib.sha1(data).hexdigest()[:16]}", "wb").write(data)
    except Exception:
        pass
PY
    ;;
safetensors)
    seed Fixtures/safetensors/python-written/*.safetensors Fixtures/safetensors/swift-written/*.safetensors ;;
inspect|scan)
    seed "${pickles_and_zips[@]}" Fixtures/pickles/*.pkl ;;
*)
    echo "unknown target '$target'" >&2; exit 1 ;;
esac
seed Fixtures/fuzz/seeds/"$target"/* Fixtures/fuzz/regressions/"$target"/*

# A private copy: a rebuild while this runs (fork mode re-executes the binary) changes nothing here.
mkdir -p "$work/bin"
cp "$bin" "$work/bin/torchport-fuzz-$target"
bin=$work/bin/torchport-fuzz-$target

flags=(-dict="Fixtures/fuzz/$target.dict" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10
       -print_final_stats=1 -artifact_prefix="$artifacts/")
if [ "${FUZZ_FORK:-0}" = 1 ]; then
    flags+=(-fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1)
fi
echo "fuzzing $target for ${seconds}s: $(ls "$corpus" | wc -l) inputs in $corpus"
set +e
TORCHPORT_FUZZ_TARGET=$target ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0} \
    "$bin" "${flags[@]}" "$corpus" >"$work/logs/$target.log" 2>&1
status=$?
set -e
# The final numbers: DONE and stat:: lines (plain mode), or the last "#N: cov:" line (fork mode).
grep -E "^#[0-9]+[[:space:]]+DONE|^stat::|==ERROR|^SUMMARY|Test unit written|INFO: fuzzed for" "$work/logs/$target.log" | tail -n 12 || true
grep -E "^#[0-9]+: cov:" "$work/logs/$target.log" | tail -n 1 || true
found=$(find "$artifacts" -type f | wc -l)
echo "$target: exit $status, $found artifact(s) in $artifacts, log $work/logs/$target.log"
exit "$status"
