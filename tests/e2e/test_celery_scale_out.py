"""Scale-out without Docker: Airflow's own processes, started natively, run the pipeline on Celery workers.

The api-server, scheduler, dag-processor and a Celery worker run as separate
processes against the machine's PostgreSQL (metadata and warehouse, two
databases) and Redis (broker). The extract DAGs and the transform are
triggered through the CLI for one date; every task must run on the worker
(the scheduler only queues them), with no state shared through local files,
and the marts must be published to the PostgreSQL warehouse.

The transform is left to the scheduler, as in production: each extract's
asset event triggers it. It must publish the day once, after every source
has reported (not on the first source's half of the day), and a source that
lands late must publish the day once more (issue 21, item 3).
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
import urllib.error
import urllib.request
from pathlib import Path
from zoneinfo import ZoneInfo

import psycopg2
import pytest

from conftest import PARSE_CACHE, REPO, SECRET, pg_database
from crm_pipeline.load.warehouse import Warehouse
from crm_pipeline.sample.generate import generate

pytestmark = pytest.mark.e2e
TZ = ZoneInfo("Asia/Shanghai")
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
        AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS="crm_pipeline.celery_config.CELERY_CONFIG",
        AIRFLOW__CORE__DAGS_FOLDER=str(REPO / "dags"),
        AIRFLOW__CORE__PLUGINS_FOLDER=str(REPO / "plugins"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION="True",
        AIRFLOW__API__PORT=str(port),
        AIRFLOW__API__BASE_URL=f"http://127.0.0.1:{port}",
        AIRFLOW__CORE__EXECUTION_API_SERVER_URL=f"http://127.0.0.1:{port}/execution/",
        AIRFLOW__API_AUTH__JWT_SECRET="test-secret-not-for-production",
        # The test drives the public API without logging in (a CLI process per call cost about 4 s of a core).
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS="True",
        AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC="2",
        # The scheduler's pause when a loop found nothing to do (1 s by default): the pace from one task's
        # end to the next one's queueing, some 40 times in this test. Each loop costs CPU (its queries, and
        # PostgreSQL's): at 0.2 s the test used 152 s of CPU (both cores' busy time), at 0.5 s 127 s, in
        # about the same wall time (101-115 s, alone on the machine).
        AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME="0.5",
        AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL="5",
        PYTHONPATH=f"{REPO / 'plugins'}:{REPO / 'dags'}",
        CRM_LANDING_DIR=str(tmp_path / "landing"),
        CRM_WAREHOUSE_URL=warehouse_url,
        CRM_KEY_SECRET=SECRET,
        CRM_TIMEZONE="Asia/Shanghai",
        CRM_DBT_PARSE_CACHE=PARSE_CACHE,
        CRM_DBT_ARTIFACTS_DIR=str(tmp_path / "dbt"),
        CRM_REPORTS_DIR=str(tmp_path / "reports"),
        CRM_TASK_RETRIES="1",
        CRM_RETRY_DELAY_SECONDS="5",
        # No run on unpause: only the runs triggered here. The transform waits for all four sources.
        CRM_EXTRACT_SCHEDULE="manual",
        CRM_PUBLISH_SOURCES=",".join(EXTRACTS),
        CRM_PUBLISH_POKE_SECONDS="5",
    )
    return env


def _cli(env, *args, timeout=120) -> str:
    proc = subprocess.run([*AIRFLOW, *args], env=env, capture_output=True, text=True, timeout=timeout, cwd=REPO)
    assert proc.returncode == 0, f"airflow {' '.join(args)}:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


def _api(port: int, method: str, path: str, body: dict | None = None):
    """One call to the api-server's public REST API (v2)."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/v2{path}",
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        pytest.fail(f"{method} {path}: HTTP {exc.code} {exc.read()[:2000]!r}")


def _api_up(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/monitor/health", timeout=5) as response:
            return response.status == 200
    except OSError:
        return False


def _meta(metadata_db: str, sql: str, args: tuple = ()) -> list[tuple]:
    """Read the Airflow metadata DB directly: polling through `airflow dags list-runs` costs a CLI
    process (about 4 s of one core) every poll, taken from the worker the test is waiting for."""
    conn = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname=metadata_db)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(sql, args)
            return cur.fetchall()
    finally:
        conn.close()


def _runs(metadata_db: str, dag_id: str) -> dict[str, str]:
    return dict(_meta(metadata_db, "select run_id, state from dag_run where dag_id = %s order by id", (dag_id,)))


