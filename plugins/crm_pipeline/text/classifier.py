"""The negative-feedback classifier: a learned linear model over character
(Chinese) and word (English) n-grams, plus the cue lexicon, per text.

``sentiment`` in [-1, 1] is ``tanh(z / 2)`` (2 P(positive) - 1) where ``z``
is the model's log-odds: bias + n-gram weights + ``lexicon_weight`` x the
lexicon score. ``is_negative`` is ``z`` below the language's threshold, with evidence
in the text itself (see ``score``); a rating-based rule can override it
downstream. The category is the one the cues point to strongly, else the
category model's (naive Bayes over the n-grams and the cues' category,
learnt from the labelled category set); ``other`` for a negative text
with neither. Everything it needs ships in
the repo (``models/*.json.gz``, ``cues.csv``) or in installed packages; it
never downloads.
"""

from __future__ import annotations

import gzip
import itertools
import json
import math
import re
from dataclasses import dataclass
from functools import cache, cached_property
from pathlib import Path

from crm_pipeline.text.lexicon import CATEGORIES, Lexicon, normalise, script_counts

HERE = Path(__file__).resolve().parent
MODELS = HERE / "models"
# Bump when the models, features or rules change: stored scores carry it, and
# `python -m crm_pipeline.text.rescore` rescores what an older version scored.
VERSION = "2026.12.7"
EVIDENCE_MIN = 0.5
STRONG_CUE = 1.0  # cues pointing to a category with this weight decide it without the category model
NGRAM_CUES = 3  # n-gram contributions listed among a negative verdict's cues
NGRAM_CUE_MIN = 0.3  # ...each worth at least this much towards negative, in log-odds

# An "@name" mention (the name runs to a space, WeChat's U+2005 or punctuation, as in
# dbt's macro mentioned_names), not the "@" of an email address.
_MENTION = re.compile(r"(?<![A-Za-z0-9._%+-])@[^\s@,，:：;；。!！?？()（）\u2005]+\u2005?")
_CJK_RUN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]+")
_EN_TOKEN = re.compile(r"[a-z][a-z']*|[!?]|[.,;:]")
_EN_NEGATORS = frozenset({"not", "no", "never", "cannot", "without", "nothing", "nor", "hardly"})
_EN_CLAUSE_END = frozenset({".", ",", ";", ":", "!", "?"})


def strip_mentions(text: str) -> str:
    """The text without its "@name" mentions: a name says whom, not how ("@粉丝8bad" is no complaint)."""
    return _MENTION.sub(" ", text)


def zh_features(text: str) -> list[str]:
    """Character unigrams and bigrams of each CJK run (normalised text)."""
    feats: list[str] = []
    for run in _CJK_RUN.findall(text):
        feats.extend(run)
        feats.extend(map(str.__add__, run, run[1:]))
    return feats


def en_features(text: str) -> list[str]:
    """Word unigrams and bigrams; words after a negator, to the clause end, are marked ``not_``."""
    words: list[str] = []
    negate = False
    for tok in _EN_TOKEN.findall(text):
        if tok in _EN_CLAUSE_END:
            negate = False
            if tok in "!?":
                words.append(tok)
            continue
        if tok in _EN_NEGATORS or tok.endswith("n't"):
            negate = True
            words.append(tok)
            continue
        words.append("not_" + tok if negate else tok)
    return words + [a + " " + b for a, b in itertools.pairwise(words)]


@dataclass(frozen=True)
class Model:
    language: str
    bias: float
    lexicon_weight: float
    threshold: float
    weights: dict[str, float]

    @classmethod
    def load(cls, path: Path) -> Model:
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            d = json.load(fh)
        return cls(d["language"], d["bias"], d["lexicon_weight"], d["threshold"], d["weights"])

    def ngram_logit(self, feats: set[str]) -> float:
        return sum(map(self.weights.get, feats, itertools.repeat(0.0, len(feats))))

    @cached_property
    def strongly_negative(self) -> dict[str, float]:
        """The n-grams worth at least NGRAM_CUE_MIN towards negative: the only candidates for a verdict's cues."""
        return {f: w for f, w in self.weights.items() if w <= -NGRAM_CUE_MIN}


