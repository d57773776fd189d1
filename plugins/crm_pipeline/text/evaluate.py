"""Precision, recall and F1 of the negative class, per language, on labelled text.

    python -m crm_pipeline.text.evaluate --corpora ../shared/data --baselines   # `make eval-text`
    python -m crm_pipeline.text.evaluate PATH [PATH ...] [--held-out] [--baselines]
    python -m crm_pipeline.text.evaluate --sample data/landing   # the generator's labelled texts

``--corpora DIR`` scores the held-out fifth of every corpus of ``corpora.CORPORA``
found in DIR and ends with one line per corpus: our F1 beside the baseline's,
against the target (TARGET_F1 per language).
``--held-out`` scores only the part of a corpus the models were not trained
on (see ``crm_pipeline.text.train``); use it on the corpora the models were
trained from, never leave it off there. ``--baselines`` measures SnowNLP
(Chinese) and VADER (English) side by side on the same texts.
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from dataclasses import dataclass
from pathlib import Path

from crm_pipeline.text import corpora
from crm_pipeline.text.classifier import Classifier
from crm_pipeline.text.safety import KeywordRule

TARGET_F1 = {"zh": 0.90, "en": 0.85}  # negative F1 on each corpus's held-out part (the classifier issue)


@dataclass
class Score:
    n: int
    negatives: int
    precision: float
    recall: float
    f1: float

    def row(self) -> str:
        return f"{self.n:>6} {self.negatives:>6} {self.precision:>9.3f} {self.recall:>7.3f} {self.f1:>6.3f}"


def score(predicted: list[bool], gold: list[bool]) -> Score:
    tp = sum(p and g for p, g in zip(predicted, gold, strict=True))
    fp = sum(p and not g for p, g in zip(predicted, gold, strict=True))
    fn = sum(g and not p for p, g in zip(predicted, gold, strict=True))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return Score(len(gold), sum(gold), precision, recall, f1)


def held_out(examples: list[corpora.Example]) -> list[corpora.Example]:
    """The part no model was trained on (crm_pipeline.text.train holds out the same fifth of every corpus)."""
    return corpora.split(examples)[1]


def categories(rows: list[corpora.Labelled], clf: Classifier, safety: KeywordRule | None = None) -> list[dict]:
    """Category accuracy per language on the labelled category set, all of it and its held-out part
    (the same crc32 rule), the share of real negatives put in "other", and the safety flag as the mart
    raises it (the severity seed's safety keywords in the text or its cues): how many of the texts a
    reader flagged it finds, and how many others it flags. Rows a reader found not negative are left out."""
    safety = safety or KeywordRule.from_seeds()
    out = []
    for language in sorted({r.language for r in rows}):
        negative = [r for r in rows if r.language == language and r.category != "not_negative"]
        scored = []
        for r in negative:  # each text once
            verdict = clf.score(r.text)
            flagged = bool(safety.hits(r.text, verdict.cues_json))
            scored.append((r, verdict.category or "other", flagged))
        for part in ("all", "held out"):
            chosen = [(r, g, f) for r, g, f in scored if part == "all" or corpora.is_test(r.text)]
            if not chosen:
                continue
            got = [g for _, g, _ in chosen]
            right = sum(g == r.category for r, g, _ in chosen)
            out.append({
                "language": language, "part": part, "texts": len(chosen), "accuracy": right / len(chosen),
                "other_share": got.count("other") / len(chosen),
                "safety_texts": sum(r.safety for r, _, _ in chosen),
                "safety_found": sum(r.safety and f for r, _, f in chosen),
                "safety_false": sum(f and not r.safety for r, _, f in chosen),
            })  # fmt: skip
    return out


def safety_rate(found: list[corpora.Corpus], data_dir: Path, safety: KeywordRule | None = None) -> dict:
    """How often the safety flag is raised on the corpora's texts, negative and positive: what a brand's
    on-call people would be sent, of which the labelled set says how much is a hazard."""
    safety = safety or KeywordRule.from_seeds()
    counts = {"negatives": 0, "flagged": 0, "positives": 0, "flagged_positives": 0}
    for corpus in found:
        for e in corpora.load(corpus, data_dir):
            hit = bool(safety.hits(e.text))
            counts["negatives" if e.is_negative else "positives"] += 1
            counts["flagged" if e.is_negative else "flagged_positives"] += hit
    return counts


def verdicts(results: list[dict]) -> list[str]:
    """Per corpus: ours against the baseline and the target, one line each."""
    lines, by_corpus = [], {}
    for r in results:
        by_corpus.setdefault(r["corpus"], {})["ours" if r["classifier"].startswith("crm") else "base"] = r
    for corpus, pair in by_corpus.items():
        ours, base = pair["ours"], pair.get("base")
        target = TARGET_F1.get(ours["language"][:2])
        beats = base is None or ours["f1"] > base["f1"]
        met = target is not None and ours["f1"] >= target and beats
        gap = "" if met or target is None else f" (short by {max(target - ours['f1'], 0):.3f})"
        lines.append(
            f"{corpus:<34} {ours['language']:<5} F1 {ours['f1']:.3f}  "
            f"{(base['classifier'] + ' ' + format(base['f1'], '.3f')) if base else 'no baseline':<20}"
            f" target {target if target is not None else '-'}: {'met' if met else 'missed'}{gap}"
        )
    return lines


def snownlp_negative(texts: list[str]) -> list[bool]:
    from snownlp import SnowNLP

    return [SnowNLP(t).sentiments < 0.5 if t.strip() else False for t in texts]


def vader_negative(texts: list[str]) -> list[bool]:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    analyser = SentimentIntensityAnalyzer()
    return [analyser.polarity_scores(t)["compound"] < -0.05 for t in texts]


def sample_examples(landing: Path, truth: Path) -> list[corpora.Example]:
    """The generator's labelled texts: join its truth (source, record id) to the landed text."""
    wanted = {}
    with (truth / "texts.csv").open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            wanted[(row["source"], row["record_id"])] = (row["is_negative"] == "1", row["language"])
    sources = {
        "forum": ("forum_posts", "post_id", "content"),
        "chat": ("chat_messages", "msg_id", "content"),
        "review": ("reviews", "review_id", "content"),
        "refund": ("refunds", "refund_id", "reason"),
    }
    from crm_pipeline.sources.files import read_records

    out = []
    for source, (entity, key, field) in sources.items():
        for path in sorted((landing / entity).glob("*")):
            _, _, records = read_records(path)
            for raw in records:
                rec = raw.record or {}
                label = wanted.get((source, rec.get(key)))
                if label is not None:
                    out.append(corpora.Example(rec.get(field) or "", label[0], label[1]))
    return out


def evaluate(name: str, examples: list[corpora.Example], baselines: bool, clf: Classifier) -> list[dict]:
    results = []
    by_lang: dict[str, list[corpora.Example]] = {}
    for e in examples:
        by_lang.setdefault(e.language or "?", []).append(e)
    for lang, rows in sorted(by_lang.items()):
        texts, gold = [e.text for e in rows], [e.is_negative for e in rows]
        t0 = time.perf_counter()
        verdicts = clf.score_many(texts)
        elapsed = time.perf_counter() - t0
        ours = score([v.is_negative for v in verdicts], gold)
        results.append({"corpus": name, "language": lang, "classifier": f"crm {clf.version}", **vars(ours)})
        print(f"{name:<34} {lang:<8} {'crm ' + clf.version:<14} {ours.row()}   {len(texts) / elapsed:>9,.0f}/s")
        if baselines and lang.startswith("zh"):
            t0 = time.perf_counter()
            base = score(snownlp_negative(texts), gold)
            rate = len(texts) / (time.perf_counter() - t0)
            results.append({"corpus": name, "language": lang, "classifier": "SnowNLP 0.12.3", **vars(base)})
            print(f"{name:<34} {lang:<8} {'SnowNLP':<14} {base.row()}   {rate:>9,.0f}/s")
        if baselines and lang == "en":
            t0 = time.perf_counter()
            base = score(vader_negative(texts), gold)
            rate = len(texts) / (time.perf_counter() - t0)
            results.append({"corpus": name, "language": lang, "classifier": "VADER 3.3.2", **vars(base)})
            print(f"{name:<34} {lang:<8} {'VADER':<14} {base.row()}   {rate:>9,.0f}/s")
    return results


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("paths", type=Path, nargs="*", help="labelled corpora (waimai, vader or labelled CSV format)")
    ap.add_argument("--format", choices=["waimai", "vader", "labelled"], default=None)
    ap.add_argument("--held-out", action="store_true", help="score only the part the models never saw")
    ap.add_argument("--baselines", action="store_true", help="also run SnowNLP and VADER on the same texts")
    ap.add_argument("--sample", type=Path, default=None, help="a generated landing dir (truth beside it)")
    ap.add_argument("--corpora", type=Path, default=None, help="the shared data dir: every known corpus, held out")
    ap.add_argument("--categories", action="store_true", help="with --corpora: category accuracy on the labelled set")
    ap.add_argument(
        "--vader-negative-at",
        type=float,
        default=corpora.VADER_NEGATIVE_AT,
        help="VADER-format files: a mean rating at or below this is negative (0: any mean below 0)",
    )
    ap.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = ap.parse_args(argv)
    if not args.paths and not args.sample and not args.corpora:
        ap.error("give at least one labelled corpus path, --corpora or --sample")
    found = corpora.available(args.corpora) if args.corpora else []
    if args.corpora and not found:
        ap.error(f"{args.corpora}: none of the known corpora is there")
    clf = Classifier()
    head = ["corpus".ljust(34), "language".ljust(8), "classifier".ljust(14), "texts".rjust(6), "neg".rjust(6)]
    print(" ".join([*head, "precision", " recall", "    F1", "   texts/s"]))
    results = []
    for path in args.paths:
        if not path.exists():
            ap.error(f"{path}: no such file")
        examples = corpora.read(path, args.format, args.vader_negative_at)
        name = path.name
        if args.held_out:
            examples = held_out(examples)
            name += " (held out)"
        results += evaluate(name, examples, args.baselines, clf)
    for corpus in found:
        results += evaluate(corpus.name, held_out(corpora.load(corpus, args.corpora)), args.baselines, clf)
    if args.sample:
        truth = args.sample.parent / "ground_truth"
        results += evaluate(f"sample ({args.sample})", sample_examples(args.sample, truth), args.baselines, clf)
    if found:
        print("\nheld-out F1 of the negative class, ours beside the baseline, against the target:")
        print("\n".join(verdicts(results)))
    if args.categories and found:
        print(
            f"\ncomplaint categories ({corpora.CATEGORY_LABELS.name}; target: accuracy >= 0.80, other <= 15%, "
            "on the held-out part; 'all' includes the part the category models learnt from):"
        )
        for c in categories(corpora.category_set(args.corpora), clf):
            results.append({"corpus": "categories", **c})
            print(
                f"{c['language']:<4} {c['part']:<9} {c['texts']:>4} texts  accuracy {c['accuracy']:.3f}  "
                f"other {c['other_share']:.1%}  safety flag: {c['safety_found']}/{c['safety_texts']} found, "
                f"{c['safety_false']} others flagged"
            )
    if args.categories and found:
        flagged = safety_rate(found, args.corpora)
        results.append({"corpus": "safety flag", **flagged})
        print(
            f"safety flag (keywords in the text alone) on every real negative: {flagged['flagged']} of "
            f"{flagged['negatives']} ({flagged['flagged'] / flagged['negatives']:.2%}), on every positive: "
            f"{flagged['flagged_positives']} of {flagged['positives']}"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
