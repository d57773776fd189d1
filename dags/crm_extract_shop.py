"""
# crm_extract_shop

Loads the shop entities (`customers`, `orders`, `order_items`, `refunds`,
`reviews`) for one as-of day into `raw.*`:

* every new or changed file under `$CRM_LANDING_DIR/<entity>/` is one batch;
* when `CRM_SHOP_DB_URL` is set, each entity is also read from that database,
  incrementally on its change column with a lookback.

Rejected records go to `audit.quarantine`; every batch gets an
`audit.load_batches` row. Rerunning a day loads nothing twice. Updates the
`crm://raw/shop` asset, which schedules `crm_transform`.
"""

from __future__ import annotations

from airflow.sdk import dag, task

from _common import DEFAULT_ARGS, RAW_SHOP, START_DATE, TAGS, daily_timetable

SHOP_ENTITIES = ["customers", "orders", "order_items", "refunds", "reviews"]


@dag(
    schedule=daily_timetable(),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    tags=[*TAGS, "extract", "shop"],
    default_args=DEFAULT_ARGS,
    params={"as_of_date": None},
    doc_md=__doc__,
)
def crm_extract_shop():
    @task
    def prepare(params=None, logical_date=None) -> str:
        from crm_pipeline.pipeline import prepare_warehouse, resolve_as_of

        resolve_as_of(params, logical_date)  # fail early, and clearly, without a date
        return prepare_warehouse()

    @task(max_active_tis_per_dag=1)
    def load_files(entity: str, params=None, logical_date=None) -> list[dict]:
        from crm_pipeline.pipeline import load_entity_files, resolve_as_of

        return load_entity_files(entity, resolve_as_of(params, logical_date))

    @task(max_active_tis_per_dag=1)
    def extract_sql(entity: str, params=None, logical_date=None) -> dict:
        from crm_pipeline.pipeline import extract_sql_entity, resolve_as_of

        return extract_sql_entity(entity, resolve_as_of(params, logical_date))

    @task(outlets=[RAW_SHOP])
    def publish_raw(files: list, sql: list) -> dict:
        # Index by position: iterating a lazy XCom sequence probes one past its end.
        batches = [b for i in range(len(files)) for b in files[i]]
        batches += [sql[i] for i in range(len(sql)) if sql[i].get("batch_id")]
        return {
            "batches": len(batches),
            "loaded_rows": sum(b["loaded_rows"] for b in batches),
            "quarantined_rows": sum(b["quarantined_rows"] for b in batches),
        }

    ready = prepare()
    files = load_files.expand(entity=SHOP_ENTITIES)
    sql = extract_sql.expand(entity=SHOP_ENTITIES)
    ready >> [files, sql]
    publish_raw(files, sql)


crm_extract_shop()
