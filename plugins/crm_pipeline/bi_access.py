"""Read-only access for BI tools: a PostgreSQL role that can read `marts` and nothing else.

`CRM_BI_ROLE` names the role and `CRM_BI_PASSWORD` (optional) sets its login
password. When `CRM_BI_ROLE` is set, the pipeline's setup (`prepare_warehouse`)
creates or repairs the role (roles are cluster-wide, so never unasked), and every
publish grants it the freshly copied marts. Raw, staging, intermediate, audit,
scoring, reference, private and marts_build are not readable by it, and do not appear
in its information_schema.

DuckDB has no roles, and a file with a writer cannot be opened by anyone else, even
read-only: a BI tool that held the warehouse open would stop the pipeline. So every
publish on DuckDB also writes the marts, and nothing else, to a file of their own
(`bi_copy_path`: beside the warehouse, `<name>_bi.duckdb`, or CRM_BI_DUCKDB_PATH),
written under another name and renamed over the last one: a reader that has the old
file open keeps reading it, the next one opens the new one, none sees half a copy.
BI opens that file read-only. A deletion request takes the person out of it too.
"""

from __future__ import annotations

import os
from pathlib import Path

from crm_pipeline.config import settings
from crm_pipeline.load.warehouse import Warehouse, WarehouseTarget

PUBLIC_SCHEMA = "marts"


def role_name() -> str:
    name = settings().bi_role or "crm_bi_reader"
    if not name.replace("_", "").isalnum():
        raise ValueError(f"CRM_BI_ROLE must be letters, digits and underscores, not {name!r}")
    return name


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def ensure_bi_role(wh: Warehouse, role: str | None = None, password: str | None = None) -> str | None:
    if wh.kind != "postgres":
        return None
    role = role or role_name()
    password = password if password is not None else settings().bi_password
    r = _ident(role)
    if not wh.fetchone("select count(*) from pg_roles where rolname = %s", (role,))[0]:
        wh.execute(f"create role {r} login nosuperuser nocreatedb nocreaterole noinherit")
    if password:
        wh.execute(f"alter role {r} password %s", (password,))
    database = wh.fetchone("select current_database()")[0]
    wh.execute(f"grant connect on database {_ident(database)} to {r}")
    wh.execute(f"create schema if not exists {PUBLIC_SCHEMA}")
    for (schema,) in wh.fetchall(
        "select nspname from pg_namespace where left(nspname, 3) != 'pg_' and nspname != 'information_schema'"
    ):
        if schema == PUBLIC_SCHEMA:
            continue
        wh.execute(f"revoke all on schema {_ident(schema)} from {r}")
        wh.execute(f"revoke all on all tables in schema {_ident(schema)} from {r}")
    grant_marts(wh, role)
    wh.execute(f"alter default privileges in schema {PUBLIC_SCHEMA} grant select on tables to {r}")
    return role


def grant_marts(wh: Warehouse, role: str | None = None) -> None:
    """Select on every table in `marts` (publish recreates them)."""
    if wh.kind != "postgres":
        return
    role = role or role_name()
    if not wh.fetchone("select count(*) from pg_roles where rolname = %s", (role,))[0]:
        return
    r = _ident(role)
    wh.execute(f"grant usage on schema {PUBLIC_SCHEMA} to {r}")
    wh.execute(f"grant select on all tables in schema {PUBLIC_SCHEMA} to {r}")


def bi_copy_path(target: WarehouseTarget) -> Path | None:
    """Where the BI copy of a DuckDB warehouse's marts goes (None on PostgreSQL: BI reads the role)."""
    if target.kind != "duckdb":
        return None
    path = settings().bi_duckdb_path
    if path is not None and path.stem == PUBLIC_SCHEMA:
        # DuckDB names the catalog after the file: `marts.x` would name a catalog and a schema at once.
        raise ValueError(
            f"CRM_BI_DUCKDB_PATH={path}: a file named {PUBLIC_SCHEMA}.duckdb cannot hold schema {PUBLIC_SCHEMA}"
        )
    return path or target.path.with_name(f"{target.path.stem}_bi.duckdb")


def refresh_bi_copy(wh: Warehouse) -> Path | None:
    """Write every table of `marts` to the BI copy (DuckDB only); returns its path."""
    path = bi_copy_path(wh.target)
    if path is None:
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    # The catalog is named after the file; a stable name (not the temporary file's) keeps it `<stem>`.
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    tables = [t for (t,) in wh.fetchall(
        "select table_name from information_schema.tables "
        "where table_catalog = current_database() and table_schema = %s order by 1",
        (PUBLIC_SCHEMA,),
    )]  # fmt: skip
    wh.execute(f"attach '{_literal(tmp)}' as crm_bi_copy")
    try:
        wh.execute(f"create schema crm_bi_copy.{PUBLIC_SCHEMA}")
        for table in map(_ident, tables):
            wh.execute(f"create table crm_bi_copy.{PUBLIC_SCHEMA}.{table} as select * from {PUBLIC_SCHEMA}.{table}")
        wh.execute("checkpoint crm_bi_copy")
    finally:
        wh.execute("detach crm_bi_copy")
    os.replace(tmp, path)
    return path


def _literal(path: Path) -> str:
    return str(path).replace("'", "''")
