"""Names dbt turns into PostgreSQL relations fit its 63-byte identifiers.

PostgreSQL refuses a longer relation name ("is longer than 63 characters")
when dbt runs a unit test, and truncates a longer model name silently. A
model's temporary relations append up to `__dbt_tmp` and a timestamp
(`int_feedback__touchpoints__dbt_tmp211712945241`), so model names keep
room for 21 bytes more.
"""

import yaml

from crm_pipeline.transform.dbt import DBT_PROJECT_DIR

PG_IDENTIFIER_BYTES = 63
MODEL_SUFFIX_BYTES = len("__dbt_tmp") + len("211712945241")


def _unit_tests() -> list[str]:
    names = []
    for path in sorted((DBT_PROJECT_DIR / "models").rglob("*.yml")):
        spec = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        names += [t["name"] for t in spec.get("unit_tests", [])]
    return names


def _models() -> list[str]:
    return [p.stem for p in sorted((DBT_PROJECT_DIR / "models").rglob("*.sql"))]


def test_unit_test_names_fit_a_postgres_identifier():
    names = _unit_tests()
    assert len(names) >= 18  # every yml was read
    too_long = [n for n in names if len(n.encode()) > PG_IDENTIFIER_BYTES]
    assert not too_long, too_long


def test_model_names_leave_room_for_dbt_temporary_suffixes():
    names = _models()
    assert "int_feedback__touchpoints" in names
    too_long = [n for n in names if len(n.encode()) + MODEL_SUFFIX_BYTES > PG_IDENTIFIER_BYTES]
    assert not too_long, too_long
