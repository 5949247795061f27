# SegKit's two commands: `make demo` and `make test`. Both install the Debian
# packages SegKit needs first (only those that are missing).
SHELL := /bin/bash
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
DEBS := libhdf5-dev libopenblas-dev libpng-dev pkg-config dataset-fashion-mnist

.PHONY: deps build release test demo fixtures

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
