"""The publish's content digest (quality.gate.content_md5), on both engines: what audit.publishes stores
for each mart and what the drills and the incremental tests compare. Equal for the same rows in any
order; different when a row changes, is added or is repeated."""

from __future__ import annotations

import pytest

from crm_pipeline.load.warehouse import Warehouse
from crm_pipeline.quality.gate import content_md5

ROWS = [(1, "a", 1.5, None), (2, "b", 0.0, "2026-11-22"), (3, "a", -2.25, "2026-11-21")]


def _digest(wh: Warehouse, rows: list[tuple]) -> tuple[int, str]:
    wh.execute("drop table if exists digest_rows")
    wh.execute("create table digest_rows (id integer, name varchar(10), amount double precision, day date)")
    for row in rows:
        wh.execute("insert into digest_rows values (%s, %s, %s, %s)", row)
    return content_md5(wh, "digest_rows")


@pytest.mark.parametrize("warehouse_url", ["duckdb", "postgres"], indirect=True)
def test_the_digest_sees_content_not_order(warehouse_url):
    with Warehouse.from_url(warehouse_url) as wh:
        base = _digest(wh, ROWS)
        assert base[0] == 3 and len(base[1]) == 32
        assert _digest(wh, ROWS[::-1]) == base  # order
        assert _digest(wh, [ROWS[1], ROWS[2], ROWS[0]]) == base
        changed = [ROWS[0], (2, "b", 0.0, "2026-11-23"), ROWS[2]]  # one field of one row
        swapped = [(1, "a", -2.25, None), ROWS[1], (3, "a", 1.5, "2026-11-21")]  # values moved between rows
        others = {
            "changed": _digest(wh, changed),
            "swapped": _digest(wh, swapped),
            "repeated": _digest(wh, [*ROWS, ROWS[0]]),
            "dropped": _digest(wh, ROWS[:2]),
            "empty": _digest(wh, []),
        }
        assert others["empty"][0] == 0 and others["repeated"][0] == 4
        digests = [base[1], *(d for _, d in others.values())]
        assert len(set(digests)) == len(digests), others
        # A row twice more is not the table as it was (a digest by xor, or by set, would say it is).
        assert _digest(wh, [*ROWS, ROWS[0], ROWS[0]])[1] not in digests
