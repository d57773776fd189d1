"""What the package's replacements inside installed packages share (transform/dbt_speedups.py,
quality/gx_speedups.py): each set is applied only where every package it names is installed at the version
it was checked against, once per process, and can be undone (for tests)."""

from __future__ import annotations

import importlib.metadata
import threading
from collections.abc import Callable

_INHERITED = object()  # what undo() finds for a name the owner did not define itself: it deletes the replacement


class Replacements:
    def __init__(self, checked: dict[str, str]):
        self.checked = checked  # package -> the version the replacements were checked against
        self.lock = threading.Lock()
        self.originals: list[tuple[object, str, object]] = []

    def versions_checked(self) -> bool:
        """Whether the installed packages are the versions these replacements were checked against."""
        try:
            return all(importlib.metadata.version(name) == version for name, version in self.checked.items())
        except importlib.metadata.PackageNotFoundError:
            return False

    def applied(self) -> bool:
        return bool(self.originals)

    def apply(self, install: Callable[[], None]) -> bool:
        """`install()` (which calls replace) once per process; False, and nothing replaced, on other versions."""
        with self.lock:
            if self.originals:
                return True
            if not self.versions_checked():
                return False
            install()
            return True

    def replace(self, owner, name: str, new) -> None:
        self.originals.append((owner, name, vars(owner).get(name, _INHERITED)))
        setattr(owner, name, new)

    def undo(self) -> None:
        """The packages as they come again."""
        with self.lock:
            while self.originals:
                owner, name, original = self.originals.pop()
                if original is _INHERITED:
                    delattr(owner, name)
                else:
                    setattr(owner, name, original)
