"""Re-extracts never delete rows (issue 21, item 1): quiet days, a change, quiet days again.

A shop database (a SQLite file, MariaDB, or PostgreSQL as the source) is
extracted every day into warehouse A, the way the pipeline runs. On each day
a fresh warehouse B extracts the source's state of that day in one shot. Raw
in A must never lose a row, and its latest live version of every key must be
B's; on the SQLite source, A's marts must equal B's on the change and the
quiet day after it (dbt builds both).

The days: 1 the first extract; 2-3 quiet; 4 an order updated, an order
soft-deleted (its `deleted_at` set), an order and its item deleted outright,
a new order and a second refund; 5-6 quiet. The old loader gave the one
refund 1, 0, 1, 0 rows on four days (a quiet extract reused the batch id,
deleted the batch's rows, then skipped every row as re-read).
"""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from conftest import PARSE_CACHE, SECRET, pg_database
from crm_pipeline.load.specs import SHOP_ENTITIES, SPECS
from crm_pipeline.load.warehouse import Warehouse
from crm_pipeline.quality.gate import BUILD_SCHEMA, MARTS, content_md5

pytestmark = pytest.mark.e2e
DAYS = [dt.date(2026, 11, 2) + dt.timedelta(days=k) for k in range(6)]
CHANGE = 3  # DAYS[3] is day 4
# Marts are built and compared on the change and the quiet day after it (dbt builds are this test's
# cost; the raw comparison, which the old loader failed on day 2, runs every day).
MART_DAYS = {CHANGE, CHANGE + 1}


def _types(kind: str) -> dict[str, str]:
    if kind == "sqlite":  # SQLite keeps timestamps as text
        return {"ts": "text", "amt": "numeric", "int": "integer"}
    return {"ts": "datetime" if kind == "mariadb" else "timestamp", "amt": "decimal(12, 2)", "int": "int"}


DDL = [
    "create table customers (customer_id varchar(32) primary key, registered_at {ts} not null, "
    "phone varchar(32), email varchar(64), province varchar(32), city varchar(32), updated_at {ts})",
    "create table orders (order_id varchar(32) primary key, customer_id varchar(32) not null, "
    "ordered_at {ts} not null, status varchar(16) not null, total_amount {amt} not null, "
    "currency varchar(3), channel varchar(16), updated_at {ts}, deleted_at {ts})",
    "create table order_items (order_id varchar(32) not null, line_no {int} not null, "
    "product_id varchar(32) not null, quantity {int} not null, unit_price {amt} not null, "
    "product_name varchar(64), category varchar(32), primary key (order_id, line_no))",
    "create table refunds (refund_id varchar(32) primary key, order_id varchar(32) not null, "
    "refunded_at {ts} not null, amount {amt} not null, reason varchar(200))",
    "create table reviews (review_id varchar(32) primary key, customer_id varchar(32) not null, "
    "rating {int} not null, created_at {ts} not null, order_id varchar(32), product_id varchar(32), "
    "content varchar(400))",
]


