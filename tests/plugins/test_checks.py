"""The check runner's report: one Data Docs page per target validated, all reachable from the index."""

import datetime as dt
import gc
import html
import json
import re
import weakref

import pandas as pd
import pytest

from crm_pipeline.quality import checks
from crm_pipeline.quality.checks import Target, validate

RUN = dt.date(2026, 11, 22)


def _suite(directory, relation: str, severity: str, expectation: dict) -> None:
    spec = {"name": f"{relation}.{severity}", "expectations": [expectation]}
    (directory / f"{relation}.{severity}.json").write_text(json.dumps(spec), encoding="utf-8")


def test_every_target_gets_its_page_in_one_report(tmp_path, monkeypatch):
    suites = tmp_path / "expectations"
    suites.mkdir()
    not_null = {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "a"}}
    rows = {"type": "expect_table_row_count_to_be_between", "kwargs": {"min_value": 1, "max_value": 2}}
    for relation in ("marts.alpha", "marts.beta"):
        _suite(suites, relation, "critical", not_null)
        _suite(suites, relation, "warning", rows)
    monkeypatch.setattr(checks, "EXPECTATIONS_DIR", suites)
    monkeypatch.setenv("CRM_REPORTS_DIR", str(tmp_path / "reports"))

    validation = validate(
        [
            Target("marts.alpha", dataframe=pd.DataFrame({"a": [1, 2]})),
            Target("marts.beta", dataframe=pd.DataFrame({"a": [1, None, 3]})),
        ],
        RUN,
    )

    outcome = {(r.relation, r.severity): r.success for r in validation.results}
    assert outcome == {
        ("marts.alpha", "critical"): True,
        ("marts.alpha", "warning"): True,
        ("marts.beta", "critical"): False,  # one null
        ("marts.beta", "warning"): False,  # three rows
    }
    site = tmp_path / "reports" / RUN.isoformat()
    assert validation.report == str(site / "index.html")
    pages = sorted(site.glob("validations/**/*.html"))
    assert len(pages) == 2
    # validations/<relation, dots as folders>/<relation>-<target>/...: each target once, every severity on it
    named = {"/".join(p.relative_to(site / "validations").parts[:3]): p for p in pages}
    assert sorted(named) == ["marts/alpha/marts.alpha-0", "marts/beta/marts.beta-1"]
    beta = re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", named["marts/beta/marts.beta-1"].read_text())))
    assert "values must never be null" in beta and "less than or equal to 2 rows" in beta
    index = (site / "index.html").read_text(encoding="utf-8")
    for page in pages:
        assert str(page.relative_to(site)) in index
    # The suite each result came from, as the audit table and alerts name it.
    assert {(r.relation, r.suite) for r in validation.results} == {
        (m, f"{m}.{s}") for m in ("marts.alpha", "marts.beta") for s in ("critical", "warning")
    }


def test_targets_of_one_relation_each_get_their_own_results(tmp_path, monkeypatch):
    """Batches of one relation share its suite and validation definition (a DataFrame is a run's batch
    parameter): each batch's results are its own, whichever came before it."""
    monkeypatch.setenv("CRM_REPORTS_DIR", str(tmp_path / "reports"))
    columns = ("batch_id", "extracted_rows", "accounted_rows", "quarantined_share")
    rows = [("b1", 10, 10, 0.0), ("b2", 10, 9, 0.5), ("b3", 4, 4, 0.25)]
    frames = {row[0]: pd.DataFrame([row], columns=columns) for row in rows}
    validation = validate([Target("audit.load_batches", dataframe=f, batch_id=b) for b, f in frames.items()], RUN)
    failed = {(r.batch_id, r.expectation) for r in validation.results if not r.success}
    # By hand: b2 loses a row and quarantines half, b3 quarantines a quarter (the bound is 0.2).
    assert failed == {
        ("b2", "expect_column_pair_values_to_be_equal"),
        ("b2", "expect_column_values_to_be_between"),
        ("b3", "expect_column_values_to_be_between"),
    }
    assert len(validation.results) == 6 and {r.severity for r in validation.results} == {"critical"}


