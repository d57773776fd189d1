"""Incremental dbt builds: decide between an incremental build and a full refresh, and record what was built.

The staging models of the raw entities below are incremental tables kept by
delete+insert on their key (dbt_project/macros/incremental.sql). A build
recomputes every key touched since the last one: a version of it was loaded
since (`_loaded_at` after the last build's snapshot), or a version loaded
earlier became visible because its stamp falls between the two as-of days.
That is exact as long as raw only grows. Whenever it cannot be, the build is
a full refresh instead, and the run log says why:

- there is no record of a previous build (first run, or state lost);
- the as-of day moved back (a backfill of an earlier day than the last build);
- raw rows the last build had seen were deleted, replaced (a batch loaded
  again) or held since: the count of such rows per entity no longer matches;
- a tombstone arrived since (the source deleted a key: raw._deleted), which
  removes a key from staging, and delete+insert on the touched keys cannot;
- scores the last build had seen were deleted (a new classifier version
  replaced them, or an erasure took them);
- the staging or intermediate models, macros or seeds changed (their code hash differs);
- CRM_DBT_FULL_REFRESH is set.

`audit.incremental_state` holds one row per entity (and one for
`scoring.text_scores`) for the last successful build: its as-of day, the
snapshot it saw, and the code hash.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

from crm_pipeline.config import settings
from crm_pipeline.digest import files_digest, files_under
from crm_pipeline.load.warehouse import Warehouse

# Raw entities read by incremental staging models.
ENTITIES = (
    "customers",
    "orders",
    "order_items",
    "reviews",
    "refunds",
    "forum_users",
    "forum_posts",
    "chat_messages",
    "events",
)
STATE_TABLE = "audit.incremental_state"
_NOT_HELD = "_batch_id not in (select batch_id from audit.load_batches where quality_status = 'held')"
# Each snapshot: the table, its arrival stamp, and which of its rows count (raw rows of held batches do not).
# The classifier's scores are one more: int_feedback__touchpoints recomputes the records scored since the
# last build's snapshot, and scores deleted since (a new classifier version, an erasure) force a full refresh.
TABLES = {entity: (f"raw.{entity}", "_loaded_at", _NOT_HELD) for entity in ENTITIES} | {
    "text_scores": ("scoring.text_scores", "scored_at", "true")
}


@dataclass
class Snapshot:
    loaded_through: dt.datetime | None  # the latest _loaded_at in raw
    raw_rows: int  # rows not held with _loaded_at <= loaded_through


@dataclass
class Plan:
    as_of: dt.date
    as_of_end_utc: dt.datetime
    full_refresh: bool
    reason: str
    code_hash: str
    snapshot: dict[str, Snapshot] = field(default_factory=dict)
    window: dict | None = None  # the dbt var `incremental`, when incremental

    def dbt_args(self) -> list[str]:
        return ["--full-refresh"] if self.full_refresh else []

    def dbt_vars(self) -> dict:
        return {} if self.window is None else {"incremental": self.window}


def code_hash(project_dir: Path) -> str:
    """Digest of what decides an incremental table's rows: staging and intermediate models, macros, seeds
    (the staff list decides which touchpoints exist) and the project file."""
    files = [project_dir / "dbt_project.yml"]
    for sub in ("models/staging", "models/intermediate", "macros", "seeds"):
        files += files_under(project_dir / sub)
    return files_digest(project_dir, files)


def _ts(value) -> dt.datetime | None:
    if value is None or isinstance(value, dt.datetime):
        return value
    return dt.datetime.fromisoformat(str(value))


def _fmt(value: dt.datetime) -> str:
    return value.isoformat(sep=" ", timespec="microseconds")


def snapshot(wh: Warehouse) -> dict[str, Snapshot]:
    """Per raw entity, in one scan: the latest _loaded_at and the rows not held (all of them are up to it)."""
    out = {}
    for entity, (table, stamp, counted) in TABLES.items():
        if not wh.table_exists(*table.split(".")):
            continue
        through, rows = wh.fetchone(f"select max({stamp}), count(*) filter (where {counted}) from {table}")
        out[entity] = Snapshot(_ts(through), int(rows or 0))
    return out


def read_state(wh: Warehouse) -> dict[str, dict]:
    if not wh.table_exists("audit", "incremental_state"):
        return {}
    rows = wh.fetchall(
        f"select entity, as_of_date, as_of_end_utc, loaded_through, raw_rows, code_hash from {STATE_TABLE}"
    )
    keys = ("as_of_date", "as_of_end_utc", "loaded_through", "raw_rows", "code_hash")
    return {r[0]: dict(zip(keys, r[1:], strict=True)) for r in rows}


def plan(wh: Warehouse, as_of: dt.date, as_of_end_utc: dt.datetime, project_dir: Path) -> Plan:
    """Full refresh or incremental, with the reason; the snapshot to record if the build succeeds."""
    digest = code_hash(project_dir)
    snap = snapshot(wh)
    state = read_state(wh)

    def full(reason: str) -> Plan:
        return Plan(as_of, as_of_end_utc, True, reason, digest, snap)

    if settings().dbt_full_refresh:
        return full("CRM_DBT_FULL_REFRESH is set")
    if not state:
        return full("no previous build recorded")
    last_days = {str(s["as_of_date"]) for s in state.values()}
    last_ends = {_ts(s["as_of_end_utc"]) for s in state.values()}
    if len(last_days) != 1 or len(last_ends) != 1:
        return full("the state of the last build is inconsistent")
    last_day, last_end = dt.date.fromisoformat(last_days.pop()), last_ends.pop()
    if as_of < last_day or as_of_end_utc < last_end:
        return full(f"as-of day {as_of} is before the last build's ({last_day})")
    if {s["code_hash"] for s in state.values()} != {digest}:
        return full("staging or intermediate models, macros or seeds changed since the last build")
    loaded_after = {}
    for entity, s in state.items():
        through = _ts(s["loaded_through"])
        if through is None:
            continue  # nothing was there: every key it has now is new
        table, stamp, counted = TABLES[entity]
        tombstones = "count(*) filter (where _loaded_at > %s and _deleted)" if table.startswith("raw.") else "0"
        now_rows, deleted = wh.fetchone(
            f"select count(*) filter (where {stamp} <= %s and {counted}), {tombstones} from {table}",
            (through, through) if table.startswith("raw.") else (through,),
        )
        if int(now_rows) != int(s["raw_rows"]):
            return full(
                f"{table} had {s['raw_rows']} rows up to the last build and has {now_rows} now "
                "(rows deleted, replaced or held since)"
            )
        if int(deleted or 0):
            return full(f"{table} has {deleted} tombstone(s) since the last build (keys deleted at the source)")
        loaded_after[entity] = _fmt(through)
    window = {
        "loaded_after": loaded_after,
        "prev_as_of_date": last_day.isoformat(),
        "prev_as_of_end_utc": _fmt(last_end),
    }
    reason = f"incremental since the build of {last_day}"
    return Plan(as_of, as_of_end_utc, False, reason, digest, snap, window)


def record(wh: Warehouse, p: Plan, build_id: str) -> None:
    """After a successful build: the snapshot it saw becomes the next build's starting point."""
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    with wh.transaction():
        wh.execute(f"delete from {STATE_TABLE}")
        for entity, s in p.snapshot.items():
            wh.execute(
                f"insert into {STATE_TABLE} (entity, as_of_date, as_of_end_utc, loaded_through, raw_rows, "
                "code_hash, build_id, recorded_at) values (%s, %s, %s, %s, %s, %s, %s, %s)",
                (entity, p.as_of, p.as_of_end_utc, s.loaded_through, s.raw_rows, p.code_hash, build_id, now),
            )


def forget(wh: Warehouse) -> None:
    """The next build is a full refresh (used when a build fails half-way or raw is rewritten)."""
    if wh.table_exists("audit", "incremental_state"):
        wh.execute(f"delete from {STATE_TABLE}")
