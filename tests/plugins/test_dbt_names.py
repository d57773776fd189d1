"""dbt's conventions, made structural: names, and materialisations as folder defaults.

One naming scheme per layer: `stg_<source>__<what>` in staging/<source>/, `int_<area>__<what>` in
intermediate/<area>/, `fct_`/`dim_` in marts. A model sets `materialized` itself only to be
incremental (its unique key and strategy are its own); every other materialisation is its folder's,
in dbt_project.yml.

Names dbt turns into PostgreSQL relations fit its 63-byte identifiers.

PostgreSQL refuses a longer relation name ("is longer than 63 characters")
when dbt runs a unit test, and truncates a longer model name silently. A
model's temporary relations append up to `__dbt_tmp` and a timestamp
(`int_feedback__touchpoints__dbt_tmp211712945241`), so model names keep
room for 21 bytes more.
"""

import re

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


def test_models_are_named_after_their_layer_and_folder():
    wrong = []
    for path in sorted((DBT_PROJECT_DIR / "models").rglob("*.sql")):
        layer, *folders = path.relative_to(DBT_PROJECT_DIR / "models").parent.parts
        if layer == "staging":
            ok = path.stem.startswith(f"stg_{folders[0]}__")
        elif layer == "intermediate":
            ok = path.stem.startswith(f"int_{folders[0]}__")
        else:
            ok = layer == "marts" and path.stem.startswith(("fct_", "dim_"))
        if not ok:
            wrong.append(str(path.relative_to(DBT_PROJECT_DIR)))
    assert len(list((DBT_PROJECT_DIR / "models").rglob("*.sql"))) > 30  # the models were read
    assert not wrong, wrong


def test_a_model_sets_its_materialisation_only_to_be_incremental():
    own = {}
    for path in sorted((DBT_PROJECT_DIR / "models").rglob("*.sql")):
        for kind in re.findall(r"materialized\s*=\s*['\"](\w+)['\"]", path.read_text(encoding="utf-8")):
            own[path.stem] = kind
    assert "stg_shop__orders" in own  # the pattern finds a model's own config
    assert {m: k for m, k in own.items() if k != "incremental"} == {}
