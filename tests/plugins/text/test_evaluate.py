"""The evaluation command: figures per language, formats, the held-out split, and its failure paths."""

from __future__ import annotations

import json

import pytest

from crm_pipeline.text import corpora
from crm_pipeline.text.evaluate import main, score


def test_precision_recall_f1_by_hand():
    # tp 2 (0, 1), fp 1 (3), fn 1 (2): precision 2/3, recall 2/3, F1 2/3.
    s = score([True, True, False, True, False], [True, True, True, False, False])
    assert (s.n, s.negatives) == (5, 3)
    assert s.precision == pytest.approx(2 / 3) and s.recall == pytest.approx(2 / 3) and s.f1 == pytest.approx(2 / 3)
    assert score([False], [False]).f1 == 0.0  # no negatives predicted or present: 0, not a division error


def test_labelled_csv_per_language(tmp_path, capsys):
    path = tmp_path / "mine.csv"
    path.write_text(
        "text,is_negative,language\n"
        "快递太慢了,1,zh\n"
        "质量太差,1,zh\n"
        "很好用,0,zh\n"
        "收到了,1,zh\n"  # labelled negative, reads neutral: a miss
        "Love it,0,en\n"
        "terrible,1,en\n",
        encoding="utf-8",
    )
    out = tmp_path / "figures.json"
    assert main([str(path), "--json", str(out)]) == 0
    figures = {r["language"]: r for r in json.loads(out.read_text())}
    # zh: tp 2, fp 0, fn 1 -> precision 1, recall 2/3, F1 0.8.
    assert figures["zh"]["precision"] == 1.0 and figures["zh"]["recall"] == pytest.approx(2 / 3)
    assert figures["zh"]["f1"] == pytest.approx(0.8)
    assert figures["en"]["f1"] == 1.0 and figures["en"]["n"] == 2
    assert "mine.csv" in capsys.readouterr().out


def test_vader_format_and_its_negative_threshold(tmp_path):
    path = tmp_path / "snippets.txt"
    path.write_text("1_1\t-2.1\tawful\n1_2\t-0.15\tnew title\n1_3\t1.5\tnice\n\n", encoding="utf-8")
    assert corpora.guess_format(path) == "vader"
    assert [e.is_negative for e in corpora.read(path)] == [True, False, False]  # -0.15 is neutral
    assert [e.is_negative for e in corpora.read(path, vader_negative_at=0)] == [True, True, False]


def test_held_out_split_is_by_content_and_disjoint():
    examples = [corpora.Example(f"text {i}", i % 2 == 0) for i in range(500)]
    examples += examples[:50]  # duplicates must land on the same side
    train, test = corpora.split(examples, 5)
    assert {e.text for e in train}.isdisjoint({e.text for e in test})
    assert 60 < len(test) < 160  # about a fifth


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("label,review\n2,好\n", "line 2: expected label 0/1"),
        ("1\tbad\tx\n", "rating 'bad' is not a number"),
        ("words,label\nx,1\n", "needs columns text and is_negative"),
    ],
)
def test_a_malformed_corpus_says_where(tmp_path, content, message):
    path = tmp_path / "broken.csv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        corpora.read(path)


def test_a_missing_path_is_a_clear_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main([str(tmp_path / "nope.csv")])
    assert exc.value.code == 2
    assert "no such file" in capsys.readouterr().err


def test_a_corpus_with_categories_is_read_per_category(tmp_path):
    path = tmp_path / "real" / "text" / "zh_online_shopping_books_computers_hotels.csv"
    path.parent.mkdir(parents=True)
    path.write_text("cat,label,review\n书籍,1,好书\n酒店,0,房间太吵\n酒店,1,干净\n", encoding="utf-8")
    assert corpora.guess_format(path) == "waimai"
    hotels = next(c for c in corpora.CORPORA if c.domain == "酒店")
    assert [(e.text, e.is_negative, e.domain) for e in corpora.load(hotels, tmp_path)] == [
        ("房间太吵", True, "酒店"), ("干净", False, "酒店"),
    ]  # fmt: skip