def test_one_validation_of_every_batchs_audit_gives_each_the_result_its_own_gives(tmp_path, monkeypatch):
    """The load audit of a gate's batches is one frame, a row per batch, validated once: each batch's results
    are held to those of validating its row alone (GX's own, as before), field by field."""
    monkeypatch.setenv("CRM_REPORTS_DIR", str(tmp_path / "reports"))
    columns = ("batch_id", "extracted_rows", "accounted_rows", "quarantined_share")
    rows = [
        ("a1", 10, 10, 0.1),
        ("b2", 0, 0, None),  # an empty file: no share to judge
        ("c3", 5, 4, 0.0),  # a row lost
        ("d4", 4, 4, 0.5),  # half quarantined
        ("e5", 100, 90, 0.3),  # both
        ("f6", 20, 20, 0.2),  # at the bound
    ]
    frame = pd.DataFrame(rows, columns=columns).astype({"quarantined_share": "float64"})
    labels = {row[0]: f"audit.load_batches[{entity}]" for row, entity in zip(rows, "ooiicr", strict=True)}
    combined = validate([Target("audit.load_batches", dataframe=frame, per_batch="batch_id", batches=labels)], RUN)
    pages = list((tmp_path / "reports" / RUN.isoformat()).glob("validations/**/*.html"))
    assert len(pages) == 1  # one page for the six batches' audit
    monkeypatch.setenv("CRM_REPORTS_DIR", str(tmp_path / "alone"))
    alone = validate(
        [
            Target("audit.load_batches", dataframe=frame.iloc[[i]].reset_index(drop=True), batch_id=b, label=labels[b])
            for i, b in enumerate(labels)
        ],
        RUN,
    )

    def key(r):
        return (r.batch_id, r.expectation)

    assert len(combined.results) == 12
    assert sorted(map(vars, combined.results), key=lambda v: (v["batch_id"], v["expectation"])) == sorted(
        map(vars, alone.results), key=lambda v: (v["batch_id"], v["expectation"])
    )
    # By hand: c3 and e5 lose rows; d4 and e5 quarantine more than 0.2; b2's share is missing, not failing.
    pair, share = "expect_column_pair_values_to_be_equal", "expect_column_values_to_be_between"
    assert {key(r) for r in combined.results if not r.success} == {
        ("c3", pair),
        ("d4", share),
        ("e5", pair),
        ("e5", share),
    }
    assert {r.relation for r in combined.results if r.batch_id == "c3"} == {"audit.load_batches[i]"}


def test_per_batch_results_need_row_level_expectations(tmp_path, monkeypatch):
    suites = tmp_path / "expectations"
    suites.mkdir()
    _suite(
        suites, "marts.alpha", "warning", {"type": "expect_table_row_count_to_be_between", "kwargs": {"min_value": 1}}
    )
    monkeypatch.setattr(checks, "EXPECTATIONS_DIR", suites)
    monkeypatch.setenv("CRM_REPORTS_DIR", str(tmp_path / "reports"))
    frame = pd.DataFrame({"batch_id": ["a1", "b2"]})
    target = Target("marts.alpha", dataframe=frame, per_batch="batch_id", batches={"a1": "x", "b2": "y"})
    with pytest.raises(ValueError, match="row-level expectations"):  # a row count of two batches is neither's
        validate([target], RUN)


