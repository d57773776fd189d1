"""Score the text in the warehouse, incrementally: `scoring.text_scores`.

A text is scored once per (source, record id, md5 of the text, classifier
version): a new or edited post, message, review or refund reason is scored
on the next run, an unchanged one never again. Rows carry the classifier
version, so after a new version ships, rescoring everything is one command:

    python -m crm_pipeline.text.score            # what is new or edited
    python -m crm_pipeline.text.score --prune    # and drop scores of older versions

(a new version scores every text again on its next run by itself; --prune
only tidies). Texts go to the classifier straight from the raw tables, never
through dbt or any template, so nothing a user writes is compiled.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pyarrow as pa

from crm_pipeline.load.warehouse import Warehouse

# source -> (raw table, id column, text column, extra filter)
TEXT_SOURCES = {
    "forum": ("forum_posts", "post_id", "content", ""),
    "chat": ("chat_messages", "msg_id", "content", "and r.msg_type = 'text'"),
    "review": ("reviews", "review_id", "content", ""),
    "refund": ("refunds", "refund_id", "reason", ""),
}
COLUMNS = [
    ("source", "text"),
    ("record_id", "text"),
    ("text_hash", "text"),
    ("classifier_version", "text"),
    ("language", "text"),
    ("sentiment_score", "double"),
    ("is_negative", "bool"),
    ("category", "text"),
    ("cues", "text"),
    ("scored_at", "timestamp"),
]
_SQL_TYPES = {"text": "varchar", "double": "double precision", "bool": "boolean", "timestamp": "timestamp"}
# Pending texts read, scored and written at a time (one transaction each).
SLICE = 200_000
# Texts per task sent to a scoring process, and how many pending texts make processes worth starting.
PARALLEL_CHUNK = 10_000
PARALLEL_MIN = 40_000


@dataclass
class ScoreRun:
    scored: int
    seconds: float
    by_source: dict[str, int]

    @property
    def per_second(self) -> float:
        return self.scored / self.seconds if self.seconds else 0.0


def ensure_table(wh: Warehouse) -> None:
    wh.execute("create schema if not exists scoring")
    cols = ", ".join(f"{name} {_SQL_TYPES[t]}" for name, t in COLUMNS)
    wh.execute(f"create table if not exists scoring.text_scores ({cols})")


# DuckDB's work table of texts to score. A run drops it when it ends, stopped or not; one killed
# outright leaves it, holding texts, until the next run, so an erasure drops it too.
DUCKDB_WORK_TABLE = "scoring._pending_texts"


def _stage_pending(wh: Warehouse, source: str, version: str) -> tuple[str, int]:
    """Number the source's texts not yet scored by `version` into a work table; its name and row count.

    The texts are read from it a slice at a time, so a run's memory does not
    grow with the backlog. DuckDB: a table in `scoring` (one writer process
    holds the file); PostgreSQL: a temporary table of this session.
    """
    table, id_col, text_col, extra = TEXT_SOURCES[source]
    work = DUCKDB_WORK_TABLE if wh.kind == "duckdb" else "pg_temp.pending_texts"
    wh.execute(f"drop table if exists {work}")
    if not wh.table_exists("raw", table):
        return work, 0
    wh.execute(
        f"create table {work} as select row_number() over () as n, record_id, "
        "text, text_hash from ("
        f"select distinct r.{id_col} as record_id, r.{text_col} as text, md5(r.{text_col}) as text_hash "
        "from raw." + table + " r left join scoring.text_scores s on s.source = %s and s.record_id = r." + id_col + " "
        f"and s.text_hash = md5(r.{text_col}) and s.classifier_version = %s "
        f"where s.record_id is null and r.{id_col} is not null and r.{text_col} is not null {extra}) p",
        (source, version),
    )
    if wh.kind == "postgres":
        wh.execute(f"create index on {work} (n)")
        wh.execute(f"analyze {work}")
    return work, int(wh.fetchone(f"select count(*) from {work}")[0])


def _slices(wh: Warehouse, work: str, count: int) -> Iterator[list[tuple[str, str, str]]]:
    for start in range(0, count, SLICE):
        yield wh.fetchall(
            f"select record_id, text, text_hash from {work} where n > %s and n <= %s order by n",
            (start, start + SLICE),
        )


def scoring_workers() -> int:
    """CRM_SCORING_WORKERS: processes that score texts (default: one per core; 1 = in this process)."""
    return max(1, int(os.environ.get("CRM_SCORING_WORKERS") or os.cpu_count() or 1))


_WORKER = None  # the classifier of a scoring process


def _start_worker() -> None:
    global _WORKER
    from crm_pipeline.text.classifier import Classifier

    _WORKER = Classifier()


def _score_in_worker(texts: list[str]) -> tuple[str, float, list]:
    t0 = time.perf_counter()
    verdicts = _WORKER.score_many(texts)
    return _WORKER.version, time.perf_counter() - t0, verdicts


class _Scorer:
    """score_many in this process, or spread over processes (each with its own classifier) for large runs."""

    def __init__(self, clf, own_classifier: bool):
        self.clf, self.pool, self.seconds = clf, None, 0.0
        self.parallel = own_classifier and scoring_workers() > 1

    def submit(self, texts: list[str], parallel: bool) -> Callable[[], list]:
        """Start scoring `texts`; the returned call gives their verdicts (in processes: while this one writes)."""
        if not (self.parallel and parallel):

            def here() -> list:  # when asked: nothing else would run meanwhile
                t0 = time.perf_counter()
                verdicts = self.clf.score_many(texts)
                self.seconds += time.perf_counter() - t0
                return verdicts

            return here
        if self.pool is None:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            # spawn, not fork: this process has DuckDB and Arrow threads running.
            self.pool = ProcessPoolExecutor(
                scoring_workers(), mp_context=multiprocessing.get_context("spawn"), initializer=_start_worker
            )
        futures = [
            self.pool.submit(_score_in_worker, texts[i : i + PARALLEL_CHUNK])
            for i in range(0, len(texts), PARALLEL_CHUNK)
        ]

        def result() -> list:
            verdicts = []
            for future in futures:
                version, seconds, part = future.result()
                if version != self.clf.version:  # a worker read another cue table or model
                    raise RuntimeError(f"scoring process has classifier {version}, this one {self.clf.version}")
                self.seconds += seconds  # classifier time on one core, summed over processes
                verdicts.extend(part)
            return verdicts

        return result

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)


def score_pending(wh: Warehouse, classifier=None) -> ScoreRun:
    """Score every text not yet scored by this classifier version, SLICE texts per transaction.

    A source with PARALLEL_MIN pending texts or more is scored in CRM_SCORING_WORKERS
    processes (the classifier is pure Python). A run stopped half-way keeps the
    slices it wrote; the next run scores the rest.
    """
    from crm_pipeline.text.classifier import Classifier

    clf = classifier or Classifier()
    ensure_table(wh)
    total, by_source = 0, {}
    scorer = _Scorer(clf, own_classifier=classifier is None)
    try:
        for source in TEXT_SOURCES:
            work, count = _stage_pending(wh, source, clf.version)
            by_source[source] = count
            try:
                # Slice k+1 is being scored while slice k is written.
                waiting = None
                for rows in _slices(wh, work, count):
                    started = (rows, scorer.submit([text for _, text, _ in rows], parallel=count >= PARALLEL_MIN))
                    if waiting:
                        total += _write_slice(wh, source, clf.version, *waiting)
                    waiting = started
                if waiting:
                    total += _write_slice(wh, source, clf.version, *waiting)
            finally:  # the work table holds people's texts: never leave it behind
                wh.execute(f"drop table if exists {work}")
    finally:
        scorer.close()
    return ScoreRun(total, scorer.seconds, by_source)


def _write_slice(wh: Warehouse, source: str, version: str, rows: list, verdicts: Callable[[], list]) -> int:
    """One slice's scores in one transaction (a slice is SLICE texts at most: one Arrow batch)."""
    done = verdicts()
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
    batch = pa.table(
        {
            "source": [source] * len(rows),
            "record_id": [r[0] for r in rows],
            "text_hash": [r[2] for r in rows],
            "classifier_version": [version] * len(rows),
            "language": [v.language for v in done],
            "sentiment_score": pa.array([v.sentiment for v in done], pa.float64()),
            "is_negative": [v.is_negative for v in done],
            "category": [v.category for v in done],
            "cues": [json.dumps(list(v.cues), ensure_ascii=False) for v in done],
            "scored_at": pa.array([now] * len(rows), pa.timestamp("us")),
        }
    )
    with wh.transaction():
        wh.append_arrow("scoring.text_scores", batch)
    return len(rows)


def prune(wh: Warehouse, version: str) -> int:
    ensure_table(wh)
    n = wh.fetchone("select count(*) from scoring.text_scores where classifier_version != %s", (version,))[0]
    wh.execute("delete from scoring.text_scores where classifier_version != %s", (version,))
    return n


def main(argv: list[str] | None = None) -> None:
    from crm_pipeline.config import settings
    from crm_pipeline.load.warehouse import parse_url, writer_lock
    from crm_pipeline.text.classifier import VERSION

    ap = argparse.ArgumentParser(description="Score new or edited texts with the current classifier version.")
    ap.add_argument("--prune", action="store_true", help="delete scores made by other classifier versions")
    args = ap.parse_args(argv)
    target = parse_url(settings().warehouse_url)
    with writer_lock(target), Warehouse(target) as wh:
        run = score_pending(wh)
        print(f"classifier {VERSION}: scored {run.scored} texts {run.by_source} at {run.per_second:,.0f} texts/s")
        if args.prune:
            print(f"pruned {prune(wh, VERSION)} scores of other versions")


if __name__ == "__main__":
    main()
