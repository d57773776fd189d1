"""A source shop database's orders table, for tests that extract from a real MariaDB or PostgreSQL."""

from __future__ import annotations

import sqlalchemy as sa

DDL = """
create table orders (
    order_id varchar(32) not null,
    customer_id varchar(32) not null,
    ordered_at datetime not null,
    status varchar(16) not null,
    total_amount decimal(12, 2) not null,
    currency varchar(3),
    channel varchar(32),
    updated_at datetime not null,
    primary key (order_id)
)
"""


def execute(url, sql, params=None):
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text(sql), params or {})
    engine.dispose()


def insert_order(url, order_id, status, amount, updated):
    execute(
        url,
        "insert into orders values (:id, 'c1', '2026-11-01 09:00:00', :st, :amt, 'CNY', 'jd', :up) "
        "on duplicate key update status = :st, total_amount = :amt, updated_at = :up",
        {"id": order_id, "st": status, "amt": amount, "up": updated},
    )
