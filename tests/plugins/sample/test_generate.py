"""The sample community: deterministic, complete, and linked across channels the way the contract says."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import re
import unicodedata

from crm_pipeline.load.specs import SPECS
from crm_pipeline.sample.generate import generate

END = dt.date(2026, 11, 22)


def _digest(folder):
    h = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            h.update(path.relative_to(folder).as_posix().encode())
            h.update(path.read_bytes())
    return h.hexdigest()


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path):
    generate(tmp_path / "a", tmp_path / "ta", customers=120, seed=5, end_date=END)
    generate(tmp_path / "b", tmp_path / "tb", customers=120, seed=5, end_date=END)
    generate(tmp_path / "c", tmp_path / "tc", customers=120, seed=6, end_date=END)
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    assert _digest(tmp_path / "a") != _digest(tmp_path / "c")


def test_every_entity_is_written_and_truth_is_kept_apart(tmp_path):
    meta = generate(tmp_path / "landing", tmp_path / "truth", customers=300, seed=1, end_date=END)
    # Requests come from people, not the sample; rosters and group places come with its real shapes
    # (tests/plugins/sample/test_real_shapes.py).
    written = set(SPECS) - {"deletion_requests", "chat_members", "chat_groups"}
    assert set(meta["rows"]) == written
    assert all(n > 0 for n in meta["rows"].values()), meta["rows"]
    assert {p.name for p in (tmp_path / "landing").iterdir()} == written
    assert {p.name for p in (tmp_path / "truth").iterdir()} == {
        "people.csv",
        "texts.csv",
        "summary.json",
        "lift_orders.csv",
    }


def test_people_link_across_channels_through_varied_phone_formats(tmp_path):
    generate(tmp_path / "landing", tmp_path / "truth", customers=400, seed=2, end_date=END)
    with (tmp_path / "truth" / "people.csv").open(encoding="utf-8") as fh:
        people = list(csv.DictReader(fh))
    both = [p for p in people if p["customer_id"] and p["forum_user_id"]]
    forum_only = [p for p in people if p["forum_user_id"] and not p["customer_id"]]
    chat = [p for p in people if p["chat_sender_id"]]
    assert both and forum_only and chat

    with (tmp_path / "landing" / "forum_users" / "forum_users_0001.csv").open(encoding="utf-8") as fh:
        phones = [r["phone"] for r in csv.DictReader(fh) if r["phone"]]
    # "+86 138 1234 5678", "138-1234-5678", full-width digits...: digits masked, shapes differ.
    shapes = {re.sub(r"[0-9０-９]", "9", p) for p in phones}
    assert len(shapes) >= 3, shapes
    digits = {re.sub(r"\D", "", unicodedata.normalize("NFKC", p))[-11:] for p in phones}
    truth_phones = {p["phone"] for p in both if p["phone"]}
    assert digits & truth_phones  # the same person's phone, written differently


def test_texts_cover_languages_and_negative_categories(tmp_path):
    generate(tmp_path / "landing", tmp_path / "truth", customers=300, seed=3, end_date=END)
    with (tmp_path / "truth" / "texts.csv").open(encoding="utf-8") as fh:
        texts = list(csv.DictReader(fh))
    assert {t["source"] for t in texts} == {"forum", "chat", "review", "refund"}
    assert {t["language"] for t in texts} == {"zh", "zh_hant", "en"}
    negative = [t for t in texts if t["is_negative"] == "1"]
    assert {t["category"] for t in negative} == {"product_quality", "logistics", "service", "price", "usability"}
    assert 0.05 < len(negative) / len(texts) < 0.5


def _truth_people(truth):
    with (truth / "people.csv").open(encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _records(folder):
    return [r.record for path in sorted(folder.iterdir()) for r in _records_of(path)]


def test_volume_multiplies_what_each_customer_does(tmp_path):
    """Bench M and L ask for the issue's rows: orders, forum topics and chat messages scale by their factors.

    Expected counts come from the ground truth, not from the generator's counters: chat has one join
    message per sender, one leave message for every twentieth, and customers x 10 x factor others;
    the forum has forum members x 0.8 x factor topics.
    """
    from crm_pipeline.sample.generate import Volume

    n = 300
    base = generate(tmp_path / "a", tmp_path / "ta", customers=n, seed=4, end_date=END)["rows"]
    meta = generate(
        tmp_path / "b", tmp_path / "tb", customers=n, seed=4, end_date=END,
        volume=Volume(orders=4.0, forum_posts=3.0, chat=2.5),
    )  # fmt: skip
    people = _truth_people(tmp_path / "tb")
    senders = sum(1 for p in people if p["chat_sender_id"])
    assert meta["rows"]["chat_messages"] == int(n * 10 * 2.5) + senders + senders // 20
    forum_people = sum(1 for p in people if p["forum_user_id"])
    topics = [p for p in _records(tmp_path / "b" / "forum_posts") if not p["reply_to_post_id"]]
    assert len(topics) == int(forum_people * 0.8 * 3.0)
    # Orders: each buyer's count is multiplied and rounded; the spread of who buys is the sample's.
    assert 3.0 < meta["rows"]["orders"] / base["orders"] < 5.0
    assert meta["volume"] == {"orders": 4.0, "forum_posts": 3.0, "chat": 2.5, "distinct_texts": False}
    assert base["chat_messages"] < meta["rows"]["chat_messages"]


# Where the generator writes what people say (the scoring reads these, and refunds' reasons).
TEXT_FIELDS = {"forum_posts": "content", "chat_messages": "content", "reviews": "content", "refunds": "reason"}


def _texts(folder) -> list[str]:
    return [
        r[field]
        for entity, field in TEXT_FIELDS.items()
        for r in _records(folder / entity)
        if r.get(field) and r.get("msg_type", "text") == "text"  # not chat's joins, leaves and links
    ]


def test_distinct_texts_vary_what_is_said_and_nothing_else(tmp_path):
    """The benchmark's communities (issue 26): at least 90% of their texts are said once, where the sample
    repeats its phrase banks; every other value, and each text's label, is what the sample has."""
    from crm_pipeline.sample.generate import Volume

    volume = {"orders": 2.0, "forum_posts": 2.0, "chat": 2.0}
    generate(tmp_path / "a", tmp_path / "ta", customers=400, seed=4, end_date=END, volume=Volume(**volume))
    generate(
        tmp_path / "b", tmp_path / "tb", customers=400, seed=4, end_date=END,
        volume=Volume(**volume, distinct_texts=True),
    )  # fmt: skip
    plain, varied = _texts(tmp_path / "a"), _texts(tmp_path / "b")
    assert len(plain) == len(varied) > 5_000
    assert len(set(plain)) / len(plain) < 0.20  # the sample's texts repeat (replies' @mentions vary them a little)
    assert len(set(varied)) / len(varied) >= 0.90
    # Each varied text is its plain twin with a clause after any @mention: the point, the emoji, the label stay.
    # (Refund reasons picked from the shop's list stay as they are, as a list's do.)
    from crm_pipeline.sample.texts import REFUND_REASONS_OTHER

    for p, v in zip(plain, varied, strict=True):
        if p in REFUND_REASONS_OTHER:
            assert v == p
            continue
        mention = re.match("@[^ \u2005]+[ \u2005]", p)
        head = mention.group(0) if mention else ""
        assert v.startswith(head) and v.endswith(p[len(head) :]) and len(v) > len(p), (p, v)
    assert (tmp_path / "ta" / "texts.csv").read_bytes() == (tmp_path / "tb" / "texts.csv").read_bytes()
    for entity, field in TEXT_FIELDS.items():
        without = [{k: v for k, v in r.items() if k != field} for r in _records(tmp_path / "a" / entity)]
        assert without == [{k: v for k, v in r.items() if k != field} for r in _records(tmp_path / "b" / entity)]
    for entity in ("orders", "customers", "forum_users", "events"):
        assert _records(tmp_path / "a" / entity) == _records(tmp_path / "b" / entity)


