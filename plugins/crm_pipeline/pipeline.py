"""What each DAG task does, as plain functions of the as-of day; the DAG files only wire these."""

from __future__ import annotations

import datetime as dt
import logging
import shutil

from crm_pipeline.config import parse_date, settings
from crm_pipeline.load.loader import BatchResult, ensure_tables, load_landing, write_pseudonym_key
from crm_pipeline.load.warehouse import Warehouse, parse_url, writer_lock
from crm_pipeline.publish_window import record_source_run

log = logging.getLogger(__name__)


class AsOfDateMissingError(ValueError):
    """A run carried neither an as_of_date param nor a logical date."""


def resolve_as_of(params: dict | None, logical_date: dt.datetime | None, tz: str | None = None) -> dt.date:
    """The run's as-of day: the `as_of_date` param if given, else the logical date's local day.

    A manual trigger without a logical date (allowed in Airflow 3) and without
    the param fails here with a message saying what to pass.
    """
    tz = tz or settings().timezone
    value = (params or {}).get("as_of_date")
    if value:
        return parse_date(str(value))
    if logical_date is None:
        raise AsOfDateMissingError(
            "this run has no logical date and no 'as_of_date' param: trigger it with a logical date "
            'or with conf {"as_of_date": "YYYY-MM-DD"}'
        )
    from zoneinfo import ZoneInfo

    return logical_date.astimezone(ZoneInfo(tz)).date()


def prepare_warehouse() -> str:
    cfg = settings()
    target = parse_url(cfg.warehouse_url)
    with writer_lock(target), Warehouse(target) as wh, wh.session_lock("crm:ddl"):
        ensure_tables(wh)
        write_pseudonym_key(wh, cfg.key_secret)
        from crm_pipeline.privacy import ensure_tables as ensure_privacy_tables
        from crm_pipeline.text.score import ensure_table as ensure_scores_table
        from crm_pipeline.value.score import ensure_tables as ensure_value_tables

        ensure_scores_table(wh)
        ensure_value_tables(wh)  # dbt's sources exist before any build, the value fit's too
        ensure_privacy_tables(wh)
        if settings().bi_role:  # roles are cluster-wide: created only when asked for
            from crm_pipeline.bi_access import ensure_bi_role

            ensure_bi_role(wh)
    return target.label


def load_entity_files(entity: str, as_of: dt.date) -> list[dict]:
    cfg = settings()
    target = parse_url(cfg.warehouse_url)
    with writer_lock(target), Warehouse(target) as wh:
        results = load_landing(wh, entity, cfg.landing_dir, as_of, cfg.tz)
    return [r.as_dict() for r in results]


def sql_entities(entities: list[str]) -> list[str]:
    """The entities a run extracts from CRM_SHOP_DB_URL: all of them, or none when it is not set."""
    return list(entities) if settings().source_db_url else []


def extract_sql_entity(entity: str, as_of: dt.date) -> dict:
    """Incremental extract from CRM_SHOP_DB_URL; a 'skipped' note when no source database is configured."""
    cfg = settings()
    if not cfg.source_db_url:
        return {"entity": entity, "skipped": "CRM_SHOP_DB_URL is not set"}
    from crm_pipeline.sources.sql import extract_entity

    target = parse_url(cfg.warehouse_url)
    with writer_lock(target), Warehouse(target) as wh:
        result: BatchResult = extract_entity(wh, cfg.source_db_url, entity, as_of, cfg.tz)
    return result.as_dict()


def extract_forum_api(as_of: dt.date) -> list[dict]:
    """Users and posts from the forum API (Airflow connection `crm_forum_api`, or CRM_FORUM_API_URL)."""
    from crm_pipeline.sources import discourse

    api = discourse.config_from_connection() or discourse.env_config()
    if api is None:
        return [{"entity": "forum_posts", "skipped": "no crm_forum_api connection or CRM_FORUM_API_URL"}]
    cfg = settings()
    target = parse_url(cfg.warehouse_url)
    with writer_lock(target), Warehouse(target) as wh:
        return [r.as_dict() for r in discourse.extract(wh, api, as_of, cfg.tz)]


def apply_deletion_requests(as_of: dt.date) -> list[dict]:
    """Load new deletion request files and erase the people they name, before anything is built."""
    from crm_pipeline import privacy

    cfg = settings()
    target = parse_url(cfg.warehouse_url)
    with writer_lock(target), Warehouse(target) as wh:
        ensure_tables(wh, ["deletion_requests"])
        load_landing(wh, "deletion_requests", cfg.landing_dir, as_of, cfg.tz)
        done = privacy.apply_pending(wh)
    return [{k: d[k] for k in ("request_id", "status", "accounts")} for d in done]


def score_texts() -> dict:
    """Score new or edited texts (forum, chat, reviews, refund reasons) with the current classifier."""
    from crm_pipeline.text.classifier import VERSION
    from crm_pipeline.text.score import score_pending

    target = parse_url(settings().warehouse_url)
    with writer_lock(target), Warehouse(target) as wh:
        run = score_pending(wh)
    log.info(
        "scored %d texts (%d distinct) with classifier %s at %.0f texts/s: %s",
        run.scored,
        run.classified,
        VERSION,
        run.per_second,
        run.by_source,
    )
    return {"scored": run.scored, "classified": run.classified, "version": VERSION, "by_source": run.by_source}