def _wait_for_run(metadata_db: str, dag_id: str, run_id: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    state = "?"
    while time.monotonic() < deadline:
        state = _runs(metadata_db, dag_id).get(run_id, "?")
        if state in ("success", "failed"):
            return state
        time.sleep(0.5)
    return state


def _wait_for_transforms(metadata_db: str, at_least: int, timeout: float, logs) -> dict[str, str]:
    """Until crm_transform has at least this many runs and none is queued or running."""
    deadline = time.monotonic() + timeout
    runs: dict[str, str] = {}
    while time.monotonic() < deadline:
        runs = _runs(metadata_db, "crm_transform")
        if len(runs) >= at_least and all(s in ("success", "failed") for s in runs.values()):
            return runs
        time.sleep(0.5)
    pytest.fail(f"crm_transform runs did not finish: {runs}\n" + (logs / "worker.log").read_text()[-4000:])


def _pokes(metadata_db: str, dag_id: str, task_id: str) -> int:
    """How many times a sensor in reschedule mode has poked and been rescheduled, over all its runs."""
    return _meta(
        metadata_db,
        "select count(*) from task_reschedule r join task_instance t on r.ti_id = t.id "
        "where t.dag_id = %s and t.task_id = %s",
        (dag_id, task_id),
    )[0][0]


def _group_processes(pgid: int) -> dict[int, str]:
    """The processes of a process group (a service started in a session of its own): pid -> its mapped files."""
    out = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[2]) == pgid:
                out[int(stat.parent.name)] = (stat.parent / "maps").read_text()
        except (OSError, ValueError, IndexError):
            continue  # gone meanwhile
    return out


def day_and_logical_dates(now: dt.datetime) -> tuple[dt.date, dt.datetime, dt.datetime]:
    """The local day the test runs (the day of ten minutes ago) and two logical dates on it, a minute apart
    and both past (a future one is refused): the extracts' and the late chat export's. Taken once, when the
    test starts, so a run that crosses local midnight (16:00 UTC) still names one day throughout. The
    transform waits for that day's sources until 06:00 the next day, so neither cut-off has passed."""
    day = (now - dt.timedelta(minutes=10)).astimezone(TZ).date()
    last_minute = dt.datetime.combine(day, dt.time(23, 58), TZ).astimezone(dt.UTC)
    first = min(now - dt.timedelta(minutes=3), last_minute)
    return day, first, first + dt.timedelta(minutes=1)


@pytest.mark.parametrize(
    ("now", "day"),
    [
        ("2026-12-04T08:00:00+00:00", "2026-12-04"),  # 16:00 local
        ("2026-12-04T16:02:00+00:00", "2026-12-04"),  # 00:02 local, the next day: still the day before
        ("2026-12-04T16:30:00+00:00", "2026-12-05"),
    ],
)
def test_the_logical_dates_fall_on_one_local_day_in_the_past(now, day):
    now = dt.datetime.fromisoformat(now)
    got, first, late = day_and_logical_dates(now)
    assert str(got) == day
    assert first < late < now and {first.astimezone(TZ).date(), late.astimezone(TZ).date()} == {got}


def _publishes(url: str, day: dt.date) -> list[str]:
    with Warehouse.from_url(url) as wh:
        rows = wh.fetchall(
            "select run_id from audit.publishes where as_of_date = %s group by run_id order by min(published_at)",
            (day,),
        )
    return [r[0] for r in rows]


