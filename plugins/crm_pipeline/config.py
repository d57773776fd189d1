"""Settings read from the environment, with their defaults (all listed in .env.example)."""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

REPO_ROOT = Path(__file__).resolve().parents[2]
DBT_PROJECT_DIR = REPO_ROOT / "dbt_project"


# The pseudonym secret's public values: the demo's default and .env.example's placeholder. Anyone
# can read them here, and with one the customer_key of any customer id is one line of hashlib.
DEMO_KEY_SECRET = "dev-only-not-secret"
PUBLIC_KEY_SECRETS = frozenset({DEMO_KEY_SECRET, "change-me-to-a-long-random-string"})


class InsecureSecretError(RuntimeError):
    """A public pseudonym secret with a warehouse other than the local demo's."""


def check_key_secret(secret: str, warehouse_kind: str) -> None:
    """Refuse a public or empty CRM_KEY_SECRET unless the warehouse is a local DuckDB file (the demo)."""
    if warehouse_kind == "duckdb" and secret:
        return
    if not secret or secret in PUBLIC_KEY_SECRETS:
        raise InsecureSecretError(
            f"CRM_KEY_SECRET is {'empty' if not secret else 'a public value (' + repr(secret) + ')'}: with it, "
            "anyone can turn a customer id into its customer_key. It is accepted only for the local DuckDB demo; "
            f"for a {warehouse_kind} warehouse set CRM_KEY_SECRET to a long random string, for example "
            '`python -c "import secrets; print(secrets.token_hex(32))"`.'
        )


@dataclass(frozen=True)
class Settings:
    landing_dir: Path
    warehouse_url: str
    timezone: str
    key_secret: str
    source_db_url: str | None

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


def settings() -> Settings:
    """Read settings now (not at import), so tests and tasks see their own env."""
    landing = Path(os.environ.get("CRM_LANDING_DIR", "data/landing"))
    if not landing.is_absolute():
        landing = REPO_ROOT / landing
    return Settings(
        landing_dir=landing,
        warehouse_url=os.environ.get("CRM_WAREHOUSE_URL", "duckdb:///data/warehouse.duckdb"),
        timezone=os.environ.get("CRM_TIMEZONE", "Asia/Shanghai"),
        # The pseudonymisation key. The default is for the sample community
        # only; a real deployment sets its own (see .env.example).
        key_secret=os.environ.get("CRM_KEY_SECRET", DEMO_KEY_SECRET),
        source_db_url=os.environ.get("CRM_SHOP_DB_URL") or None,
    )


def mart_names() -> list[str]:
    """The marts BI reads: the dbt models under models/marts, read from the project (the one list)."""
    return sorted(p.stem for p in (DBT_PROJECT_DIR / "models" / "marts").rglob("*.sql"))


def earliest_date() -> dt.date:
    """CRM_EARLIEST_DATE [1970-01-01]: the earliest as-of day a run may have (the DAGs' start_date)."""
    return parse_date(os.environ.get("CRM_EARLIEST_DATE", "1970-01-01"))


def parse_date(value: str | dt.date) -> dt.date:
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(value.strip())
    except ValueError as exc:
        raise ValueError(f"not an ISO date (YYYY-MM-DD): {value!r}") from exc


def as_of_bounds_utc(as_of: dt.date, tz: str) -> tuple[dt.datetime, dt.datetime]:
    """Start and end (exclusive) of the local day `as_of`, as naive UTC datetimes."""
    zone = ZoneInfo(tz)
    start = dt.datetime.combine(as_of, dt.time(), zone)
    end = dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time(), zone)
    utc = dt.UTC
    return start.astimezone(utc).replace(tzinfo=None), end.astimezone(utc).replace(tzinfo=None)


def airflow_env_defaults() -> dict[str, str]:
    """The local Airflow home inside the repo (SQLite metadata, no examples)."""
    home = Path(os.environ.get("AIRFLOW_HOME", REPO_ROOT / "airflow_home"))
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO_ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO_ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
    }


def apply_airflow_env() -> dict[str, str]:
    """Set the defaults above for any not already set; call before importing airflow."""
    applied = {}
    for key, value in airflow_env_defaults().items():
        if key not in os.environ:
            os.environ[key] = value
            applied[key] = value
    return applied
