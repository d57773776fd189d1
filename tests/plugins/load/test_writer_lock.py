"""Drill 9: two processes writing one DuckDB file at once are serialised by the writer lock."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from conftest import REPO

WRITER = textwrap.dedent(
    """
    import sys, time
    from crm_pipeline.load.warehouse import Warehouse, parse_url, writer_lock
    target = parse_url(sys.argv[1])
    use_lock = sys.argv[2] == "lock"
    tag = sys.argv[3]
    def work():
        with Warehouse(target) as wh:
            wh.execute("create table if not exists t (tag varchar, n int)")
            with wh.transaction():
                for i in range(200):
                    wh.execute("insert into t values (%s, %s)", (tag, i))
                time.sleep(3)  # hold the file while the other process starts
    if use_lock:
        with writer_lock(target):
            work()
    else:
        work()
    """
)


def _race(url: str, mode: str) -> list[subprocess.CompletedProcess]:
    env = {"PYTHONPATH": str(REPO / "plugins"), "PATH": "/usr/bin:/bin"}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, url, mode, tag],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for tag in ("a", "b")
    ]
    return [subprocess.CompletedProcess(p.args, p.wait(timeout=120), *p.communicate()) for p in procs]


def test_concurrent_writers_are_serialised(tmp_path):
    url = f"duckdb:///{tmp_path}/w.duckdb"
    results = _race(url, "lock")
    assert [r.returncode for r in results] == [0, 0], [r.stderr[-500:] for r in results]
    import duckdb

    con = duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True)
    assert con.execute("select tag, count(*) from t group by tag order by tag").fetchall() == [("a", 200), ("b", 200)]
    con.close()


def test_without_the_lock_duckdb_refuses_the_second_writer(tmp_path):
    # The control: the protection is what makes the test above pass.
    results = _race(f"duckdb:///{tmp_path}/w.duckdb", "nolock")
    failed = [r for r in results if r.returncode != 0]
    assert failed and "lock" in failed[0].stderr.lower()
