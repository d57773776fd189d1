"""Shop entities from a SQL database (any SQLAlchemy URL), incremental on a stored watermark with a lookback.

Each entity is read where its change column is at or after (watermark -
lookback). Rows the lookback reads again are recognised by their row hash
and not loaded twice; the watermark advances in the same transaction as the
rows it covers, so a failed load never moves it. An extract never deletes a
row (crm_pipeline.load.loader.load_extract).

The change column may be a real timestamp or text (SQLite stores timestamps
as text): the watermark is the latest value read as a timestamp, and the
query compares with it as `YYYY-MM-DD HH:MM:SS` text, which every database
here casts to its column's type (text compares as text, and that form sorts
with ISO text written with a space or a `T`).

Hard deletes in the source are noticed two ways:
- a soft-delete column (CRM_SQL_SOFT_DELETE_COLUMNS, default `deleted_at`,
  `is_deleted`, `deleted`): a row read with it set (a time, true, 1) loads as
  a tombstone, the row's content with `_deleted` true, so staging leaves the
  key out. The source must stamp the change column when it sets it, or the
  reconciliation below notices it;
- a key reconciliation every CRM_SQL_RECONCILE_DAYS days (default 7; 0:
  never): the source's keys (soft-deleted ones left out) are read in full and
  compared with the keys alive in raw from this source; each vanished key
  gets a tombstone. Its cost is one scan of the key columns of the source
  table and of raw's latest versions from the source, and a full dbt refresh
  of the next build when anything vanished; each run's figures are in
  audit.reconciliations.
A key that comes back (undeleted, or inserted again) loads as a new version
and is alive again.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from zoneinfo import ZoneInfo

from crm_pipeline.config import settings
from crm_pipeline.load.loader import (
    BatchResult,
    ensure_tables,
    latest_versions_sql,
    load_extract,
    read_watermark,
    write_tombstones,
)
from crm_pipeline.load.specs import SPECS
from crm_pipeline.load.warehouse import Warehouse
from crm_pipeline.sources.files import RawRecord

log = logging.getLogger(__name__)

# entity -> (change column in the source, SQL template). Items have no change
# column of their own and follow their order's updated_at.
INCREMENTAL = {
    "customers": (
        "updated_at",
        "select * from customers where coalesce(updated_at, registered_at) >= :since "
        "order by coalesce(updated_at, registered_at)",
    ),
    "orders": (
        "updated_at",
        "select * from orders where coalesce(updated_at, ordered_at) >= :since "
        "order by coalesce(updated_at, ordered_at)",
    ),
    "order_items": (
        "_parent_updated_at",
        "select i.*, coalesce(o.updated_at, o.ordered_at) as _parent_updated_at from order_items i "
        "join orders o on o.order_id = i.order_id "
        "where coalesce(o.updated_at, o.ordered_at) >= :since",
    ),
    "refunds": ("refunded_at", "select * from refunds where refunded_at >= :since order by refunded_at"),
    "reviews": ("created_at", "select * from reviews where created_at >= :since order by created_at"),
}
# The change column when the entity's own is null (the coalesce above).
FALLBACK = {"customers": "registered_at", "orders": "ordered_at"}
EPOCH = dt.datetime(1970, 1, 1)
_FALSE = ("", "0", "false", "f", "no", "n")


def lookback() -> dt.timedelta:
    return dt.timedelta(minutes=settings().sql_lookback_minutes)


def soft_delete_columns() -> list[str]:
    return [c.lower() for c in settings().sql_soft_delete_columns]


def reconcile_days() -> int:
    """CRM_SQL_RECONCILE_DAYS: days between key reconciliations (0: never)."""
    return settings().sql_reconcile_days


def source_label(url: str, entity: str) -> str:
    """The query's name in audit tables: the URL without credentials, and the entity."""
    from sqlalchemy.engine import make_url

    return f"sql:{make_url(url).render_as_string(hide_password=True).split('@')[-1]}/{entity}"


