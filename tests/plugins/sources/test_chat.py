"""WeCom chat-archive records mapped onto the chat_messages contract."""

import pytest

from crm_pipeline.sources.chat import adapt, from_wecom

BASE = {
    "msgid": "m1",
    "action": "send",
    "from": "wmUser1",
    "tolist": ["wmUser2"],
    "roomid": "wrRoom1",
    "msgtime": 1763740800123,
}


def test_text_record_maps_to_the_contract():
    out = from_wecom({**BASE, "msgtype": "text", "text": {"content": "快递太慢了😭"}})
    assert out == {
        "msg_id": "m1",
        "group_id": "wrRoom1",
        "sender_id": "wmUser1",
        # 1763740800123 ms = 2025-11-21T16:00:00.123 UTC
        "sent_at": "2025-11-21T16:00:00.123+00:00",
        "msg_type": "text",
        "content": "快递太慢了😭",
        "action": "send",
        "recipients": '["wmUser2"]',
    }


@pytest.mark.parametrize(
    ("msgtype", "body", "msg_type", "content"),
    [
        ("redpacket", {"wish": "恭喜发财"}, "red_packet", "[红包]恭喜发财"),
        ("image", {"md5sum": "x"}, "image", "[image]"),
        ("emotion", {}, "image", "[emotion]"),
        ("link", {"link_url": "https://example.com/a"}, "link", "https://example.com/a"),
        ("voice", {}, "voice", "[voice]"),
    ],
)
def test_media_records_map_to_contract_types(msgtype, body, msg_type, content):
    out = from_wecom({**BASE, "msgtype": msgtype, msgtype: body})
    assert (out["msg_type"], out["content"]) == (msg_type, content)


def test_recall_points_at_the_recalled_message():
    out = from_wecom({**BASE, "msgid": "m2", "action": "recall", "msgtype": "revoke", "revoke": {"pre_msgid": "m1"}})
    assert (out["msg_type"], out["action"], out["recalled_msg_id"]) == ("system", "recall", "m1")


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({**BASE, "msgtype": "vote"}, "unknown WeCom msgtype 'vote'"),
        ({"msgid": "m3", "action": "switch", "time": 1, "user": "u"}, "account switches"),
        ({**BASE, "action": "recall", "msgtype": "revoke", "revoke": {}}, "without revoke.pre_msgid"),
        ({**BASE, "msgtype": "text", "text": {"content": "x"}, "msgtime": "yesterday"}, "epoch milliseconds"),
    ],
)
def test_unmappable_records_say_why(record, message):
    with pytest.raises(ValueError, match=message):
        from_wecom(record)


def test_contract_shaped_records_pass_through():
    rec = {
        "msg_id": "x",
        "group_id": "g",
        "sender_id": "s",
        "sent_at": "2026-01-01",
        "msg_type": "text",
        "content": "hi",
    }
    assert adapt(rec) is rec


WECHAT_ROW = {
    "localId": "17",
    "TalkerId": "3",
    "StrTalker": "12345678@chatroom",
    "Type": "1",
    "SubType": "0",
    "IsSender": "0",
    "CreateTime": "1763690400",
    "Status": "2",
    "StrContent": "发货太慢了",
    "StrTime": "2025-11-21 10:00:00",
    "Remark": "",
    "NickName": "阿明",
    "Sender": "wxid_abc",
}


def test_wechat_backup_row_maps_to_the_contract():
    assert adapt(WECHAT_ROW) == {
        "msg_id": "12345678@chatroom:17",
        "group_id": "12345678@chatroom",
        "sender_id": "wxid_abc",
        # 1763690400 s = 2025-11-21 02:00:00 UTC (10:00 in Shanghai, as StrTime says)
        "sent_at": "2025-11-21T02:00:00+00:00",
        "msg_type": "text",
        "content": "发货太慢了",
        "sender_name": "阿明",
        "action": "send",
    }


@pytest.mark.parametrize(
    ("type_code", "sub", "content", "msg_type", "expected_content"),
    [
        ("3", "0", "", "image", "[image]"),
        ("49", "2001", "", "red_packet", "[red_packet]"),
        ("10000", "0", '"阿明"加入了群聊', "system", '"阿明"加入了群聊'),
        ("43", "0", "", "video", "[video]"),
    ],
)
def test_wechat_backup_types(type_code, sub, content, msg_type, expected_content):
    out = adapt({**WECHAT_ROW, "Type": type_code, "SubType": sub, "StrContent": content})
    assert (out["msg_type"], out["content"]) == (msg_type, expected_content)


def test_wechat_backup_unknown_type_says_why():
    with pytest.raises(ValueError, match="unknown WeChat message Type '999'"):
        adapt({**WECHAT_ROW, "Type": "999"})
