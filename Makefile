# The one task runner: the README and CI call exactly these targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV  ?= .venv
BIN   := $(VENV)/bin
# uv from PATH, else the copy `pip install uv` puts in this Python (run as `python3 -m uv`).
UV    ?= $(shell command -v uv 2>/dev/null || echo python3 -m uv)
SAMPLE := data/sp500_prices.csv.gz
# XGBoost's OpenMP threads spin while waiting; on a busy 2-core box that slows training badly.
export OMP_WAIT_POLICY ?= PASSIVE
# Prefect's temporary local server (flows run without PREFECT_API_URL) reports nothing home.
export PREFECT_SERVER_ANALYTICS_ENABLED ?= false

.PHONY: help setup demo stop test test-slow lint format audit bench system-deps clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(BIN)/python: uv.lock pyproject.toml
	@$(UV) --version >/dev/null 2>&1 || python3 -m pip install --quiet uv
	@# --seed puts pip in the venv: `bentoml build` needs it.
	[ -x $(BIN)/python ] || $(UV) venv --seed --python 3.11 $(VENV)
	$(UV) sync --frozen --extra dev --python $(BIN)/python
	@touch $(BIN)/python

setup: $(BIN)/python ## create the venv from the lock file (uv installed with pip when missing)

demo: setup ## ingest the sample, train + promote a model, replay a day through the daily flow, start the 3-replica stack, fetch a forecast
	$(BIN)/finsimples ingest --until 2022-12-20 $(SAMPLE)
	$(BIN)/finsimples ingest --next-day $(SAMPLE)
	$(BIN)/finsimples lake info
	$(BIN)/finsimples train --full
	$(BIN)/finsimples feed next-day $(SAMPLE)
	$(BIN)/finsimples flows run daily
	$(BIN)/finsimples models list
	$(BIN)/finsimples predict AAPL --horizon 10
	./deploy/demo-serve.sh

stop: ## stop what `make demo` started: the stack, or the single replica
	$(BIN)/finsimples stack down
	@if [ -f .finsimples/serve.pid ]; then kill $$(cat .finsimples/serve.pid) 2>/dev/null || true; \
	  rm -f .finsimples/serve.pid; echo "single replica stopped"; fi

system-deps: ## install redis-server, nginx, prometheus, alertmanager, the exporters with apt-get when missing
	./deploy/install-system-deps.sh

test: setup system-deps ## run the test suite except tests marked slow
	$(BIN)/python -m pytest

test-slow: setup system-deps ## run only the slow tests
	$(BIN)/python -m pytest -m slow

lint: setup ## ruff (lint + format check), mypy, and the layers' import contracts (lint-imports)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

format: setup ## apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Not in `make test` or CI: it needs the vulnerability service. Exactly one verdict line; the
# script's exit code is 0 clean, 1 vulnerabilities, 3 not run (make reports `Error 1`/`Error 3`).
AUDIT_SERVICE ?= pypi
audit: setup ## pip-audit --strict on uv.lock's packages and the bento's; "NOT RUN" (never "clean") when the service is unreachable
	$(BIN)/python -m deploy.audit --service $(AUDIT_SERVICE) --uv "$(UV)"

bench: setup ## every benchmark, each with a peer measured in the same run (~30 min on 2 cores); figures go to docs/benchmarks.md by hand
	$(BIN)/python -m benchmarks.bench_lake
	$(BIN)/python -m benchmarks.bench_api
	$(BIN)/python -m benchmarks.bench_tickers
	$(BIN)/python -m benchmarks.bench_training --backtest
	$(BIN)/python -m benchmarks.bench_flows
	$(BIN)/python -m benchmarks.bench_stack
	$(BIN)/python -m benchmarks.bench_dask

clean: ## remove local state (lake, MLflow store) and caches, keep the venv
	rm -rf .finsimples .pytest_cache .ruff_cache .mypy_cache .hypothesis .import_linter_cache
