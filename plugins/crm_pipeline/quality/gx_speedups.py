"""Two of Great Expectations' costs taken out of this process's GX (applied with each validation context).

GX works out an expectation's domain and success arguments key by key, and each
key builds the expectation's whole `ExpectationConfiguration` again (pydantic's
`dict()` of the expectation, its type's name by two regular expressions): 8,870
builds in a run of the tests' sample, 0.38 s of a core (bench speed control 0.3);
2,053 and 0.10 s with these. Here each lookup (the domain's, the success
arguments', one success argument, the run's arguments) builds it once and reads
every key from it; what they return is unchanged (tests/plugins/test_gx_speedups.py
compares them with GX's own on every expectation of the project's suites).

An ephemeral context (the only kind validate() makes) keeps its project config in memory, yet GX
wrote the whole config again, as YAML, into an in-memory store on every suite, data source,
validation definition and Data Docs site added: 16 times in a run's four raw gates, 0.19 s of their
0.95 s. Nothing reads that store back (the config object is what the context reads), so an
ephemeral context's `save` writes nothing (the same test file holds the store to being write-only
and a validation's results and report to GX's own).

This replaces four methods of GX's `Expectation` and one of its ephemeral context variables, so
it is applied only with the version it was checked against (requirements.lock); with any other,
GX runs as it comes.
"""

from __future__ import annotations

import logging

from crm_pipeline.replacements import Replacements

CHECKED = {"great-expectations": "1.24.1"}

log = logging.getLogger(__name__)
_REPLACEMENTS = Replacements(CHECKED)
versions_checked = _REPLACEMENTS.versions_checked
undo = _REPLACEMENTS.undo  # GX as it comes again (for tests)


def apply() -> bool:
    """Put the replacements in place (once per process); False, and nothing replaced, on another version."""
    return _REPLACEMENTS.apply(_install)


def _install() -> None:
    from great_expectations.expectations.expectation import Expectation

    for name, new in (
        ("_get_domain_kwargs", _domain_kwargs),
        ("_get_success_kwargs", _success_kwargs),
        ("_get_success_kwarg", _success_kwarg),
        ("_get_runtime_kwargs", _runtime_kwargs),
    ):
        _REPLACEMENTS.replace(Expectation, name, new)
    from great_expectations.data_context.data_context_variables import EphemeralDataContextVariables

    _REPLACEMENTS.replace(EphemeralDataContextVariables, "save", _kept_in_memory)


def _kept_in_memory(self) -> None:
    """An ephemeral context's variables are its config object: nothing to write (GX serialised them
    to YAML into an in-memory store nobody reads)."""
    return None


def _domain_kwargs(self) -> dict:
    kwargs = self.configuration.kwargs  # once, not once per key
    return {key: kwargs.get(key, self._get_default_value(key)) for key in self.domain_keys}


def _success_kwargs(self, kwargs: dict | None = None) -> dict:
    kwargs = self.configuration.kwargs if kwargs is None else kwargs  # once for both: GX's built it again for
    success = {key: kwargs.get(key, self._get_default_value(key)) for key in self.success_keys}  # the domain's
    success.update({key: kwargs.get(key, self._get_default_value(key)) for key in self.domain_keys})
    return success


def _success_kwarg(self, key: str, default=None, kwargs: dict | None = None):
    kwargs = self.configuration.kwargs if kwargs is None else kwargs
    if key in kwargs:
        return kwargs[key]
    field = self.__fields__.get(key)
    if field is not None:
        return field.default if not field.required else default
    log.warning('_get_success_kwarg called with key "%s", but it is not a known field of %s', key, type(self).__name__)
    return default


def _runtime_kwargs(self, runtime_configuration: dict | None = None) -> dict:
    from great_expectations.expectations.expectation import parse_result_format

    runtime_configuration = runtime_configuration or {}
    kwargs = self.configuration.kwargs  # once: GX's built it once per runtime key, and twice for the rest
    runtime_kwargs = {
        key: runtime_configuration.get(key, _success_kwarg(self, key, kwargs=kwargs)) for key in self.runtime_keys
    }
    runtime_kwargs.update(_success_kwargs(self, kwargs))
    runtime_kwargs["result_format"] = parse_result_format(runtime_kwargs["result_format"])
    return runtime_kwargs
