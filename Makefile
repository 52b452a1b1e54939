# Makefile - the front door: `make run` and `make test` on a fresh Debian 12 machine.
#   make run    install dependencies, build, `postern init run` if absent, serve on 127.0.0.1:2525
#   make test   install dependencies, build, run unit tests (CTest), end-to-end tests (pytest)
#               and quick smoke runs of the benchmark harness and of every fuzz target
#   make bench  every issue-6 figure, Postern and Postfix side by side, one table (bench/all.sh;
#               QUICK=1 make bench for a short try; REPS= and N= as in bench/README.md)
#   make asan   the same tests on an AddressSanitizer + UBSan build (build-asan/)
#   make torture  the long robustness runs: every script in TORTURE_SCRIPTS, in order
#               (figures in docs/reliability.md)
#   make fuzz   every libFuzzer target for 10 minutes (clang, build-fuzz/; fuzz/run.sh)
#   make fuzz-smoke  every libFuzzer target for 10 s (part of `make test`)
BUILD     ?= build
PYTHON    ?= /usr/bin/python3
JOBS      ?= $(shell nproc)
FUZZ_JOBS ?= $(JOBS)
# End-to-end tests run in this many pytest-xdist worker processes (0: one process). They mostly
# wait on timers and peers: 3 workers on 2 cores took the e2e run from 8 min to 2 min 40 s.
E2E_WORKERS ?= 3
CMAKE_GEN = $(shell command -v ninja >/dev/null 2>&1 && echo "-G Ninja")

# Long runs for `make torture`, one script per line of work; each gets POSTERN / POSTERN_BIN.
TORTURE_SCRIPTS = tests/torture/crash-100.sh tests/torture/crash-100-tempfail.sh bench/hostile/run.sh

.PHONY: all deps build run test unit e2e bench bench-smoke asan torture fuzz fuzz-smoke clean

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
	POSTERN_BIN=$(abspath $(BUILD))/postern $(PYTHON) -m pytest -q -n $(E2E_WORKERS) tests/e2e

bench-smoke: build
	POSTERN=$(abspath $(BUILD))/postern bench/inbound/smoke.sh

fuzz-smoke: deps
	FUZZ_JOBS=$(FUZZ_JOBS) fuzz/run.sh 10

test: unit e2e bench-smoke fuzz-smoke

bench: build
	bench/all.sh

# Every process of the run (unit tests, the server under e2e tests) writes sanitizer reports to
# build-asan/reports/; a report anywhere fails the target, even one from a server that crashed
# after its test had already passed. The reports are printed however the run ended: a unit test
# killed by a report shows only "Failed" in ctest's output, the report says why.
ASAN_REPORTS = $(abspath build-asan)/reports
SAN_ENV = ASAN_OPTIONS=log_path=$(ASAN_REPORTS)/asan:detect_leaks=1 \
    UBSAN_OPTIONS=log_path=$(ASAN_REPORTS)/ubsan:print_stacktrace=1:halt_on_error=1
asan: deps
	@[ -f build-asan/CMakeCache.txt ] || cmake -S . -B build-asan $(CMAKE_GEN) -DPOSTERN_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
	cmake --build build-asan -j $(JOBS)
	rm -rf $(ASAN_REPORTS) && mkdir -p $(ASAN_REPORTS)
	@status=0; \
	(cd build-asan && $(SAN_ENV) ctest --output-on-failure -j $(JOBS)) || status=1; \
	if [ $$status -eq 0 ]; then \
	    $(SAN_ENV) POSTERN_SANITIZED=1 POSTERN_BIN=$(abspath build-asan)/postern \
	        $(PYTHON) -m pytest -q -n $(E2E_WORKERS) tests/e2e || status=1; \
	fi; \
	if [ -n "$$(ls -A $(ASAN_REPORTS))" ]; then \
	    echo "sanitizer reports:"; head -n 40 $(ASAN_REPORTS)/*; exit 1; \
	else echo "asan: no sanitizer reports"; fi; \
	exit $$status

fuzz: deps
	FUZZ_JOBS=$(FUZZ_JOBS) fuzz/run.sh 600

torture: build
	@set -e; for s in $(TORTURE_SCRIPTS); do \
		echo "== $$s"; POSTERN=$(abspath $(BUILD))/postern POSTERN_BIN=$(abspath $(BUILD))/postern $$s; \
	done

clean:
	rm -rf $(BUILD) build-asan build-fuzz
