"""The QQ message-manager text export parser (crm_pipeline.sources.qq), on hand-made exports."""

from __future__ import annotations

from pathlib import Path

from crm_pipeline.sources.files import list_files, read_records

TWO_GROUPS = (
    "消息记录（此消息记录为文本格式，不支持重新导入）\r\n\r\n"
    "================================================================\r\n"
    "消息分组:我的QQ群\r\n"
    "================================================================\r\n"
    "消息对象:甲群\r\n"
    "================================================================\r\n\r\n"
    "2024-1-2 8:05:09 阿甲(10086)\r\n第一行\r\n\r\n第三行（中间有空行）\r\n\r\n"
    "================================================================\r\n"
    "消息对象:乙群\r\n"
    "================================================================\r\n\r\n"
    "2024-01-02 08:06:00 【吐槽担当】阿乙<b@qq.com>\r\n[图片][表情]\r\n"
)


def _records(tmp_path: Path, text: str, name: str = "export.txt"):
    path = tmp_path / "chat_messages" / name
    path.parent.mkdir(exist_ok=True)
    path.write_text(text, encoding="utf-8", newline="")
    return list(read_records(path)[2])


def test_groups_titles_blank_lines_inside_a_message_and_crlf(tmp_path):
    recs = _records(tmp_path, TWO_GROUPS)
    assert [(r.line_no, r.error) for r in recs] == [(9, None), (18, None)]
    first, second = (r.record for r in recs)
    assert first == {
        "msg_id": "qq:甲群:2024-01-02 08:05:09:10086:1",
        "group_id": "甲群",
        "group_name": "甲群",
        "sender_id": "10086",
        "sender_name": "阿甲",
        "sent_at": "2024-01-02 08:05:09",
        "msg_type": "text",
        "content": "第一行\n\n第三行（中间有空行）",
    }
    assert (second["group_id"], second["sender_id"], second["sender_name"], second["msg_type"]) == (
        "乙群",
        "b@qq.com",
        "阿乙",
        "image",
    )


def test_a_message_before_any_group_and_a_cut_header_are_quarantined(tmp_path):
    recs = _records(tmp_path, "2024-01-02 08:05:09 阿甲(10086)\n你好\n\n2024-01-02 08:0")
    assert [(r.line_no, r.error) for r in recs] == [
        (1, "QQ export: a message before any 消息对象 (group) line"),
        (4, "QQ export: truncated header line at the end of the file"),
    ]
    # A last line that ends with its newline is content, even when it starts with a date.
    recs = _records(tmp_path, "消息对象:甲群\n2024-01-02 08:05:09 阿甲(10086)\n2024-01-03 见面\n", "b.txt")
    assert [r.record["content"] for r in recs] == ["2024-01-03 见面"]


def test_a_txt_file_is_a_batch_of_chat_messages_only(tmp_path):
    for entity in ("chat_messages", "orders"):
        (tmp_path / entity).mkdir()
        (tmp_path / entity / "notes.txt").write_text("x", encoding="utf-8")
    assert [p.name for p in list_files(tmp_path, "chat_messages")] == ["notes.txt"]
    assert list_files(tmp_path, "orders") == []
