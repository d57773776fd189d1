"""The safety flag: the keyword rule fct_negative_feedback takes from int_feedback__keyword_hits, and its
Python twin that `make eval-text` measures."""

from __future__ import annotations

import pytest
import yaml

from conftest import REPO
from crm_pipeline.text.safety import KeywordRule


def _unit_test(name: str) -> dict:
    path = REPO / "dbt_project" / "models" / "intermediate" / "feedback" / "_feedback__models.yml"
    return next(t for t in yaml.safe_load(path.read_text())["unit_tests"] if t["name"] == name)


def test_the_python_rule_flags_what_the_keyword_models_unit_test_expects():
    """The keyword model's dbt unit test (run by test_dbt_unit.py) pins the SQL the mart's is_safety comes
    from; the same given rows through the Python twin must flag the same negatives, so the evaluation
    measures the mart's rule."""
    case = _unit_test("keyword_hits_whole_words_terms_and_exceptions")
    given = {g["input"]: g["rows"] for g in case["given"]}
    rule = KeywordRule.from_rows(given["ref('severity_rules')"], given["ref('severity_term_exceptions')"])
    expected = {
        f"{r['feedback_source']}:{r['source_record_id']}": r["rule"] == "safety" for r in case["expect"]["rows"]
    }
    got = {
        f"{t['feedback_source']}:{t['source_record_id']}": bool(rule.hits(t.get("feedback_text"), t.get("cues")))
        for t in given["ref('int_feedback__touchpoints')"]
        if t["is_negative"]
    }
    assert got == expected
    assert sum(expected.values()) == 7  # the case holds flags to get right, not only their absence


@pytest.mark.parametrize(
    "text",
    [
        "手机充电的时候电池鼓包了",  # a swollen battery
        "用了三天就过敏，脸都红肿了",  # a cosmetic's allergic reaction
        "外卖吃完就拉肚子",  # food
        "酸奶居然过期了",
        "插座在浴室里面，非常危险",  # a real hotel review's hazard
        "the charger started smoking",
        "battery overheating after the update",
        "my daughter had an allergic reaction to the cream",
        "it's a hazard in the car.",  # a real Amazon snippet
    ],
)
def test_the_seed_flags_hazards_said_the_way_customers_say_them(text):
    assert KeywordRule.from_seeds().hits(text), text


@pytest.mark.parametrize(
    "text",
    [
        "不过期待下一款",  # 不过 + 期待: "but looking forward to"
        "效果超过期望",  # "beyond expectations"
        "服务差到爆炸",  # slang: terribly bad
        "周末一起火锅",  # hotpot together
        "挨着火车站，很吵",
        "smoked salmon was cold",
        "Firefox keeps crashing",
        "no smoking room smelled bad",
    ],
)
def test_look_alikes_of_the_safety_words_are_not_flagged(text):
    assert not KeywordRule.from_seeds().hits(text), text


def test_every_seed_exception_hides_a_safety_keyword():
    rule = KeywordRule.from_seeds()
    assert rule.exceptions and set(rule.exceptions) <= set(rule.keywords)
    assert all(w.count(k) == 1 for k, within in rule.exceptions.items() for w in within)
