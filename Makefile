# SegKit's two commands: `make demo` and `make test`. Both install the Debian
# packages SegKit needs first (only those that are missing).
SHELL := /bin/bash
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
DEBS := libhdf5-dev libopenblas-dev libpng-dev libjpeg62-turbo-dev zlib1g-dev pkg-config dataset-fashion-mnist python3

.PHONY: deps build release test demo fixtures keras-check unet-check export-check bench-compare bench-encoders bench-data fuzz

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
	.build/debug/segkit-fuzz --cases 250 --seed $(FUZZ_SEED)

# The fuzzing harness alone, longer (`make fuzz FUZZ_CASES=5000 FUZZ_SEED=7`: cases per corpus,
# FUZZ_CORPORA=models,cli,data,segmenters to choose).
FUZZ_SEED ?= 1
FUZZ_CASES ?= 5000
FUZZ_CORPORA ?= models,cli,data,segmenters
fuzz: build
	.build/debug/segkit-fuzz --cases $(FUZZ_CASES) --corpora $(FUZZ_CORPORA) --seed $(FUZZ_SEED) --keep fuzz-failures

demo: release
	.build/release/segkit demo

# Regenerates the Keras fixtures (developers only; needs the two venvs that
# Tests/Fixtures/make_fixtures.py describes, outside the repository).
VENVS ?= ../venvs
fixtures:
	KERAS_BACKEND=jax $(VENVS)/k3/bin/python Tests/Fixtures/make_fixtures.py --keras 3
	$(VENVS)/tf/bin/python Tests/Fixtures/make_fixtures.py --keras 2

# SegKit's from-scratch U-Net against the common Keras U-Net of the same shape on
# the same data, optimizer, batch and epochs: per-epoch training losses within
# the band of Keras's seeds (developers only; Keras 3 venv, ~10 min on 2 cores).
unet-check: release
	KERAS_BACKEND=jax $(VENVS)/k3/bin/python Tests/Fixtures/unet_keras_check.py --segkit .build/release/segkit

# `segkit export-training`'s script run on TensorFlow: its first-batch loss against
# SegKit's, 2 epochs under MirroredStrategy and as two MultiWorkerMirroredStrategy
# workers on 127.0.0.1, frozen weights unchanged, `segkit eval` of the result
# (developers only; needs the TensorFlow venv that make_fixtures.py describes).
# (`make keras-check` ends with it.)
export-check: release
	rm -rf $(KERAS_CHECK_DIR)/export-demo
	$(VENVS)/tf/bin/python Tests/Fixtures/export_training_check.py --segkit .build/release/segkit --demo $(KERAS_CHECK_DIR)/export-demo

# Loads what SegKit writes in real Keras and compares predictions (developers
# only; needs the Keras 3 venv that Tests/Fixtures/make_fixtures.py describes).
# Tests/Fixtures/keras_check.py runs `segkit forward --raw` (the graph as Keras
# runs it, no size rule), so each file is fed a size its raw graph runs at.
KERAS_CHECK_DIR ?= /tmp/segkit-keras-check
KC_SEGKIT ?= .build/debug/segkit
KC_BIN = $(KERAS_CHECK_DIR)/segkit
RECIPES := heatmap-bilinear heatmap-nearest transposed transposed-skips fcn-32s fcn-16s fcn-8s unet-pretrained
# Real users' classifiers and Keras Applications, each as FILE:INPUT:REF:STRIDE[:OUTPUT]:
# the classifier's declared input size, the reference size and total stride that
# `segkit build` prints ("total stride S, laid out at RxR"; the raw graph runs at
# R + kS), and the output to convert for a multi-output model. Every recipe is
# built as .keras and checked at REF x (REF+STRIDE); its .h5 (for KC_H5_NETS) at
# (REF+STRIDE) x REF; the convolutionalized classifier at INPUT x (INPUT+STRIDE).
# A build that `segkit build` refuses ("recipe R cannot be applied: reason") is
# printed and skipped; anything else failing stops the check. KC_SEGKIT: the
# segkit binary checked (the debug build by default), copied first so that a
# rebuild during the check cannot swap it.
KC_NETS := mnist_convnet.k3.keras:28:30:4 vgg_valid.k2.h5:150:150:8 pool3.k3.keras:54:60:9 \
    mini_xception.k2.h5:48:48:4 bn_head.k3.keras:32:32:4 binary_sigmoid.k2.h5:32:32:4 \
    two_outputs.k3.keras:32:32:4:main mobilenet_v1.k3.keras:64:64:32 \
    resnet50v2.k3.keras:64:64:32 inception_v3.k2.h5:75:75:32 \
    efficientnet_b0.k3.keras:64:64:32 mobilenet_v3_small.k2.h5:64:64:32 convnext_tiny.k3.keras:32:32:32 \
    inception_resnet_v2.k3.keras:75:83:16 regnetx002.k2.h5:64:64:32 tf_tutorial.k3.keras:64:64:8 \
    arith_net.k2.h5:32:32:4 augment_zoo.k3.keras:64:32:4
