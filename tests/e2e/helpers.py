"""What the end-to-end tests share: run `make run`'s entry point, its environment, the marts' checksums."""

from __future__ import annotations

import atexit
import contextlib
import datetime as dt
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from unittest import mock

from conftest import PARSE_CACHE, REPO, SECRET, pg_database
from crm_pipeline.load.warehouse import Warehouse, parse_url
from crm_pipeline.quality.gate import MARTS

END = dt.date(2026, 11, 22)  # the sample's last day, and a run's as-of day unless a test says another


def run_main(env: dict, as_of: dt.date | None, extra: list[str] = ()) -> subprocess.CompletedProcess:
    """`make run`'s entry point in a fresh process (Airflow reads its settings at import)."""
    return run_python(["-m", "crm_pipeline.run", "--date", (as_of or END).isoformat(), *extra], env)


def run_python(argv: list[str], env: dict, timeout: float = 600) -> subprocess.CompletedProcess:
    """`python ARGV` in a fresh process, from the repo: forked from this test process's warm
    interpreter (tests/e2e/warm_python.py) when the run's Airflow settings are the ones it
    imported, else a new interpreter. Either way the run is a process of its own."""
    warm = _warm_for(env)
    if warm is None:
        return subprocess.run(
            [sys.executable, *argv], env=env, capture_output=True, text=True, cwd=REPO, timeout=timeout
        )
    return warm.run(argv, env, timeout)


# What runs started at once may have of their own (own_airflow_home: a copy of the metadata DB each), so
# that they do not queue on one SQLite file; the warm interpreter points each run's ORM at its own. (Its
# log folder follows the home; Airflow's logging stays as imported: the runs' task logs go to the warm
# interpreter's, which no test reads.)
OWN_METADATA = ("AIRFLOW_HOME", "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "AIRFLOW__LOGGING__BASE_LOG_FOLDER")


class Started:
    """A run started by start_python; result() waits for it: `python ARGV`'s CompletedProcess, its stderr
    after its stdout in `stdout` (as subprocess gives stderr=STDOUT, in order only per stream)."""

    def __init__(self, argv: list[str], timeout: float, proc=None, warm=None, pid=None, tmp=None):
        self.argv, self.timeout, self.proc, self.warm, self.pid, self.tmp = argv, timeout, proc, warm, pid, tmp

    def result(self) -> subprocess.CompletedProcess:
        if self.proc is not None:
            out, _ = self.proc.communicate(timeout=self.timeout)
            return subprocess.CompletedProcess(self.argv, self.proc.returncode, out, "")
        try:
            reply = self.warm.ask({"wait": self.pid})
            out = "".join(_outputs(Path(self.tmp.name)))
        finally:
            self.tmp.cleanup()
        if reply["timed_out"]:
            raise subprocess.TimeoutExpired(self.argv, self.timeout, out)
        return subprocess.CompletedProcess(self.argv, reply["returncode"], out, "")


def start_python(argv: list[str], env: dict, timeout: float = 900) -> Started:
    """`python ARGV` started and not waited for, so that several run at once: forked from the warm
    interpreter when the run's Airflow settings are the ones it imported but for OWN_METADATA, else a new
    interpreter."""
    warm = _warm_for(env, own=OWN_METADATA)
    if warm is None:
        proc = subprocess.Popen(
            [sys.executable, *argv], env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        return Started([sys.executable, *argv], timeout, proc=proc)
    tmp = tempfile.TemporaryDirectory(prefix="crm-run-")
    out = Path(tmp.name)
    request = {"argv": argv, "env": env, "cwd": str(REPO), "stdout": str(out / "stdout")}
    reply = warm.ask(request | {"stderr": str(out / "stderr"), "timeout": timeout, "detach": True})
    return Started([sys.executable, *argv], timeout, warm=warm, pid=reply["pid"], tmp=tmp)


def _warm_for(env: dict, own: tuple[str, ...] = ()) -> _Warm | None:
    """This process's warm interpreter when the run's Airflow settings are the ones it imported (but for
    the settings in `own`, which a forked run sets for itself), else None: a new interpreter is needed."""
    warm = _Warm.get()

    def common(settings: dict) -> dict:
        return {k: v for k, v in settings.items() if k not in own}

    return warm if warm is not None and common(warm.settings) == common(_airflow_settings(env)) else None


def _outputs(folder: Path) -> tuple[str, str]:
    """A warm run's stdout and stderr, from the files the server sent them to ("" for a file not written)."""
    return tuple(
        (folder / n).read_text(errors="replace") if (folder / n).exists() else "" for n in ("stdout", "stderr")
    )


# Airflow's connections and variables in the environment: read from it when looked up, not at import (a
# forked run has its own environment by then), so they need no new interpreter.
LOOKED_UP = ("AIRFLOW_CONN_", "AIRFLOW_VAR_")


def _airflow_settings(env: dict) -> dict:
    """What Airflow reads at import: its variables as a run would have them, and the import path."""
    from crm_pipeline.config import apply_airflow_env

    with mock.patch.dict(os.environ, env, clear=True):
        apply_airflow_env()
        os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")
        return {
            k: v
            for k, v in os.environ.items()
            if (k.startswith("AIRFLOW") and not k.startswith(LOOKED_UP)) or k == "PYTHONPATH"
        }


class _Warm:
    """This test process's warm interpreter, started on first use with the process's Airflow home."""

    _instance: _Warm | None = None
    _lock = threading.Lock()

    def __init__(self):
        env = {k: v for k, v in os.environ.items() if not k.startswith("CRM_")}
        env["PYTHONPATH"] = f"{REPO / 'plugins'}:{REPO / 'dags'}"
        self.settings = _airflow_settings(env)
        self.log = tempfile.NamedTemporaryFile(prefix="crm-warm-", suffix=".log", delete=False)  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name("warm_python.py"))],
            env=env,
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
        )
        ready = self.proc.stdout.readline()
        self.proc.wait()  # the launcher: the server it forked is not this process's child
        if not ready.startswith('{"ready"'):
            raise RuntimeError(f"warm interpreter did not start:\n{Path(self.log.name).read_text()[-3000:]}")
        self.pid = json.loads(ready)["ready"]
        atexit.register(self.kill)

    def alive(self) -> bool:
        try:  # not a zombie either: whoever adopted the server may not have reaped it yet
            return Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
        except OSError:
            return False

    def kill(self) -> None:
        """At the test process's exit: the server and its log (read above if it fails to start) go."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)
        Path(self.log.name).unlink(missing_ok=True)

    @classmethod
    def get(cls) -> _Warm | None:
        if os.environ.get("E2E_COLD_RUNS"):  # every run a new interpreter, as before
            return None
        with cls._lock:
            if cls._instance is None or not cls._instance.alive():
                cls._instance = cls()
            return cls._instance

    def ask(self, request: dict) -> dict:
        """One request to the server and its answer."""
        with self._lock:
            self.proc.stdin.write(json.dumps(request) + "\n")
            self.proc.stdin.flush()
            return json.loads(self.proc.stdout.readline())

    def run(self, argv: list[str], env: dict, timeout: float) -> subprocess.CompletedProcess:
        with tempfile.TemporaryDirectory(prefix="crm-run-") as tmp:
            out, err = Path(tmp) / "stdout", Path(tmp) / "stderr"
            request = {"argv": argv, "env": env, "cwd": str(REPO), "stdout": str(out), "stderr": str(err)}
            reply = self.ask(request | {"timeout": timeout})
            stdout, stderr = _outputs(Path(tmp))
        if reply["timed_out"]:
            raise subprocess.TimeoutExpired([sys.executable, *argv], timeout, stdout, stderr)
        return subprocess.CompletedProcess([sys.executable, *argv], reply["returncode"], stdout, stderr)


def pipeline_env(crm_env, airflow_db: Path) -> dict:
    """The pipeline's environment; ground truth goes to tmp/truth, beside the landing dir's parent, unread."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRM_")}
    env.update(
        CRM_LANDING_DIR=str(crm_env["landing"]),
        CRM_WAREHOUSE_URL=crm_env["url"],
        CRM_KEY_SECRET=SECRET,
        CRM_DBT_ARTIFACTS_DIR=str(crm_env["tmp"] / "dbt"),
        CRM_REPORTS_DIR=str(crm_env["tmp"] / "reports"),
        CRM_TIMEZONE="Asia/Shanghai",
        CRM_DBT_PARSE_CACHE=PARSE_CACHE,
        AIRFLOW_HOME=str(airflow_db),
        PYTHONPATH=f"{REPO / 'plugins'}:{REPO / 'dags'}",
    )
    return env


