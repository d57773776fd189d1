"""The gates: raw batches checked after each load, marts checked before publishing.

Raw: each batch loaded by a run is validated against its entity's suites
(`raw.<entity>.*`) and the load audit suite (`audit.load_batches.critical`:
quarantined share, extracted = loaded + quarantined). A critical failure
marks the batch `held` in `audit.load_batches`: staging leaves it out until a
corrected file (a new batch) replaces it. Other batches and sources flow on.

Marts (write-audit-publish): dbt builds every mart into `marts_build`, and its
data tests hold each mart's contract (keys, accepted values, ranges); a failed
one fails the build. The `marts.<mart>.*` suites then check what dbt does not:
no PII-looking value in a mart's text columns (critical) and the row count
against the published version (warning), reading only the columns they name.
Only if no critical check failed are all marts copied to `marts` in one
transaction, so BI readers see either the previous version of every mart or
the new version of every mart.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import statistics

from crm_pipeline.config import mart_names
from crm_pipeline.load.warehouse import Warehouse
from crm_pipeline.quality.checks import Target, Validation, store, suite_columns, validate

BUILD_SCHEMA = "marts_build"
PUBLISH_SCHEMA = "marts"
MARTS = mart_names()
# A mart's row count may move between half and double its last publish (a warning beyond). The business
# alerts come and go with the business: only a tenfold jump (a rule or threshold gone wrong) is suspect.
ROW_COUNT_BANDS = {"fct_business_alerts": (0.0, 10.0)}
_BATCH_ID = re.compile(r"^[0-9a-f]{8,64}$")


class QualityGateError(Exception):
    """A critical check failed: a data problem, not worth retrying."""

    def __init__(self, message: str, validation: Validation):
        super().__init__(message)
        self.validation = validation


def _frame_or_query(wh: Warehouse, sql: str, params: tuple = ()) -> dict:
    """DuckDB: a function reading the pandas DataFrame when its validation runs (not every target's rows
    at once). PostgreSQL: the SQL itself, validated in the database."""
    if wh.kind == "duckdb":
        return {"dataframe": lambda: wh.conn.execute(sql.replace("%s", "?"), list(params)).df()}
    literal = sql
    for p in params:
        literal = literal.replace("%s", "'" + str(p).replace("'", "''") + "'", 1)
    return {"query": literal}


def _row_bounds(history: list[int], low: float, high: float) -> dict:
    if not history:
        return {"min_rows": 0, "max_rows": None}
    typical = statistics.median(history)
    return {"min_rows": int(typical * low), "max_rows": int(typical * high) + 1}


def raw_targets(wh: Warehouse, batches: list[dict], as_of: dt.date) -> list[Target]:
    """Each batch's rows, then the load audit of every batch: one frame, a row per batch, whose results are
    given per batch (one validation, not one per batch: GX's fixed work per validation was most of a gate
    of many small files)."""
    targets, labels = [], {}
    for b in batches:
        batch_id, entity = b["batch_id"], b["entity"]
        if not _BATCH_ID.match(batch_id or ""):
            raise ValueError(f"unexpected batch id {batch_id!r}")
        history = [
            n
            for (n,) in wh.fetchall(
                "select loaded_rows from audit.load_batches where entity = %s and batch_id != %s "
                "and loaded_rows > 0 and coalesce(quality_status, '') != 'held' order by loaded_at desc limit 5",
                (entity, batch_id),
            )
        ]
        params = {
            # Not in the future of the wall clock (a backfill of a past day
            # legitimately lands later rows); a source clock a day fast is tolerated.
            "latest_allowed": dt.datetime.now(dt.UTC).replace(tzinfo=None) + dt.timedelta(days=1),
            "fresh_after": dt.datetime.combine(as_of - dt.timedelta(days=30), dt.time()),
            **_row_bounds(history, 0.1, 10.0),
        }
        if b.get("loaded_rows"):
            # Only the columns the suites name (a row count needs none): not a chat message's or a post's
            # text, which the loader has already held to its field's rules.
            columns = ", ".join(f'"{c}"' for c in suite_columns(f"raw.{entity}")) or "1 as counted"
            data = _frame_or_query(wh, f"select {columns} from raw.{entity} where _batch_id = %s", (batch_id,))
            targets.append(Target(f"raw.{entity}", batch_id=batch_id, parameters=params, **data))
        labels[batch_id] = f"audit.load_batches[{entity}]"
    if labels:
        import pandas as pd

        # A row per batch, on either engine (a few numbers each): in batch order.
        ids = ", ".join(["%s"] * len(labels))
        rows = {
            r[0]: r
            for r in wh.fetchall(
                "select batch_id, extracted_rows, loaded_rows + quarantined_rows as accounted_rows, "
                "cast(case when extracted_rows > 0 then quarantined_rows * 1.0 / extracted_rows end as double "
                f"precision) as quarantined_share from audit.load_batches where batch_id in ({ids})",
                tuple(labels),
            )
        }
        columns = ["batch_id", "extracted_rows", "accounted_rows", "quarantined_share"]
        frame = pd.DataFrame([rows[b] for b in labels if b in rows], columns=columns)
        frame = frame.astype({"extracted_rows": "int64", "accounted_rows": "int64", "quarantined_share": "float64"})
        targets.append(Target("audit.load_batches", dataframe=frame, per_batch="batch_id", batches=labels))
    return targets


def check_raw(
    wh: Warehouse,
    batches: list[dict],
    as_of: dt.date,
    *,
    dag_id: str,
    run_id: str,
    url: str | None = None,
) -> Validation:
    """Validate this run's new batches; mark each passed, warned or held; store every result."""
    batches = [b for b in batches if b.get("batch_id") and not b.get("skipped")]
    if not batches:
        return Validation()
    validation = validate(raw_targets(wh, batches, as_of), as_of, url)
    store(wh, validation, as_of, dag_id, run_id)
    for b in batches:
        mine = [r for r in validation.results if r.batch_id == b["batch_id"]]
        status = (
            "held"
            if any(r.severity == "critical" and not r.success for r in mine)
            else "warned"
            if any(not r.success for r in mine)
            else "passed"
        )
        wh.execute("update audit.load_batches set quality_status = %s where batch_id = %s", (status, b["batch_id"]))
    return validation


