"""Scale-out without Docker: Airflow's own processes, started natively, run the pipeline on Celery workers.

The api-server, scheduler, dag-processor and a Celery worker run as separate
processes against the machine's PostgreSQL (metadata and warehouse, two
databases) and Redis (broker). The extract DAGs and the transform are
triggered through the CLI for one date; every task must run on the worker
(the scheduler only queues them), with no state shared through local files,
and the marts must be published to the PostgreSQL warehouse.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import signal
import socket
import subprocess
import sys
import time

import psycopg2
import pytest

from conftest import REPO, SECRET, pg_database
from crm_pipeline.load.warehouse import Warehouse
from crm_pipeline.sample.generate import generate

pytestmark = pytest.mark.e2e
END = dt.date(2026, 11, 22)
EXTRACTS = ["crm_extract_shop", "crm_extract_forum", "crm_extract_chat", "crm_extract_events"]
AIRFLOW = [sys.executable, "-m", "airflow"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def metadata_db():
    with pg_database("crm_af") as url:
        yield url.rsplit("/", 1)[1]


def _env(tmp_path, metadata_db: str, warehouse_url: str, port: int, redis_db: int) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CRM_", "AIRFLOW"))}
    meta = f"postgresql+psycopg2://postgres@127.0.0.1:5432/{metadata_db}"
    env.update(
        AIRFLOW_HOME=str(tmp_path / "airflow"),
        AIRFLOW__CORE__EXECUTOR="CeleryExecutor",
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=meta,
        AIRFLOW__CELERY__BROKER_URL=f"redis://127.0.0.1:6379/{redis_db}",
        AIRFLOW__CELERY__RESULT_BACKEND="db+" + meta,
        AIRFLOW__CELERY__WORKER_CONCURRENCY="4",
        AIRFLOW__CORE__DAGS_FOLDER=str(REPO / "dags"),
        AIRFLOW__CORE__PLUGINS_FOLDER=str(REPO / "plugins"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION="True",
        AIRFLOW__API__PORT=str(port),
        AIRFLOW__API__BASE_URL=f"http://127.0.0.1:{port}",
        AIRFLOW__CORE__EXECUTION_API_SERVER_URL=f"http://127.0.0.1:{port}/execution/",
        AIRFLOW__API_AUTH__JWT_SECRET="test-secret-not-for-production",
        AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC="2",
        AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL="5",
        PYTHONPATH=f"{REPO / 'plugins'}:{REPO / 'dags'}",
        CRM_LANDING_DIR=str(tmp_path / "landing"),
        CRM_WAREHOUSE_URL=warehouse_url,
        CRM_KEY_SECRET=SECRET,
        CRM_TIMEZONE="Asia/Shanghai",
        CRM_DBT_ARTIFACTS_DIR=str(tmp_path / "dbt"),
        CRM_REPORTS_DIR=str(tmp_path / "reports"),
        CRM_TASK_RETRIES="1",
        CRM_RETRY_DELAY_SECONDS="5",
    )
    return env


def _cli(env, *args, timeout=120) -> str:
    proc = subprocess.run([*AIRFLOW, *args], env=env, capture_output=True, text=True, timeout=timeout, cwd=REPO)
    assert proc.returncode == 0, f"airflow {' '.join(args)}:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


def _json_list(out: str) -> list[dict]:
    """The JSON array in the CLI's output (log lines may come before it)."""
    for line in out.splitlines():
        if line.startswith(("[{", "[]")):
            return json.loads(line)
    return []


