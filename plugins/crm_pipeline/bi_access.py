"""Read-only access for BI tools: a PostgreSQL role that can read `marts` and nothing else.

`CRM_BI_ROLE` names the role and `CRM_BI_PASSWORD` (optional) sets its login
password. When `CRM_BI_ROLE` is set, the pipeline's setup (`prepare_warehouse`)
creates or repairs the role (roles are cluster-wide, so never unasked), and every
publish grants it the freshly copied marts. Raw, staging, intermediate, audit,
scoring, reference, private and marts_build are not readable by it, and do not appear
in its information_schema. On DuckDB there are no roles: BI opens the file
read-only (DuckDB's `read_only=True` / `ACCESS_MODE READ_ONLY`) and sees every schema.
"""

from __future__ import annotations

from crm_pipeline.config import settings
from crm_pipeline.load.warehouse import Warehouse

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