@dataclass(frozen=True)
class CategoryModel:
    """Naive Bayes over a text's n-grams and the category its cues point to (the feature "lex:<category>",
    or "lex:none", counted `lexicon_weight` times), learnt from the labelled category set's training part
    (``python -m crm_pipeline.text.train``). It decides a category where no cue names one strongly."""

    language: str
    classes: tuple[str, ...]
    log_prior: tuple[float, ...]
    lexicon_weight: float
    log_likelihood: dict[str, tuple[float, ...]]  # feature -> log P(feature | class), per class

    @classmethod
    def from_counts(cls, d: dict) -> CategoryModel:
        """From what training stores: per class the number of texts, per feature the texts of each class
        holding it, and the smoothing alpha (add-alpha over the vocabulary)."""
        classes = tuple(sorted(d["prior"]))
        n = sum(d["prior"].values())
        counts: dict[str, dict[str, int]] = d["counts"]
        alpha, vocabulary = d["alpha"], len(counts)
        totals = {c: sum(fc.get(c, 0) for fc in counts.values()) for c in classes}
        denominators = [math.log(totals[c] + alpha * vocabulary) for c in classes]
        log_likelihood = {
            f: tuple(math.log(fc.get(c, 0) + alpha) - denominators[i] for i, c in enumerate(classes))
            for f, fc in counts.items()
        }
        log_prior = tuple(math.log((d["prior"][c] + 1) / (n + len(classes))) for c in classes)
        return cls(d["language"], classes, log_prior, d["lexicon_weight"], log_likelihood)

    @classmethod
    def load(cls, path: Path) -> CategoryModel:
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            return cls.from_counts(json.load(fh))

    def predict(self, feats: set[str]) -> str:
        get = self.log_likelihood.get
        rows = [row for f in feats if not f.startswith("lex:") and (row := get(f)) is not None]
        columns = zip(*rows, strict=True) if rows else ((0.0,) for _ in self.classes)
        scores = [p + sum(column) for p, column in zip(self.log_prior, columns, strict=True)]
        for f in feats:
            if f.startswith("lex:") and (row := get(f)) is not None:
                scores = [score + self.lexicon_weight * v for score, v in zip(scores, row, strict=True)]
        return self.classes[max(range(len(scores)), key=lambda i: (scores[i], -i))]


def category_features(ngrams, lexicon_category: str | None) -> set[str]:
    """What the category model reads: the text's n-grams and the category its cues point to most."""
    return {*ngrams, f"lex:{lexicon_category or 'none'}"}


def cue_category(weights: dict[str, float]) -> str | None:
    """The category the cues point to most (ties: the earlier in CATEGORIES); None when they name none."""
    return max(weights, key=lambda c: (weights[c], -CATEGORIES.index(c)), default=None)


def decide_category(weights: dict[str, float], model: CategoryModel | None, ngrams) -> str | None:
    """A category the cues point to with at least STRONG_CUE (a sentiment cue of that category, or
    several topic words) decides; otherwise the category model, given what the cues say; without a
    model, the cues' category (None when they name none)."""
    lexical = cue_category(weights)
    if model is None or (lexical is not None and weights[lexical] >= STRONG_CUE):
        return lexical
    return model.predict(category_features(ngrams, lexical))


@dataclass(frozen=True)
class Verdict:
    language: str  # zh, zh-Hant, en, mixed, none
    sentiment: float  # [-1, 1]
    is_negative: bool
    category: str | None  # what the cues point to; "other" for a negative text with none
    cues: tuple[str, ...]

    @property
    def cues_json(self) -> str:
        """The cues as scoring.text_scores and the marts keep them (a JSON list, characters as they are)."""
        return json.dumps(list(self.cues), ensure_ascii=False)


@cache
def _models() -> dict[str, Model]:
    return {lang: Model.load(MODELS / f"{lang}.json.gz") for lang in ("zh", "en")}


@cache
def _category_models() -> dict[str, CategoryModel]:
    return {
        lang: CategoryModel.load(MODELS / f"categories_{lang}.json.gz")
        for lang in ("zh", "en")
        if (MODELS / f"categories_{lang}.json.gz").exists()
    }


