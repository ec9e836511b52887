# Two commands run everything: `make run` (the pipeline on the shipped sample) and
# `make test`. Each installs what it needs first: uv (from PyPI, when missing), then the
# locked environment (`uv sync --frozen`).

SHELL := /bin/bash
.DEFAULT_GOAL := help

export DAGSTER_HOME := $(CURDIR)/data/dagster_home
# The team profile: while `make team-up` has left BAAC_TEAM_DIR/team.env, every target runs
# with its variables (PostgreSQL, the MLflow server and its account, the team Dagster home).
TEAM_ENV := $(or $(BAAC_TEAM_DIR),$(CURDIR)/data/team)/team.env
-include $(TEAM_ENV)
export $(shell sed -n 's/^\([A-Za-z_][A-Za-z0-9_]*\)=.*/\1/p' $(TEAM_ENV) 2>/dev/null)
# The environment's tools (dbt, dagster, mlflow, duckdb) first, for every target.
export PATH := $(CURDIR)/.venv/bin:$(PATH)
PYTHON ?= python3
UV := $(or $(shell command -v uv 2>/dev/null),$(CURDIR)/.tools/bin/uv)
VENV := $(CURDIR)/.venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
# PORT, when given, replaces the default port of the UI target run (dev 3000, docs 8080,
# mlflow 5000, serve 8000).
SCALE ?= 1
# Test processes (pytest-xdist): the pipeline's tests on one, the rest beside them.
TEST_WORKERS ?= 2

.PHONY: help install manifest chromium promtool postgres team-up team-down team-status run replay test screenshots lint readme benchmark benchmark-contention national-data dev docs sql mlflow serve clean

help: ## List the targets and the main settings
	@echo "Targets:"
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-21s %s\n", $$1, $$2}'
	@echo
	@echo "Settings (make VAR=value, or the environment; README: Configuration):"
	@printf "  %-22s %s\n" \
	  "HOST / PORT" "address of a UI target (127.0.0.1; ports: dev 3000, docs 8080, mlflow 5000, serve 8000)" \
	  "BAAC_SOURCE" "local (data/sample), kaggle or datagouv" \
	  "BAAC_YEARS" "accident years make run loads (2016, 2005-2016)" \
	  "DUCKDB_PATH" "the warehouse (data/warehouse.duckdb)" \
	  "MLFLOW_TRACKING_URI" "the MLflow store (sqlite under data/mlflow)" \
	  "BAAC_API_KEY" "key the API asks for (unset: open)" \
	  "BAAC_API_WORKERS" "worker processes of make serve (1)" \
	  "SCALE" "national-data and benchmark size (1 = national)" \
	  "TEST_WORKERS" "test processes of make test (2; 0 = one process)" \
	  "BAAC_TEAM_DIR" "the team profile's folder and team.env (data/team; README: Team profile)"

$(CURDIR)/.tools/bin/uv:
	$(PYTHON) -m venv $(CURDIR)/.tools
	$(CURDIR)/.tools/bin/pip install --quiet uv

$(VENV)/.synced: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --python 3.11 --compile-bytecode
	@touch $@

install: $(VENV)/.synced ## Install the locked environment into .venv

DBT := cd dbt_project && $(BIN)/dbt

manifest: install ## Parse the dbt project (the manifest Dagster reads), when it changed since the last parse
	$(BIN)/python -m orchestration.dbt_manifest

run: manifest ## Run the whole pipeline on the configured source (default: the shipped sample)
	$(BIN)/python -m orchestration.pipeline

replay: manifest ## Replay the sample month by month through the landing sensor and the automation (REPLAY_DELIVERIES)
	$(BIN)/python -m orchestration.replay

readme: install ## Rewrite the README's figures from the warehouse and MLflow (after make run)
	$(BIN)/python -m orchestration.readme_figures

chromium: ## Install Chromium (Debian package) for the browser test, when missing
	@[ -n "$$CHROMIUM_PATH" ] || command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	  else echo "The browser test needs Chromium: sudo apt-get install chromium (or set CHROMIUM_PATH)"; exit 1; fi; }

promtool: ## Install promtool (Debian package prometheus) for the alert-rule tests, when missing
	@command -v promtool >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus; \
	  else echo "The alert-rule tests need promtool: sudo apt-get install prometheus"; exit 1; fi; }

