"""Train the classifier's n-gram models (a developer's command, not part of a run).

    python -m crm_pipeline.text.train [--data ../shared/data]

Trained on every labelled corpus of ``corpora.CORPORA`` found under the data
directory, each minus its held-out fifth (``crc32(text) % 5 == 0``, the same rule
in every corpus, so a text two corpora share is held out of both, and no
training text equals a held-out text of any corpus); what is held out is what
``crm_pipeline.text.evaluate --corpora`` scores.

Logistic regression with L2 over binary n-gram features (min document
frequency 2) plus one lexicon column; customer reviews weigh DOMAIN_WEIGHT
times other text (tweets, editorials); the regularisation strength and the
decision threshold are chosen on a validation tenth of the review corpora's
training part, then the model is refit on the whole training part. Weights
under 1e-3 are dropped.

The category models (``categories_<language>.json.gz``): naive Bayes over the
n-grams and the category the cues point to, from the training part of the
labelled category set (``category_labels.csv``, the same held-out rule); the
smoothing and the cues' weight are chosen by 5-fold cross-validation inside
that part. ``--only sentiment`` or ``--only categories`` trains one kind.
"""

from __future__ import annotations

import argparse
import gzip
import json
import zlib
from collections import Counter
from pathlib import Path

import numpy as np
from scipy import sparse
from scipy.optimize import minimize

from crm_pipeline.text import corpora
from crm_pipeline.text.classifier import (
    MODELS,
    CategoryModel,
    Classifier,
    category_features,
    cue_category,
    decide_category,
    en_features,
    zh_features,
)
from crm_pipeline.text.lexicon import Lexicon, normalise

DOMAIN_WEIGHT = 3.0
DATA_DIR = Path(__file__).resolve().parents[3].parent / "shared" / "data"


def _design(docs: list[list[str]], lex: list[float], vocab: dict[str, int]) -> sparse.csr_matrix:
    rows, cols = [], []
    for i, feats in enumerate(docs):
        for j in {vocab[f] for f in feats if f in vocab}:
            rows.append(i)
            cols.append(j)
    x = sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(docs), len(vocab)))
    return sparse.hstack([x, sparse.csr_matrix(np.array(lex).reshape(-1, 1))]).tocsr()


def _fit(x: sparse.csr_matrix, y: np.ndarray, c: float, sw: np.ndarray) -> np.ndarray:
    """y = 1 for positive (not negative), sw = sample weights. Returns [weights..., bias]."""
    n, d = x.shape
    sw = sw / sw.mean()
    lam = 1.0 / (c * n)

    def loss(w):
        z = x @ w[:-1] + w[-1]
        p = 1 / (1 + np.exp(-z))
        eps = 1e-12
        ll = -np.mean(sw * (y * np.log(p + eps) + (1 - y) * np.log(1 - p + eps)))
        reg = 0.5 * lam * np.dot(w[:-2], w[:-2])  # the lexicon column and bias are not shrunk
        r = sw * (p - y)
        g = x.T @ r / n
        g[:-1] += lam * w[:-2]
        return ll + reg, np.append(g, np.mean(r))

    w0 = np.zeros(d + 1)
    res = minimize(loss, w0, jac=True, method="L-BFGS-B", options={"maxiter": 500})
    return res.x


def _neg_f1(z: np.ndarray, neg: np.ndarray, threshold: float) -> float:
    pred = z < threshold
    tp = np.sum(pred & neg)
    if tp == 0:
        return 0.0
    p, r = tp / pred.sum(), tp / neg.sum()
    return 2 * p * r / (p + r)


def train(examples: list[corpora.Example], language: str, lexicon: Lexicon, in_domain: list[bool]) -> dict:
    featurise = zh_features if language == "zh" else en_features
    docs, lex = [], []
    for e in examples:
        norm, _ = normalise(e.text)
        docs.append(featurise(norm))
        lex.append(lexicon.scan(norm).score)
    y = np.array([0.0 if e.is_negative else 1.0 for e in examples])
    df = Counter(f for feats in docs for f in set(feats))
    vocab = {f: i for i, f in enumerate(sorted(f for f, n in df.items() if n >= 2))}
    x = _design(docs, lex, vocab)

    # Validation: a tenth (by content) of the review corpora, the texts the
    # models are for, picks C and the threshold.
    val = np.array([d and corpora.is_test(e.text + "#val", 10) for e, d in zip(examples, in_domain, strict=True)])
    # In-domain (review) texts weigh DOMAIN_WEIGHT times a tweet.
    sw = np.array([DOMAIN_WEIGHT if d else 1.0 for d in in_domain])
    best = (-1.0, 1.0, 0.0)
    for c in (0.5, 1.0, 2.0, 5.0, 10.0):
        w = _fit(x[~val], y[~val], c, sw[~val])
        z = x[val] @ w[:-1] + w[-1]
        for t in np.arange(-1.5, 1.51, 0.1):
            f1 = _neg_f1(z, y[val] == 0, t)
            if f1 > best[0]:
                best = (f1, c, float(t))
    f1, c, threshold = best
    w = _fit(x, y, c, sw)
    inv = {i: f for f, i in vocab.items()}
    weights = {inv[i]: round(float(v), 4) for i, v in enumerate(w[:-2]) if abs(v) >= 1e-3}
    print(
        f"{language}: {len(examples)} training texts, {len(vocab)} features ({len(weights)} kept), "
        f"C={c}, threshold={threshold:.2f}, validation F1(neg)={f1:.3f}, lexicon weight={w[-2]:.3f}"
    )
    return {
        "language": language,
        "bias": round(float(w[-1]), 4),
        "lexicon_weight": round(float(w[-2]), 4),
        "threshold": round(threshold, 2),
        "trained_on": None,
        "weights": weights,
    }


