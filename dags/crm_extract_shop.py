"""
# crm_extract_shop

An Airflow DAG built by `_common.extract.extract_dag` (the shape all extract DAGs share).
Loads the shop entities (`customers`, `orders`, `order_items`, `refunds`,
`reviews`) for one as-of day into `raw.*`:

* every new or changed file under `$CRM_LANDING_DIR/<entity>/` is one batch;
* when `CRM_SHOP_DB_URL` is set, each entity is also read from that database,
  incrementally on its change column with a lookback.

Rejected records go to `audit.quarantine`; every batch gets an
`audit.load_batches` row. Rerunning a day loads nothing twice. Updates the
`crm://raw/shop` asset, which schedules `crm_transform`.
"""

from _common import RAW_SHOP
from _common.extract import extract_dag

crm_extract_shop = extract_dag(
    "crm_extract_shop",
    __doc__,
    ["customers", "orders", "order_items", "refunds", "reviews"],
    RAW_SHOP,
    sql_source=True,
)
