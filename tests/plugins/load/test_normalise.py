"""Parsers for the input contract's value formats (expected values worked out by hand)."""

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from crm_pipeline.load.normalise import normalise_record, parse_amount, parse_bool, parse_int, parse_timestamp
from crm_pipeline.load.specs import SPECS

SH = ZoneInfo("Asia/Shanghai")


@pytest.mark.parametrize(
    "text",
    ["1299.00", "1299", "¥1,299.00", "￥1299", "1299元", "１２９９．００", "￥１，２９９", " 1,299.00 元 ", "RMB 1299"],
)
def test_amount_formats_all_mean_1299(text):
    assert parse_amount(text) == Decimal("1299.00")


@pytest.mark.parametrize("text", ["12,99x", "abc", "1.2.3", "", "¥", "--5"])
def test_unparseable_amounts_are_rejected(text):
    with pytest.raises(ValueError, match="not an amount"):
        parse_amount(text)


def test_negative_amount_is_rejected():
    with pytest.raises(ValueError, match="negative"):
        parse_amount("-5.00")


def test_amount_rounds_half_up_to_cents():
    assert parse_amount("0.125") == Decimal("0.13")


def test_naive_timestamp_is_local_time():
    # 00:30 in Shanghai (UTC+8) is 16:30 UTC the day before.
    assert parse_timestamp("2026-11-22 00:30:00", SH) == dt.datetime(2026, 11, 21, 16, 30)


@pytest.mark.parametrize(
    "text",
    ["2026-11-21T16:30:00Z", "2026-11-22T00:30:00+08:00", "2026-11-21T11:30:00-05:00", "２０２６-11-22 00:30:00"],
)
def test_offsets_are_honoured(text):
    assert parse_timestamp(text, SH) == dt.datetime(2026, 11, 21, 16, 30)


def test_bad_timestamp_is_rejected():
    with pytest.raises(ValueError, match="ISO-8601"):
        parse_timestamp("22/11/2026", SH)


def test_ints_and_bools():
    assert parse_int("３") == 3
    assert parse_int("4.0") == 4
    with pytest.raises(ValueError):
        parse_int("4.5")
    assert parse_bool("是") is True
    assert parse_bool("false") is False
    with pytest.raises(ValueError):
        parse_bool("maybe")


def test_record_with_several_problems_names_each():
    row, reason = normalise_record(
        SPECS["orders"],
        {"order_id": "", "customer_id": "c1", "ordered_at": "yesterday", "status": "pending", "total_amount": "9"},
        SH,
    )
    assert row is None
    assert "missing required field 'order_id'" in reason
    assert "ordered_at: not an ISO-8601 timestamp" in reason
    assert "status: unknown value 'pending'" in reason


def test_rating_out_of_range_is_rejected():
    _, reason = normalise_record(
        SPECS["reviews"],
        {"review_id": "v1", "customer_id": "c1", "rating": "6", "created_at": "2026-01-01"},
        SH,
    )
    assert reason == "rating: 6 is above 5"


def test_nul_bytes_are_removed_from_text():
    row, reason = normalise_record(
        SPECS["reviews"],
        {"review_id": "v1", "customer_id": "c1", "rating": "5", "created_at": "2026-01-01", "content": "好\x00评"},
        SH,
    )
    assert reason is None and row["content"] == "好评"


@pytest.mark.parametrize(
    ("value", "reason"),
    [(float("nan"), "not an amount"), (float("inf"), "not an amount"), (1e20, "amount too large"),
     ("10000000000000000", "amount too large")],
)  # fmt: skip
def test_amounts_json_can_carry_but_decimal_18_2_cannot_hold_are_rejected(value, reason):
    # They used to crash the batch (InvalidOperation comparing NaN; Arrow overflow writing 1e20).
    with pytest.raises(ValueError, match=reason):
        parse_amount(value)
    assert parse_amount("9999999999999999.99") == Decimal("9999999999999999.99")


@pytest.mark.parametrize("value", [2**63, -(2**63) - 1, "99999999999999999999"])
def test_integers_beyond_64_bits_are_rejected(value):
    with pytest.raises(ValueError, match="integer out of range"):
        parse_int(value)
    assert parse_int(2**63 - 1) == 2**63 - 1 and parse_int(str(-(2**63))) == -(2**63)
