"""Readers for labelled text, and the fixed train/test split.

Formats (``--format``, or guessed from the file):
- ``waimai``: CSV with ``label`` (1 positive / 0 negative) and ``review``, and
  optionally ``cat`` (the product category; the online-shopping corpus has it).
- ``vader``: tab-separated id, mean human rating (-4..4), text (the VADER
  ground-truth files). Negative means a mean rating of -0.5 or below
  (``VADER_NEGATIVE_AT``): raters rate -1 "slightly negative", and snippets
  whose mean lies between -0.5 and 0 are neutral text ("repost from january
  13, 2004 with a better fit title." is -0.15). ``--vader-negative-at 0``
  gives the strict reading (any mean below 0).
- ``labelled``: CSV with ``text`` and ``is_negative`` (0/1), optional
  ``language``; what a brand exports from its own labelled feedback.

The split is by content, not by position: a text is in the test part when
``crc32(text) % 5 == 0`` (TEST_MODULUS), in every corpus alike, so a text that
two corpora share (the online-shopping hotels and ChnSentiCorp come from the
same source) is held out in both or in neither, and a duplicate can never sit
on both sides.

CORPORA is every labelled corpus the models are trained and evaluated on, as
found under the shared data directory (``../shared/data``): each one's held-out
fifth is what ``evaluate --corpora`` scores, and nothing of it is trained on.
"""

from __future__ import annotations

import csv
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

VADER_NEGATIVE_AT = -0.5
TEST_MODULUS = 5


@dataclass(frozen=True)
class Example:
    text: str
    is_negative: bool
    language: str | None = None
    domain: str | None = None  # a corpus's own sub-collection (the online-shopping corpus's category)
    row_id: str | None = None  # where it is: a CSV's data row number (from 1), a VADER file's id


@dataclass(frozen=True)
class Corpus:
    """A labelled corpus: where it is under the data directory, its language, and how it is weighed."""

    name: str
    path: str
    language: str
    domain: str | None = None  # only the rows of this category
    reviews: bool = True  # customer reviews, the text the models are for (weighed more in training)


SHOPPING = "real/text/zh_online_shopping_books_computers_hotels.csv"
CORPORA = (
    Corpus("waimai_10k (delivery)", "waimai_10k.csv", "zh"),
    Corpus("online shopping: books", SHOPPING, "zh", "书籍"),
    Corpus("online shopping: computers", SHOPPING, "zh", "计算机"),
    Corpus("online shopping: hotels", SHOPPING, "zh", "酒店"),
    Corpus("ChnSentiCorp hotels", "real/text/zh_ChnSentiCorp_htl_all.csv", "zh"),
    Corpus("Amazon review snippets", "amazonReviewSnippets_GroundTruth.txt", "en"),
    Corpus("tweets", "tweets_GroundTruth.txt", "en", reviews=False),
    Corpus("movie reviews", "real/text/en_vader_movie_reviews.txt", "en"),
    Corpus("NYT editorials", "real/text/en_vader_nyt_editorials.txt", "en", reviews=False),
)


def load(corpus: Corpus, data_dir: Path) -> list[Example]:
    """A corpus's labelled rows (its category's only, where it names one), each marked with its language."""
    rows = read(data_dir / corpus.path)
    return [
        Example(e.text, e.is_negative, corpus.language, e.domain, e.row_id)
        for e in rows
        if corpus.domain is None or e.domain == corpus.domain
    ]


def available(data_dir: Path) -> list[Corpus]:
    return [c for c in CORPORA if (data_dir / c.path).exists()]


def guess_format(path: Path) -> str:
    head = path.open(encoding="utf-8-sig", errors="replace").readline()
    if {"label", "review"} <= {f.strip().lower() for f in head.split(",")}:
        return "waimai"
    if "\t" in head:
        return "vader"
    return "labelled"