KC_H5_NETS := vgg_valid.k2.h5 mini_xception.k2.h5 binary_sigmoid.k2.h5 two_outputs.k3.keras mobilenet_v1.k3.keras
# The Keras Applications sum float32 rounding over 28-100 layers: a relative bound
# (as the importer tests use for them; MobileNet v1 reaches 8e-5 on logits of ~3).
KC_DEEP_NETS := mobilenet_v1.k3.keras resnet50v2.k3.keras inception_v3.k2.h5 efficientnet_b0.k3.keras \
    mobilenet_v3_small.k2.h5 convnext_tiny.k3.keras inception_resnet_v2.k3.keras regnetx002.k2.h5
KC_DEEP_TOL := rel=1e-4
keras-check: build
	@mkdir -p $(KERAS_CHECK_DIR) && cp $(KC_SEGKIT) $(KC_BIN)
	@set -e; for m in plain_cnn.k3.keras vgg.k2.h5 residual.k3.h5 nested.k2.h5 mobilenet_v2.k3.keras; do \
	    $(KC_BIN) convolutionalize Tests/Fixtures/keras/$$m --out $(KERAS_CHECK_DIR)/fcn-$$m.keras >/dev/null; \
	    $(KC_BIN) convolutionalize Tests/Fixtures/keras/$$m --out $(KERAS_CHECK_DIR)/fcn-$$m.h5 >/dev/null; done
	@set -e; for r in $(RECIPES); do \
	    $(KC_BIN) build --recipe $$r --classifier Tests/Fixtures/keras/plain_cnn.k3.keras --out $(KERAS_CHECK_DIR)/$$r.keras >/dev/null; \
	    $(KC_BIN) build --recipe $$r --classifier Tests/Fixtures/keras/vgg.k2.h5 --out $(KERAS_CHECK_DIR)/vgg-$$r.h5 >/dev/null; done
	@$(KC_BIN) build --recipe unet-pretrained --classifier Tests/Fixtures/keras/mobilenet_v2.k3.keras --classes 5 --set batch_norm=true --out $(KERAS_CHECK_DIR)/mnv2-unet.keras >/dev/null
	@$(KC_BIN) build --recipe unet-scratch --classes 11 --input-channels 1 --out $(KERAS_CHECK_DIR)/unet-scratch.keras >/dev/null
	@$(KC_BIN) build --recipe unet-scratch --classes 2 --input-channels 1 --set padding=valid --set depth=2 --out $(KERAS_CHECK_DIR)/unet-valid.h5 >/dev/null
	@set -e; specs=$(KERAS_CHECK_DIR)/specs.txt; : >$$specs; built=0; refused=0; \
	for entry in $(KC_NETS); do \
	    IFS=: read -r m in ref st out <<<"$$entry"; \
	    opt=$${out:+--output $$out}; tol=; exts=keras; \
	    case " $(KC_DEEP_NETS) " in *" $$m "*) tol=:$(KC_DEEP_TOL);; esac; \
	    case " $(KC_H5_NETS) " in *" $$m "*) exts="keras h5";; esac; \
	    for e in $$exts; do \
	        $(KC_BIN) convolutionalize Tests/Fixtures/keras/$$m $$opt --out $(KERAS_CHECK_DIR)/fcn-$$m.$$e >/dev/null; \
	        echo "$(KERAS_CHECK_DIR)/fcn-$$m.$$e:$$in,$$((in + st))$$tol" >>$$specs; \
	    done; \
	    for r in $(RECIPES); do for e in $$exts; do \
	        f=$(KERAS_CHECK_DIR)/$${m%.*}-$$r.$$e; rm -f $$f; rc=0; \
	        msg=$$($(KC_BIN) build --recipe $$r --classifier Tests/Fixtures/keras/$$m $$opt --out $$f 2>&1) || rc=$$?; \
	        if [ $$rc = 1 ] && [[ $$msg == *"cannot be applied"* ]]; then \
	            echo "refused: $$r on $$m: $$msg"; refused=$$((refused + 1)); continue; fi; \
	        [ $$rc = 0 ] || { echo "segkit build --recipe $$r on $$m failed (exit $$rc): $$msg"; exit 1; }; \
	        built=$$((built + 1)); \
	        if [ $$e = keras ]; then size=$$ref,$$((ref + st)); else size=$$((ref + st)),$$ref; fi; \
	        echo "$$f:$$size$$tol" >>$$specs; \
	    done; done; \
	done; echo "keras-check: built $$built segmenters of the new fixtures, $$refused refused"
	KERAS_BACKEND=jax JAX_COMPILATION_CACHE_DIR=$(KERAS_CHECK_DIR)/jax-cache JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS=0 \
	    $(VENVS)/k3/bin/python -u Tests/Fixtures/keras_check.py $(KC_BIN) \
	    $(KERAS_CHECK_DIR)/fcn-plain_cnn.k3.keras.keras:40,32 $(KERAS_CHECK_DIR)/fcn-plain_cnn.k3.keras.h5:24,24 \
	    $(KERAS_CHECK_DIR)/fcn-vgg.k2.h5.keras:24,24 $(KERAS_CHECK_DIR)/fcn-vgg.k2.h5.h5:16,16 \
	    $(KERAS_CHECK_DIR)/fcn-residual.k3.h5.keras:40,40 $(KERAS_CHECK_DIR)/fcn-nested.k2.h5.keras:32,32 \
	    $(KERAS_CHECK_DIR)/fcn-mobilenet_v2.k3.keras.keras:64,64 $(KERAS_CHECK_DIR)/fcn-mobilenet_v2.k3.keras.h5:64,96 \
	    $(foreach r,$(RECIPES),$(KERAS_CHECK_DIR)/$(r).keras:32,40 $(KERAS_CHECK_DIR)/vgg-$(r).h5:16,24) \
	    $(KERAS_CHECK_DIR)/mnv2-unet.keras:64,64 $(KERAS_CHECK_DIR)/unet-scratch.keras:32,48 $(KERAS_CHECK_DIR)/unet-valid.h5:44,44 \
	    $$(cat $(KERAS_CHECK_DIR)/specs.txt)
	$(MAKE) export-check

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

