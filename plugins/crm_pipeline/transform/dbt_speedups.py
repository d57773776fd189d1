"""Five of dbt's costs, taken out of this process's dbt (applied before each dbt call).

A build of the tests' small sample spends most of its time in dbt's Python, not in
the warehouse, and much of that went to things nobody sees:

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
* **Every template compiled again.** dbt makes a new jinja environment for each
  template it renders, so every macro and model is parsed, turned into Python and
  compiled by each invocation (about 600 templates in a run of the sample, 0.75 s of
  a core). Here the compiled code is kept, in the process and on disk in jinja's
  own bytecode cache (a directory of this user's under the temp dir, each file
  written atomically), keyed by the template's source and everything of the
  environment that shapes the code: its class and code generator, extensions,
  delimiters and whitespace settings, its filters and tests and what each is
  passed, the template's name and file name, and the jinja and Python versions
  (jinja's cache checks the last two). Nothing is kept
  when dbt's macro debugging is on (it needs the source in the line cache), for a
  raw compile, or without a private temp directory.
* **A whole stack inspected per flag.** Each adapter dbt registers makes its
  behaviour flags, and each flag names the module that made it by walking
  `inspect.stack()`, which reads the source lines around every frame of the stack
  (deep under Airflow's task runner), even for a flag that names its source: 0.3 s
  of a core per run. Here the frames are walked without their source lines, and a
  frame's module is the one its globals name when that module's file is the
  frame's; any other frame is asked of `inspect.getmodule` as before.
* **Every macro filed one call at a time, for every node.** Each node's context holds
  every macro of the project, its packages and dbt's own (about 700), each as a macro
  generator bound to that context: dbt files each through two method calls and three
  constructors, then flattens the namespace into the context by looking every name up
  through its five levels in turn. 0.75 s of a core in a build of the sample (5.5 s),
  for 400 contexts. Here one loop files them, and the flat namespace is the five
  levels laid over each other in reverse order of precedence: the same generators
  (same macro, context, node and stack), under the same names, as dbt's own.

These replace functions inside dbt-core, dbt-common, agate and jinja2, so they are applied only
with the versions they were checked against (requirements.lock); with any other,
dbt runs as it comes, only slower (docs/testing.md has the figures).
tests/plugins/test_dbt_speedups.py holds each to what it replaces.
"""

from __future__ import annotations

import hashlib
import inspect
import os
import sys
import threading

from crm_pipeline.replacements import Replacements

CHECKED = {"dbt-core": "1.11.16", "dbt-common": "1.39.0", "agate": "1.9.1", "jinja2": "3.1.6"}
CODE_CACHE_PATTERN = "__crm_dbt_jinja_%s.cache"  # beside jinja's own files in its cache directory
MEMORY_CACHE_SIZE = 4096  # compiled templates kept in a process (a project holds about 600)

_parsing = threading.RLock()  # re-entered: a field that does not parse fires a warning event, parsed too
_REPLACEMENTS = Replacements(CHECKED)
_replace = _REPLACEMENTS.replace
versions_checked = _REPLACEMENTS.versions_checked
applied = _REPLACEMENTS.applied
undo = _REPLACEMENTS.undo  # dbt as it comes again (for tests)


def ignores_debug(callback):
    """Mark a dbt event callback as one that does nothing with debug events (so none need be fired for it)."""
    callback.ignores_debug = True
    return callback


def apply() -> bool:
    """Put the replacements in place (once per process); False, and nothing replaced, on other versions."""
    return _REPLACEMENTS.apply(_install)


def _install() -> None:
    _lazy_events()
    _debug_events_skipped()
    _empty_table()
    _compiled_templates_kept()
    _flag_source_without_source_lines()
    _macros_filed_in_one_pass()


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


def _callable_shape(f) -> tuple:
    """How the compiled code calls a filter, test or finalize function: what jinja passes it first."""
    from jinja2.utils import _PassArg

    return (getattr(f, "__module__", None), getattr(f, "__qualname__", None), repr(_PassArg.from_obj(f)))


