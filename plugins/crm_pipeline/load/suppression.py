"""Erased people stay out: the identifiers of everyone erased on request, checked against every record loaded.

The erasure itself (crm_pipeline.privacy) writes the hashes; the loader and
the vectorised load read them here. Identifiers are kept only as hashes,
keyed with a random salt made once for the warehouse (private.erasure_salt),
apart from CRM_KEY_SECRET, so rotating that secret lets nobody back.
"""

from __future__ import annotations

import hashlib
import secrets

from crm_pipeline.load.warehouse import Warehouse

ERASED_REASON = "erased on request: this person asked to be deleted (audit.deletions)"

# Per raw entity: (identifier kind, column) pairs a suppressed record is recognised by.
SUPPRESSED_BY = {
    "customers": [("customer_id", "customer_id"), ("phone", "phone"), ("email", "email"),
                  ("wechat_unionid", "wechat_unionid"), ("member_id", "member_id")],
    "orders": [("customer_id", "customer_id"), ("order_id", "order_id")],
    "order_items": [("order_id", "order_id")],
    "refunds": [("order_id", "order_id")],
    "reviews": [("customer_id", "customer_id"), ("order_id", "order_id")],
    "forum_users": [("forum", "user_id"), ("phone", "phone"), ("email", "email"),
                    ("wechat_unionid", "wechat_unionid"), ("member_id", "member_id")],
    "forum_posts": [("forum", "user_id")],
    "chat_messages": [("chat", "sender_id"), ("wechat_unionid", "sender_unionid")],
    "chat_members": [("chat", "sender_id"), ("phone", "phone"), ("wechat_unionid", "wechat_unionid"),
                     ("member_id", "member_id")],
    "events": [("attendee", "attendee_ref")],
}  # fmt: skip


# The phone rule of the dbt macro normalise_phone, character for character: full-width digits (what
# Chinese input methods type) fold to ASCII, every other character goes, mathematical or other
# scripts' digits included. tests/plugins/test_phone_rule.py runs both on the same cases.
_FULL_WIDTH_DIGITS = str.maketrans("０１２３４５６７８９", "0123456789")


def normalise_phone(value: str | None) -> str | None:
    """11 mainland digits, as the dbt macro normalise_phone computes them (full-width folded, +86 dropped)."""
    if not value:
        return None
    digits = "".join(c for c in str(value).translate(_FULL_WIDTH_DIGITS) if "0" <= c <= "9")
    if len(digits) == 13 and digits.startswith("861"):
        return digits[2:]
    return digits if len(digits) == 11 and digits.startswith("1") else None


def normalise(kind: str, value) -> str | None:
    """An identifier in the form the suppression list stores (so `+86 138…` and `138-…` compare equal)."""
    if value is None or str(value).strip() == "":
        return None
    value = str(value).strip()
    if kind == "phone":
        return normalise_phone(value)
    if kind == "attendee":  # a phone, member id or customer id
        return normalise_phone(value) or value.upper()
    if kind == "member_id":
        return value.upper()
    if kind == "email":
        return value.lower()
    return value


def identifier_hash(secret: str, kind: str, value: str) -> str:
    return hashlib.sha256(f"{secret}:{kind}:{value}".encode()).hexdigest()


def erasure_salt(wh: Warehouse) -> str:
    """The key of the erased-identifier hashes: random, made once, kept apart from CRM_KEY_SECRET.

    So rotating the pseudonym secret (which changes every customer_key) does
    not let an erased person back in.
    """
    row = wh.fetchone("select salt from private.erasure_salt") if wh.table_exists("private", "erasure_salt") else None
    return row[0] if row else ""


def ensure_tables(wh: Warehouse) -> None:
    wh.create_table("private.erased_identifiers", [("kind", "text"), ("value_hash", "text"), ("request_id", "text")])
    wh.create_table("private.erasure_salt", [("salt", "text")])
    if not erasure_salt(wh):
        wh.execute("insert into private.erasure_salt values (%s)", (secrets.token_hex(32),))


class Suppression:
    """The erased identifiers, checked by the loader against every record it loads."""

    def __init__(self, wh: Warehouse):
        self.hashes: set[str] = set()
        if wh.table_exists("private", "erased_identifiers"):
            self.hashes = {h for (h,) in wh.fetchall("select value_hash from private.erased_identifiers")}
        self.salt = erasure_salt(wh) if self.hashes else ""

    def __bool__(self) -> bool:
        return bool(self.hashes)

    def erased(self, entity: str, record: dict) -> bool:
        for kind, column in SUPPRESSED_BY.get(entity, []):
            value = normalise(kind, record.get(column))
            if value is None:
                continue
            kinds = ("phone", "member_id", "customer_id") if kind == "attendee" else (kind,)
            if any(identifier_hash(self.salt, k, value) in self.hashes for k in kinds):
                return True
        return False
