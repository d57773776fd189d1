"""The raw suites, generated from the load specs (crm_pipeline.load.specs): the input contract is written once.

For every entity, `raw.<entity>.critical` holds:

- ids present: every required text field named `*_id` or `*_ref`;
- keys unique per version: the key, with the columns that make a later version of it (`VERSIONS`);
- no event time in the future: the first required timestamp at most `latest_allowed`;
- every enum's values, every amount at least 0, every int within its spec's bounds.

`raw.<entity>.warning` holds the row count against the last batches (`min_rows`, `max_rows`) and
freshness (the event time's newest value after `fresh_after`). The loader quarantines a record whose
value breaks its field's type, enum or bounds; these suites check each loaded batch as a whole, at
the boundary, and hold it out of staging when a critical one fails (crm_pipeline.quality.gate).
"""

from __future__ import annotations

from crm_pipeline.load.specs import SPECS, EntitySpec

# Columns beside the key that make a later version of it, so (key, these) is unique in a batch: an
# order's status moves, a post is edited or deleted, a customer's profile is updated.
VERSIONS = {
    "customers": ("updated_at",),
    "orders": ("status", "updated_at"),
    "forum_posts": ("updated_at", "is_deleted"),
}
# Where duplicate keys in a batch are not a critical fault: an attendance export may list a
# registration twice (a warning); a roster lists a member once per join and leave (staging keeps
# the latest), so no check.
DUPLICATES = {"events": "warning", "chat_members": None}
# Reference lists whose size says nothing about a delivery's health: no row-count check.
NO_ROW_COUNT = {"chat_members", "chat_groups"}


def _e(kind: str, **kwargs) -> dict:
    return {"type": f"expect_{kind}", "kwargs": kwargs}


def _parameter(name: str) -> dict:
    return {"$PARAMETER": name}


def event_time(spec: EntitySpec) -> str | None:
    """The entity's own time: its first required timestamp (an order's ordered_at)."""
    return next((f.name for f in spec.fields if f.required and f.type == "timestamp"), None)


def suites(spec: EntitySpec) -> dict[str, dict]:
    """severity -> the GX suite (name and expectations) for one entity's raw batches."""
    critical = [
        _e("column_values_to_not_be_null", column=f.name)
        for f in spec.fields
        if f.required and f.type == "text" and f.name.endswith(("_id", "_ref"))
    ]
    warning = [] if spec.name in NO_ROW_COUNT else [
        _e("table_row_count_to_be_between", min_value=_parameter("min_rows"), max_value=_parameter("max_rows"))
    ]  # fmt: skip
    unique = [*spec.key, *VERSIONS.get(spec.name, ())]
    duplicates = DUPLICATES.get(spec.name, "critical")
    if duplicates:
        check = (
            _e("column_values_to_be_unique", column=unique[0])
            if len(unique) == 1
            else _e("compound_columns_to_be_unique", column_list=unique)
        )
        (critical if duplicates == "critical" else warning).append(check)
    if when := event_time(spec):
        critical.append(_e("column_max_to_be_between", column=when, max_value=_parameter("latest_allowed")))
        warning.append(_e("column_max_to_be_between", column=when, min_value=_parameter("fresh_after")))
    for f in spec.fields:
        if f.enum:
            critical.append(_e("column_values_to_be_in_set", column=f.name, value_set=list(f.enum)))
        elif f.type == "amount":
            critical.append(_e("column_values_to_be_between", column=f.name, min_value=0, max_value=None))
        elif f.min_value is not None or f.max_value is not None:
            critical.append(
                _e("column_values_to_be_between", column=f.name, min_value=f.min_value, max_value=f.max_value)
            )
    out = {"critical": critical, "warning": warning}
    return {s: {"name": f"raw.{spec.name}.{s}", "expectations": e} for s, e in out.items() if e}


# Deletion requests are not gated: the erasure job (crm_pipeline.privacy) applies each one it can read.
GATED = tuple(e for e in SPECS if e != "deletion_requests")


def raw_suite(relation: str) -> dict[str, dict] | None:
    """The generated suites of `raw.<entity>`, or None for a relation that is not a gated raw entity."""
    schema, _, entity = relation.partition(".")
    return suites(SPECS[entity]) if schema == "raw" and entity in GATED else None