def test_no_held_out_text_is_trained_on_in_any_corpus(tmp_path):
    """Two corpora share texts (as the online-shopping hotels and ChnSentiCorp do): a text held out of
    one is held out of the other, and nothing held out anywhere is in the training set."""
    from crm_pipeline.text.train import training_examples

    shared = [f"共同的评论{i}" for i in range(60)]
    own = [f"自己的评论{i}" for i in range(60)]
    (tmp_path / "real" / "text").mkdir(parents=True)
    (tmp_path / "waimai_10k.csv").write_text(
        "label,review\n" + "".join(f"{i % 2},{t}\n" for i, t in enumerate(shared + own)), encoding="utf-8"
    )
    (tmp_path / "real" / "text" / "zh_ChnSentiCorp_htl_all.csv").write_text(
        "label,review\n" + "".join(f"{i % 2},{t}\n" for i, t in enumerate(shared)), encoding="utf-8"
    )
    examples, reviews, sources = training_examples(tmp_path, "zh")
    held = {t for t in shared + own if corpora.is_test(t)}
    assert 10 < len(held) < 50  # about a fifth
    trained = [e.text for e in examples]
    assert held.isdisjoint(trained)
    # Everything else is trained on, once per corpus it is in.
    assert sorted(trained) == sorted([t for t in shared + own if t not in held] + [t for t in shared if t not in held])
    assert len(sources) == 2 and all(reviews)


def test_the_shared_corpora_keep_their_held_out_fifth_out_of_training():
    """The real corpora, when they are beside the repo: per language, training and held-out texts are disjoint."""
    from crm_pipeline.text.train import DATA_DIR, training_examples

    if not corpora.available(DATA_DIR):
        pytest.skip(f"no corpora under {DATA_DIR}")
    for language in ("zh", "en"):
        examples, _, _ = training_examples(DATA_DIR, language)
        held = {
            e.text.strip()
            for c in corpora.available(DATA_DIR)
            if c.language == language
            for e in corpora.split(corpora.load(c, DATA_DIR))[1]
        }
        assert examples and held and held.isdisjoint(e.text.strip() for e in examples)


def test_each_corpus_is_judged_against_its_target_and_baseline():
    from crm_pipeline.text.evaluate import verdicts

    def row(corpus, language, classifier, f1):
        return {"corpus": corpus, "language": language, "classifier": classifier, "f1": f1}

    lines = verdicts([
        row("a", "zh", "crm x", 0.93), row("a", "zh", "SnowNLP 0.12.3", 0.85),
        row("b", "zh", "crm x", 0.85), row("b", "zh", "SnowNLP 0.12.3", 0.80),
        row("c", "en", "crm x", 0.90), row("c", "en", "VADER 3.3.2", 0.92),  # above target, below the baseline
    ])  # fmt: skip
    assert lines[0].endswith("target 0.9: met")
    assert lines[1].endswith("target 0.9: missed (short by 0.050)")
    assert lines[2].endswith("target 0.85: missed (short by 0.000)")


def test_the_category_set_joins_labels_to_corpus_rows_and_says_what_is_missing(tmp_path):
    (tmp_path / "waimai_10k.csv").write_text("label,review\n1,好吃\n0,送得太慢\n0,太贵了\n", encoding="utf-8")
    labels = tmp_path / "labels.csv"
    labels.write_text(
        "corpus,row_id,category,safety\nwaimai_10k (delivery),2,logistics,0\nwaimai_10k (delivery),3,price,0\n",
        encoding="utf-8",
    )
    rows = corpora.category_set(tmp_path, labels)
    assert [(r.text, r.category, r.language) for r in rows] == [
        ("送得太慢", "logistics", "zh"),
        ("太贵了", "price", "zh"),
    ]
    labels.write_text("corpus,row_id,category,safety\nwaimai_10k (delivery),9,price,0\n", encoding="utf-8")
    with pytest.raises(ValueError, match="line 2: waimai_10k \\(delivery\\) has no row 9"):
        corpora.category_set(tmp_path, labels)
    labels.write_text("corpus,row_id,category,safety\nmy forum,1,price,0\n", encoding="utf-8")
    with pytest.raises(ValueError, match="unknown corpus 'my forum'"):
        corpora.category_set(tmp_path, labels)


