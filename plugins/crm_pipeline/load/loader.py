"""The one loader: records of any entity -> raw.<entity>, rejects -> audit.quarantine, one audit row per batch.

A landed file is a batch whose id comes from its path and content: it is
written in a single transaction, its earlier rows (if any) deleted first, so
a rerun or a retry after a crash replaces the batch instead of duplicating it.

An extract (a query, an API walk) is a new batch every time it runs, and
deletes nothing: it loads only the rows whose content differs from the
latest version already loaded for their key from that source, so a quiet
day, a rerun or a retry loads nothing and removes nothing (load_extract).
A key the source no longer has is marked deleted by a tombstone row, a copy
of its latest version with `_deleted` true (crm_pipeline.sources.sql).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

from crm_pipeline.config import check_key_secret, settings
from crm_pipeline.load.fast import FastBatch, try_fast
from crm_pipeline.load.normalise import normalise_record
from crm_pipeline.load.specs import SPECS, EntitySpec, adapter
from crm_pipeline.load.warehouse import Warehouse, ensure_schemas
from crm_pipeline.sources.files import SUFFIXES, RawRecord, detect_encoding, list_files, read_records

log = logging.getLogger(__name__)

LINEAGE = [
    ("_batch_id", "text"),
    ("_source", "text"),
    ("_line_no", "int"),
    ("_row_hash", "text"),
    ("_loaded_at", "timestamp"),
    # Columns a source sent beyond the contract, as JSON, when CRM_EXTRA_COLUMNS carries them.
    ("_extra", "text"),
    # A tombstone: the source deleted this key (soft-delete column or key reconciliation).
    ("_deleted", "bool"),
]
EXTRA_POLICIES = ("ignore", "carry")


def extra_columns_policy(entity: str) -> str:
    """CRM_EXTRA_COLUMNS: `ignore` (default) or `carry`, for all entities or per entity (`carry,orders:ignore`)."""
    policy = "ignore"
    for part in settings().extra_columns:
        name, _, value = part.rpartition(":")
        if value not in EXTRA_POLICIES:
            raise ValueError(f"CRM_EXTRA_COLUMNS: {part!r} is not one of {', '.join(EXTRA_POLICIES)}")
        if name in ("", entity):
            policy = value
    return policy


def _drift_note(spec: EntitySpec, extras: set[str], header: list[str] | None, policy: str) -> str | None:
    """Say what a source sent beyond (or short of) the contract, so a renamed column is visible."""
    if not extras:
        return None
    note = f"extra column(s) {'carried in _extra' if policy == 'carry' else 'ignored'}: {', '.join(sorted(extras))}"
    absent = [f.name for f in spec.fields if not f.required and header is not None and f.name not in header]
    if absent:
        note += f"; optional column(s) absent: {', '.join(absent)} (renamed?)"
    return note


AUDIT_DDL = {
    "load_batches": [
        ("batch_id", "text"),
        ("entity", "text"),
        ("source", "text"),
        ("source_sha256", "text"),
        ("encoding", "text"),
        ("extracted_rows", "int"),
        ("loaded_rows", "int"),
        ("quarantined_rows", "int"),
        ("reread_rows", "int"),
        ("run_date", "date"),
        ("loaded_at", "timestamp"),
        ("note", "text"),
        # null until checked; passed, warned, or held (a critical check failed:
        # staging leaves the batch out until a corrected file replaces it).
        ("quality_status", "text"),
    ],
    "quarantine": [
        ("batch_id", "text"),
        ("entity", "text"),
        ("source", "text"),
        ("line_no", "int"),
        ("reason", "text"),
        ("raw_record", "text"),
        ("run_date", "date"),
        ("quarantined_at", "timestamp"),
    ],
    "watermarks": [("entity", "text"), ("source", "text"), ("watermark", "text"), ("updated_at", "timestamp")],
    # One row per key reconciliation of a SQL source's entity: how many keys it compared and
    # how many had vanished (tombstoned), and what it cost (crm_pipeline.sources.sql).
    "reconciliations": [
        ("entity", "text"),
        ("source", "text"),
        ("run_date", "date"),
        ("source_keys", "int"),
        ("live_keys", "int"),
        ("tombstoned", "int"),
        ("seconds", "float"),
        ("batch_id", "text"),
        ("reconciled_at", "timestamp"),
    ],
    "check_results": [
        ("run_date", "date"),
        ("suite", "text"),
        ("relation", "text"),
        ("expectation", "text"),
        ("severity", "text"),
        ("success", "bool"),
        ("observed", "text"),
        ("expected", "text"),
        ("element_count", "int"),
        ("unexpected_count", "int"),
        ("batch_id", "text"),
        ("dag_id", "text"),
        ("run_id", "text"),
        ("report", "text"),
        ("checked_at", "timestamp"),
    ],
    # One row per dbt build of the marts: which run built marts_build, for which day, and
    # whether it finished; publish refuses anything but its own run's complete build.
    "mart_builds": [
        ("build_id", "text"),
        ("run_id", "text"),
        ("as_of_date", "date"),
        ("status", "text"),  # building | complete | failed
        ("started_at", "timestamp"),
        ("finished_at", "timestamp"),
    ],
    # One row per raw entity: the snapshot of raw the last successful dbt build saw, so the
    # next one can be incremental (crm_pipeline.transform.incremental).
    "incremental_state": [
        ("entity", "text"),
        ("as_of_date", "date"),
        ("as_of_end_utc", "timestamp"),
        ("loaded_through", "timestamp"),
        ("raw_rows", "int"),
        ("code_hash", "text"),
        ("build_id", "text"),
        ("recorded_at", "timestamp"),
    ],
    # One row per mart per publish: what BI was given, and when.
    "publishes": [
        ("as_of_date", "date"),
        ("run_id", "text"),
        ("mart", "text"),
        ("row_count", "int"),
        ("content_md5", "text"),
        ("published_at", "timestamp"),
        # The dbt project and suites that built it (crm_pipeline.publish_window.project_hash).
        ("code_hash", "text"),
    ],
    # One row per extract run's quality gate: the source had its chance for the day
    # (crm_pipeline.publish_window: the transform waits for the expected sources).
    "source_runs": [
        ("as_of_date", "date"),
        ("dag_id", "text"),
        ("run_id", "text"),
        ("status", "text"),  # passed | held
        ("finished_at", "timestamp"),
    ],
    "alerts": [
        ("fingerprint", "text"),
        ("status", "text"),
        ("severity", "text"),
        ("title", "text"),
        ("dag_id", "text"),
        ("opened_at", "timestamp"),
        ("last_seen_at", "timestamp"),
        ("resolved_at", "timestamp"),
        ("times_seen", "int"),
        ("channels", "text"),
    ],
}


@dataclass
class BatchResult:
    batch_id: str
    entity: str
    source: str
    extracted_rows: int
    loaded_rows: int
    quarantined_rows: int
    reread_rows: int = 0
    nul_chars_removed: int = 0
    encoding: str | None = None
    skipped: bool = False  # already loaded, unchanged

    def as_dict(self) -> dict:
        return asdict(self)


def _arrow_type(type_name: str):
    import pyarrow as pa

    return {
        "text": pa.string(),
        "int": pa.int64(),
        "amount": pa.decimal128(18, 2),
        "timestamp": pa.timestamp("us"),
        "date": pa.date32(),
        "bool": pa.bool_(),
        "float": pa.float64(),
    }[type_name]


def ensure_tables(wh: Warehouse, entities: Iterable[str] | None = None) -> None:
    # Runs of several DAGs may start at once: on PostgreSQL, check-then-create must not race.
    with wh.session_lock("crm:ddl"):
        ensure_schemas(wh)
        known = wh.columns_by_table("audit", "raw")
        for name, cols in AUDIT_DDL.items():
            wh.create_table(f"audit.{name}", cols, known.get(f"audit.{name}", []))
        for entity in entities or SPECS:
            spec = SPECS[entity]
            fields = [(f.name, f.type) for f in spec.fields] + LINEAGE
            wh.create_table(f"raw.{entity}", fields, known.get(f"raw.{entity}", []))
        if wh.kind == "postgres":
            _batch_indexes(wh, entities or SPECS)


def _batch_indexes(wh: Warehouse, entities: Iterable[str]) -> None:
    """PostgreSQL: each raw table indexed on `_batch_id`. The raw gate validates each new batch in the
    database, every expectation a query over `where _batch_id = ...`: without it each one read the whole
    table (M: 351 batches, 359 s of a 749 s build; five chat batches of 3.1 million rows 8.9 s -> 0.85 s).
    DuckDB prunes a batch's rows by the zone maps of the blocks it wrote (no index there: inserts pay for one).
    Made only where missing (`create index` would lock the table against a load writing it meanwhile)."""
    have = {name for (name,) in wh.fetchall("select indexname from pg_indexes where schemaname = 'raw'")}
    for entity in entities:
        if f"{entity}__batch_id" not in have:
            wh.execute(f"create index if not exists {entity}__batch_id on raw.{entity} (_batch_id)")


def write_pseudonym_key(wh: Warehouse, secret: str) -> None:
    """The secret behind customer_key, kept where dbt can join it and BI cannot read it.

    The only way the secret reaches the marts, so the public ones are refused here (config.check_key_secret).
    """
    check_key_secret(secret, wh.kind)
    ensure_schemas(wh)
    with wh.transaction():
        wh.create_table("private.pseudonym_key", [("secret", "text")])
        wh.execute("delete from private.pseudonym_key")
        wh.execute("insert into private.pseudonym_key values (%s)", (secret,))


def row_hash(spec: EntitySpec, row: dict) -> str:
    payload = json.dumps([str(row[f]) if row[f] is not None else None for f in spec.field_names], ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:32]


def tombstone_hash(content_hash: str) -> str:
    """A tombstone's row hash: distinct from its content's, so the key coming back alive is a change.

    The same as SQL's md5('deleted' || _row_hash), which reconciliation uses.
    """
    return hashlib.md5(("deleted" + content_hash).encode("utf-8")).hexdigest()


def batch_id_of(*parts: str) -> str:
    """A batch's id from what identifies it (a file: entity, source, content hash)."""
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:24]


