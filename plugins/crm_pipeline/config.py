"""Settings read from the environment, with their defaults (all listed in .env.example).

Every `CRM_*` variable the pipeline reads is read here, through `settings()` and the parsers below
(one for booleans, one for integers, one for lists), so a typo in a value fails with the variable's
name instead of a bare ValueError somewhere downstream (tests/plugins/test_settings.py checks no
other module reads one). Variables the pipeline only writes for a child process (dbt's
CRM_DBT_TARGET, CRM_DUCKDB_PATH, CRM_PG_* and CRM_DBT_RUN_VARS) are not settings.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass, field
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


class SettingError(ValueError):
    """A CRM_* variable whose value cannot be read: says which, and what it accepts."""


TRUE_VALUES = frozenset({"1", "true", "yes", "on"})
FALSE_VALUES = frozenset({"0", "false", "no", "off"})


def _raw(name: str) -> str | None:
    value = os.environ.get(name)
    return None if value is None or not value.strip() else value.strip()


def env_str(name: str, default: str | None = None) -> str | None:
    """The value, stripped; unset or blank is the default."""
    value = _raw(name)
    return default if value is None else value


def env_bool(name: str, default: bool = False) -> bool:
    """The one boolean parser: 1/true/yes/on, 0/false/no/off (any case); unset or blank is the default."""
    value = _raw(name)
    if value is None:
        return default
    if value.lower() in TRUE_VALUES:
        return True
    if value.lower() in FALSE_VALUES:
        return False
    raise SettingError(f"{name}={value!r} is not a boolean: use 1/0, true/false, yes/no or on/off")


def _env_number(name: str, default, kind, what: str, minimum=None, maximum=None):
    """A number of `kind` (int or float) from the environment, within [minimum, maximum] where given."""
    value = _raw(name)
    if value is None:
        return default
    try:
        number = kind(value)
    except ValueError:
        raise SettingError(f"{name}={value!r} is not {what}") from None
    if minimum is not None and number < minimum:
        raise SettingError(f"{name}={number} is below its minimum, {minimum}")
    if maximum is not None and number > maximum:
        raise SettingError(f"{name}={number} is above its maximum, {maximum}")
    return number


def env_int(name: str, default: int | None, minimum: int | None = None) -> int | None:
    return _env_number(name, default, int, "a whole number", minimum)


def env_float(name: str, default: float, minimum: float, maximum: float) -> float:
    return _env_number(name, default, float, "a number", minimum, maximum)


def env_choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    """One of `choices` (any case); unset or blank is the default."""
    value = env_str(name, default).lower()
    if value not in choices:
        raise SettingError(f"{name}={value!r} is not one of {', '.join(choices)}")
    return value


def env_list(name: str, default: str = "") -> tuple[str, ...]:
    """Comma-separated values, each stripped, blanks dropped."""
    return tuple(v.strip() for v in (env_str(name) or default).split(",") if v.strip())


@dataclass(frozen=True)
class Settings:
    """Every CRM_* setting, read when `settings()` is called (see .env.example for each one's meaning)."""

    landing_dir: Path
    warehouse_url: str
    timezone: str
    key_secret: str = field(repr=False)  # secrets never reach a log line through repr()
    source_db_url: str | None = field(repr=False)
    earliest_date: dt.date
    # Loading
    extra_columns: tuple[str, ...]
    load_fast: bool
    load_group_rows: int
    sql_lookback_minutes: int
    sql_soft_delete_columns: tuple[str, ...]
    sql_reconcile_days: int
    chat_operator_id: str
    forum_api_url: str | None
    forum_api_key: str = field(repr=False)
    forum_api_username: str
    # Scheduling and retries
    extract_schedule: str
    task_retries: int
    retry_delay_seconds: int
    publish_sources: tuple[str, ...]
    publish_cutoff: dt.time
    publish_poke_seconds: int
    # Transform
    dbt_full_refresh: bool
    dbt_artifacts_dir: Path
    dbt_log_level: str
    dbt_parse_cache: Path | None
    duckdb_memory_limit: str | None
    pg_work_mem: str | None
    scoring_workers: int | None
    text_cues: Path | None
    clv_annual_discount: float
    # Quality reports, BI access
    reports_dir: Path
    bi_role: str | None
    bi_duckdb_path: Path | None
    bi_password: str | None = field(repr=False)
    # Alerts: channel -> (webhook url, signing secret)
    alert_webhooks: dict = field(repr=False)
    alert_smtp_host: str | None
    alert_smtp_port: int
    alert_smtp_user: str | None
    alert_smtp_password: str | None = field(repr=False)
    alert_smtp_starttls: bool
    alert_email_from: str
    alert_email_to: tuple[str, ...]
    business_alert_digest: bool

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


ALERT_CHANNELS = ("webhook", "slack", "wecom", "dingtalk", "feishu")  # CRM_ALERT_<CHANNEL>_WEBHOOK_URL
SIGNED_ALERT_CHANNELS = ("dingtalk", "feishu")  # and CRM_ALERT_<CHANNEL>_SECRET


def _path(name: str, default: Path | None) -> Path | None:
    value = env_str(name)
    if value is None:
        return default
    path = Path(value)
    return path if path.is_absolute() else REPO_ROOT / path


def _time(name: str, default: str) -> dt.time:
    value = env_str(name, default)
    try:
        hh, mm = (int(x) for x in value.split(":"))
        return dt.time(hh, mm)
    except ValueError:
        raise SettingError(f"{name}={value!r} is not a local time HH:MM") from None


def _alert_url_name(channel: str) -> str:
    return "CRM_ALERT_WEBHOOK_URL" if channel == "webhook" else f"CRM_ALERT_{channel.upper()}_WEBHOOK_URL"


def settings() -> Settings:
    """Read settings now (not at import), so tests and tasks see their own env."""
    earliest = env_str("CRM_EARLIEST_DATE", "1970-01-01")
    try:
        earliest_day = parse_date(earliest)
    except ValueError as exc:
        raise SettingError(f"CRM_EARLIEST_DATE: {exc}") from None
    return Settings(
        landing_dir=_path("CRM_LANDING_DIR", REPO_ROOT / "data" / "landing"),
        warehouse_url=env_str("CRM_WAREHOUSE_URL", "duckdb:///data/warehouse.duckdb"),
        timezone=env_str("CRM_TIMEZONE", "Asia/Shanghai"),
        # The pseudonymisation key. The default is for the sample community
        # only; a real deployment sets its own (see .env.example).
        key_secret=os.environ.get("CRM_KEY_SECRET", DEMO_KEY_SECRET),
        source_db_url=env_str("CRM_SHOP_DB_URL"),
        earliest_date=earliest_day,
        extra_columns=env_list("CRM_EXTRA_COLUMNS"),
        load_fast=env_bool("CRM_LOAD_FAST", True),
        load_group_rows=env_int("CRM_LOAD_GROUP_ROWS", 250_000, minimum=1),
        sql_lookback_minutes=env_int("CRM_SQL_LOOKBACK_MINUTES", 60, minimum=0),
        sql_soft_delete_columns=env_list("CRM_SQL_SOFT_DELETE_COLUMNS", "deleted_at,is_deleted,deleted"),
        sql_reconcile_days=env_int("CRM_SQL_RECONCILE_DAYS", 7, minimum=0),
        chat_operator_id=env_str("CRM_CHAT_OPERATOR_ID", "self"),
        forum_api_url=env_str("CRM_FORUM_API_URL"),
        forum_api_key=env_str("CRM_FORUM_API_KEY", ""),
        forum_api_username=env_str("CRM_FORUM_API_USERNAME", "system"),
        extract_schedule=env_str("CRM_EXTRACT_SCHEDULE", "daily").lower(),
        task_retries=env_int("CRM_TASK_RETRIES", 2, minimum=0),
        retry_delay_seconds=env_int("CRM_RETRY_DELAY_SECONDS", 300, minimum=0),
        publish_sources=env_list("CRM_PUBLISH_SOURCES"),
        publish_cutoff=_time("CRM_PUBLISH_CUTOFF", "06:00"),
        publish_poke_seconds=env_int("CRM_PUBLISH_POKE_SECONDS", 300, minimum=1),
        dbt_full_refresh=env_bool("CRM_DBT_FULL_REFRESH"),
        dbt_artifacts_dir=_path("CRM_DBT_ARTIFACTS_DIR", REPO_ROOT / "data" / "dbt"),
        dbt_log_level=env_choice("CRM_DBT_LOG_LEVEL", "info", ("debug", "info", "warn", "error", "none")),
        dbt_parse_cache=_path("CRM_DBT_PARSE_CACHE", None),
        duckdb_memory_limit=env_str("CRM_DUCKDB_MEMORY_LIMIT"),
        pg_work_mem=env_str("CRM_PG_WORK_MEM"),
        scoring_workers=env_int("CRM_SCORING_WORKERS", None, minimum=1),
        text_cues=_path("CRM_TEXT_CUES", None),
        clv_annual_discount=env_float("CRM_CLV_ANNUAL_DISCOUNT", 0.10, 0.0, 1.0),
        reports_dir=_path("CRM_REPORTS_DIR", REPO_ROOT / "data" / "reports"),
        bi_role=env_str("CRM_BI_ROLE"),
        bi_duckdb_path=_path("CRM_BI_DUCKDB_PATH", None),
        bi_password=os.environ.get("CRM_BI_PASSWORD"),
        alert_webhooks={
            c: (
                env_str(_alert_url_name(c)),
                env_str(f"CRM_ALERT_{c.upper()}_SECRET") if c in SIGNED_ALERT_CHANNELS else None,
            )
            for c in ALERT_CHANNELS
        },
        alert_smtp_host=env_str("CRM_ALERT_SMTP_HOST"),
        alert_smtp_port=env_int("CRM_ALERT_SMTP_PORT", 25, minimum=1),
        alert_smtp_user=env_str("CRM_ALERT_SMTP_USER"),
        alert_smtp_password=os.environ.get("CRM_ALERT_SMTP_PASSWORD") or None,
        alert_smtp_starttls=env_bool("CRM_ALERT_SMTP_STARTTLS"),
        alert_email_from=env_str("CRM_ALERT_EMAIL_FROM", "crm-pipeline@localhost"),
        alert_email_to=env_list("CRM_ALERT_EMAIL_TO"),
        business_alert_digest=env_bool("CRM_BUSINESS_ALERT_DIGEST"),
    )


def mart_names() -> list[str]:
    """The marts BI reads: the dbt models under models/marts, read from the project (the one list)."""
    return sorted(p.stem for p in (DBT_PROJECT_DIR / "models" / "marts").rglob("*.sql"))


def earliest_date() -> dt.date:
    """CRM_EARLIEST_DATE [1970-01-01]: the earliest as-of day a run may have (the DAGs' start_date)."""
    return settings().earliest_date


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
