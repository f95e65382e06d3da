# The two commands a new user needs (README): `make run` and `make test`. Everything else is a
# convenience on top of CMake + Ninja. Builds go to build/ (Debug, -Werror: what CI checks).
BUILD      ?= build
BUILD_TYPE ?= Debug
JOBS       ?= $(shell nproc)
CMAKE_ARGS ?=

.PHONY: all deps deps-build configure build run test unit-test e2e-test soak fuzz fuzz-long asan-test \
        test-debian13 test-debian12 test-systemd test-systemd12 package bench clean check-examples format

all: build

deps:
	@scripts/install-deps.sh all

deps-build:
	@scripts/install-deps.sh build

$(BUILD)/build.ninja:
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) $(CMAKE_ARGS)

configure: $(BUILD)/build.ninja

build: deps-build configure
	ninja -C $(BUILD) -j$(JOBS)

# Starts usherd in the foreground on examples/ (loopback ports), skipping any example whose
# daemon is not installed. Ctrl-C stops it.
run: deps build
	scripts/run-examples.sh $(BUILD)

# Every test through CTest (unit, process, end-to-end with real daemons), then the bounded
# fuzz runs. Long suites (soak, long fuzzing, benchmarks) have their own targets.
test: deps build
	cd $(BUILD) && ctest -j$(JOBS) --output-on-failure --timeout 300
	scripts/fuzz.sh short

unit-test: build
	cd $(BUILD) && ctest -j$(JOBS) --output-on-failure -E '^e2e'

e2e-test: build
	cd $(BUILD) && ctest -j$(JOBS) --output-on-failure -R '^e2e'

# The soak at full length: 100,000 connections, admitted and dropped, through the daemon
# (tests/e2e/test_soak.py; CI runs 10,000). usherd's fds, RSS and zombies must return to
# their baseline. SOAK_CONNECTIONS=N for another length.
SOAK_CONNECTIONS ?= 100000
soak: build
	USHERD_SOAK_CONNECTIONS=$(SOAK_CONNECTIONS) USHERD_E2E_TEST_TIMEOUT=3600 \
	USHERD_BUILD_DIR=$(abspath $(BUILD)) USHERD_SOURCE_DIR=$(CURDIR) PYTHONDONTWRITEBYTECODE=1 \
	/usr/bin/python3 tests/e2e/test_soak.py

fuzz: deps
	scripts/fuzz.sh short

fuzz-long: deps
	scripts/fuzz.sh long

# The whole suite under AddressSanitizer + UndefinedBehaviorSanitizer (CI's second step).
# Every report of every process (usherd, usherctl, helpers, unit tests) is written to
# build-asan/sanitizer-reports/, and the target fails if there is one, whether or not the
# test that caused it noticed. USHERD_SANITIZED=1 tells the e2e harness
# (skip_under_sanitizers); its per-test deadline is longer, as everything runs slower.
SANITIZER_REPORTS = $(CURDIR)/build-asan/sanitizer-reports
asan-test: deps
	cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DUSHERD_SANITIZE=ON
	ninja -C build-asan -j$(JOBS)
	rm -rf $(SANITIZER_REPORTS) && mkdir -p $(SANITIZER_REPORTS)
	cd build-asan && USHERD_SANITIZED=1 USHERD_E2E_TEST_TIMEOUT=280 \
	  ASAN_OPTIONS=log_path=$(SANITIZER_REPORTS)/asan:detect_leaks=1 \
	  UBSAN_OPTIONS=log_path=$(SANITIZER_REPORTS)/ubsan:print_stacktrace=1 \
	  ctest -j$(JOBS) --output-on-failure --timeout 600; status=$$?; \
	  if [ -n "$$(ls -A $(SANITIZER_REPORTS))" ]; then \
	    cat $(SANITIZER_REPORTS)/*; \
	    echo "asan-test: sanitizer reports above (kept in $(SANITIZER_REPORTS))" >&2; exit 1; \
	  fi; \
	  echo "asan-test: no sanitizer reports" >&2; exit $$status

# The suite on Debian 13 "trixie" from this Debian 12 machine: a root built with debootstrap
# (cached in build/debian13-root, ~2 GB once the packages are in), the checkout copied to
# /root/usherd inside, `make test` run there under chroot (scripts/debian13-root.sh).
test-debian13:
	scripts/debian13-root.sh test

# usherd under a real systemd 257: the same root booted with systemd-nspawn, usherd installed
# as the shipped usherd.service, tests/systemd/test_*.py (scripts/systemd-bed.sh).
test-systemd:
	scripts/systemd-bed.sh

# The same on Debian 12 (systemd 252): its own debootstrap root (build/debian12-root), booted
# the same way; the package test installs it and serves the classic sshd -i pair. Not in CI.
test-systemd12:
	USHERD_DEBIAN_RELEASE=12 scripts/systemd-bed.sh

# The Debian package for the release this runs on (scripts/package.sh): build/package/
# usherd_VERSION_ARCH.deb, built from a copy of the checkout with dpkg-buildpackage, checked
# by lintian (no error, no warning). Installs its build dependencies when run as root.
package:
	JOBS=$(JOBS) scripts/package.sh

# The package on Debian 12 "bookworm" in a debootstrap root of its own (build/debian12-root,
# as test-debian13 builds trixie's): built there, installed with apt-get in a fresh copy,
# man pages and `usherd --check` (tests/package/check-installed.sh). Not in CI.
test-debian12:
	USHERD_DEBIAN_RELEASE=12 scripts/debian-root.sh package

bench: deps
	cmake -S . -B build-release -G Ninja -DCMAKE_BUILD_TYPE=Release -DUSHERD_TESTS=OFF
	ninja -C build-release -j$(JOBS)
	bench/run.sh build-release

# Who still logs in to a real OpenSSH with slow authentication while it is flooded, and at
# what cost: usherd against sshd's own listener, xinetd, systemd-socket-activate and tcpsvd
# (bench/flood/; ~19 min; a Debian 13 root adds OpenSSH 10, see bench/flood/run.sh).
.PHONY: bench-flood
bench-flood: deps
	@scripts/install-deps.sh bench
	cmake -S . -B build-release -G Ninja -DCMAKE_BUILD_TYPE=Release -DUSHERD_TESTS=OFF
	ninja -C build-release -j$(JOBS) usherd usherctl
	bench/flood/run.sh build-release

check-examples: build
	$(BUILD)/supervisor/usherd --check --units examples/units --config examples/usherd.conf

format:
	git ls-files '*.cpp' '*.h' | xargs clang-format -i

# --one-file-system: should scripts/debian13-root.sh ever be killed without its cleanup, the
# host's /dev, /sys and /proc bound into build/debian13-root are skipped, not emptied.
clean:
	rm -rf --one-file-system $(BUILD) build-asan build-release build-fuzz
