"""The end-to-end runs' warm interpreter (tests/e2e/warm_python.py) behaves as `python ARGV` does.

Each run must be a process of its own: its exit status, output, environment,
directory and signals as a new interpreter would have them, and nothing left
in memory by an earlier run. A run with other Airflow settings than the ones
imported gets a new interpreter.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from conftest import REPO
from e2e.helpers import run_python

pytestmark = pytest.mark.e2e

SCRIPT = """
import os, sys, time
import crm_pipeline.config as config
print("argv", sys.argv[1:])
print("cwd", os.getcwd())
print("parent", os.getppid())
print("marker", os.environ.get("WARM_MARKER"), "other", os.environ.get("WARM_OTHER"))
print("zone", time.strftime("%Z", time.localtime(0)))
print("leak", getattr(config, "LEFT_BY_A_RUN", None))
config.LEFT_BY_A_RUN = "yes"
os.environ["WARM_OTHER"] = "set by the run"
print("to stderr", file=sys.stderr)
if os.environ.get("WARM_KILL"):
    sys.stdout.flush()
    os.kill(os.getpid(), 9)
sys.exit(int(os.environ.get("WARM_EXIT", "0")))
"""


def _env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRM_")}
    env["PYTHONPATH"] = f"{REPO / 'plugins'}:{REPO / 'dags'}"
    return env | extra


def _lines(proc) -> dict:
    return dict(line.split(" ", 1) for line in proc.stdout.splitlines())


@pytest.fixture
def script(tmp_path):
    path = tmp_path / "script.py"
    path.write_text(SCRIPT)
    return str(path)


def test_a_warm_run_is_what_a_new_interpreter_gives(script):
    env = _env(WARM_MARKER="m1", WARM_EXIT="3", TZ="Asia/Shanghai")
    cold = subprocess.run([sys.executable, script, "a", "b"], env=env, cwd=REPO, capture_output=True, text=True)
    warm = run_python([script, "a", "b"], env)
    assert (warm.returncode, warm.stderr) == (cold.returncode, cold.stderr) == (3, "to stderr\n")
    w, c = _lines(warm), _lines(cold)
    assert w.pop("parent") != str(os.getpid())  # forked by the warm interpreter, not started by this process
    assert c.pop("parent") == str(os.getpid())
    assert (
        w
        == c
        == {
            "argv": "['a', 'b']",
            "cwd": str(REPO),
            "marker": "m1 other None",
            "zone": "CST",
            "leak": "None",
        }
    )


def test_no_run_sees_what_an_earlier_run_left(script):
    first = run_python([script], _env(WARM_MARKER="first"))
    second = run_python([script], _env())
    assert (first.returncode, second.returncode) == (0, 0)
    assert _lines(second)["marker"] == "None other None"  # neither the earlier environment nor its change
    assert _lines(second)["leak"] == "None"  # nor a module attribute it set


def test_a_killed_run_says_so_as_subprocess_does(script):
    proc = run_python([script], _env(WARM_KILL="1"))
    assert proc.returncode == -9
    assert "argv []" in proc.stdout


def test_a_module_runs_as_python_dash_m(tmp_path):
    proc = run_python(["-m", "crm_pipeline.run", "--from", "2026-11-22"], _env())
    assert proc.returncode == 2  # argparse's usage error, from the module's own main
    assert "a backfill needs both --from and --to" in proc.stderr


def test_other_airflow_settings_get_a_new_interpreter(script, tmp_path):
    proc = run_python([script], _env(AIRFLOW_HOME=str(tmp_path / "elsewhere")))
    assert proc.returncode == 0
    assert _lines(proc)["parent"] == str(os.getpid())


def test_a_connection_in_the_environment_is_the_runs_own_in_a_warm_run(tmp_path):
    """Airflow reads AIRFLOW_CONN_* when a connection is looked up: a run that brings one is forked warm, and
    finds it (tests/dags/test_forum_dag.py's runs bring the forum API's)."""
    path = tmp_path / "connection.py"
    path.write_text(
        "import os\n"
        "from airflow.models.connection import Connection\n"
        "print('host', Connection.get_connection_from_secrets('crm_test_api').host)\n"
        "print('parent', os.getppid())\n"
    )
    proc = run_python([str(path)], _env(AIRFLOW_CONN_CRM_TEST_API='{"conn_type": "http", "host": "api.example"}'))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert _lines(proc)["host"] == "api.example"
    assert _lines(proc)["parent"] != str(os.getpid())  # forked by the warm interpreter


def test_a_run_past_its_timeout_is_killed(tmp_path):
    path = tmp_path / "sleep.py"
    path.write_text("import time\nprint('started', flush=True)\ntime.sleep(60)\n")
    with pytest.raises(subprocess.TimeoutExpired) as caught:
        run_python([str(path)], _env(), timeout=2)
    assert caught.value.output == "started\n"


def test_the_warm_interpreter_is_not_in_this_process_tree(script):
    """The bench's tests sum the memory of their process tree: a warm server under it would count."""
    from crm_pipeline.bench import Peak, _tree
    from e2e.helpers import _Warm

    assert run_python([script], _env()).returncode == 0
    warm = _Warm.get()
    assert warm.alive()
    assert warm.pid not in _tree(os.getpid())
    # This process's children only: the warm server's memory is not among them. (A child this process
    # does have, e.g. multiprocessing's resource tracker once dbt ran in it, counts as it should.)
    from crm_pipeline.bench import _status_kb

    others = _tree(os.getpid())[1:]
    with Peak(every=0.05, own=False) as children:
        pass
    assert children.mb <= sum(_status_kb(pid, "VmRSS") for pid in others) / 1024 + 1
    assert children.mb < _status_kb(warm.pid, "VmRSS") / 1024


