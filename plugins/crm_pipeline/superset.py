"""`make bi`: Apache Superset on 127.0.0.1 with the project's four dashboards, reading the published marts.

Superset runs in a virtualenv of its own (`.venv-bi`, pinned by bi/requirements.lock: Superset needs
SQLAlchemy 1.4 and pandas 2, the pipeline SQLAlchemy 2 and pandas 3). Its metadata is SQLite under
`data/bi/superset`. The dashboards are code: the Superset bundle under bi/bundle (database,
datasets, charts, dashboards, as Superset exports them), imported through Superset's API on every
start, so a re-import brings an instance back to the repo's version (it is idempotent: objects keep
their UUIDs and ids).

What Superset reads:
* DuckDB warehouse: the read-only copy of the marts that every publish refreshes
  (`crm_pipeline.bi_access.bi_copy_path`), opened with DuckDB's read_only flag. Never the
  warehouse file itself, which the pipeline's single writer must be able to open at any time.
* PostgreSQL warehouse: the warehouse, as the read-only BI role (CRM_BI_ROLE, CRM_BI_PASSWORD),
  which sees `marts` and nothing else.

    python -m crm_pipeline.superset serve [--port 8088] [--password PW]
    python -m crm_pipeline.superset import --url URL --password PW [--uri SQLALCHEMY_URI]

`import` gives a Superset that runs elsewhere (the compose stack's) the same bundle.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
import zipfile
from pathlib import Path

import yaml

from crm_pipeline.config import REPO_ROOT, settings

BI_DIR = REPO_ROOT / "bi"
BUNDLE_DIR = BI_DIR / "bundle"
VENV = REPO_ROOT / ".venv-bi"
HOME = REPO_ROOT / "data" / "bi" / "superset"
DATABASE_FILE = "databases/crm_warehouse.yaml"
ADMIN = "admin"


class BIError(RuntimeError):
    """Superset could not be set up, started or given the bundle."""


def database_connection(warehouse_url: str | None = None) -> tuple[str, dict]:
    """Superset's SQLAlchemy URI for the marts, and the database's `extra` (engine parameters)."""
    from crm_pipeline.bi_access import bi_copy_path, role_name
    from crm_pipeline.load.warehouse import parse_url

    cfg = settings()
    target = parse_url(warehouse_url or cfg.warehouse_url)
    if target.kind == "duckdb":
        uri = f"duckdb:///{bi_copy_path(target)}"
        return uri, _engine_params(uri)
    if not cfg.bi_password:
        raise BIError("a PostgreSQL warehouse is read by the BI role: set CRM_BI_ROLE and CRM_BI_PASSWORD")
    auth = f"{urllib.parse.quote(role_name(), safe='')}:{urllib.parse.quote(cfg.bi_password, safe='')}"
    uri = f"postgresql+psycopg2://{auth}@{target.host}:{target.port}/{target.database}"
    return uri, _engine_params(uri)


def _engine_params(uri: str) -> dict:
    """DuckDB is opened read-only; psycopg2 takes no such argument (the role is what keeps BI read-only)."""
    return {"engine_params": {"connect_args": {"read_only": True}} if uri.startswith("duckdb") else {}}


def bundle(uri: str, extra: dict, source: Path = BUNDLE_DIR) -> bytes:
    """The bundle as the zip Superset imports, its database pointed at `uri`."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(source.rglob("*.yaml")):
            name = path.relative_to(source).as_posix()
            text = path.read_text(encoding="utf-8")
            if name == DATABASE_FILE:
                database = yaml.safe_load(text)
                database["sqlalchemy_uri"] = uri
                database["extra"] = {**database.get("extra", {}), **extra}
                text = yaml.safe_dump(database, allow_unicode=True, sort_keys=False)
            zf.writestr(f"crm_bundle/{name}", text)  # Superset drops the zip's top folder
    return buf.getvalue()