class Classifier:
    version = VERSION

    def __init__(self, lexicon: Lexicon | None = None, category_models: dict[str, CategoryModel] | None = None):
        self.lexicon = lexicon or Lexicon()
        self.models = _models()
        self.category_models = _category_models() if category_models is None else category_models

    def read(self, text: str) -> tuple[float, str, object, bool, tuple[set[str], set[str]]]:
        """(log-odds, language, lexicon hit, whether traditional, the text's (Chinese, English) n-grams)."""
        norm, traditional = normalise(strip_mentions(text or ""))
        cjk, latin = script_counts(norm)
        hit = self.lexicon.scan(norm)
        zh, en = self.models["zh"], self.models["en"]
        zh_grams: set[str] = set()
        en_grams: set[str] = set()
        if cjk == 0 and latin == 0:
            language = "none"
            z = 0.5 * hit.score  # emoji and emoticons only
        elif cjk >= 2 and latin >= 2:
            language = "mixed"
            zh_grams, en_grams = set(zh_features(norm)), set(en_features(norm))
            z = zh.bias + zh.ngram_logit(zh_grams) + en.ngram_logit(en_grams) + zh.lexicon_weight * hit.score
        elif cjk >= 1 and cjk >= latin:
            language = "zh-Hant" if traditional else "zh"
            zh_grams = set(zh_features(norm))
            z = zh.bias + zh.ngram_logit(zh_grams) + zh.lexicon_weight * hit.score
        else:
            language = "en"
            en_grams = set(en_features(norm))
            z = en.bias + en.ngram_logit(en_grams) + en.lexicon_weight * hit.score
        return z, language, hit, traditional, (zh_grams, en_grams)

    def ngram_cues(self, grams: tuple[set[str], set[str]], limit: int = NGRAM_CUES) -> list[str]:
        """The n-grams that pushed a text furthest towards negative, as cues: "ngram:<n-gram>", strongest
        first, those worth at least NGRAM_CUE_MIN in log-odds (a bigram inside a longer one is kept too).
        Only each model's n-grams weighing that much are looked at (the Chinese and English n-grams
        never share a string: CJK characters against Latin words)."""
        weights: dict[str, float] = {}
        for model, features in zip((self.models["zh"], self.models["en"]), grams, strict=True):
            strong = model.strongly_negative
            weights.update((f, strong[f]) for f in features if f in strong)
        strongest = sorted((w, f) for f, w in weights.items())[:limit]
        return [f"ngram:{f}" for _, f in strongest]

    def score(self, text: str) -> Verdict:
        z, language, hit, _, grams = self.read(text)
        model = self.models["en" if language == "en" else "zh"]
        threshold = 0.0 if language == "none" else model.threshold
        # Negative needs evidence in the text itself, not only the training
        # corpus's prior (review corpora have no neutral chatter); and a
        # question asks rather than complains unless a strong cue says so.
        evidence = z - (0.0 if language == "none" else model.bias)
        negative = z < threshold and (hit.score < -0.5 or evidence < -EVIDENCE_MIN)
        if negative and hit.is_question and hit.score >= 0 and evidence > -2:
            negative = False
        # The category: what the cues point to strongly, else the category model's reading of a negative
        # text (or of one whose cues name a category: a 1-star review's neutral text can decide it).
        category = cue_category(hit.categories)
        if (negative or category is not None) and language != "none":
            model = self.category_models.get("en" if language == "en" else "zh")
            category = decide_category(hit.categories, model, grams[0] | grams[1])
        if negative and category is None:
            category = "other"
        sentiment = math.tanh(max(min(z, 40.0), -40.0) / 2)
        # Why a negative verdict: the lexicon's cues and the n-gram model's strongest contributions.
        cues = tuple(hit.cues) + (tuple(self.ngram_cues(grams)) if negative else ())
        return Verdict(language, round(sentiment, 4), negative, category, cues)

    def score_many(self, texts) -> list[Verdict]:
        return [self.score(t) for t in texts]
