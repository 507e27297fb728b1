# slsbot: every target installs what it needs first, so each works on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3
UV := $(shell command -v uv 2>/dev/null || echo $(HOME)/.local/bin/uv)
RUN := $(UV) run --frozen
PYTEST_ARGS ?=

.PHONY: setup run test test-fast test-results test-long lint format crds bench chaos browser restic clean

setup: .venv/.synced

$(UV):
	$(PYTHON) -m pip install --user --quiet uv || $(PYTHON) -m pip install --quiet uv

.venv/.synced: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen
	@touch $@

## run: the embedded default: a local supervisor paper-trading real recorded candles, admin API on :8080
run: setup
	$(RUN) slsbot up -f examples/local

## test: lint, the layer contract, the CRDs being current, then every test suite that fits on this machine
## (it first installs Chromium for the admin API's browser test where it can: see `browser`)
test: setup lint browser restic
	$(RUN) pytest -m "not results and not long" $(PYTEST_ARGS)

## test-long: the end-to-end suites of a minute or more (tuning runs resumed after a restart, A/B rollouts with real
## runtimes, the local and cluster examples as written, a runtime at 20 % exchange faults on both venues, a one-minute
## chaos run, two bots held to one account's limit, an evaluation's progress bars on a terminal)
test-long: setup restic
	$(RUN) pytest -m long $(PYTEST_ARGS)

## test-results: the suites that reproduce results the docs quote (the evaluation example, about 4 minutes here)
test-results: setup
	$(RUN) pytest -m results $(PYTEST_ARGS)

## test-fast: the same without suites marked slow
test-fast: setup restic
	$(RUN) pytest -m "not slow" $(PYTEST_ARGS)

lint: setup
	$(RUN) ruff check .
	$(RUN) ruff format --check .
	$(RUN) lint-imports

format: setup
	$(RUN) ruff check --fix .
	$(RUN) ruff format .

## crds: regenerate crds/*.yaml from the pydantic models (a test fails when they are out of date)
crds: setup
	$(RUN) slsbot crds --output crds --docs docs/reference/api.md

## bench: speed and memory figures: the runtime on the full shared data set (../shared/data/market), a walk-forward
## tuning run of 200 trials, then the operator with 1,000 Strategies on kmock, then 20 paper bots under one slsbot up,
## then the A/B test's error rate and power simulated over real BTC and ETH returns, then backup and restore of a
## runtime's state after a year of hourly candles on 8 symbols
bench: setup restic
	$(RUN) python -m slsbot_runtime.bench
	$(RUN) python -m slsbot_runtime.bench_tuning
	$(RUN) python -m slsbot.bench.operator_scale
	$(RUN) python -m slsbot.bench.fleet
	$(RUN) python -m slsbot.bench.ab_test
	$(RUN) python -m slsbot.bench.backup

## chaos: slsbot up with testnet bots on the fake exchange behind the fault proxy, runtimes killed, feeds stalled,
## exchange calls failing; then a report (faults, incidents, MTTR, orders lost or duplicated: must be 0). Replay a
## run with its seed: make chaos CHAOS_ARGS="--minutes 5 --bots 3 --seed 42" (docs/how-to/run-a-chaos-test.md)
CHAOS_ARGS ?= --minutes 5 --bots 3
chaos: setup
	$(RUN) python -m e2e.chaos $(CHAOS_ARGS)

## browser: Debian's Chromium for the browser tests of the admin API's /docs and the Control Center (/ui; screenshots in
## test-artifacts/), skipped, saying why, without one
browser:
	@command -v chromium >/dev/null 2>&1 || command -v google-chrome >/dev/null 2>&1 || \
	  { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } || \
	  echo "make browser: no Chromium, and installing one needs root and apt-get: the browser test will be skipped"

## restic: Debian's restic for the backups (BackupSchedule, slsbot backup, slsbot restore) and their tests (skipped,
## saying why, without one)
restic:
	@command -v restic >/dev/null 2>&1 || \
	  { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	    { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq restic >/dev/null 2>&1 || \
	      { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq restic >/dev/null; }; }; } || \
	  echo "make restic: no restic, and installing it needs root and apt-get: the backup tests will be skipped"

clean:
	rm -rf .venv .ruff_cache .pytest_cache