def new_batch_id(entity: str, source: str, *parts: str) -> str:
    """An id no other batch has: an extract or a reconciliation is a new batch every run."""
    return batch_id_of(entity, source, *parts, dt.datetime.now(dt.UTC).isoformat(), os.urandom(8).hex())


# The lineage of a tombstone copied in SQL from the version it ends: its batch, now, no line, a
# hash distinct from the content's (tombstone_hash), and the flag. Parameters: batch id, load time.
_TOMBSTONE_COLUMNS = {
    "_batch_id": "%s",
    "_loaded_at": "%s",
    "_line_no": "null",
    "_row_hash": "md5('deleted' || _row_hash)",
    "_deleted": "true",
}


def write_tombstones(
    wh: Warehouse, entity: str, source: str, row_hashes: list[str], run_date: dt.date, note: str
) -> str | None:
    """Mark deleted, as one new batch, the versions of `source` with these row hashes (one tombstone per
    hash, copied from its latest load), with its audit.load_batches row. In the caller's transaction.
    Returns the batch id, or None when there was nothing to mark."""
    if not row_hashes:
        return None
    spec = SPECS[entity]
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    batch_id = new_batch_id(entity, source, "tombstones")
    fields = [*spec.field_names, *(n for n, _ in LINEAGE)]
    cols = ", ".join(f'"{c}"' for c in fields)
    copy = ", ".join(_TOMBSTONE_COLUMNS.get(c, c) for c in fields)
    for i in range(0, len(row_hashes), 1000):
        chunk = row_hashes[i : i + 1000]
        marks = ", ".join(["%s"] * len(chunk))
        wh.execute(
            f"insert into raw.{entity} ({cols}) select {copy} from ("
            f"select *, row_number() over (partition by _row_hash order by _loaded_at desc) as _copy "
            f"from raw.{entity} where _source = %s and _row_hash in ({marks})) as v where _copy = 1",
            (batch_id, now, source, *chunk),
        )
    wh.execute(
        "insert into audit.load_batches (batch_id, entity, source, extracted_rows, loaded_rows, "
        "quarantined_rows, reread_rows, run_date, loaded_at, note) values (%s, %s, %s, %s, %s, 0, 0, %s, %s, %s)",
        (batch_id, entity, source, len(row_hashes), len(row_hashes), run_date, now, note),
    )
    return batch_id


