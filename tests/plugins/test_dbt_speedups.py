"""crm_pipeline.transform.dbt_speedups: what each replacement keeps of dbt's behaviour, and what it saves.

Each test runs with the replacements in place (`speedups`) and, where it says what is
saved, fails with dbt as it comes: an event parsed when made, a debug event fired and
formatted for a log that drops it, a type tester for an empty table, a template compiled
by every environment dbt makes, a macro generator constructed one call at a time.
"""

from __future__ import annotations

import io

import pytest

from crm_pipeline.transform import dbt_speedups


@pytest.fixture
def speedups():
    was = dbt_speedups.applied()
    assert dbt_speedups.apply(), f"not the checked versions: {dbt_speedups.CHECKED}"
    yield
    if not was:
        dbt_speedups.undo()


def _manager(level: str, *callbacks):
    """A dbt event manager with one text logger at `level` into a string, and these callbacks."""
    from dbt_common.events.base_types import EventLevel
    from dbt_common.events.event_manager import EventManager
    from dbt_common.events.logger import LineFormat, LoggerConfig

    out = io.StringIO()
    manager = EventManager()
    manager.add_logger(
        LoggerConfig(name=f"test-{level}", level=EventLevel(level), line_format=LineFormat.PlainText, output_stream=out)
    )
    for callback in callbacks:
        manager.add_callback(callback)
    return manager, out


def _sql_query(sql: str = "select 1 as one"):
    from dbt.adapters.events.types import SQLQuery

    return SQLQuery(conn_name="model.crm.a", sql=sql, node_info={"unique_id": "model.crm.a", "node_name": "a"})


def test_a_debug_event_nobody_writes_is_neither_parsed_nor_fired(speedups):
    from dbt_common.events.types import Note

    seen = []

    @dbt_speedups.ignores_debug
    def keep(msg) -> None:
        seen.append(msg)

    manager, out = _manager("info", keep)
    query = _sql_query()
    manager.fire_event(query)
    manager.fire_event(Note(msg="an info line"))
    assert "pb_msg" not in query.__dict__  # never parsed: nothing read it
    assert [m.info.msg for m in seen] == ["an info line"]
    assert "an info line" in out.getvalue() and "select 1" not in out.getvalue()


def test_a_debug_event_reaches_a_debug_log_and_any_other_callback(speedups):
    manager, out = _manager("debug")
    manager.fire_event(_sql_query("select 2 as two"))
    assert "On model.crm.a: select 2 as two" in out.getvalue()

    seen = []
    manager, out = _manager("info", seen.append)  # a callback not known to ignore debug events
    manager.fire_event(_sql_query("select 3 as three"))
    assert [(m.info.level, m.info.msg) for m in seen] == [("debug", "On model.crm.a: select 3 as three")]
    assert out.getvalue() == ""


def test_an_event_reads_as_dbt_makes_it(speedups):
    """The fields as written by hand from the call, when first read: the nested message's unset strings
    empty, its unset messages (meta, node_relation) left out, as protobuf writes them."""
    from dbt_common.events.base_types import msg_from_base_event

    query = _sql_query("select 'é' as e")
    assert query.to_dict() == {
        "conn_name": "model.crm.a",
        "sql": "select 'é' as e",
        "node_info": {
            "unique_id": "model.crm.a",
            "node_name": "a",
            "node_path": "",
            "materialized": "",
            "resource_type": "",
            "node_status": "",
            "node_started_at": "",
            "node_finished_at": "",
            "node_checksum": "",
        },
    }
    msg = msg_from_base_event(_sql_query("select 4"))
    assert (msg.info.name, msg.info.level, msg.info.msg, msg.data.sql) == (
        "SQLQuery",
        "debug",
        "On model.crm.a: select 4",
        "select 4",
    )
    query.sql = "select 5"  # a field set after the event is made
    assert query.message() == "On model.crm.a: select 5"


def test_an_event_whose_fields_do_not_parse_still_says_so(speedups, monkeypatch):
    """dbt's own handling, when the event is read: a warning Note instead of a failure (outside pytest)."""
    from dbt_common.events import functions
    from dbt_common.events.types import Note

    notes = []
    monkeypatch.delenv("PYTEST_CURRENT_TEST")
    monkeypatch.setattr(functions, "fire_event", lambda e, level=None: notes.append((e.msg, level)))
    bad = Note(msg="x", no_such_field=1)
    assert bad.msg == ""  # an empty message, as dbt gives
    assert len(notes) == 1 and "Unable to parse logging event dictionary" in notes[0][0]