def state(k: int) -> dict[str, list[dict]]:
    """The source's rows on day index k (see the module docstring)."""
    customers = [
        {"customer_id": "c1", "registered_at": "2026-01-05 10:00:00", "phone": "13800000001", "email": "a@x.cn",
         "province": "上海", "city": "上海", "updated_at": "2026-01-05 10:00:00"},
        {"customer_id": "c2", "registered_at": "2026-03-01 09:30:00", "phone": "13800000002", "email": None,
         "province": "浙江", "city": "杭州", "updated_at": "2026-03-01 09:30:00"},
        {"customer_id": "c3", "registered_at": "2026-06-11 20:15:00", "phone": None, "email": "c@x.cn",
         "province": "广东", "city": "深圳", "updated_at": "2026-06-11 20:15:00"},
    ]  # fmt: skip

    def order(oid, cid, at, status, amount, updated=None, deleted=None):
        return {"order_id": oid, "customer_id": cid, "ordered_at": at, "status": status, "total_amount": amount,
                "currency": "CNY", "channel": "tmall", "updated_at": updated or at, "deleted_at": deleted}  # fmt: skip

    def item(oid, line, product, qty, price):
        return {"order_id": oid, "line_no": line, "product_id": product, "quantity": qty, "unit_price": price,
                "product_name": f"商品{product}", "category": "手机"}  # fmt: skip

    orders = [
        order("o1", "c1", "2026-09-01 10:00:00", "completed", "1299.00"),
        order("o2", "c1", "2026-10-20 11:00:00", "paid", "199.00"),
        order("o3", "c2", "2026-10-25 12:00:00", "completed", "599.00"),
        order("o4", "c3", "2026-10-30 13:00:00", "shipped", "89.00"),
        order("o6", "c2", "2026-10-31 08:00:00", "completed", "45.00"),
    ]
    items = [item("o1", 1, "p1", 1, "1299.00"), item("o2", 1, "p2", 1, "199.00"), item("o3", 1, "p3", 1, "599.00"),
             item("o4", 1, "p4", 1, "89.00"), item("o6", 1, "p5", 3, "15.00")]  # fmt: skip
    refunds = [{"refund_id": "r1", "order_id": "o3", "refunded_at": "2026-10-28 09:00:00", "amount": "100.00",
                "reason": "屏幕有划痕"}]  # fmt: skip
    reviews = [
        {"review_id": "v1", "customer_id": "c1", "rating": 5, "created_at": "2026-09-05 10:00:00", "order_id": "o1",
         "product_id": "p1", "content": "很好用，物流也快"},
        {"review_id": "v2", "customer_id": "c2", "rating": 2, "created_at": "2026-10-29 10:00:00", "order_id": "o3",
         "product_id": "p3", "content": "屏幕有划痕，客服不理人"},
    ]  # fmt: skip
    if k >= CHANGE:
        stamp = f"{DAYS[CHANGE]} 09:00:00"
        orders[1] = order("o2", "c1", "2026-10-20 11:00:00", "completed", "199.00", updated=stamp)
        orders[2] = order("o3", "c2", "2026-10-25 12:00:00", "completed", "599.00", updated=stamp, deleted=stamp)
        del orders[3], items[3]  # o4 and its item deleted outright
        orders.append(order("o5", "c3", f"{DAYS[CHANGE]} 08:00:00", "paid", "2599.00"))
        items.append(item("o5", 1, "p1", 2, "1299.50"))
        refunds.append({"refund_id": "r2", "order_id": "o1", "refunded_at": f"{DAYS[CHANGE]} 08:30:00",
                        "amount": "50.00", "reason": "Changed my mind"})  # fmt: skip
    return {"customers": customers, "orders": orders, "order_items": items, "refunds": refunds, "reviews": reviews}


def write_state(url: str, rows: dict[str, list[dict]]) -> None:
    """The source holds exactly `rows` (deleted rows are gone, as a hard delete leaves them)."""
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for entity, records in rows.items():
            conn.execute(sa.text(f"delete from {entity}"))
            if records:
                cols = list(records[0])
                conn.execute(
                    sa.text(f"insert into {entity} ({', '.join(cols)}) values ({', '.join(':' + c for c in cols)})"),
                    records,
                )
    engine.dispose()


def create_source(url: str, kind: str) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for ddl in DDL:
            conn.execute(sa.text(ddl.format(**_types(kind))))
    engine.dispose()


@pytest.fixture(params=["sqlite", "mariadb", "postgres"])
def source_url(request, tmp_path):
    kind = request.param
    if kind == "sqlite":
        url = f"sqlite:///{tmp_path}/shop.sqlite"
        create_source(url, kind)
        yield kind, url
        return
    if kind == "postgres":  # psycopg2: SQLAlchemy 2.1 would take psycopg 3 for a plain postgresql:// URL
        url = request.getfixturevalue("pg_url").replace("postgresql://", "postgresql+psycopg2://")
    else:
        url = request.getfixturevalue("mariadb_url")
    create_source(url, kind)
    yield kind, url


