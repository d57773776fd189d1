"""Community tier history: `marts.fct_tier_changes` and `marts.dim_customer_tier_history`.

A person's tier on a day is a function of the orders up to that day
(`int_customers__tiered`: qualified, then held through the seed's grace), and
`marts.dim_customers` carries both the as-of day's tier and the day before's
(`previous_tier`). So a publish for day D knows D's changes exactly: every
person whose two tiers differ. They replace whatever D's changes were before,
and the history (one row per held tier, valid from one change to the next) is
rebuilt from all the changes. A day run twice, or days run out of order or at
once, give the same history as the days run in order; a past day's changes are
(re)built by running that day (`make backfill`). A day never run has no
changes recorded: the next change row's `from_tier` then shows where the person
stood the day before it.
"""

from __future__ import annotations

import datetime as dt

from crm_pipeline.load.warehouse import Warehouse

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
    """Record `as_of`'s tier changes from the published marts and rebuild the history (call inside the publish)."""
    ensure_tables(wh)
    # Before tiers had a grace period, a person's first appearance was an event from null: not a change.
    wh.execute(f"delete from {CHANGES} where change_date = %s or from_tier is null", (as_of,))
    wh.execute(
        f"insert into {CHANGES} select customer_key, %s, previous_tier, community_tier from marts.dim_customers "
        "where previous_tier != community_tier",
        (as_of,),
    )
    changes = wh.fetchone(f"select count(*) from {CHANGES} where change_date = %s", (as_of,))[0]
    # Each change opens a row that the person's next change closes; before the first, the tier it left, since
    # before the recorded history (valid_from null).
    wh.execute(f"delete from {HISTORY}")
    wh.execute(
        f"insert into {HISTORY} "
        "select customer_key, to_tier, change_date, next_change, next_change is null from ("
        "  select customer_key, to_tier, change_date, "
        "    lead(change_date) over (partition by customer_key order by change_date) as next_change "
        f"  from {CHANGES}) as c "
        "union all "
        "select customer_key, from_tier, null, change_date, false from ("
        "  select customer_key, from_tier, change_date, "
        "    row_number() over (partition by customer_key order by change_date) as nth "
        f"  from {CHANGES}) as c where nth = 1"
    )
    return {"changes": changes, "history_rows": _count(wh, HISTORY)}
