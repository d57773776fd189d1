"""Alert channels, each in its documented message format.

Configured by environment variables (listed in `.env.example`) or, when a
variable is unset, by an Airflow connection of the same role
(`crm_alert_webhook`, `crm_alert_slack`, `crm_alert_wecom`,
`crm_alert_dingtalk`, `crm_alert_feishu`: the URL in `host` — or the whole
URL in `extra.url` —, a signing secret in `password`; `crm_alert_smtp`: host,
port, login, password, extra `{"from": ..., "to": ..., "starttls": true}`).

- generic webhook: one JSON POST per alert (the alert's fields).
- Slack incoming webhook: `{"text": ...}` (mrkdwn).
- WeCom group bot: `{"msgtype": "markdown", "markdown": {"content": ...}}`.
- DingTalk robot: markdown message; with a secret, the URL gets `timestamp`
  and `sign` = urlencode(base64(HmacSHA256(key=secret, msg=f"{ts}\\n{secret}"))).
- Feishu/Lark bot: `{"msg_type": "text", "content": {"text": ...}}`; with a
  secret, `timestamp` and `sign` = base64(HmacSHA256(key=f"{ts}\\n{secret}", msg="")).
- email over SMTP (STARTTLS when asked).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import smtplib
import time
import urllib.parse
from dataclasses import dataclass
from email.message import EmailMessage

import requests

from crm_pipeline.config import settings

log = logging.getLogger(__name__)
TIMEOUT = 10


@dataclass
class Message:
    """What every channel renders: no row values, no text, no contact details."""

    title: str
    status: str  # firing / resolved
    severity: str
    fields: dict  # dag_id, run_id, run_date, check, relation, observed, expected, counts, report...

    def lines(self) -> list[str]:
        return [f"{k}: {v}" for k, v in self.fields.items() if v not in (None, "", {})]

    def text(self) -> str:
        return "\n".join([f"[{self.status.upper()}][{self.severity}] {self.title}", *self.lines()])

    def markdown(self) -> str:
        head = f"**[{self.status.upper()}][{self.severity}] {self.title}**"
        return "\n".join([head, *(f"- {line}" for line in self.lines())])


class Channel:
    name = "channel"

    def send(self, msg: Message) -> None:
        raise NotImplementedError

    def _post(self, url: str, payload: dict) -> None:
        resp = requests.post(url, json=payload, timeout=TIMEOUT)
        resp.raise_for_status()
        # The bots answer 200 with an error code in the body.
        try:
            body = resp.json()
        except ValueError:
            return
        code = body.get("errcode", body.get("code", body.get("StatusCode", 0))) if isinstance(body, dict) else 0
        if code not in (0, None):
            raise RuntimeError(f"{self.name} rejected the alert: {json.dumps(body)[:200]}")


class WebhookChannel(Channel):
    name = "webhook"

    def __init__(self, url: str):
        self.url = url

    def send(self, msg: Message) -> None:
        self._post(self.url, {"title": msg.title, "status": msg.status, "severity": msg.severity, **msg.fields})


class SlackChannel(WebhookChannel):
    name = "slack"

    def send(self, msg: Message) -> None:
        text = msg.markdown().replace("**", "*")
        self._post(self.url, {"text": text})


class WeComChannel(WebhookChannel):
    name = "wecom"

    def send(self, msg: Message) -> None:
        self._post(self.url, {"msgtype": "markdown", "markdown": {"content": msg.markdown()}})


class DingTalkChannel(Channel):
    name = "dingtalk"

    def __init__(self, url: str, secret: str | None = None):
        self.url, self.secret = url, secret

    @staticmethod
    def sign(secret: str, timestamp_ms: int) -> str:
        digest = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256).digest()
        return urllib.parse.quote_plus(base64.b64encode(digest).decode())

    def send(self, msg: Message) -> None:
        url = self.url
        if self.secret:
            ts = int(time.time() * 1000)
            url += ("&" if "?" in url else "?") + f"timestamp={ts}&sign={self.sign(self.secret, ts)}"
        self._post(url, {"msgtype": "markdown", "markdown": {"title": msg.title, "text": msg.markdown()}})


class FeishuChannel(Channel):
    name = "feishu"

    def __init__(self, url: str, secret: str | None = None):
        self.url, self.secret = url, secret

    @staticmethod
    def sign(secret: str, timestamp_s: int) -> str:
        digest = hmac.new(f"{timestamp_s}\n{secret}".encode(), b"", hashlib.sha256).digest()
        return base64.b64encode(digest).decode()

    def send(self, msg: Message) -> None:
        payload: dict = {"msg_type": "text", "content": {"text": msg.text()}}
        if self.secret:
            ts = int(time.time())
            payload = {"timestamp": str(ts), "sign": self.sign(self.secret, ts), **payload}
        self._post(self.url, payload)


class EmailChannel(Channel):
    name = "email"

    def __init__(self, host: str, port: int, sender: str, to: list[str], user=None, password=None, starttls=False):
        self.host, self.port, self.sender, self.to = host, port, sender, to
        self.user, self.password, self.starttls = user, password, starttls

    def send(self, msg: Message) -> None:
        mail = EmailMessage()
        mail["Subject"] = f"[{msg.status.upper()}][{msg.severity}] {msg.title}"
        mail["From"] = self.sender
        mail["To"] = ", ".join(self.to)
        mail.set_content(msg.text())
        with smtplib.SMTP(self.host, self.port, timeout=TIMEOUT) as smtp:
            if self.starttls:
                smtp.starttls()
            if self.user:
                smtp.login(self.user, self.password or "")
            smtp.send_message(mail)


def _connection(conn_id: str):
    """An Airflow connection when one exists (outside Airflow, or without one: None)."""
    try:
        from airflow.sdk import BaseHook

        return BaseHook.get_connection(conn_id)
    except Exception:
        return None


def _url_and_secret(channel: str, conn_id: str) -> tuple[str | None, str | None]:
    url, secret = settings().alert_webhooks[channel]
    if url:
        return url, secret
    conn = _connection(conn_id)
    if conn is None:
        return None, None
    extra = conn.extra_dejson or {}
    return extra.get("url") or conn.host, conn.password or secret


def configured() -> list[Channel]:
    """Every channel the environment (or an Airflow connection) configures."""
    out: list[Channel] = []
    cfg = settings()
    for channel, cls, conn_id in (
        ("webhook", WebhookChannel, "crm_alert_webhook"),
        ("slack", SlackChannel, "crm_alert_slack"),
        ("wecom", WeComChannel, "crm_alert_wecom"),
    ):
        url, _ = _url_and_secret(channel, conn_id)
        if url:
            out.append(cls(url))
    for channel, cls, conn_id in (
        ("dingtalk", DingTalkChannel, "crm_alert_dingtalk"),
        ("feishu", FeishuChannel, "crm_alert_feishu"),
    ):
        url, secret = _url_and_secret(channel, conn_id)
        if url:
            out.append(cls(url, secret))
    if cfg.alert_smtp_host:
        out.append(
            EmailChannel(
                cfg.alert_smtp_host,
                cfg.alert_smtp_port,
                cfg.alert_email_from,
                list(cfg.alert_email_to),
                cfg.alert_smtp_user,
                cfg.alert_smtp_password,
                cfg.alert_smtp_starttls,
            )
        )
    else:
        conn = _connection("crm_alert_smtp")
        if conn is not None and conn.host:
            extra = conn.extra_dejson or {}
            out.append(
                EmailChannel(
                    conn.host,
                    conn.port or 25,
                    extra.get("from", "crm-pipeline@localhost"),
                    [a.strip() for a in str(extra.get("to", "")).split(",") if a.strip()],
                    conn.login,
                    conn.password,
                    bool(extra.get("starttls")),
                )
            )
    return out