def _wait_for_run(env, dag_id: str, run_id: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    state = "?"
    while time.monotonic() < deadline:
        out = _cli(env, "dags", "list-runs", dag_id, "-o", "json")
        runs = {r["run_id"]: r["state"] for r in _json_list(out)}
        state = runs.get(run_id, "?")
        if state in ("success", "failed"):
            return state
        time.sleep(5)
    return state


def test_the_pipeline_runs_on_celery_workers(tmp_path, metadata_db, pg_url):
    generate(tmp_path / "landing", tmp_path / "truth", customers=150, seed=9, end_date=END)
    port = _free_port()
    redis_db = 7
    env = _env(tmp_path, metadata_db, pg_url, port, redis_db)
    subprocess.run(["redis-cli", "-n", str(redis_db), "flushdb"], check=False, capture_output=True)
    _cli(env, "db", "migrate", timeout=300)
    logs = tmp_path / "logs"
    logs.mkdir()
    procs = []
    try:
        for name, args in (
            ("api-server", ["api-server", "--port", str(port)]),
            ("scheduler", ["scheduler"]),
            ("dag-processor", ["dag-processor"]),
            ("worker", ["celery", "worker"]),
        ):
            fh = (logs / f"{name}.log").open("w")
            procs.append(
                (
                    name,
                    fh,
                    subprocess.Popen(
                        [*AIRFLOW, *args],
                        env=env,
                        stdout=fh,
                        stderr=subprocess.STDOUT,
                        cwd=REPO,
                        start_new_session=True,
                    ),
                )
            )
        # The dag-processor parses the DAGs into the metadata DB.
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            out = subprocess.run(
                [*AIRFLOW, "dags", "list", "-o", "json"], env=env, capture_output=True, text=True
            ).stdout
            if all(d in out for d in [*EXTRACTS, "crm_transform"]):
                break
            time.sleep(3)
        else:
            pytest.fail(
                "the dag-processor did not register the DAGs:\n" + (logs / "dag-processor.log").read_text()[-3000:]
            )

        # Noon, not midnight: the scheduled run for the same day (created on unpause) has its own logical date.
        logical = f"{END.isoformat()}T12:00:00+08:00"
        for dag_id in [*EXTRACTS, "crm_transform"]:
            _cli(env, "dags", "unpause", dag_id)
        runs = {}
        for dag_id in EXTRACTS:
            run_id = f"scaleout__{dag_id}"
            _cli(env, "dags", "trigger", dag_id, "--run-id", run_id, "--logical-date", logical)
            runs[dag_id] = run_id
        for dag_id, run_id in runs.items():
            state = _wait_for_run(env, dag_id, run_id, timeout=600)
            assert state == "success", f"{dag_id}: {state}\n" + (logs / "worker.log").read_text()[-4000:]
        transform_run = "scaleout__crm_transform"
        _cli(
            env,
            "dags",
            "trigger",
            "crm_transform",
            "--run-id",
            transform_run,
            "--conf",
            json.dumps({"as_of_date": END.isoformat()}),
        )
        state = _wait_for_run(env, "crm_transform", transform_run, timeout=900)
        assert state == "success", f"crm_transform: {state}\n" + (logs / "worker.log").read_text()[-4000:]

        # Every task of these runs ran on a Celery worker process (the scheduler only queued it).
        meta = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname=metadata_db)
        with meta, meta.cursor() as cur:
            cur.execute(
                "select count(*), count(distinct hostname), sum(case when state = 'success' then 1 else 0 end) "
                "from task_instance where run_id like 'scaleout__%%'"
            )
            total, hosts, ok = cur.fetchone()
            cur.execute("select distinct executor from task_instance where run_id like 'scaleout__%%'")
            executors = {r[0] for r in cur.fetchall()}
        meta.close()
        assert total >= 20 and ok == total and hosts >= 1
        assert executors <= {None, "CeleryExecutor"}
        # ...and the worker process is the one that executed them.
        assert (logs / "worker.log").read_text().count("Executing workload in Celery") >= total
    finally:
        for _, _fh, p in procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGTERM)
        for _, fh, p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
            fh.close()
        subprocess.run(["redis-cli", "-n", str(redis_db), "flushdb"], check=False, capture_output=True)

    with Warehouse.from_url(pg_url) as wh:
        rfm = wh.fetchone("select count(*), min(as_of_date) from marts.fct_customer_rfm")
        published = wh.fetchone("select count(*) from audit.check_results where suite like 'marts.%%'")[0]
    assert rfm[0] > 50
    assert published > 0