_environment_keys: dict[tuple, str] = {}  # the same environment settings, met again: their key
# The environment's settings that are plain values (the lexer's delimiters and whitespace rules, and what the
# code generator reads): in both the key of settings met again and the key itself.
PLAIN_SETTINGS = (
    "block_start_string",
    "block_end_string",
    "variable_start_string",
    "variable_end_string",
    "comment_start_string",
    "comment_end_string",
    "line_statement_prefix",
    "line_comment_prefix",
    "trim_blocks",
    "lstrip_blocks",
    "newline_sequence",
    "keep_trailing_newline",
    "optimized",
    "is_async",
    "sandboxed",
)


def _plain_settings(env) -> tuple:
    return tuple(getattr(env, name, None) for name in PLAIN_SETTINGS)


def _environment_key(env, name, filename, defer_init) -> str:
    """What of a jinja environment and a call shapes the compiled code (not the source: jinja's checksum).

    The lexer's delimiters and whitespace rules, the extensions, the code generator, and what the code
    generator reads of the environment: sandboxing, async, finalize, and each filter's and test's
    name and what it is passed (a filter taking the context is called with it; an unknown one fails).
    Worked out once per distinct settings (dbt's environments repeat theirs): the same objects, in the
    same order, give the same key."""
    met = (
        type(env),
        env.code_generator_class,
        tuple(map(type, env.extensions.values())),
        tuple(env.filters.items()),
        tuple(env.tests.items()),
        env.finalize,
        env.autoescape,
        getattr(env, "intercepted_binops", None),
        getattr(env, "intercepted_unops", None),
        *_plain_settings(env),
        name,
        filename,
        defer_init,
    )
    key = _environment_keys.get(met)
    if key is None:
        if len(_environment_keys) >= MEMORY_CACHE_SIZE:
            _environment_keys.clear()
        key = _environment_keys[met] = _environment_shape_key(env, name, filename, defer_init)
    return key


def _environment_shape_key(env, name, filename, defer_init) -> str:
    import jinja2

    shape = (
        type(env).__module__,
        type(env).__qualname__,
        env.code_generator_class.__module__,
        env.code_generator_class.__qualname__,
        sorted(env.extensions),
        *_plain_settings(env),
        None if env.finalize is None else _callable_shape(env.finalize),
        repr(env.autoescape),
        sorted(getattr(env, "intercepted_binops", ())),
        sorted(getattr(env, "intercepted_unops", ())),
        sorted((k, _callable_shape(f)) for k, f in env.filters.items()),
        sorted((k, _callable_shape(f)) for k, f in env.tests.items()),
        name,
        filename,
        defer_init,
        jinja2.__version__,
    )
    return hashlib.sha256(repr(shape).encode()).hexdigest()


def _code_cache():
    """jinja's file bytecode cache in its default directory, or None where it cannot keep one private."""
    from jinja2 import FileSystemBytecodeCache

    try:
        return FileSystemBytecodeCache(pattern=CODE_CACHE_PATTERN)
    except (OSError, RuntimeError):  # jinja refuses a directory it cannot keep private
        return None


def _compiled_templates_kept() -> None:
    from dbt_common.clients import jinja as dbt_jinja
    from jinja2 import Environment
    from jinja2.bccache import Bucket

    compile_template = Environment.compile
    disk = _code_cache()
    kept: dict[tuple[str, str], object] = {}

    def compile(self, source, name=None, filename=None, raw=False, defer_init=False):
        if raw or not isinstance(source, str) or dbt_jinja.MACRO_DEBUGGING:
            return compile_template(self, source, name, filename, raw, defer_init)
        checksum = hashlib.sha256(source.encode("utf-8")).hexdigest()
        key = (_environment_key(self, name, filename, defer_init), checksum)
        code = kept.get(key)
        if code is not None:
            return code
        bucket = Bucket(self, hashlib.sha256("/".join(key).encode()).hexdigest(), checksum)
        if disk is not None:
            disk.load_bytecode(bucket)  # a file of another jinja or Python, or another source, is ignored
        if bucket.code is None:
            bucket.code = compile_template(self, source, name, filename, raw, defer_init)
            if disk is not None:
                disk.dump_bytecode(bucket)
        if len(kept) >= MEMORY_CACHE_SIZE:
            kept.clear()
        kept[key] = bucket.code
        return bucket.code

    _replace(dbt_jinja.MacroFuzzEnvironment, "compile", compile)


