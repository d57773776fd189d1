"""QQ message-manager text exports (消息管理器 -> 导出为 .txt) as chat_messages records.

The export looks like this (a file may hold several groups, each under its
own 消息对象 header):

    消息记录（此消息记录为文本格式，不支持重新导入）

    ================================================================
    消息分组:我的QQ群
    ================================================================
    消息对象:极光手机官方粉丝群
    ================================================================

    2024-01-01 12:00:00 【管理员】小极(123456789)
    欢迎新朋友
    第二行

    2024-01-01 12:00:05 系统消息(10000)
    花花 加入本群。

A message starts at a header line `date time nickname(QQ number)` (or
`nickname<email>` for accounts the exporter shows by mail); the lines after it,
up to the next header, are its text. The nickname may carry a group title in
【】, which is dropped; the QQ number is the sender, so a nickname change
keeps the person. `[图片]` / `[表情]` alone make an image message, sender
10000 a system message. The export has no message ids: each gets
`qq:<group>:<time>:<sender>:<n>` (n counts the same sender's messages in the
same second), stable across exports that overlap. A header cut off by a
truncated last line, or a message before any 消息对象, is quarantined.
Times carry no offset: local time in CRM_TIMEZONE, as the contract says.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from crm_pipeline.sources.records import DecodedFile, RawRecord

HEADER = re.compile(
    r"^(?P<date>\d{4}-\d{1,2}-\d{1,2}) (?P<time>\d{1,2}:\d{2}:\d{2}) (?P<nick>.*?)"
    r"(?:\((?P<qq>\d{4,12})\)|<(?P<mail>[^<>\s]+)>)\s*$"
)
# A line that starts like a header but does not end like one: a header cut off by a truncated export.
PARTIAL_HEADER = re.compile(r"^\d{4}-\d{1,2}-\d{1,2}(\s|$)")
GROUP = re.compile(r"^消息对象[:：](?P<name>.+?)\s*$")
TITLE = re.compile(r"^【[^】]*】")
SYSTEM_SENDER = "10000"
IMAGE_ONLY = re.compile(r"^(\[(图片|表情|动画表情)\]\s*)+$")


def _record(group, header_line_no, match, lines, seen) -> RawRecord:
    raw = "\n".join([match.string, *lines])
    if group is None:
        return RawRecord(header_line_no, None, raw, "QQ export: a message before any 消息对象 (group) line")
    sender = match["qq"] or match["mail"]
    nick = TITLE.sub("", match["nick"]).strip()
    y, mo, d = match["date"].split("-")
    h, mi, sec = match["time"].split(":")
    sent_at = f"{y}-{int(mo):02d}-{int(d):02d} {int(h):02d}:{mi}:{sec}"  # the exporter drops leading zeros
    text = "\n".join(lines).strip("\n")
    if sender == SYSTEM_SENDER:
        msg_type = "system"
    elif IMAGE_ONLY.match(text.strip()):
        msg_type = "image"
    else:
        msg_type = "text"
    stem = f"qq:{group}:{sent_at}:{sender}"
    seen[stem] = seen.get(stem, 0) + 1
    return RawRecord(
        header_line_no,
        {
            "msg_id": f"{stem}:{seen[stem]}",
            "group_id": group,
            "group_name": group,
            "sender_id": sender,
            "sender_name": nick or None,
            "sent_at": sent_at,
            "msg_type": msg_type,
            "content": text if text.strip() else f"[{msg_type}]",
        },
        raw,
    )


def qq_records(decoded: DecodedFile) -> Iterator[RawRecord]:
    group: str | None = None
    current = None  # (line number, header match, text lines)
    seen: dict[str, int] = {}
    lines = [(n, t.rstrip("\r\n")) for n, t in decoded.lines]
    last_no = lines[-1][0] if lines else 0
    ends_cleanly = bool(decoded.lines) and decoded.lines[-1][1].endswith(("\n", "\r"))
    for n, text in lines:
        header = HEADER.match(text)
        group_line = GROUP.match(text)
        cut = n == last_no and not ends_cleanly and _cut_header(text)
        if header or group_line or cut or text.startswith("====="):
            if current is not None:
                yield _record(group, *current, seen)
                current = None
            if header:
                current = (n, header, [])
            elif group_line:
                group = group_line["name"]
            elif cut:
                yield RawRecord(n, None, text, "QQ export: truncated header line at the end of the file")
            continue
        if current is not None:
            current[2].append(text)
        # else: the export's title, 消息分组 lines and blank lines
    if current is not None:
        yield _record(group, *current, seen)


def _cut_header(text: str) -> bool:
    return bool(PARTIAL_HEADER.match(text)) and not HEADER.match(text) and not text.rstrip().endswith((")", ">"))
