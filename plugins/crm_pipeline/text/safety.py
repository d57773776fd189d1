"""The safety flag's keyword rule in Python, for `make eval-text` and tests.

fct_negative_feedback flags a negative piece of feedback `is_safety` when a
keyword of the severity_rules seed's rule `safety` is in its text or its cues:
an English keyword (ASCII letters, digits and spaces) as whole words, a Chinese
one as a whole term (it occurs more often than inside the longer words seed
severity_term_exceptions lists for it). The warehouse does this in SQL
(int_feedback__keyword_hits); this is the same rule, read from the same seeds,
so the evaluation measures what the mart flags. tests/plugins/text/test_safety.py
holds it to that model's dbt unit test.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

from crm_pipeline.config import DBT_PROJECT_DIR

SEEDS = DBT_PROJECT_DIR / "seeds"
RULE = "safety"
_NOT_WORD = re.compile(r"[^a-z0-9]+")
_ENGLISH = re.compile(r"[a-z0-9 ]+")


@dataclass(frozen=True)
class KeywordRule:
    """One severity rule's keywords (lower-cased) and, per Chinese keyword, the words that hide it."""

    keywords: tuple[str, ...]
    exceptions: dict[str, tuple[str, ...]]

    @classmethod
    def from_rows(cls, rules: list[dict], exceptions: list[dict], rule: str = RULE) -> KeywordRule:
        keywords = tuple(r["value"].lower() for r in rules if r["rule"] == rule and r["kind"] == "keyword")
        within: dict[str, list[str]] = {}
        for e in exceptions:
            within.setdefault(e["term"].lower(), []).append(e["within"].lower())
        return cls(keywords, {k: tuple(v) for k, v in within.items()})

    @classmethod
    def from_seeds(cls, seeds: Path = SEEDS, rule: str = RULE) -> KeywordRule:
        def read(name: str) -> list[dict]:
            with (seeds / f"{name}.csv").open(encoding="utf-8", newline="") as fh:
                return list(csv.DictReader(fh))

        return cls.from_rows(read("severity_rules"), read("severity_term_exceptions"), rule)

    def hits(self, text: str | None, cues: str | None = None) -> list[str]:
        """The keywords found in the text and the cues (a JSON list, as the mart keeps them)."""
        haystack = (text or "").lower() + " " + (cues or "").lower()
        words = " " + _NOT_WORD.sub(" ", haystack) + " "
        found = []
        for k in self.keywords:
            if _ENGLISH.fullmatch(k):  # whole words
                hit = f" {k} " in words
            else:  # a whole term: more often than inside the words that hide it
                hit = haystack.count(k) > sum(haystack.count(w) for w in self.exceptions.get(k, ()))
            if hit:
                found.append(k)
        return found