def test_an_empty_table_needs_no_type_tester(speedups, monkeypatch):
    import agate.type_tester
    from dbt_common.clients import agate_helper

    testers = []
    real = agate.type_tester.TypeTester.__init__
    monkeypatch.setattr(
        agate.type_tester.TypeTester, "__init__", lambda self, *a, **k: testers.append(1) or real(self, *a, **k)
    )
    table = agate_helper.empty_table()
    assert (table.column_names, table.column_types, len(table.rows)) == ((), (), 0)
    assert testers == []


@pytest.fixture
def kept_templates(tmp_path, monkeypatch):
    """The replacements applied afresh (an empty in-process cache) with their disk cache in tmp_path;
    yields a counter of the templates jinja parsed, that is compiled."""
    from dbt_common.clients import jinja as dbt_jinja
    from jinja2 import FileSystemBytecodeCache

    was = dbt_speedups.applied()
    dbt_speedups.undo()
    monkeypatch.setattr(
        dbt_speedups, "_code_cache", lambda: FileSystemBytecodeCache(str(tmp_path), dbt_speedups.CODE_CACHE_PATTERN)
    )
    parsed = []
    parse = dbt_jinja.MacroFuzzEnvironment._parse
    monkeypatch.setattr(
        dbt_jinja.MacroFuzzEnvironment, "_parse", lambda self, *a: parsed.append(a[0]) or parse(self, *a)
    )
    assert dbt_speedups.apply()
    yield parsed
    dbt_speedups.undo()
    monkeypatch.undo()
    if was:
        dbt_speedups.apply()


def _render(source: str, native: bool = False, **ctx):
    """As dbt renders a model: a new environment for each template (get_template)."""
    from dbt_common.clients.jinja import get_template

    return get_template(source, {}, native=native).render(ctx)


def _call(source: str, macro: str, *args):
    """As dbt calls a macro: the template's module, the macro under dbt's prefix."""
    from dbt_common.clients.jinja import get_template

    return getattr(get_template(source, {}).module, f"dbt_macro__{macro}")(*args)


MACRO = "{% macro greet(who) %}hello {{ who | upper }} {{ 6 * 7 }}{% endmacro %}"


def test_a_template_is_compiled_once_per_process_and_once_on_disk(kept_templates, tmp_path):
    assert _call(MACRO, "greet", "a") == "hello A 42"
    assert _call(MACRO, "greet", "b") == "hello B 42"  # a new environment, the same code
    assert kept_templates == [MACRO]
    assert len(list(tmp_path.glob("__crm_dbt_jinja_*.cache"))) == 1
    # Another process: nothing in memory, the disk's code.
    dbt_speedups.undo()
    assert dbt_speedups.apply()
    assert _call(MACRO, "greet", "c") == "hello C 42"
    assert kept_templates == [MACRO]
    # A changed source is compiled.
    assert _call(MACRO.replace("hello", "hi"), "greet", "d") == "hi D 42"
    assert kept_templates == [MACRO, MACRO.replace("hello", "hi")]


def test_a_native_template_is_not_given_the_text_templates_code(kept_templates):
    """dbt renders some templates as Python values (its native environment): same source, other code."""
    number, listed = "{{ '7' | as_number }}", "{{ [1, 2] | as_native }}"
    assert _render(number) == "7"
    assert _render(number, native=True) == 7
    assert _render(listed, native=True) == [1, 2]
    assert _render(listed) == "[1, 2]"
    assert (_render(number), _render(number, native=True)) == ("7", 7)
    assert kept_templates == [number, number, listed, listed]


def test_a_filter_that_takes_the_context_gets_code_that_passes_it(kept_templates):
    """jinja compiles a call to a filter by what the filter is passed: environments with the same source and
    a filter of the same name, one taking the context, get each their own code."""
    from dbt_common.clients.jinja import MacroFuzzEnvironment
    from jinja2 import pass_context

    plain, with_context = MacroFuzzEnvironment(), MacroFuzzEnvironment()
    plain.filters["tag"] = lambda value: f"plain {value}"
    with_context.filters["tag"] = pass_context(lambda context, value: f"{context['who']} {value}")
    source = "{{ 1 | tag }}"
    assert plain.from_string(source).render({"who": "ctx"}) == "plain 1"
    assert with_context.from_string(source).render({"who": "ctx"}) == "ctx 1"
    assert plain.from_string(source).render({"who": "ctx"}) == "plain 1"
    assert kept_templates == [source, source]


