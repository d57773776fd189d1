"""Real public datasets (../shared/data/real, see its README) turned into landing files, and what the marts must say.

Each converter writes the contract's landing files from a real dataset, the
way a brand's export script would, and returns the independent expectations
computed from the source files with the standard library only (no code
shared with crm_pipeline). The files are read where they lie; nothing is
copied into the repository.

- Olist (a Brazilian marketplace, a 4,000-order sample): customers by
  customer_unique_id (Olist's customer_id is per order), orders with their
  status mapped onto the contract's, the paid total as total_amount, items,
  reviews with their Portuguese comments. Times are São Paulo local.
- Stack Exchange Posts.xml (two beta sites): questions are topics, answers
  replies to them. A post without OwnerUserId has no author: its user_id is
  left empty, so the loader quarantines it, as it should.
- Ubuntu IRC (annotated reply-to links): one group per log file, nick as
  sender, `=== ` lines as system messages, the link `a b` as b's reply to a
  (the latest a when b has several).
"""

from __future__ import annotations

import collections
import csv
import html
import re
import xml.etree.ElementTree as ET
from pathlib import Path

REAL = Path(__file__).resolve().parents[3] / "shared" / "data" / "real"
OLIST = REAL / "shop" / "olist" / "sample_4000_orders"
SE_SITES = {"coffee": REAL / "forum" / "coffee_se_Posts.xml", "math": REAL / "forum" / "matheducators_se_Posts.xml"}
IRC = REAL / "chat" / "irc_ubuntu_train_sample"
OLIST_STATUS = {
    "delivered": "completed",
    "shipped": "shipped",
    "invoiced": "paid",
    "processing": "paid",
    "approved": "paid",
    "created": "created",
    "canceled": "cancelled",
    "unavailable": "cancelled",
}


def available() -> bool:
    return OLIST.is_dir() and all(p.exists() for p in SE_SITES.values()) and IRC.is_dir()


def _write(landing: Path, entity: str, name: str, rows: list[dict]) -> None:
    folder = landing / entity
    folder.mkdir(parents=True, exist_ok=True)
    fields = list(dict.fromkeys(k for r in rows for k in r))
    with (folder / f"{name}.csv").open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields, restval="")
        writer.writeheader()
        writer.writerows(rows)


def _read(name: str) -> list[dict]:
    with (OLIST / name).open(encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))


def olist_landing(landing: Path) -> dict:
    """Olist's orders, items, customers and reviews as landing files; the counts written."""
    customers = {c["customer_id"]: c for c in _read("olist_customers_dataset.csv")}
    paid = collections.defaultdict(float)
    for p in _read("olist_order_payments_dataset.csv"):
        paid[p["order_id"]] += float(p["payment_value"])
    orders, people = [], {}
    for o in _read("olist_orders_dataset.csv"):
        c = customers[o["customer_id"]]
        person = c["customer_unique_id"]
        people.setdefault(person, {"customer_id": person, "registered_at": o["order_purchase_timestamp"],
                                   "province": c["customer_state"], "city": c["customer_city"]})  # fmt: skip
        people[person]["registered_at"] = min(people[person]["registered_at"], o["order_purchase_timestamp"])
        orders.append(
            {
                "order_id": o["order_id"],
                "customer_id": person,
                "ordered_at": o["order_purchase_timestamp"],
                "status": OLIST_STATUS[o["order_status"]],
                # An order with no payment row has no paid total: the loader must say so, not guess.
                "total_amount": f"{paid[o['order_id']]:.2f}" if o["order_id"] in paid else "",
                "currency": "BRL",
                "channel": "olist",
            }
        )
    items = [
        {"order_id": i["order_id"], "line_no": i["order_item_id"], "product_id": i["product_id"], "quantity": "1",
         "unit_price": i["price"]}
        for i in _read("olist_order_items_dataset.csv")
    ]  # fmt: skip
    person_of = {o["order_id"]: o["customer_id"] for o in orders}
    reviews = [
        {"review_id": r["review_id"], "order_id": r["order_id"], "customer_id": person_of.get(r["order_id"], ""),
         "rating": r["review_score"], "created_at": r["review_creation_date"],
         "content": " ".join(t for t in (r["review_comment_title"], r["review_comment_message"]) if t.strip())}
        for r in _read("olist_order_reviews_dataset.csv")
    ]  # fmt: skip
    _write(landing, "customers", "olist_customers", list(people.values()))
    _write(landing, "orders", "olist_orders", orders)
    _write(landing, "order_items", "olist_items", items)
    _write(landing, "reviews", "olist_reviews", reviews)
    return {"customers": len(people), "orders": len(orders), "order_items": len(items), "reviews": len(reviews),
            "orders_without_payment": sum(1 for o in orders if not o["total_amount"])}  # fmt: skip


