"""Text normalisation and the table-driven cue lexicon (``cues.csv``).

Every verdict can be explained: the lexicon returns the cues that fired, each
with its signed contribution after negation and degree words, and the
category they point to. A brand edits ``cues.csv`` (or points
``CRM_TEXT_CUES`` at its own copy) to add product words or slang.
"""

from __future__ import annotations

import csv
import re
import unicodedata
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from crm_pipeline.config import settings

HERE = Path(__file__).resolve().parent
CATEGORIES = ("product_quality", "logistics", "service", "price", "usability", "other")
KINDS = {"sentiment", "topic", "negation", "degree", "question", "rhetorical"}
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_LATIN_WORD = re.compile(r"[a-z][a-z'\-]*")
_QUESTION_END = re.compile(r"[?？]\s*\W*$")


@cache
def _t2s_table() -> dict[int, str]:
    """Traditional -> simplified, character by character, from OpenCC's table (installed package)."""
    import opencc

    table: dict[int, str] = {}
    path = Path(opencc.__file__).parent / "dictionary" / "TSCharacters.txt"
    for line in path.read_text(encoding="utf-8").splitlines():
        trad, _, simp = line.partition("\t")
        if len(trad) == 1 and simp:
            table[ord(trad)] = simp.split(" ")[0]
    return table


def normalise(text: str) -> tuple[str, bool]:
    """NFKC (full-width -> half-width), lower case, traditional -> simplified; also says if anything was traditional."""
    folded = unicodedata.normalize("NFKC", text).lower().replace("\u2019", "'")
    simplified = folded.translate(_t2s_table())
    return simplified, simplified != folded


def _is_word(w: str) -> bool:
    """An English cue (letters, spaces, apostrophes, hyphens), matched on words."""
    return bool(w) and w.isascii() and w[0].isalpha()


def script_counts(text: str) -> tuple[int, int]:
    """(CJK characters, Latin words) in normalised text."""
    return len(_CJK.findall(text)), len(_LATIN_WORD.findall(text))


@cache
def _vader_valences() -> dict[str, float]:
    """English word valences (-4..4) from VADER's lexicon, which ships in the installed vaderSentiment package."""
    import vaderSentiment

    out = {}
    path = Path(vaderSentiment.__file__).parent / "vader_lexicon.txt"
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        word, _, rest = line.partition("\t")
        if word.isalpha() and word.isascii():
            out[word] = float(rest.split("\t")[0])
    return out


@dataclass(frozen=True)
class Cue:
    text: str
    language: str
    kind: str
    category: str
    weight: float


@dataclass
class LexiconHit:
    score: float = 0.0  # sum of sentiment contributions
    cues: list[str] = field(default_factory=list)  # what fired, e.g. "太慢(x1.6)", "not good(neg)"
    categories: dict[str, float] = field(default_factory=dict)  # category -> weight of evidence
    is_question: bool = False


