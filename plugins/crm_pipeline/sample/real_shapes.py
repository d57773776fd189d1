"""What real exports look like, added to the sample community for `make run` (generate(..., real_shapes=True)).

The sample's own files are clean and contract-shaped; real data is not. This
adds, from the same people:
- a desktop WeChat backup CSV of one more group (MemoTrace columns, epoch
  seconds, system messages with no sender, the exporter's own messages
  with IsSender=1, a nickname change, a recall notice in revokemsg XML) and a
  QQ message-manager text export of a QQ group (multi-line messages,
  [图片], system lines). Neither carries a unionid, as real ones never do;
- the two groups' rosters (`chat_members`, phones that link senders to
  buyers) and every group's place (`chat_groups`);
- a few malformed rows in each entity's files (a missing key, an unknown
  status, a bad amount or time), so a plain `make run` exercises quarantine.
The ground truth gets `extra_accounts.csv` (the new chat accounts of known
people, for the identity score) and `quarantine_expected.csv`.
"""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

BACKUP_GROUP = ("58812345@chatroom", "星耀深圳车友群")
QQ_GROUP = "星耀手机QQ粉丝群"
GROUP_PLACES = {
    "G001": ("星耀官方粉丝1群", "", "", True),
    "G002": ("星耀官方粉丝2群", "", "", True),
    "G003": ("深圳同城玩家群", "广东省", "深圳市", False),
    "G004": ("Global fans (EN)", "", "", True),
    "G005": ("新品内测群", "上海市", "上海市", True),
    BACKUP_GROUP[0]: (BACKUP_GROUP[1], "广东省", "深圳市", False),
    QQ_GROUP: (QQ_GROUP, "北京市", "北京市", True),
}
# entity -> [(field, bad value, reason prefix)], each applied to a copy of the entity's last row.
MALFORMED = {
    "customers": [("customer_id", "", "missing required field 'customer_id'"),
                  ("registered_at", "yesterday", "registered_at")],
    "orders": [("status", "on_hold", "status: unknown value 'on_hold'"), ("total_amount", "abc", "total_amount")],
    "order_items": [("quantity", "0", "quantity"), ("unit_price", "free", "unit_price")],
    "refunds": [("amount", "n/a", "amount"), ("refunded_at", "", "missing required field 'refunded_at'")],
    "reviews": [("rating", "6", "rating")],
    "forum_users": [("joined_at", "31/02/2024", "joined_at")],
    "forum_posts": [("created_at", "soon", "created_at"), ("content", "", "missing required field 'content'")],
    "chat_messages": [("msg_type", "sticker", "msg_type: unknown value 'sticker'")],
    "events": [("status", "maybe", "status: unknown value 'maybe'")],
}  # fmt: skip
KEYS = {"customers": "customer_id", "orders": "order_id", "order_items": "order_id", "refunds": "refund_id",
        "reviews": "review_id", "forum_users": "user_id", "forum_posts": "post_id", "chat_messages": "msg_id",
        "events": "event_id"}  # fmt: skip


def add_malformed(gen, truth: Path) -> int:
    """A few bad rows among each entity's good ones (still unwritten), with the reasons the loader must give."""
    expected = []
    for entity, faults in MALFORMED.items():
        spool = gen.rows[entity]
        if not spool.rows:
            continue
        template = dict(spool.rows[-1])
        for i, (field, value, reason) in enumerate(faults, start=1):
            row = {**template, field: value}
            key = KEYS[entity]
            if field != key:
                row[key] = f"BAD{entity[:3].upper()}{i}"
            spool.append(row)
            expected.append((entity, row[key], reason))
    with (truth / "quarantine_expected.csv").open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["entity", "key", "reason_starts_with"])
        w.writerows(expected)
    return len(expected)


def _name(p) -> str:
    return p.display_name or f"粉丝{p.person_id[-4:]}"


def _unique_phone_people(gen, skip: set[str]) -> list:
    counts: dict[str, int] = {}
    for p in gen.people:
        if p.phone:
            counts[p.phone] = counts.get(p.phone, 0) + 1
    return [p for p in gen.people if p.customer_id and p.phone and counts[p.phone] == 1 and p.person_id not in skip]


