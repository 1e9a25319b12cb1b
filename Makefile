# 23 Gateway. `make run` serves the demo; `make test` installs what tests need and runs them.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
RUN_STAMP := $(VENV)/.runtime-stamp

.PHONY: run test lint typecheck unit bench install test-deps clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@ $(RUN_STAMP)

# The demo needs the runtime only; the dev extras (linters, Playwright...) are for `make test`.
$(RUN_STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	@touch $@

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

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis *.egg-info
