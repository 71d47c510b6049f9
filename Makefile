# swiftq: the two commands a user needs are `make demo` and `make test`; both install what they need.
SHELL := /bin/bash
.DEFAULT_GOAL := build

# System packages from Debian (the ONNX schema, protobuf-c, zlib, and the image codecs).
APT_PACKAGES := libprotobuf-c-dev protobuf-c-compiler libonnx-dev zlib1g-dev libturbojpeg0-dev libjpeg62-turbo-dev libpng-dev
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
SWIFT_BUILD_FLAGS := -c release
BIN := .build/release/swiftq
VENV := .venv
PY := $(VENV)/bin/python
SHARED ?= $(or $(SWIFTQ_SHARED),$(abspath ../shared))

.PHONY: deps commit-header build install install-check test unit hostile model-kinds fuzz sanitize check-shared demo demo-model report-check report-screenshot chromium proto fixtures venv bench profile layers quant-table weight-table clean

## Installs the Debian packages swiftq builds against (idempotent: only what is missing).
deps:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed$$' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing: $$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing >/dev/null; \
	fi

## The commit `swiftq --version` names, in a header rewritten only when it changes (so that nothing else rebuilds).
COMMIT_HEADER := Sources/CSupport/build_commit.h
commit-header:
	@c=$$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown); git diff --quiet HEAD -- 2>/dev/null || c="$$c-dirty"; \
	  line="#define SWIFTQ_COMMIT \"$$c\""; \
	  [ -f $(COMMIT_HEADER) ] && [ "$$(cat $(COMMIT_HEADER))" = "$$line" ] || echo "$$line" > $(COMMIT_HEADER)

build: deps commit-header
	swift build $(SWIFT_BUILD_FLAGS)