def test_rows_are_written_as_made_in_numbered_files_that_read_back_in_order(tmp_path, monkeypatch):
    """Large scales write file by file: the files hold at most ROWS_PER_FILE rows, and read in name order they
    are the same records, in the same order, as one file holds when everything fits in it."""
    from crm_pipeline.sample import generate as module

    generate(tmp_path / "one", tmp_path / "t1", customers=150, seed=8, end_date=END)
    monkeypatch.setattr(module, "ROWS_PER_FILE", 97)
    generate(tmp_path / "many", tmp_path / "t2", customers=150, seed=8, end_date=END)
    for entity in ("orders", "chat_messages", "forum_posts", "customers"):
        files = sorted((tmp_path / "many" / entity).iterdir())
        assert len(files) >= 2 and files[0].name == f"{entity}_0001{files[0].suffix}"
        assert [f.name for f in files] == [f"{entity}_{i:04d}{files[0].suffix}" for i in range(1, len(files) + 1)]
        assert len(list((tmp_path / "one" / entity).iterdir())) == 1
        many = _records(tmp_path / "many" / entity)
        assert many == _records(tmp_path / "one" / entity)
        assert all(len(_records_of(f)) <= 97 for f in files)
    assert (tmp_path / "t1" / "texts.csv").read_bytes() == (tmp_path / "t2" / "texts.csv").read_bytes()


