"""Score the text in the warehouse, incrementally: `scoring.text_scores`.

A text is scored once per (source, record id, md5 of the text, classifier
version): a new or edited post, message, review or refund reason is scored
on the next run, an unchanged one never again. Within a run each distinct
text is classified once and its verdict written for every record that says
it (chat groups repeat "收到" and "+1"; shops repeat default reviews): the
verdict depends on the text alone. Rows carry the classifier
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
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pyarrow as pa

from crm_pipeline.config import settings
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
    ("sentiment_score", "float"),
    ("is_negative", "bool"),
    ("category", "text"),
    ("cues", "text"),
    ("scored_at", "timestamp"),
]
# Pending texts read, scored and written at a time (one transaction each).
SLICE = 200_000
# Texts per task sent to a scoring process, and how many pending texts make processes worth starting.
PARALLEL_CHUNK = 10_000
PARALLEL_MIN = 40_000


@dataclass
class ScoreRun:
    scored: int  # records given a score
    seconds: float  # the classifier's CPU time, summed over processes
    by_source: dict[str, int]
    classified: int = 0  # distinct texts the classifier read (each once per source and run)

    @property
    def per_second(self) -> float:
        """Texts the classifier read per second of its CPU time: its rate on one core."""
        return self.classified / self.seconds if self.seconds else 0.0


def ensure_table(wh: Warehouse) -> None:
    wh.execute("create schema if not exists scoring")
    wh.create_table("scoring.text_scores", COLUMNS)


# DuckDB's work tables: the pending records and texts, and each distinct text once. A run drops
# them when it ends, stopped or not; one killed outright leaves them, holding texts, until the
# next run, so an erasure drops them too.
DUCKDB_WORK_TABLES = ("scoring._pending_texts", "scoring._pending_texts_distinct")


@dataclass
class _Pending:
    records: str  # table: record_id, text, text_hash of each record to score
    texts: str  # table: n (1, 2, ...), text_hash, text, records of each distinct text among them
    count: int  # records
    distinct: int  # texts

    def drop(self, wh: Warehouse) -> None:
        for table in (self.records, self.texts):
            wh.execute(f"drop table if exists {table}")


def _stage_pending(wh: Warehouse, source: str, version: str) -> _Pending:
    """The source's records whose text is not yet scored by `version`, and their distinct texts, numbered.

    The texts are read from the work tables a slice at a time, so a run's
    memory does not grow with the backlog. DuckDB: tables in `scoring` (one
    writer process holds the file); PostgreSQL: temporary tables of this session.
    """
    table, id_col, text_col, extra = TEXT_SOURCES[source]
    names = DUCKDB_WORK_TABLES if wh.kind == "duckdb" else ("pg_temp.pending_texts", "pg_temp.pending_texts_distinct")
    pending = _Pending(*names, 0, 0)
    pending.drop(wh)
    if not wh.table_exists("raw", table):
        return pending
    wh.execute(
        f"create table {pending.records} as "
        f"select distinct r.{id_col} as record_id, r.{text_col} as text, md5(r.{text_col}) as text_hash "
        "from raw." + table + " r left join scoring.text_scores s on s.source = %s and s.record_id = r." + id_col + " "
        f"and s.text_hash = md5(r.{text_col}) and s.classifier_version = %s "
        f"where s.record_id is null and r.{id_col} is not null and r.{text_col} is not null {extra}",
        (source, version),
    )
    wh.execute(
        f"create table {pending.texts} as select row_number() over () as n, text_hash, min(text) as text, "
        "count(*) as records "
        f"from {pending.records} group by text_hash"
    )
    if wh.kind == "postgres":
        wh.execute(f"create index on {pending.texts} (n)")
        for work in names:
            wh.execute(f"analyze {work}")
    pending.count = int(wh.fetchone(f"select count(*) from {pending.records}")[0])
    pending.distinct = int(wh.fetchone(f"select count(*) from {pending.texts}")[0])
    return pending


def _slices(wh: Warehouse, pending: _Pending) -> Iterator[list[tuple[str, str, int]]]:
    """(text_hash, text, records saying it) of SLICE distinct texts at a time."""
    for start in range(0, pending.distinct, SLICE):
        yield wh.fetchall(
            f"select text_hash, text, records from {pending.texts} where n > %s and n <= %s order by n",
            (start, start + SLICE),
        )


def scoring_workers() -> int:
    """CRM_SCORING_WORKERS: processes that score texts (default: one per core; 1 = in this process)."""
    return settings().scoring_workers or os.cpu_count() or 1


_WORKER = None  # the classifier of a scoring process


def _start_worker() -> None:
    global _WORKER
    from crm_pipeline.text.classifier import Classifier

    _WORKER = Classifier()


def _score_in_worker(texts: list[str]) -> tuple[str, float, list]:
    """Verdicts, with the CPU seconds they took: a process that waits for a core is not charged for waiting."""
    t0 = time.process_time()
    verdicts = _WORKER.score_many(texts)
    return _WORKER.version, time.process_time() - t0, verdicts


class _Scorer:
    """score_many in this process, or spread over processes (each with its own classifier) for large runs."""

    def __init__(self, clf, own_classifier: bool):
        self.clf, self.pool, self.seconds = clf, None, 0.0
        self.parallel = own_classifier and scoring_workers() > 1

    def submit(self, texts: list[str], parallel: bool) -> Callable[[], list]:
        """Start scoring `texts`; the returned call gives their verdicts (in processes: while this one writes)."""
        if not (self.parallel and parallel):

            def here() -> list:  # when asked: nothing else would run meanwhile
                t0 = time.thread_time()  # this thread's CPU, not DuckDB's threads'
                verdicts = self.clf.score_many(texts)
                self.seconds += time.thread_time() - t0
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
    """Score every text not yet scored by this classifier version, SLICE distinct texts per transaction.

    A source with PARALLEL_MIN distinct pending texts or more is scored in
    CRM_SCORING_WORKERS processes (the classifier is pure Python). A run stopped
    half-way keeps the slices it wrote; the next run scores the rest.
    """
    from crm_pipeline.text.classifier import Classifier

    clf = classifier or Classifier()
    ensure_table(wh)
    total, classified, by_source = 0, 0, {}
    scorer = _Scorer(clf, own_classifier=classifier is None)
    verdicts = _verdict_table(wh)
    try:
        for source in TEXT_SOURCES:
            pending = _stage_pending(wh, source, clf.version)
            by_source[source] = pending.count
            try:
                # Slice k+1 is being scored while slice k is written.
                waiting = None
                for rows in _slices(wh, pending):
                    texts = [text for _, text, _ in rows]
                    started = (rows, scorer.submit(texts, parallel=pending.distinct >= PARALLEL_MIN))
                    if waiting:
                        total += _write_slice(wh, source, clf.version, pending, verdicts, *waiting)
                    waiting = started
                if waiting:
                    total += _write_slice(wh, source, clf.version, pending, verdicts, *waiting)
                classified += pending.distinct
            finally:  # the work tables hold people's texts: never leave them behind
                pending.drop(wh)
    finally:
        scorer.close()
        wh.execute(f"drop table if exists {verdicts}")
    return ScoreRun(total, scorer.seconds, by_source, classified)


def _verdict_table(wh: Warehouse) -> str:
    """A temporary table for one slice's verdicts, one row per distinct text."""
    name = "temp.slice_verdicts" if wh.kind == "duckdb" else "pg_temp.slice_verdicts"
    wh.execute(f"drop table if exists {name}")
    types = dict(COLUMNS)
    cols = ", ".join(f"{c} {wh.type_sql(types[c])}" for c in VERDICT_COLUMNS)
    wh.execute(f"create temp table {name.split('.')[1]} ({cols})")
    return name