def test_the_pipeline_runs_on_celery_workers(tmp_path, metadata_db, pg_url):
    end, logical_at, late_at = day_and_logical_dates(dt.datetime.now(dt.UTC))
    generate(tmp_path / "landing", tmp_path / "truth", customers=150, seed=9, end_date=end)
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
        # The dag-processor parses the DAGs into the metadata DB; the api-server answers.
        deadline = time.monotonic() + 180
        wanted = {*EXTRACTS, "crm_transform"}
        while time.monotonic() < deadline:
            registered = {r[0] for r in _meta(metadata_db, "select dag_id from dag where is_stale is not true")}
            if wanted <= registered and _api_up(port):
                break
            time.sleep(0.5)
        else:
            pytest.fail(
                "the dag-processor did not register the DAGs, or the api-server is not up:\n"
                + (logs / "dag-processor.log").read_text()[-3000:]
                + (logs / "api-server.log").read_text()[-3000:]
            )

        logical = logical_at.isoformat()
        for dag_id in sorted(wanted):
            _api(port, "PATCH", f"/dags/{dag_id}", {"is_paused": False})
        assert {r[0] for r in _meta(metadata_db, "select dag_id from dag where not is_paused")} == wanted

        def trigger(dag_ids: list[str], at: str = logical, run_id: str = "") -> None:
            """Trigger these DAGs at once (the worker runs them side by side) and wait for each to succeed."""
            runs = {dag_id: run_id or f"scaleout__{dag_id}" for dag_id in dag_ids}
            for dag_id, run in runs.items():
                _api(port, "POST", f"/dags/{dag_id}/dagRuns", {"dag_run_id": run, "logical_date": at})
            for dag_id, run in runs.items():
                state = _wait_for_run(metadata_db, dag_id, run, timeout=600)
                assert state == "success", f"{dag_id}: {state}\n" + (logs / "worker.log").read_text()[-4000:]

        # The shop lands first: its asset event starts the transform, which must wait for the others.
        trigger(EXTRACTS[:1])
        deadline = time.monotonic() + 120
        while _pokes(metadata_db, "crm_transform", "wait_for_sources") < 2 and time.monotonic() < deadline:
            time.sleep(0.5)  # two pokes of wait_for_sources, each finding the day incomplete
        assert _pokes(metadata_db, "crm_transform", "wait_for_sources") >= 2
        first = _runs(metadata_db, "crm_transform")
        assert len(first) == 1 and set(first.values()) <= {"queued", "running"}, first
        assert _publishes(pg_url, end) == []  # no half-day publish
        trigger(EXTRACTS[1:])
        runs = _wait_for_transforms(metadata_db, 2, 900, logs)
        assert set(runs.values()) == {"success"}, runs
        # One publish of the day, by the first run; the runs the other sources' events queued published nothing.
        assert _publishes(pg_url, end) == [next(iter(first))]

        # A late source: a chat export lands after the publish, and its extract re-publishes the day.
        with Warehouse.from_url(pg_url) as wh:
            (group, sender) = wh.fetchone("select min(group_id), min(sender_id) from raw.chat_messages")
        (tmp_path / "landing" / "chat_messages" / "late.csv").write_text(
            "msg_id,group_id,sender_id,sent_at,msg_type,content\n"
            f"LATE1,{group},{sender},{end} 23:00:00,text,晚到的消息\n",
            encoding="utf-8",
        )
        # A second run of the chat DAG for the same local day needs a logical date of its own.
        late = late_at.isoformat()
        trigger(["crm_extract_chat"], late, "scaleout__late_chat")
        runs = _wait_for_transforms(metadata_db, len(runs) + 1, 900, logs)
        assert set(runs.values()) == {"success"}, runs
        assert len(_publishes(pg_url, end)) == 2
        with Warehouse.from_url(pg_url) as wh:
            assert wh.fetchone("select count(*) from staging.stg_chat__messages where msg_id = 'LATE1'")[0] == 1

        # The worker imported DuckDB (with dbt, GX, pandas: crm_pipeline.celery_config) before forking its pool:
        # its main process and every pool process hold it, though none of them ran a task's code.
        worker = next(p for name, _fh, p in procs if name == "worker")
        group = _group_processes(worker.pid)
        holding = [pid for pid, maps in group.items() if "_duckdb." in maps]
        pool = int(env["AIRFLOW__CELERY__WORKER_CONCURRENCY"])
        assert len(holding) >= 1 + pool, f"{len(holding)} of the worker's {len(group)} processes hold DuckDB"

        # Every task of these runs ran on a Celery worker process (the scheduler only queued it).
        meta = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname=metadata_db)
        with meta, meta.cursor() as cur:
            cur.execute(
                "select count(*), count(distinct hostname), "
                "sum(case when state in ('success', 'skipped') then 1 else 0 end), "
                "sum(case when state = 'success' then 1 else 0 end) from task_instance "
                "where run_id like 'scaleout__%%' or dag_id = 'crm_transform'"
            )
            total, hosts, ok, executed = cur.fetchone()
            cur.execute(
                "select distinct executor from task_instance "
                "where run_id like 'scaleout__%%' or dag_id = 'crm_transform'"
            )
            executors = {r[0] for r in cur.fetchall()}
        meta.close()
        assert total >= 20 and ok == total and hosts >= 1
        assert executors <= {None, "CeleryExecutor"}
        # ...and the worker process is the one that executed them.
        # (A skipped task is never executed: the transform runs that had nothing to publish skip their build.)
        assert (logs / "worker.log").read_text().count("Executing workload in Celery") >= executed
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
