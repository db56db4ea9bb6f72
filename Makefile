# The README's quick start: `make run`, then `make test`. Both install missing system packages.
SWIFT ?= swift
APT_PACKAGES := libzip-dev libopenblas-dev libjpeg62-turbo-dev libpng-dev pkg-config
DEFAULT_CHECKPOINT := Fixtures/models/tiny-basic-r18ish.pth
DEFAULT_GOLDEN := Fixtures/models/tiny-basic-r18ish.golden.pth
VENV := .venv-torch
PY := $(VENV)/bin/python

.PHONY: deps build run test ci docs consumer verify-red-team check-kernels check-arm64 fixtures check-formats venv bench-load bench bench-convert parity clean fuzz

deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing$$missing"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

build: deps
	$(SWIFT) build -c release

# The bundled default checkpoint: inspect it, convert it to .safetensors, verify the converted file
# against the golden real PyTorch wrote.
DEFAULT_CONVERTED := .build/tiny-basic-r18ish.safetensors
run: build
	.build/release/torchport inspect $(DEFAULT_CHECKPOINT) | tail -8
	.build/release/torchport convert $(DEFAULT_CHECKPOINT) -o $(DEFAULT_CONVERTED) --force
	.build/release/torchport verify $(DEFAULT_CONVERTED) --golden $(DEFAULT_GOLDEN)

test: deps
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build

# What CI runs (.ci/run): the tests, then the checks that look at Torchport from outside.
ci: test docs check-kernels check-arm64 consumer

# The documentation: every public symbol of the library modules has a doc comment
# (scripts/doc_coverage.py, on the symbol graphs), and the DocC catalog builds, all library
# modules combined, with warnings as errors (swift-docc-plugin); the site is in .build/docs.
DOC_TARGETS := TorchportCore TorchCheckpoint SafeTensors StateDict Conversion ResNet Verification Images Classification Torchport
docs: deps
	$(SWIFT) package dump-symbol-graph --minimum-access-level public >/dev/null
	python3 scripts/doc_coverage.py
	$(SWIFT) package --allow-writing-to-directory .build/docs generate-documentation --enable-experimental-combined-documentation \
		$(foreach t,$(DOC_TARGETS),--target $(t)) --output-path .build/docs --warnings-as-errors

# Torchport as a dependency of another package, by file:// URL and version, built in release;
# the README's example and the reader-only product run, and ldd shows what each links.
consumer: deps
	Tests/Consumer/run.sh

# The micro-kernels as SwiftPM compiles them (-O2, no unsafeFlags): no zmm register spilled.
# `python3 Benchmarks/kernel_codegen.py --mca` adds llvm-mca's FMAs per cycle, -O2 against -O3.
check-kernels:
	python3 Benchmarks/kernel_codegen.py

# The C targets for aarch64 (Debian's gcc-aarch64-linux-gnu, warnings as errors), and the portable
# harness (Tests/CKernelsPortable) run under qemu-aarch64, and natively with the clang SwiftPM uses.
ARM64_CC := aarch64-linux-gnu-gcc
C_WARNINGS := -std=gnu11 -O2 -Wall -Wextra -Werror
check-arm64:
	@mkdir -p .build
	@command -v $(ARM64_CC) >/dev/null && command -v qemu-aarch64 >/dev/null || { \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq gcc-aarch64-linux-gnu qemu-user; }
	@for f in Sources/CKernels/*.c Sources/CSHA256/*.c; do \
		$(ARM64_CC) $(C_WARNINGS) -ISources/CKernels/include -ISources/CSHA256/include -c $$f -o /dev/null || exit 1; \
		echo "aarch64: compiled $$f"; done
	$(ARM64_CC) $(C_WARNINGS) -static -ISources/CKernels/include Tests/CKernelsPortable/harness.c Sources/CKernels/*.c \
		-lpthread -lm -o .build/ckernels-harness-aarch64
	qemu-aarch64 .build/ckernels-harness-aarch64
	clang $(C_WARNINGS) -ISources/CKernels/include Tests/CKernelsPortable/harness.c Sources/CKernels/*.c \
		-lpthread -lm -o .build/ckernels-harness-native
	.build/ckernels-harness-native

# Fixtures and benchmarks need real torch (never a runtime dependency).
venv:
	@[ -x $(PY) ] || (python3 -m venv $(VENV) && $(VENV)/bin/pip install torch==2.15.0 torchvision==0.29.2 safetensors onnxruntime onnx scikit-image picklescan)

fixtures: venv
	$(PY) Fixtures/generate.py
	$(PY) Fixtures/generate_models.py
	$(PY) Fixtures/generate_layers.py
	$(PY) Fixtures/generate_images.py
	$(PY) Fixtures/generate_formats.py
	python3 Fixtures/hostile/generate_hostile.py

# Every Fixtures/formats checkpoint converted by the built tool, then loaded into its model with
# load_state_dict(strict=True) under real torch (writes Fixtures/formats/strict-load.txt).
check-formats: venv
	$(SWIFT) build --product torchport
	$(PY) Fixtures/check_formats.py

# ~100 MB checkpoints (zip, shards, distributed) converted by torchport and by torch, side by side.
bench-convert: venv
	$(SWIFT) build -c release --product torchport
	$(PY) Benchmarks/convert_layouts.py

# The red team's corpus cases (class 11) under real torch: each payload runs, as `scan` says.
verify-red-team: venv
	$(PY) Fixtures/hostile/verify_with_torch.py

# All ten full-size torchvision ResNets, seeded, verified against torch (generated, not committed).
parity: venv build
	$(PY) scripts/parity.py

# ResNet-50 batch 1 and 8, 2 threads: Torchport vs torch eager vs ONNX Runtime, side by side.
bench: venv build
	$(PY) Benchmarks/speed_vs_torch.py --runs 40 --rounds 20

bench-load: venv
	$(SWIFT) build -c release --product torchport-bench
	$(PY) Benchmarks/load_vs_torch.py

# libFuzzer campaign: builds torchport-fuzz with -sanitize=fuzzer,address into .build-fuzz, then runs
# each target for FUZZ_SECONDS with its dictionary and a seed corpus made from the fixtures
# (Fuzz/run-target.sh). Findings land in .build-fuzz/findings/<target>/; minimise them into
# Fixtures/fuzz/regressions/<target>/, which `make test` replays (FuzzRegressionTests).
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= zip legacy unpickler safetensors inspect scan
FUZZ_BUILD_FLAGS := -c release --scratch-path .build-fuzz --product torchport-fuzz \
	-Xswiftc -DFUZZING -Xswiftc -parse-as-library -Xswiftc -sanitize=fuzzer,address

fuzz: deps
	$(SWIFT) build $(FUZZ_BUILD_FLAGS)
	@status=0; for t in $(FUZZ_TARGETS); do Fuzz/run-target.sh $$t $(FUZZ_SECONDS) || status=1; done; exit $$status

clean:
	rm -rf .build Benchmarks/.build
