"""docker-compose.yml, checked without a Docker engine (there is none here): parsed, cross-referenced, complete.

What a compose implementation would reject is checked structurally: YAML
anchors resolve, every depends_on names a service, every ${VAR} without a
default is listed in .env.example, and every service docs/operations.md names exists.
"""

from __future__ import annotations

import re

import yaml

from conftest import REPO

REQUIRED = {
    "postgres",
    "redis",
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-worker",
    "airflow-init",
    "superset",
}


def _compose() -> dict:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text(encoding="utf-8"))


def test_every_service_is_there_and_wired():
    services = _compose()["services"]
    assert set(services) >= REQUIRED
    for name, svc in services.items():
        assert "image" in svc, name
        deps = svc.get("depends_on", {})
        assert set(deps) <= set(services), (name, deps)
        for dep in deps.values():
            assert dep["condition"] in ("service_healthy", "service_completed_successfully", "service_started")
        for dep_name, dep in deps.items():
            if dep["condition"] == "service_healthy":
                assert "healthcheck" in services[dep_name], dep_name
    airflow = [n for n in services if n.startswith("airflow-")]
    for name in airflow:
        env = services[name]["environment"]
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
        assert env["CRM_WAREHOUSE_URL"].startswith("postgresql://")
        assert "./:/opt/crm" in services[name]["volumes"]  # the project is mounted
    assert {services[n]["command"] for n in airflow if n != "airflow-init"} == {
        "api-server",
        "scheduler",
        "dag-processor",
        "triggerer",
        "celery worker",
    }
    superset = services["superset"]
    assert "crm_bi_reader" in superset["environment"]["CRM_BI_DATABASE_URI"]
    # The BI service: the release `make bi` pins, the PostgreSQL driver, and the same bundle, imported on start.
    dockerfile = (REPO / superset["build"]["dockerfile"]).read_text(encoding="utf-8")
    lock = (REPO / "bi" / "requirements.lock").read_text(encoding="utf-8")
    release = re.search(r"^apache-superset==(\S+)", lock, re.M).group(1)
    driver = re.search(r"^psycopg2-binary==(\S+)", lock, re.M).group(1)
    assert f"FROM apache/superset:{release}\n" in dockerfile and f"psycopg2-binary=={driver}" in dockerfile
    assert superset["image"].endswith(f":{release}")
    assert {"./bi:/opt/crm/bi:ro", "./plugins:/opt/crm/plugins:ro"} <= set(superset["volumes"])
    assert "python -m crm_pipeline.superset import" in superset["command"][-1]
    assert superset["environment"]["CRM_BI_DATABASE_URI"].startswith("postgresql+psycopg2://")
    init_sql = (REPO / "deploy" / "postgres-init.sql").read_text()
    assert "CREATE DATABASE airflow" in init_sql and "CREATE DATABASE warehouse" in init_sql


def test_every_variable_is_documented():
    text = (REPO / "docker-compose.yml").read_text(encoding="utf-8")
    used = set(re.findall(r"(?<!\$)\$\{([A-Z0-9_]+)\}", text))  # no default: must be set
    documented = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", (REPO / ".env.example").read_text(), re.M))
    assert used <= documented, used - documented


def test_the_docs_name_only_services_that_exist():
    ops = (REPO / "docs" / "operations.md").read_text(encoding="utf-8")
    section = ops.split("## Running the production stack", 1)[1].split("\n## ", 1)[0]
    named = set(re.findall(r"`((?:airflow-[a-z-]+)|postgres|redis|superset)`", section))
    assert named >= REQUIRED - {"airflow-init"} and named <= set(_compose()["services"])