def read(path: Path, fmt: str | None = None, vader_negative_at: float = VADER_NEGATIVE_AT) -> list[Example]:
    fmt = fmt or guess_format(path)
    if fmt == "waimai":
        return list(_waimai(path))
    if fmt == "vader":
        return list(_vader(path, vader_negative_at))
    if fmt == "labelled":
        return list(_labelled(path))
    raise ValueError(f"unknown corpus format {fmt!r}: use waimai, vader or labelled")


def _waimai(path: Path) -> Iterator[Example]:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        for n, row in enumerate(csv.DictReader(fh), start=2):
            if row.get("label") not in ("0", "1") or row.get("review") is None:
                raise ValueError(f"{path}: line {n}: expected label 0/1 and review")
            yield Example(row["review"], row["label"] == "0", "zh", row.get("cat") or None, str(n - 1))


def _vader(path: Path, negative_at: float) -> Iterator[Example]:
    with path.open(encoding="utf-8", errors="replace") as fh:
        for n, line in enumerate(fh, start=1):
            parts = line.rstrip("\n").split("\t")
            if len(parts) < 3:
                if not line.strip():
                    continue
                raise ValueError(f"{path}: line {n}: expected id<TAB>rating<TAB>text")
            try:
                rating = float(parts[1])
            except ValueError:
                raise ValueError(f"{path}: line {n}: rating {parts[1]!r} is not a number") from None
            negative = rating <= negative_at if negative_at < 0 else rating < 0
            yield Example("\t".join(parts[2:]), negative, "en", None, parts[0])


def _labelled(path: Path) -> Iterator[Example]:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        reader = csv.DictReader(fh)
        if not {"text", "is_negative"} <= set(reader.fieldnames or []):
            raise ValueError(f"{path}: a labelled CSV needs columns text and is_negative")
        for n, row in enumerate(reader, start=2):
            if row["is_negative"] not in ("0", "1"):
                raise ValueError(f"{path}: line {n}: is_negative must be 0 or 1")
            yield Example(row["text"], row["is_negative"] == "1", row.get("language") or None)


def is_test(text: str, modulus: int = TEST_MODULUS) -> bool:
    return zlib.crc32(text.strip().encode("utf-8")) % modulus == 0


def split(examples: list[Example], modulus: int = TEST_MODULUS) -> tuple[list[Example], list[Example]]:
    train = [e for e in examples if not is_test(e.text, modulus)]
    test = [e for e in examples if is_test(e.text, modulus)]
    return train, test


CATEGORY_LABELS = Path(__file__).with_name("category_labels.csv")


@dataclass(frozen=True)
class Labelled:
    """A real negative text with the complaint category a reader gave it (docs/classifier.md, the guide)."""

    corpus: str
    row_id: str
    language: str
    text: str
    category: str  # product_quality, logistics, service, price, usability, other; not_negative: the corpus erred
    safety: bool


def category_set(data_dir: Path, labels: Path = CATEGORY_LABELS) -> list[Labelled]:
    """The labelled category set: (corpus, row id, category, safety) rows joined to the corpora's texts."""
    by_name = {c.name: c for c in CORPORA}
    texts: dict[str, dict[str, str]] = {}
    out = []
    with labels.open(encoding="utf-8", newline="") as fh:
        for n, row in enumerate(csv.DictReader(fh), start=2):
            corpus = by_name.get(row["corpus"])
            if corpus is None:
                raise ValueError(f"{labels}: line {n}: unknown corpus {row['corpus']!r}")
            if corpus.name not in texts:
                texts[corpus.name] = {e.row_id: e.text for e in load(corpus, data_dir)}
            text = texts[corpus.name].get(row["row_id"])
            if text is None:
                raise ValueError(f"{labels}: line {n}: {corpus.name} has no row {row['row_id']}")
            out.append(
                Labelled(corpus.name, row["row_id"], corpus.language, text, row["category"], row["safety"] == "1")
            )
    return out
