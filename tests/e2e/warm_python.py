"""A warm interpreter for the end-to-end runs: imports once, forks a fresh process per run.

    python tests/e2e/warm_python.py     (started by tests/e2e/helpers.py, one per test process)

A `make run` spends about a third of its time before its first task: importing
Airflow, Great Expectations, pandas and dbt, and building Airflow's in-process
execution API (its versioned schemas). This process does that once, with the
Airflow settings of the test process's metadata DB, and then serves requests
on stdin, one JSON line each:

    {"argv": ["-m", "crm_pipeline.run", "--date", "2026-11-22"], "env": {...}, "cwd": "...",
     "stdout": "FILE", "stderr": "FILE", "timeout": 600}

For each it forks a child that takes the request's environment, directory,
argv and output files and runs the module or script as `python ARGV` would;
it answers {"returncode": N} (-9 for a SIGKILL, as subprocess says). A request
with "detach": true is answered {"pid": N} at once, so several runs go on at
the same time; {"wait": N} answers that run's {"returncode": N} when it ends.
A run whose Airflow metadata DB is not the one imported (a drill's own copy of
it, for runs at once) points Airflow's ORM at its own before it starts. Each run
is its own process, started from this process's state right after its imports:
no run sees what an earlier run did in memory. The helpers send a run here
only when its Airflow settings are the ones imported; any other run gets a
plain new interpreter.

The process the helpers start forks this server and exits, so the server is
not in the test process's tree (a test summing the memory of its children must
not see it); it ends when its stdin closes, that is when the test process ends,
or when the helpers kill it by the pid its first line gives.

Nothing here may read a CRM_* setting or parse the DAGs: those belong to each
run (the DAG files read their settings when parsed).
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import runpy
import signal
import sys
import threading
import time
import traceback


def warm_up() -> None:
    """What every run imports, and the execution API app it builds, without touching any database."""
    from crm_pipeline.config import apply_airflow_env

    apply_airflow_env()
    os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")  # as crm_pipeline.run sets it
    import dbt.adapters.duckdb  # each build runs dbt in the run's process
    import dbt.adapters.postgres
    import dbt.cli.main  # noqa: F401
    import duckdb  # noqa: F401
    import great_expectations  # noqa: F401
    import pandas  # noqa: F401
    import pendulum  # noqa: F401
    import psycopg2  # noqa: F401
    import pyarrow  # noqa: F401
    from airflow.dag_processing.dagbag import DagBag  # noqa: F401
    from airflow.models import import_all_models
    from airflow.sdk.execution_time import supervisor, task_runner  # noqa: F401
    from sqlalchemy.orm import configure_mappers

    import crm_pipeline.alerts
    import crm_pipeline.pipeline
    import crm_pipeline.privacy
    import crm_pipeline.publish_window
    import crm_pipeline.quality.checks
    import crm_pipeline.quality.gate
    import crm_pipeline.summary
    import crm_pipeline.text.score
    import crm_pipeline.tier_history
    import crm_pipeline.transform.dbt
    import crm_pipeline.transform.incremental
    import crm_pipeline.value.score  # noqa: F401

    # The ORM's mappers, configured on a process's first query: once here, not in every run (no database).
    import_all_models()
    configure_mappers()
    app = supervisor.in_process_api_server().app  # the app only: its event loop thread starts in each run
    if not getattr(app, "_cadwyn_initialized", True):
        app._cadwyn_initialize()  # the versioned routers, else built on the first request of every run
    # The JSON schemas dbt checks its project, profile, flags, selectors and test results against: built
    # on first use and kept per class (0.2 s of a core in every run).
    from dbt.adapters.duckdb.credentials import DuckDBCredentials
    from dbt.adapters.postgres.connections import PostgresCredentials
    from dbt.contracts import project
    from dbt.contracts.selection import SelectorFile
    from dbt.task.test import TestResultData

    for contract in (
        DuckDBCredentials,
        PostgresCredentials,
        project.Configuration,
        project.PackageConfig,
        project.ProfileConfig,
        project.Project,
        project.ProjectFlags,
        SelectorFile,
        TestResultData,
    ):
        contract.json_schema()
    # The classifier's models (package files, read once per process and kept: 0.1 s of a core per run);
    # not its lexicon, whose file is a setting.
    from crm_pipeline.text import classifier

    classifier._models()
    classifier._category_models()
    if threading.active_count() != 1:  # a fork copies only the calling thread: nothing may run beside it
        raise SystemExit(f"warm_python: threads started while warming up: {threading.enumerate()}")
    # What is imported lives as long as a run: out of the collector's sight, so a run's collections
    # do not walk it again and again (and its pages stay shared with the forked runs).
    gc.collect()
    gc.freeze()


WARM_DB_KEY = "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"


def child(request: dict, warm_db: str | None) -> None:
    """In the forked process: become `python ARGV` with the request's environment; never returns."""
    code = 1
    try:
        for fd, name in ((1, "stdout"), (2, "stderr")):
            out = os.open(request[name], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.dup2(out, fd)
            os.close(out)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)  # the requests are the server's, not the run's
        os.close(devnull)
        os.environ.clear()
        os.environ.update(request["env"])
        if os.environ.get(WARM_DB_KEY) != warm_db:  # its own metadata DB: Airflow's ORM is pointed at it
            from airflow import settings

            settings.configure_vars()
            settings.reconfigure_orm()
        time.tzset()
        os.chdir(request["cwd"])
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        argv = request["argv"]
        if argv[0] == "-m":
            sys.argv = [argv[1], *argv[2:]]
            runpy.run_module(argv[1], run_name="__main__", alter_sys=True)
        else:
            sys.argv = list(argv)
            sys.path.insert(0, os.path.dirname(os.path.abspath(argv[0])))
            runpy.run_path(argv[0], run_name="__main__")
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if not isinstance(exc.code, int | None):
            print(exc.code, file=sys.stderr)
    except BaseException:
        traceback.print_exc()
        code = 1
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(code)


def serve() -> None:
    if os.fork():  # the started process leaves at once: this server is nobody's child, so a test
        os._exit(0)  # measuring its own process tree (the bench's Peak) never counts it
    answers = os.fdopen(os.dup(1), "w")  # the replies' own channel: what imports log goes to stderr
    os.dup2(2, 1)
    warm_up()
    warm_db = os.environ.get(WARM_DB_KEY)
    print(json.dumps({"ready": os.getpid()}), file=answers, flush=True)
    deadlines: dict[int, float] = {}  # detached runs, until they are waited for
    for line in sys.stdin:
        request = json.loads(line)
        if "wait" in request:
            pid = request["wait"]
        else:
            pid = os.fork()
            if pid == 0:
                answers.close()
                child(request, warm_db)
            deadlines[pid] = time.monotonic() + request.get("timeout", 600)
            if request.get("detach"):
                print(json.dumps({"pid": pid}), file=answers, flush=True)
                continue
        deadline, timed_out = deadlines.pop(pid), False
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                _, status = os.waitpid(pid, 0)
                timed_out = True
                break
            time.sleep(0.05)
        reply = {"returncode": os.waitstatus_to_exitcode(status), "timed_out": timed_out}
        print(json.dumps(reply), file=answers, flush=True)


if __name__ == "__main__":
    serve()