@dataclass
class PreparedBatch:
    """A batch normalised and ready to write: its rows, its quarantine and its audit row."""

    spec: EntitySpec
    good: object  # pyarrow.Table
    bad: object  # pyarrow.Table
    result: BatchResult
    audit: tuple
    on_commit: object = None


def load_batch(wh: Warehouse, *args, **kwargs) -> BatchResult:
    """Normalise one batch and write it in its own transaction (prepare_batch, then write_batches)."""
    prepared = prepare_batch(wh, *args, **kwargs)
    write_batches(wh, [prepared])
    return prepared.result


def prepare_batch(
    wh: Warehouse,
    spec: EntitySpec,
    batch_id: str,
    source: str,
    records: Iterable[RawRecord],
    run_date: dt.date,
    tz: ZoneInfo,
    *,
    encoding: str | None = None,
    source_sha256: str | None = None,
    header: list[str] | None = None,
    skip_hashes: set[str] | None = None,
    skip_rejects: set[str] | None = None,
    note: str | None = None,
    fast: FastBatch | None = None,
    suppression=None,
) -> PreparedBatch:
    """Normalise and split into loaded and quarantined rows, with the batch's audit row (written by write_batches).

    With `fast`, the rows it normalised column-wise are added as they are and `records` are the
    rest, which take the per-record path. `skip_hashes`: row hashes already loaded (the latest
    version of their key), counted as re-read instead of loaded; `skip_rejects`: raw records
    already quarantined with the same reason from this source, likewise. A record with
    `deleted` set loads as a tombstone.
    """
    import pyarrow as pa

    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    missing_cols = [c for c in spec.required if header is not None and c not in header]
    adapt = adapter(spec.name)
    if adapt is not None and len(missing_cols) == len(spec.required):
        # A foreign shape (e.g. a WeChat backup CSV): the adapter maps each record and
        # normalisation names any field still missing.
        missing_cols = []
    good: dict[str, list] = {f: [] for f in spec.field_names + [n for n, _ in LINEAGE]}
    bad: dict[str, list] = {n: [] for n, _ in AUDIT_DDL["quarantine"]}
    reread = nuls = 0
    known, carry, extras_seen = set(spec.field_names), extra_columns_policy(spec.name) == "carry", set()
    if fast is not None:
        extras_seen |= fast.extras
    from crm_pipeline.load.suppression import ERASED_REASON, Suppression

    if suppression is None:  # people erased on request stay out, whatever source re-sends them
        suppression = Suppression(wh)
    for rec in records:
        reason = rec.error
        row = None
        if reason is None and missing_cols:
            reason = "missing required column(s) in header: " + ", ".join(missing_cols)
        if reason is None and adapt is not None:
            try:
                rec.record = adapt(rec.record)
            except (ValueError, KeyError) as exc:
                reason = f"cannot map record: {exc}"
        extra = None
        if reason is None and suppression and suppression.erased(spec.name, rec.record):
            reason, rec.raw = ERASED_REASON, "[erased]"
        if reason is None:
            nuls += sum(v.count("\x00") for v in rec.record.values() if isinstance(v, str))
            row, reason = normalise_record(spec, rec.record, tz)
            if extra_keys := rec.record.keys() - known:
                extras_seen |= extra_keys
                if carry:
                    extra = json.dumps({k: rec.record[k] for k in sorted(extra_keys)}, ensure_ascii=False)
        if reason is not None:
            if skip_rejects is not None and f"{reason}\x1f{rec.raw}" in skip_rejects:
                reread += 1  # quarantined already by an earlier extract
                continue
            for k, v in zip(
                bad, (batch_id, spec.name, source, rec.line_no, reason, rec.raw, run_date, now), strict=True
            ):
                bad[k].append(v)
            continue
        deleted = bool(getattr(rec, "deleted", False))
        h = tombstone_hash(row_hash(spec, row)) if deleted else row_hash(spec, row)
        if skip_hashes is not None and h in skip_hashes:
            reread += 1  # already loaded by an earlier extract (lookback overlap)
            continue
        for f in spec.field_names:
            good[f].append(row[f])
        lineage = (batch_id, source, rec.line_no, h, now, extra, deleted)
        for k, v in zip([n for n, _ in LINEAGE], lineage, strict=True):
            good[k].append(v)
    types = {f.name: f.type for f in spec.fields} | dict(LINEAGE)
    good_tbl = pa.table({k: pa.array(v, type=_arrow_type(types[k])) for k, v in good.items()})
    if fast is not None and fast.good.num_rows:
        n = fast.good.num_rows
        constants = {"_batch_id": batch_id, "_source": source, "_loaded_at": now, "_extra": None, "_deleted": False}
        fast_tbl = pa.table(
            {
                k: (
                    pa.repeat(pa.scalar(constants[k], _arrow_type(types[k])), n)
                    if k in constants
                    else fast.good.column(k).cast(_arrow_type(types[k]))
                )
                for k in good
            }
        )
        good_tbl = pa.concat_tables([good_tbl, fast_tbl])
    qtypes = dict(AUDIT_DDL["quarantine"])
    bad_tbl = pa.table({k: pa.array(v, type=_arrow_type(qtypes[k])) for k, v in bad.items()})
    drift = _drift_note(spec, extras_seen, header, "carry" if carry else "ignore")
    if drift:
        log.warning("%s: %s", source, drift)
        note = f"{note}; {drift}" if note else drift
    result = BatchResult(
        batch_id=batch_id,
        entity=spec.name,
        source=source,
        extracted_rows=good_tbl.num_rows + bad_tbl.num_rows,
        loaded_rows=good_tbl.num_rows,
        quarantined_rows=bad_tbl.num_rows,
        reread_rows=reread,
        nul_chars_removed=nuls,
        encoding=encoding,
    )
    audit = (
        batch_id,
        spec.name,
        source,
        source_sha256,
        encoding,
        result.extracted_rows,
        result.loaded_rows,
        result.quarantined_rows,
        reread,
        run_date,
        now,
        note,
    )
    return PreparedBatch(spec, good_tbl, bad_tbl, result, audit, getattr(records, "on_commit", None))