def _records_of(path):
    from crm_pipeline.sources.files import read_records

    return list(read_records(path)[2])


def _rows(folder) -> list[dict]:
    out: list[dict] = []
    for path in sorted(folder.glob("*.csv")):
        with path.open(encoding="utf-8", newline="") as fh:
            out += list(csv.DictReader(fh))
    return out


def test_a_member_lift_adds_orders_only_after_joining_and_changes_nothing_else(tmp_path):
    end = dt.date(2026, 11, 22)
    kw = {"customers": 400, "seed": 3, "end_date": end}
    generate(tmp_path / "none" / "landing", tmp_path / "none" / "truth", member_lift=0.0, **kw)
    generate(tmp_path / "lift" / "landing", tmp_path / "lift" / "truth", member_lift=1.0, **kw)
    # Every file but orders and their lines is byte for byte what it is without a lift.
    for path in sorted((tmp_path / "none" / "landing").rglob("*.*")):
        twin = tmp_path / "lift" / "landing" / path.relative_to(tmp_path / "none" / "landing")
        if path.parent.name not in ("orders", "order_items"):
            assert twin.read_bytes() == path.read_bytes(), path.name
    base, lifted = (_rows(tmp_path / s / "landing" / "orders") for s in ("none", "lift"))
    added = lifted[len(base) :]
    assert lifted[: len(base)] == base and added
    with (tmp_path / "lift" / "truth" / "lift_orders.csv").open(encoding="utf-8") as fh:
        truth = list(csv.DictReader(fh))
    assert [r["order_id"] for r in truth] == [r["order_id"] for r in added]
    with (tmp_path / "none" / "truth" / "lift_orders.csv").open(encoding="utf-8") as fh:
        assert list(csv.DictReader(fh)) == []
    with (tmp_path / "lift" / "truth" / "people.csv").open(encoding="utf-8") as fh:
        people = {p["person_id"]: p for p in csv.DictReader(fh)}
    customer_of = {o["order_id"]: o["customer_id"] for o in added}
    per_person: dict[str, int] = {}
    for r in truth:
        p = people[r["person_id"]]
        # Only a customer who joined the forum or a chat group, only after joining and before dropping out.
        assert p["customer_id"] == customer_of[r["order_id"]] and p["community_joined_at"]
        assert (p["forum_user_id"] or p["chat_sender_id"]) and r["ordered_at"] > p["community_joined_at"]
        assert not p["dropped_out_at"] or r["ordered_at"] < p["dropped_out_at"]
        per_person[r["person_id"]] = per_person.get(r["person_id"], 0) + 1
    assert per_person == {k: int(p["lift_orders"]) for k, p in people.items() if int(p["lift_orders"])}
    lines = _rows(tmp_path / "lift" / "landing" / "order_items")
    assert {i["order_id"] for i in lines} >= set(customer_of)


def _members_to_others_orders(tmp_path, join_bias: float) -> float:
    """Mean orders of the customers who joined the forum or a chat group over those of the rest."""
    out = tmp_path / f"bias{join_bias}"
    generate(out / "landing", out / "truth", customers=1000, seed=4, end_date=END, member_lift=0.0, join_bias=join_bias)
    orders: dict[str, int] = {}
    for o in {r["order_id"]: r for r in _rows(out / "landing" / "orders")}.values():
        orders[o["customer_id"]] = orders.get(o["customer_id"], 0) + 1
    with (out / "truth" / "people.csv").open(encoding="utf-8") as fh:
        people = [p for p in csv.DictReader(fh) if p["customer_id"]]
    joined = [orders.get(p["customer_id"], 0) for p in people if p["community_joined_at"]]
    rest = [orders.get(p["customer_id"], 0) for p in people if not p["community_joined_at"]]
    return (sum(joined) / len(joined)) / (sum(rest) / len(rest))


def test_a_join_bias_makes_heavier_buyers_likelier_to_join(tmp_path):
    unbiased, biased = _members_to_others_orders(tmp_path, 0.0), _members_to_others_orders(tmp_path, 1.0)
    assert 0.75 < unbiased < 1.3 and biased > 1.8, (unbiased, biased)  # seen: 1.10 and 2.89
