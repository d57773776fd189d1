"""One chat fixture in five encodings, plus WeCom archives, staged identically on DuckDB and PostgreSQL."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json

import pytest

from crm_pipeline.load.loader import ensure_tables, load_landing, write_pseudonym_key
from crm_pipeline.load.warehouse import Warehouse
from crm_pipeline.transform.dbt import run_dbt

pytestmark = pytest.mark.e2e
AS_OF = dt.date(2026, 11, 22)
ENCODINGS = ["utf-8", "utf-8-sig", "gbk", "gb18030", "utf-16"]
HEADER = ["msg_id", "group_id", "sender_id", "sent_at", "msg_type", "content", "group_name", "sender_name"]
# Text every one of the five encodings can hold (GBK has no emoji).
ROWS = [
    ["1", "g1", "wxid_a", "2026-11-20 09:00:00", "system", '"wxid_a"加入了群聊', "粉丝群", "阿明"],
    ["2", "g1", "wxid_a", "2026-11-20 09:01:00", "text", "质量太差了，用了三天就坏", "粉丝群", "阿明"],
    ["3", "g1", "wxid_b", "2026-11-20 09:02:00", "text", '質量很好, "推薦"\n第二行', "粉丝群", "小美"],
    ["4", "g1", "wxid_b", "2026-11-20T01:03:00Z", "image", "[image]", "粉丝群", "小美"],
    ["5", "g1", "wxid_c", "2026-11-21 23:59:59", "system", '"wxid_c"退出了群聊', "粉丝群", "老王"],
    ["6", "g1", "wxid_c", "2026-11-23 00:00:00", "text", "after the as-of day", "粉丝群", "老王"],
]
LONG = "长" * 100_000


def _csv(prefix: str) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(HEADER)
    for row in ROWS:
        w.writerow([f"{prefix}-{row[0]}", *row[1:]])
    return buf.getvalue()


def _wecom_lines() -> str:
    base = {"action": "send", "from": "wmX", "tolist": ["wmY"], "roomid": "wr1"}
    records = [
        # 2026-11-21 02:00:00 UTC = 1763690400000 ms
        {**base, "msgid": "w1", "msgtime": 1763690400000, "msgtype": "text", "text": {"content": "emoji 😀🎉 ok"}},
        {**base, "msgid": "w2", "msgtime": 1763690401000, "msgtype": "text", "text": {"content": "oops, wrong group"}},
        {
            **base,
            "msgid": "w3",
            "msgtime": 1763690402000,
            "action": "recall",
            "msgtype": "revoke",
            "revoke": {"pre_msgid": "w2"},
        },
        {**base, "msgid": "w4", "msgtime": 1763690403000, "msgtype": "text", "text": {"content": "nul\x00here\x00"}},
        {**base, "msgid": "w5", "msgtime": 1763690404000, "msgtype": "text", "text": {"content": LONG}},
        {**base, "msgid": "w6", "msgtime": 1763690405000, "msgtype": "redpacket", "redpacket": {"wish": "大吉大利"}},
        {"msgid": "w7", "action": "switch", "time": 1763690406000, "user": "wmX"},
    ]
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)


def test_five_encodings_and_wecom_stage_identically(crm_env):
    landing = crm_env["landing"]
    folder = landing / "chat_messages"
    folder.mkdir()
    for enc in ENCODINGS:
        (folder / f"backup_{enc}.csv").write_bytes(_csv(enc).encode(enc))
    (folder / "wecom_archive.jsonl").write_text(_wecom_lines(), encoding="utf-8")

    with Warehouse.from_url(crm_env["url"]) as wh:
        ensure_tables(wh)
        write_pseudonym_key(wh, "k")
        results = {r.source: r for r in load_landing(wh, "chat_messages", landing, AS_OF, crm_env["tz"])}
        assert {s: r.encoding for s, r in results.items() if s.endswith(".csv")} == {
            "chat_messages/backup_utf-8.csv": "utf-8",
            "chat_messages/backup_utf-8-sig.csv": "utf-8-sig",
            "chat_messages/backup_gbk.csv": "gb18030",
            "chat_messages/backup_gb18030.csv": "gb18030",
            "chat_messages/backup_utf-16.csv": "utf-16",
        }
        wecom = results["chat_messages/wecom_archive.jsonl"]
        assert (wecom.extracted_rows, wecom.loaded_rows, wecom.quarantined_rows) == (7, 6, 1)
        assert wecom.nul_chars_removed == 2
        reason = wh.fetchone("select reason from audit.quarantine where entity = 'chat_messages'")[0]
        assert reason == "cannot map record: WeCom 'switch' records are account switches, not chat messages"

    run_dbt(["run", "--select", "stg_chat__messages", "stg_chat__membership_events"], AS_OF, url=crm_env["url"])

    with Warehouse.from_url(crm_env["url"]) as wh:
        staged = wh.fetchall(
            "select msg_id, group_id, sender_id, sent_at, msg_type, message_text, group_name, is_recalled, "
            "is_counted_text, membership_event from staging.stg_chat__messages"
        )
        by_encoding: dict[str, list] = {}
        for row in staged:
            prefix, _, msg = row[0].rpartition("-")
            if prefix in ENCODINGS:
                by_encoding.setdefault(prefix, []).append((msg, *row[1:]))
        reference = sorted(by_encoding["utf-8"])
        assert [m for m, *_ in reference] == ["1", "2", "3", "4", "5"]  # 6 is after the as-of day
        for enc in ENCODINGS:
            assert sorted(by_encoding[enc]) == reference, enc
        ref = {m: rest for m, *rest in reference}
        assert ref["3"][4] == '質量很好, "推薦"\n第二行'
        assert ref["4"][2] == dt.datetime(2026, 11, 20, 1, 3)  # the Z offset kept: 01:03 UTC
        assert ref["1"][-1] == "join" and ref["5"][-1] == "leave"

        wecom = {r[0]: r for r in staged if r[0].startswith("w")}
        assert wecom["w1"][5].encode("utf-8") == "emoji 😀🎉 ok".encode()
        assert wecom["w2"][7] is True and wecom["w2"][8] is False  # recalled: not counted as text
        assert wecom["w3"][-1] == "recall"
        assert wecom["w4"][5] == "nulhere"
        assert wecom["w5"][5] == LONG
        assert wecom["w6"][4:6] == ("red_packet", "[红包]大吉大利")
        events = wh.fetchall(
            "select event_type, count(*) from staging.stg_chat__membership_events group by 1 order by 1"
        )
        assert events == [("join", 5), ("leave", 5), ("recall", 1)]
