"""Great Expectations suites run on the warehouse, results in `audit.check_results`.

A suite is named `<relation>.<severity>` (`raw.orders.critical`,
`marts.fct_customer_rfm.warning`). The raw suites are generated from the load
specs (crm_pipeline.quality.raw_suites); the others are JSON files in
`expectations/`, named `<relation>.<severity>.json`. A critical failure blocks
(a raw batch is held out of staging; a mart is not published); a warning only
alerts.

GX runs in an ephemeral context built per validation run (no GX project on
disk). DuckDB data is validated as a pandas batch (GX's SQLAlchemy path is
broken on DuckDB); PostgreSQL data is validated in SQL, by a query asset (the
load audit's few numbers per batch are a DataFrame on both engines).
Each run writes GX Data Docs under the reports dir (`CRM_REPORTS_DIR`,
default `data/reports/<run date>/`). Results keep counts and observed
summaries only: no unexpected values are kept, so no row content reaches the
audit table, the report or an alert. (A target of one row per batch, the load
audit's, lists its failing rows' batch ids and counts in the report: that is
how each batch gets its own result from one validation.)
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from crm_pipeline.config import REPO_ROOT, settings
from crm_pipeline.load.warehouse import Warehouse
from crm_pipeline.quality.raw_suites import raw_suite

log = logging.getLogger(__name__)
EXPECTATIONS_DIR = REPO_ROOT / "expectations"
SEVERITIES = ("critical", "warning")
# BASIC: each expectation's counts and percentages, no failing value (partial_unexpected_count 0). SUMMARY
# would also work out every failing row's index and a query to find them (0.3 s of a run of the sample,
# more queries on PostgreSQL), which nothing here keeps.
RESULT_FORMAT = {"result_format": "BASIC", "partial_unexpected_count": 0, "include_unexpected_rows": False}


@dataclass
class CheckResult:
    suite: str
    relation: str
    expectation: str
    severity: str
    success: bool
    observed: str
    expected: str
    element_count: int | None
    unexpected_count: int | None
    batch_id: str | None = None

    def row(self) -> dict:
        return dict(vars(self))


@dataclass
class Validation:
    """What one call validated: results per expectation and where the report is."""

    results: list[CheckResult] = field(default_factory=list)
    report: str | None = None

    @property
    def critical_failures(self) -> list[CheckResult]:
        return [r for r in self.results if r.severity == "critical" and not r.success]

    @property
    def warnings(self) -> list[CheckResult]:
        return [r for r in self.results if r.severity == "warning" and not r.success]


def suites_for(relation: str) -> dict[str, dict]:
    """severity -> suite (its name and expectations) for a relation: generated for raw entities, else its files."""
    generated = raw_suite(relation)
    if generated is not None:
        return generated
    return {
        s: json.loads(p.read_text(encoding="utf-8"))
        for s in SEVERITIES
        if (p := EXPECTATIONS_DIR / f"{relation}.{s}.json").exists()
    }


def suite_columns(relation: str) -> list[str]:
    """The columns a relation's suites name, in order: all a validation of it needs to read."""
    names: list[str] = []
    for spec in suites_for(relation).values():
        for e in spec["expectations"]:
            kwargs = e.get("kwargs", {})
            for name in [kwargs.get("column"), *kwargs.get("column_list", [])]:
                if name and name not in names:
                    names.append(name)
    return names


def reports_dir(run_date: dt.date) -> Path:
    return settings().reports_dir / run_date.isoformat()


def _keep_data_docs_templates_compiled() -> None:
    """Give GX's Data Docs views jinja's bytecode cache (once per process).

    GX builds a new jinja Environment for every view it renders, so each
    Data Docs build compiled its ~50 templates again: 1.1 s of a 1.8 s
    validation of a small batch, five times a run. jinja's file cache keys
    each compiled template by its name and the checksum of its source (a
    changed template is compiled again) and writes it atomically, in a
    directory of this user's under the temp dir, so every process after the
    first loads them compiled. Without a private temp directory (a read-only
    /tmp, or one whose cache folder another user owns) GX compiles them as before.
    """
    from great_expectations.render.view import view
    from jinja2 import FileSystemBytecodeCache

    if getattr(view.DefaultJinjaView, "_crm_bytecode_cache", None):
        return
    try:
        cache = FileSystemBytecodeCache()
    except (OSError, RuntimeError) as exc:  # jinja refuses a directory it cannot keep private
        log.warning("Data Docs templates are compiled on every build: no bytecode cache (%s)", exc)
        return
    original_init = view.DefaultJinjaView.__init__

    def init(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        self.env.bytecode_cache = cache

    view.DefaultJinjaView.__init__ = init
    view.DefaultJinjaView._crm_bytecode_cache = cache


def _context(report_dir: Path):
    import great_expectations as gx

    from crm_pipeline.quality import gx_speedups

    _keep_data_docs_templates_compiled()
    gx_speedups.apply()
    warnings.filterwarnings("ignore", module="great_expectations")
    ctx = gx.get_context(mode="ephemeral")
    try:
        from great_expectations.data_context.types.base import ProgressBarsConfig

        ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
    except Exception:  # progress bars are cosmetic
        pass
    report_dir.mkdir(parents=True, exist_ok=True)
    ctx.add_data_docs_site(
        site_name="crm",
        site_config={
            "class_name": "SiteBuilder",
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(report_dir)},
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        },
    )
    return ctx