@pytest.fixture(params=["duckdb", "postgres"])
def warehouse_pair(request, tmp_path):
    """A (extracted every day) and a fresh B per day, on one engine."""
    if request.param == "duckdb":
        yield request.param, lambda k: f"duckdb:///{tmp_path}/{'daily' if k is None else f'oneshot{k}'}.duckdb"
        return
    with pg_database("crm_daily") as daily:
        made: dict[int, object] = {}

        def url(k):
            if k is None:
                return daily
            made[k] = pg_database("crm_oneshot")
            return made[k].__enter__()

        try:
            yield request.param, url
        finally:
            for ctx in made.values():
                ctx.__exit__(None, None, None)


def _env(monkeypatch, tmp_path, warehouse: str, source: str, tag: str) -> None:
    landing = tmp_path / "landing"
    landing.mkdir(exist_ok=True)
    for k, v in {
        "CRM_WAREHOUSE_URL": warehouse,
        "CRM_SHOP_DB_URL": source,
        "CRM_LANDING_DIR": str(landing),
        "CRM_KEY_SECRET": SECRET,
        "CRM_TIMEZONE": "Asia/Shanghai",
        "CRM_DBT_PARSE_CACHE": PARSE_CACHE,
        "CRM_DBT_ARTIFACTS_DIR": str(tmp_path / f"dbt_{tag}"),
        "CRM_SQL_RECONCILE_DAYS": "1",  # every extract: the hard delete is noticed the day it happens
    }.items():
        monkeypatch.setenv(k, v)


def extract_day(monkeypatch, tmp_path, warehouse: str, source: str, day: dt.date, tag: str, build: bool) -> None:
    from crm_pipeline import pipeline

    _env(monkeypatch, tmp_path, warehouse, source, tag)
    pipeline.prepare_warehouse()
    for entity in SHOP_ENTITIES:
        pipeline.extract_sql_entity(entity, day)
    if build:
        pipeline.score_texts()
        pipeline.build_marts(day, f"test-{tag}-{day}")


def latest_live(url: str) -> dict[str, list[tuple]]:
    """Per shop entity, the contract fields of each key's latest version that is not a tombstone."""
    out = {}
    with Warehouse.from_url(url) as wh:
        for entity in SHOP_ENTITIES:
            spec = SPECS[entity]
            cols, keys = ", ".join(spec.field_names), ", ".join(spec.key)
            deleted = "coalesce(_deleted, false)" if "_deleted" in wh.columns("raw", entity) else "false"
            rows = wh.fetchall(
                f"select {cols}, {deleted} from (select *, row_number() over (partition by {keys} "
                "order by _loaded_at desc, coalesce(_line_no, 0) desc, _row_hash desc) as n "
                f"from raw.{entity}) as v where n = 1"
            )
            out[entity] = sorted(tuple(str(v) for v in r[:-1]) for r in rows if not r[-1])
    return out


def raw_hashes(url: str) -> dict[str, list[str]]:
    with Warehouse.from_url(url) as wh:
        return {e: sorted(h for (h,) in wh.fetchall(f"select _row_hash from raw.{e}")) for e in SHOP_ENTITIES}


def marts(url: str) -> dict[str, tuple]:
    with Warehouse.from_url(url) as wh:
        return {m: tuple(content_md5(wh, f"{BUILD_SCHEMA}.{m}")) for m in MARTS}