# dbt selector of the models made from the lifetime-value fit; with "+", everything built on them.
VALUE_TAG = "tag:after_value_fit"


def build_marts(as_of: dt.date, run_id: str) -> dict:
    """dbt build (seeds, models and their data tests) into marts_build; nothing is published.

    Unit tests are left out (`--exclude-resource-type unit_test`, as dbt
    recommends for production): their inputs are fixed rows, so they say
    the same every day. The test suite runs them on both engines.

    Staging is incremental when that is exact, else a full refresh
    (crm_pipeline.transform.incremental says which and why). The build is
    recorded in audit.mart_builds (building, then complete or failed), so the
    publish step can tell its own finished build from a half-built or foreign
    one.
    """
    from crm_pipeline.config import as_of_bounds_utc
    from crm_pipeline.quality.gate import finish_build, start_build
    from crm_pipeline.transform import dbt, incremental

    cfg = settings()
    target = parse_url(cfg.warehouse_url)
    with writer_lock(target), Warehouse(target) as wh:
        ensure_tables(wh, [])
        build_id = start_build(wh, as_of, run_id)
        plan = incremental.plan(wh, as_of, as_of_bounds_utc(as_of, cfg.timezone)[1], dbt.DBT_PROJECT_DIR)
    log.info("dbt build for %s: %s", as_of, "full refresh, " + plan.reason if plan.full_refresh else plan.reason)
    ok = False
    build = ["build", "--exclude-resource-type", "unit_test", *plan.dbt_args()]
    try:
        value = build_in_halves(build, as_of, plan.dbt_vars())
        ok = True
    finally:
        with writer_lock(target), Warehouse(target) as wh:
            finish_build(wh, build_id, ok)
            # A build that failed half-way leaves some staging tables ahead of the others.
            incremental.record(wh, plan, build_id) if ok else incremental.forget(wh)
    return {"full_refresh": plan.full_refresh, "reason": plan.reason, "customer_value": value}


def build_in_halves(build: list[str], as_of: dt.date, extra_vars: dict | None = None) -> dict:
    """A dbt build (its arguments: `build`) in two halves around the lifetime-value fit: everything but
    what rests on the fit, the fit (Python, on the first half's summaries), then the value mart and what
    uses it (the at-risk list, alerts). Returns the fit's outcome."""
    from crm_pipeline.transform import dbt

    dbt.run_dbt([*build, "--exclude", f"{VALUE_TAG}+"], as_of, extra_vars=extra_vars)
    target = dbt.artifacts_dir(parse_url(settings().warehouse_url)) / "target"
    shutil.copyfile(target / "run_results.json", target / dbt.FIRST_HALF_RESULTS)
    value = score_customer_value(as_of)
    dbt.run_dbt([*build, "--select", f"{VALUE_TAG}+"], as_of, extra_vars=extra_vars)
    return value


def score_customer_value(as_of: dt.date) -> dict:
    """Fit BG/NBD and Gamma-Gamma on the day's summaries and write each buyer's predictions (crm_pipeline.value)."""
    from crm_pipeline.value.score import score_customers

    cfg = settings()
    target = parse_url(cfg.warehouse_url)
    with writer_lock(target), Warehouse(target) as wh:
        run = score_customers(wh, as_of, cfg.clv_annual_discount)
    log.info("customer value for %s: %s, %d buyers (%d repeat)", as_of, run.status, run.customers, run.repeat_buyers)
    return {"status": run.status, "customers": run.customers, "repeat_buyers": run.repeat_buyers}


def _alert_on(wh, validation, as_of: dt.date, dag_id: str, run_id: str, scopes: list[str], sources: dict) -> dict:
    from crm_pipeline.alerts import check_problem, reconcile

    problems = [
        check_problem(r, dag_id, run_id, as_of, validation.report, sources.get(r.batch_id))
        for r in validation.results
        if not r.success
    ]
    summary = {"opened": [], "repeated": [], "resolved": [], "delivery_errors": []}
    for scope in scopes:
        outcome = reconcile(wh, scope, [p for p in problems if p.fingerprint.startswith(scope)])
        for k in summary:
            summary[k] += getattr(outcome, k)
    return summary