def test_runs_started_at_once_each_with_its_own_airflow_metadata(tmp_path):
    """start_python: runs that go on at the same time (each waits for the others here, so none can end
    before all have started), each forked from the warm interpreter with Airflow's ORM pointed at its own
    metadata DB; a run with other Airflow settings besides those gets a new interpreter."""
    from e2e.helpers import start_python

    path = tmp_path / "meet.py"
    path.write_text(
        "import os, sys, time\n"
        "from pathlib import Path\n"
        "from airflow import settings\n"
        "me = Path(sys.argv[1]); me.touch()\n"
        "deadline = time.monotonic() + 60\n"
        "while len(list(me.parent.glob('*.here'))) < 3 and time.monotonic() < deadline:\n"
        "    time.sleep(0.05)\n"
        "print('met', len(list(me.parent.glob('*.here'))), 'parent', os.getppid())\n"
        "print('db', settings.engine.url.database)\n"
    )
    meet = tmp_path / "meet"
    meet.mkdir()
    started = []
    for name in ("a", "b", "c"):
        home = tmp_path / f"airflow-{name}"
        env = _env(AIRFLOW_HOME=str(home), AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{home}/airflow.db")
        started.append(start_python([str(path), str(meet / f"{name}.here")], env, timeout=120))
    results = [s.result() for s in started]
    assert [r.returncode for r in results] == [0, 0, 0], [r.stdout[-2000:] for r in results]
    lines = [_lines(r) for r in results]
    assert {line["met"].split()[0] for line in lines} == {"3"}  # all three were running at once
    assert all(line["met"].split()[2] != str(os.getpid()) for line in lines)  # forked, not started here
    assert [line["db"] for line in lines] == [str(tmp_path / f"airflow-{n}" / "airflow.db") for n in "abc"]
    cold = start_python([str(path), str(meet / "d.here")], _env(AIRFLOW__CORE__PARALLELISM="7")).result()
    assert cold.returncode == 0 and _lines(cold)["met"].split()[2] == str(os.getpid())