def test_a_file_of_another_source_or_jinja_is_not_run(kept_templates, tmp_path):
    _call(MACRO, "greet", "a")
    (cached,) = tmp_path.glob("__crm_dbt_jinja_*.cache")
    data = cached.read_bytes()
    cached.write_bytes(data.replace(b"j2", b"j1", 1))  # another jinja's magic
    dbt_speedups.undo()
    assert dbt_speedups.apply()
    assert _call(MACRO, "greet", "b") == "hello B 42"
    assert kept_templates == [MACRO, MACRO]
    assert cached.read_bytes() == data  # written again by this jinja


def test_a_syntax_error_is_dbts_and_macro_debugging_compiles_every_time(kept_templates, monkeypatch):
    from dbt_common.clients import jinja as dbt_jinja
    from dbt_common.exceptions import CompilationError

    with pytest.raises(CompilationError, match="Unexpected end of template"):
        _render("{% if true %}never closed")
    monkeypatch.setattr(dbt_jinja, "MACRO_DEBUGGING", "1")
    assert _call(MACRO, "greet", "a") == _call(MACRO, "greet", "a") == "hello A 42"
    assert kept_templates[1:] == [MACRO, MACRO]


def _flag_source(flag: dict) -> str:
    from dbt_common.behavior_flags import BehaviorFlagRendered

    return BehaviorFlagRendered(flag, {})._behavior_change_event.flag_source


def test_a_behaviour_flag_names_the_module_that_made_it_without_reading_the_stacks_sources(monkeypatch):
    import inspect

    flag = {"name": "some_flag", "default": False, "description": "d"}
    module_less = {"__name__": "no_module_of_that_name", "source": _flag_source, "flag": flag}
    was = dbt_speedups.applied()
    dbt_speedups.undo()
    try:
        as_dbt = (_flag_source(flag), eval("source(flag)", module_less), _flag_source({**flag, "source": "given"}))
        assert as_dbt == (__name__, __name__, "given")  # a frame of no module is passed over
        assert dbt_speedups.apply()
        stacks = []
        monkeypatch.setattr(inspect, "stack", lambda *a: stacks.append(1) or [])
        assert (_flag_source(flag), eval("source(flag)", module_less), _flag_source({**flag, "source": "given"})) == (
            as_dbt
        )
        assert stacks == []
    finally:
        monkeypatch.undo()
        dbt_speedups.undo()
        if was:
            dbt_speedups.apply()


def _filing() -> tuple:
    from dbt.context.macros import MacroNamespaceBuilder
    from dbt.context.manifest import ManifestContext

    return MacroNamespaceBuilder.build_namespace, ManifestContext.to_dict


def test_other_versions_get_dbt_as_it_comes(monkeypatch):
    from dbt_common.clients import agate_helper
    from dbt_common.clients.jinja import MacroFuzzEnvironment
    from dbt_common.events.event_manager import EventManager

    was = dbt_speedups.applied()
    dbt_speedups.undo()
    assert "compile" not in vars(MacroFuzzEnvironment)  # jinja's own, inherited, after undo
    original = (EventManager.fire_event, agate_helper.empty_table, MacroFuzzEnvironment.compile, _filing())
    try:
        assert dbt_speedups.versions_checked()  # the lock's versions: what the suite runs with
        for other in ({"dbt-common": "0.0.1"}, {"agate": "1.9.1", "no-such-package-here": "1.0"}):
            monkeypatch.setattr(dbt_speedups._REPLACEMENTS, "checked", other)
            assert not dbt_speedups.apply()
            assert (EventManager.fire_event, agate_helper.empty_table, MacroFuzzEnvironment.compile, _filing()) == (
                original
            )
            assert "pb_msg" in _sql_query().__dict__  # parsed when made, as dbt does
    finally:
        monkeypatch.undo()
        if was:
            dbt_speedups.apply()


