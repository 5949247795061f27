# SegKit's two commands: `make demo` and `make test`. Both install the Debian
# packages SegKit needs first (only those that are missing).
SHELL := /bin/bash
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
DEBS := libhdf5-dev libopenblas-dev libpng-dev zlib1g-dev pkg-config dataset-fashion-mnist

.PHONY: deps build release test demo fixtures keras-check bench-compare fuzz

deps:
	@missing=$$(for p in $(DEBS); do \
	    dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	    echo "make deps: installing" $$missing; \
	    $(SUDO) apt-get update -qq && \
	    $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

build: deps
	swift build

release: deps
	swift build -c release --product segkit

test: deps
	swift build --build-tests
	swift test
	.build/debug/segkit-fuzz --cases 600 --seed $(FUZZ_SEED)

# The fuzzing harness alone, longer (`make fuzz FUZZ_CASES=20000 FUZZ_SEED=7`).
FUZZ_SEED ?= 1
FUZZ_CASES ?= 5000
fuzz: build
	.build/debug/segkit-fuzz --cases $(FUZZ_CASES) --seed $(FUZZ_SEED) --keep fuzz-failures

demo: release
	.build/release/segkit demo

# Regenerates the Keras fixtures (developers only; needs the two venvs that
# Tests/Fixtures/make_fixtures.py describes, outside the repository).
VENVS ?= ../venvs
fixtures:
	KERAS_BACKEND=jax $(VENVS)/k3/bin/python Tests/Fixtures/make_fixtures.py --keras 3
	$(VENVS)/tf/bin/python Tests/Fixtures/make_fixtures.py --keras 2

# Loads what SegKit writes in real Keras and compares predictions (developers
# only; needs the Keras 3 venv that Tests/Fixtures/make_fixtures.py describes).
KERAS_CHECK_DIR ?= /tmp/segkit-keras-check
RECIPES := heatmap-bilinear heatmap-nearest transposed transposed-skips fcn-32s fcn-16s fcn-8s unet-pretrained
keras-check: build
	@mkdir -p $(KERAS_CHECK_DIR)
	@set -e; for m in plain_cnn.k3.keras vgg.k2.h5 residual.k3.h5 nested.k2.h5 mobilenet_v2.k3.keras; do \
	    .build/debug/segkit convolutionalize Tests/Fixtures/keras/$$m --out $(KERAS_CHECK_DIR)/fcn-$$m.keras >/dev/null; \
	    .build/debug/segkit convolutionalize Tests/Fixtures/keras/$$m --out $(KERAS_CHECK_DIR)/fcn-$$m.h5 >/dev/null; done
	@set -e; for r in $(RECIPES); do \
	    .build/debug/segkit build --recipe $$r --classifier Tests/Fixtures/keras/plain_cnn.k3.keras --out $(KERAS_CHECK_DIR)/$$r.keras >/dev/null; \
	    .build/debug/segkit build --recipe $$r --classifier Tests/Fixtures/keras/vgg.k2.h5 --out $(KERAS_CHECK_DIR)/vgg-$$r.h5 >/dev/null; done
	@.build/debug/segkit build --recipe unet-pretrained --classifier Tests/Fixtures/keras/mobilenet_v2.k3.keras --classes 5 --set batch_norm=true --out $(KERAS_CHECK_DIR)/mnv2-unet.keras >/dev/null
	@.build/debug/segkit build --recipe unet-scratch --classes 11 --input-channels 1 --out $(KERAS_CHECK_DIR)/unet-scratch.keras >/dev/null
	@.build/debug/segkit build --recipe unet-scratch --classes 2 --input-channels 1 --set padding=valid --set depth=2 --out $(KERAS_CHECK_DIR)/unet-valid.h5 >/dev/null
	KERAS_BACKEND=jax $(VENVS)/k3/bin/python Tests/Fixtures/keras_check.py .build/debug/segkit \
	    $(KERAS_CHECK_DIR)/fcn-plain_cnn.k3.keras.keras:40,32 $(KERAS_CHECK_DIR)/fcn-plain_cnn.k3.keras.h5:24,24 \
	    $(KERAS_CHECK_DIR)/fcn-vgg.k2.h5.keras:24,24 $(KERAS_CHECK_DIR)/fcn-vgg.k2.h5.h5:16,16 \
	    $(KERAS_CHECK_DIR)/fcn-residual.k3.h5.keras:40,40 $(KERAS_CHECK_DIR)/fcn-nested.k2.h5.keras:32,32 \
	    $(KERAS_CHECK_DIR)/fcn-mobilenet_v2.k3.keras.keras:64,64 $(KERAS_CHECK_DIR)/fcn-mobilenet_v2.k3.keras.h5:64,96 \
	    $(foreach r,$(RECIPES),$(KERAS_CHECK_DIR)/$(r).keras:32,40 $(KERAS_CHECK_DIR)/vgg-$(r).h5:16,24) \
	    $(KERAS_CHECK_DIR)/mnv2-unet.keras:64,64 $(KERAS_CHECK_DIR)/unet-scratch.keras:32,48 $(KERAS_CHECK_DIR)/unet-valid.h5:44,44

# SegKit and Keras/TensorFlow on the same three workloads, each workload run by
# Keras and then by SegKit back to back, in BENCH_ROUNDS rounds (this machine's
# speed drifts within a minute), printing each pair's SegKit/Keras ratios and
# their medians. The Keras side needs tensorflow-cpu in a venv outside the
# repository; it is created on first use.
BENCH_ROUNDS ?= 3
BENCH_DIR ?= /tmp/segkit-bench
comma := ,
space := $(empty) $(empty)
BENCH_PAIRS = $(foreach r,$(shell seq $(BENCH_ROUNDS)),$(foreach w,i ii iii,$(r)-$(w)))
bench-compare: release
	@test -x $(VENVS)/tf/bin/python || (python3 -m venv $(VENVS)/tf && $(VENVS)/tf/bin/pip install -q tensorflow-cpu==2.21.0)
	@mkdir -p $(BENCH_DIR)
	@set -e; for pair in $(BENCH_PAIRS); do w=$${pair#*-}; \
	    echo "== round $${pair%-*}, workload $$w: Keras, then SegKit"; \
	    $(VENVS)/tf/bin/python ../shared/bench/keras_bench.py --only $$w --weights Recipes/demo/classifier.keras --json $(BENCH_DIR)/keras-$$pair.json 2>/dev/null | grep -E '^(i|ii|iii) '; \
	    .build/release/segkit bench --only $$w --json $(BENCH_DIR)/segkit-$$pair.json --compare-with $(BENCH_DIR)/keras-$$pair.json; \
	done
	@.build/release/segkit bench --summarize $(subst $(space),$(comma),$(foreach p,$(BENCH_PAIRS),$(BENCH_DIR)/segkit-$(p).json)) \
	    --compare-with $(subst $(space),$(comma),$(foreach p,$(BENCH_PAIRS),$(BENCH_DIR)/keras-$(p).json))
