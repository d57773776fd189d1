"""Rules with a Python and a SQL twin, run on the same cases.

The phone rule: Python (erasure requests, suppression) and SQL (identity links). A person erased by phone
must be the person the warehouse linked by that phone. The account node prefixes: an erasure deletes by
node, so Python must write the node dbt wrote."""

from __future__ import annotations

import datetime as dt
import json

from crm_pipeline.load.suppression import normalise_phone
from crm_pipeline.privacy import ACCOUNT_PREFIXES, account_node
from crm_pipeline.transform.dbt import run_dbt

# (typed, the 11 digits or None), worked out by hand from the rule: full-width digits fold, every other
# character goes, a leading 86 of 13 digits goes, and what is left must be 11 digits starting with 1.
CASES = [
    ("138-1234-5678", "13812345678"),
    ("+86 138 1234 5678", "13812345678"),
    ("8613812345678", "13812345678"),
    ("(0086) 138 1234 5678", None),  # 15 digits: 0086 is not the 86 the rule drops
    ("１３８１２３４５６７８", "13812345678"),  # full-width, as Chinese input methods type
    ("＋８６ １３８ １２３４ ５６７８", "13812345678"),
    ("𝟏𝟑𝟖𝟏𝟐𝟑𝟒𝟓𝟔𝟕𝟖", None),  # mathematical bold digits: not folded, removed
    ("١٣٨١٢٣٤٥٦٧٨", None),  # Arabic-Indic digits: removed
    ("138 1234 567８", "13812345678"),  # one full-width digit among ASCII
    ("23812345678", None),  # 11 digits not starting with 1
    ("12345", None),
    ("tel: 13812345678 ext", "13812345678"),
    ("", None),
]


def test_python_applies_the_rule_to_every_case():
    assert [normalise_phone(typed) for typed, _ in CASES] == [digits for _, digits in CASES]


def test_the_dbt_macro_agrees_with_python_on_every_case(monkeypatch, tmp_path):
    monkeypatch.setenv("CRM_DBT_ARTIFACTS_DIR", str(tmp_path / "dbt"))
    rows = " union all ".join(
        f"select {i} as i, {{{{ normalise_phone(\"'{typed}'\") }}}} as digits" for i, (typed, _) in enumerate(CASES)
    )
    # One dbt process for both rules: the account nodes ride along as more rows.
    kinds = sorted(ACCOUNT_PREFIXES)
    rows += "".join(
        f" union all select {len(CASES) + j} as i, {{{{ account_node('{kind}', \"'x1'\") }}}} as digits"
        for j, kind in enumerate(kinds)
    )
    result = run_dbt(
        ["show", "--inline", f"select * from ({rows}) as cases order by i", "--output", "json", "--limit", "100"],
        dt.date(2026, 11, 22),
        url=f"duckdb:///{tmp_path}/w.duckdb",
    )
    payload = result.output[result.output.index("{") : result.output.rindex("}") + 1]
    got = [r["digits"] for r in json.loads(payload)["show"]]
    assert got[: len(CASES)] == [digits for _, digits in CASES]
    # By hand: the digit orders the kinds, customers first (a component's smallest node names its person).
    assert got[len(CASES) :] == ["3chat:x1", "1customer:x1", "2forum:x1"]
    assert got[len(CASES) :] == [account_node(kind, "x1") for kind in kinds]