def check_marts(wh: Warehouse, as_of: dt.date, *, dag_id: str, run_id: str, url: str | None = None) -> Validation:
    """Validate every mart as built in marts_build, against bounds from the published version."""
    targets = []
    for mart in MARTS:
        if not wh.table_exists(BUILD_SCHEMA, mart):
            continue
        published = (
            wh.fetchone(f"select count(*) from {PUBLISH_SCHEMA}.{mart}")[0]
            if wh.table_exists(PUBLISH_SCHEMA, mart)
            else None
        )
        params = _row_bounds([published] if published else [], *ROW_COUNT_BANDS.get(mart, (0.5, 2.0)))
        # Only the columns the suites name (a row count needs none): a mart is never read whole into pandas.
        columns = ", ".join(f'"{c}"' for c in suite_columns(f"marts.{mart}")) or "1 as counted"
        data = _frame_or_query(wh, f"select {columns} from {BUILD_SCHEMA}.{mart}")
        targets.append(Target(f"marts.{mart}", parameters=params, **data))
    validation = validate(targets, as_of, url)
    store(wh, validation, as_of, dag_id, run_id)
    return validation


class StaleBuildError(RuntimeError):
    """marts_build does not hold this run's complete build: publishing it would mix versions."""


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def start_build(wh: Warehouse, as_of: dt.date, run_id: str) -> str:
    """Record that a dbt build into marts_build begins; returns its build id."""
    import uuid

    build_id = uuid.uuid4().hex
    wh.execute(
        "insert into audit.mart_builds (build_id, run_id, as_of_date, status, started_at) "
        "values (%s, %s, %s, 'building', %s)",
        (build_id, run_id, as_of, _now()),
    )
    return build_id


