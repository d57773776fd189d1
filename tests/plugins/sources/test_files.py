"""Encoding detection and record reading: every supported encoding gives the same records."""

import codecs

import pytest

from crm_pipeline.sources.files import decode_file, detect_encoding, read_records

ROWS = [
    ["review_id", "customer_id", "rating", "created_at", "content"],
    ["v1", "c1", "5", "2026-11-01 10:00:00", "非常好用，推荐😀"],
    ["v2", "c2", "1", "2026-11-02 10:00:00", "質量太差 𠀀 poor quality"],  # traditional + a non-BMP CJK char
    ["v3", "c3", "3", "2026-11-03 10:00:00", 'multi\nline, "quoted"'],
]


def _csv_text(rows):
    import csv
    import io

    buf = io.StringIO()
    csv.writer(buf).writerows(rows)
    return buf.getvalue()


def _records(path):
    _, _, recs = read_records(path)
    return [(r.line_no, r.record, r.error) for r in recs]


@pytest.mark.parametrize(
    ("encoding", "expected"),
    [
        ("utf-8", "utf-8"),
        ("utf-8-sig", "utf-8-sig"),
        ("gb18030", "gb18030"),
        ("utf-16", "utf-16"),
        ("utf-16-le", "utf-16-le"),
        ("utf-16-be", "utf-16-be"),
    ],
)
def test_every_encoding_reads_the_same_records(tmp_path, encoding, expected):
    text = _csv_text(ROWS)
    path = tmp_path / "reviews.csv"
    path.write_bytes(text.encode(encoding))
    assert detect_encoding(path.read_bytes()) == expected
    recs = _records(path)
    assert [r[1]["content"] for r in recs] == [row[4] for row in ROWS[1:]]
    # v3's quoted field spans lines 4-5; its record starts on line 4.
    assert [r[0] for r in recs] == [2, 3, 4]
    assert all(r[2] is None for r in recs)


def test_gbk_without_emoji_is_detected_as_gb18030(tmp_path):
    rows = [ROWS[0], ["v1", "c1", "2", "2026-11-01", "物流太慢了，客服态度很差"]]
    path = tmp_path / "reviews.csv"
    path.write_bytes(_csv_text(rows).encode("gbk"))
    assert detect_encoding(path.read_bytes()) == "gb18030"
    assert _records(path)[0][1]["content"] == "物流太慢了，客服态度很差"


def test_invalid_bytes_are_reported_with_their_offset(tmp_path):
    head = b"review_id,customer_id,rating,created_at,content\n"
    good = "v1,c1,5,2026-11-01,很好\n".encode()
    bad_prefix = b"v2,c2,1,2026-11-02,"
    bad = bad_prefix + b"\xff\xfe broken\n"
    tail = "v3,c3,4,2026-11-03,还行\n".encode()
    path = tmp_path / "reviews.csv"
    path.write_bytes(head + good + bad + tail)
    recs = _records(path)
    errors = [r for r in recs if r[2]]
    assert len(errors) == 1
    line_no, record, error = errors[0]
    assert line_no == 3 and record is None
    # The bad byte sits after the header, the good line and the bad line's prefix.
    offset = len(head) + len(good) + len(bad_prefix)
    assert error == f"invalid utf-8 bytes at byte offset {offset}"
    assert [r[1]["review_id"] for r in recs if r[1]] == ["v1", "v3"]


def test_a_utf8_file_with_one_bad_line_stays_utf8():
    data = ("a,b\n" + "\n".join(f"{i},中文内容{i}" for i in range(50)) + "\n").encode() + b"x,\xc3\x28\n"
    assert detect_encoding(data) == "utf-8"
    decoded = decode_file(data)
    assert len(decoded.bad_lines) == 1 and len(decoded.lines) == 51


def test_bom_is_not_part_of_the_first_header(tmp_path):
    path = tmp_path / "c.csv"
    path.write_bytes(codecs.BOM_UTF8 + b"customer_id,registered_at\nc1,2026-01-01\n")
    _, header, recs = read_records(path)
    assert header == ["customer_id", "registered_at"]
    assert next(recs).record == {"customer_id": "c1", "registered_at": "2026-01-01"}


def test_jsonl_bad_lines_are_errors_with_line_numbers(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text('{"refund_id": "r1"}\n\n{not json}\n[1, 2]\n{"refund_id": "r2"}\n', encoding="utf-8")
    recs = _records(path)
    assert [(n, e is None) for n, _, e in recs] == [(1, True), (3, False), (4, False), (5, True)]
    assert recs[1][2].startswith("invalid JSON")
    assert recs[2][2] == "a JSON Lines record must be an object"


def test_wrong_field_count_is_an_error(tmp_path):
    path = tmp_path / "c.csv"
    path.write_text("customer_id,registered_at\nc1,2026-01-01,extra\nc2,2026-01-02\n", encoding="utf-8")
    recs = _records(path)
    assert recs[0] == (2, None, "expected 2 fields, got 3")
    assert recs[1][1] == {"customer_id": "c2", "registered_at": "2026-01-02"}
