"""`make run` runs its DAGs with dag.test(), which in Airflow 3 parses the whole DAG folder and writes
every DAG to the metadata DB on each call. A run parses the folder when it starts and lets the first
dag.test() write the DAGs; the later calls reuse that (crm_pipeline.run.dag_folder_synced_once)."""

from __future__ import annotations

import os

import pytest

from e2e.helpers import run_python

pytestmark = pytest.mark.e2e  # Airflow runs in a process of its own

# Two DAGs in one file that notes each parse of it.
DAG_FILE = """
import os
from pathlib import Path

import pendulum
from airflow.sdk import dag, task

with Path(os.environ["PARSES"]).open("a") as out:
    out.write("parsed\\n")

for name in ("count_a", "count_b", "count_c"):

    @dag(dag_id=name, schedule=None, start_date=pendulum.datetime(2020, 1, 1), catchup=False)
    def counted():
        @task
        def one():
            return 1

        one()

    counted()
"""

SCRIPT = """
import datetime as dt
from crm_pipeline.run import load_dags, run_dags
bag = load_dags()
for day in (dt.date(2026, 11, 21), dt.date(2026, 11, 22)):
    print(run_dags(day, ["count_a", "count_b", "count_c"], bag))
"""


def test_two_days_of_three_dags_parse_the_folder_twice(tmp_path, airflow_db):
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "counted.py").write_text(DAG_FILE)
    parses = tmp_path / "parses"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRM_")}
    env.update(
        AIRFLOW_HOME=str(airflow_db),
        AIRFLOW__CORE__DAGS_FOLDER=str(dags),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        PARSES=str(parses),
        CRM_TIMEZONE="Asia/Shanghai",
    )
    proc = run_python(["-c", SCRIPT], env)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    # Each of the six DAG runs ran its task.
    outcomes = [line for line in proc.stdout.splitlines() if line.startswith("[")]
    assert outcomes == [str([(d, "success", []) for d in ("count_a", "count_b", "count_c")])] * 2
    # Once by load_dags, once by the first dag.test (it writes the DAGs to the metadata DB): not once per
    # dag.test, which would be 1 + 6.
    assert parses.read_text().count("parsed") == 2