class Lexicon:
    def __init__(self, path: Path | None = None, english_valences: bool = True):
        self.path = Path(path or settings().text_cues or HERE / "cues.csv")
        self.cues = self._read(self.path)
        # English words the cue table does not list take VADER's valence (scaled to cue weights).
        self.valences = _vader_valences() if english_valences else {}
        by_kind: dict[str, list[Cue]] = {}
        for c in self.cues:
            by_kind.setdefault(c.kind, []).append(c)
        self.scored = {c.text: c for c in by_kind.get("sentiment", []) + by_kind.get("rhetorical", [])}
        self.topics = {c.text: c for c in by_kind.get("topic", [])}
        self.degrees = {c.text: c.weight for c in by_kind.get("degree", [])}
        # Chinese cues, emoji and emoticons: one regex. English cues: token
        # lookups (phrases of up to 3 words), far faster than a regex with
        # word boundaries.
        matchable = list(self.scored)
        self._match = self._alternation([w for w in matchable if not _is_word(w) and not w.isascii()])
        self._match_ascii = self._alternation([w for w in matchable if not _is_word(w) and w.isascii()])
        self._en_phrases = {w for w in matchable if _is_word(w)}
        self._en_span = max((w.count(" ") + 1 for w in self._en_phrases), default=1)
        self._en_first = {w.split(" ")[0] for w in self._en_phrases if " " in w}  # where a phrase may start
        # Topic words only name a category: they are found in a pass of their own, so a topic word never
        # hides a sentiment cue inside it (太慢 around 慢) or an English word's valence (broken).
        # A cue that is both is handled with the sentiment cues, as before.
        topics_only = [t for t in self.topics if t not in self.scored]
        self._topic_zh = self._alternation([w for w in topics_only if not _is_word(w)])
        self._topic_en = {w for w in topics_only if _is_word(w)}
        self._topic_span = max((w.count(" ") + 1 for w in self._topic_en), default=1)
        self._topic_first = {w.split(" ")[0] for w in self._topic_en if " " in w}
        negations = by_kind.get("negation", [])
        self._negation_zh = self._alternation([c.text for c in negations if not _is_word(c.text)])
        self._negation_en = frozenset(c.text for c in negations if _is_word(c.text))
        self._degree_zh = self._alternation([w for w in self.degrees if not _is_word(w)])
        self._degree_en = {w: f for w, f in self.degrees.items() if _is_word(w)}
        self._question_zh = self._alternation([c.text for c in by_kind.get("question", []) if not _is_word(c.text)])
        self._question_en = [tuple(c.text.split(" ")) for c in by_kind.get("question", []) if _is_word(c.text)]

    @staticmethod
    def _read(path: Path) -> list[Cue]:
        cues = []
        with path.open(encoding="utf-8", newline="") as fh:
            rows = csv.DictReader(line for line in fh if not line.startswith("#"))
            for n, row in enumerate(rows, start=2):
                kind = (row.get("kind") or "").strip()
                category = (row.get("category") or "").strip()
                if kind not in KINDS:
                    raise ValueError(f"{path}: row {n}: unknown kind {kind!r} (one of {sorted(KINDS)})")
                if category and category not in CATEGORIES:
                    raise ValueError(f"{path}: row {n}: unknown category {category!r} (one of {CATEGORIES})")
                try:
                    weight = float(row.get("weight") or 0)
                except ValueError:
                    raise ValueError(f"{path}: row {n}: weight {row.get('weight')!r} is not a number") from None
                text, _ = normalise(row["cue"].strip())
                if not text:
                    raise ValueError(f"{path}: row {n}: empty cue")
                cues.append(Cue(text, (row.get("language") or "any").strip(), kind, category, weight))
        return cues

    @staticmethod
    def _alternation(words: list[str]) -> re.Pattern | None:
        if not words:
            return None
        return re.compile("|".join(re.escape(w) for w in sorted(set(words), key=len, reverse=True)))

    def _add(self, hit: LexiconHit, cue: Cue | None, topic: Cue | None, negated: bool, factor: float | None) -> None:
        if cue is None:
            if topic is not None:
                hit.categories[topic.category] = hit.categories.get(topic.category, 0.0) + 0.5
            return
        contribution, label = cue.weight, cue.text
        if negated and cue.kind == "sentiment":
            contribution, label = -0.5 * contribution, "not " + label
        if factor is not None:
            contribution *= factor
            label += f"(x{factor:g})"
        hit.score += contribution
        hit.cues.append(label)
        if cue.category and contribution < 0:
            hit.categories[cue.category] = hit.categories.get(cue.category, 0.0) - contribution
        elif topic is not None:
            hit.categories[topic.category] = hit.categories.get(topic.category, 0.0) + 0.5

    def scan(self, text: str) -> LexiconHit:
        """Cues in normalised text, with negation and degree words applied.

        Chinese: a negation word in the 3 characters before a cue reverses and
        halves it; a degree word in the 4 before scales it. English: the same
        with the 3 words before (a degree word: the word right before).
        """
        hit = LexiconHit()
        symbol_matches = []
        if self._match is not None and not text.isascii():
            symbol_matches = list(self._match.finditer(text))
        if self._match_ascii is not None:
            emoticons = list(self._match_ascii.finditer(text))
            if emoticons:
                symbol_matches = sorted(symbol_matches + emoticons, key=lambda m: m.start())
        if symbol_matches:
            last_end = 0
            for m in symbol_matches:
                cue_text, start = m.group(0), m.start()
                before = text[max(last_end, start - 4) : start]
                negated = self._negation_zh is not None and self._negation_zh.search(before[-3:]) is not None
                degree = self._degree_zh.search(before) if self._degree_zh is not None else None
                factor = self.degrees[degree.group(0)] if degree is not None else None
                self._add(hit, self.scored.get(cue_text), self.topics.get(cue_text), negated, factor)
                last_end = m.end()
        words = _LATIN_WORD.findall(text)
        if words:
            self._scan_words(words, hit)
        self._scan_topics(text, words, hit)
        hit.is_question = bool(_QUESTION_END.search(text)) or (
            self._question_zh is not None and self._question_zh.search(text) is not None
        )
        if not hit.is_question and words:
            hit.is_question = any(tuple(words[: len(q)]) == q for q in self._question_en)
        return hit

    def _scan_topics(self, text: str, words: list[str], hit: LexiconHit) -> None:
        found = self._topic_zh.findall(text) if self._topic_zh is not None else []
        if words and self._topic_en:
            found += [w for w in words if w in self._topic_en]  # one word: a set lookup each
            for i in [i for i, w in enumerate(words) if w in self._topic_first]:  # phrases ("tech support")
                found += [
                    p for n in range(2, self._topic_span + 1) if (p := " ".join(words[i : i + n])) in self._topic_en
                ]
        for topic in found:
            category = self.topics[topic].category
            hit.categories[category] = hit.categories.get(category, 0.0) + 0.5

    def _scan_words(self, words: list[str], hit: LexiconHit) -> None:
        i, n = 0, len(words)
        phrases, first, valences = self._en_phrases, self._en_first, self.valences
        while i < n:
            word, matched = words[i], None
            if word in first:  # only then can a phrase of two words or more start here
                for span in range(min(self._en_span, n - i), 1, -1):
                    if (phrase := " ".join(words[i : i + span])) in phrases:
                        matched = (phrase, span)
                        break
            if matched is None and word in phrases:
                matched = (word, 1)
            valence = None if matched is not None else valences.get(word)
            if matched is None and valence is None:  # nothing here: no need to look at the words before
                i += 1
                continue
            prev = words[max(0, i - 3) : i]
            negated = any(w in self._negation_en or w.endswith("n't") for w in prev)
            factor = self._degree_en.get(prev[-1]) if prev else None
            if matched is not None:
                phrase, span = matched
                self._add(hit, self.scored.get(phrase), self.topics.get(phrase), negated, factor)
                i += span
                continue
            contribution = 0.6 * valence
            label = word
            if negated:
                contribution, label = -0.5 * contribution, "not " + label
            if factor is not None:
                contribution *= factor
            hit.score += contribution
            if abs(valence) >= 1.5:
                hit.cues.append(label)
            i += 1
