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
