"""Real chat exports, awkward parts included, staged on DuckDB and PostgreSQL (issue 21, item 4).

Fixtures shaped exactly like what the tools write:
- a desktop WeChat backup CSV (WeChatMsg / MemoTrace columns, epoch seconds,
  numeric types): system messages with no sender (a join by QR code, an
  invitation, a recall notice in revokemsg XML naming the recalled
  MsgSvrID), the exporter's own messages (IsSender=1, no Sender), a nickname
  change, a multi-line message, an image with no text, and a last line cut
  off mid-row;
- a QQ message-manager text export: a group title in 【】, a nickname change,
  a multi-line message, [图片], a system message, and a header cut off at
  the end;
- a roster (chat_members) and a group list (chat_groups): neither export
  carries a unionid, so the roster is what links senders to buyers.
"""

from __future__ import annotations

import datetime as dt

import pytest

from crm_pipeline.load.loader import ensure_tables, load_landing, write_pseudonym_key
from crm_pipeline.load.warehouse import Warehouse
from crm_pipeline.transform.dbt import run_dbt

pytestmark = pytest.mark.e2e
AS_OF = dt.date(2026, 11, 22)
ROOM = "44556677@chatroom"
# 2026-11-20 09:00:00 Asia/Shanghai = 2026-11-20 01:00:00 UTC = 1795136400 (epoch seconds)
T0 = 1795136400
WECHAT_HEADER = (
    "localId,TalkerId,MsgSvrID,Type,SubType,IsSender,CreateTime,Status,StrContent,StrTime,Remark,NickName,Sender"
)
WECHAT_ROWS = [
    # system: a join by QR code, no sender
    f'1,{ROOM},7001,10000,0,0,{T0},2,"""花花""通过扫描""小美""分享的二维码加入群聊",2026-11-20 09:00:00,,,',
    # system: an invitation by the exporter, no sender
    f'2,{ROOM},7002,10000,0,0,{T0 + 60},2,"你邀请""阿明""加入了群聊",2026-11-20 09:01:00,,,',
    f"3,{ROOM},7003,1,0,0,{T0 + 120},2,这个充电器用了两天就发烫,2026-11-20 09:02:00,,花花,wxid_hua",
    # the exporter's own message: IsSender=1 and no Sender
    f"4,{ROOM},7004,1,0,1,{T0 + 180},2,亲，麻烦发一下订单号,2026-11-20 09:03:00,,,",
    # a nickname change: the same Sender, a new NickName
    f'5,{ROOM},7005,1,0,0,{T0 + 240},2,"订单号 DD1001\n第二行补充：包装也破了",2026-11-20 09:04:00,,花花🌸,wxid_hua',
    f"6,{ROOM},7006,3,0,0,{T0 + 300},2,,2026-11-20 09:05:00,,阿明,wxid_ming",
    f"7,{ROOM},7007,1,0,0,{T0 + 360},2,发错群了,2026-11-20 09:06:00,,阿明,wxid_ming",
    # a recall notice: revokemsg XML naming the recalled message's MsgSvrID
    f'8,{ROOM},7008,10002,0,0,{T0 + 370},2,"<sysmsg type=""revokemsg""><revokemsg><session>{ROOM}</session>'
    '<msgid>1</msgid><newmsgid>7007</newmsgid><replacemsg><![CDATA[""阿明"" 撤回了一条消息]]></replacemsg>'
    '</revokemsg></sysmsg>",2026-11-20 09:06:10,,,',
]
WECHAT_CUT = f"9,{ROOM},7009,1,0,0,{T0 + 420},2,最后一条消息被截"  # the export stopped mid-row
QQ = """消息记录（此消息记录为文本格式，不支持重新导入）

================================================================
消息分组:我的QQ群
================================================================
消息对象:极光手机官方粉丝群
================================================================

2026-11-20 10:00:00 【管理员】小极(10001)
欢迎新朋友

2026-11-20 10:00:05 系统消息(10000)
老王 加入本群。

2026-11-20 10:01:00 老王(123456789)
屏幕有划痕
客服也不回

2026-11-20 10:02:00 王师傅(123456789)
[图片]

2026-11-20 10:02:00 王师傅(123456789)
同一秒的第二条

2026-11-20 10:03:00 路人<fan@example.com>
这批货是二手的吧，有使用痕迹

2026-11-20 10:04:0"""
ROSTER = """group_id,sender_id,display_name,wechat_unionid,phone,member_id,joined_at,left_at
44556677@chatroom,wxid_hua,花花,,+86 138 0000 0001,,2026-11-20 09:00:00,
44556677@chatroom,wxid_ming,阿明,,,VIP0002,2026-11-20 09:01:00,
44556677@chatroom,wxid_silent,潜水员,,138-0000-0003,,2026-11-01 09:00:00,
极光手机官方粉丝群,123456789,老王,,13800000004,,,
"""
GROUPS = """group_id,group_name,province,city,is_official
44556677@chatroom,深圳车友群,广东,深圳,false
极光手机官方粉丝群,极光手机官方粉丝群,上海,上海,true
"""
CUSTOMERS = """customer_id,registered_at,phone,member_id,province,city
C1,2026-01-01 09:00:00,13800000001,,广东,深圳
C2,2026-01-02 09:00:00,,vip0002,广东,广州
C3,2026-01-03 09:00:00,13800000003,,广东,深圳
C4,2026-01-04 09:00:00,13800000004,,上海,上海
"""


