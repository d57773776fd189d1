"""File drops: find landed files, detect their encoding and yield records with their line numbers.

Encodings are detected from the bytes, never assumed: a BOM decides first,
then UTF-16 by its NUL pattern, then UTF-8 and GB18030 (a superset of GBK)
are tried and the one that decodes more lines wins. Lines that still do not
decode are yielded as errors with their byte offset, for quarantine.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path

from crm_pipeline.sources.qq import qq_records
from crm_pipeline.sources.records import DecodedFile, RawRecord

# A long forum post in a CSV is one field: the csv module's default limit (131,072 characters)
# would stop the whole file with an error.
csv.field_size_limit(2**31 - 1)

SUFFIXES = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl", ".txt": "qq"}
# Formats only some entities arrive in: a QQ message-manager text export is chat, and a .txt
# anywhere else (a README beside the drops) is not a batch.
ENTITY_FORMATS = {"qq": {"chat_messages"}}
_BAD = "\U0010fffd"  # private-use marker for undecodable bytes; never in real text


def list_files(landing_dir: Path, entity: str) -> list[Path]:
    folder = landing_dir / entity
    if not folder.is_dir():
        return []
    return sorted(
        p
        for p in folder.rglob("*")
        if p.is_file()
        and p.suffix.lower() in SUFFIXES
        and entity in ENTITY_FORMATS.get(SUFFIXES[p.suffix.lower()], {entity})
    )


class _Recorder:
    """A codecs error handler that remembers where each undecodable byte was."""

    def __init__(self):
        self.offsets: list[int] = []
        self.name = f"crm-record-{id(self)}"
        codecs.register_error(self.name, self._handle)

    def _handle(self, exc: UnicodeDecodeError):
        self.offsets.append(exc.start)
        return _BAD, exc.end


def _decode(data: bytes, encoding: str) -> tuple[str, list[int]]:
    rec = _Recorder()
    text = data.decode(encoding, errors=rec.name)
    return text, rec.offsets


def detect_encoding(data: bytes) -> str:
    if data.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if data.startswith(codecs.BOM_UTF16_LE) or data.startswith(codecs.BOM_UTF16_BE):
        return "utf-16"
    sample = data[:4096]
    if len(sample) >= 4:
        odd_nuls = sample[1::2].count(0) / max(1, len(sample[1::2]))
        even_nuls = sample[0::2].count(0) / max(1, len(sample[0::2]))
        if odd_nuls > 0.3 and even_nuls < 0.05:
            return "utf-16-le"
        if even_nuls > 0.3 and odd_nuls < 0.05:
            return "utf-16-be"
    try:
        data.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError:
        pass
    # Count the lines each candidate fails on; a UTF-8 file with one corrupt
    # line must stay UTF-8, a GBK file fails UTF-8 almost everywhere.
    _, utf8_bad = _decode(data, "utf-8")
    _, gb_bad = _decode(data, "gb18030")
    return "gb18030" if len(gb_bad) < len(utf8_bad) else "utf-8"


def decode_file(data: bytes) -> DecodedFile:
    encoding = detect_encoding(data)
    text, offsets = _decode(data, encoding)
    lines: list[tuple[int, str]] = []
    bad: list[tuple[int, int, bytes]] = []
    offsets_iter = iter(offsets)
    # Split exactly as the csv module will (\r, \n, \r\n only), so line
    # numbers agree; str.splitlines would also split on U+2028 and friends.
    for i, line in enumerate(io.StringIO(text, newline="").readlines(), start=1):
        if _BAD in line:
            # One offset per undecodable run; the first in this line names it.
            first = next(offsets_iter)
            for _ in range(line.count(_BAD) - 1):
                next(offsets_iter, None)
            bad.append((i, first, line.replace(_BAD, "\\ufffd").encode("utf-8", "backslashreplace")))
        else:
            lines.append((i, line))
    return DecodedFile(encoding, lines, bad)


def _csv_records(decoded: DecodedFile) -> Iterator[RawRecord]:
    line_numbers = [n for n, _ in decoded.lines]
    reader = csv.reader(io.StringIO("".join(t for _, t in decoded.lines), newline=""))
    try:
        header = next(reader)
    except StopIteration:
        return
    header = [h.strip().lstrip("\ufeff") for h in header]
    consumed = reader.line_num
    for row in reader:
        start = line_numbers[consumed] if consumed < len(line_numbers) else None
        consumed = reader.line_num
        if (rec := csv_record(start, row, header)) is not None:
            yield rec


def csv_record(line_no: int | None, row: list[str], header: list[str]) -> RawRecord | None:
    """One parsed CSV row as a record (None for a blank row, which is skipped)."""
    if not row or all(c.strip() == "" for c in row):
        return None
    raw = json.dumps(row, ensure_ascii=False)
    if len(row) != len(header):
        return RawRecord(line_no, None, raw, f"expected {len(header)} fields, got {len(row)}")
    return RawRecord(line_no, dict(zip(header, row, strict=True)), raw)


def jsonl_record(line_no: int, line: str) -> RawRecord | None:
    """One JSON Lines line as a record (None for a blank line, which is skipped)."""
    text = line.strip()
    if not text:
        return None
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        return RawRecord(line_no, None, text, f"invalid JSON: {exc.msg} at column {exc.colno}")
    if not isinstance(obj, dict):
        return RawRecord(line_no, None, text, "a JSON Lines record must be an object")
    return RawRecord(line_no, obj, text)


def _jsonl_records(decoded: DecodedFile) -> Iterator[RawRecord]:
    for n, line in decoded.lines:
        if (rec := jsonl_record(n, line)) is not None:
            yield rec


def csv_header(decoded: DecodedFile) -> list[str]:
    reader = csv.reader(io.StringIO("".join(t for _, t in decoded.lines[:50]), newline=""))
    return [h.strip().lstrip("\ufeff") for h in next(reader, [])]


def read_records(path: Path, data: bytes | None = None) -> tuple[str, list[str] | None, Iterator[RawRecord]]:
    """(encoding, CSV header or None, records) for one landed file (its bytes, if already read)."""
    data = path.read_bytes() if data is None else data
    decoded = decode_file(data)
    fmt = SUFFIXES[path.suffix.lower()]

    def records() -> Iterator[RawRecord]:
        for n, offset, raw in decoded.bad_lines:
            yield RawRecord(n, None, raw.decode("utf-8"), f"invalid {decoded.encoding} bytes at byte offset {offset}")
        if fmt == "qq":
            yield from qq_records(decoded)
        else:
            yield from (_csv_records(decoded) if fmt == "csv" else _jsonl_records(decoded))

    header = csv_header(decoded) if fmt == "csv" else None
    return decoded.encoding, header, records()
