"""The read-only BI role on PostgreSQL: marts readable, nothing else readable or even visible."""

from __future__ import annotations

import uuid

import psycopg2
import pytest

from crm_pipeline.bi_access import ensure_bi_role
from crm_pipeline.load.loader import ensure_tables, write_pseudonym_key
from crm_pipeline.load.warehouse import Warehouse, parse_url
from crm_pipeline.quality.gate import MARTS, publish


@pytest.fixture
def role(pg_url):
    name = f"crm_bi_test_{uuid.uuid4().hex[:8]}"
    yield name
    target = parse_url(pg_url)
    with Warehouse(target) as wh:
        wh.execute(f'drop owned by "{name}"')
    with psycopg2.connect(host=target.host, port=target.port, user="postgres", dbname="postgres") as conn:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f'drop role if exists "{name}"')


def test_bi_role_reads_marts_and_nothing_else(pg_url, role):
    target = parse_url(pg_url)
    with Warehouse(target) as wh:
        ensure_tables(wh)
        write_pseudonym_key(wh, "secret")
        wh.execute("create schema if not exists marts_build")
        for mart in MARTS:
            wh.execute(f"create table marts_build.{mart} (customer_key varchar, n int)")
            wh.execute(f"insert into marts_build.{mart} values ('k1', 1)")
        assert ensure_bi_role(wh, role, password="pw") == role
        publish(wh)  # tables recreated after the grants: the role must still read them
        ensure_bi_role(wh, role)  # idempotent

    conn = psycopg2.connect(host=target.host, port=target.port, user=role, password="pw", dbname=target.database)
    conn.autocommit = True
    with conn.cursor() as cur:
        for mart in MARTS:
            cur.execute(f"select customer_key from marts.{mart}")
            assert cur.fetchall() == [("k1",)]
        cur.execute(
            "select distinct table_schema from information_schema.tables "
            "where table_schema not in ('pg_catalog', 'information_schema')"
        )
        assert [r[0] for r in cur.fetchall()] == ["marts"]
        for forbidden in (
            "raw.orders",
            "audit.load_batches",
            "audit.quarantine",
            "private.pseudonym_key",
            "marts_build.dim_customers",
        ):
            with pytest.raises(psycopg2.errors.InsufficientPrivilege):
                cur.execute(f"select * from {forbidden}")
        with pytest.raises(psycopg2.errors.InsufficientPrivilege):
            cur.execute("create table marts.mine (x int)")
        with pytest.raises(psycopg2.errors.InsufficientPrivilege):
            cur.execute("delete from marts.dim_customers")
    conn.close()


def test_nothing_to_do_on_duckdb(tmp_path):
    with Warehouse.from_url(f"duckdb:///{tmp_path}/w.duckdb") as wh:
        assert ensure_bi_role(wh, "whoever") is None


def test_on_duckdb_each_publish_refreshes_a_marts_only_copy_that_readers_can_hold_open(tmp_path, monkeypatch):
    """The warehouse file cannot be opened by a BI tool while the pipeline writes it; the copy can, and a
    reader holding it open neither blocks the next publish nor sees half of it."""
    import duckdb

    from crm_pipeline.bi_access import bi_copy_path

    monkeypatch.delenv("CRM_BI_DUCKDB_PATH", raising=False)
    target = parse_url(f"duckdb:///{tmp_path}/warehouse.duckdb")

    def build(n: int):
        with Warehouse(target) as wh:
            ensure_tables(wh)
            wh.execute("create schema if not exists marts_build")
            for mart in MARTS:
                wh.execute(f"create or replace table marts_build.{mart} as select 'k' || range as customer_key "
                           f"from range({n})")  # fmt: skip
            publish(wh)
            return bi_copy_path(wh.target)

    assert build(2) == tmp_path / "warehouse_bi.duckdb"
    copy = str(tmp_path / "warehouse_bi.duckdb")
    held = duckdb.connect(copy, read_only=True)
    tables = held.execute("select table_schema, table_name from information_schema.tables order by 2").fetchall()
    assert tables == [("marts", m) for m in sorted(MARTS)]  # the marts and nothing else: no raw, audit or key
    build(3)  # a publish while a BI session has the copy open
    assert held.execute(f"select count(*) from marts.{MARTS[0]}").fetchone() == (2,)  # its own, whole
    held.close()
    with duckdb.connect(copy, read_only=True) as again:
        assert {again.execute(f"select count(*) from marts.{m}").fetchone()[0] for m in MARTS} == {3}
    assert sorted(p.name for p in tmp_path.iterdir() if "_bi" in p.name) == ["warehouse_bi.duckdb"]  # no leftovers

    monkeypatch.setenv("CRM_BI_DUCKDB_PATH", str(tmp_path / "bi" / "crm_marts.duckdb"))
    assert build(1) == tmp_path / "bi" / "crm_marts.duckdb"
    with duckdb.connect(str(tmp_path / "bi" / "crm_marts.duckdb"), read_only=True) as there:
        assert there.execute(f"select count(*) from marts.{MARTS[0]}").fetchone() == (1,)
