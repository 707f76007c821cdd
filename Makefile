# SPDX-License-Identifier: MIT
# Thin wrapper over meson. The two commands the README promises:
#   make demo   install what is missing, build, run a local 3-node cluster under loadgen
#   make test   install what is missing, build, run the whole default test suite
BUILD ?= build
MESON_OPTS ?=

.PHONY: all deps build test demo clean werror asan tsan fuzz sim-long chaos-long bench bench-workloads install

all: build

deps:
	@tools/deps.sh

$(BUILD)/build.ninja:
	meson setup $(BUILD) $(MESON_OPTS)

build: deps $(BUILD)/build.ninja
	meson compile -C $(BUILD)

test: build
	tools/tidy.sh
	tools/run-tests.sh $(BUILD)

demo: build
	tools/demo.sh $(BUILD)

# Opt-in jobs (bounded duration; not part of `make test`).
werror: deps
	meson setup build-werror -Dwerror=true $(MESON_OPTS) --reconfigure 2>/dev/null || \
	    meson setup build-werror -Dwerror=true $(MESON_OPTS)
	meson compile -C build-werror

asan: deps
	[ -f build-asan/build.ninja ] || meson setup build-asan -Db_sanitize=address,undefined -Db_lundef=false
	meson compile -C build-asan
	tools/run-tests.sh build-asan

tsan: deps
	[ -f build-tsan/build.ninja ] || meson setup build-tsan -Db_sanitize=thread -Db_lundef=false
	meson compile -C build-tsan
	YGGR_TEST_TICK_MS=20 TSAN_OPTIONS="halt_on_error=1:suppressions=$(CURDIR)/tests/tsan.supp" \
	    tools/run-tests.sh build-tsan --suite tsan

fuzz: deps
	[ -f build-fuzz/build.ninja ] || CC=clang meson setup build-fuzz -Dfuzz=true -Db_lundef=false
	meson compile -C build-fuzz

sim-long: build
	meson compile -C $(BUILD) sim-long

# 5 minutes of faults per chaos scenario, then the figures (docs/chaos.md); needs root.
chaos-long: build
	meson compile -C $(BUILD) chaos-long

bench: build
	meson test -C $(BUILD) --benchmark --verbose

install: build
	meson install -C $(BUILD)

clean:
	rm -rf $(BUILD) build-werror build-asan build-tsan build-fuzz

# The standard workloads (docs/BENCHMARKS.md): W1-W4 next to this machine's raw limits.
bench-workloads: build
	tools/bench-workloads.sh $(BUILD)