def _jsonable(value):
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "item"):
        return value.item()
    return value


def _observed(result: dict) -> str:
    keep = {k: result[k] for k in ("observed_value", "unexpected_percent", "missing_count") if k in result}
    return json.dumps(_jsonable(keep), ensure_ascii=False, default=str)


@dataclass
class Target:
    """One thing to validate: a relation's rows, as a DataFrame (DuckDB) or a SQL query (PostgreSQL)."""

    relation: str  # names the suites: <relation>.<severity>
    # A DataFrame, or a function returning one: read when its validation runs and released after it, so
    # a gate of many batches holds one batch's rows at a time, not all of them.
    dataframe: object | None = None
    query: str | None = None
    batch_id: str | None = None
    parameters: dict = field(default_factory=dict)
    label: str | None = None  # what results call the relation (default: relation)
    # One row per batch, the batch's id in column `per_batch`: one validation of every row, whose
    # results are given per batch, labelled batches[id] (row-level expectations only).
    per_batch: str | None = None
    batches: dict = field(default_factory=dict)


def validate(targets: list[Target], run_date: dt.date, warehouse_url: str | None = None) -> Validation:
    """Run every suite of every target in one ephemeral context; build Data Docs; return the results.

    A relation's suites run as one GX suite, each expectation carrying its severity (GX's own `severity`),
    and each target is one run of that suite's validation definition, without a Checkpoint (its only
    action, Data Docs, is built once at the end). DataFrames share one asset and batch definition (the
    frame is the run's batch parameter); a PostgreSQL query is an asset of its own. Every expectation of
    every target still gets its result and its Data Docs page; what this saves is GX's bookkeeping,
    which grows with each asset, suite and checkpoint added (it writes its project config again each time).
    """
    import great_expectations as gx
    from great_expectations.core.run_identifier import RunIdentifier

    report_dir = reports_dir(run_date)
    ctx = _context(report_dir)
    out = Validation(report=str(report_dir / "index.html"))
    frames = sql_source = None
    suites: dict[str, object] = {}  # relation -> its suite, every severity in it
    definitions: dict[tuple[str, str], object] = {}  # (relation, asset) -> its validation definition
    for i, target in enumerate(targets):
        specs = suites_for(target.relation)
        if not specs:
            continue
        name = f"{target.relation}-{i}"
        if target.relation not in suites:
            expectations = [
                {**e, "severity": severity} for severity, spec in specs.items() for e in spec["expectations"]
            ]
            suites[target.relation] = ctx.suites.add(
                gx.ExpectationSuite(name=target.relation, expectations=expectations)
            )
        frame = None
        if target.dataframe is not None:
            if frames is None:
                frames = ctx.data_sources.add_pandas("frames").add_dataframe_asset("frames")
                frames = frames.add_batch_definition_whole_dataframe("all")
            frame = target.dataframe() if callable(target.dataframe) else target.dataframe
            key, batch_def, batch_parameters = (target.relation, "frames"), frames, {"dataframe": frame}
        else:
            sql_source = sql_source or ctx.data_sources.add_postgres("warehouse", connection_string=warehouse_url)
            batch_def = sql_source.add_query_asset(name, query=target.query).add_batch_definition_whole_table("all")
            key, batch_parameters = (target.relation, name), None
        if key not in definitions:
            definitions[key] = ctx.validation_definitions.add(
                gx.ValidationDefinition(name=name, data=batch_def, suite=suites[target.relation])
            )
        # A bound nobody supplied is open (None), e.g. no history to compare row counts with.
        parameters = {p: None for spec in specs.values() for p in _parameter_names(spec)} | target.parameters
        result = definitions[key].run(
            batch_parameters=batch_parameters,
            expectation_parameters=parameters,
            result_format=_per_batch_format(target, specs) if target.per_batch else RESULT_FORMAT,
            run_id=RunIdentifier(run_name=name),  # each target its own page
        )
        if target.per_batch:
            out.results += _per_batch_results(target, frame, specs, result.results)
        else:
            out.results += [_check_result(r, target, specs) for r in result.results]
        if frame is not None:  # this target's rows go before the next one's are read (GX keeps its last batch)
            cached = definitions[key].data.data_asset.datasource.get_execution_engine().batch_manager
            cached.reset_batch_cache()
            cached.batch_data_cache.clear()
        batch_parameters = frame = result = None
    if out.results:
        # Once, from the context's stores, for every target validated above (a build per
        # target would render the whole site again each time).
        ctx.build_data_docs(site_names=["crm"])
    return out