def write_real_shapes(gen, out: Path, truth: Path) -> dict:
    rng = gen.rng
    people = _unique_phone_people(gen, {p.person_id for p in gen.people if p.chat_sender_id})
    rng.shuffle(people)
    wechat, qq = people[:20], people[20:35]
    end = dt.datetime.combine(gen.end_date, dt.time(22, 0))  # local time (Asia/Shanghai, no DST)
    start = end - dt.timedelta(days=60)
    roster, extra = [], []

    # The WeChat backup: one group, MemoTrace columns, epoch seconds, no unionid.
    room, _ = BACKUP_GROUP
    rows, local_id, svr = [], 0, 9_000_000
    senders = {p.person_id: f"wxid_bk{i:04d}" for i, p in enumerate(wechat, start=1)}
    times = sorted(start + dt.timedelta(seconds=rng.randrange(60 * 86400)) for _ in range(200))

    def add(t, type_code, is_sender, content, nick="", sender=""):
        nonlocal local_id, svr
        local_id += 1
        svr += rng.randrange(1, 50)
        epoch = int((t - dt.timedelta(hours=8)).replace(tzinfo=dt.UTC).timestamp())  # local -> UTC seconds
        rows.append({"localId": local_id, "TalkerId": room, "MsgSvrID": svr, "Type": type_code, "SubType": 0,
                     "IsSender": is_sender, "CreateTime": epoch, "Status": 2, "StrContent": content,
                     "StrTime": t.strftime("%Y-%m-%d %H:%M:%S"), "Remark": "", "NickName": nick,
                     "Sender": sender})  # fmt: skip
        return svr

    for p in wechat:
        add(start, 10000, 0, f'"{_name(p)}"通过扫描"星耀小助手"分享的二维码加入群聊')
        roster.append({"group_id": room, "sender_id": senders[p.person_id], "display_name": _name(p),
                       "phone": p.phone, "joined_at": start.strftime("%Y-%m-%d %H:%M:%S")})  # fmt: skip
        extra.append((p.person_id, f"chat:{senders[p.person_id]}"))
    last_svr = None
    for i, t in enumerate(times):
        if i % 15 == 7:
            add(t, 1, 1, "大家好，周六的试驾活动还有名额")  # the exporter's own message
            continue
        p = rng.choice(wechat)
        kind = "negative" if rng.random() < 0.2 else "neutral"
        text = gen._text(kind)[0]
        nick = _name(p) + ("🚗" if p is wechat[0] and i > 100 else "")  # a nickname change
        image = rng.random() < 0.1  # a picture: Type 3, no text
        last_svr = add(t, 3 if image else 1, 0, "" if image else text, nick, senders[p.person_id])
    if last_svr:
        add(end - dt.timedelta(minutes=5), 10002, 0,
            f'<sysmsg type="revokemsg"><revokemsg><session>{room}</session><newmsgid>{last_svr}</newmsgid>'
            f'<replacemsg><![CDATA["{_name(wechat[-1])}" 撤回了一条消息]]></replacemsg>'
            "</revokemsg></sysmsg>")  # fmt: skip
    folder = out / "chat_messages"
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "wechat_backup_shenzhen.csv").open("w", encoding="utf-8-sig", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)

    # The QQ export: one group; headers, multi-line messages, pictures, system lines.
    qq_ids = {p.person_id: str(200000000 + i * 7919) for i, p in enumerate(qq, start=1)}
    lines = ["消息记录（此消息记录为文本格式，不支持重新导入）", "", "=" * 64, "消息分组:我的QQ群", "=" * 64,
             f"消息对象:{QQ_GROUP}", "=" * 64, ""]  # fmt: skip
    for t in sorted(start + dt.timedelta(seconds=rng.randrange(60 * 86400)) for _ in range(120)):
        p = rng.choice(qq)
        body = gen._text("negative" if rng.random() < 0.2 else "neutral")[0]
        if rng.random() < 0.1:
            body = "[图片]"
        elif rng.random() < 0.15:
            body += "\n补充一句：大家怎么看？"
        lines += [f"{t:%Y-%m-%d %H:%M:%S} {_name(p)}({qq_ids[p.person_id]})", *body.split("\n"), ""]
    lines += [f"{end - dt.timedelta(hours=1):%Y-%m-%d %H:%M:%S} 系统消息(10000)", "新朋友 加入本群。", ""]
    (folder / "qq_export.txt").write_text("\n".join(lines), encoding="utf-8")
    for p in qq:
        roster.append({"group_id": QQ_GROUP, "sender_id": qq_ids[p.person_id], "display_name": _name(p),
                       "phone": p.phone, "joined_at": ""})  # fmt: skip
        extra.append((p.person_id, f"chat:{qq_ids[p.person_id]}"))

    (out / "chat_members").mkdir(parents=True, exist_ok=True)
    with (out / "chat_members" / "rosters.csv").open("w", encoding="utf-8", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["group_id", "sender_id", "display_name", "phone", "joined_at"])
        w.writeheader()
        w.writerows(roster)
    (out / "chat_groups").mkdir(parents=True, exist_ok=True)
    with (out / "chat_groups" / "groups.csv").open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["group_id", "group_name", "province", "city", "is_official"])
        w.writerows([g, n, prov, city, str(official).lower()] for g, (n, prov, city, official) in GROUP_PLACES.items())
    with (truth / "extra_accounts.csv").open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["person_id", "account"])
        w.writerows(extra)
    return {"wechat_backup_rows": len(rows), "qq_people": len(qq), "roster_rows": len(roster)}
