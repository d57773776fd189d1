"""The warehouse behind CRM_WAREHOUSE_URL: DuckDB (embedded default) or PostgreSQL, one small API.

Bulk paths only: DuckDB inserts from a registered Arrow table, PostgreSQL
uses COPY. SQL here uses %s placeholders; DuckDB's are rewritten to ?.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

from crm_pipeline.config import REPO_ROOT, settings

SCHEMAS = ("raw", "audit", "private")

TYPE_SQL = {
    "duckdb": {
        "text": "varchar",
        "int": "bigint",
        "amount": "decimal(18,2)",
        "timestamp": "timestamp",
        "date": "date",
        "bool": "boolean",
        "float": "double",
    },
    "postgres": {
        "text": "text",
        "int": "bigint",
        "amount": "numeric(18,2)",
        "timestamp": "timestamp",
        "date": "date",
        "bool": "boolean",
        "float": "double precision",
    },
}


@dataclass(frozen=True)
class WarehouseTarget:
    kind: str  # duckdb | postgres
    path: Path | None = None  # duckdb
    host: str = "127.0.0.1"
    port: int = 5432
    user: str = "postgres"
    password: str = ""
    database: str = "postgres"

    @property
    def label(self) -> str:
        if self.kind == "duckdb":
            return str(self.path)
        return f"postgresql://{self.user}@{self.host}:{self.port}/{self.database}"


# DuckDB's buffer for dbt and for the warehouse's own connections, unless CRM_DUCKDB_MEMORY_LIMIT says
# otherwise: 80% of RAM (DuckDB's own default) but at most this, so a scale-L run stays under 8 GB on
# any machine (it spills beyond it).
DUCKDB_MEMORY_CAP_BYTES = 6_000_000_000


def ram_bytes() -> int:
    """Physical memory of this machine."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def duckdb_memory_limit() -> str:
    """CRM_DUCKDB_MEMORY_LIMIT when set, else the smaller of 80% of RAM and DUCKDB_MEMORY_CAP_BYTES."""
    explicit = settings().duckdb_memory_limit
    if explicit:
        return explicit
    return f"{min(int(0.8 * ram_bytes()), DUCKDB_MEMORY_CAP_BYTES) // 2**20}MiB"


def parse_url(url: str) -> WarehouseTarget:
    """duckdb:///relative/path, duckdb:////absolute/path, postgresql://user[:pw]@host[:port]/db."""
    if url.startswith("duckdb:///"):
        raw = url[len("duckdb:///") :]
        path = Path(raw) if raw.startswith("/") else REPO_ROOT / raw
        return WarehouseTarget("duckdb", path=path)
    parsed = urlparse(url)
    if parsed.scheme.split("+")[0] in ("postgresql", "postgres"):
        return WarehouseTarget(
            "postgres",
            host=parsed.hostname or "127.0.0.1",
            port=parsed.port or 5432,
            user=unquote(parsed.username or "postgres"),
            password=unquote(parsed.password or ""),
            database=(parsed.path or "/postgres").lstrip("/") or "postgres",
        )
    raise ValueError(f"CRM_WAREHOUSE_URL must be duckdb:///<path> or postgresql://...; got {url!r}")


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


@contextlib.contextmanager
def writer_lock(target: WarehouseTarget) -> Iterator[None]:
    """DuckDB allows one writer process per file: serialise our writers on a lock file."""
    if target.kind != "duckdb":
        yield
        return
    with _file_lock(Path(f"{target.path}.lock")):
        yield


@contextlib.contextmanager
def transform_lock(target: WarehouseTarget) -> Iterator[None]:
    """One build-check-publish at a time per warehouse: builds share marts_build and the staging schemas.

    Airflow already runs one crm_transform at a time (max_active_runs=1); this
    serialises runs started outside one scheduler (parallel `make run`s,
    backfills from two machines). DuckDB: a lock file beside the database;
    PostgreSQL: a session advisory lock, released if the holder dies.
    """
    if target.kind == "duckdb":
        with _file_lock(Path(f"{target.path}.transform.lock")):
            yield
        return
    with Warehouse(target) as wh, wh.session_lock("crm:transform"):
        yield


