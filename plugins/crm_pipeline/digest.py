"""A digest of code files: what the incremental plan and the publish record as "the code that built this"."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path


def files_under(*roots: Path) -> list[Path]:
    """Every file below the roots that exist, in path order."""
    return sorted(p for r in roots if r.exists() for p in r.rglob("*") if p.is_file())


def files_digest(base: Path, files: Iterable[Path]) -> str:
    """16 hex digits of SHA-256 over each file's path (relative to `base`) and bytes, in the order given."""
    h = hashlib.sha256()
    for p in files:
        h.update(p.relative_to(base).as_posix().encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()[:16]