# Real encoders (issue 19): keras.applications classifiers at 224x224 (written once
# into $(BENCH_DIR)/encoders by Tests/Fixtures/encoder_classifiers.py), first through
# ../shared/bench/encoder_bench.py (Keras on TensorFlow, 2 threads, against the
# SegKit CLI as whole processes; its table is shown, its JSON lines kept), then
# `segkit bench --encoders` in process: rates, epochs, peak memory, per-layer
# profile and the SegKit/Keras ratios against those lines (developers only; the
# TensorFlow venv as bench-compare; BENCH_ENCODERS=mobilenet_v2 for one backbone).
BENCH_ENCODERS ?= mobilenet_v2,resnet50,efficientnet_b0
# Epochs of SegKit's in-process runs: 5 gives the issue's 5-epoch figure (cache building included).
BENCH_EPOCHS ?= 5
ENCODER_FILES = $(subst $(space),$(comma),$(foreach b,$(subst $(comma),$(space),$(BENCH_ENCODERS)),$(BENCH_DIR)/encoders/$(b).keras))
bench-encoders: release
	@test -x $(VENVS)/tf/bin/python || (python3 -m venv $(VENVS)/tf && $(VENVS)/tf/bin/pip install -q tensorflow-cpu==2.21.0)
	@mkdir -p $(BENCH_DIR)
	@missing=; for f in $(subst $(comma),$(space),$(ENCODER_FILES)); do [ -f $$f ] || missing=1; done; \
	[ -z "$$missing" ] || $(VENVS)/tf/bin/python Tests/Fixtures/encoder_classifiers.py $(BENCH_DIR)/encoders --backbones $(BENCH_ENCODERS)
	@set -o pipefail; $(VENVS)/tf/bin/python ../shared/bench/encoder_bench.py .build/release/segkit --backbones $(BENCH_ENCODERS) 2>/dev/null \
	    | tee $(BENCH_DIR)/encoders-keras.txt
	@grep '^{' $(BENCH_DIR)/encoders-keras.txt >$(BENCH_DIR)/encoders-keras.jsonl
	.build/release/segkit bench --encoders $(ENCODER_FILES) --epochs $(BENCH_EPOCHS) --json $(BENCH_DIR)/encoders-segkit.json \
	    --compare-with $(BENCH_DIR)/encoders-keras.jsonl

# Memory when the data is larger than memory (the real-datasets issue): 20,000
# generated 128x128 canvases as a PNG folder, one epoch of transposed-skips on
# the demo classifier with 256 MiB for decoded samples (so the folder is read
# lazily, batches decoded ahead of the compute); `train` prints its peak memory.
BENCH_DATA_DIR ?= /tmp/segkit-bench-data
BENCH_DATA_COUNT ?= 20000
bench-data: release
	@mkdir -p $(BENCH_DATA_DIR)
	@[ -d $(BENCH_DATA_DIR)/canvases ] || .build/release/segkit data fashion-canvas:count=$(BENCH_DATA_COUNT),size=128,seed=1 --folder --out $(BENCH_DATA_DIR)/canvases
	.build/release/segkit build --recipe transposed-skips --classifier Recipes/demo/classifier.keras --out $(BENCH_DATA_DIR)/seg.keras
	.build/release/segkit train $(BENCH_DATA_DIR)/seg.keras --data $(BENCH_DATA_DIR)/canvases --data-memory-mb 256 \
	    --epochs 1 --batch 32 --val-fraction 0.01 --no-cache --out $(BENCH_DATA_DIR)/trained.keras