def test_a_validation_counts_failing_rows_without_finding_them(tmp_path, monkeypatch):
    """Counts and percentages as worked out by hand; which rows failed is never computed (nothing keeps it)."""
    from great_expectations.execution_engine.execution_engine import ExecutionEngine

    computed: list[str] = []
    resolve = ExecutionEngine.resolve_metrics

    def resolve_metrics(self, metrics_to_resolve, *args, **kwargs):
        metrics_to_resolve = list(metrics_to_resolve)
        computed.extend(m.metric_name for m in metrics_to_resolve)
        return resolve(self, metrics_to_resolve, *args, **kwargs)

    monkeypatch.setattr(ExecutionEngine, "resolve_metrics", resolve_metrics)
    monkeypatch.setenv("CRM_REPORTS_DIR", str(tmp_path / "reports"))
    frame = pd.DataFrame({"order_id": ["o1", None, "o3", "o4", None], "status": ["paid", "paid", "lost", None, "x"]})
    validation = validate([Target("raw.orders", dataframe=frame, batch_id="b1", parameters={})], RUN)
    got = {
        (r.expectation, json.loads(r.expected).get("column")): (r.success, r.element_count, r.unexpected_count)
        for r in validation.results
        if r.expectation in ("expect_column_values_to_not_be_null", "expect_column_values_to_be_in_set")
    }
    # By hand: two order ids missing of five; status: "lost" and "x" not in the set, the null not counted.
    assert got[("expect_column_values_to_not_be_null", "order_id")] == (False, 5, 2)
    assert got[("expect_column_values_to_be_in_set", "status")] == (False, 5, 2)
    observed = {
        json.loads(r.expected).get("column"): json.loads(r.observed)
        for r in validation.results
        if r.expectation == "expect_column_values_to_be_in_set"
    }
    assert observed["status"] == {"unexpected_percent": 50.0, "missing_count": 1}
    assert "column_values.nonnull.unexpected_count" in computed
    assert [m for m in computed if m.endswith(("unexpected_index_list", "unexpected_index_query"))] == []


def _specs(prefix: str) -> dict[str, dict]:
    return {p.name: json.loads(p.read_text(encoding="utf-8")) for p in checks.EXPECTATIONS_DIR.glob(f"{prefix}*.json")}


def test_mart_suites_check_only_what_dbt_does_not():
    """One job per layer: dbt's data tests hold the marts' contracts (keys, values, ranges); GX looks for
    PII-looking values (critical) and row-count drift (warning), and every mart has its count watched."""
    specs = _specs("marts.")
    kinds = {name: {e["type"] for e in spec["expectations"]} for name, spec in specs.items()}
    assert {n: k for n, k in kinds.items() if n.endswith(".critical.json")} == {
        n: {"expect_column_values_to_not_match_regex_list"} for n in kinds if n.endswith(".critical.json")
    }
    assert {n: k for n, k in kinds.items() if n.endswith(".warning.json")} == {
        n: {"expect_table_row_count_to_be_between"} for n in kinds if n.endswith(".warning.json")
    }
    from crm_pipeline.config import mart_names

    assert sorted(n.removesuffix(".warning.json").removeprefix("marts.") for n in kinds if "warning" in n) == sorted(
        mart_names()
    )
    assert len([n for n in kinds if n.endswith(".critical.json")]) >= 5


def test_each_frame_is_read_when_its_validation_runs_and_released_after_it(tmp_path, monkeypatch):
    """A gate of many batches holds one batch's rows at a time (L's raw gate held all 54 million rows'
    frames before validating the first, 8.5 GB whatever DuckDB's memory cap)."""
    monkeypatch.setenv("CRM_REPORTS_DIR", str(tmp_path / "reports"))
    columns = ("batch_id", "extracted_rows", "accounted_rows", "quarantined_share")
    rows = [("b1", 10, 10, 0.0), ("b2", 10, 9, 0.5), ("b3", 4, 4, 0.25)]
    read, alive_at_read = [], []

    def reader(row):
        def read_frame():
            gc.collect()
            alive_at_read.append(sum(ref() is not None for ref in read))
            frame = pd.DataFrame([row], columns=columns)
            read.append(weakref.ref(frame))
            return frame

        return read_frame

    validation = validate([Target("audit.load_batches", dataframe=reader(r), batch_id=r[0]) for r in rows], RUN)
    gc.collect()
    # Each frame read only when its turn came, none of the earlier ones still held, none kept after.
    assert alive_at_read == [0, 0, 0] and len(read) == 3
    assert [ref() for ref in read] == [None, None, None]
    # The same verdicts as frames given whole (the test above, by hand).
    assert {(r.batch_id, r.expectation) for r in validation.results if not r.success} == {
        ("b2", "expect_column_pair_values_to_be_equal"),
        ("b2", "expect_column_values_to_be_between"),
        ("b3", "expect_column_values_to_be_between"),
    }


