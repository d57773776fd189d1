"""Alert channels against real local receivers, one alert per problem, and no PII anywhere it goes."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import urllib.parse

import pandas as pd
import pytest

from alert_receivers import HttpReceiver, SmtpReceiver
from crm_pipeline.alerts import check_problem, reconcile, task_problem
from crm_pipeline.alerts.channels import (
    DingTalkChannel,
    EmailChannel,
    FeishuChannel,
    SlackChannel,
    WebhookChannel,
    WeComChannel,
    configured,
)
from crm_pipeline.load.loader import ensure_tables
from crm_pipeline.load.warehouse import Warehouse
from crm_pipeline.quality.checks import Target, store, validate

RUN = dt.date(2026, 11, 22)
PHONE, EMAIL, UNIONID = "13812345678", "li.lei@example.com", "oUn0123456789abcdef0"


@pytest.fixture
def http():
    r = HttpReceiver()
    yield r
    r.close()


@pytest.fixture
def smtp():
    r = SmtpReceiver()
    yield r
    r.close()


@pytest.fixture
def failed_pii_check(tmp_path, monkeypatch):
    """A real GX failure on a mart whose rows hold a phone, an email and a unionid."""
    monkeypatch.setenv("CRM_REPORTS_DIR", str(tmp_path / "reports"))
    frame = pd.DataFrame(
        {
            "customer_key": ["k1", "k2", "k3"],
            "province": [f"广东 {PHONE}", "浙江", EMAIL],
            "city": ["深圳", UNIONID, "杭州"],
            "community_tier": ["member", "customer", "partner"],
        }
    )
    validation = validate([Target("marts.dim_customers", dataframe=frame, parameters={"min_rows": 0})], RUN)
    failed = [r for r in validation.results if not r.success]
    assert {r.expectation for r in failed} == {"expect_column_values_to_not_match_regex_list"}
    assert all(r.severity == "critical" for r in failed)
    return validation


def _all_channels(http: HttpReceiver, smtp: SmtpReceiver):
    return [
        WebhookChannel(http.url + "/hook"),
        SlackChannel(http.url + "/slack"),
        WeComChannel(http.url + "/cgi-bin/webhook/send?key=k"),
        DingTalkChannel(http.url + "/robot/send?access_token=t", secret="SEC-ding"),
        FeishuChannel(http.url + "/open-apis/bot/v2/hook/x", secret="SEC-feishu"),
        EmailChannel("127.0.0.1", smtp.port, "crm@localhost", ["oncall@localhost"]),
    ]


def test_every_channel_gets_its_format_and_no_pii(warehouse_url, http, smtp, failed_pii_check, tmp_path):
    validation = failed_pii_check
    result = next(r for r in validation.results if not r.success)
    problem = check_problem(result, "crm_transform", "manual__x", RUN, validation.report, None)
    with Warehouse.from_url(warehouse_url) as wh:
        ensure_tables(wh, [])
        store(wh, validation, RUN, "crm_transform", "manual__x")
        outcome = reconcile(wh, "check:marts.", [problem], _all_channels(http, smtp))
        stored = json.dumps(wh.fetchall("select * from audit.check_results"), default=str)
    assert outcome.opened == [problem.fingerprint] and not outcome.delivery_errors

    by_path = {r["path"].split("?")[0]: r for r in http.requests}
    generic = by_path["/hook"]["body"]
    assert generic["status"] == "firing" and generic["severity"] == "critical"
    for key in ("dag_id", "run_id", "run_date", "check", "relation", "observed", "expected", "counts", "report"):
        assert key in generic, key
    assert generic["counts"]["rows"] == 3 and generic["counts"]["unexpected"] >= 1
    assert generic["report"].endswith("index.html")

    assert set(by_path["/slack"]["body"]) == {"text"}
    wecom = by_path["/cgi-bin/webhook/send"]["body"]
    assert wecom["msgtype"] == "markdown" and "content" in wecom["markdown"]

    # DingTalk: timestamp + sign in the URL, checked by recomputing the signature here.
    ding = by_path["/robot/send"]
    q = urllib.parse.parse_qs(urllib.parse.urlparse(ding["path"]).query)
    ts = q["timestamp"][0]
    digest = hmac.new(b"SEC-ding", f"{ts}\nSEC-ding".encode(), hashlib.sha256).digest()
    assert q["sign"][0] == base64.b64encode(digest).decode()
    assert ding["body"]["msgtype"] == "markdown" and ding["body"]["markdown"]["title"]

    feishu = by_path["/open-apis/bot/v2/hook/x"]["body"]
    expected_sign = base64.b64encode(
        hmac.new(f"{feishu['timestamp']}\nSEC-feishu".encode(), b"", hashlib.sha256).digest()
    ).decode()
    assert feishu["sign"] == expected_sign and feishu["msg_type"] == "text" and feishu["content"]["text"]

    assert len(smtp.messages) == 1
    mail = smtp.messages[0]
    assert mail["to"] == ["oncall@localhost"] and "[FIRING][critical]" in mail["subject"]

    # Nothing the rows held reaches any channel, the audit table or the report.
    sent = json.dumps([r["body"] for r in http.requests], ensure_ascii=False) + json.dumps(
        smtp.messages, ensure_ascii=False
    )
    report_html = "".join(p.read_text(encoding="utf-8") for p in (tmp_path / "reports").rglob("*.html"))
    for secret in (PHONE, EMAIL, UNIONID):
        assert secret not in sent
        assert secret not in stored
        assert secret not in report_html
    pages = list((tmp_path / "reports").rglob("validations/**/*.html"))
    assert pages and "dim_customers" in report_html  # the report is real, and names the suite


def test_one_alert_per_problem_then_resolved(warehouse_url, http):
    hook = [WebhookChannel(http.url + "/hook")]
    problem = task_problem("crm_extract_shop", "load_files", "run1", "2026-11-22", "OperationalError: timeout")
    with Warehouse.from_url(warehouse_url) as wh:
        ensure_tables(wh, [])
        assert reconcile(wh, "task:crm_extract_shop.", [problem], hook).opened == [problem.fingerprint]
        # Retries and the next day's run while the problem persists: silence.
        for _ in range(3):
            assert reconcile(wh, "task:crm_extract_shop.", [problem], hook).repeated == [problem.fingerprint]
        assert len(http.requests) == 1
        # Fixed: one "resolved", then nothing more.
        assert reconcile(wh, "task:crm_extract_shop.", [], hook).resolved == [problem.fingerprint]
        assert reconcile(wh, "task:crm_extract_shop.", [], hook).resolved == []
        # A later recurrence is a new problem.
        assert reconcile(wh, "task:crm_extract_shop.", [problem], hook).opened == [problem.fingerprint]
        rows = wh.fetchall("select status, times_seen from audit.alerts order by opened_at, status")
    statuses = [r["body"]["status"] for r in http.requests]
    assert statuses == ["firing", "resolved", "firing"]
    assert sorted(rows) == [("open", 1), ("resolved", 4)]


def test_an_unreachable_channel_does_not_hide_the_problem(warehouse_url, http):
    dead = WebhookChannel("http://127.0.0.1:9/nowhere")  # discard port: connection refused
    problem = task_problem("crm_transform", "dbt_build", "run1", "2026-11-22", "DbtError")
    with Warehouse.from_url(warehouse_url) as wh:
        ensure_tables(wh, [])
        outcome = reconcile(wh, "task:", [problem], [dead, WebhookChannel(http.url + "/ok")])
        channels = wh.fetchone("select channels from audit.alerts")[0]
    assert outcome.opened and outcome.delivery_errors and outcome.delivery_errors[0].startswith("webhook")
    assert len(http.requests) == 1 and channels == "webhook"


def test_channels_come_from_the_environment(monkeypatch):
    for key in ("WEBHOOK", "SLACK_WEBHOOK", "WECOM_WEBHOOK", "DINGTALK_WEBHOOK", "FEISHU_WEBHOOK"):
        monkeypatch.setenv(f"CRM_ALERT_{key}_URL", f"http://127.0.0.1:1/{key.lower()}")
    monkeypatch.setenv("CRM_ALERT_DINGTALK_SECRET", "s1")
    monkeypatch.setenv("CRM_ALERT_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("CRM_ALERT_EMAIL_TO", "a@localhost, b@localhost")
    got = {type(c).__name__: c for c in configured()}
    assert set(got) == {
        "WebhookChannel",
        "SlackChannel",
        "WeComChannel",
        "DingTalkChannel",
        "FeishuChannel",
        "EmailChannel",
    }
    assert got["DingTalkChannel"].secret == "s1" and got["FeishuChannel"].secret is None
    assert got["EmailChannel"].to == ["a@localhost", "b@localhost"]


def test_channels_are_looked_up_only_when_a_message_goes_out(warehouse_url, monkeypatch):
    """Every task's success reconciles its alert scope; a lookup asks Airflow for five connections."""
    import crm_pipeline.alerts as alerts

    lookups = []
    monkeypatch.setattr(alerts, "configured", lambda: lookups.append(1) or [])
    first = task_problem("crm_extract_shop", "load_files", "r1", "2026-11-22", "boom")
    second = task_problem("crm_extract_shop", "check_raw", "r1", "2026-11-22", "boom")
    with Warehouse.from_url(warehouse_url) as wh:
        ensure_tables(wh, [])
        reconcile(wh, "task:", [])  # nothing open, nothing new: nothing to send
        assert lookups == []
        reconcile(wh, "task:", [first, second])  # two new alerts: one lookup
        assert len(lookups) == 1
        reconcile(wh, "task:", [first, second])  # both known: quiet
        assert len(lookups) == 1
        outcome = reconcile(wh, "task:", [first])  # one resolved
    assert len(lookups) == 2 and outcome.resolved == [second.fingerprint]
