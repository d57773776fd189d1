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
    assert set(meta["rows"]) == set(SPECS) - {"deletion_requests"}  # requests come from people, not the sample
    assert all(n > 0 for n in meta["rows"].values()), meta["rows"]
    assert {p.name for p in (tmp_path / "landing").iterdir()} == set(SPECS) - {"deletion_requests"}
    assert {p.name for p in (tmp_path / "truth").iterdir()} == {"people.csv", "texts.csv", "summary.json"}


def test_people_link_across_channels_through_varied_phone_formats(tmp_path):
    generate(tmp_path / "landing", tmp_path / "truth", customers=400, seed=2, end_date=END)
    with (tmp_path / "truth" / "people.csv").open(encoding="utf-8") as fh:
        people = list(csv.DictReader(fh))
    both = [p for p in people if p["customer_id"] and p["forum_user_id"]]
    forum_only = [p for p in people if p["forum_user_id"] and not p["customer_id"]]
    chat = [p for p in people if p["chat_sender_id"]]
    assert both and forum_only and chat

    with (tmp_path / "landing" / "forum_users" / "forum_users_001.csv").open(encoding="utf-8") as fh:
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