def source_engine(url: str):
    """An engine for the source URL. A plain postgresql:// URL gets psycopg2, the driver installed here
    (SQLAlchemy 2.1 would otherwise ask for psycopg 3)."""
    import sqlalchemy as sa
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg2")
    return sa.create_engine(parsed)


def as_timestamp(value) -> dt.datetime | None:
    """A change column's value as a timestamp: a datetime as it is, a date at midnight, ISO text parsed
    (the wall clock as written, any offset dropped); None when it is none of these."""
    if isinstance(value, dt.datetime):
        return value
    if isinstance(value, dt.date):
        return dt.datetime.combine(value, dt.time())
    if isinstance(value, str | bytes):
        text = value.decode() if isinstance(value, bytes) else value
        try:
            return dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00")).replace(tzinfo=None)
        except ValueError:
            return None
    return None


def since_param(since: dt.datetime) -> str:
    """The lower bound as text, floored to the second (never later than `since`, so nothing is skipped)."""
    return since.replace(microsecond=0).isoformat(sep=" ")


def is_soft_deleted(value) -> bool:
    if value is None:
        return False
    if isinstance(value, bool | int | float):
        return bool(value)
    if isinstance(value, dt.date):
        return True
    return str(value).strip().lower() not in _FALSE


def _soft_delete_column(columns) -> str | None:
    by_lower = {c.lower(): c for c in columns}
    return next((by_lower[c] for c in soft_delete_columns() if c in by_lower), None)


def _table_columns(engine, table: str) -> list[str]:
    import sqlalchemy as sa

    try:
        return [c["name"] for c in sa.inspect(engine).get_columns(table)]
    except sa.exc.NoSuchTableError:
        return []


def extract_entity(
    wh: Warehouse, url: str, entity: str, run_date: dt.date, tz: ZoneInfo, *, reconcile: bool | None = None
) -> BatchResult:
    """The entity's rows changed since the watermark (minus the lookback), then, when due, a key reconciliation.

    `reconcile`: True or False forces it; None reconciles when the last one is CRM_SQL_RECONCILE_DAYS old.
    """
    import sqlalchemy as sa

    ensure_tables(wh, [entity])
    change_col, sql = INCREMENTAL[entity]
    source = source_label(url, entity)
    stored = read_watermark(wh, entity, source)
    watermark = dt.datetime.fromisoformat(stored) if stored else None
    since = (watermark - lookback()) if watermark else EPOCH
    engine = source_engine(url)
    try:
        soft = _soft_delete_column(_table_columns(engine, entity))
        parent_soft = _soft_delete_column(_table_columns(engine, "orders")) if entity == "order_items" else None
        if parent_soft:  # an item of a soft-deleted order is deleted with it
            sql = sql.replace(" from order_items i", f", o.{parent_soft} as _parent_deleted from order_items i", 1)
        with engine.connect() as conn:
            result = conn.execute(sa.text(sql), {"since": since_param(since)})
            rows = [dict(r._mapping) for r in result]
        stamps = [as_timestamp(r.get(change_col) or r.get(FALLBACK.get(entity, ""))) for r in rows]
        new_watermark = max((s for s in stamps if s is not None), default=watermark)
        if watermark is not None and new_watermark is not None and new_watermark < watermark:
            new_watermark = watermark  # an earlier value read again never moves the watermark back
        records = []
        for r in rows:
            deleted = (soft is not None and is_soft_deleted(r.get(soft))) or is_soft_deleted(r.get("_parent_deleted"))
            fields = {k: v for k, v in r.items() if not k.startswith("_") and k != soft}
            records.append(RawRecord(None, fields, _raw(r), deleted=deleted))
        note = (
            f"since {since.isoformat()} (watermark {watermark.isoformat() if watermark else 'none'}, "
            f"lookback {lookback()})" + (f"; soft deletes from {soft}" if soft else "")
        )
        loaded = load_extract(
            wh, entity, source, records, new_watermark.isoformat() if new_watermark else None, run_date, tz, note=note
        )
        if reconcile or (reconcile is None and reconciliation_due(wh, entity, source, run_date)):
            reconcile_keys(wh, engine, entity, source, run_date, soft)
    finally:
        engine.dispose()
    return loaded


