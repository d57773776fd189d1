"""Incremental scoring into scoring.text_scores, on DuckDB and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
from zoneinfo import ZoneInfo

from crm_pipeline.load.loader import load_landing
from crm_pipeline.load.warehouse import Warehouse
from crm_pipeline.text.classifier import Classifier
from crm_pipeline.text.score import prune, score_pending

RUN = dt.date(2026, 11, 22)
SH = ZoneInfo("Asia/Shanghai")
POST = (
    '{{"post_id": "{id}", "topic_id": "t1", "user_id": "u1", '
    '"created_at": "2026-11-20T10:00:00+08:00", "content": {text}}}\n'
)
INJECTION = "'); drop table orders;-- {{ var('x') }} {% raw %}"


def _land(landing, name, posts):
    (landing / "forum_posts").mkdir(exist_ok=True)
    lines = "".join(POST.format(id=i, text=json.dumps(t, ensure_ascii=False)) for i, t in posts)
    (landing / "forum_posts" / name).write_text(lines, encoding="utf-8")


def _scores(wh):
    return wh.fetchall(
        "select source, record_id, classifier_version, is_negative, category from scoring.text_scores "
        "order by record_id, classifier_version, is_negative"
    )


def test_only_new_or_edited_texts_are_scored_and_a_new_version_rescores(crm_env):
    landing = crm_env["landing"]
    _land(landing, "a.jsonl", [("p1", "快递太慢了"), ("p2", "Love it"), ("p3", INJECTION)])
    (landing / "chat_messages").mkdir()
    (landing / "chat_messages" / "c.csv").write_text(
        "msg_id,group_id,sender_id,sent_at,msg_type,content\n"
        "m1,g1,w1,2026-11-20 10:00:00,text,客服态度很差\n"
        "m2,g1,w1,2026-11-20 10:01:00,image,[image]\n",
        encoding="utf-8",
    )
    clf = Classifier()
    with Warehouse.from_url(crm_env["url"]) as wh:
        for entity in ("forum_posts", "chat_messages"):
            load_landing(wh, entity, landing, RUN, SH)
        first = score_pending(wh, clf)
        assert first.scored == 4 and first.by_source == {"forum": 3, "chat": 1, "review": 0, "refund": 0}
        assert ("chat", "m1", clf.version, True, "service") in _scores(wh)
        assert ("forum", "p1", clf.version, True, "logistics") in _scores(wh)
        # The injection text is stored and scored verbatim; no table was touched.
        assert wh.fetchone("select content from raw.forum_posts where post_id = 'p3'")[0] == INJECTION

        # Nothing new: nothing scored.
        assert score_pending(wh, clf).scored == 0

        # An edit of p2 arrives as a new version: only that text is scored.
        _land(landing, "b.jsonl", [("p2", "Stopped working after a week, poor quality")])
        load_landing(wh, "forum_posts", landing, RUN, SH)
        edit = score_pending(wh, clf)
        assert edit.scored == 1 and edit.by_source["forum"] == 1
        p2 = wh.fetchall("select is_negative from scoring.text_scores where record_id = 'p2' order by is_negative")
        assert p2 == [(False,), (True,)]  # the old text's score stays, keyed by its hash

        # A new classifier version scores every text again; pruning drops the old version's rows.
        newer = replace_version(clf, "9999.1")
        assert score_pending(wh, newer).scored == 5
        assert prune(wh, "9999.1") == 5
        assert {v for _, _, v, _, _ in _scores(wh)} == {"9999.1"}


def replace_version(clf: Classifier, version: str) -> Classifier:
    other = Classifier(clf.lexicon)
    other.version = version
    return other


def test_missing_sources_score_nothing(crm_env):
    with Warehouse.from_url(crm_env["url"]) as wh:
        run = score_pending(wh, Classifier())
        assert run.scored == 0
        assert wh.fetchone("select count(*) from scoring.text_scores")[0] == 0


def test_processes_score_as_this_process_does(crm_env, monkeypatch, tmp_path):
    """Large runs are spread over scoring processes; every row must be what one process writes."""
    import crm_pipeline.text.score as score

    texts = ["快递太慢了", "Love it", "客服态度很差，再也不买了", "质量很好，物流也快", "屏幕有划痕", "too pricey"]
    _land(crm_env["landing"], "a.jsonl", [(f"p{i}", f"{texts[i % len(texts)]} #{i}") for i in range(60)])
    monkeypatch.setattr(score, "PARALLEL_MIN", 10)  # these 60 texts go to processes, 7 at a time
    monkeypatch.setattr(score, "PARALLEL_CHUNK", 7)
    monkeypatch.setattr(score, "SLICE", 25)  # three slices: one is scored while the one before is written
    runs = {}
    for workers in ("2", "1"):
        monkeypatch.setenv("CRM_SCORING_WORKERS", workers)
        with Warehouse.from_url(crm_env["url"]) as wh:
            wh.execute("drop table if exists scoring.text_scores")
            load_landing(wh, "forum_posts", crm_env["landing"], RUN, SH)
            assert score_pending(wh).scored == 60
            runs[workers] = wh.fetchall(
                "select record_id, text_hash, language, sentiment_score, is_negative, category, cues "
                "from scoring.text_scores order by record_id"
            )
    assert len(runs["2"]) == 60 and runs["2"] == runs["1"]
    assert {r[4] for r in runs["1"]} == {True, False}  # both verdicts occur


class _StopsAt:
    """The classifier, but its `calls`-th score_many raises (a run killed half-way)."""

    def __init__(self, calls: int):
        self.clf, self.calls = Classifier(), calls
        self.version = self.clf.version

    def score_many(self, texts):
        self.calls -= 1
        if self.calls == 0:
            raise RuntimeError("stopped")
        return self.clf.score_many(texts)


def test_slices_commit_one_by_one_and_end_as_one_run(crm_env, monkeypatch):
    """Pending texts are scored SLICE at a time: a stopped run keeps its written slices, leaves no work table,
    and the next run scores exactly the rest; the rows equal those of a run in one slice."""
    import crm_pipeline.text.score as score

    texts = ["快递太慢了", "Love it", "客服态度很差", "质量很好", "屏幕有划痕", "too pricey", "退款太慢"]
    _land(crm_env["landing"], "a.jsonl", [(f"p{i:02}", f"{texts[i % len(texts)]} #{i}") for i in range(10)])
    work_tables = "select count(*) from information_schema.tables where table_name like '%pending_texts%'"
    rows = (
        "select record_id, text_hash, classifier_version, language, sentiment_score, is_negative, category, cues "
        "from scoring.text_scores order by record_id"
    )
    with Warehouse.from_url(crm_env["url"]) as wh:
        load_landing(wh, "forum_posts", crm_env["landing"], RUN, SH)
        monkeypatch.setattr(score, "SLICE", 3)
        try:
            score_pending(wh, _StopsAt(3))
            raise AssertionError("the stopped run did not raise")
        except RuntimeError as e:
            assert str(e) == "stopped"
        kept = wh.fetchone("select count(*), count(distinct record_id) from scoring.text_scores")
        assert kept == (6, 6)  # slices 1 and 2, not 3
        assert wh.fetchone(work_tables)[0] == 0
        rest = score_pending(wh, Classifier())
        assert rest.scored == 4 and rest.by_source["forum"] == 4
        sliced = wh.fetchall(rows)
        monkeypatch.setattr(score, "SLICE", 1000)
        wh.execute("delete from scoring.text_scores")
        assert score_pending(wh, Classifier()).scored == 10
        assert wh.fetchall(rows) == sliced and len(sliced) == 10
        assert wh.fetchone(work_tables)[0] == 0


class _Counting:
    """The classifier, counting the texts it is given."""

    def __init__(self):
        self.clf, self.seen = Classifier(), []
        self.version = self.clf.version

    def score_many(self, texts):
        self.seen += texts
        return self.clf.score_many(texts)


def test_a_text_many_records_say_is_classified_once_and_scored_for_each(crm_env, monkeypatch):
    """Chat groups repeat '收到'; each distinct text is classified once per run, every record gets its verdict."""
    import crm_pipeline.text.score as score

    said = ["收到", "快递太慢了，等了十天", "收到", "Love it", "快递太慢了，等了十天", "收到", "收到 "]
    _land(crm_env["landing"], "a.jsonl", [(f"p{i}", t) for i, t in enumerate(said)])
    monkeypatch.setattr(score, "SLICE", 2)  # the repeated texts span slices
    clf, counting = Classifier(), _Counting()
    with Warehouse.from_url(crm_env["url"]) as wh:
        load_landing(wh, "forum_posts", crm_env["landing"], RUN, SH)
        run = score_pending(wh, counting)
        assert (run.scored, run.classified) == (7, 4)
        assert sorted(counting.seen) == sorted(set(said))  # each distinct text once ('收到 ' is another text)
        got = wh.fetchall(
            "select record_id, language, sentiment_score, is_negative, category, cues from scoring.text_scores "
            "order by record_id"
        )
    expected = []
    for i, text in enumerate(said):  # the verdict of each record's own text, scored alone
        v = clf.score(text)
        cues = json.dumps(list(v.cues), ensure_ascii=False)
        expected.append((f"p{i}", v.language, v.sentiment, v.is_negative, v.category, cues))
    assert got == expected
    assert {r[3] for r in got} == {True, False}


class _Waits:
    """A classifier that waits half a second (for a core, say) before it scores."""

    version = Classifier.version

    def __init__(self):
        self.clf = Classifier()

    def score_many(self, texts):
        import time

        time.sleep(0.5)
        return self.clf.score_many(texts)


def test_the_classifier_rate_counts_its_cpu_time_not_its_waiting(crm_env, monkeypatch):
    """Texts per second per core: a scoring process that waits for a core is not charged for the wait."""
    import crm_pipeline.text.score as score

    _land(crm_env["landing"], "a.jsonl", [("p1", "快递太慢了"), ("p2", "Love it")])
    with Warehouse.from_url(crm_env["url"]) as wh:
        load_landing(wh, "forum_posts", crm_env["landing"], RUN, SH)
        run = score_pending(wh, _Waits())  # in this process
    assert run.classified == 2 and run.seconds < 0.25
    monkeypatch.setattr(score, "_WORKER", _Waits())  # as a scoring process runs it
    version, seconds, verdicts = score._score_in_worker(["快递太慢了"])
    assert version == Classifier.version and len(verdicts) == 1 and seconds < 0.25
