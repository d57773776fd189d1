"""The sample's real shapes (`make run`'s sample): WeChat backup, QQ export, rosters, places, malformed rows.

Loaded for real (DuckDB): exactly the rows the generator broke are quarantined, each with the reason it
wrote down, and the real-shaped exports load without a quarantined row.
"""

from __future__ import annotations

import csv
import datetime as dt
from zoneinfo import ZoneInfo

from crm_pipeline.load.loader import ensure_tables, load_landing
from crm_pipeline.load.specs import SPECS
from crm_pipeline.load.warehouse import Warehouse
from crm_pipeline.sample.generate import generate

END = dt.date(2026, 11, 22)


def test_make_runs_sample_quarantines_exactly_what_was_broken(tmp_path):
    meta = generate(tmp_path / "landing", tmp_path / "truth", customers=150, seed=4, end_date=END, real_shapes=True)
    assert meta["real_shapes"]["malformed_rows"] == 14
    with (tmp_path / "truth" / "quarantine_expected.csv").open(encoding="utf-8") as fh:
        expected = sorted((r["entity"], r["reason_starts_with"]) for r in csv.DictReader(fh))
    with Warehouse.from_url(f"duckdb:///{tmp_path}/w.duckdb") as wh:
        ensure_tables(wh)
        for entity in SPECS:
            load_landing(wh, entity, tmp_path / "landing", END, ZoneInfo("Asia/Shanghai"))
        got = wh.fetchall("select entity, reason, source from audit.quarantine order by 1, 2")
        shapes = dict(
            wh.fetchall(
                "select _source, count(*) from raw.chat_messages where _source not like '%chat_messages_0%' group by 1"
            )
        )
        operator = wh.fetchone("select count(*) from raw.chat_messages where sender_id = 'operator:self'")[0]
        system = wh.fetchone("select count(*) from raw.chat_messages where sender_id = 'system'")[0]
        roster = wh.fetchone("select count(*), count(phone) from raw.chat_members")
        places = wh.fetchone("select count(*), count(province) from raw.chat_groups")
    assert len(got) == len(expected) == 14
    for (entity, reason, source), (want_entity, want_reason) in zip(
        sorted(got, key=lambda r: (r[0], r[1])), sorted(expected), strict=True
    ):
        assert entity == want_entity and reason.startswith(want_reason), (entity, reason, want_reason)
        assert "wechat_backup" not in source and "qq_export" not in source
    assert set(shapes) == {"chat_messages/wechat_backup_shenzhen.csv", "chat_messages/qq_export.txt"}
    assert shapes["chat_messages/wechat_backup_shenzhen.csv"] == meta["real_shapes"]["wechat_backup_rows"]
    assert operator > 5 and system >= 20  # the exporter's own messages; joins and the recall notice
    assert roster == (35, 35) and places[0] == 7 and places[1] >= 4