def _se_rows(path: Path) -> list[dict]:
    return [row.attrib for row in ET.parse(path).getroot().iter("row")]


def stackexchange_landing(landing: Path) -> dict:
    """Both sites' questions and answers as forum files; per question the replies the marts must count."""
    users, posts, expected = {}, [], {}
    for site, path in SE_SITES.items():
        rows = _se_rows(path)
        for r in rows:
            if r["PostTypeId"] not in ("1", "2"):
                continue  # tag wikis and the site description are not community posts
            user = f"{site}:{r['OwnerUserId']}" if r.get("OwnerUserId") else ""
            if user:  # no Users.xml: a user joined with their first post
                first = min(users.get(user, {}).get("first", r["CreationDate"]), r["CreationDate"])
                users[user] = {"first": first, "username": f"{site}-user-{r['OwnerUserId']}"}
            question = r["Id"] if r["PostTypeId"] == "1" else r["ParentId"]
            posts.append(
                {
                    "post_id": f"{site}:{r['Id']}",
                    "topic_id": f"{site}:{question}",
                    "user_id": user,
                    "created_at": r["CreationDate"] + "Z",  # the dumps' times are UTC
                    "content": html.unescape(re.sub(r"<[^>]+>", " ", r.get("Body", ""))).strip() or "(empty)",
                    "title": r.get("Title", ""),
                    "reply_to_post_id": f"{site}:{r['ParentId']}" if r["PostTypeId"] == "2" else "",
                }
            )
            if r["PostTypeId"] == "1":
                expected[f"{site}:{r['Id']}"] = {
                    "answer_count": int(r.get("AnswerCount", "0")),
                    "asker": user,
                    "ownerless_answers": 0,
                    "asker_missing": not user,
                }
        for r in rows:  # the dump's AnswerCount counts answers whose author is gone; the loader cannot keep them
            if r["PostTypeId"] == "2" and not r.get("OwnerUserId"):
                expected[f"{site}:{r['ParentId']}"]["ownerless_answers"] += 1
    user_rows = [{"user_id": u, "joined_at": v["first"] + "Z", "username": v["username"]} for u, v in users.items()]
    _write(landing, "forum_users", "se_users", user_rows)
    _write(landing, "forum_posts", "se_posts", posts)
    return {"users": len(users), "posts": len(posts), "questions": expected,
            "ownerless": sum(1 for p in posts if not p["user_id"])}  # fmt: skip


IRC_LINE = re.compile(r"^\[(\d{2}):(\d{2})\] (?:<([^>]+)> ?(.*)|\s*\* (\S+) ?(.*))$")


def irc_landing(landing: Path) -> dict:
    """The IRC logs as chat messages; per sender the text messages and the replies received."""
    messages, sent, received = [], collections.Counter(), collections.Counter()
    for raw in sorted(IRC.glob("*.raw.txt")):
        stem = raw.name.removesuffix(".raw.txt")
        day = stem[:10]
        parents = collections.defaultdict(list)
        for line in (IRC / f"{stem}.annotation.txt").read_text(encoding="utf-8").splitlines():
            a, b, _ = line.split()
            if a != b:
                parents[int(b)].append(int(a))
        lines = raw.read_text(encoding="utf-8").split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        senders, last = {}, f"{day}T00:00:00Z"
        rows = []
        for i, text in enumerate(lines):
            m = IRC_LINE.match(text)
            if m:
                last = f"{day}T{m[1]}:{m[2]}:00Z"
                sender, content = (m[3], m[4]) if m[3] is not None else (m[5], f"* {m[5]} {m[6]}".strip())
                kind = "text"
            else:  # '=== x is now known as y', joins and quits: no sender, no time
                sender, content, kind = "system", text, "system"
            senders[i] = sender
            rows.append(
                {"msg_id": f"{stem}:{i}", "group_id": stem, "group_name": f"#ubuntu {stem}", "sender_id": sender,
                 "sent_at": last, "msg_type": kind, "content": content if content.strip() else "(empty)",
                 "reply_to_msg_id": f"{stem}:{max(parents[i])}" if parents.get(i) else ""}
            )  # fmt: skip
            if kind == "text":
                sent[sender] += 1
        for i, row in enumerate(rows):
            if row["msg_type"] == "text" and parents.get(i):
                received[senders[max(parents[i])]] += 1
        messages += rows
    _write(landing, "chat_messages", "irc_ubuntu", messages)
    return {"messages": len(messages), "sent": dict(sent), "received": dict(received)}
