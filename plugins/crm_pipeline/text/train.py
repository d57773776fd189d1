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
"""

from __future__ import annotations

import argparse
import gzip
import json
from collections import Counter
from pathlib import Path

import numpy as np
from scipy import sparse
from scipy.optimize import minimize

from crm_pipeline.text import corpora
from crm_pipeline.text.classifier import MODELS, en_features, zh_features
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
    args = ap.parse_args(argv)
    lexicon = Lexicon()
    args.out.mkdir(parents=True, exist_ok=True)
    for language in ("zh", "en"):
        examples, reviews, sources = training_examples(args.data, language)
        if not examples:
            raise SystemExit(f"no {language} corpus under {args.data}")
        model = train(examples, language, lexicon, reviews)
        model["trained_on"] = [*sources, f"held out everywhere: crc32(text) % {corpora.TEST_MODULUS} == 0"]
        payload = json.dumps(model, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode("utf-8")
        with (args.out / f"{language}.json.gz").open("wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz:
            gz.write(payload)  # mtime 0: the same training gives the same bytes


if __name__ == "__main__":
    main()
