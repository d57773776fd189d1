"""Community tier history, kept across runs: `marts.dim_customer_tier_history` and `marts.fct_tier_changes`.

After each publish, the tiers in `marts.dim_customers` are compared with the
current history rows. A person whose tier changed gets their current row
closed (`valid_to` = the as-of day, exclusive) and a new current row from that
day, plus an event row (from_tier -> to_tier). A person new to the marts gets
a first row and an event from null; a person gone from the marts has their row
closed. Running again with no change adds nothing. History only moves
forward: a run for a day before the latest change recorded leaves it alone
(the marts of a backfilled day are still published).
"""

from __future__ import annotations

import datetime as dt
import logging

from crm_pipeline.load.warehouse import Warehouse

log = logging.getLogger(__name__)
HISTORY = "marts.dim_customer_tier_history"
CHANGES = "marts.fct_tier_changes"


def ensure_tables(wh: Warehouse) -> None:
    wh.create_table(
        HISTORY,
        [("customer_key", "text"), ("community_tier", "text"), ("valid_from", "date"), ("valid_to", "date"),
         ("is_current", "bool")],
    )  # fmt: skip
    wh.create_table(
        CHANGES, [("customer_key", "text"), ("change_date", "date"), ("from_tier", "text"), ("to_tier", "text")]
    )


def _count(wh: Warehouse, table: str) -> int:
    return wh.fetchone(f"select count(*) from {table}")[0]


def update(wh: Warehouse, as_of: dt.date) -> dict:
    """Apply the published tiers as of `as_of` (set-based SQL; call inside the publish transaction)."""
    ensure_tables(wh)
    latest = wh.fetchone(f"select max(valid_from) from {HISTORY}")[0]
    if latest is not None and as_of < latest:
        log.info("tier history not updated: %s is before the latest recorded change %s", as_of, latest)
        return {"skipped": True, "rows_added": 0, "changes_added": 0}
    rows0, changes0 = _count(wh, HISTORY), _count(wh, CHANGES)
    same = "h.customer_key = d.customer_key"
    # A rerun of the same day that corrects a tier: fix today's row and event in place.
    wh.execute(
        f"update {HISTORY} as h set community_tier = d.community_tier from marts.dim_customers as d "
        f"where {same} and h.is_current and h.valid_from = %s and h.community_tier != d.community_tier",
        (as_of,),
    )
    wh.execute(
        f"update {CHANGES} as h set to_tier = d.community_tier from marts.dim_customers as d "
        f"where {same} and h.change_date = %s and h.to_tier != d.community_tier",
        (as_of,),
    )
    # Changed tier: an event, then the old row closes.
    wh.execute(
        f"insert into {CHANGES} select h.customer_key, %s, h.community_tier, d.community_tier "
        f"from {HISTORY} as h inner join marts.dim_customers as d on {same} "
        "where h.is_current and h.valid_from < %s and d.community_tier != h.community_tier",
        (as_of, as_of),
    )
    wh.execute(
        f"update {HISTORY} as h set valid_to = %s, is_current = false "
        "where h.is_current and h.valid_from < %s and not exists ("
        "select 1 from marts.dim_customers as d "
        f"where {same} and d.community_tier = h.community_tier)",
        (as_of, as_of),
    )
    # First appearance: an event from nothing.
    wh.execute(
        f"insert into {CHANGES} select d.customer_key, %s, null, d.community_tier from marts.dim_customers as d "
        f"where not exists (select 1 from {HISTORY} as h where {same} and h.is_current) "
        f"and not exists (select 1 from {CHANGES} as h where {same} and h.change_date = %s)",
        (as_of, as_of),
    )
    # Everyone without a current row gets one from today.
    wh.execute(
        f"insert into {HISTORY} select d.customer_key, d.community_tier, %s, null, true "
        f"from marts.dim_customers as d where not exists (select 1 from {HISTORY} as h where {same} and h.is_current)",
        (as_of,),
    )
    return {
        "skipped": False,
        "rows_added": _count(wh, HISTORY) - rows0,
        "changes_added": _count(wh, CHANGES) - changes0,
    }