def test_quiet_days_change_and_quiet_days_lose_nothing(source_url, warehouse_pair, tmp_path, monkeypatch):
    kind, source = source_url
    engine, warehouse = warehouse_pair
    build = kind == "sqlite"  # marts every day on one source: dbt builds are the cost of this test
    daily = warehouse(None)
    before: dict[str, list[str]] = {}
    refund_rows = []
    for k, day in enumerate(DAYS):
        write_state(source, state(k))
        built = build and k in MART_DAYS
        extract_day(monkeypatch, tmp_path, daily, source, day, "daily", built)
        oneshot = warehouse(k)
        extract_day(monkeypatch, tmp_path, oneshot, source, day, f"oneshot{k}", built)

        now = raw_hashes(daily)
        for entity, hashes in before.items():  # nothing an earlier extract loaded is gone
            missing = set(hashes) - set(now[entity])
            assert not missing, f"day {k + 1}: {entity} lost {len(missing)} row(s)"
        before = now
        assert latest_live(daily) == latest_live(oneshot), f"day {k + 1} ({kind} -> {engine})"
        if built:
            assert marts(daily) == marts(oneshot), f"day {k + 1}: marts differ from a one-shot load"
        with Warehouse.from_url(daily) as wh:
            refund_rows.append(wh.fetchone("select count(*) from raw.refunds")[0])

    # The repro: one refund, extracted on the first days, stays one row; the change adds one.
    assert refund_rows == [1, 1, 1, 2, 2, 2], refund_rows
    with Warehouse.from_url(daily) as wh:
        live = latest_live(daily)
        assert [r[0] for r in live["orders"]] == ["o1", "o2", "o5", "o6"]  # o3 soft-deleted, o4 deleted outright
        assert [r[0] for r in live["order_items"]] == ["o1", "o2", "o5", "o6"]
        tombstones = dict(
            wh.fetchall("select entity, sum(tombstoned) from audit.reconciliations group by entity order by entity")
        )
        if build:
            rfm = wh.fetchall(f"select frequency_orders, count(*) from {BUILD_SCHEMA}.fct_customer_rfm group by 1")
            rfm = dict(rfm)
    assert tombstones["orders"] == 1 and tombstones["order_items"] == 1, tombstones  # o4 (o3 came soft-deleted)
    if build:
        # c1: o1, o2; c2: o6 (o3 deleted); c3: o5 (o4 deleted): frequencies 2, 1, 1.
        assert rfm == {2: 1, 1: 2}, rfm


def test_the_shop_dag_maps_its_sql_extract_over_every_entity_only_with_a_shop_database(tmp_path, airflow_db):
    """Through Airflow (`make run --dags crm_extract_shop`): with CRM_SHOP_DB_URL, `extract_sql` runs once
    per shop entity and the gate checks what it loaded; without it, `extract_sql` maps over nothing, is
    skipped without running, and the gate still runs (the DAG succeeds)."""
    import sqlite3

    from e2e.helpers import pipeline_env, run_main

    source = f"sqlite:///{tmp_path}/shop.sqlite"
    create_source(source, "sqlite")
    write_state(source, state(0))
    tis = {}
    for tag, shop_db in (("with", source), ("without", None)):
        landing = tmp_path / f"landing_{tag}"
        landing.mkdir()
        env = pipeline_env(
            {"landing": landing, "url": f"duckdb:///{tmp_path}/{tag}.duckdb", "tmp": tmp_path}, airflow_db
        )
        env.pop("CRM_SHOP_DB_URL", None)
        if shop_db:
            env["CRM_SHOP_DB_URL"] = shop_db
        (landing / "orders").mkdir()  # not empty: `make run` would generate a sample community
        (landing / "orders" / "none.csv").write_text("order_id,customer_id,ordered_at,status,total_amount\n")
        proc = run_main(env, DAYS[0], ["--dags", "crm_extract_shop"])
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        with sqlite3.connect(airflow_db / "airflow.db") as meta:
            run_id = meta.execute(
                "select run_id from dag_run where dag_id = 'crm_extract_shop' order by id desc limit 1"
            ).fetchone()[0]
            tis[tag] = sorted(
                meta.execute(
                    "select task_id, map_index, state from task_instance where dag_id = 'crm_extract_shop' "
                    "and run_id = ? and task_id in ('extract_sql', 'check_raw')",
                    (run_id,),
                ).fetchall()
            )
        with Warehouse.from_url(env["CRM_WAREHOUSE_URL"]) as wh:
            gated = wh.fetchall("select entity, quality_status from audit.load_batches where source like 'sql:%'")
        if shop_db:  # the five tables of state(0), each a batch the gate checked and let through
            assert sorted(e for e, status in gated if status in ("passed", "warned")) == sorted(SHOP_ENTITIES), gated
        else:
            assert gated == []
    assert tis["with"] == [("check_raw", -1, "success")] + [("extract_sql", i, "success") for i in range(5)]
    assert tis["without"] == [("check_raw", -1, "success"), ("extract_sql", -1, "skipped")]