def _check_result(r, target: Target, specs: dict, **per_batch) -> CheckResult:
    """One GX result as audit.check_results keeps it; `per_batch` gives what one batch's row of it says."""
    cfg = r.expectation_config
    severity = getattr(cfg.severity, "value", cfg.severity)
    kwargs = {k: v for k, v in cfg.kwargs.items() if k not in ("batch_id",)}
    fields = {
        "suite": specs[severity]["name"],
        "relation": target.label or target.relation,
        "expectation": cfg.type,
        "severity": severity,
        "success": bool(r.success),
        "observed": _error(r) or _observed(r.result or {}),
        "expected": json.dumps(_jsonable(_resolve(kwargs, target.parameters)), ensure_ascii=False),
        "element_count": (r.result or {}).get("element_count"),
        "unexpected_count": (r.result or {}).get("unexpected_count"),
        "batch_id": target.batch_id,
    }
    return CheckResult(**(fields | per_batch))


def _error(r) -> str | None:
    """The observed value of an expectation that raised instead of deciding, else None."""
    if not (r.exception_info or {}).get("raised_exception", False):
        return None
    return json.dumps({"error": str((r.exception_info or {}).get("exception_message"))[:300]})


# Expectations decided row by row: a row's verdict is the verdict a validation of that row alone gives.
_ROW_LEVEL = ("expect_column_values_to_be_between", "expect_column_pair_values_to_be_equal")


def _per_batch_format(target: Target, specs: dict) -> dict:
    kinds = {e["type"] for spec in specs.values() for e in spec["expectations"]}
    if not kinds <= set(_ROW_LEVEL):
        raise ValueError(f"{target.relation}: per-batch results need row-level expectations, not {kinds}")
    return {"result_format": "COMPLETE", "unexpected_index_column_names": [target.per_batch],
            "return_unexpected_index_query": False}  # fmt: skip


def _per_batch_results(target: Target, frame, specs: dict, results) -> list[CheckResult]:
    """Each batch's results from one validation of a frame with a row per batch: what validating its row
    alone gives (tests/plugins/test_checks.py holds the two to each other).

    A row the expectation ignores (a null value; for a pair, both null) is that batch's missing value:
    success, no unexpected percentage. A failing row is 100% unexpected; the others 0%.
    """
    out = []
    for r in results:
        error = _error(r)
        failed = {row[target.per_batch] for row in (r.result or {}).get("unexpected_index_list") or []}
        kwargs = r.expectation_config.kwargs
        columns = [kwargs[k] for k in ("column", "column_A", "column_B") if k in kwargs]
        for row in frame.itertuples(index=False):
            batch_id = getattr(row, target.per_batch)
            missing = all(_null(getattr(row, c)) for c in columns)
            percent = None if missing else 100.0 if batch_id in failed else 0.0
            out.append(
                _check_result(
                    r,
                    target,
                    specs,
                    relation=target.batches.get(batch_id, target.relation),
                    success=error is None and batch_id not in failed,
                    observed=error or json.dumps({"unexpected_percent": percent, "missing_count": int(missing)}),
                    element_count=None if error else 1,
                    unexpected_count=None if error else int(batch_id in failed),
                    batch_id=batch_id,
                )
            )
    return out


def _null(value) -> bool:
    return value is None or value != value  # NaN


def _parameter_names(spec: dict) -> set[str]:
    return {
        v["$PARAMETER"]
        for e in spec["expectations"]
        for v in e.get("kwargs", {}).values()
        if isinstance(v, dict) and "$PARAMETER" in v
    }


def _resolve(kwargs: dict, parameters: dict) -> dict:
    def one(v):
        if isinstance(v, dict) and "$PARAMETER" in v:
            return parameters.get(v["$PARAMETER"])
        return v

    return {k: one(v) for k, v in kwargs.items()}


def store(wh: Warehouse, validation: Validation, run_date: dt.date, dag_id: str, run_id: str) -> None:
    """Append every result to audit.check_results (one row per expectation per validation)."""
    import pyarrow as pa

    if not validation.results:
        return
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
    rows = [r.row() for r in validation.results]
    table = pa.table(
        {
            "run_date": pa.array([run_date] * len(rows), pa.date32()),
            "suite": [r["suite"] for r in rows],
            "relation": [r["relation"] for r in rows],
            "expectation": [r["expectation"] for r in rows],
            "severity": [r["severity"] for r in rows],
            "success": [r["success"] for r in rows],
            "observed": [r["observed"] for r in rows],
            "expected": [r["expected"] for r in rows],
            "element_count": pa.array([r["element_count"] for r in rows], pa.int64()),
            "unexpected_count": pa.array([r["unexpected_count"] for r in rows], pa.int64()),
            "batch_id": [r["batch_id"] for r in rows],
            "dag_id": [dag_id] * len(rows),
            "run_id": [run_id] * len(rows),
            "report": [validation.report] * len(rows),
            "checked_at": pa.array([now] * len(rows), pa.timestamp("us")),
        }
    )
    with wh.transaction():
        wh.append_arrow("audit.check_results", table)