_LAST_STAMP: list[dt.datetime] = []


def _stamp_in_order(batches: list[PreparedBatch]) -> None:
    """Load times taken now, strictly increasing in file order.

    Staging keeps the version loaded last (macro version_order), so a later file must carry a
    later _loaded_at however long each file took to prepare in its thread.
    """
    import pyarrow as pa

    for b in batches:
        stamp = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        if _LAST_STAMP and stamp <= _LAST_STAMP[0]:
            stamp = _LAST_STAMP[0] + dt.timedelta(microseconds=1)
        _LAST_STAMP[:] = [stamp]
        for attr, column in (("good", "_loaded_at"), ("bad", "quarantined_at")):
            table = getattr(b, attr)
            i = table.schema.get_field_index(column)
            setattr(
                b, attr, table.set_column(i, column, pa.repeat(pa.scalar(stamp, pa.timestamp("us")), table.num_rows))
            )
        b.audit = (*b.audit[:10], stamp, *b.audit[11:])


def write_batches(wh: Warehouse, batches: list[PreparedBatch]) -> None:
    """Write batches of one entity in one transaction: each replaces its earlier rows, if any.

    One commit for several files costs what one costs (DuckDB writes a large insert straight to
    its file instead of through the log); a failure leaves none of them, and a rerun loads them.
    """
    import pyarrow as pa

    if not batches:
        return
    _stamp_in_order(batches)
    entity = batches[0].spec.name
    assert all(b.spec.name == entity for b in batches), "one entity per write"
    ids = [b.result.batch_id for b in batches]
    marks = ", ".join(["%s"] * len(ids))
    with wh.transaction():
        # Two runs loading one batch at once (PostgreSQL has no writer lock): the second waits, then
        # replaces the first's rows, so the batch is there once. Sorted: two writers never deadlock.
        for batch_id in sorted(set(ids)):
            wh.xact_lock(f"crm:batch:{batch_id}")
        wh.execute(f"delete from raw.{entity} where _batch_id in ({marks})", tuple(ids))
        wh.execute(f"delete from audit.quarantine where batch_id in ({marks})", tuple(ids))
        wh.execute(f"delete from audit.load_batches where batch_id in ({marks})", tuple(ids))
        wh.append_arrow(f"raw.{entity}", pa.concat_tables([b.good for b in batches]))
        wh.append_arrow("audit.quarantine", pa.concat_tables([b.bad for b in batches]))
        for b in batches:
            wh.execute(
                "insert into audit.load_batches (batch_id, entity, source, source_sha256, encoding, extracted_rows, "
                "loaded_rows, quarantined_rows, reread_rows, run_date, loaded_at, note) "
                "values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                b.audit,
            )
            if b.on_commit is not None:
                b.on_commit(wh)


