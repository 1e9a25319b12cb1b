# 23 Gateway. `make run` serves the demo; `make test` installs what tests need and runs them.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
RUN_STAMP := $(VENV)/.runtime-stamp

.PHONY: lock run test lint typecheck unit bench install test-deps clean

install: $(STAMP)

# Every install is exactly the lock: hashes required, no resolver, then a check that the venv
# holds nothing else (scripts/venv-matches-lock.py). The project itself goes in last, built
# with the locked setuptools.
LOCK := requirements.lock
DEV_LOCK := requirements-dev.lock
PIP_INSTALL := $(BIN)/python -m pip install --quiet --disable-pip-version-check

$(STAMP): $(DEV_LOCK) pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP_INSTALL) --require-hashes --no-deps -r $(DEV_LOCK)
	$(PIP_INSTALL) --no-deps --no-build-isolation -e .
	$(BIN)/python scripts/venv-matches-lock.py $(DEV_LOCK)
	@touch $@ $(RUN_STAMP)

# The demo needs the runtime only; the dev extras (linters, Playwright...) are for `make test`.
$(RUN_STAMP): $(LOCK) pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP_INSTALL) --require-hashes --no-deps -r $(LOCK)
	$(PIP_INSTALL) --no-deps --no-build-isolation -e .
	$(BIN)/python scripts/venv-matches-lock.py $(LOCK) --also $(DEV_LOCK)
	@touch $@

# Refresh both lock files to the newest versions pyproject.toml allows (the runtime lock is
# constrained by the dev lock, so the two never disagree). Then run `make test` in full.
# `make lock UPGRADE=` keeps every pin it can (after adding or removing a dependency).
UV_COMPILE := $(BIN)/uv pip compile --quiet --generate-hashes --universal --python-version 3.11
UPGRADE ?= --upgrade
lock: $(STAMP)
	$(UV_COMPILE) $(UPGRADE) pyproject.toml --extra dev requirements-build.in -o $(DEV_LOCK)
	$(UV_COMPILE) pyproject.toml requirements-build.in --constraint $(DEV_LOCK) -o $(LOCK)
	@echo "locked; now run: make test"

run: $(RUN_STAMP)
	@scripts/run-demo.sh

# System and npm packages the tests talk to (installed idempotently; see scripts/).
test-deps: $(STAMP)
	@scripts/install-test-deps.sh

test: test-deps lint unit

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest

bench: $(STAMP)
	@command -v wrk >/dev/null || scripts/apt-install.sh wrk
	$(BIN)/python -m bench.bench_tokens
	$(BIN)/python -m bench.bench_mint
	$(BIN)/python -m bench.bench_servers
	$(BIN)/python -m bench.bench_scale
	$(BIN)/python -m bench.bench_handoff
	$(BIN)/python -m bench.bench_catalogue
	$(BIN)/python -m bench.bench_sync
	$(BIN)/python -m bench.bench_embed
	$(BIN)/python -m bench.bench_tracing

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis *.egg-info