def calling_module(skip: str, frame) -> str:
    """The name of the module of the nearest frame from `frame` outwards that is not in module `skip`, as
    dbt-common's `BehaviorFlagRendered._default_source` finds it (`inspect.getmodule` of each frame of
    `inspect.stack()`), without reading any frame's source lines."""
    while frame is not None:
        name = frame.f_globals.get("__name__")
        module = sys.modules.get(name) if isinstance(name, str) else None
        path = getattr(module, "__file__", None)
        if not (path and os.path.abspath(path) == os.path.abspath(frame.f_code.co_filename)):
            module = inspect.getmodule(frame)  # code run from elsewhere than its module's file: as dbt asks
        if module is not None and module.__name__ != skip:
            return module.__name__
        frame = frame.f_back
    return "Unknown"


def _flag_source_without_source_lines() -> None:
    from dbt_common import behavior_flags

    def default_source() -> str:
        return calling_module(behavior_flags.__name__, sys._getframe(1))  # from dbt's caller on

    _replace(behavior_flags.BehaviorFlagRendered, "_default_source", staticmethod(default_source))


def flat_namespace(namespace) -> dict:
    """A MacroNamespace as one dict: what `dict.update(namespace)` gives, its five levels laid over each
    other from the last searched to the first (dbt looks each name up through them in turn)."""
    from dbt.include.global_project import PROJECT_NAME

    flat = dict(namespace.global_project_namespace)
    flat[PROJECT_NAME] = namespace.global_project_namespace
    flat.update(namespace.packages)
    flat.update(namespace.global_namespace)
    flat.update(namespace.local_namespace)
    return flat


def _macros_filed_in_one_pass() -> None:
    from dbt.clients.jinja import MacroGenerator
    from dbt.context.macros import MacroNamespace, MacroNamespaceBuilder
    from dbt.context.manifest import ManifestContext
    from dbt.exceptions import DuplicateMacroNameError

    build_namespace = MacroNamespaceBuilder.build_namespace  # dbt's own, for any other builder
    new_generator = MacroGenerator.__new__

    def build(self, macros_by_package, ctx):
        if type(self) is not MacroNamespaceBuilder:
            return build_namespace(self, macros_by_package, ctx)
        internal, search, root = self.internal_package_names, self.search_package, self.root_package
        node, stack = self.node, self.thread_ctx
        for package in macros_by_package.values():
            for macro in package.values():
                # MacroGenerator(macro, ctx, node, stack), without its three constructors
                generator = new_generator(MacroGenerator)
                generator.context, generator.macro, generator.node, generator.stack = ctx, macro, node, stack
                name, package_name = macro.name, macro.package_name
                hierarchy = self.internal_packages if package_name in internal else self.packages
                namespace = hierarchy.get(package_name)
                if namespace is None:
                    namespace = hierarchy[package_name] = {}
                if name in namespace:
                    raise DuplicateMacroNameError(macro, macro, package_name)
                namespace[name] = generator
                if package_name not in internal:
                    if package_name == search:
                        self.locals[name] = generator
                    elif package_name == root:
                        self.globals[name] = generator
        global_project_namespace = {}
        for package_name in reversed(self.internal_package_names_order):
            if package_name in self.internal_packages:
                global_project_namespace.update(self.internal_packages[package_name])
        return MacroNamespace(
            global_namespace=self.globals,
            local_namespace=self.locals,
            global_project_namespace=global_project_namespace,
            packages=self.packages,
        )

    to_dict = ManifestContext.to_dict

    def manifest_to_dict(self):
        if type(self.namespace) is not MacroNamespace:  # a test's namespace: dbt's own
            return to_dict(self)
        dct = super(ManifestContext, self).to_dict()
        dct.update(flat_namespace(self.namespace))
        return dct

    _replace(MacroNamespaceBuilder, "build_namespace", build)
    _replace(ManifestContext, "to_dict", manifest_to_dict)