class Warehouse:
    """A connection in one transaction at a time: use `with wh.transaction():`."""

    def __init__(self, target: WarehouseTarget):
        self.target = target
        self.kind = target.kind
        if self.kind == "duckdb":
            import duckdb

            target.path.parent.mkdir(parents=True, exist_ok=True)
            # Capped as dbt's is: DuckDB's buffer otherwise keeps what a load wrote and a gate read, up
            # to 80% of RAM (8.1 and 8.7 GB at scale L).
            self.conn = duckdb.connect(str(target.path), config={"memory_limit": duckdb_memory_limit()})
        else:
            import psycopg2

            self.conn = psycopg2.connect(
                host=target.host,
                port=target.port,
                user=target.user,
                password=target.password,
                dbname=target.database,
                options="-c TimeZone=UTC",
            )
            self.conn.autocommit = True

    @classmethod
    def from_url(cls, url: str) -> Warehouse:
        return cls(parse_url(url))

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Warehouse:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- SQL -------------------------------------------------------------
    def _sql(self, sql: str) -> str:
        return sql.replace("%s", "?") if self.kind == "duckdb" else sql

    def execute(self, sql: str, params: tuple | list = ()) -> None:
        if self.kind == "duckdb":
            self.conn.execute(self._sql(sql), list(params))
        else:
            with self.conn.cursor() as cur:
                cur.execute(sql, tuple(params) or None)  # no params: a literal % stays literal

    def fetchall(self, sql: str, params: tuple | list = ()) -> list[tuple]:
        if self.kind == "duckdb":
            return self.conn.execute(self._sql(sql), list(params)).fetchall()
        with self.conn.cursor() as cur:
            cur.execute(sql, tuple(params) or None)
            return cur.fetchall()

    def fetchone(self, sql: str, params: tuple | list = ()):
        rows = self.fetchall(sql, params)
        return rows[0] if rows else None

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        if self.kind == "duckdb":
            self.conn.execute("begin transaction")
            try:
                yield
            except BaseException:
                self.conn.execute("rollback")
                raise
            self.conn.execute("commit")
        else:
            self.conn.autocommit = False
            try:
                yield
            except BaseException:
                self.conn.rollback()
                raise
            else:
                self.conn.commit()
            finally:
                self.conn.autocommit = True

    def xact_lock(self, name: str) -> None:
        """PostgreSQL: hold a lock on `name` until this transaction ends (DuckDB: the writer lock already does)."""
        if self.kind == "postgres":
            self.execute("select pg_advisory_xact_lock(hashtext(%s))", (name,))

    @contextlib.contextmanager
    def session_lock(self, name: str) -> Iterator[None]:
        """PostgreSQL: hold a lock on `name` for the block, across transactions (DuckDB: the writer lock does)."""
        if self.kind != "postgres":
            yield
            return
        self.execute("select pg_advisory_lock(hashtext(%s))", (name,))
        try:
            yield
        finally:
            self.execute("select pg_advisory_unlock(hashtext(%s))", (name,))

    def table_exists(self, schema: str, table: str, base_only: bool = False) -> bool:
        """Whether the relation exists (a table or a view; only a base table when `base_only`)."""
        row = self.fetchone(
            "select count(*) from information_schema.tables where table_schema = %s and table_name = %s"
            + (" and table_type = 'BASE TABLE'" if base_only else ""),
            (schema, table),
        )
        return bool(row and row[0])

    def columns(self, schema: str, table: str) -> list[str]:
        rows = self.fetchall(
            "select column_name from information_schema.columns where table_schema = %s and table_name = %s "
            "order by ordinal_position",
            (schema, table),
        )
        return [r[0] for r in rows]

    def type_sql(self, type_name: str) -> str:
        return TYPE_SQL[self.kind][type_name]

    def columns_by_table(self, *schemas: str) -> dict[str, list[str]]:
        """`schema.table` -> its columns in order, for every relation of these schemas, in one query."""
        marks = ", ".join(["%s"] * len(schemas))
        out: dict[str, list[str]] = {}
        for schema, table, column in self.fetchall(
            "select table_schema, table_name, column_name from information_schema.columns "
            f"where table_schema in ({marks}) order by table_schema, table_name, ordinal_position",
            schemas,
        ):
            out.setdefault(f"{schema}.{table}", []).append(column)
        return out

    def create_table(self, qualified: str, columns: list[tuple[str, str]], existing: list[str] | None = None) -> None:
        """The one way the pipeline makes a table: `columns` are (name, type) with the types of TYPE_SQL.
        A table that exists gets the columns it lacks (a column added to the contract later). `existing`:
        the table's columns as columns_by_table found them ([] for none), when the caller looked already."""
        schema, table = qualified.split(".")
        existing = self.columns(schema, table) if existing is None else existing
        if not existing:  # a relation has at least one column: no columns, no table
            cols = ", ".join(f'"{n}" {self.type_sql(t)}' for n, t in columns)
            self.execute(f"create table if not exists {qualified} ({cols})")
            return
        existing = set(existing)
        for n, t in columns:
            if n not in existing:
                self.execute(f'alter table {qualified} add column "{n}" {self.type_sql(t)}')

    # -- bulk ------------------------------------------------------------
    def append_arrow(self, qualified_table: str, table) -> None:
        """Append an Arrow table whose column names match the target's columns."""
        if table.num_rows == 0:
            return
        cols = ", ".join(f'"{c}"' for c in table.column_names)
        if self.kind == "duckdb":
            name = "_crm_arrow_batch"
            self.conn.register(name, table)
            try:
                self.conn.execute(f"insert into {qualified_table} ({cols}) select {cols} from {name}")
            finally:
                self.conn.unregister(name)
            return
        import pyarrow.csv as pacsv

        buf = io.BytesIO()
        # One chunk: pyarrow 26 writes NUL bytes for a table whose first chunk is empty.
        table = table.combine_chunks()
        pacsv.write_csv(table, buf, pacsv.WriteOptions(include_header=False))
        buf.seek(0)
        with self.conn.cursor() as cur:
            cur.copy_expert(f"copy {qualified_table} ({cols}) from stdin with (format csv)", buf)


def ensure_schemas(wh: Warehouse) -> None:
    for schema in SCHEMAS:
        wh.execute(f"create schema if not exists {schema}")
