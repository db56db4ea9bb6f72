#!/usr/bin/env bash
# The consumer check: Torchport used from outside this repository, as a SwiftPM user would.
#
#  1. Clones this repository (its committed HEAD) into a temporary folder and tags the clone with
#     the package's version.
#  2. Creates a package (Package.swift.in) that depends on the clone by file:// URL with a
#     `from:` version requirement, with two programs:
#     - `full` (product Torchport): the README's library example, spliced in from README.md,
#       run on a committed fixture; its logits must match the ones PyTorch wrote.
#     - `reader` (product TorchportReader): read, map, convert to safetensors, read back; the
#       architecture must be the one the fixture generator recorded, every tensor identical.
#  3. Builds it in release (SwiftPM refuses a dependency with unsafe flags) and runs both.
#  4. Shows with ldd that `reader` links neither OpenBLAS nor libjpeg nor libpng (and that
#     `full` does link OpenBLAS, so the check can see a library when it is there).
#
# Run by `make consumer` and by .ci/run after `make test`. Uncommitted changes are not seen:
# the check is of what a user would get from the repository.
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
here="$repo/Tests/Consumer"
fixture="$repo/Fixtures/models/tiny-basic-r18ish"
work="$(mktemp -d "${TMPDIR:-/tmp}/torchport-consumer.XXXXXX")"
trap 'rm -rf "$work"' EXIT
fail() { echo "consumer check: FAILED: $*" >&2; exit 1; }

if [ -n "$(git -C "$repo" status --porcelain --untracked-files=no)" ]; then
    echo "consumer check: note: uncommitted changes in $repo are not part of this check (it clones HEAD)"
fi
version="$(sed -n 's/^public let torchportVersion = "\(.*\)"$/\1/p' "$repo/Sources/TorchportCore/Version.swift")"
[ -n "$version" ] || fail "no torchportVersion in Sources/TorchportCore/Version.swift"

git clone --quiet "$repo" "$work/Torchport"
git -C "$work/Torchport" tag "$version"
echo "consumer check: Torchport $version at $(git -C "$work/Torchport" rev-parse --short HEAD), by file://$work/Torchport"

mkdir -p "$work/consumer/Sources/full" "$work/consumer/Sources/reader"
sed -e "s|@URL@|file://$work/Torchport|" -e "s|@VERSION@|$version|" "$here/Package.swift.in" > "$work/consumer/Package.swift"
# The README's example: the swift block under "## The library" that starts with `import Torchport`
# (its import line left out: the program has its own).
example="$(awk '/^## /{s=($0=="## The library")} s&&/^```swift/{c=1;n=0;b="";next} c&&/^```/{c=0; if(first=="import Torchport"){printf "%s",b; exit}; next} c{n++; if(n==1){first=$0; next}; b=b $0 "\n"}' "$repo/README.md")"
[ -n "$example" ] || fail "no swift block starting with 'import Torchport' under '## The library' in README.md"
printf '%s\n' "$example" > "$work/example.swift"
awk -v f="$work/example.swift" '/^@README@$/{while((getline l < f)>0) print l; next} {print}' \
    "$here/full/main.swift.in" > "$work/consumer/Sources/full/main.swift"
cp "$here/reader/main.swift" "$work/consumer/Sources/reader/main.swift"

echo "consumer check: swift build -c release (the consumer and Torchport as its dependency)"
swift build -c release --package-path "$work/consumer" 2>&1 | grep -E "error|warning: |Compiling|Build complete" | grep -v "^\[" || true
bin="$work/consumer/.build/release"
[ -x "$bin/full" ] && [ -x "$bin/reader" ] || fail "the consumer did not build"

echo "consumer check: full (README example)"
out="$("$bin/full" "$fixture.pth" "$fixture.golden.pth")" || fail "full exited with $?"
echo "$out" | sed 's/^/  /'
grep -qx "parity: ok" <<<"$out" || fail "the README example's logits do not match PyTorch's"
grep -qx "classes: 10" <<<"$out" || fail "expected 10 classes"

echo "consumer check: reader (TorchportReader)"
out="$("$bin/reader" "$fixture.pth" "$work/converted.safetensors")" || fail "reader exited with $?"
echo "$out" | sed 's/^/  /'
# What the fixture generator recorded with torch (Fixtures/models/manifest.json).
want="$(python3 - "$repo/Fixtures/models/manifest.json" <<'PY'
import json, sys
m = next(e for e in json.load(open(sys.argv[1])) if e["name"] == "tiny-basic-r18ish")
a = m["arch"]
print("layers: " + ",".join(map(str, a["layers"])))
print("stage widths: " + ",".join(map(str, a["stage_widths"])))
print("classes: %d" % a["num_classes"])
PY
)"
while IFS= read -r line; do grep -qxF "$line" <<<"$out" || fail "reader: expected '$line'"; done <<<"$want"
# convert writes the whole state dict (num_batches_tracked too): every tensor of this bare state dict.
tensors="$(sed -n 's/^tensors: \([0-9]*\) state dict: .*$/\1/p' <<<"$out")"
[ -n "$tensors" ] && [ "$tensors" -gt 0 ] || fail "reader: no state dict"
grep -qx "converted: $tensors tensors, $tensors identical to the checkpoint's" <<<"$out" \
    || fail "reader: the converted file does not hold the $tensors tensors byte for byte"

echo "consumer check: ldd"
# ldd into a file first: `ldd | grep -q` under pipefail fails when grep stops reading early (SIGPIPE).
ldd "$bin/full" > "$work/full.ldd"
grep -q "libopenblas" "$work/full.ldd" || fail "full does not link OpenBLAS: the ldd check below would prove nothing"
linked="$(ldd "$bin/reader" | grep -E "openblas|libjpeg|libpng|libblas|liblapack" || true)"
[ -z "$linked" ] || fail "reader links what the reader product must not: $linked"
echo "  full links: $(ldd "$bin/full" | grep -oE "lib(openblas|jpeg|png)[^ ]*" | sort -u | tr '\n' ' ')"
echo "  reader links none of libopenblas, libjpeg, libpng ($(ldd "$bin/reader" | wc -l) libraries: $(ldd "$bin/reader" | awk '{print $1}' | grep -vE "^/|linux-vdso" | tr '\n' ' '))"
echo "consumer check: passed"
