"""Chat-group exports in the shapes real tools write, mapped onto the chat_messages contract.

* Records that already carry the contract's field names pass through.
* WeCom chat-archive records (`msgid`, `action`, `from`, `tolist`, `roomid`,
  `msgtime` in ms, `msgtype`, `<msgtype>: {...}`) are recognised by `msgid`;
  a recall (`action: recall`, `revoke.pre_msgid`) becomes a system record
  pointing at the recalled message.
* Desktop WeChat backup CSVs (MemoTrace / WeChatMsg style: `localId`,
  `TalkerId`/`StrTalker`, `Type`, `SubType`, `IsSender`, `CreateTime` in
  epoch seconds, `StrContent`, `NickName`, `Sender`) are recognised by
  `StrContent` and `CreateTime`; the numeric message type is mapped below.
  System messages (Type 10000/10002: joins, leaves, invitations, recalls)
  carry no sender: they come from the account `system`, and staging makes
  them membership events. A recall notice (10002 `revokemsg`) names the
  recalled message's MsgSvrID and recalls it. The exporter's own messages
  (`IsSender=1`, no Sender) come from `operator:<CRM_CHAT_OPERATOR_ID>`
  (default `operator:self`), which the staff_accounts seed flags, so the
  brand's own account never counts as a member.
* QQ message-manager text exports are read by crm_pipeline.sources.qq.
"""

from __future__ import annotations

import datetime as dt
import json
import re

from crm_pipeline.config import settings

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


# WeChat desktop database message types (Type, SubType) -> contract msg_type
WECHAT_TYPES = {
    "1": "text",
    "3": "image",
    "34": "voice",
    "43": "video",
    "47": "image",
    "48": "link",
    "49": "link",
    "50": "voice",
    "10000": "system",
    "10002": "system",
}
WECHAT_RED_PACKET_SUBTYPES = {"2001", "2003"}  # Type 49 app messages that are red packets


SYSTEM_SENDER = "system"
_REVOKE_ID = re.compile(r"<newmsgid>\s*(\d+)\s*</newmsgid>")
_REVOKE_TEXT = re.compile(r"<replacemsg>\s*(?:<!\[CDATA\[)?(.*?)(?:\]\]>)?\s*</replacemsg>", re.S)


def operator_id() -> str:
    """The sender id of the exporting account's own messages (IsSender=1): staff, never a member."""
    return f"operator:{settings().chat_operator_id}"


def is_wechat_backup(record: dict) -> bool:
    return "StrContent" in record and "CreateTime" in record and "msg_id" not in record


def from_wechat_backup(record: dict) -> dict:
    """One row of a desktop WeChat backup CSV -> a chat_messages record."""
    type_code = str(record.get("Type", "")).strip()
    sub = str(record.get("SubType", "")).strip()
    if type_code == "49" and sub in WECHAT_RED_PACKET_SUBTYPES:
        msg_type = "red_packet"
    elif type_code in WECHAT_TYPES:
        msg_type = WECHAT_TYPES[type_code]
    else:
        raise ValueError(f"unknown WeChat message Type {type_code!r}")
    try:
        sent = dt.datetime.fromtimestamp(int(record["CreateTime"]), dt.UTC).isoformat()
    except (TypeError, ValueError) as exc:
        raise ValueError(f"CreateTime: not epoch seconds: {record.get('CreateTime')!r}") from exc
    group = record.get("StrTalker") or record.get("TalkerId")
    content = record.get("StrContent") or ""
    if msg_type not in ("text", "system") and not content.strip():
        content = f"[{msg_type}]"
    sender = (record.get("Sender") or "").strip() or None
    if str(record.get("IsSender", "")).strip() == "1" and sender is None:
        sender = operator_id()
    elif sender is None and msg_type == "system":
        sender = SYSTEM_SENDER
    out = {
        "msg_id": record.get("MsgSvrID") or f"{group}:{record.get('localId')}",
        "group_id": group,
        "sender_id": sender,
        "sent_at": sent,
        "msg_type": msg_type,
        "content": content,
        "sender_name": record.get("NickName"),
        "action": "send",
    }
    if msg_type == "system" and (revoked := _REVOKE_ID.search(content)):
        text = _REVOKE_TEXT.search(content)
        out |= {
            "action": "recall",
            "recalled_msg_id": revoked.group(1),
            "content": text.group(1).strip() if text else "[recall]",
        }
    return out


def adapt(record: dict) -> dict:
    if is_wecom(record):
        return from_wecom(record)
    if is_wechat_backup(record):
        return from_wechat_backup(record)
    return record