class Watermarked(list):
    """Extracted records plus the watermark to store, in the same transaction as the rows."""

    def __init__(self, items, entity: str, source: str, watermark: str | None):
        super().__init__(items)
        self.entity, self.source, self.watermark = entity, source, watermark

    def on_commit(self, wh: Warehouse) -> None:
        if self.watermark is None:
            return
        wh.execute("delete from audit.watermarks where entity = %s and source = %s", (self.entity, self.source))
        wh.execute(
            "insert into audit.watermarks (entity, source, watermark, updated_at) values (%s, %s, %s, %s)",
            (self.entity, self.source, self.watermark, dt.datetime.now(dt.UTC).replace(tzinfo=None)),
        )


def load_extract(
    wh: Warehouse,
    entity: str,
    source: str,
    records: list[RawRecord],
    watermark: str | None,
    run_date: dt.date,
    tz: ZoneInfo,
    *,
    note: str | None = None,
) -> BatchResult:
    """One incremental extract (a query, an API walk) as one new batch, which deletes nothing.

    A row whose content equals the latest version loaded for its key from this
    source is counted as re-read, not loaded, and so is a record quarantined
    before with the same reason: an extract that reads what is already there
    (an overlap window, a quiet day, a rerun, a retry) loads nothing and
    leaves every row in place. A row that differs from the latest version,
    even by going back to an older content, loads as the new latest. The
    watermark is stored in the batch's transaction; extracts of one source
    and entity run one at a time.
    """
    ensure_tables(wh, [entity])
    spec = SPECS[entity]
    with wh.session_lock(f"crm:extract:{entity}:{source}"):
        seen = latest_hashes(wh, spec, source)
        rejected = {
            f"{reason}\x1f{raw}"
            for reason, raw in wh.fetchall(
                "select reason, raw_record from audit.quarantine where entity = %s and source = %s", (entity, source)
            )
        }
        digest = hashlib.sha256("\x1e".join(sorted(r.raw for r in records)).encode("utf-8")).hexdigest()
        # A new id each time: an extract never replaces (and so never deletes) an earlier one's rows.
        batch_id = new_batch_id(entity, source, digest)
        return load_batch(
            wh,
            spec,
            batch_id,
            source,
            Watermarked(records, entity, source, watermark),
            run_date,
            tz,
            skip_hashes=seen,
            skip_rejects=rejected,
            note=note,
        )


