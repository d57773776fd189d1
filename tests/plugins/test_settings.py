"""The pseudonym secret: a public value is refused everywhere but the local DuckDB demo."""

from __future__ import annotations

import pytest

from crm_pipeline.config import DEMO_KEY_SECRET, InsecureSecretError, check_key_secret, settings
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
