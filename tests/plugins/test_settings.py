"""Settings: every CRM_* variable read in one place, with one parser per kind; and the pseudonym secret,
whose public value is refused everywhere but the local DuckDB demo."""

from __future__ import annotations

import ast
import re

import pytest

from conftest import REPO
from crm_pipeline import config
from crm_pipeline.config import DEMO_KEY_SECRET, InsecureSecretError, SettingError, check_key_secret, settings
from crm_pipeline.load.loader import write_pseudonym_key
from crm_pipeline.load.warehouse import Warehouse


def test_an_unset_secret_reads_as_the_demo_default_which_is_then_refused_for_postgresql(monkeypatch):
    monkeypatch.delenv("CRM_KEY_SECRET", raising=False)
    with pytest.raises(InsecureSecretError):
        check_key_secret(settings().key_secret, "postgres")


@pytest.mark.parametrize("secret", [DEMO_KEY_SECRET, "change-me-to-a-long-random-string", ""])
def test_a_public_or_empty_secret_is_refused_for_postgresql(secret):
    with pytest.raises(InsecureSecretError, match=r"CRM_KEY_SECRET is .*set CRM_KEY_SECRET to a long random"):
        check_key_secret(secret, "postgres")


def test_the_demo_default_is_accepted_for_duckdb_and_a_real_secret_everywhere():
    check_key_secret(DEMO_KEY_SECRET, "duckdb")
    check_key_secret("9f2c6b0e1d", "postgres")
    with pytest.raises(InsecureSecretError, match="empty"):
        check_key_secret("", "duckdb")


def test_the_warehouse_never_gets_a_public_secret(pg_url):
    with Warehouse.from_url(pg_url) as wh:
        with pytest.raises(InsecureSecretError):
            write_pseudonym_key(wh, DEMO_KEY_SECRET)
        assert not wh.table_exists("private", "pseudonym_key")
        write_pseudonym_key(wh, "a-real-secret-of-this-brand")
        assert wh.fetchone("select secret from private.pseudonym_key")[0] == "a-real-secret-of-this-brand"


def _env_reads(path) -> list[str]:
    """CRM_* names a module reads from the environment directly: os.environ.get/[...]/getenv, os.getenv."""
    names = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        arg = None
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.args:
            target = ast.unparse(node.func.value)
            if (target == "os.environ" and node.func.attr in ("get", "pop")) or (
                target == "os" and node.func.attr == "getenv"
            ):
                arg = node.args[0]
        elif isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load):
            arg = node.slice if ast.unparse(node.value) == "os.environ" else None
        if isinstance(arg, ast.Constant) and str(arg.value).startswith("CRM_"):
            names.append(arg.value)
        elif isinstance(arg, ast.JoinedStr) and ast.unparse(arg).startswith("f'CRM_"):
            names.append(ast.unparse(arg))
    return names


def test_no_module_but_config_reads_a_crm_variable():
    assert _env_reads(REPO / "plugins" / "crm_pipeline" / "config.py")  # the scan sees a read
    direct = {
        str(path.relative_to(REPO)): names
        for path in sorted([*(REPO / "plugins").rglob("*.py"), *(REPO / "dags").rglob("*.py")])
        if path.name != "config.py" and (names := _env_reads(path))
    }
    assert direct == {}


class _Recording(dict):
    """The environment, remembering every name asked for."""

    def __init__(self, values):
        super().__init__(values)
        self.asked: set[str] = set()

    def get(self, key, default=None):
        self.asked.add(key)
        return super().get(key, default)

    def __getitem__(self, key):
        self.asked.add(key)
        return super().__getitem__(key)


def test_every_setting_is_documented_in_env_example(monkeypatch):
    recording = _Recording({})
    monkeypatch.setattr(config.os, "environ", recording)
    settings()
    asked = {n for n in recording.asked if n.startswith("CRM_")}
    assert {"CRM_WAREHOUSE_URL", "CRM_ALERT_FEISHU_SECRET", "CRM_PUBLISH_CUTOFF"} <= asked  # the recording works
    documented = set(re.findall(r"^#?\s*(CRM_[A-Z_]+)=", (REPO / ".env.example").read_text(), re.M))
    assert sorted(asked - documented) == []


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("1", True), ("TRUE", True), (" yes ", True), ("on", True), ("0", False), ("False", False), ("no", False),
     ("off", False), ("", None), ("   ", None)],
)  # fmt: skip
def test_one_boolean_parser(monkeypatch, raw, expected):
    monkeypatch.setenv("CRM_LOAD_FAST", raw)
    # Blank is unset: the variable's own default (fast loading is on by default, full refreshes off).
    assert config.env_bool("CRM_LOAD_FAST", True) is (True if expected is None else expected)
    assert config.env_bool("CRM_LOAD_FAST", False) is (False if expected is None else expected)


@pytest.mark.parametrize(
    ("name", "raw", "message"),
    [
        ("CRM_DBT_FULL_REFRESH", "ja", r"CRM_DBT_FULL_REFRESH='ja' is not a boolean"),
        ("CRM_LOAD_GROUP_ROWS", "25k", r"CRM_LOAD_GROUP_ROWS='25k' is not a whole number"),
        ("CRM_LOAD_GROUP_ROWS", "0", r"CRM_LOAD_GROUP_ROWS=0 is below its minimum, 1"),
        ("CRM_PUBLISH_CUTOFF", "6am", r"CRM_PUBLISH_CUTOFF='6am' is not a local time HH:MM"),
        ("CRM_EARLIEST_DATE", "2024/01/01", r"CRM_EARLIEST_DATE: not an ISO date"),
        ("CRM_CLV_ANNUAL_DISCOUNT", "10%", r"CRM_CLV_ANNUAL_DISCOUNT='10%' is not a number"),
        ("CRM_CLV_ANNUAL_DISCOUNT", "1.5", r"CRM_CLV_ANNUAL_DISCOUNT=1.5 is above its maximum, 1.0"),
        ("CRM_CLV_ANNUAL_DISCOUNT", "-0.1", r"CRM_CLV_ANNUAL_DISCOUNT=-0.1 is below its minimum, 0.0"),
        ("CRM_DBT_LOG_LEVEL", "Verbose", r"CRM_DBT_LOG_LEVEL='verbose' is not one of debug, info, warn, error, none"),
    ],
)
def test_a_bad_value_names_its_variable(monkeypatch, name, raw, message):
    monkeypatch.setenv(name, raw)
    with pytest.raises(SettingError, match=message):
        settings()


def test_secrets_stay_out_of_the_settings_repr(monkeypatch):
    monkeypatch.setenv("CRM_KEY_SECRET", "s3cret-key")
    monkeypatch.setenv("CRM_ALERT_FEISHU_SECRET", "s3cret-sign")
    monkeypatch.setenv("CRM_ALERT_SLACK_WEBHOOK_URL", "https://hooks.example/s3cret-token")
    monkeypatch.setenv("CRM_SHOP_DB_URL", "postgresql://shop:s3cret-pw@db/shop")
    cfg = settings()
    assert cfg.key_secret == "s3cret-key" and cfg.alert_webhooks["feishu"] == (None, "s3cret-sign")
    assert "s3cret" not in repr(cfg)
