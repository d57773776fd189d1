"""Two of dbt's costs per SQL statement, taken out of this process's dbt (applied before each dbt call).

A build of the tests' small sample spends most of its time in dbt's Python, not in
the warehouse, and a third of that went to two things nobody sees:

* **Log events nobody reads.** dbt makes a log event for every statement it runs
  (the SQL, its status, the connection, the commit), most of them at debug level:
  the event's fields go through protobuf's pure-Python ParseDict when it is made,
  again when it is fired, and the file log formats it and drops it by its level
  (CRM_DBT_LOG_LEVEL is info unless set). Here an event is parsed when it is
  first read, and a debug event is not fired when no logger of the invocation
  writes debug lines and every callback is one that ignores them (ours, that
  keeps info and above, and dbt's behaviour-change tracker, that keeps one warning).
  With CRM_DBT_LOG_LEVEL=debug every event is fired and written as before.
* **An empty table per statement.** A statement that returns no rows gives an
  empty agate table; agate builds its column-type tester for it, and the tester
  builds a date parser (parsedatetime's locale tables) each time. An empty table
  with no columns needs no tester.

These replace functions inside dbt-common and agate, so they are applied only
with the versions they were checked against (requirements.lock); with any other,
dbt runs as it comes, only slower (docs/testing.md has the figures).
tests/plugins/test_dbt_speedups.py holds each to what it replaces.
"""

from __future__ import annotations

import importlib.metadata
import threading

CHECKED = {"dbt-common": "1.39.0", "agate": "1.9.1"}

_lock = threading.Lock()
_parsing = threading.RLock()  # re-entered: a field that does not parse fires a warning event, parsed too
_originals: list[tuple[object, str, object]] = []


def ignores_debug(callback):
    """Mark a dbt event callback as one that does nothing with debug events (so none need be fired for it)."""
    callback.ignores_debug = True
    return callback


def versions_checked() -> bool:
    """Whether the installed packages are the versions these replacements were checked against."""
    try:
        return all(importlib.metadata.version(name) == version for name, version in CHECKED.items())
    except importlib.metadata.PackageNotFoundError:
        return False


def applied() -> bool:
    return bool(_originals)


def apply() -> bool:
    """Put the replacements in place (once per process); False, and nothing replaced, on other versions."""
    with _lock:
        if _originals:
            return True
        if not versions_checked():
            return False
        _lazy_events()
        _debug_events_skipped()
        _empty_table()
        return True


def undo() -> None:
    """dbt as it comes again (for tests)."""
    with _lock:
        while _originals:
            owner, name, original = _originals.pop()
            setattr(owner, name, original)


def _replace(owner, name: str, new) -> None:
    _originals.append((owner, name, getattr(owner, name)))
    setattr(owner, name, new)


def _lazy_events() -> None:
    """BaseEvent keeps its arguments and parses them into its protobuf message (pb_msg) when first read."""
    from dbt_common.events.base_types import BaseEvent

    parse = BaseEvent.__init__  # dbt's own: ParseDict, and a warning event if the fields do not parse

    def keep_arguments(self, *args, **kwargs) -> None:
        object.__setattr__(self, "_unparsed", (args, kwargs))

    def message(self):
        state = self.__dict__
        if "pb_msg" not in state:
            with _parsing:  # an event read by two threads at once is parsed once
                if "pb_msg" not in state:
                    args, kwargs = state["_unparsed"]
                    parse(self, *args, **kwargs)
        return state["pb_msg"]

    def get_field(self, key):
        return message(self) if key == "pb_msg" else message(self).__getattribute__(key)

    def set_field(self, key, value):
        if key == "pb_msg":
            object.__setattr__(self, key, value)
        else:
            message(self).__setattr__(key, value)

    _replace(BaseEvent, "__init__", keep_arguments)
    _replace(BaseEvent, "__getattr__", get_field)
    _replace(BaseEvent, "__setattr__", set_field)


def _debug_events_skipped() -> None:
    from dbt_common.events.base_types import EventLevel
    from dbt_common.events.event_manager import EventManager

    fire = EventManager.fire_event

    def fire_event(self, e, level=None, node=None, force_warn_or_error_handling=False) -> None:
        if (
            (level or e.level_tag()) == EventLevel.DEBUG
            and not force_warn_or_error_handling
            and all(logger.level != EventLevel.DEBUG for logger in self.loggers)
            and all(_ignores_debug(callback) for callback in self.callbacks)
        ):
            return
        fire(self, e, level=level, node=node, force_warn_or_error_handling=force_warn_or_error_handling)

    _replace(EventManager, "fire_event", fire_event)


def _ignores_debug(callback) -> bool:
    if getattr(callback, "ignores_debug", False):
        return True
    # dbt's own: sends BehaviorChangeEvent (a warning) to its tracking, and returns for anything else.
    return getattr(callback, "__module__", "") == "dbt.tracking" and callback.__name__ == "track_behavior_change_warn"


def _empty_table() -> None:
    import agate
    from dbt_common.clients import agate_helper

    def empty_table():
        """An empty agate table, as dbt-common's, without agate's type tester (no columns to type)."""
        return agate.Table(rows=[], column_names=[], column_types=[])

    _replace(agate_helper, "empty_table", empty_table)