CATEGORY_ALPHAS = (0.05, 0.1, 0.3, 1.0)
CATEGORY_LEXICON_WEIGHTS = (1, 2, 3, 5, 10)
CATEGORY_FOLDS = 5


def category_fold(text: str) -> int:
    """A training text's cross-validation fold: the next digit of the same crc32 that holds out a fifth."""
    return zlib.crc32(text.encode("utf-8")) // corpora.TEST_MODULUS % CATEGORY_FOLDS


def category_counts(rows: list[tuple[set[str], str]], alpha: float, lexicon_weight: float, language: str) -> dict:
    """What CategoryModel.from_counts reads, from (features, category) rows."""
    prior = Counter(category for _, category in rows)
    counts: dict[str, Counter] = {}
    for feats, category in rows:
        for f in feats:
            counts.setdefault(f, Counter())[category] += 1
    return {
        "language": language,
        "alpha": alpha,
        "lexicon_weight": lexicon_weight,
        "prior": dict(sorted(prior.items())),
        "counts": {f: dict(sorted(c.items())) for f, c in sorted(counts.items())},
    }


def train_categories(labelled: list[corpora.Labelled], language: str, clf: Classifier) -> dict:
    """The category model of one language, from the labelled category set's training part (never a held-out
    row, nor a row a reader found not negative): smoothing and the weight of the cues' category chosen by
    5-fold cross-validation within that part, of the whole rule (a strong cue decides, else the model)."""
    rows = []  # (the cues' category weights, n-grams, the reader's category, fold)
    for r in labelled:
        if r.language != language or r.category == "not_negative" or corpora.is_test(r.text):
            continue
        _, _, hit, _, (zh_grams, en_grams) = clf.read(r.text)
        rows.append((hit.categories, zh_grams | en_grams, r.category, category_fold(r.text)))
    if not rows:
        raise SystemExit(f"no {language} rows in the labelled category set's training part")

    def counts(part, alpha: float, lexicon_weight: float) -> dict:
        features = [(category_features(ngrams, cue_category(cats)), c) for cats, ngrams, c, _ in part]
        return category_counts(features, alpha, lexicon_weight, language)

    best = (-1.0, 0.0, 0.0)
    for alpha in CATEGORY_ALPHAS:
        for lexicon_weight in CATEGORY_LEXICON_WEIGHTS:
            right = 0
            for k in range(CATEGORY_FOLDS):
                model = CategoryModel.from_counts(counts([r for r in rows if r[3] != k], alpha, lexicon_weight))
                right += sum(decide_category(cats, model, ngrams) == c for cats, ngrams, c, fold in rows if fold == k)
            if right / len(rows) > best[0]:
                best = (right / len(rows), alpha, lexicon_weight)
    accuracy, alpha, lexicon_weight = best
    print(
        f"{language} categories: {len(rows)} labelled training texts, alpha={alpha}, lexicon weight="
        f"{lexicon_weight}, cross-validated accuracy={accuracy:.3f}"
    )
    return counts(rows, alpha, lexicon_weight)


def _write(path: Path, model: dict) -> None:
    payload = json.dumps(model, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode("utf-8")
    with path.open("wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz:
        gz.write(payload)  # mtime 0: the same training gives the same bytes


def training_examples(data_dir: Path, language: str) -> tuple[list[corpora.Example], list[bool], list[str]]:
    """Every corpus's training part in this language: (examples, whether each is a review, what was used)."""
    found = [c for c in corpora.available(data_dir) if c.language == language]
    examples, reviews, sources = [], [], []
    for corpus in found:
        rows = corpora.load(corpus, data_dir)
        # The split reads the text alone, so a text held out of one corpus is held out of every corpus.
        kept = corpora.split(rows)[0]
        examples += kept
        reviews += [corpus.reviews] * len(kept)
        sources.append(f"{corpus.name} ({corpus.path}): {len(kept)} of {len(rows)}")
    return examples, reviews, sources


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Train the n-gram models from the labelled corpora.")
    ap.add_argument("--data", type=Path, default=DATA_DIR, help="the shared data directory (corpora.CORPORA)")
    ap.add_argument("--out", type=Path, default=MODELS)
    ap.add_argument(
        "--only", choices=("sentiment", "categories"), default=None, help="train one kind of model (default: both)"
    )
    args = ap.parse_args(argv)
    lexicon = Lexicon()
    args.out.mkdir(parents=True, exist_ok=True)
    held_out = f"held out everywhere: crc32(text) % {corpora.TEST_MODULUS} == 0"
    for language in ("zh", "en"):
        if args.only in (None, "sentiment"):
            examples, reviews, sources = training_examples(args.data, language)
            if not examples:
                raise SystemExit(f"no {language} corpus under {args.data}")
            model = train(examples, language, lexicon, reviews)
            model["trained_on"] = [*sources, held_out]
            _write(args.out / f"{language}.json.gz", model)
    if args.only in (None, "categories"):
        labelled = corpora.category_set(args.data)
        clf = Classifier(lexicon, category_models={})  # the cues' own categories, with no category model
        for language in ("zh", "en"):
            model = train_categories(labelled, language, clf)
            model["trained_on"] = [f"{corpora.CATEGORY_LABELS.name}, {language}, training part", held_out]
            _write(args.out / f"categories_{language}.json.gz", model)


if __name__ == "__main__":
    main()