def _land(landing) -> None:
    for entity, name, text in (
        ("chat_messages", "wechat_backup.csv", "\n".join([WECHAT_HEADER, *WECHAT_ROWS, WECHAT_CUT])),
        ("chat_messages", "qq_export.txt", QQ),
        ("chat_members", "roster.csv", ROSTER),
        ("chat_groups", "groups.csv", GROUPS),
        ("customers", "customers.csv", CUSTOMERS),
    ):
        (landing / entity).mkdir(exist_ok=True)
        (landing / entity / name).write_text(text, encoding="utf-8")


def test_real_exports_become_messages_events_staff_and_linked_people(crm_env, monkeypatch):
    monkeypatch.setenv("CRM_CHAT_OPERATOR_ID", "brand_ops")
    landing = crm_env["landing"]
    _land(landing)
    with Warehouse.from_url(crm_env["url"]) as wh:
        ensure_tables(wh)
        write_pseudonym_key(wh, "k")
        for entity in ("customers", "chat_messages", "chat_members", "chat_groups"):
            load_landing(wh, entity, landing, AS_OF, crm_env["tz"])
        batches = {
            s: (e, lo, q)
            for s, e, lo, q in wh.fetchall(
                "select source, extracted_rows, loaded_rows, quarantined_rows from audit.load_batches"
            )
        }
        quarantined = wh.fetchall("select source, line_no, reason from audit.quarantine order by source")
    # WeChat: 8 messages, system ones included, and the cut-off row; QQ: 6 messages and the cut-off header.
    assert batches["chat_messages/wechat_backup.csv"] == (9, 8, 1)
    assert batches["chat_messages/qq_export.txt"] == (7, 6, 1)
    assert batches["chat_members/roster.csv"] == (4, 4, 0) and batches["chat_groups/groups.csv"] == (2, 2, 0)
    assert quarantined == [
        ("chat_messages/qq_export.txt", 28, "QQ export: truncated header line at the end of the file"),
        ("chat_messages/wechat_backup.csv", 11, "expected 13 fields, got 9"),
    ]

    run_dbt(["seed", "--select", "staff_accounts"], AS_OF, url=crm_env["url"])
    run_dbt(["run", "--select", "+int_identity__resolved", "+stg_chat__groups"], AS_OF, url=crm_env["url"])
    with Warehouse.from_url(crm_env["url"]) as wh:
        msgs = {
            r[0]: r[1:]
            for r in wh.fetchall(
                "select msg_id, sender_id, msg_type, message_text, is_recalled, membership_event, sent_at "
                "from staging.stg_chat__messages"
            )
        }
        people = dict(
            wh.fetchall(
                "select account_id, person_id from intermediate.int_identity__resolved where account_type = 'chat'"
            )
        )
        staff = {a for (a,) in wh.fetchall("select account_id from intermediate.int_identity__accounts where is_staff")}
        groups = wh.fetchall("select group_id, province, city, is_official from staging.stg_chat__groups order by 1")

    # System messages are membership events from the account `system`; the recall notice recalls 7007.
    assert msgs["7001"][:2] == ("system", "system") and msgs["7001"][4] == "join"
    assert msgs["7002"][4] == "join"
    assert msgs["7008"][0] == "system" and msgs["7008"][2] == '"阿明" 撤回了一条消息' and msgs["7008"][4] == "recall"
    assert msgs["7007"][3] is True and msgs["7003"][3] is False
    # The exporter's own message is the operator's, and the operator is staff; nobody is called "self".
    assert msgs["7004"][0] == "operator:brand_ops" and "operator:brand_ops" in staff
    assert not any(m[0] == "self" for m in msgs.values())
    assert msgs["7005"][2] == "订单号 DD1001\n第二行补充：包装也破了"
    assert msgs["7006"][1:3] == ("image", "[image]")
    assert msgs["7003"][5] == dt.datetime(2026, 11, 20, 1, 2)  # epoch seconds are UTC

    qq = {k: v for k, v in msgs.items() if k.startswith("qq:")}
    assert len(qq) == 6
    first = qq["qq:极光手机官方粉丝群:2026-11-20 10:01:00:123456789:1"]
    assert first[0] == "123456789" and first[2] == "屏幕有划痕\n客服也不回"
    assert first[5] == dt.datetime(2026, 11, 20, 2, 1)  # local time (Asia/Shanghai) in UTC
    assert qq["qq:极光手机官方粉丝群:2026-11-20 10:02:00:123456789:1"][1] == "image"
    assert qq["qq:极光手机官方粉丝群:2026-11-20 10:02:00:123456789:2"][2] == "同一秒的第二条"
    assert qq["qq:极光手机官方粉丝群:2026-11-20 10:00:05:10000:1"][1] == "system"
    assert qq["qq:极光手机官方粉丝群:2026-11-20 10:00:05:10000:1"][4] == "join"
    assert "fan@example.com" in {v[0] for v in qq.values()}
    assert {"10000", "system"} <= staff and "10001" not in staff

    # The roster links chat senders to buyers (phone, member id); a nickname change keeps the person;
    # a silent roster member is a member too; a sender in no roster stays their own person.
    assert people["wxid_hua"] == "customer:C1"
    assert people["wxid_ming"] == "customer:C2"
    assert people["wxid_silent"] == "customer:C3"
    assert people["123456789"] == "customer:C4"
    assert people["fan@example.com"] == "chat:fan@example.com"
    assert groups == [("44556677@chatroom", "广东", "深圳", False), ("极光手机官方粉丝群", "上海", "上海", True)]