def latest_versions_sql(spec: EntitySpec, columns: str = "_row_hash") -> str:
    """The latest loaded version of each key from one source (%s), in loading order (staging's tie-breaks)."""
    keys = ", ".join(spec.key)
    return (
        f"select {columns} from (select *, row_number() over (partition by {keys} "
        "order by _loaded_at desc, coalesce(_line_no, 0) desc, _row_hash desc) as _version_rank "
        f"from raw.{spec.name} where _source = %s) as versions where _version_rank = 1"
    )


def latest_hashes(wh: Warehouse, spec: EntitySpec, source: str) -> set[str]:
    """Row hashes of the latest version of each key loaded from `source` (a tombstone's included)."""
    return {h for (h,) in wh.fetchall(latest_versions_sql(spec), (source,))}


def read_watermark(wh: Warehouse, entity: str, source: str) -> str | None:
    row = wh.fetchone("select watermark from audit.watermarks where entity = %s and source = %s", (entity, source))
    return row[0] if row else None


def fast_loading_enabled() -> bool:
    """CRM_LOAD_FAST=0 sends every record down the per-record path (the reference the fast path is tested against)."""
    return settings().load_fast


def _fast_read(spec: EntitySpec, path: Path, data: bytes, tz: ZoneInfo, suppression) -> FastBatch | None:
    """The file normalised column-wise (crm_pipeline.load.fast), or None when it must go record by record."""
    encoding = detect_encoding(data)
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError:
        return None  # undecodable lines are quarantined one by one
    carry = extra_columns_policy(spec.name) == "carry"
    fast = try_fast(spec, SUFFIXES[path.suffix.lower()], text, tz, suppression, carry)
    if fast is not None:
        fast.encoding = encoding
    return fast