def test_a_validation_reads_only_the_columns_its_suites_name():
    # By hand from expectations/marts.fct_negative_feedback.*: PII patterns on three text columns, a row count.
    assert checks.suite_columns("marts.fct_negative_feedback") == ["cues", "severity_rules", "product_id"]
    assert checks.suite_columns("marts.fct_activity_rhythm") == []  # a row count reads no column


def test_a_raw_batch_is_read_with_only_the_columns_its_suites_name(crm_env):
    import datetime as dt
    from zoneinfo import ZoneInfo

    from crm_pipeline.load.loader import load_landing
    from crm_pipeline.load.warehouse import Warehouse
    from crm_pipeline.quality.gate import raw_targets

    (crm_env["landing"] / "chat_messages").mkdir()
    (crm_env["landing"] / "chat_messages" / "chat.csv").write_text(
        "msg_id,group_id,sender_id,sent_at,msg_type,content\n"
        f"M1,G1,S1,2026-11-22 10:00:00,text,{'很长的一段话' * 500}\n"
        "M2,G1,S2,2026-11-22 10:01:00,text,好的\n",
        encoding="utf-8",
    )
    day = dt.date(2026, 11, 22)
    with Warehouse.from_url(crm_env["url"]) as wh:
        batches = [r.as_dict() for r in load_landing(wh, "chat_messages", crm_env["landing"], day, ZoneInfo("UTC"))]
        raw, audit = raw_targets(wh, batches, day)
        # DuckDB: the frame GX validates, read when its validation runs (the warehouse still open).
        frame = raw.dataframe() if raw.dataframe is not None else None
    # By hand from the chat_messages spec and raw_suites' rules: the required ids, the key (unique), the
    # event time (latest, freshness), the two enums. Not content, names, unionid or the reply's id.
    expected = ["msg_id", "group_id", "sender_id", "sent_at", "msg_type", "action"]
    assert (raw.relation, audit.relation) == ("raw.chat_messages", "audit.load_batches")
    if frame is not None:
        assert list(frame.columns) == expected and list(frame["msg_id"]) == ["M1", "M2"]
    else:  # PostgreSQL: the query GX validates in the database
        assert raw.query.startswith('select "msg_id", "group_id", "sender_id", "sent_at", "msg_type", "action" from')


