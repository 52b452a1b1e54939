# Makefile - the front door: `make run` and `make test` on a fresh Debian 12 machine.
#   make run    install dependencies, build, `postern init run` if absent, serve on 127.0.0.1:2525
#   make test   install dependencies, build, run unit tests (CTest), end-to-end tests (pytest)
#               and a quick smoke run of the benchmark harness
#   make bench  side-by-side benchmarks with Postfix (bench/README.md)
#   make asan   the same tests on an AddressSanitizer + UBSan build (build-asan/)
#   make torture  the long robustness runs: every script in TORTURE_SCRIPTS, in order
#               (figures in docs/reliability.md)
BUILD     ?= build
PYTHON    ?= /usr/bin/python3
JOBS      ?= $(shell nproc)
CMAKE_GEN = $(shell command -v ninja >/dev/null 2>&1 && echo "-G Ninja")

# Long runs for `make torture`, one script per line of work; each gets POSTERN / POSTERN_BIN.
TORTURE_SCRIPTS = bench/hostile/run.sh

.PHONY: all deps build run test unit e2e bench bench-smoke asan torture clean

all: build

deps:
	@scripts/install-deps.sh

build: deps
	@[ -f $(BUILD)/CMakeCache.txt ] || cmake -S . -B $(BUILD) $(CMAKE_GEN) -DCMAKE_BUILD_TYPE=RelWithDebInfo
	cmake --build $(BUILD) -j $(JOBS)

run: build
	@[ -f run/postern.toml ] || $(BUILD)/postern init run
	$(BUILD)/postern serve -c run/postern.toml

unit: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

e2e: build
	POSTERN_BIN=$(abspath $(BUILD))/postern $(PYTHON) -m pytest -q tests/e2e

bench-smoke: build
	POSTERN=$(abspath $(BUILD))/postern bench/inbound/smoke.sh

test: unit e2e bench-smoke

bench: build
	bench/inbound/run.sh

asan: deps
	@[ -f build-asan/CMakeCache.txt ] || cmake -S . -B build-asan $(CMAKE_GEN) -DPOSTERN_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
	cmake --build build-asan -j $(JOBS)
	cd build-asan && ctest --output-on-failure -j $(JOBS)
	POSTERN_BIN=$(abspath build-asan)/postern $(PYTHON) -m pytest -q tests/e2e

torture: build
	@set -e; for s in $(TORTURE_SCRIPTS); do \
		echo "== $$s"; POSTERN=$(abspath $(BUILD))/postern POSTERN_BIN=$(abspath $(BUILD))/postern $$s; \
	done

clean:
	rm -rf $(BUILD) build-asan