def test_category_accuracy_other_share_and_safety_by_hand():
    from types import SimpleNamespace

    from crm_pipeline.text.evaluate import categories
    from crm_pipeline.text.safety import KeywordRule

    said = {"a": "logistics", "b": None, "c起火": "price", "d起火": "product_quality", "e": "service", "f": "price"}
    cues = {"f": ("冒烟",)}
    clf = SimpleNamespace(
        score=lambda text: SimpleNamespace(
            category=said[text], cues_json=json.dumps(list(cues.get(text, ())), ensure_ascii=False)
        )
    )

    def row(text, category, safety=False):
        return corpora.Labelled("x", text, "zh", text, category, safety)

    rows = [row("a", "logistics"), row("b", "other"), row("c起火", "service"), row("d起火", "product_quality", True),
            row("e", "not_negative"), row("f", "price", True)]  # fmt: skip
    safety = KeywordRule(("起火", "冒烟"), {})
    everything = next(c for c in categories(rows, clf, safety) if c["part"] == "all")
    # 5 negatives (e is not one): a, b (no category is "other"), d and f right, c wrong: accuracy 4/5;
    # "other" for 1 of 5. The flag: d (its text) and f (its cue) of the 2 safety texts, and c, not one.
    assert (everything["texts"], everything["accuracy"], everything["other_share"]) == (5, 0.8, 0.2)
    assert (everything["safety_texts"], everything["safety_found"], everything["safety_false"]) == (2, 2, 1)


def test_the_repos_category_set_has_300_real_negatives_per_language_each_found():
    from collections import Counter

    from crm_pipeline.text.train import DATA_DIR

    with corpora.CATEGORY_LABELS.open(encoding="utf-8") as fh:
        import csv

        rows = list(csv.DictReader(fh))
    allowed = {"product_quality", "logistics", "service", "price", "usability", "other", "not_negative"}
    assert {r["category"] for r in rows} <= allowed and {r["safety"] for r in rows} <= {"0", "1"}
    language = {c.name: c.language for c in corpora.CORPORA}
    assert min(Counter(language[r["corpus"]] for r in rows).values()) >= 300
    assert len({(r["corpus"], r["row_id"]) for r in rows}) == len(rows)  # no row labelled twice
    if corpora.available(DATA_DIR):  # every label finds its text
        found = corpora.category_set(DATA_DIR)
        assert len(found) == len(rows)


def test_the_category_model_learns_from_the_training_part_only(capsys):
    """No held-out row of the labelled category set, and no row a reader found not negative, reaches the
    category model: a word only they hold is not in its vocabulary, and its class counts are the rest's."""
    from crm_pipeline.text.classifier import Classifier
    from crm_pipeline.text.train import train_categories

    def texts(held_out: bool, n: int, stem: str) -> list[str]:
        found, i = [], 0
        while len(found) < n:
            t = f"{stem}{i}号坏了"
            if corpora.is_test(t) == held_out:
                found.append(t)
            i += 1
        return found

    def row(text, category):
        return corpora.Labelled("x", text, "zh", text, category, False)

    train_rows = [row(t, "product_quality") for t in texts(False, 6, "甲")] + [
        row(t, "logistics") for t in texts(False, 4, "乙")
    ]
    held = [row(t, "price") for t in texts(True, 3, "丙")]
    not_negative = [row(t, "not_negative") for t in texts(False, 2, "丁")]
    model = train_categories(train_rows + held + not_negative, "zh", Classifier(category_models={}))
    assert model["prior"] == {"logistics": 4, "product_quality": 6}
    assert (
        "丙" not in model["counts"] and "丁" not in model["counts"] and model["counts"]["甲"] == {"product_quality": 6}
    )
    assert "cross-validated accuracy" in capsys.readouterr().out