def test_raw_suites_are_generated_from_the_load_specs():
    from crm_pipeline.load.specs import SPECS
    from crm_pipeline.quality.raw_suites import GATED

    latest, fresh = {"$PARAMETER": "latest_allowed"}, {"$PARAMETER": "fresh_after"}
    low, high = {"$PARAMETER": "min_rows"}, {"$PARAMETER": "max_rows"}
    # Written out by hand from the orders spec and the rules in raw_suites' docstring.
    assert checks.suites_for("raw.orders") == {
        "critical": {
            "name": "raw.orders.critical",
            "expectations": [
                {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "order_id"}},
                {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "customer_id"}},
                {
                    "type": "expect_compound_columns_to_be_unique",
                    "kwargs": {"column_list": ["order_id", "status", "updated_at"]},
                },
                {"type": "expect_column_max_to_be_between", "kwargs": {"column": "ordered_at", "max_value": latest}},
                {
                    "type": "expect_column_values_to_be_in_set",
                    "kwargs": {
                        "column": "status",
                        "value_set": ["created", "paid", "shipped", "completed", "cancelled", "refunded"],
                    },
                },
                {
                    "type": "expect_column_values_to_be_between",
                    "kwargs": {"column": "total_amount", "min_value": 0, "max_value": None},
                },
            ],
        },
        "warning": {
            "name": "raw.orders.warning",
            "expectations": [
                {"type": "expect_table_row_count_to_be_between", "kwargs": {"min_value": low, "max_value": high}},
                {"type": "expect_column_max_to_be_between", "kwargs": {"column": "ordered_at", "min_value": fresh}},
            ],
        },
    }
    # Events: duplicate registrations only warn, and an event's date is no timestamp to bound.
    events = checks.suites_for("raw.events")
    assert [e["type"] for e in events["critical"]["expectations"]] == [
        "expect_column_values_to_not_be_null",
        "expect_column_values_to_not_be_null",
        "expect_column_values_to_be_in_set",
    ]
    assert events["warning"]["expectations"][1]["kwargs"] == {"column_list": ["event_id", "attendee_ref", "status"]}
    # Every gated entity gets a critical suite; every enum of every spec is checked; no raw suite file is left.
    assert sorted(GATED) == sorted(set(SPECS) - {"deletion_requests"})
    assert all("critical" in checks.suites_for(f"raw.{e}") for e in GATED)
    enums = {(e, f.name) for e, spec in SPECS.items() if e in GATED for f in spec.fields if f.enum}
    checked = {
        (e, x["kwargs"]["column"])
        for e in GATED
        for x in checks.suites_for(f"raw.{e}")["critical"]["expectations"]
        if x["type"] == "expect_column_values_to_be_in_set"
    }
    assert enums == checked and len(enums) >= 4
    assert not list(checks.EXPECTATIONS_DIR.glob("raw.*.json"))


def test_data_docs_templates_are_compiled_once_not_per_build(tmp_path, monkeypatch):
    """GX makes a new jinja Environment per view: without the bytecode cache every build compiled ~50 templates."""
    import jinja2

    monkeypatch.setenv("CRM_REPORTS_DIR", str(tmp_path / "reports"))
    frame = pd.DataFrame({"customer_key": ["a" * 32], "rfm_segment": ["champions"]})
    target = Target("marts.fct_customer_rfm", dataframe=frame, parameters={"min_rows": 0})
    validate([target], dt.date(2026, 11, 22))  # compiles what the cache lacks
    compiled = []
    original = jinja2.Environment.compile
    monkeypatch.setattr(jinja2.Environment, "compile", lambda *a, **k: compiled.append(1) or original(*a, **k))
    validation = validate([target], dt.date(2026, 11, 23))
    assert validation.results and list((tmp_path / "reports" / "2026-11-23").rglob("*.html"))
    assert compiled == []


def test_without_a_private_temp_directory_validation_still_builds_its_report(tmp_path, monkeypatch):
    import jinja2
    from great_expectations.render.view import view

    def refuse(*args, **kwargs):
        raise RuntimeError("Cannot determine safe temp directory.")

    monkeypatch.setattr(jinja2, "FileSystemBytecodeCache", refuse)
    monkeypatch.delattr(view.DefaultJinjaView, "_crm_bytecode_cache", raising=False)
    monkeypatch.setenv("CRM_REPORTS_DIR", str(tmp_path / "reports"))
    frame = pd.DataFrame({"customer_key": ["a" * 32], "rfm_segment": ["champions"]})
    validation = validate(
        [Target("marts.fct_customer_rfm", dataframe=frame, parameters={"min_rows": 0})], dt.date(2026, 11, 22)
    )
    assert validation.results and list((tmp_path / "reports" / "2026-11-22").rglob("*.html"))
