# Tessera — the two commands of the Quick start, plus the benchmarks.
#
#   make run     install what is missing, build, run the quick-start federation (5 sites, secure aggregation)
#   make test    install what is missing, build, run the whole test suite, then the dashboard in
#                headless Chromium (skipped with a message when Chromium is missing)
#   make bench   install what is missing (and numpy), build in release, run the benchmarks
#   make soak    build in release, run load and abuse against tessera-coordinator on 127.0.0.1
#                (about 30 minutes; SOAK_MINUTES=2 SOAK_ROUNDS=1000 for a trial of about 6)
#   make format  apply the checked-in .swift-format to Sources, Tests and Benchmarks
#   make lint    check the tree against .swift-format (strict: any finding fails); `make test` runs it first
#   make crash-test  kill the real coordinator with SIGKILL at random moments of a federation of real
#                processes, 20 times (CRASH_TRIALS), and check every experiment resumes and completes
#   make deploy-check  render the Kubernetes manifests (docs/deploy/kubernetes) with kubectl kustomize,
#                validate them offline and check that broken copies fail; `make test` runs it
#   make fuzz    build Fuzz/ with libFuzzer and AddressSanitizer, run every fuzz target FUZZ_SECONDS (120) each

SWIFT ?= swift
RELEASE_FLAGS := -c release
# The quick start uses the debug build: its numeric modules are compiled with -O anyway
# (see Package.swift), and it shares the build with `make test`, so the first run is faster.
TESSERA_DEBUG := .build/debug/tessera
TESSERA := .build/release/tessera

.PHONY: run test bench fuzz soak crash-test deploy-check deps bench-deps build build-release format lint clean

# Generated protobuf code is left as protoc-gen-swift writes it.
FORMATTED := $(shell find Sources Tests Benchmarks Fuzz/Sources -name '*.swift' -not -path '*/Generated/*' | sort) \
	Package.swift Fuzz/Package.swift

deps:
	@bash Scripts/install-deps.sh

bench-deps:
	@bash Scripts/install-deps.sh --bench

build: deps
	$(SWIFT) build

build-release: deps
	$(SWIFT) build $(RELEASE_FLAGS) --product tessera
	$(SWIFT) build $(RELEASE_FLAGS) --product tessera-coordinator

run: deps
	$(SWIFT) build --product tessera
	$(TESSERA_DEBUG) simulate Experiments/quickstart.yaml

test: deps lint deploy-check
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build
	bash Scripts/dashboard-browser-test.sh

# Needs no Swift build: kubectl and a Python venv (made once in .build-deploy/venv, from PyPI).
deploy-check: deps
	@bash Scripts/deploy-check.sh

# `make test` runs the same test with 3 trials.
CRASH_TRIALS ?= 20

crash-test: deps
	$(SWIFT) build --build-tests
	TESSERA_CRASH_TRIALS=$(CRASH_TRIALS) $(SWIFT) test --skip-build --filter CoordinatorCrashTests

bench: bench-deps build-release
	$(TESSERA) bench all

# Each target's corpus is copied, so the committed seeds do not grow; inputs that crash, leak or
# time out are copied to Fuzz/Regressions/<target>/, which `make test` replays.
fuzz: deps
	@bash Scripts/fuzz.sh

# Not part of `make test`: every phase is bounded in time and stops its coordinator. SOAK_ARGS
# passes more options to `tessera bench soak` (see `tessera bench --help`), for example
# `--coordinator-arg=--some-limit=N` for each tessera-coordinator it starts.
SOAK_MINUTES ?= 10
SOAK_ROUNDS ?= 10000
SOAK_ARGS ?=

soak: deps build-release
	$(TESSERA) bench soak --minutes $(SOAK_MINUTES) --rounds $(SOAK_ROUNDS) $(SOAK_ARGS)

format:
	@echo "swift format --in-place (Sources, Tests, Benchmarks, Fuzz, Package.swift)"
	@$(SWIFT) format --in-place --parallel $(FORMATTED)

lint:
	@echo "swift format lint --strict (Sources, Tests, Benchmarks, Fuzz, Package.swift)"
	@$(SWIFT) format lint --strict --parallel $(FORMATTED)

clean:
	rm -rf .build Fuzz/.build