postgres: ## Install PostgreSQL's server (Debian package postgresql) for the team profile, when missing
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || [ -n "$$BAAC_PG_BIN" ] || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql; \
	  else echo "The team profile needs PostgreSQL: sudo apt-get install postgresql (or set BAAC_PG_BIN)"; exit 1; fi; }

team-up: manifest postgres ## Start the team profile: PostgreSQL, MLflow server, Dagster code server, webserver and daemon, API
	$(BIN)/python -m orchestration.team up

team-down: ## Stop the team profile (its data stays) and go back to the embedded profile
	$(BIN)/python -m orchestration.team down

team-status: ## Which services of the team profile run, and where they answer
	$(BIN)/python -m orchestration.team status

test: manifest chromium promtool postgres ## Run every test (unit, dbt, integration, API over HTTP, browser)
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadgroup

screenshots: manifest chromium ## Refresh the README's screenshots (docs/screenshots) from the browser tests
	BAAC_SCREENSHOTS_DIR=$(CURDIR)/docs/screenshots $(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadgroup \
		tests/test_interfaces.py tests/test_api_e2e.py tests/api/test_api_docs_browser.py tests/api/test_monitoring_browser.py

benchmark: manifest ## Time the pipeline at national size (SCALE=1; e.g. SCALE="0.125 0.25 0.5 1"), alone on the machine
	$(BIN)/python -m tests.benchmarks.scale_pipeline $(foreach s,$(or $(SCALE),1),--scale $(s))

benchmark-contention: manifest ## The sample's pipeline alone, then beside a process that keeps one core busy
	$(BIN)/python -m tests.benchmarks.contention

national-data: install ## Generate the national-size benchmark data set under data/national (SCALE=1)
	$(BIN)/python -m tests.benchmarks.national_data --scale $(SCALE) --out data/national

lint: manifest ## Lint: ruff (Python), sqlfluff (dbt SQL), import-linter (layers)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	cd dbt_project && $(BIN)/sqlfluff lint models tests analyses

dev: manifest ## Dagster UI on http://127.0.0.1:3000 (HOST, PORT)
	$(BIN)/dagster dev -m orchestration.definitions --host $(HOST) --port $(or $(PORT),3000)

docs: manifest ## Generate the dbt docs site and serve it on http://127.0.0.1:8080 (HOST, PORT)
	$(DBT) docs generate --profiles-dir .
	$(DBT) docs serve --profiles-dir . --host $(HOST) --port $(or $(PORT),8080) --no-browser

serve: install ## Scoring API and prediction page on http://127.0.0.1:8000 (HOST, PORT, BAAC_API_WORKERS)
	$(BIN)/python -m uvicorn api.main:app --host $(HOST) --port $(or $(PORT),8000) --workers $(or $(BAAC_API_WORKERS),1)

mlflow: install ## MLflow UI (runs, metrics, plots, registered models) on http://127.0.0.1:5000 (HOST, PORT)
	$(BIN)/python -m orchestration.mlflow_ui --host $(HOST) --port $(or $(PORT),5000)

# In the team profile (BAAC_WAREHOUSE=postgres) psql on baac_warehouse, its session read-only:
# it reads the last committed data while the pipeline writes (PostgreSQL's MVCC).
sql: install ## Interactive SQL shell on the warehouse, read-only (DuckDB CLI; psql in the team profile)
	@if [ "$(or $(BAAC_WAREHOUSE),duckdb)" = postgres ]; then \
	  [ -n "$(BAAC_PG_PASSWORD)" ] || { echo "BAAC_PG_PASSWORD is not set (make team-up writes data/team/team.env)"; exit 1; }; \
	  PGPASSWORD="$(BAAC_PG_PASSWORD)" PGOPTIONS="-c default_transaction_read_only=on" \
	    psql -h $(or $(BAAC_PG_HOST),127.0.0.1) -p $(or $(BAAC_PG_PORT),55432) -U $(or $(BAAC_PG_USER),baac) baac_warehouse; \
	else $(BIN)/duckdb -readonly $${DUCKDB_PATH:-data/warehouse.duckdb}; fi

clean: ## Delete the warehouse, the drift files, the MLflow store and the run history (downloads and the prediction log stay)
	rm -rf data/warehouse.duckdb data/warehouse.duckdb.wal data/monitoring data/mlflow dbt_project/target
	find data/dagster_home -mindepth 1 ! -name dagster.yaml -exec rm -rf {} +
