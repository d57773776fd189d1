"""The project's own generic dbt test, `column_rules` (tests/generic/), on values worked out by hand.

A model's keys, its columns that are never null, its categories and its ranges (scores 1-5, rates 0-1,
counts >= 0) are dbt's contract, checked in one scan per model; a rule that let a value through would
publish it. Run through the macro dbt compiles the data test from, in one `dbt show`."""

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


# For column_rules: a repeats 1, b has two nulls and no repeat, c has an apostrophe, a null and one value
# outside ["Can't", "ok"], x is -1.5, 0, 0.5 and 7.
RULES = (
    "(select * from (values (1, 'x', 'Can''t', -1.5), (1, 'y', 'ok', 0), (2, null, null, 0.5), "
    "(3, null, 'bad', 7)) as v(a, b, c, x))"
)
# (the rules, the (rule, column, failing rows) worked out by hand from the rows above)
RULE_CASES = [
    ({"not_null": ["a", "b", "c"]}, [("not_null", "b", 2), ("not_null", "c", 1)]),
    ({"unique": ["a", "b", "cast(a as varchar) || b"]}, [("unique", "a", 1)]),
    ({"accepted_values": {"c": ["Can't", "ok"]}}, [("accepted_values", "c", 1)]),
    ({"accepted_values": {"a": {"values": [1, 3], "quote": False}}}, [("accepted_values", "a", 1)]),
    ({"in_range": {"x": {"min_value": 0, "max_value": 1}}}, [("in_range", "x", 2)]),
    ({"in_range": {"x": {"min_value": 0.5}, "a": {"max_value": 3}}}, [("in_range", "x", 2)]),
    ({"not_null": ["a"], "unique": ["a"], "in_range": {"x": {"max_value": 7}}}, [("unique", "a", 1)]),
    ({"not_null": ["a"], "accepted_values": {"b": ["x", "y"]}, "in_range": {"a": {"min_value": 1}}}, []),
]


def test_column_rules_counts_the_rows_that_break_each_rule(monkeypatch, tmp_path):
    parts = []
    for i, (rules, _) in enumerate(RULE_CASES):
        args = ", ".join(f"{k}={v!r}" for k, v in rules.items()).replace("False", "false")
        parts.append(
            f"select {i} as i, rule, column_name, failing_rows from "
            f'({{{{ test_column_rules(model="{RULES}", {args}) }}}}) as t{i}'
        )
    sql = f"select * from ({' union all '.join(parts)}) as cases order by i, rule, column_name"
    rows = _show(sql, monkeypatch, tmp_path)
    got = {
        i: [(r["rule"], r["column_name"], r["failing_rows"]) for r in rows if r["i"] == i]
        for i in range(len(RULE_CASES))
    }
    assert got == {i: broken for i, (_, broken) in enumerate(RULE_CASES)}
