"""Identity linking measured against the generator's ground truth: pairwise precision and recall.

A pair is two accounts (shop customer, forum user, chat sender) of one
person. Truth pairs count only where the data makes them linkable: a forum
account the generator gave no shared key cannot be linked by anyone. Chat
senders are sampled among people with a unionid, which the shop export
carries, so their pairs are always linkable. A forum account whose only
shared key is a family's phone (held by several customers) is linkable to
the family, not to one person: by design it is linked to nobody, so it is
not counted as a true pair either.
"""

from __future__ import annotations

import csv
import itertools
from dataclasses import dataclass
from pathlib import Path

from crm_pipeline.load.warehouse import Warehouse


@dataclass
class LinkScore:
    precision: float
    recall: float
    predicted_pairs: int
    true_pairs: int
    correct_pairs: int


def _pairs(clusters: list[set[str]]) -> set[frozenset]:
    return {frozenset(p) for c in clusters for p in itertools.combinations(sorted(c), 2)}


def truth_clusters(truth_dir: Path) -> list[set[str]]:
    clusters = []
    with (truth_dir / "people.csv").open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            accounts = set()
            if row["customer_id"]:
                accounts.add(f"customer:{row['customer_id']}")
            if row["chat_sender_id"]:
                accounts.add(f"chat:{row['chat_sender_id']}")
            linkable = row["forum_link_key"] and not row["forum_link_key"].endswith("(shared)")
            if row["forum_user_id"] and (linkable or not row["customer_id"]):
                accounts.add(f"forum:{row['forum_user_id']}")
            clusters.append(accounts)
    extra = truth_dir / "extra_accounts.csv"  # accounts of the same people in the real-shaped exports
    if extra.exists():
        index = {}
        with (truth_dir / "people.csv").open(encoding="utf-8") as fh:
            for i, row in enumerate(csv.DictReader(fh)):
                index[row["person_id"]] = i
        with extra.open(encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                clusters[index[row["person_id"]]].add(row["account"])
    return clusters


def predicted_clusters(wh: Warehouse) -> list[set[str]]:
    by_person: dict[str, set[str]] = {}
    for account_type, account_id, person_id in wh.fetchall(
        "select account_type, account_id, person_id from intermediate.int_identity__resolved"
    ):
        by_person.setdefault(person_id, set()).add(f"{account_type}:{account_id}")
    return list(by_person.values())


def score(wh: Warehouse, truth_dir: Path) -> LinkScore:
    """Pairs over the accounts the warehouse knows as of its run's date.

    An account registered later cannot be linked yet. Every link the sample
    makes runs through the person's shop customer keys, so while a person's
    customer account is unknown, whether their forum and chat accounts can be
    linked depends on which key each happened to get: such pairs are left out
    of both sides rather than guessed.
    """
    clusters = predicted_clusters(wh)
    known = set().union(*clusters) if clusters else set()
    truth = truth_clusters(truth_dir)
    undecidable = _pairs([c & known for c in truth if any(a.startswith("customer:") and a not in known for a in c)])
    predicted = _pairs(clusters) - undecidable
    true = _pairs([c & known for c in truth]) - undecidable
    correct = len(predicted & true)
    return LinkScore(
        precision=correct / len(predicted) if predicted else 1.0,
        recall=correct / len(true) if true else 1.0,
        predicted_pairs=len(predicted),
        true_pairs=len(true),
        correct_pairs=correct,
    )