def _macros() -> dict:
    """Macros by package as a manifest gives them: the root project, a package, an adapter's and dbt's own,
    with names that clash across them (the namespace's levels decide which one a name means)."""
    from types import SimpleNamespace

    def macro(package: str, name: str):
        return SimpleNamespace(name=name, package_name=package, unique_id=f"macro.{package}.{name}")

    names = {
        "crm_warehouse": ["ref", "account_node", "generate_schema_name", "safe_divide"],
        "dbt_utils": ["safe_divide", "star", "generate_schema_name"],
        "dbt_duckdb": ["duckdb__create_table_as", "ref", "star"],
        "dbt": ["ref", "star", "run_query", "duckdb__create_table_as", "dbt_utils"],
    }
    return {package: {n: macro(package, n) for n in macros} for package, macros in names.items()}


def _described(value, bound: dict):
    """A namespace's entry as plain data: a generator by its class and every attribute (whether its context,
    node and stack are the builder's own), a package by its entries."""
    if isinstance(value, dict):
        return {k: _described(v, bound) for k, v in value.items()}
    if not hasattr(value, "__dict__"):
        return value
    return (type(value).__name__, {k: (v is bound[k] if k in bound else v) for k, v in vars(value).items()})


def _namespaces(search: str) -> tuple[dict, dict]:
    """A node's namespace (the node in package `search`) as dbt files it, flattened as its context gets it."""
    from types import SimpleNamespace

    from dbt.clients.jinja import MacroStack
    from dbt.context.macros import MacroNamespaceBuilder
    from dbt.context.manifest import ManifestContext

    context, node, stack = {}, SimpleNamespace(unique_id="model.crm_warehouse.x"), MacroStack()
    builder = MacroNamespaceBuilder("crm_warehouse", search, stack, ["dbt_duckdb", "dbt"], node)
    namespace = builder.build_namespace(_macros(), context)
    manifest_context = object.__new__(ManifestContext)
    manifest_context.namespace = namespace
    flat = ManifestContext.to_dict(manifest_context)
    bound = {"context": context, "node": node, "stack": stack}
    levels = {
        level: _described(getattr(namespace, level), bound)
        for level in ("local_namespace", "global_namespace", "packages", "global_project_namespace")
    }
    return levels, _described(flat, bound)


def test_every_nodes_macros_are_filed_and_flattened_as_dbt_does(monkeypatch):
    from dbt.clients.jinja import MacroGenerator
    from dbt.context.manifest import ManifestContext

    # What ManifestContext's base puts in a context before the macros (its own, with a whole project).
    monkeypatch.setattr(ManifestContext.__mro__[1], "to_dict", lambda self: {"ref": "the base's", "var": 1})
    was = dbt_speedups.applied()
    dbt_speedups.undo()
    try:
        as_dbt = {search: _namespaces(search) for search in ("crm_warehouse", "dbt_utils")}

        # By hand: the node's own package first, then the root project, packages by name, dbt's, adapters' over dbt's.
        def package(flat: dict, name: str) -> str:
            return flat[name][1]["macro"].package_name

        _, in_package = as_dbt["dbt_utils"]
        assert [package(in_package, n) for n in ("safe_divide", "generate_schema_name", "star")] == ["dbt_utils"] * 3
        assert package(in_package, "account_node") == "crm_warehouse" and package(in_package, "ref") == "crm_warehouse"
        _, in_root = as_dbt["crm_warehouse"]
        assert package(in_root, "safe_divide") == "crm_warehouse" and in_root["var"] == 1
        assert package(in_root, "star") == package(in_root, "duckdb__create_table_as") == "dbt_duckdb"
        assert package(in_root, "run_query") == "dbt"
        assert set(in_root["dbt_utils"]) == set(_macros()["dbt_utils"])  # the package, not dbt's macro of its name
        assert set(in_root["dbt"]) == set(_macros()["dbt"]) | set(_macros()["dbt_duckdb"])
        assert dbt_speedups.apply()
        constructed, construct = [], MacroGenerator.__init__
        monkeypatch.setattr(MacroGenerator, "__init__", lambda self, *a: constructed.append(a) or construct(self, *a))
        assert {search: _namespaces(search) for search in as_dbt} == as_dbt
        assert constructed == []  # one loop, no constructor per macro
    finally:
        monkeypatch.undo()
        dbt_speedups.undo()
        if was:
            dbt_speedups.apply()
