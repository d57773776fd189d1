"""Pure parsers from what sources send to the warehouse's types; each raises ValueError with a reason."""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from zoneinfo import ZoneInfo

from crm_pipeline.load.specs import EntitySpec, Field

_AMOUNT_NOISE = re.compile(r"[¥$,\s]|元|RMB|CNY", re.IGNORECASE)
_AMOUNT_OK = re.compile(r"^[+-]?\d+(\.\d+)?$")
_CENT = Decimal("0.01")
_TOO_LARGE = Decimal(10) ** 16
_TRUE = {"true", "t", "1", "yes", "y", "是"}
_FALSE = {"false", "f", "0", "no", "n", "否"}


def is_blank(value) -> bool:
    return value is None or (isinstance(value, str) and value.strip() == "")


def parse_text(value) -> str:
    text = value if isinstance(value, str) else str(value)
    # PostgreSQL cannot store NUL in text; it carries no meaning in any source.
    return text.replace("\x00", "")


def parse_amount(value) -> Decimal:
    """'1299.00', '¥1,299.00', '￥1299', '1299元' and full-width digits -> Decimal(2 places)."""
    if isinstance(value, Decimal | int) and not isinstance(value, bool):
        amount = Decimal(value)
    elif isinstance(value, float):
        amount = Decimal(repr(value))
    else:
        text = _AMOUNT_NOISE.sub("", unicodedata.normalize("NFKC", str(value)))
        if not _AMOUNT_OK.match(text):
            raise ValueError(f"not an amount: {value!r}")
        try:
            amount = Decimal(text)
        except InvalidOperation as exc:  # pragma: no cover - the regex already guards this
            raise ValueError(f"not an amount: {value!r}") from exc
    if not amount.is_finite():  # NaN or Infinity, which JSON Lines can carry
        raise ValueError(f"not an amount: {value!r}")
    if amount < 0:
        raise ValueError(f"negative amount: {value!r}")
    if amount >= _TOO_LARGE:  # raw amounts are decimal(18, 2)
        raise ValueError(f"amount too large: {value!r}")
    return amount.quantize(_CENT, rounding=ROUND_HALF_UP)


def parse_int(value) -> int:
    if isinstance(value, bool):
        raise ValueError(f"not an integer: {value!r}")
    if isinstance(value, int):
        return _in_range(value, value)
    text = unicodedata.normalize("NFKC", str(value)).strip()
    try:
        number = Decimal(text)
    except InvalidOperation as exc:
        raise ValueError(f"not an integer: {value!r}") from exc
    if number != number.to_integral_value():
        raise ValueError(f"not an integer: {value!r}")
    return _in_range(int(number), value)


def _in_range(number: int, value) -> int:
    if not -(2**63) <= number < 2**63:  # raw integers are 64-bit
        raise ValueError(f"integer out of range: {value!r}")
    return number


def parse_timestamp(value, tz: ZoneInfo) -> dt.datetime:
    """ISO-8601 -> naive UTC. A value without an offset is local time in `tz`."""
    if isinstance(value, dt.datetime):
        ts = value
    elif isinstance(value, dt.date):
        ts = dt.datetime.combine(value, dt.time())
    else:
        text = unicodedata.normalize("NFKC", str(value)).strip()
        try:
            ts = dt.datetime.fromisoformat(text)
        except ValueError as exc:
            raise ValueError(f"not an ISO-8601 timestamp: {value!r}") from exc
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=tz)
    return ts.astimezone(dt.UTC).replace(tzinfo=None)


def parse_date(value) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    text = unicodedata.normalize("NFKC", str(value)).strip()
    try:
        return dt.date.fromisoformat(text)
    except ValueError as exc:
        raise ValueError(f"not an ISO date: {value!r}") from exc


def parse_bool(value) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"not a boolean: {value!r}")


def parse_field(field: Field, value, tz: ZoneInfo):
    if field.type == "text":
        out = parse_text(value)
        if field.enum is not None:
            out = out.strip()
            if out not in field.enum:
                raise ValueError(f"unknown value {value!r} (expected one of {', '.join(field.enum)})")
        return out
    if field.type == "int":
        out = parse_int(value)
        if field.min_value is not None and out < field.min_value:
            raise ValueError(f"{out} is below {field.min_value}")
        if field.max_value is not None and out > field.max_value:
            raise ValueError(f"{out} is above {field.max_value}")
        return out
    if field.type == "amount":
        return parse_amount(value)
    if field.type == "timestamp":
        return parse_timestamp(value, tz)
    if field.type == "date":
        return parse_date(value)
    if field.type == "bool":
        return parse_bool(value)
    raise AssertionError(f"unknown field type {field.type}")


def normalise_record(spec: EntitySpec, record: dict, tz: ZoneInfo) -> tuple[dict | None, str | None]:
    """(row, None) when the record keeps the contract, else (None, reason)."""
    row: dict = {}
    errors: list[str] = []
    for field in spec.fields:
        value = record.get(field.name)
        if is_blank(value):
            if field.required:
                errors.append(f"missing required field '{field.name}'")
            row[field.name] = None
            continue
        try:
            row[field.name] = parse_field(field, value, tz)
        except ValueError as exc:
            errors.append(f"{field.name}: {exc}")
    if errors:
        return None, "; ".join(errors)
    return row, None