VERDICT_COLUMNS = ("text_hash", "language", "sentiment_score", "is_negative", "category", "cues")


def _write_slice(
    wh: Warehouse, source: str, version: str, pending: _Pending, table: str, rows: list, verdicts: Callable[[], list]
) -> int:
    """One slice's scores in one transaction: each distinct text's verdict, for every record that says it."""
    done = verdicts()
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
    batch = pa.table(
        {
            "text_hash": [r[0] for r in rows],
            "language": [v.language for v in done],
            "sentiment_score": pa.array([v.sentiment for v in done], pa.float64()),
            "is_negative": [v.is_negative for v in done],
            "category": [v.category for v in done],
            "cues": [v.cues_json for v in done],
        }
    )
    verdict_cols = ", ".join(f"v.{c}" for c in VERDICT_COLUMNS[1:])
    with wh.transaction():
        wh.execute(f"delete from {table}")
        wh.append_arrow(table, batch)
        wh.execute(
            f"insert into scoring.text_scores ({', '.join(name for name, _ in COLUMNS)}) "
            f"select %s, p.record_id, p.text_hash, %s, {verdict_cols}, %s "
            f"from {pending.records} p join {table} v on v.text_hash = p.text_hash",
            (source, version, now),
        )
    return sum(int(r[2]) for r in rows)


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
        print(
            f"classifier {VERSION}: scored {run.scored} texts {run.by_source}, {run.classified} distinct, "
            f"at {run.per_second:,.0f} texts/s"
        )
        if args.prune:
            print(f"pruned {prune(wh, VERSION)} scores of other versions")


if __name__ == "__main__":
    main()
