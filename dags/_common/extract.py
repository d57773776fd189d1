"""The shape every extract DAG shares: prepare, load each entity's file drops, extra extracts, then the
quality gate, whose success publishes the asset."""

from __future__ import annotations

from airflow.sdk import Asset, dag, task

from _common import DEFAULT_ARGS, START_DATE, TAGS, daily_timetable


def extract_dag(
    dag_id: str, doc: str, entities: list[str], asset: Asset, *, sql_source: bool = False, api_source: bool = False
):
    """Build the extract DAG for one source system (entities from the input contract, crm_pipeline.load.specs)."""

    @dag(
        dag_id=dag_id,
        schedule=daily_timetable(),
        start_date=START_DATE,
        catchup=False,
        max_active_runs=1,
        tags=[*TAGS, "extract", dag_id.removeprefix("crm_extract_")],
        default_args=DEFAULT_ARGS,
        params={"as_of_date": None},
        doc_md=doc,
    )
    def build():
        @task
        def prepare(params=None, logical_date=None) -> list[str]:
            """Create what the warehouse lacks; return the entities this run reads from the shop database
            (none without CRM_SHOP_DB_URL, or in a DAG with no SQL source): `extract_sql` maps over them."""
            from crm_pipeline.pipeline import prepare_warehouse, resolve_as_of, sql_entities

            resolve_as_of(params, logical_date)  # fail early, and clearly, without a date
            prepare_warehouse()
            return sql_entities(entities) if sql_source else []

        @task(max_active_tis_per_dag=1)
        def load_files(entity: str, params=None, logical_date=None) -> list[dict]:
            from crm_pipeline.pipeline import load_entity_files, resolve_as_of

            return load_entity_files(entity, resolve_as_of(params, logical_date))

        # none_failed: a SQL extract mapped over no entity is skipped, and the gate still runs.
        @task(outlets=[asset], multiple_outputs=False, trigger_rule="none_failed")
        def check_raw(*groups, params=None, logical_date=None, dag_run=None) -> dict:
            """The quality gate: GX suites on this run's batches; a critical failure holds the batch and fails here.
            Its success emits the source's asset (the transform's trigger): a failed gate emits nothing."""
            from airflow.sdk.exceptions import AirflowFailException

            from crm_pipeline.pipeline import gate_raw, resolve_as_of
            from crm_pipeline.quality.gate import QualityGateError

            # Index by position: iterating a lazy XCom sequence probes one past its end.
            batches = []
            for group in groups:
                for i in range(len(group)):
                    item = group[i]
                    batches.extend(item if isinstance(item, list) else [item])
            batches = [b for b in batches if b.get("batch_id")]
            try:
                checks = gate_raw(batches, resolve_as_of(params, logical_date), dag_id, dag_run.run_id)
            except QualityGateError as exc:  # a data problem: retrying cannot help; alerted already
                raise AirflowFailException(str(exc)) from exc
            return {
                "batches": len(batches),
                "loaded_rows": sum(b["loaded_rows"] for b in batches),
                "quarantined_rows": sum(b["quarantined_rows"] for b in batches),
                "checks": checks["checks"],
                "failed_checks": checks["failed"],
            }

        ready = prepare()
        files = load_files.expand(entity=entities)
        ready >> files
        groups = [files]
        if sql_source:

            @task(max_active_tis_per_dag=1, multiple_outputs=False)
            def extract_sql(entity: str, params=None, logical_date=None) -> dict:
                from crm_pipeline.pipeline import extract_sql_entity, resolve_as_of

                return extract_sql_entity(entity, resolve_as_of(params, logical_date))

            groups.append(extract_sql.expand(entity=ready))
        if api_source:

            @task(max_active_tis_per_dag=1)
            def extract_api(params=None, logical_date=None) -> list[dict]:
                from airflow.sdk.exceptions import AirflowFailException

                from crm_pipeline.pipeline import extract_forum_api, resolve_as_of
                from crm_pipeline.sources.discourse import MalformedPageError

                try:
                    return extract_forum_api(resolve_as_of(params, logical_date))
                except MalformedPageError as exc:  # the API sent garbage: retrying cannot help
                    raise AirflowFailException(str(exc)) from exc

            api = extract_api()
            ready >> api
            groups.append(api)
        check_raw(*groups)

    return build()
