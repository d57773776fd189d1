"""
# crm_transform

Builds the marts for one as-of day: applies new deletion requests
(`crm_pipeline.privacy`: the person leaves raw, scores and marts), scores
new or edited texts for
negative feedback (`scoring.text_scores`), runs dbt (`dbt seed`, then
`dbt build`: staging, intermediate and marts into `marts_build`, with their
data tests), checks the built marts with the `marts.*` GX suites,
and publishes every mart to `marts` in one transaction. A failing dbt test
or critical check publishes nothing: BI keeps reading the last good
version. A failing dbt test fails the run without retries: it is a data
problem, not a transient one. Publishing refuses a `marts_build` that is not
this run's finished build (`audit.mart_builds`), so clearing only
`check_and_publish` after a failed build publishes nothing.

Scheduled by the raw assets the extract DAGs update. An asset-triggered run
has no logical date of its own: it takes the as-of day from the extract run
that triggered it, or from the `as_of_date` param. It publishes once per
as-of day (crm_pipeline.publish_window): `wait_for_sources` holds the build
until every expected source has reported for the day or the cut-off
(CRM_PUBLISH_CUTOFF) has passed, and `needs_publish` skips the build and the
publish when the marts already hold the day and nothing arrived since, so
only a late source re-publishes a day.
"""

from __future__ import annotations

from airflow.sdk import PokeReturnValue, dag, task

from _common import DEFAULT_ARGS, MARTS, RAW_ASSETS, SETTINGS, START_DATE, TAGS


@dag(
    # Any source's new data rebuilds the marts; a brand may have only some sources.
    schedule=(RAW_ASSETS[0] | RAW_ASSETS[1] | RAW_ASSETS[2] | RAW_ASSETS[3]),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    tags=[*TAGS, "transform", "dbt"],
    default_args=DEFAULT_ARGS,
    params={"as_of_date": None},
    doc_md=__doc__,
)
def crm_transform():
    @task
    def as_of_day(params=None, logical_date=None, triggering_asset_events=None) -> str:
        from crm_pipeline.pipeline import resolve_as_of

        if logical_date is None and triggering_asset_events and not (params or {}).get("as_of_date"):
            for events in triggering_asset_events.values():
                for event in events:
                    run = getattr(event, "source_dag_run", None)
                    if run is not None and run.logical_date is not None:
                        logical_date = run.logical_date
        return resolve_as_of(params, logical_date).isoformat()

    @task
    def apply_deletion_requests(as_of: str) -> str:
        """Erase the people whose deletion requests landed (crm_pipeline.privacy), before anything is built."""
        from crm_pipeline.config import parse_date
        from crm_pipeline.pipeline import apply_deletion_requests

        apply_deletion_requests(parse_date(as_of))
        return as_of

    @task.sensor(poke_interval=SETTINGS.publish_poke_seconds, timeout=2 * 86400, mode="reschedule")
    def wait_for_sources(as_of: str) -> PokeReturnValue:
        """Build once every expected source reported for the day, or at the cut-off (crm_pipeline.publish_window)."""
        from crm_pipeline.config import parse_date
        from crm_pipeline.pipeline import sources_ready

        return PokeReturnValue(is_done=sources_ready(parse_date(as_of)), xcom_value=as_of)

    @task
    def score_texts(as_of: str) -> str:
        from crm_pipeline.pipeline import score_texts

        score_texts()
        return as_of

    @task.short_circuit
    def needs_publish(as_of: str) -> str | bool:
        """Skip the build and the publish when the marts hold this day and nothing arrived since."""
        from crm_pipeline.config import parse_date
        from crm_pipeline.pipeline import publish_needed

        return as_of if publish_needed(parse_date(as_of)) else False

    @task
    def dbt_build(as_of: str, dag_run=None) -> str:
        from airflow.sdk.exceptions import AirflowFailException

        from crm_pipeline.config import parse_date
        from crm_pipeline.pipeline import build_marts
        from crm_pipeline.transform.dbt import DbtError

        try:
            build_marts(parse_date(as_of), dag_run.run_id)
        except DbtError as exc:
            if exc.failures:  # a model or test failed on the data: retrying cannot help
                raise AirflowFailException(str(exc)) from exc
            raise  # no node failed (e.g. the warehouse was unreachable): let Airflow retry
        return as_of

    @task(outlets=[MARTS], multiple_outputs=False)
    def check_and_publish(as_of: str, dag_run=None) -> dict:
        """Write-audit-publish: GX suites on marts_build, then every mart to `marts` in one transaction."""
        from airflow.sdk.exceptions import AirflowFailException

        from crm_pipeline.config import parse_date
        from crm_pipeline.pipeline import check_and_publish
        from crm_pipeline.quality.gate import QualityGateError, StaleBuildError

        try:
            return check_and_publish(parse_date(as_of), "crm_transform", dag_run.run_id)
        except (QualityGateError, StaleBuildError) as exc:  # nothing published; retrying cannot help
            raise AirflowFailException(str(exc)) from exc

    day = needs_publish(score_texts(apply_deletion_requests(wait_for_sources(as_of_day()))))
    check_and_publish(dbt_build(day))


crm_transform()
