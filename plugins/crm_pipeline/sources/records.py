"""What every file reader yields: a record with its line number, or the reason it could not be read."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class RawRecord:
    line_no: int | None
    record: dict | None  # None when the line could not be read at all
    raw: str  # the record as it was read, for quarantine
    error: str | None = None
    deleted: bool = False  # the source marks it deleted: it loads as a tombstone


@dataclass
class DecodedFile:
    encoding: str
    lines: list[tuple[int, str]]  # (1-based line number, text) of lines that decoded
    bad_lines: list[tuple[int, int, bytes]]  # (line number, byte offset of the bad byte, line bytes)
