# SegKit's two commands: `make demo` and `make test`. Both install the Debian
# packages SegKit needs first (only those that are missing).
SHELL := /bin/bash
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
DEBS := libhdf5-dev libopenblas-dev libpng-dev pkg-config dataset-fashion-mnist

.PHONY: deps build release test demo fixtures keras-check

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
keras-check: build
	@mkdir -p $(KERAS_CHECK_DIR)
	@for m in plain_cnn.k3.keras vgg.k2.h5 residual.k3.h5 nested.k2.h5 mobilenet_v2.k3.keras; do \
	    .build/debug/segkit convolutionalize Tests/Fixtures/keras/$$m --out $(KERAS_CHECK_DIR)/fcn-$$m.keras >/dev/null && \
	    .build/debug/segkit convolutionalize Tests/Fixtures/keras/$$m --out $(KERAS_CHECK_DIR)/fcn-$$m.h5 >/dev/null || exit 1; done
	KERAS_BACKEND=jax $(VENVS)/k3/bin/python Tests/Fixtures/keras_check.py .build/debug/segkit \
	    $(KERAS_CHECK_DIR)/fcn-plain_cnn.k3.keras.keras:40,32 $(KERAS_CHECK_DIR)/fcn-plain_cnn.k3.keras.h5:24,24 \
	    $(KERAS_CHECK_DIR)/fcn-vgg.k2.h5.keras:24,24 $(KERAS_CHECK_DIR)/fcn-vgg.k2.h5.h5:16,16 \
	    $(KERAS_CHECK_DIR)/fcn-residual.k3.h5.keras:40,40 $(KERAS_CHECK_DIR)/fcn-nested.k2.h5.keras:32,32 \
	    $(KERAS_CHECK_DIR)/fcn-mobilenet_v2.k3.keras.keras:64,64 $(KERAS_CHECK_DIR)/fcn-mobilenet_v2.k3.keras.h5:64,96