class Superset:
    """One Superset: its home (config secret, metadata DB, admin password) and, once started, its server."""

    def __init__(
        self,
        home: Path = HOME,
        port: int = 8088,
        venv: Path = VENV,
        password: str | None = None,
        *,
        url: str | None = None,
        user: str = ADMIN,
    ):
        """`url`: a Superset this module did not start (the compose stack's); give it its password."""
        self.home, self.port, self.venv, self.user = home, port, venv, user
        self.url = (url or f"http://127.0.0.1:{port}").rstrip("/")
        self.password = password or self._kept("admin_password")
        self.proc: subprocess.Popen | None = None
        self._token: str | None = None
        self._csrf: str | None = None
        # Superset's CSRF token belongs to a session: the session cookie goes with every call.
        self._opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())

    def _kept(self, name: str) -> str:
        """A secret made on first use and kept in the home (owner-only). Hex: a URL-safe token begins with
        "-" one time in 64, and `import --password -x...` is then read as an option, not a password."""
        path = self.home / name
        if not path.exists():
            self.home.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_hex(24), encoding="utf-8")
            path.chmod(0o600)
        return path.read_text(encoding="utf-8").strip()

    def env(self) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV", "AIRFLOW"))}
        env.update(
            SUPERSET_CONFIG_PATH=str(BI_DIR / "superset_config.py"),
            SUPERSET_HOME=str(self.home),
            SUPERSET_SECRET_KEY=self._kept("secret_key"),
            SUPERSET_METADATA_URI=f"sqlite:///{self.home / 'superset.db'}",
            FLASK_APP="superset.app:create_app()",
        )
        return env

    def _cli(self, *args: str, timeout: float = 600) -> str:
        exe = self.venv / "bin" / "superset"
        if not exe.exists():
            raise BIError(f"{exe} is missing: `make bi` creates the BI virtualenv (bi/requirements.lock)")
        proc = subprocess.run([str(exe), *args], env=self.env(), capture_output=True, text=True, timeout=timeout)
        if proc.returncode != 0:
            raise BIError(f"superset {' '.join(args[:2])} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
        return proc.stdout + proc.stderr

    def init(self) -> None:
        """Metadata DB migrated, roles and permissions, the admin user (idempotent)."""
        self._cli("db", "upgrade")
        self._cli("init")
        users = self._cli("fab", "list-users")
        if f"username:{ADMIN}" not in users.replace(" ", ""):
            self._cli(
                "fab", "create-admin", "--username", ADMIN, "--firstname", "CRM", "--lastname", "Admin",
                "--email", "admin@localhost", "--password", self.password,
            )  # fmt: skip
        else:
            self._cli("fab", "reset-password", "--username", ADMIN, "--password", self.password)

    def healthy(self) -> bool:
        """Whether the server answers its health check."""
        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=5) as response:
                return response.status == 200
        except OSError:
            return False

    def wait(self, timeout: float = 300) -> None:
        """Until the server answers its health check."""
        deadline = time.monotonic() + timeout
        while not self.healthy():
            if time.monotonic() > deadline:
                raise BIError(f"no Superset answered on {self.url} within {timeout:.0f} s")
            time.sleep(2)

    def start(self, log: Path | None = None, timeout: float = 180) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        log = log or self.home / "superset.log"
        fh = log.open("w")
        self.proc = subprocess.Popen(
            [str(self.venv / "bin" / "superset"), "run", "-h", "127.0.0.1", "-p", str(self.port), "--with-threads"],
            env=self.env(),
            stdout=fh,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BIError(f"Superset exited ({self.proc.returncode}):\n{log.read_text()[-3000:]}")
            if self.healthy():
                return
            time.sleep(1)
        self.stop()
        raise BIError(f"Superset did not answer on {self.url} within {timeout:.0f} s:\n{log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, 15)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, 9)
        self.proc = None

    def api(self, method: str, path: str, body: dict | None = None, *, data: bytes | None = None,
            content_type: str = "application/json"):  # fmt: skip
        """One call to Superset's REST API as the admin; the parsed JSON answer."""
        payload = data if data is not None else (json.dumps(body).encode() if body is not None else None)
        headers = {"Content-Type": content_type} if payload is not None else {}
        if path != "/api/v1/security/login":
            headers["Authorization"] = f"Bearer {self.token()}"
        if method != "GET" and path != "/api/v1/security/login":
            if self._csrf is None:
                self._csrf = self.api("GET", "/api/v1/security/csrf_token/")["result"]
            headers["X-CSRFToken"] = self._csrf
            headers["Referer"] = self.url
        request = urllib.request.Request(self.url + path, method=method, data=payload, headers=headers)
        try:
            with self._opener.open(request, timeout=120) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            raise BIError(f"{method} {path}: HTTP {exc.code}: {exc.read()[:2000]!r}") from None
        try:
            return json.loads(raw or b"null")
        except ValueError:
            raise BIError(f"{method} {path}: not JSON ({response.url}): {raw[:500]!r}") from None

    def token(self) -> str:
        if self._token is None:
            answer = self.api(
                "POST",
                "/api/v1/security/login",
                {"username": self.user, "password": self.password, "provider": "db", "refresh": False},
            )
            self._token = answer["access_token"]
        return self._token

    def import_bundle(self, zipped: bytes) -> None:
        """Superset's assets import: every object in the bundle created, or overwritten in place."""
        boundary = uuid.uuid4().hex
        parts = [
            (f'--{boundary}\r\nContent-Disposition: form-data; name="overwrite"\r\n\r\ntrue\r\n').encode(),
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="bundle"; filename="crm_bundle.zip"\r\n'
                "Content-Type: application/zip\r\n\r\n"
            ).encode()
            + zipped
            + b"\r\n",
            f"--{boundary}--\r\n".encode(),
        ]
        self.api(
            "POST",
            "/api/v1/assets/import/",
            data=b"".join(parts),
            content_type=f"multipart/form-data; boundary={boundary}",
        )

    def objects(self, kind: str) -> dict[str, dict]:
        """Superset's charts, dashboards or datasets, by UUID (every page)."""
        found: dict[str, dict] = {}
        page = 0
        while True:
            answer = self.api("GET", f"/api/v1/{kind}/?q=(page:{page},page_size:100)")
            for item in answer["result"]:
                found[str(item.get("uuid") or item["id"])] = item
            page += 1
            if page * 100 >= answer["count"] or not answer["result"]:
                return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ensure_bi_copy(warehouse_url: str | None = None) -> None:
    """A DuckDB warehouse published before the copy existed gets one now (a publish keeps it fresh)."""
    from crm_pipeline.bi_access import bi_copy_path, refresh_bi_copy
    from crm_pipeline.load.warehouse import Warehouse, parse_url, writer_lock

    target = parse_url(warehouse_url or settings().warehouse_url)
    path = bi_copy_path(target)
    if path is None or path.exists():
        return
    if not target.path.exists():
        raise BIError(f"no warehouse at {target.path}: `make run` first")
    with writer_lock(target), Warehouse(target) as wh:
        refresh_bi_copy(wh)


def serve(port: int, password: str | None) -> int:
    ensure_bi_copy()
    uri, extra = database_connection()
    superset = Superset(port=port, password=password)
    print(f"Superset: preparing its metadata in {superset.home} ...", flush=True)
    superset.init()
    superset.start()
    try:
        superset.import_bundle(bundle(uri, extra))
        dashboards = superset.objects("dashboard")
        print(f"Superset: {superset.url}/  user {ADMIN}, password {superset.password}")
        for item in sorted(dashboards.values(), key=lambda d: d["dashboard_title"]):
            print(f"  {item['dashboard_title']}: {superset.url}{item['url']}")
        print("reading", uri.split("@")[-1], "- Ctrl-C stops it.", flush=True)
        superset.proc.wait()
    except KeyboardInterrupt:
        pass
    finally:
        superset.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("serve", help="set up, start, import the dashboards and serve until Ctrl-C")
    run.add_argument("--port", type=int, default=8088)
    run.add_argument("--password", help="the admin's password (default: made once, kept in data/bi/superset)")
    give = sub.add_parser("import", help="give a running Superset the bundle (waits for it to answer)")
    give.add_argument("--url", required=True)
    give.add_argument("--user", default=ADMIN)
    give.add_argument("--password", required=True)
    give.add_argument("--uri", help="the marts' SQLAlchemy URI as that Superset reaches it (default: from CRM_*)")
    args = parser.parse_args(argv)
    try:
        if args.command == "serve":
            return serve(args.port, args.password)
        uri, extra = (args.uri, _engine_params(args.uri)) if args.uri else database_connection()
        app = Superset(password=args.password, url=args.url, user=args.user)
        app.wait()
        app.import_bundle(bundle(uri, extra))
        print(f"imported {len(app.objects('dashboard'))} dashboards into {app.url}")
        return 0
    except BIError as exc:
        print(f"make bi: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