## Installs the binary, a man page per command (swift-argument-parser's manual plugin: `man swiftq`,
## `man swiftq.quantize`, ...) and bash, zsh and fish completions under PREFIX (DESTDIR stages a package).
PREFIX ?= /usr/local
MANUAL := .build/plugins/GenerateManual/outputs/swiftq
install: build
	@rm -rf $(MANUAL)
	swift package plugin generate-manual --multi-page >/dev/null
	install -Dm755 $(BIN) $(DESTDIR)$(PREFIX)/bin/swiftq
	@for f in $(MANUAL)/*.1; do install -Dm644 $$f $(DESTDIR)$(PREFIX)/share/man/man1/$$(basename $$f); done
	@mkdir -p $(DESTDIR)$(PREFIX)/share/bash-completion/completions $(DESTDIR)$(PREFIX)/share/zsh/site-functions \
	  $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d
	$(BIN) --generate-completion-script bash > $(DESTDIR)$(PREFIX)/share/bash-completion/completions/swiftq
	$(BIN) --generate-completion-script zsh > $(DESTDIR)$(PREFIX)/share/zsh/site-functions/_swiftq
	$(BIN) --generate-completion-script fish > $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d/swiftq.fish
	@echo "installed swiftq $$($(BIN) --version) under $(DESTDIR)$(PREFIX)"

## `make install` into a temporary prefix, then what a user does with it (scripts/install_check.sh).
install-check: venv
	scripts/install_check.sh $(PY)

## Unit tests (no Python, no ../shared needed), then the real-model checks when ../shared is there.
## The test targets are built with the same flags as the binary (`swift test` alone would turn on testable imports and
## rebuild every module twice: once for the tests, once more for the next `swift build`).
test: build
	swift build $(SWIFT_BUILD_FLAGS) --build-tests 2>&1 | grep -vE "^\[[0-9]+/[0-9]+\]"; exit $${PIPESTATUS[0]}
	swift test $(SWIFT_BUILD_FLAGS) --skip-build --disable-swift-testing 2>&1 | tee .build/unit-tests.log | grep -vE "^(Test Case .* (started|passed)|\[[0-9]+/[0-9]+\])"; \
	  status=$${PIPESTATUS[0]}; grep -E "^\s*Executed [0-9]+ tests" .build/unit-tests.log | tail -1; exit $$status
	@$(MAKE) --no-print-directory hostile
	@$(MAKE) --no-print-directory model-kinds
	@if [ -d "$(SHARED)/models" ]; then $(MAKE) --no-print-directory check-shared; \
	else echo "../shared not found (set SWIFTQ_SHARED): real-model checks skipped"; fi

## Hostile and careless input against the built binary (scripts/hostile.py): exit codes, one-line errors naming
## the file, nothing left behind, inputs unchanged. Needs the Python venv, not ../shared.
hostile: build venv
	$(PY) scripts/hostile.py $(BIN)
	$(PY) scripts/killtest.py $(BIN) --rounds 10

## The CNN kinds users bring (Fixtures/model_kinds.py: EfficientNet-B0-, YOLOv8- and NHWC Keras-ResNet-shaped nets):
## quantized, run on the integer runtime and in ONNX Runtime, fidelity within the bounds scripts/model_kinds.py states.
model-kinds: build venv
	$(PY) scripts/model_kinds.py $(BIN)

## libFuzzer targets (Fuzz/): the ONNX reader, the calibration table reader, the JPEG/PNG decoders, each for
## FUZZ_SECONDS after replaying its regression inputs. CI runs it with FUZZ_SECONDS=30 (its 30-minute budget on 2 cores).
FUZZ_SECONDS ?= 600
fuzz: build
	scripts/fuzz.sh $(FUZZ_SECONDS)

## The unit tests under AddressSanitizer and LeakSanitizer (Swift and C) and UndefinedBehaviorSanitizer (the C
## kernels and decoders; Swift checks overflow and bounds itself), in a build folder of their own; then the
## hostile-input cases against the sanitized binary.
SANITIZE_FLAGS := -c release --sanitize=address -Xcc -fsanitize=undefined -Xcc -fno-sanitize-recover=undefined \
	-Xswiftc -Xclang-linker -Xswiftc -fsanitize=undefined --scratch-path .build-sanitize
sanitize: deps venv
	swift build --build-tests $(SANITIZE_FLAGS)
	UBSAN_OPTIONS=print_stacktrace=1 ASAN_OPTIONS=malloc_context_size=6 LSAN_OPTIONS=suppressions=$(CURDIR)/Tests/Sanitizers/lsan.supp swift test --skip-build $(SANITIZE_FLAGS) --disable-swift-testing 2>&1 | tee .build-sanitize/tests.log \
	  | grep -vE "^(Test Case .* (started|passed)|\[[0-9]+/[0-9]+\])"; status=$${PIPESTATUS[0]}; \
	  if grep -qE "runtime error:|ERROR: (Address|Leak)Sanitizer" .build-sanitize/tests.log; then echo "sanitizer reports above"; exit 1; fi; \
	  grep -E "^\s*Executed [0-9]+ tests" .build-sanitize/tests.log | tail -1; exit $$status
	ASAN_OPTIONS=malloc_context_size=6 LSAN_OPTIONS=suppressions=$(CURDIR)/Tests/Sanitizers/lsan.supp \
	  $(PY) scripts/hostile.py .build-sanitize/release/swiftq --sanitized

## End-to-end checks on the real models and images in ../shared, side by side with ONNX Runtime.
check-shared: build venv
	SWIFTQ_SHARED=$(SHARED) $(PY) scripts/check_shared.py $(BIN)
	SWIFTQ_SHARED=$(SHARED) $(PY) scripts/detector_check.py $(BIN)

## swiftq beside ONNX Runtime on every ../shared model: float images/s at batch 1, same threads, and the ratio.
bench: build venv
	@if [ ! -d "$(SHARED)/models" ]; then echo "../shared not found (set SWIFTQ_SHARED): nothing to benchmark"; exit 1; fi
	SWIFTQ_SHARED=$(SHARED) $(PY) scripts/bench.py $(BIN) $(BENCH_ARGS)

## Float time per layer, swiftq against ONNX Runtime's own profile, with swiftq's fraction of this machine's peak.
profile: build venv
	@if [ ! -d "$(SHARED)/models" ]; then echo "../shared not found (set SWIFTQ_SHARED)"; exit 1; fi
	SWIFTQ_SHARED=$(SHARED) $(PY) scripts/profile_vs_ort.py $(BIN) $(PROFILE_ARGS)

## Each Conv and MaxPool alone as a one-node model, swiftq against ONNX Runtime, nothing profiled (LAYERS_ARGS: --model, --threads, --filter).
layers: build venv
	@if [ ! -d "$(SHARED)/models" ]; then echo "../shared not found (set SWIFTQ_SHARED)"; exit 1; fi
	SWIFTQ_SHARED=$(SHARED) $(PY) scripts/layers_vs_ort.py $(BIN) $(LAYERS_ARGS)

## Int8 accuracy of swiftq's models by method, per channel and per tensor, on ../shared (ONNX Runtime runs them).
quant-table: build venv
	@if [ ! -d "$(SHARED)/models" ]; then echo "../shared not found (set SWIFTQ_SHARED)"; exit 1; fi
	SWIFTQ_SHARED=$(SHARED) $(PY) scripts/quant_table.py $(BIN)

## Sub-8-bit weights on ../shared: model x {nearest, GPTQ} x {W8, W6, W4, W3} top-1, W4 in ONNX Runtime and the agreement,
## file sizes, GPTQ's time against plain calibration, and --max-drop 0.5 on W4 (scripts/weight_table.py; about 15 minutes).
weight-table: build venv
	@if [ ! -d "$(SHARED)/models" ]; then echo "../shared not found (set SWIFTQ_SHARED)"; exit 1; fi
	SWIFTQ_SHARED=$(SHARED) $(PY) scripts/weight_table.py $(BIN)

## The main job on the built-in example: a small CNN trained on scikit-learn's handwritten digits
## (Fixtures/train_digits.py), quantized on its training split and evaluated, fp32 against int8, on the held-out
## split. --max-drop makes the run fail if int8 loses more than half a point.
DEMO := .build/demo
demo: build
	@echo "--- the model: Conv+BatchNorm+ReLU6, depthwise, residual Add, MaxPool, GlobalAveragePool, Gemm (Fixtures/digits/digits.onnx)"
	$(BIN) inspect Fixtures/digits/digits.onnx
	@echo "--- quantize it, calibrating on the training split (500 of its 1437 PNGs, the default --calib-limit; written to $(DEMO)/)"
	@mkdir -p $(DEMO)
	$(BIN) quantize Fixtures/digits/digits.onnx --calib Fixtures/digits/train -o $(DEMO)/digits.int8.onnx --report $(DEMO)/quantize.html
	@echo "--- fp32 against int8 on the 360 held-out digits (the int8 model with its .swq runs on swiftq's integer runtime)"
	$(BIN) eval Fixtures/digits/digits.onnx $(DEMO)/digits.int8.onnx --data Fixtures/digits/test --max-drop 0.5 --report $(DEMO)/eval.html
	@echo "--- the reports, to open in a browser: $(DEMO)/quantize.html (weight ranges, activation histograms), $(DEMO)/eval.html (SQNR per activation)"

## Retrains the demo model and rewrites Fixtures/digits/ (deterministic: the same bytes each run). Its own venv,
## .venv-train, with the pinned JAX and scikit-learn of Fixtures/train_digits.requirements.txt.
demo-model:
	@[ -x .venv-train/bin/python ] || python3 -m venv .venv-train
	.venv-train/bin/pip install -q -r Fixtures/train_digits.requirements.txt
	.venv-train/bin/python Fixtures/train_digits.py

## The HTML reports in headless Chromium (Debian's chromium, installed when missing): each loads from disk with no
## console error and no request, and every chart holds drawn marks (scripts/report_check.py; needs ../shared).
report-check: build venv chromium
	@if [ ! -d "$(SHARED)/models" ]; then echo "../shared not found (set SWIFTQ_SHARED): report check skipped"; exit 0; fi; \
	  SWIFTQ_SHARED=$(SHARED) $(PY) scripts/report_check.py $(BIN)

## The same, and a new docs/report.png (the top of EfficientNet-Lite0's quantize report) for the README.
report-screenshot: build venv chromium
	SWIFTQ_SHARED=$(SHARED) $(PY) scripts/report_check.py $(BIN) --screenshot docs/report.png

chromium:
	@command -v chromium >/dev/null || { echo "installing chromium"; $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium >/dev/null; }

## Regenerates the C reader/writer from the ONNX schema installed by libonnx-dev.
proto: deps
	protoc-c --proto_path=/usr/include/onnx --c_out=Sources/COnnx /usr/include/onnx/onnx.proto
	mv Sources/COnnx/onnx.pb-c.h Sources/COnnx/include/onnx.pb-c.h

## Regenerates Fixtures/ (the outputs are committed; tests need no Python).
fixtures: venv
	$(PY) Fixtures/generate.py
	$(PY) Fixtures/model_kinds.py

## Python with onnx, onnxruntime, numpy and pillow, for fixtures and for side-by-side checks with ONNX Runtime.
venv: $(VENV)/.installed
$(VENV)/.installed: scripts/requirements.txt
	@command -v python3 >/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq python3 python3-venv >/dev/null; }
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r scripts/requirements.txt
	touch $@

clean:
	rm -rf .build
