"""Chat-group exports: WeCom chat-archive records mapped onto the chat_messages contract.

Flattened CSV (WeChat/QQ backup tools) and plain JSON Lines already carry the
contract's field names and pass through. A WeCom record (`msgid`, `action`,
`from`, `tolist`, `roomid`, `msgtime` in ms, `msgtype`, `<msgtype>: {...}`)
is recognised by its `msgid` and mapped here; a recall (`action: recall`,
`revoke.pre_msgid`) becomes a system record pointing at the recalled message.
"""

from __future__ import annotations

import datetime as dt
import json

# WeCom msgtype -> contract msg_type
WECOM_TYPES = {
    "text": "text",
    "markdown": "text",
    "image": "image",
    "emotion": "image",
    "voice": "voice",
    "meeting_voice_call": "voice",
    "video": "video",
    "link": "link",
    "weapp": "link",
    "news": "link",
    "file": "link",
    "redpacket": "red_packet",
    "external_redpacket": "red_packet",
    "revoke": "system",
}


def is_wecom(record: dict) -> bool:
    return "msgid" in record and "msg_id" not in record


def _ms_to_iso(value) -> str:
    try:
        ms = int(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"msgtime: not epoch milliseconds: {value!r}") from exc
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).isoformat(timespec="milliseconds")


def _content(msgtype: str, record: dict) -> str:
    body = record.get(msgtype)
    if msgtype in ("text", "markdown") and isinstance(body, dict):
        return str(body.get("content", ""))
    if msgtype in ("redpacket", "external_redpacket") and isinstance(body, dict):
        return f"[红包]{body.get('wish', '')}"
    if msgtype in ("link", "news", "weapp") and isinstance(body, dict):
        return str(body.get("link_url") or body.get("title") or f"[{msgtype}]")
    return f"[{msgtype}]"


def from_wecom(record: dict) -> dict:
    """One WeCom chat-archive record -> a chat_messages record (ValueError for what cannot map)."""
    action = record.get("action", "send")
    if action == "switch":
        raise ValueError("WeCom 'switch' records are account switches, not chat messages")
    msgtype = record.get("msgtype")
    if action == "recall" or msgtype == "revoke":
        pre = (record.get("revoke") or {}).get("pre_msgid") or record.get("pre_msgid")
        if not pre:
            raise ValueError("WeCom recall without revoke.pre_msgid")
        return {
            "msg_id": record["msgid"],
            "group_id": record.get("roomid"),
            "sender_id": record.get("from"),
            "sent_at": _ms_to_iso(record.get("msgtime")),
            "msg_type": "system",
            "content": "[recall]",
            "action": "recall",
            "recalled_msg_id": pre,
        }
    if msgtype not in WECOM_TYPES:
        raise ValueError(f"unknown WeCom msgtype {msgtype!r}")
    return {
        "msg_id": record["msgid"],
        "group_id": record.get("roomid"),
        "sender_id": record.get("from"),
        "sent_at": _ms_to_iso(record.get("msgtime")),
        "msg_type": WECOM_TYPES[msgtype],
        "content": _content(msgtype, record),
        "action": "send",
        "recipients": json.dumps(record.get("tolist") or [], ensure_ascii=False),
    }


def adapt(record: dict) -> dict:
    return from_wecom(record) if is_wecom(record) else record