def load_file(
    wh: Warehouse, entity: str, path: Path, landing_dir: Path, run_date: dt.date, tz: ZoneInfo, *, force: bool = False
) -> BatchResult:
    """Load one landed file as one batch, unless this exact content was loaded before."""
    from crm_pipeline.load.suppression import Suppression

    checked = _check_file(wh, entity, path, landing_dir, force=force)
    if isinstance(checked, BatchResult):
        return checked
    prepared = _prepare_file(wh, checked, run_date, tz, Suppression(wh))
    write_batches(wh, [prepared])
    log.info("loaded %s: %s", prepared.result.source, prepared.result.as_dict())
    return prepared.result


@dataclass
class _LandedFile:
    entity: str
    path: Path
    source: str
    data: bytes
    sha256: str
    batch_id: str


def _check_file(
    wh: Warehouse, entity: str, path: Path, landing_dir: Path, *, force: bool = False
) -> _LandedFile | BatchResult:
    """The file's bytes and batch id, or the skipped result when this exact content was loaded before."""
    try:
        source = path.relative_to(landing_dir).as_posix()
    except ValueError:
        source = path.as_posix()
    data = path.read_bytes()  # once: hashed for the batch id, then decoded
    sha = hashlib.sha256(data).hexdigest()
    batch_id = batch_id_of(entity, source, sha)
    if not force and wh.fetchone("select 1 from audit.load_batches where batch_id = %s", (batch_id,)):
        return BatchResult(batch_id, entity, source, 0, 0, 0, skipped=True)
    return _LandedFile(entity, path, source, data, sha, batch_id)


def _prepare_file(wh: Warehouse, f: _LandedFile, run_date: dt.date, tz: ZoneInfo, suppression) -> PreparedBatch:
    """A landed file normalised as one batch. Reads nothing from the warehouse, so files can be prepared in threads."""
    spec = SPECS[f.entity]
    fast = _fast_read(spec, f.path, f.data, tz, suppression) if fast_loading_enabled() else None
    if fast is not None:
        encoding, header, records = fast.encoding, fast.header, fast.slow
    else:
        encoding, header, records = read_records(f.path, f.data)
    return prepare_batch(
        wh,
        spec,
        f.batch_id,
        f.source,
        records,
        run_date,
        tz,
        encoding=encoding,
        source_sha256=f.sha256,
        header=header,
        fast=fast,
        suppression=suppression,
    )


def _group_rows() -> int:
    """CRM_LOAD_GROUP_ROWS: rows of several files written in one transaction (default 250,000; 1 = file by file)."""
    return settings().load_group_rows


def load_landing(wh: Warehouse, entity: str, landing_dir: Path, run_date: dt.date, tz: ZoneInfo) -> list[BatchResult]:
    """Every file under landing/<entity>/ not loaded before (a changed file is a new batch).

    Two files are normalised at a time in threads (DuckDB and Arrow release the GIL); they are
    written in file order, in groups of about CRM_LOAD_GROUP_ROWS rows, one transaction per group.
    """
    from concurrent.futures import Future, ThreadPoolExecutor

    from crm_pipeline.load.suppression import Suppression

    ensure_tables(wh, [entity])
    suppression = Suppression(wh)
    results: list[BatchResult | None] = []
    group: list[PreparedBatch] = []
    pending: list[tuple[int, Future]] = []

    def flush() -> None:
        write_batches(wh, group)
        for b in group:
            log.info("loaded %s: %s", b.result.source, b.result.as_dict())
        group.clear()  # the rows are written: keep only each batch's result

    def collect(slot: int, future: Future) -> None:
        prepared = future.result()
        results[slot] = prepared.result
        group.append(prepared)
        if sum(b.result.extracted_rows for b in group) >= _group_rows():
            flush()

    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="crm-load") as pool:
        for path in list_files(landing_dir, entity):
            checked = _check_file(wh, entity, path, landing_dir)
            results.append(checked if isinstance(checked, BatchResult) else None)
            if isinstance(checked, BatchResult):
                continue
            pending.append((len(results) - 1, pool.submit(_prepare_file, wh, checked, run_date, tz, suppression)))
            while len(pending) > 2:  # bounded: at most three files' rows in memory besides the group
                collect(*pending.pop(0))
        while pending:
            collect(*pending.pop(0))
    flush()
    return results
