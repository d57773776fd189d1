"""`make test`'s work units: one file's tests for one engine go to one process."""

from __future__ import annotations

from conftest import work_unit


def test_a_files_tests_split_by_engine_and_nothing_else():
    drills = "tests/e2e/test_fault_drills.py"
    assert work_unit(f"{drills}::test_drill_1[duckdb]") == work_unit(f"{drills}::test_drill_4[duckdb]")
    assert work_unit(f"{drills}::test_drill_1[duckdb]") != work_unit(f"{drills}::test_drill_1[postgres]")
    assert work_unit("tests/e2e/test_quiet_extracts.py::test_q[sqlite-postgres]") == (
        "tests/e2e/test_quiet_extracts.py:sqlite-postgres"
    )
    # Parameters that are not engines do not split a file (its module fixtures stay shared).
    assert work_unit("tests/plugins/test_x.py::test_a[utf-8]") == work_unit("tests/plugins/test_x.py::test_b")