def reconciliation_due(wh: Warehouse, entity: str, source: str, run_date: dt.date) -> bool:
    every = reconcile_days()
    if every == 0:
        return False
    row = wh.fetchone(
        "select max(run_date) from audit.reconciliations where entity = %s and source = %s", (entity, source)
    )
    last = row[0] if row else None
    if last is None:
        return True
    last = last if isinstance(last, dt.date) else dt.date.fromisoformat(str(last))
    return (run_date - last).days >= every or run_date < last


def _key_sql(entity: str, soft: str | None, orders_soft: str | None = None) -> str:
    """The source's live keys: soft-deleted rows left out; an item goes with its order, so a deleted
    order's items are gone too."""
    if entity == "order_items":
        where = ""
        if orders_soft:
            where = f" where not ({_soft_sql('o.' + orders_soft)})"
        if soft:
            where += (" and " if where else " where ") + f"not ({_soft_sql('i.' + soft)})"
        return f"select i.order_id, i.line_no from order_items i join orders o on o.order_id = i.order_id{where}"
    where = f" where not ({_soft_sql(soft)})" if soft else ""
    return f"select {', '.join(SPECS[entity].key)} from {entity}{where}"


def _soft_sql(column: str) -> str:
    """SQL true when the soft-delete column is set (see is_soft_deleted), portable across databases."""
    return f"{column} is not null and lower(trim(cast({column} as char(32)))) not in ('', '0', 'false', 'f', 'no', 'n')"


def reconcile_keys(
    wh: Warehouse, engine, entity: str, source: str, run_date: dt.date, soft: str | None
) -> dict[str, int | float]:
    """Tombstone every key alive in raw (from `source`) that the source no longer has; record the run."""
    import pyarrow as pa
    import sqlalchemy as sa

    started = time.perf_counter()
    spec = SPECS[entity]
    orders_soft = _soft_delete_column(_table_columns(engine, "orders")) if entity == "order_items" else None
    with engine.connect() as conn:
        rows = conn.execute(sa.text(_key_sql(entity, soft, orders_soft)))
        source_keys = {tuple(str(v) for v in row) for row in rows}
    key_cols = ", ".join(f"cast({k} as {wh.type_sql('text')})" for k in spec.key)
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    with wh.session_lock(f"crm:extract:{entity}:{source}"):
        latest = wh.fetchall(latest_versions_sql(spec, f"{key_cols}, _row_hash, coalesce(_deleted, false)"), (source,))
        alive = {tuple(r[: len(spec.key)]): r[len(spec.key)] for r in latest if not r[-1]}
        vanished = sorted(h for key, h in alive.items() if key not in source_keys)
        with wh.transaction():
            note = f"key reconciliation: {len(vanished)} key(s) no longer in the source, marked deleted"
            batch_id = write_tombstones(wh, entity, source, vanished, run_date, note)
            seconds = round(time.perf_counter() - started, 3)
            figures = {
                "source_keys": len(source_keys),
                "live_keys": len(alive),
                "tombstoned": len(vanished),
                "seconds": seconds,
            }
            wh.append_arrow(
                "audit.reconciliations",
                pa.table(
                    {
                        "entity": [entity],
                        "source": [source],
                        "run_date": pa.array([run_date], pa.date32()),
                        "source_keys": [len(source_keys)],
                        "live_keys": [len(alive)],
                        "tombstoned": [len(vanished)],
                        "seconds": [seconds],
                        "batch_id": [batch_id],
                        "reconciled_at": pa.array([now], pa.timestamp("us")),
                    }
                ),
            )
    log.info("%s: key reconciliation %s", source, figures)
    return figures


def _raw(row: dict) -> str:
    return repr({k: (v.isoformat() if isinstance(v, dt.datetime | dt.date) else str(v)) for k, v in row.items()})
