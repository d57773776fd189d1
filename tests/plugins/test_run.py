"""`make run` / `make backfill` decisions that need no DAG run: the days of a range, dates that cannot run,
a DAG run that ran nothing (issue 21, items 2 and 3). The runs themselves: tests/e2e."""

from __future__ import annotations

import datetime as dt

import pytest

from crm_pipeline import run

D = dt.date


@pytest.mark.parametrize(
    ("start", "end", "every", "expected"),
    [
        (D(2024, 1, 1), D(2024, 1, 3), "day", [D(2024, 1, 1), D(2024, 1, 2), D(2024, 1, 3)]),
        (D(2024, 1, 1), D(2024, 1, 1), "day", [D(2024, 1, 1)]),
        # Every 7th day from FROM, then TO itself.
        (D(1997, 1, 1), D(1997, 1, 20), "week", [D(1997, 1, 1), D(1997, 1, 8), D(1997, 1, 15), D(1997, 1, 20)]),
        # The same day of each month, clamped to the month's end (2024 is a leap year), then TO.
        (D(2024, 1, 31), D(2024, 5, 1), "month",
         [D(2024, 1, 31), D(2024, 2, 29), D(2024, 3, 31), D(2024, 4, 30), D(2024, 5, 1)]),
        (D(1997, 11, 15), D(1998, 2, 15), "month", [D(1997, 11, 15), D(1997, 12, 15), D(1998, 1, 15), D(1998, 2, 15)]),
    ],
)  # fmt: skip
def test_backfill_days(start, end, every, expected):
    assert run.backfill_days(start, end, every) == expected


def test_an_empty_range_and_a_day_before_the_earliest_are_clear_failures(monkeypatch, capsys):
    with pytest.raises(SystemExit) as exc:
        run.backfill_days(D(2024, 2, 1), D(2024, 1, 1))
    assert exc.value.code == 2 and "TO (2024-01-01) is before FROM (2024-02-01)" in capsys.readouterr().err
    monkeypatch.setenv("CRM_EARLIEST_DATE", "1997-01-01")
    run.check_runnable(D(1997, 1, 1))
    with pytest.raises(SystemExit) as exc:
        run.check_runnable(D(1996, 12, 31))
    assert exc.value.code == 2
    assert "before CRM_EARLIEST_DATE (1997-01-01)" in capsys.readouterr().err
    # The default reaches back to 1970: the DAGs' start_date no longer refuses years of history.
    monkeypatch.delenv("CRM_EARLIEST_DATE")
    run.check_runnable(D(1970, 1, 1))


class _Run:
    def __init__(self, state, tis):
        self.state, self._tis = state, tis

    def get_task_instances(self):
        return self._tis


class _Ti:
    def __init__(self, task_id, state):
        self.task_id, self.state = task_id, state


class _Bag:
    def __init__(self, runs):
        self.runs = runs

    def get_dag(self, dag_id):
        bag = self

        class Dag:
            def test(self, **kwargs):
                return bag.runs[dag_id]

        return Dag()


@pytest.mark.parametrize("warehouse_url", ["duckdb"], indirect=True)
def test_every_dag_runs_and_a_run_of_no_task_is_a_failure(crm_env, capsys):
    """The old run stopped at the first failed DAG, and called a run with zero task instances a success."""
    runs = {
        "crm_extract_shop": _Run("failed", [_Ti("load_files", "success"), _Ti("check_raw", "failed")]),
        "crm_extract_forum": _Run("success", []),  # what Airflow does for a day before start_date
        "crm_extract_chat": _Run("success", [_Ti("load_files", "success")]),
        "crm_extract_events": _Run("success", [_Ti("load_files", "success")]),
        "crm_transform": _Run("failed", [_Ti("dbt_build", "failed")]),
    }
    outcomes = run.run_dags(D(1998, 6, 30), bag=_Bag(runs))
    assert outcomes == [
        ("crm_extract_shop", "failed", ["check_raw"]),
        ("crm_extract_forum", "ran no task", []),
        ("crm_extract_chat", "success", []),
        ("crm_extract_events", "success", []),
        ("crm_transform", "failed", ["dbt_build"]),
    ]
    assert not run.report(D(1998, 6, 30), outcomes, run.DAG_ORDER)
    out = capsys.readouterr()
    assert "DAG crm_extract_forum: ran no task" in out.out
    assert "DAG crm_extract_shop: failed (failed tasks: check_raw)" in out.out
    assert "run FAILED for 1998-06-30: marts were not rebuilt" in out.err


def test_the_summary_states_the_community_lift_with_its_interval_or_why_there_is_none():
    from decimal import Decimal

    from crm_pipeline.summary import _lift_line

    assert "no cohort yet" in _lift_line(None)
    assert _lift_line((1, 0, 180, None, None, None, None, None, None, None, "too few to tell", 1)).endswith(
        "too few to tell (1 joiners compared over 1 joining months)"
    )
    line = _lift_line(
        (197, Decimal(6090), 180, 0.0331, 0.0121, 0.0544, Decimal("0.4612"), 48.333, -28.981, 125.649, "buy more", 11)
    )
    assert "buy more: +0.033 orders per person per 30 days (+46% on what they would have bought; " in line
    assert "95% CI +0.012 to +0.054), net spend +48.33 (CI -28.98 to +125.65)" in line
    assert "6,090 non-joiner comparisons" in line