def checksums(url: str) -> dict[str, str]:
    """Every published mart's content, as one digest each (row order ignored)."""
    out = {}
    with Warehouse.from_url(url) as wh:
        for mart in MARTS:
            rows = sorted(
                json.dumps(r, default=str, ensure_ascii=False) for r in wh.fetchall(f"select * from marts.{mart}")
            )
            out[mart] = hashlib.sha256("\n".join(rows).encode()).hexdigest()
    return out


@contextlib.contextmanager
def new_warehouse(engine: str, tmp: Path):
    """An empty warehouse of this engine: a DuckDB file in `tmp`, or a throwaway PostgreSQL database."""
    if engine == "duckdb":
        yield f"duckdb:///{tmp}/warehouse.duckdb"
    else:
        with pg_database() as url:
            yield url


@contextlib.contextmanager
def clone_warehouse(url: str, tmp: Path):
    """A copy of a warehouse nobody is connected to, e.g. after a clean run that several drills start
    from: the DuckDB file (and its WAL) copied into `tmp`, or a PostgreSQL database made from it as a
    template. Raw, staging, marts, audit and the publish history come along; dbt's artifacts do not
    (the copy's first build parses the project, as a new warehouse's does)."""
    target = parse_url(url)
    if target.kind == "duckdb":
        copy = Path(tmp) / target.path.name
        for suffix in ("", ".wal"):
            if Path(f"{target.path}{suffix}").exists():
                shutil.copy(f"{target.path}{suffix}", f"{copy}{suffix}")
        yield f"duckdb:///{copy}"
    else:
        with pg_database(template=target.database) as copy:
            yield copy


@contextlib.contextmanager
def copy_of_run(landing: Path, url: str, tmp: Path, fresh_engine: str | None = None):
    """A drill's own copy of a run: its landing files copied into `tmp/landing`, and a copy of its warehouse
    (clone_warehouse), or with `fresh_engine` an empty warehouse of that engine. Yields (landing, url)."""
    copy = Path(tmp) / "landing"
    shutil.copytree(landing, copy)
    warehouse = new_warehouse(fresh_engine, tmp) if fresh_engine else clone_warehouse(url, tmp)
    with warehouse as copy_url:
        yield copy, copy_url
