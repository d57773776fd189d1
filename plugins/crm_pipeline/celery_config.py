"""The Celery app's settings for Airflow's workers: Airflow's own, and the heavy libraries imported once.

    AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS=crm_pipeline.celery_config.CELERY_CONFIG

Airflow's Celery worker runs each task in a new process forked from a pool
process, and a task of ours imports dbt, Great Expectations, pandas or DuckDB
(2-3 s of a core each time: a quality gate took 2.5-4 s on a worker against
under 1 s in a warm process). Celery imports the modules of its `imports`
setting in the worker before it starts its pool, so every task process starts
with them. Only third-party libraries, which change with the image: the DAG
files and crm_pipeline are still read by each task, so a change to them needs
no worker restart. docker-compose.yml sets it for every Airflow service (only
the worker reads `imports`); tests/e2e/test_celery_scale_out.py checks the
worker's processes hold them.
"""

from __future__ import annotations

from airflow.providers.celery.executors.default_celery import DEFAULT_CELERY_CONFIG

# What a task of the pipeline imports that is worth importing once (no thread is started by any of them).
PRELOADED = (
    "dbt.adapters.duckdb",
    "dbt.adapters.postgres",
    "dbt.cli.main",
    "duckdb",
    "great_expectations",
    "pandas",
    "pyarrow",
)

CELERY_CONFIG = {**DEFAULT_CELERY_CONFIG, "imports": (*DEFAULT_CELERY_CONFIG.get("imports", ()), *PRELOADED)}
