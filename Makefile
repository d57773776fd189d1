# The command surface. `make help` lists it.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
UV_VERSION := 0.13.9
export AIRFLOW_HOME ?= $(CURDIR)/airflow_home
export AIRFLOW__CORE__DAGS_FOLDER := $(CURDIR)/dags
export AIRFLOW__CORE__PLUGINS_FOLDER := $(CURDIR)/plugins
export AIRFLOW__CORE__LOAD_EXAMPLES := False
export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN ?= sqlite:///$(AIRFLOW_HOME)/airflow.db
export PYTHONPATH := $(CURDIR)/plugins:$(CURDIR)/dags

.PHONY: help setup run backfill test test-fast lint format bench eval-text docs bi bi-setup lock clean
help:
	@echo "make setup   create .venv with the pinned stack and a local Airflow home (idempotent)"
	@echo "make run     [DATE=YYYY-MM-DD] load data/landing, run every DAG, print the summary"
	@echo "make backfill FROM=YYYY-MM-DD TO=YYYY-MM-DD [EVERY=day|week|month]  run the as-of days of a range in order"
	@echo "make test-fast  unit tests and dbt unit tests: no services, no end-to-end runs"
	@echo "make test    the whole test suite (DuckDB, PostgreSQL and MariaDB), two processes [PYTEST_WORKERS=0: one]"
	@echo "make lint    ruff and sqlfluff"
	@echo "make bench   [SCALE=S|M|L] [PG=postgresql://.../crm_bench_m] [SKIP_BASELINE=1] [ORDERS_ONLY=1] the benchmark; prints a table"
	@echo "make eval-text [TEXT_DATA=../shared/data] the classifier on every corpus's held-out part, beside SnowNLP/VADER"
	@echo "make docs    dbt's documentation site (every model and column, lineage) as one page: data/docs/index.html"
	@echo "make bi      [BI_PORT=8088] Apache Superset on 127.0.0.1 with the four dashboards, reading the marts"

setup: $(VENV)/.installed $(AIRFLOW_HOME)/airflow.db

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: requirements-dev.lock $(VENV)/bin/python
	$(PY) -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	@# Bytecode now: with PYTHONDONTWRITEBYTECODE set (it is on CI), every process would compile
	@# every module it imports again (dbt, Airflow and GX: about 6 s a process).
	$(VENV)/bin/uv pip sync --quiet --compile-bytecode --python $(PY) requirements-dev.lock
	@# The project's own code, importable from the venv without a build step.
	$(PY) -c "import site, pathlib; pathlib.Path(site.getsitepackages()[0], 'crm_pipeline.pth').write_text('$(CURDIR)/plugins\n')"
	touch $@

$(AIRFLOW_HOME)/airflow.db: $(VENV)/.installed
	mkdir -p $(AIRFLOW_HOME)
	$(VENV)/bin/airflow db migrate > $(AIRFLOW_HOME)/migrate.log 2>&1 || (tail -20 $(AIRFLOW_HOME)/migrate.log; exit 1)
	@test -f $@ && touch $@

run: setup
	$(PY) -m crm_pipeline.run $(if $(DATE),--date $(DATE))

backfill: setup
	@test -n "$(FROM)" -a -n "$(TO)" || (echo "usage: make backfill FROM=YYYY-MM-DD TO=YYYY-MM-DD [EVERY=day|week|month]"; exit 2)
	$(PY) -m crm_pipeline.run --from $(FROM) --to $(TO) --every $(or $(EVERY),day)

# Two test processes (pytest-xdist), each taking one file's tests for one engine at a time, so a module
# fixture is built once (tests/conftest.py, work_unit), in collection order: the end-to-end tests first.
# Most tests spend their time in one-core Python (Airflow, dbt, GX). PYTEST_WORKERS=0: one process.
PYTEST_WORKERS ?= 2
XDIST := $(if $(filter 0,$(PYTEST_WORKERS)),,-n $(PYTEST_WORKERS) --dist loadscope --no-loadscope-reorder)
test: setup
	$(PY) -m pytest $(XDIST) $(PYTEST_ARGS)

# No PostgreSQL, MariaDB, Redis or end-to-end run: what a change to one module needs first. The
# markers come from the fixtures a test uses (tests/conftest.py), so none can be forgotten.
FAST_MARKERS := not e2e and not postgres and not mariadb
test-fast: setup
	$(PY) -m pytest $(XDIST) -m "$(FAST_MARKERS)" $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/ruff check plugins dags tests
	$(VENV)/bin/ruff format --check plugins dags tests
	$(VENV)/bin/sqlfluff lint dbt_project/models dbt_project/macros --disable-progress-bar

format: setup
	$(VENV)/bin/ruff format plugins dags tests
	$(VENV)/bin/ruff check --fix plugins dags tests

bench: setup
	$(PY) -m crm_pipeline.bench --scale $(or $(SCALE),S) $(if $(PG),--postgres $(PG)) $(if $(SKIP_BASELINE),--skip-baseline) $(if $(ORDERS_ONLY),--orders-only)

# Re-resolve the pinned stack (needs the package index): the tools' lock first, then the runtime lock
# constrained by it, so the Airflow image (requirements.lock) and the dev venv pin the same versions.
# The classifier's evaluation on the held-out parts of the corpora it was
# trained from, SnowNLP and VADER side by side, then on the sample's labels.
TEXT_DATA ?= ../shared/data
# dbt's docs against an empty DuckDB warehouse of its own (column types need one): the pipeline's is
# never opened, so this runs beside `make run`.
docs: setup
	$(PY) -m crm_pipeline.dbt_docs --out data/docs

# Superset in a virtualenv of its own (it needs SQLAlchemy 1.4 and pandas 2), pinned by bi/requirements.lock.
BI_VENV := .venv-bi
BI_PORT ?= 8088
bi-setup: $(BI_VENV)/.installed

$(BI_VENV)/.installed: bi/requirements.lock $(VENV)/.installed
	test -x $(BI_VENV)/bin/python || $(PYTHON) -m venv $(BI_VENV)
	$(VENV)/bin/uv pip sync --quiet --compile-bytecode --python $(BI_VENV)/bin/python bi/requirements.lock
	touch $@

bi: setup bi-setup
	$(PY) -m crm_pipeline.superset serve --port $(BI_PORT) $(if $(BI_PASSWORD),--password $(BI_PASSWORD))

eval-text: setup
	$(PY) -m crm_pipeline.text.evaluate --corpora $(TEXT_DATA) --baselines --categories \
		$(if $(wildcard data/landing/reviews),--sample data/landing)

lock: $(VENV)/bin/python
	$(PY) -m pip install --quiet uv==$(UV_VERSION)
	$(VENV)/bin/uv pip compile requirements-dev.in --python-version 3.11 -o requirements-dev.lock
	$(VENV)/bin/uv pip compile requirements.in -c requirements-dev.lock --python-version 3.11 -o requirements.lock
	$(VENV)/bin/uv pip compile bi/requirements.in --python-version 3.11 -o bi/requirements.lock

clean:
	rm -rf data airflow_home dbt_project/target dbt_project/logs
