"""The project's own generic dbt tests, `in_range` and `not_null_columns` (tests/generic/), on values
worked out by hand.

A mart's ranges (scores 1-5, rates 0-1, counts >= 0) and its columns that are never null are dbt's
contract; a test that let a value through would publish it. Run through the macro dbt compiles each
data test from, in one `dbt show` each."""

from __future__ import annotations

import datetime as dt
import json

from crm_pipeline.transform.dbt import run_dbt


def _show(sql: str, monkeypatch, tmp_path) -> list[dict]:
    """The rows of `dbt show --inline SQL` on an empty DuckDB warehouse."""
    monkeypatch.setenv("CRM_DBT_ARTIFACTS_DIR", str(tmp_path / "dbt"))
    result = run_dbt(
        ["show", "--inline", sql, "--output", "json", "--limit", "100"],
        dt.date(2026, 11, 22),
        url=f"duckdb:///{tmp_path}/w.duckdb",
    )
    return json.loads(result.output[result.output.index("{") : result.output.rindex("}") + 1])["show"]


VALUES = "(select * from (values (-1.5), (0), (0.5), (1), (7), (null)) as v(x))"
# (bounds, the values outside them): nulls always pass, bounds are inclusive, an absent bound is open.
CASES = [
    ({"min_value": 0, "max_value": 1}, [-1.5, 7.0]),
    ({"min_value": -1, "max_value": 1}, [-1.5, 7.0]),
    ({"min_value": 1}, [-1.5, 0.0, 0.5]),
    ({"max_value": 0}, [0.5, 1.0, 7.0]),
    ({"min_value": -2, "max_value": 7}, []),
]


def test_in_range_fails_exactly_the_rows_outside_its_bounds(monkeypatch, tmp_path):
    parts = []
    for i, (bounds, _) in enumerate(CASES):
        args = ", ".join(f"{k}={v}" for k, v in bounds.items())
        parts.append(
            f"select {i} as i, cast(out_of_range as double) as x from "
            f"({{{{ test_in_range(model=\"{VALUES}\", column_name='x', {args}) }}}}) as t{i}"
        )
    sql = f"select * from ({' union all '.join(parts)}) as cases order by i, x"
    rows = _show(sql, monkeypatch, tmp_path)
    got = {i: [r["x"] for r in rows if r["i"] == i] for i in range(len(CASES))}
    assert got == {i: outside for i, (_, outside) in enumerate(CASES)}


# Three columns: a has no null, b one, c two (one of them in the row where b is null too).
NULLS = "(select * from (values (1, 'x', 1.0), (2, null, null), (3, 'z', null)) as v(a, b, c))"


def test_not_null_columns_fails_once_per_column_that_has_a_null_with_its_count(monkeypatch, tmp_path):
    cases = {0: ["a"], 1: ["a", "b"], 2: ["c", "a", "b"]}
    parts = [
        f"select {i} as i, column_name, null_rows from "
        f'({{{{ test_not_null_columns(model="{NULLS}", columns={columns}) }}}}) as t{i}'
        for i, columns in cases.items()
    ]
    sql = f"select * from ({' union all '.join(parts)}) as cases order by i, column_name"
    rows = _show(sql, monkeypatch, tmp_path)
    assert [(r["i"], r["column_name"], r["null_rows"]) for r in rows] == [(1, "b", 1), (2, "b", 1), (2, "c", 2)]
