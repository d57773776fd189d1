"""`make run` and `make backfill`: run every DAG in-process for one as-of day (or a range) and print the marts.

    python -m crm_pipeline.run [--date YYYY-MM-DD]
    python -m crm_pipeline.run --from YYYY-MM-DD --to YYYY-MM-DD [--every day|week|month]

Generates the sample community first when the landing dir is empty.

Sources are independent: every extract DAG runs even when another failed (a
held batch, an unreachable API), and the transform then builds and publishes
from what passed; held batches stay out of staging. The run exits non-zero,
naming each failed DAG, task and critical check, when anything failed. A
day before CRM_EARLIEST_DATE (the DAGs' start_date), or a DAG run that ran
no task, is a failure with its reason, never a silent success.

A backfill runs the as-of days of the range in order, each through the same
DAGs as `make run` (one day at a time: tier history only moves forward, and
alerts open and resolve day by day), and stops at the first day that fails.
`--every week|month` takes every 7th day or the same day of each month
(clamped to the month's end) from FROM, and TO itself last. Days already
loaded load nothing again, so rerunning a range changes nothing. Airflow's
own `airflow backfill create` needs a running scheduler; in production, use
it on the extract DAGs and the transform follows their assets (docs).
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import subprocess
import sys
from contextlib import contextmanager, nullcontext
from pathlib import Path

from crm_pipeline.config import apply_airflow_env, parse_date, settings

DAG_ORDER = ["crm_extract_shop", "crm_extract_forum", "crm_extract_chat", "crm_extract_events", "crm_transform"]


def landing_is_empty(landing: Path) -> bool:
    return not landing.exists() or not any(p.is_file() for p in landing.rglob("*"))


def ensure_airflow_db() -> None:
    home = Path(os.environ["AIRFLOW_HOME"])
    if not (home / "airflow.db").exists():
        home.mkdir(parents=True, exist_ok=True)
        subprocess.run([str(Path(sys.executable).parent / "airflow"), "db", "migrate"], check=True, capture_output=True)


class RunError(SystemExit):
    """A day that cannot be run: said clearly, exit status 2."""

    def __init__(self, message: str):
        print(f"run FAILED: {message}", file=sys.stderr)
        super().__init__(2)


def load_dags():
    from airflow.dag_processing.dagbag import DagBag

    dags_folder = os.environ["AIRFLOW__CORE__DAGS_FOLDER"]
    if dags_folder not in sys.path:  # DAG files import their shared wiring from dags/_common
        sys.path.insert(0, dags_folder)
    bag = DagBag(dag_folder=dags_folder)
    if bag.import_errors:
        raise SystemExit(f"DAG import errors: {bag.import_errors}")
    return bag


def run_dags(as_of: dt.date, dag_ids: list[str] = DAG_ORDER, bag=None) -> list[tuple[str, str, list[str]]]:
    """dag.test() each DAG for the as-of day; (dag_id, state, failed task ids) for each.

    Every DAG runs, whatever an earlier one did: one source's failure never keeps another's
    data out, and the transform builds from what passed.
    """
    import pendulum

    check_runnable(as_of)
    bag = bag or load_dags()
    logical = pendulum.datetime(as_of.year, as_of.month, as_of.day, tz=settings().timezone)
    from crm_pipeline.load.warehouse import parse_url, transform_lock

    outcomes = []
    for dag_id in dag_ids:
        # Outside a scheduler nothing enforces crm_transform's max_active_runs=1: parallel
        # runs (a backfill in several shells) take turns building and publishing.
        try:
            serial = transform_lock(parse_url(settings().warehouse_url)) if dag_id == "crm_transform" else nullcontext()
            with serial, dag_folder_synced_once():
                run = bag.get_dag(dag_id).test(logical_date=logical, run_conf={"as_of_date": as_of.isoformat()})
        except Exception as exc:  # e.g. the warehouse is unreachable for the transform's lock: say so, go on
            outcomes.append((dag_id, f"could not start ({type(exc).__name__}: {str(exc).splitlines()[0][:160]})", []))
            continue
        tis = run.get_task_instances()
        failed = sorted({ti.task_id for ti in tis if ti.state == "failed"})
        state = str(run.state)
        if not tis:  # Airflow ran nothing (e.g. a logical date before start_date): never a success
            state, failed = "ran no task", []
        outcomes.append((dag_id, state, failed))
    return outcomes


# The DAG folders this process has written to the metadata DB (dag_folder_synced_once).
_SYNCED_FOLDERS: set[str] = set()


@contextmanager
def dag_folder_synced_once():
    """Within it, dag.test() parses the DAG folder and writes its DAGs to the metadata DB only the first
    time in this process.

    Airflow 3's dag.test() does that on every call (so that a DAG another one triggers is in the DB):
    a day of five DAGs parsed the folder six times and serialised every DAG five times, about a tenth
    of a run's CPU. The DAGs run here are the ones parsed when the run started, so a later parse could
    only write the same DAGs again; the first call in the process still writes them all.
    """
    from airflow.dag_processing import dagbag

    real_bag, real_sync = dagbag.BundleDagBag, dagbag.sync_bag_to_db

    def bundle_bag(*args, **kwargs):
        if str(kwargs.get("dag_folder", args[0] if args else None)) in _SYNCED_FOLDERS:
            return None
        return real_bag(*args, **kwargs)

    def sync(bag, *args, **kwargs):
        if bag is None:
            return None
        result = real_sync(bag, *args, **kwargs)
        _SYNCED_FOLDERS.add(str(bag.dag_folder))
        return result

    dagbag.BundleDagBag, dagbag.sync_bag_to_db = bundle_bag, sync
    try:
        yield
    finally:
        dagbag.BundleDagBag, dagbag.sync_bag_to_db = real_bag, real_sync


def check_runnable(as_of: dt.date) -> None:
    from crm_pipeline.config import earliest_date

    earliest = earliest_date()
    if as_of < earliest:
        raise RunError(
            f"as-of day {as_of} is before CRM_EARLIEST_DATE ({earliest}), the DAGs' start_date: "
            "Airflow would run no task for it. Set CRM_EARLIEST_DATE to the earliest day of your data."
        )


def backfill_days(start: dt.date, end: dt.date, every: str = "day") -> list[dt.date]:
    """The as-of days of a backfill: FROM, every day, 7th day or month after it up to TO, and TO last."""
    if end < start:
        raise RunError(f"backfill range is empty: TO ({end}) is before FROM ({start})")
    days, k = [], 0
    while True:
        if every == "day":
            day = start + dt.timedelta(days=k)
        elif every == "week":
            day = start + dt.timedelta(days=7 * k)
        elif every == "month":
            month = start.month - 1 + k
            year, month = start.year + month // 12, month % 12 + 1
            last = (dt.date(year + month // 12, month % 12 + 1, 1) - dt.timedelta(days=1)).day
            day = dt.date(year, month, min(start.day, last))
        else:
            raise RunError(f"EVERY must be day, week or month, not {every!r}")
        if day > end:
            break
        days.append(day)
        k += 1
    if days[-1] != end:
        days.append(end)
    return days


def failed_checks(as_of: dt.date) -> list[str]:
    """The critical checks that failed for this run date (suite / expectation, and the batch or relation)."""
    from crm_pipeline.load.warehouse import Warehouse

    try:
        with Warehouse.from_url(settings().warehouse_url) as wh:
            if not wh.table_exists("audit", "check_results"):
                return []
            rows = wh.fetchall(
                "select distinct suite, expectation, relation from audit.check_results "
                "where run_date = %s and severity = 'critical' and not success order by 1, 2, 3",
                (as_of,),
            )
    except Exception:  # the warehouse itself is what failed: the task names say so
        return []
    return [f"{suite} / {expectation} ({relation})" for suite, expectation, relation in rows]


def report(as_of: dt.date, outcomes, dag_ids: list[str], summary: bool = True) -> bool:
    """Print the summary (when the marts were published) and each DAG's outcome; True when all succeeded."""
    ok = all(state == "success" for _, state, _ in outcomes) and len(outcomes) == len(dag_ids)
    published = any(d == "crm_transform" and state == "success" for d, state, _ in outcomes)
    if summary and published:
        from crm_pipeline.summary import print_summary

        print_summary(as_of)
    for dag_id, state, failed in outcomes:
        print(f"DAG {dag_id}: {state}" + (f" (failed tasks: {', '.join(failed)})" if failed else ""))
    if not ok:
        for check in failed_checks(as_of):
            print(f"failed critical check: {check}")
        print(
            f"run FAILED for {as_of.isoformat()}: "
            + ("marts were published from the sources that passed" if published else "marts were not rebuilt"),
            file=sys.stderr,
        )
    return ok


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--date", default=os.environ.get("DATE") or None, help="as-of day (default: today)")
    ap.add_argument("--from", dest="start", help="backfill: the first as-of day")
    ap.add_argument("--to", dest="end", help="backfill: the last as-of day")
    ap.add_argument("--every", default="day", choices=("day", "week", "month"), help="backfill: the step")
    ap.add_argument("--customers", type=int, default=2000, help="sample size when the landing dir is empty")
    ap.add_argument("--dags", default=",".join(DAG_ORDER), help="comma-separated DAG ids to run, in order")
    args = ap.parse_args(argv)
    cfg = settings()
    if bool(args.start) != bool(args.end):
        ap.error("a backfill needs both --from and --to")
    if args.start:
        days = backfill_days(parse_date(args.start), parse_date(args.end), args.every)
    else:
        days = [parse_date(args.date) if args.date else dt.datetime.now(cfg.tz).date()]
    for day in days:
        check_runnable(day)
    apply_airflow_env()
    # Task logs go to the Airflow home; the terminal gets warnings and the summary.
    os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("CRM_RETRY_DELAY_SECONDS", "5")
    if landing_is_empty(cfg.landing_dir):
        from crm_pipeline.sample.generate import generate

        truth = cfg.landing_dir.parent / "ground_truth"
        print(
            f"landing dir {cfg.landing_dir} is empty: generating a sample community of {args.customers} "
            f"customers (ground truth in {truth})"
        )
        generate(cfg.landing_dir, truth, customers=args.customers, end_date=days[-1], real_shapes=True)
    ensure_airflow_db()
    logging.getLogger("airflow").setLevel(logging.WARNING)
    dag_ids = [d.strip() for d in args.dags.split(",") if d.strip()]
    unknown = sorted(set(dag_ids) - set(DAG_ORDER))
    if unknown:
        ap.error(f"unknown DAG id(s): {', '.join(unknown)} (known: {', '.join(DAG_ORDER)})")
    bag = load_dags()
    for i, day in enumerate(days):
        if len(days) > 1:
            print(f"== backfill {i + 1}/{len(days)}: as of {day.isoformat()}")
        outcomes = run_dags(day, dag_ids, bag)
        if not report(day, outcomes, dag_ids, summary=i == len(days) - 1):
            if len(days) > 1:
                print(f"backfill stopped at {day.isoformat()}; rerun the range to go on", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
