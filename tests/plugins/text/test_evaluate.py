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
