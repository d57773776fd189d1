"""One publish per as-of day, after the day's sources have had their chance; a late source re-publishes the day.

In production `crm_transform` is triggered by any raw asset, so the first
source to finish would otherwise publish marts built on half a day. Two
rules prevent that (docs/operations.md says why both):

1. Wait for the sources. Each extract DAG's quality gate records in
   `audit.source_runs` that its run for the day is over (passed or held).
   The transform's `wait_for_sources` sensor lets the build start once every
   expected source has reported for the as-of day, or once the cut-off has
   passed (CRM_PUBLISH_CUTOFF, local time on the day after the as-of day,
   default 06:00): a source that is down cannot hold the marts back forever.
   Expected sources: CRM_PUBLISH_SOURCES (extract DAG ids), or, by default,
   every source that reported in the 14 days before the as-of day.
2. Publish only what changed. `needs_publish` skips the build and the
   publish when the marts already hold this day's publish and nothing has
   arrived since: no batch loaded, no text scored, no person erased, the
   same dbt project and suites. So the runs that the other sources' asset
   events queue up publish nothing new, while a source that lands after the
   publish (a late file, a retried API) triggers one more publish of the
   same day, built on everything.
`make run` and `make backfill` run the extracts first, so both rules pass at once there.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from crm_pipeline.config import DBT_PROJECT_DIR, REPO_ROOT, settings
from crm_pipeline.digest import files_digest, files_under
from crm_pipeline.load.warehouse import Warehouse

LOOKBACK_DAYS = 14


def cutoff(as_of: dt.date, tz: str) -> dt.datetime:
    """The latest moment (UTC, aware) the build waits for sources of `as_of`: CRM_PUBLISH_CUTOFF the day after."""
    local = dt.datetime.combine(as_of + dt.timedelta(days=1), settings().publish_cutoff, ZoneInfo(tz))
    return local.astimezone(dt.UTC)


def record_source_run(wh: Warehouse, as_of: dt.date, dag_id: str, run_id: str, status: str) -> None:
    wh.execute(
        "insert into audit.source_runs (as_of_date, dag_id, run_id, status, finished_at) values (%s, %s, %s, %s, %s)",
        (as_of, dag_id, run_id, status, dt.datetime.now(dt.UTC).replace(tzinfo=None)),
    )


def expected_sources(wh: Warehouse, as_of: dt.date) -> set[str]:
    configured = set(settings().publish_sources)
    if configured:
        return configured
    rows = wh.fetchall(
        "select distinct dag_id from audit.source_runs where as_of_date between %s and %s",
        (as_of - dt.timedelta(days=LOOKBACK_DAYS), as_of),
    )
    return {r[0] for r in rows}


def sources_ready(wh: Warehouse, as_of: dt.date, tz: str, now: dt.datetime | None = None) -> tuple[bool, str]:
    """Whether the build may start: every expected source reported for the day, or the cut-off passed."""
    now = now or dt.datetime.now(dt.UTC)
    expected = expected_sources(wh, as_of)
    reported = {
        r[0] for r in wh.fetchall("select distinct dag_id from audit.source_runs where as_of_date = %s", (as_of,))
    }
    missing = sorted(expected - reported)
    if not missing:
        return True, f"every expected source reported for {as_of}: {', '.join(sorted(expected)) or 'none expected'}"
    limit = cutoff(as_of, tz)
    if now >= limit:
        return True, f"cut-off {limit.isoformat()} passed; building without {', '.join(missing)}"
    return False, f"waiting for {', '.join(missing)} until {limit.isoformat()}"


def project_hash() -> str:
    """The code that decides the marts' content: the whole dbt project and the quality suites."""
    roots = [DBT_PROJECT_DIR / d for d in ("models", "macros", "seeds", "tests")] + [REPO_ROOT / "expectations"]
    return files_digest(REPO_ROOT, [DBT_PROJECT_DIR / "dbt_project.yml", *files_under(*roots)])


def _latest(wh: Warehouse, table: str, column: str):
    schema, name = table.split(".")
    if not wh.table_exists(schema, name):
        return None
    return wh.fetchone(f"select max({column}) from {table}")[0]


def needs_publish(wh: Warehouse, as_of: dt.date) -> tuple[bool, str]:
    """False when the marts hold this day's last publish and nothing has arrived or changed since."""
    if settings().dbt_full_refresh:
        return True, "CRM_DBT_FULL_REFRESH is set"
    last = wh.fetchone(
        "select as_of_date, published_at, code_hash from audit.publishes order by published_at desc limit 1"
    )
    if last is None:
        return True, "nothing published yet"
    day, published_at, code = last
    if str(day) != as_of.isoformat():
        return True, f"the marts hold {day}, not {as_of}"
    if code != project_hash():
        return True, "the dbt project or the quality suites changed since the last publish"
    for table, column, what in (
        ("audit.load_batches", "loaded_at", "a batch was loaded"),
        ("scoring.text_scores", "scored_at", "texts were scored"),
        ("audit.deletions", "applied_at", "a deletion request was applied"),
    ):
        stamp = _latest(wh, table, column)
        if stamp is not None and stamp > published_at:
            return True, f"{what} since the last publish of {as_of}"
    return False, f"the marts already hold {as_of}'s publish and nothing arrived since"
