"""Vectorised loading of landed files: the per-record rules of normalise.py, run column-wise.

The per-record path (sources.files -> normalise.normalise_record -> row_hash)
costs about 12 microseconds a row in Python. Here a file is parsed by Arrow's
CSV reader (or, for JSON Lines, by DuckDB's JSON functions) and normalised in
one DuckDB query, for a *strict subset* of values whose result is certain:
ASCII numbers, shop amounts (¥, thousands commas, 元, full-width digits), ISO
timestamps of one exact shape, enum values spelt exactly, text that is not
blank. A row where any value falls outside that subset is
handed back as a record for the per-record path, which decides it exactly as
before (a parse, a quarantine reason, a skip). So both paths give the same
rows, the same reasons and the same row hashes; tests/plugins/load/
test_fast.py holds them to it on hostile files.

A whole file goes the per-record way when the vectorised reading cannot be
sure of the records: bytes that do not decode, NUL or the undecodable-byte
marker in the text, a record over several lines or a blank line (line
numbers), a CSV line the csv module reads differently from Arrow, a header
without a required column or with a repeated name, a source shape an adapter
rewrites, extra columns carried in _extra.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
import threading
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

import pyarrow as pa

from crm_pipeline.load.specs import EntitySpec, adapter
from crm_pipeline.sources.files import _BAD, RawRecord, csv_record, jsonl_record

# Every character str.isspace() is true for: a value made only of these is blank to normalise.is_blank.
_SPACE = "".join(chr(c) for c in range(0x110000) if chr(c).isspace())
_NOT_SPACE = "[^" + "".join(f"\\x{{{ord(c):x}}}" for c in _SPACE) + "]"
# Control characters row_hash's json.dumps would escape as \\u00XX (tab, CR and LF are escaped by the chain below).
_ODD_CONTROL = "[\\x{0}-\\x{8}\\x{b}\\x{c}\\x{e}-\\x{1f}]"
_ODD_RE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f]")
# Controls other than the line breaks readlines() ends a line at.
_CONTROL_RE = re.compile("[\x00-\x09\x0b\x0c\x0e-\x1f]")
_INT = "^[+-]?[0-9]{1,18}$"
_AMOUNT = "^[0-9]{1,16}([.][0-9]{1,2})?$"
_AMOUNT_SHOP = "^¥?[0-9,]+([.][0-9]+)?元?$"
_DATE = "^[12][0-9]{3}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$"
_TS = (
    "^[12][0-9]{3}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])[T ]([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]"
    "([.][0-9]{1,6})?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])?$"
)
_TRUE = ("true", "t", "1", "yes", "y", "是")
_FALSE = ("false", "f", "0", "no", "n", "否")


_OFFSETS: dict[str, dict[dt.datetime, int | None]] = {}  # zone -> local hour -> offset minutes


@dataclass
class FastBatch:
    """What the vectorised pass decided: rows fully normalised, and records left to the per-record path."""

    good: pa.Table  # the spec's fields, typed, plus _line_no and _row_hash
    slow: list[RawRecord]
    header: list[str] | None
    extras: set[str] = field(default_factory=set)
    encoding: str | None = None


def _lit(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _esc(expr: str, chars) -> str:
    """The string as json.dumps(ensure_ascii=False) writes it inside quotes (for values without odd controls).

    Only the characters in `chars` are replaced: those the file can hold in a value.
    """
    out = expr
    for char in [c for c in _ESCAPES if c in chars]:  # the backslash first
        target = {"\n": "chr(10)", "\r": "chr(13)", "\t": "chr(9)"}.get(char, _lit(char))
        out = f"replace({out}, {target}, {_lit(_ESCAPES[char])})"
    return out


def _parsed(f, r: str, odd: bool = True) -> list[tuple[str, str]]:
    """(column, expression) of a field's value parsed from its text r; null where the strict subset does not hold.

    Checks a file cannot need are left out: `odd` is False when the file has no control characters.
    """
    if f.type == "text":
        accept = f"regexp_matches({r}, '{_NOT_SPACE}')"
        if odd:
            accept += f" and not regexp_matches({r}, '{_ODD_CONTROL}')"
        if f.enum is not None:
            accept = f"{r} in ({', '.join(map(_lit, f.enum))})"  # spelt exactly: no strip, no odd characters
        return [("n", f"case when {accept} then {r} end")]
    if f.type == "int":
        return [("n", f"case when regexp_matches({r}, '{_INT}') then cast({r} as bigint) end")]
    if f.type == "amount":
        # Shop exports write '¥1,299.00', '￥1299', '1299元' and full-width digits: NFKC folds exactly
        # these characters as translate() does, and parse_amount then drops ¥, commas and 元.
        folded = f"translate({r}, '０１２３４５６７８９．，￥', '0123456789.,¥')"
        plain = f"replace(replace(replace({folded}, '¥', ''), ',', ''), '元', '')"
        return [
            (
                "n",
                f"case when regexp_matches({r}, '{_AMOUNT}') then cast({r} as decimal(18, 2)) "
                f"when regexp_matches({folded}, '{_AMOUNT_SHOP}') and regexp_matches({plain}, '{_AMOUNT}') "
                f"then cast({plain} as decimal(18, 2)) end",
            )
        ]
    if f.type == "date":
        return [("n", f"case when regexp_matches({r}, '{_DATE}') then try_cast({r} as date) end")]
    if f.type == "bool":
        return [
            (
                "n",
                f"case when lower({r}) in ({', '.join(map(_lit, _TRUE))}) then true "
                f"when lower({r}) in ({', '.join(map(_lit, _FALSE))}) then false end",
            )
        ]
    if f.type == "timestamp":
        # The local part (seconds and any fraction) and the offset in minutes, if the value has one.
        fraction = f"regexp_extract({r}, '^.{{19}}([.][0-9]+)', 1)"
        local = f"try_cast(replace(substr({r}, 1, 19) || {fraction}, 'T', ' ') as timestamp)"
        off = f"regexp_extract({r}, '(Z|[+-][0-9]{{2}}:[0-9]{{2}})$', 1)"
        minutes = (
            f"case when {off} = 'Z' then 0 when {off} = '' then null "
            f"else (case when left({off}, 1) = '-' then -1 else 1 end) "
            f"* (cast(substr({off}, 2, 2) as int) * 60 + cast(substr({off}, 5, 2) as int)) end"
        )
        return [("n", f"case when regexp_matches({r}, '{_TS}') then {local} end"), ("o", minutes)]
    raise AssertionError(f.type)  # pragma: no cover - specs.py names the types


def _typed(f, i: int) -> tuple[str, str]:
    """(value, ok) of field i over the stage columns b<i> (blank), n<i> (parsed) and, for timestamps, the zone."""
    value = f"n{i}"
    if f.type == "timestamp":
        # An offset-less value takes the zone's offset for its local hour (_zone_offsets); null if none.
        value = f"n{i} - to_minutes(coalesce(o{i}, z{i}.offset_minutes))"
    accept = f"{value} is not null"
    if f.min_value is not None:
        accept += f" and {value} >= {f.min_value}"
    if f.max_value is not None:
        accept += f" and {value} <= {f.max_value}"
    return value, f"case when b{i} then {'false' if f.required else 'true'} else {accept} end"


def _render(f, v: str, chars) -> str:
    """str(value) of a parsed value that is not null, as row_hash puts it in its JSON list (without the quotes)."""
    if f.type == "text":
        return _esc(v, chars)
    if f.type in ("int", "amount"):
        return f"cast({v} as varchar)"
    if f.type == "date":
        return f"strftime({v}, '%Y-%m-%d')"
    if f.type == "timestamp":
        return (
            f"concat(strftime({v}, '%Y-%m-%d %H:%M:%S'), "
            f"case when epoch_us({v}) % 1000000 = 0 then '' else '.' || strftime({v}, '%f') end)"
        )
    if f.type == "bool":
        return f"case when {v} then 'True' else 'False' end"
    raise AssertionError(f.type)  # pragma: no cover


def _hashed(fields, chars) -> str:
    """row_hash of the typed columns v<i>: sha256 of the JSON list of each value's str() (null for null), 32 hex digits.

    One concat for the whole list: a chain of || builds every intermediate string.
    """
    items = ", ', ', ".join(
        f"case when v{i} is null then 'null' else concat('\"', {_render(f, f'v{i}', chars)}, '\"') end"
        for i, f in enumerate(fields)
    )
    return f"left(sha256(concat('[', {items}, ']')), 32)"


def _zone_offsets(tz: ZoneInfo, hours: list[dt.datetime]) -> pa.Table:
    """Minutes to subtract from a local time in each hour, as parse_timestamp would (null: it changes in the hour)."""
    rows_h, rows_m = [], []
    cache = _OFFSETS.setdefault(tz.key, {})
    for h in hours:
        if h is None:
            continue
        if h not in cache:
            first = h.replace(tzinfo=tz).utcoffset()
            last = (h + dt.timedelta(minutes=59, seconds=59, microseconds=999999)).replace(tzinfo=tz).utcoffset()
            same = first == last and first.total_seconds() % 60 == 0
            cache[h] = int(first.total_seconds() // 60) if same else None
        rows_h.append(h)
        rows_m.append(cache[h])
    return pa.table({"hour": pa.array(rows_h, pa.timestamp("us")), "offset_minutes": pa.array(rows_m, pa.int64())})


def _normalise(con, spec: EntitySpec, raw_exprs: dict[str, str], tz: ZoneInfo, chars: str, odd: bool) -> pa.Table:
    """Run the vectorised rules over the relation `src` (with _idx and _line_no); raw_exprs give each field's text.

    `chars`: the characters json.dumps escapes that values of this file can hold; `odd`: whether
    they can hold other control characters.
    """
    fields = list(spec.fields)
    ts_fields = [i for i, f in enumerate(fields) if f.type == "timestamp"]
    cols = ["_idx", "_line_no"]
    for i, f in enumerate(fields):
        cols.append(f"(r{i} is null or r{i} = '') as b{i}")
        cols += [f"{expr} as {name}{i}" for name, expr in _parsed(f, f"r{i}", odd)]
    raws = ", ".join(f"{raw_exprs.get(f.name, 'cast(null as varchar)')} as r{i}" for i, f in enumerate(fields))
    con.execute(f"create or replace temp table stage as select {', '.join(cols)} from (select *, {raws} from src)")
    hours = " union all ".join(
        f"select date_trunc('hour', n{i}) as h from stage where n{i} is not null and o{i} is null" for i in ts_fields
    )
    zones = _zone_offsets(
        tz, [h for (h,) in con.execute(f"select distinct h from ({hours})").fetchall()] if hours else []
    )
    con.register("zones", zones)
    joins = " ".join(
        f"left join zones z{i} on o{i} is null and z{i}.hour = date_trunc('hour', n{i})" for i in ts_fields
    )
    typed = [_typed(f, i) for i, f in enumerate(fields)]
    values = ", ".join(f"{v} as v{i}" for i, (v, _) in enumerate(typed))
    oks = " and ".join(f"({ok})" for _, ok in typed)
    names = ", ".join(f'v{i} as "{f.name}"' for i, f in enumerate(fields))
    sql = f"""
        with typed as (
            select _idx, _line_no, coalesce({oks}, false) as _ok, {values}
            from stage {joins}
        )
        select _idx, _line_no, _ok, {names}, {_hashed(fields, chars)} as _row_hash
        from typed
    """
    return con.sql(sql).to_arrow_table()


_LOCAL = threading.local()


def _connect():
    """One in-memory DuckDB per thread, reused file after file (a new one costs about 13 ms)."""
    if getattr(_LOCAL, "con", None) is None:
        import duckdb

        _LOCAL.con = duckdb.connect(config={"threads": 2})
    return _LOCAL.con


# A CSV line whose fields are each plain (no quote) or wholly quoted with inner quotes doubled.
_FIELD = '(?:[^",\\r\\n]*|"(?:[^"]|"")*")'
_WELL_QUOTED = f"^{_FIELD}(?:,{_FIELD})*(?:\\r\\n|\\n|\\r)?$"


def _unsure_quoting(lines: list[str] | pa.Array) -> list[int]:
    """Indexes of the lines with a quote that are not well quoted (_WELL_QUOTED), in order.

    `lines` may be the lines' UTF-8 bytes: every character the pattern names is ASCII, so it
    matches the bytes as it matches the text.
    """
    import pyarrow.compute as pc

    arr = lines if isinstance(lines, pa.Array) else pa.array(lines, pa.string())
    quoted = pc.indices_nonzero(pc.match_substring(arr, '"'))  # the pattern is read on these lines only
    unsure = pc.invert(pc.match_substring_regex(arr.take(quoted), _WELL_QUOTED))
    return quoted.filter(unsure).to_pylist()


class _Lines:
    """A decoded file's lines as readlines(newline="") splits them (at CR, LF or CRLF), made only when asked.

    A file whose every CR is part of a CRLF ends a line at LF only: its lines are counted, and split as
    UTF-8 bytes by Arrow, without a Python string per line (a 20,000-line file: about 20 ms less).
    """

    def __init__(self, text: str, data: bytes):
        self.text, self.data = text, data
        lone_cr = "\r" in text and text.count("\r") != text.count("\r\n")
        self._list = io.StringIO(text, newline="").readlines() if lone_cr else None
        self._count = (
            len(self._list)
            if self._list is not None
            else text.count("\n") + (0 if text.endswith("\n") or not text else 1)
        )

    def count(self) -> int:
        return self._count

    def first(self) -> str:
        if self._list is not None:
            return self._list[0]
        end = self.text.find("\n")
        return self.text if end < 0 else self.text[: end + 1]

    def arrow(self) -> pa.Array:
        """Each line, as bytes without its LF where no list was made (_WELL_QUOTED matches either way)."""
        if self._list is not None:
            return pa.array(self._list, pa.string())
        import pyarrow.compute as pc

        parts = pc.split_pattern(pa.array([self.data], pa.large_binary()), b"\n").flatten()
        return parts.slice(0, self.count())

    def some(self, arr: pa.Array, idx: list[int]) -> list[str]:
        """Lines idx of arr (from arrow()) as readlines gives them, line end included."""
        picked = arr.take(pa.array(idx, pa.int64())).to_pylist()
        if self._list is not None:
            return picked
        last = self.count() - 1
        return [
            v.decode("utf-8") + ("\n" if i < last or self.text.endswith("\n") else "")
            for i, v in zip(idx, picked, strict=True)
        ]


def _csv_columns(text: str) -> tuple[list[str], pa.Table] | None:
    """Header and string columns (with _line_no) when Arrow reads exactly what the csv module reads, else None."""
    import pyarrow.csv as pacsv

    data = text.encode("utf-8")
    lines = _Lines(text, data)
    if not lines.count():
        return None
    width = len(next(csv.reader([lines.first()])))
    try:
        tbl = pacsv.read_csv(
            io.BytesIO(data),
            read_options=pacsv.ReadOptions(autogenerate_column_names=True, block_size=1 << 22),
            parse_options=pacsv.ParseOptions(newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(
                column_types={f"f{i}": pa.string() for i in range(width)},
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return None  # a row with another number of fields, an unterminated quote...
    # Arrow drops blank lines and joins a quoted value over several lines; either leaves fewer rows
    # than lines, and then line numbers would not be the record's own.
    if tbl.num_rows != lines.count() or tbl.num_columns != width:
        return None
    # Lines with a quote are where csv (excel dialect, not strict) and Arrow could disagree, unless
    # every field is plain or wholly quoted (quotes inside doubled): both read those as RFC 4180 says.
    arr = lines.arrow() if '"' in text else None
    quoted = _unsure_quoting(arr) if arr is not None else []
    if quoted:
        by_csv = list(csv.reader(lines.some(arr, quoted)))
        by_arrow = list(zip(*(c.to_pylist() for c in tbl.take(quoted).columns), strict=True))
        if len(by_csv) != len(by_arrow) or any(list(a) != b for a, b in zip(by_arrow, by_csv, strict=True)):
            return None
    header = [h.strip().lstrip("\ufeff") for h in tbl.slice(0, 1).to_pylist()[0].values()]
    body = tbl.slice(1)
    body = body.rename_columns([f"c{i}" for i in range(width)])
    n = body.num_rows
    body = body.append_column("_line_no", pa.array(range(2, n + 2), pa.int64()))
    return header, body.append_column("_idx", pa.array(range(n), pa.int64()))


def try_fast(
    spec: EntitySpec, fmt: str, text: str, tz: ZoneInfo, suppression=None, carry: bool = False
) -> FastBatch | None:
    """Normalise a decoded file column-wise, or None when only the per-record path can read it exactly."""
    if "\x00" in text or _BAD in text or "\\u0000" in text:
        return None
    if fmt == "csv":
        return _fast_csv(spec, text, tz, suppression, carry)
    if fmt != "jsonl":
        return None  # other formats (QQ text) are read record by record
    if adapter(spec.name) is not None:
        return None  # record shapes an adapter rewrites are known only record by record
    return _fast_jsonl(spec, text, tz, suppression, carry)


def _fast_csv(spec, text, tz, suppression, carry) -> FastBatch | None:
    read = _csv_columns(text)
    if read is None:
        return None
    header, body = read
    if len(set(header)) != len(header) or any(c not in header for c in spec.required):
        return None
    adapt = adapter(spec.name)
    if adapt is not None:
        probe = dict.fromkeys(header, "")
        if adapt(probe) is not probe:
            return None
    extras = set(header) - set(spec.field_names)
    if extras and carry:
        return None
    raw = {name: f"c{header.index(name)}" for name in spec.field_names if name in header}
    # A row whose every cell is empty is skipped, as the csv reading skips it.
    blank_cols = [f"c{i}" for i in range(len(header))]
    con = _connect()
    con.register("src_in", body)
    con.execute(
        "create or replace temp view src as select * from src_in where not ("
        + " and ".join(f"{c} = ''" for c in blank_cols)
        + ")"
    )
    # A value is part of one line: it holds no line break, and the other characters only if the file does.
    out = _normalise(con, spec, raw, tz, [c for c in '\\"\t' if c in text], bool(_ODD_RE.search(text)))

    def slow_records(idx: list[int]) -> list[RawRecord]:
        rows = body.take(pa.array(idx, pa.int64()))
        cells = list(zip(*(rows.column(f"c{i}").to_pylist() for i in range(len(header))), strict=True))
        recs = [csv_record(n, list(r), header) for n, r in zip(rows.column("_line_no").to_pylist(), cells, strict=True)]
        return [r for r in recs if r is not None]

    return _split(spec, out, slow_records, header, extras, suppression)


def _distinct_keys(lines: list[str]) -> list[str] | None:
    """The keys of the first line that is a JSON object, in order, if none is repeated."""
    for line in lines:
        if line.strip():
            try:
                pairs = json.loads(line, object_pairs_hook=lambda kv: kv)
            except ValueError:
                return None
            if not isinstance(pairs, list) or not all(isinstance(kv, tuple) for kv in pairs):
                return None
            keys = [k for k, _ in pairs]
            return keys if len(set(keys)) == len(keys) else None
    return None


def _fast_jsonl(spec, text, tz, suppression, carry) -> FastBatch | None:
    lines = io.StringIO(text, newline="").readlines()
    con = _connect()
    con.register(
        "src_in",
        pa.table(
            {
                "line": pa.array(lines, pa.string()),
                "_line_no": pa.array(range(1, len(lines) + 1), pa.int64()),
                "_idx": pa.array(range(len(lines)), pa.int64()),
            }
        ),
    )
    # Lines DuckDB's reader would accept but json.loads would not (trailing commas), lines with
    # controls or surrogate escapes, and repeated keys are left to the per-record path. A line
    # break ends a line, so a file without other controls has no line with one: no need to look.
    controls = (
        "and not regexp_matches(rtrim(line, chr(10) || chr(13)), '[\\x{0}-\\x{1f}]')"
        if _CONTROL_RE.search(text)
        else ""
    )
    con.execute(
        f"""create or replace temp view src_a as
        select *, coalesce(case when json_valid(line) then json_type(line) = 'OBJECT' end, false)
            {controls}
            and not regexp_matches(line, ',\\s*[\\]}}]')
            and not regexp_matches(line, '\\\\[uU][dD][89abAB]')
            as _json_ok
        from src_in where line not in ('', chr(10), chr(13), chr(13) || chr(10))"""
    )
    # One parse per line each: the keys, and each contract field's JSON type and value as text
    # (null where the key is absent).
    paths = "[" + ", ".join(_lit(f'$."{f.name}"') for f in spec.fields) + "]"
    con.execute(
        "create or replace temp table src_b as select * exclude (line), "
        "case when _json_ok then json_keys(line) end as _keys, "
        f"case when _json_ok then json_type(line, {paths}) end as _t, "
        f"case when _json_ok then json_extract_string(line, {paths}) end as _s from src_a"
    )
    # Repeated keys: json.loads keeps the last, DuckDB may not. Lines are mostly alike, so a line
    # with the first line's keys (checked here) is not counted again.
    first = _distinct_keys(lines)
    same = f"_keys = [{', '.join(map(_lit, first))}] or " if first else ""
    con.execute(
        "create or replace temp view src as select * replace ("
        f"_json_ok and ({same}len(_keys) = len(list_distinct(_keys))) as _json_ok) from src_b"
    )
    raw = {}
    for k, f in enumerate(spec.fields, start=1):
        kind = f"_t[{k}]"
        allowed = ["'VARCHAR'"]
        # json.loads gives an int; str() of it is what a text field would keep, and DuckDB may spell it apart.
        if f.type in ("int", "amount"):
            allowed += ["'BIGINT'", "'UBIGINT'"]
        if f.type == "bool":
            allowed.append("'BOOLEAN'")
        # chr(0) is a value no rule accepts: the row goes to the per-record path.
        raw[f.name] = (
            f"(case when not _json_ok then chr(0) when {kind} is null or {kind} = 'NULL' then null "
            f"when {kind} in ({', '.join(allowed)}) then _s[{k}] else chr(0) end)"
        )
    # Without a backslash in the file no value holds a quote, a control or a line break.
    escaped = "\\" in text
    out = _normalise(con, spec, raw, tz, "".join(_ESCAPES) if escaped else "", escaped)
    key_lists = con.execute("select distinct _keys from src where _json_ok").fetchall()
    extras = {k for (keys,) in key_lists for k in keys} - set(spec.field_names)
    if extras and carry:
        return None

    def slow_records(idx: list[int]) -> list[RawRecord]:
        recs = [jsonl_record(i + 1, lines[i]) for i in idx]
        return [r for r in recs if r is not None]

    return _split(spec, out, slow_records, None, extras, suppression)


def _split(spec, out: pa.Table, slow_records, header, extras, suppression) -> FastBatch:
    import pyarrow.compute as pc

    ok = out.column("_ok")
    if suppression:
        ok = pc.and_(ok, pc.invert(_erased_mask(spec, out, suppression)))
    slow_idx = out.filter(pc.invert(ok)).column("_idx").to_pylist()
    good = out.filter(ok).drop_columns(["_idx", "_ok"])
    slow = slow_records(sorted(slow_idx))
    return FastBatch(good, slow, header, extras)


def _erased_mask(spec: EntitySpec, out: pa.Table, suppression) -> pa.ChunkedArray:
    """Rows naming an erased person: the per-record path quarantines them (suppression.Suppression)."""
    import pyarrow.compute as pc

    from crm_pipeline.load.suppression import SUPPRESSED_BY

    mask = pa.chunked_array([pa.array([False] * out.num_rows)])
    for _kind, column in SUPPRESSED_BY.get(spec.name, []):
        col = out.column(column)
        values = col.cast(pa.string()).unique().to_pylist()
        hit = [v for v in values if v is not None and suppression.erased(spec.name, {column: v})]
        if hit:
            mask = pc.or_(mask, pc.fill_null(pc.is_in(col.cast(pa.string()), pa.array(hit, pa.string())), False))
    return mask
