"""crm_pipeline.quality.gx_speedups: each replaced lookup answers what GX's own does, building the
expectation's configuration once instead of once per key."""

from __future__ import annotations

import pytest

from crm_pipeline.quality import gx_speedups
from crm_pipeline.quality.checks import EXPECTATIONS_DIR, SEVERITIES, suites_for
from crm_pipeline.quality.raw_suites import GATED


def _expectations():
    """Every expectation of the project's suites (the generated raw ones and the files), as GX objects."""
    import great_expectations as gx

    relations = [f"raw.{e}" for e in GATED] + sorted(
        {p.name.rsplit(".", 2)[0] for p in EXPECTATIONS_DIR.glob("*.json")}
    )
    out = []
    for relation in relations:
        for severity, spec in suites_for(relation).items():
            assert severity in SEVERITIES
            suite = gx.ExpectationSuite(name=f"{relation}.{severity}", expectations=spec["expectations"])
            out += suite.expectations
    return out


def _answers(expectations) -> list:
    answers = []
    for e in expectations:
        keys = sorted({*e.domain_keys, *e.success_keys, *e.runtime_keys})
        answers.append(
            (
                e._get_domain_kwargs(),
                e._get_success_kwargs(),
                [e._get_success_kwarg(k, default="absent") for k in keys],
                e._get_runtime_kwargs(),
                e._get_runtime_kwargs({"result_format": "COMPLETE", "catch_exceptions": False}),
            )
        )
    return answers


@pytest.fixture
def gx_as_it_comes():
    gx_speedups.undo()
    yield
    gx_speedups.undo()


def test_every_lookup_answers_as_gx_does_for_every_expectation_of_the_project(gx_as_it_comes):
    from great_expectations.expectations.expectation import Expectation

    expectations = _expectations()
    assert len(expectations) > 80 and len({type(e) for e in expectations}) >= 8
    builds = {"n": 0}
    configuration = Expectation.configuration

    def counted(self):
        builds["n"] += 1
        return configuration.fget(self)

    try:
        Expectation.configuration = property(counted)
        own = _answers(expectations)
        own_builds, builds["n"] = builds["n"], 0
        assert gx_speedups.apply()
        assert _answers(expectations) == own
    finally:
        Expectation.configuration = configuration
    # One build per lookup: (domain, success, runtime twice) and one per single key.
    keys = sum(len({*e.domain_keys, *e.success_keys, *e.runtime_keys}) for e in expectations)
    assert builds["n"] == 4 * len(expectations) + keys
    assert own_builds > 2 * builds["n"]  # 3,401 and 1,145 with the suites of this writing


def test_an_unknown_key_warns_and_gives_the_default_as_gx_does(gx_as_it_comes, caplog):
    (e, *_) = _expectations()
    own = e._get_success_kwarg("no_such_key", default=7)
    gx_speedups.apply()
    with caplog.at_level("WARNING"):
        assert e._get_success_kwarg("no_such_key", default=7) == own == 7
    assert "no_such_key" in caplog.text


def test_another_gx_version_is_left_as_it_comes(gx_as_it_comes, monkeypatch):
    from great_expectations.expectations.expectation import Expectation

    monkeypatch.setattr(gx_speedups._REPLACEMENTS, "checked", {"great-expectations": "0.0.1"})
    own = Expectation._get_success_kwargs
    assert gx_speedups.apply() is False
    assert Expectation._get_success_kwargs is own


def _validate_counting_the_variables_store(tmp_path, monkeypatch) -> tuple[list, dict]:
    """One validate() of two targets, the second failing; what the results say, and how the context's variables
    store (GX's DataContextStore, an ephemeral context's only one) was used."""
    import datetime as dt

    import pandas as pd
    from great_expectations.data_context.store.data_context_store import DataContextStore

    from crm_pipeline.quality.checks import Target, validate

    calls = {"set": 0, "read": 0}
    for name in ("set", "get", "has_key", "list_keys", "get_all", "remove_key"):
        original = getattr(DataContextStore, name)

        def spy(self, *args, _original=original, _name=name, **kwargs):
            calls["set" if _name == "set" else "read"] += 1
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(DataContextStore, name, spy)
    monkeypatch.setenv("CRM_REPORTS_DIR", str(tmp_path))
    columns = ["batch_id", "extracted_rows", "accounted_rows", "quarantined_share"]
    good = pd.DataFrame([("b1", 10, 10, 0.0)], columns=columns)
    bad = pd.DataFrame([("b2", 10, 9, 0.5)], columns=columns)
    validation = validate(
        [Target("audit.load_batches", dataframe=good, batch_id="b1"), Target("marts.fct_customer_rfm", dataframe=bad)],
        dt.date(2026, 11, 22),
    )
    pages = sorted(str(p.relative_to(tmp_path)).split("/")[:4] for p in tmp_path.glob("**/validations/**/*.html"))
    return [vars(r) for r in validation.results] + pages, calls


def test_an_ephemeral_context_writes_its_config_nowhere_and_validates_as_gx_does(gx_as_it_comes, tmp_path, monkeypatch):
    with monkeypatch.context() as m:
        m.setattr(gx_speedups, "apply", lambda: False)  # validate() as GX comes
        own, own_calls = _validate_counting_the_variables_store(tmp_path / "own", m)
    # GX wrote its config to the store for each suite, data source, definition and site added, and read none.
    assert own_calls["set"] >= 3 and own_calls["read"] == 0, own_calls
    assert gx_speedups.apply()
    faster, calls = _validate_counting_the_variables_store(tmp_path / "faster", monkeypatch)
    assert calls == {"set": 0, "read": 0}
    assert faster == own and len(own) > 4  # the results, then the report's pages