def gate_raw(batches: list[dict], as_of: dt.date, dag_id: str, run_id: str) -> dict:
    """Check this run's new raw batches; alert; raise QualityGateError on a critical failure."""
    from crm_pipeline.quality.gate import QualityGateError, check_raw

    cfg = settings()
    target = parse_url(cfg.warehouse_url)
    with writer_lock(target), Warehouse(target) as wh:
        validation = check_raw(wh, batches, as_of, dag_id=dag_id, run_id=run_id, url=cfg.warehouse_url)
        relations = sorted({r.relation for r in validation.results})
        sources = {b["batch_id"]: b.get("source") for b in batches if b.get("batch_id")}
        alerts = _alert_on(wh, validation, as_of, dag_id, run_id, [f"check:{r}:" for r in relations], sources)
        failed = validation.critical_failures
        # The source had its chance for the day, passed or held (crm_pipeline.publish_window).
        record_source_run(wh, as_of, dag_id, run_id, "held" if failed else "passed")
    summary = {
        "checks": len(validation.results),
        "failed": sum(not r.success for r in validation.results),
        "critical_failed": len(failed),
        "report": validation.report,
        "alerts": alerts,
    }
    log.info("raw checks: %s", summary)
    if failed:
        held = sorted({sources.get(r.batch_id) or r.batch_id for r in failed})
        checks = sorted({f"{r.suite}/{r.expectation}" for r in failed})
        raise QualityGateError(
            f"quality gate: {len(failed)} critical check(s) failed ({', '.join(checks)}); "
            f"held out of staging: {', '.join(held)}; report: {validation.report}",
            validation,
        )
    return summary


def sources_ready(as_of: dt.date) -> bool:
    """The transform's sensor: every expected source reported for the day, or the cut-off passed."""
    from crm_pipeline import publish_window

    cfg = settings()
    target = parse_url(cfg.warehouse_url)
    with writer_lock(target), Warehouse(target) as wh:
        ready, why = publish_window.sources_ready(wh, as_of, cfg.timezone)
    log.info("sources for %s: %s", as_of, why)
    return ready


def publish_needed(as_of: dt.date) -> bool:
    """False when the marts already hold this day's publish and nothing arrived since (the build is skipped)."""
    from crm_pipeline import publish_window

    target = parse_url(settings().warehouse_url)
    with writer_lock(target), Warehouse(target) as wh:
        needed, why = publish_window.needs_publish(wh, as_of)
    log.warning("publish %s: %s", "needed" if needed else "skipped", why)
    return needed


def check_and_publish(as_of: dt.date, dag_id: str, run_id: str) -> dict:
    """Validate the marts built in marts_build; publish them all together, or none on a critical failure."""
    from crm_pipeline.quality.gate import QualityGateError, assert_own_build, check_marts, publish

    cfg = settings()
    target = parse_url(cfg.warehouse_url)
    with writer_lock(target), Warehouse(target) as wh:
        assert_own_build(wh, as_of, run_id)
        validation = check_marts(wh, as_of, dag_id=dag_id, run_id=run_id, url=cfg.warehouse_url)
        alerts = _alert_on(wh, validation, as_of, dag_id, run_id, ["check:marts."], {})
        failed = validation.critical_failures
        if failed:
            checks = sorted({f"{r.suite}/{r.expectation}" for r in failed})
            raise QualityGateError(
                f"quality gate: {len(failed)} critical mart check(s) failed ({', '.join(checks)}); "
                f"nothing published, marts keep their previous version; report: {validation.report}",
                validation,
            )
        published = publish(wh, as_of, run_id)
        from crm_pipeline.alerts.business import reconcile_day

        business = reconcile_day(wh, as_of, run_id, digest=cfg.business_alert_digest)
    summary = {"checks": len(validation.results), "warnings": len(validation.warnings), "published": published}
    summary["alerts"] = alerts
    summary["business_alerts"] = business
    log.info("mart checks and publish: %s", summary)
    return summary


# The open task-failure alerts of each warehouse, read once per process: `make run` runs every task
# in one process, and each task's success would otherwise open the warehouse to find nothing open.
# A failure recorded in this process joins the set; one opened by another process meanwhile is
# resolved by the next process to see that task succeed.
_OPEN_TASK_ALERTS: dict[str, set[str]] = {}


def _open_task_alerts(wh, url: str) -> set[str]:
    if url not in _OPEN_TASK_ALERTS:
        rows = (
            wh.fetchall("select fingerprint from audit.alerts where status = 'open' and fingerprint like 'task:%%'")
            if wh.table_exists("audit", "alerts")
            else []
        )
        _OPEN_TASK_ALERTS[url] = {fp for (fp,) in rows}
    return _OPEN_TASK_ALERTS[url]


def record_task_alert(problem) -> None:
    from crm_pipeline.alerts import reconcile

    url = settings().warehouse_url
    target = parse_url(url)
    with writer_lock(target), Warehouse(target) as wh:
        ensure_tables(wh, [])
        reconcile(wh, problem.fingerprint, [problem], resolve=False)
        _open_task_alerts(wh, url).add(problem.fingerprint)


def resolve_task_alert(dag_id: str, task_id: str) -> None:
    from crm_pipeline.alerts import reconcile

    url = settings().warehouse_url
    fingerprint = f"task:{dag_id}.{task_id}"
    if url in _OPEN_TASK_ALERTS and fingerprint not in _OPEN_TASK_ALERTS[url]:
        return
    target = parse_url(url)
    if target.kind == "duckdb" and not target.path.exists():
        return
    with writer_lock(target), Warehouse(target) as wh:
        if fingerprint in _open_task_alerts(wh, url):
            reconcile(wh, fingerprint, [])
            _OPEN_TASK_ALERTS[url].discard(fingerprint)
