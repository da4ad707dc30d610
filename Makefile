# DataForge — the one entry point for setup, the main job, tests and checks.
# Quick start (README): `make run` (set up + embedded platform on sample data), `make test` (set up + all tests).

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON_VERSION ?= 3.11
UV_VERSION     := 0.13.8
CACHE          := $(CURDIR)/.cache
BOOTSTRAP      := $(CACHE)/bootstrap
UV             := $(BOOTSTRAP)/bin/uv
VENV           := $(CURDIR)/.venv
PY             := $(VENV)/bin/python
STAMP          := $(VENV)/.dataforge-synced

export UV_CACHE_DIR := $(CACHE)/uv
export UV_PYTHON_DOWNLOADS := never
export UV_LINK_MODE := copy
export PIP_CACHE_DIR := $(CACHE)/pip
# Compiled bytecode of every Python process (tests start several: moto, panel, Spark workers) is
# cached in the ignored .cache/pycache; pulumi-aws alone takes 20-40 s to compile otherwise.
unexport PYTHONDONTWRITEBYTECODE
export PYTHONPYCACHEPREFIX := $(CACHE)/pycache
# Rust (rustup's cargo) builds the validator's compiled fast path, native/, when uv installs it.
export PATH := $(HOME)/.cargo/bin:$(PATH)
NATIVE_SOURCES := native/Cargo.toml native/Cargo.lock native/pyproject.toml native/dataforge_native.pyi \
                  $(wildcard native/src/*.rs)

.PHONY: help setup deps jars toxiproxy chromium faketime run test test-unit test-native test-integration chaos fuzz lint typecheck layers check bench services-up services-down clean

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

$(UV):
	@echo "==> bootstrapping uv $(UV_VERSION) into $(BOOTSTRAP)"
	@python$(PYTHON_VERSION) -m venv $(BOOTSTRAP)
	@$(BOOTSTRAP)/bin/pip install --quiet "uv==$(UV_VERSION)"

$(STAMP): pyproject.toml uv.lock $(NATIVE_SOURCES) | $(UV)
	@command -v cargo >/dev/null 2>&1 || { echo "error: cargo not found. The validator's compiled fast path" \
	  "(native/) is Rust: install Rust with rustup (https://rustup.rs), then rerun." >&2; exit 1; }
	@echo "==> syncing the Python environment (.venv) from uv.lock (builds native/ with cargo when it changed)"
	@$(UV) sync --frozen --python python$(PYTHON_VERSION) --quiet
	@touch $(STAMP)

deps: $(STAMP) ## Python venv from the lock file (cached in .cache/uv)

jars: deps ## Maven-resolved jars (Kafka broker, Spark connectors) into .cache/jars
	@$(PY) -m devkit.local.maven

# Shopify's Toxiproxy for the network-fault chaos experiments, built from the Go module proxy with the
# machine's Go into .cache/toxiproxy (Go's caches in .cache/go); a no-op once built
# (devkit/chaos/toxiproxy.py pins the version).
toxiproxy: deps ## Toxiproxy (network faults for the chaos suite), built with Go into .cache/toxiproxy
	@$(PY) -m devkit.chaos.toxiproxy

setup: deps jars toxiproxy ## everything the platform needs

# Debian's Chromium for the browser tests (Playwright drives it; no browser download). The .deb files
# are kept in the ignored .cache/apt so a reinstall needs no network.
CHROMIUM_DEBS := $(CACHE)/apt/archives
chromium: ## Debian's chromium for the browser tests (.deb files cached in .cache/apt)
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "==> installing Debian's chromium (browser tests)"; mkdir -p $(CHROMIUM_DEBS)/partial; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get install -y -qq --no-download -o Dir::Cache::archives=$(CHROMIUM_DEBS) chromium >/dev/null 2>&1 || \
	  { $$SUDO apt-get update -qq && \
	    $$SUDO apt-get install -y -qq -o Dir::Cache::archives=$(CHROMIUM_DEBS) chromium >/dev/null; }; }

# Debian's libfaketime for the clock-skew chaos experiment (devkit/chaos/clock.py preloads it into a
# producer or landing process). Same .deb cache as chromium; the tests skip with this command named when
# the library is missing.
faketime: ## Debian's libfaketime + faketime for the clock-skew experiment (.deb files cached in .cache/apt)
	@ls /usr/lib/*/faketime/libfaketimeMT.so.1 >/dev/null 2>&1 || { \
	  echo "==> installing Debian's libfaketime (clock-skew experiment)"; mkdir -p $(CHROMIUM_DEBS)/partial; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get install -y -qq --no-download -o Dir::Cache::archives=$(CHROMIUM_DEBS) libfaketime faketime >/dev/null 2>&1 || \
	  { $$SUDO apt-get update -qq && \
	    $$SUDO apt-get install -y -qq -o Dir::Cache::archives=$(CHROMIUM_DEBS) libfaketime faketime >/dev/null; }; }

run: setup ## set up, then run the embedded platform on sample data (API + dashboard)
	@$(PY) -m devkit run

test: setup chromium faketime test-native ## set up, then run every test tier (Rust unit, then unit, integration, e2e, the chaos_ci subset)
	@$(PY) -m pytest

# The chaos suite: every experiment of tests/chaos (marker chaos). Plain pytest (make test) runs only the
# chaos_ci subset, one bounded experiment per fault kind (tests/chaos/conftest.py deselects the rest);
# bench/recovery.py prints the recovery figures of every experiment.
chaos: setup faketime ## every chaos experiment (faults injected, exact reconciliation after)
	@$(PY) -m pytest -m chaos tests/chaos

test-native: deps ## the Rust unit tests of native/ (cargo test)
	@cargo test --quiet --release --manifest-path native/Cargo.toml

test-unit: deps ## unit tests only (no I/O, seconds)
	@$(PY) -m pytest tests/unit

test-integration: setup chromium ## integration tests (real Kafka, moto server, Spark, DuckDB)
	@$(PY) -m pytest tests/integration

# Coverage-guided fuzzing (atheris/libFuzzer) of every target in tests/fuzz/fuzz_*.py, each for
# FUZZ_SECONDS; the growing corpora live in the ignored .cache/fuzz/<target>. The test suite runs
# each target for a short bounded time (tests/fuzz/test_fuzz_targets.py).
FUZZ_SECONDS ?= 600
FUZZ_TARGETS ?= $(wildcard tests/fuzz/fuzz_*.py)
fuzz: deps ## fuzz the validator and the SQL guard (FUZZ_SECONDS per target, default 600)
	@for target in $(FUZZ_TARGETS); do name=$$(basename $$target .py); mkdir -p $(CACHE)/fuzz/$$name $(CACHE)/fuzz/$$name-crashes; \
	  echo "==> $$target for $(FUZZ_SECONDS) s (corpus .cache/fuzz/$$name)"; \
	  $(PY) $$target -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=4096 -print_final_stats=1 \
	    -artifact_prefix=$(CACHE)/fuzz/$$name-crashes/ $(CACHE)/fuzz/$$name || exit 1; done

lint: deps ## ruff
	@$(VENV)/bin/ruff check .

typecheck: deps ## mypy --strict on every package
	@$(VENV)/bin/mypy

layers: deps ## import-linter: toolkit > deployables > runtime core (contracts in pyproject.toml)
	@$(VENV)/bin/lint-imports --no-cache

check: lint typecheck layers test ## the one gate before a pull request

bench: setup chromium ## every benchmark in bench/ (prints figures)
	@for script in bench/*.py; do echo "==> $$script"; $(PY) $$script || exit 1; done

# The dashboard's container image (docs/dashboard.md, "Image"): needs docker with buildx (arm64 through QEMU
# or an arm64 builder), the AWS CLI and the Pulumi CLI, with credentials for the stack's account.
dashboard-image: deps ## build the dashboard image for arm64, push it to ECR, set its tag (STACK=dev|staging|prod)
	@$(PY) -m devkit dashboard-image --stack $(or $(STACK),dev) --push

services-up: setup ## start moto + Kafka in the background
	@$(PY) -m devkit services up

services-down: deps ## stop them
	@$(PY) -m devkit services down

clean: ## remove runtime state (keeps download caches)
	@-$(PY) -m devkit services down 2>/dev/null
	@rm -rf .dataforge .pytest_cache .mypy_cache .ruff_cache