def finish_build(wh: Warehouse, build_id: str, ok: bool) -> None:
    wh.execute(
        "update audit.mart_builds set status = %s, finished_at = %s where build_id = %s",
        ("complete" if ok else "failed", _now(), build_id),
    )


def assert_own_build(wh: Warehouse, as_of: dt.date, run_id: str) -> None:
    """marts_build was last written by this run's build, for this day, and that build finished.

    A build that failed half-way leaves some marts new and some old in
    marts_build; clearing only the publish task, or another run building in
    between, would otherwise publish that mix.
    """
    row = wh.fetchone(
        "select run_id, as_of_date, status from audit.mart_builds order by started_at desc, build_id limit 1"
    )
    if row is None or (row[0], str(row[1]), row[2]) != (run_id, as_of.isoformat(), "complete"):
        held = f"a {row[2]} build of run {row[0]} for {row[1]}" if row else "no recorded build"
        raise StaleBuildError(
            f"not publishing: {BUILD_SCHEMA} holds {held}, not a complete build of run {run_id} "
            f"for {as_of.isoformat()}; rerun the dbt_build task (the whole run) first"
        )


def content_md5(wh: Warehouse, relation: str) -> tuple[int, str]:
    """Row count and an order-independent digest of a table's rows: the md5 of the sum of a 64-bit hash
    of every row (DuckDB's hash(); on PostgreSQL the first 64 bits of the row's md5). The same engine
    and version give the same digest for the same rows in any order; a row changed, added or repeated
    changes it. No sort: at scale M the md5 of every row, sorted and joined, took 6.5 s of a 9.5 s
    publish; the sum takes 0.14 s."""
    row_hash = "hash(t)" if wh.kind == "duckdb" else "('x' || substr(md5(t::text), 1, 16))::bit(64)::bigint"
    rows, total = wh.fetchone(f"select count(*), coalesce(sum({row_hash}), 0) from {relation} as t")
    return rows, hashlib.md5(str(total).encode()).hexdigest()


def publish(wh: Warehouse, as_of: dt.date | None = None, run_id: str | None = None) -> list[str]:
    """Copy every built mart into `marts` in one transaction: all switch together or none do."""
    built = [m for m in MARTS if wh.table_exists(BUILD_SCHEMA, m)]
    missing = [m for m in MARTS if m not in built]
    if missing:
        raise RuntimeError(f"not publishing: marts missing from {BUILD_SCHEMA}: {', '.join(missing)}")
    wh.execute(f"create schema if not exists {PUBLISH_SCHEMA}")
    from crm_pipeline.publish_window import project_hash

    code = project_hash()
    with wh.transaction():
        for mart in built:
            wh.execute(f"drop table if exists {PUBLISH_SCHEMA}.{mart}")
            wh.execute(f"create table {PUBLISH_SCHEMA}.{mart} as select * from {BUILD_SCHEMA}.{mart}")
            if as_of is not None and wh.table_exists("audit", "publishes"):
                rows, digest = content_md5(wh, f"{PUBLISH_SCHEMA}.{mart}")
                wh.execute(
                    "insert into audit.publishes (as_of_date, run_id, mart, row_count, content_md5, published_at, "
                    "code_hash) values (%s, %s, %s, %s, %s, %s, %s)",
                    (as_of, run_id, mart, rows, digest, _now(), code),
                )
        from crm_pipeline.bi_access import grant_marts

        if as_of is not None:  # tier history moves with the publish, in the same commit
            from crm_pipeline import tier_history

            tier_history.update(wh, as_of)
        grant_marts(wh)  # the BI role reads the new tables from the same commit
    from crm_pipeline.bi_access import refresh_bi_copy

    refresh_bi_copy(wh)  # DuckDB: BI's read-only copy, once the commit is done
    return built
