"""`make bench`: time each pipeline stage on a generated community and print a table.

    python -m crm_pipeline.bench --scale S [--skip-baseline]

Generates the community (reused when present under bench/data/<scale>),
then the full build (extract and load, the raw quality gate, text scoring,
dbt, mart checks, publish) as of its last day, then one incremental day: about 1% of orders
updated, 0.5% new orders (some of them late, placed two days earlier), 1%
new chat messages and forum posts, and edits of existing posts. Each stage
has wall time, rows per second and peak memory (`Peak`: the stage's
process tree, dbt and scoring workers included). The pandas baseline
(`bench_baseline`: read_csv, to_sql, groupby RFM) runs on the same files.
Figures go to bench/results/<scale>.json and docs/benchmarks.md. It never
fails on a time.

    python -m crm_pipeline.bench --scale M --orders-only

runs the same full build and the pandas baseline on the shop's order files
alone (customers, orders, order_items, refunds: hard links to the
community's files, under bench/data/<scale>/orders-only), with no
incremental day; results in bench/results/<scale>-orders.json.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import json
import os
import platform
import shutil
import threading
import time
from pathlib import Path

from crm_pipeline.config import REPO_ROOT

SCALES = {"XS": 2_000, "S": 10_000, "M": 100_000, "L": 1_000_000}
# What each customer does at M and L, so the rows are the issue's: M about 1M orders, 1M forum posts
# and 3M chat messages; L about 10M orders, 5M forum posts and 20M chat messages. The sample's own
# habits (XS, S: Volume()) are about 1.9 orders, 1.5 forum posts and 10 chat messages a customer.
VOLUMES = {
    "M": {"orders": 5.3, "forum_posts": 6.7, "chat": 3.0, "distinct_texts": True},
    "L": {"orders": 5.3, "forum_posts": 3.35, "chat": 2.0, "distinct_texts": True},
}
END = dt.date(2026, 11, 22)
# --orders-only: what a shop alone exports, the files the RFM marts are made from.
ORDER_FILES = ("customers", "orders", "order_items", "refunds")


class Peak:
    """Peak memory of one stage: this process (unless own=False) and every process under it, in MB.

    The resident sizes of the whole process tree are summed every `every`
    seconds by a thread; this process's own high-water mark is reset when the
    stage starts (Linux /proc/self/clear_refs) and read when it ends, so a
    short spike here is not missed between samples. A child's spike shorter
    than the interval can be.
    """

    def __init__(self, every: float = 0.1, own: bool = True):
        self.every, self.own, self.mb = every, own, 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> Peak:
        if self.own:
            _reset_high_water()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        if self.own:
            self.mb = max(self.mb, _high_water_mb())

    def _sample(self) -> None:
        while True:
            pids = _tree(os.getpid())[0 if self.own else 1 :]
            self.mb = max(self.mb, sum(_status_kb(pid, "VmRSS") for pid in pids) / 1024)
            if self._stop.wait(self.every):
                return


def _reset_high_water() -> None:
    """Linux: this process's VmHWM starts again from what is resident now."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def _high_water_mb() -> float:
    return _status_kb(os.getpid(), "VmHWM") / 1024


def _status_kb(pid: int, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def _tree(root: int) -> list[int]:
    """root and every process descended from it (from /proc/<pid>/stat)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo += children.get(pid, [])
    return out


def _volume(scale: str):
    from crm_pipeline.sample.generate import Volume

    return Volume(**VOLUMES.get(scale, {}))


def _generated(truth: Path, scale: str) -> bool:
    """Data generated for this scale is there: same customers, volume and generator code (else it is made anew)."""
    try:
        meta = json.loads((truth / "summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    from crm_pipeline.sample.generate import generator_digest

    return (
        meta.get("customers") == SCALES[scale]
        and meta.get("volume") == dataclasses.asdict(_volume(scale))
        and meta.get("generator") == generator_digest()  # else the generator's code changed: other texts, rows
    )


def orders_only(landing: Path, into: Path) -> Path:
    """A landing dir holding only the shop's order files of `landing` (hard links, else copies); made anew."""
    shutil.rmtree(into, ignore_errors=True)
    for entity in ORDER_FILES:
        (into / entity).mkdir(parents=True)
        for path in sorted((landing / entity).glob("*")):
            if path.is_file():
                try:
                    os.link(path, into / entity / path.name)
                except OSError:
                    shutil.copyfile(path, into / entity / path.name)
    return into


def write_delta(landing: Path, day: dt.date, share: float = 0.01) -> int:
    """One day's delta as new landed files: updated and new (some late) orders, new chat and posts, post edits."""
    import csv

    from crm_pipeline.sources.files import read_records

    def records(entity: str):
        """The entity's landed records with their position, file by file (memory holds one file)."""
        i = 0
        for path in sorted((landing / entity).glob("*")):
            if path.is_file() and not path.name.startswith("delta_"):
                for r in read_records(path)[2]:
                    if r.record:
                        yield i, r.record
                        i += 1

    def write(entity: str, rows: list[dict]) -> int:
        if rows:
            with (landing / entity / f"delta_{day}.csv").open("w", encoding="utf-8", newline="") as fh:
                writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
                writer.writeheader()
                writer.writerows(rows)
        return len(rows)

    step = max(1, round(1 / share))
    noon, late = f"{day} 12:00:00", f"{day - dt.timedelta(days=2)} 20:00:00"
    updated, new = [], []
    for i, o in records("orders"):
        if i % step == 0 and o["status"] != "completed":  # every step-th order moves on to completed
            updated.append({**o, "status": "completed", "updated_at": noon})
        if i % (step * 2) == 0:  # and every other one of those is copied as a new order, a quarter of them late
            k = i // (step * 2)
            new.append(
                {**o, "order_id": f"D{day:%m%d}{k:07d}", "status": "paid", "ordered_at": late if k % 4 == 0 else noon,
                 "updated_at": noon}
            )  # fmt: skip
    n = write("orders", updated + new)
    chat = [
        {**m, "msg_id": f"DM{day:%m%d}{i // step:08d}", "sent_at": noon, "reply_to_msg_id": ""}
        for i, m in records("chat_messages")
        if i % step == 0
    ]
    n += write("chat_messages", chat)
    new_posts, edits = [], []
    for i, p in records("forum_posts"):
        if i % step == 0:
            new_posts.append(
                {**p, "post_id": f"DP{day:%m%d}{i // step:07d}", "created_at": noon, "updated_at": noon,
                 "reply_to_post_id": ""}
            )  # fmt: skip
        if i >= step // 2 and (i - step // 2) % (step * 4) == 0:
            edits.append({**p, "content": p["content"] + "（已编辑）", "updated_at": noon})
    return n + write("forum_posts", new_posts + edits)


def _stage_load(url: str, landing: Path, day: dt.date) -> tuple[float, tuple[int, dict, list[dict]]]:
    """Load every entity; (seconds, (rows, {entity: [seconds, rows]}, batches)): the per-entity split is the
    load's profile, the batches what the raw gate checks next."""
    from zoneinfo import ZoneInfo

    from crm_pipeline.load.loader import load_landing
    from crm_pipeline.load.specs import SPECS
    from crm_pipeline.load.warehouse import Warehouse

    t0, per_entity, batches = time.perf_counter(), {}, []
    with Warehouse.from_url(url) as wh:
        for entity in SPECS:
            t = time.perf_counter()
            results = load_landing(wh, entity, landing, day, ZoneInfo("Asia/Shanghai"))
            per_entity[entity] = [round(time.perf_counter() - t, 3), sum(r.extracted_rows for r in results)]
            batches += [r.as_dict() for r in results]
    return time.perf_counter() - t0, (sum(rows for _, rows in per_entity.values()), per_entity, batches)


def _stage_raw_checks(url: str, day: dt.date, batches: list[dict]) -> tuple[float, list[str]]:
    """The raw quality gate on the day's new batches, as each extract DAG's check_raw task runs it."""
    from crm_pipeline.load.warehouse import Warehouse
    from crm_pipeline.quality.gate import check_raw

    with Warehouse.from_url(url) as wh:
        t0 = time.perf_counter()
        validation = check_raw(wh, batches, day, dag_id="bench", run_id=f"bench-{day}", url=url)
        seconds = time.perf_counter() - t0
    return seconds, [f"{r.suite}/{r.expectation}" for r in validation.critical_failures]


def _stage_score(url: str) -> tuple[float, tuple[int, float]]:
    from crm_pipeline.load.warehouse import Warehouse
    from crm_pipeline.text.score import score_pending

    t0 = time.perf_counter()
    with Warehouse.from_url(url) as wh:
        scored = score_pending(wh)
    return time.perf_counter() - t0, (scored.scored, scored.classified, scored.seconds)


def _stage_dbt(url: str, day: dt.date) -> tuple[float, tuple[bool, int, dict]]:
    """The dbt build; (seconds, (full refresh?, raw rows, dbt_profile of its run_results.json))."""
    from crm_pipeline.load.specs import SPECS
    from crm_pipeline.load.warehouse import Warehouse, parse_url
    from crm_pipeline.pipeline import build_marts
    from crm_pipeline.transform.dbt import FIRST_HALF_RESULTS, artifacts_dir

    t0 = time.perf_counter()
    build = build_marts(day, f"bench-{day}")
    seconds = time.perf_counter() - t0
    with Warehouse.from_url(url) as wh:
        raw_rows = sum(int(wh.fetchone(f"select count(*) from raw.{e}")[0]) for e in SPECS)
        fit = wh.fetchone("select seconds, customers, status from audit.value_fits where as_of_date = %s", (day,))
    target = artifacts_dir(parse_url(url)) / "target"
    profile = dbt_profile([target / FIRST_HALF_RESULTS, target / "run_results.json"], seconds)
    if fit:  # the lifetime-value fit runs between the build's two halves, inside this stage's seconds
        profile["value_fit"] = {"seconds": round(float(fit[0]), 3), "customers": int(fit[1]), "status": fit[2]}
    return seconds, (build["full_refresh"], raw_rows, profile)


def dbt_profile(run_results: list[Path], seconds: float) -> dict:
    """Where a dbt build's time went, from its run_results.json files (a build in two halves, around
    the value fit, leaves one per half) and the stage's wall seconds.

    `outside_run`: the stage's seconds outside dbt's own run clocks (process
    start, parsing, the value fit, the warehouse's bookkeeping before and after).
    `thread_seconds`: the nodes' execution time summed per kind (model, test,
    seed); with two threads it adds up to about twice the runs' wall time.
    `nodes`: every node's seconds, by kind and name (a data test by its name,
    without dbt's hash).
    """
    thread_seconds: dict[str, float] = {}
    nodes: dict[str, dict[str, float]] = {}
    run = 0.0
    for path in run_results:
        data = json.loads(path.read_text(encoding="utf-8"))
        run += data["elapsed_time"]
        for result in data["results"]:
            kind, _, *rest = result["unique_id"].split(".")
            name = rest[0] if kind == "test" else ".".join(rest)
            thread_seconds[kind] = thread_seconds.get(kind, 0.0) + result["execution_time"]
            nodes.setdefault(kind, {})[name] = round(result["execution_time"], 3)
    return {
        "seconds": round(seconds, 3),
        "run": round(run, 3),
        "outside_run": round(seconds - run, 3),
        "thread_seconds": {kind: round(t, 3) for kind, t in sorted(thread_seconds.items())},
        "nodes": {kind: dict(sorted(named.items(), key=lambda kv: -kv[1])) for kind, named in sorted(nodes.items())},
    }


def _stage_checks(url: str, day: dt.date) -> tuple[float, list[str]]:
    from crm_pipeline.load.warehouse import Warehouse
    from crm_pipeline.quality.gate import check_marts

    with Warehouse.from_url(url) as wh:
        t0 = time.perf_counter()
        validation = check_marts(wh, day, dag_id="bench", run_id=f"bench-{day}", url=url)
        seconds = time.perf_counter() - t0
    return seconds, [f"{r.suite}/{r.expectation}" for r in validation.critical_failures]


def _stage_publish(url: str, day: dt.date) -> tuple[float, int]:
    from crm_pipeline.load.warehouse import Warehouse
    from crm_pipeline.quality.gate import publish

    with Warehouse.from_url(url) as wh:
        t0 = time.perf_counter()
        publish(wh, day, f"bench-{day}")
        seconds = time.perf_counter() - t0
        return seconds, int(wh.fetchone(f"select sum(row_count) from audit.publishes where run_id = 'bench-{day}'")[0])


def _warm() -> None:
    """What every stage imports, so a stage's clock starts with its work (a task process imports these too)."""
    import crm_pipeline.load.loader
    import crm_pipeline.pipeline
    import crm_pipeline.quality.gate
    import crm_pipeline.text.score  # noqa: F401


def _own_high_water(fn, *args):
    _reset_high_water()
    return fn(*args), _high_water_mb()


def isolated(fn, *args) -> tuple[float, object, float]:
    """fn(*args) in a process of its own, as an Airflow task runs: (its seconds, its result, peak MB).

    fn returns (seconds of its work, result). The peak is that process's
    high-water mark or the sampled sum of it and its children (dbt, scoring
    workers), whichever is larger; this process's own memory is not in it.
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        pool.submit(_warm).result()
        with Peak(own=False) as peak:
            (seconds, result), hwm = pool.submit(_own_high_water, fn, *args).result()
    return seconds, result, max(peak.mb, hwm)


def run_day(url: str, landing: Path, day: dt.date, label: str) -> tuple[list[tuple], dict]:
    """Extract and load, raw checks, text scoring, dbt, mart checks and publish for one as-of day.

    Returns one row per stage, and the day's profile: the load's seconds per
    entity and the dbt build's `dbt_profile`. Each stage runs in a fresh
    process, so its peak memory is its own.
    """
    stages = []
    seconds, (rows, per_entity, batches), mb = isolated(_stage_load, url, landing, day)
    stages.append((f"{label}extract + load", seconds, rows, mb))
    seconds, held, mb = isolated(_stage_raw_checks, url, day, batches)
    stages.append((f"{label}raw checks", seconds, rows, mb))
    if held:
        print(f"note: {len(held)} critical raw check(s) failed on {day}: {', '.join(held[:5])}")
    seconds, (scored, classified, classifier_seconds), mb = isolated(_stage_score, url)
    stages.append((f"{label}text scoring (wall)", seconds, scored, mb))
    # The classifier alone, one process on one core, over the distinct texts it read: the issue's
    # texts/s target.
    stages.append((f"{label}text scoring (classifier, distinct texts)", classifier_seconds, classified, None))
    seconds, (full_refresh, raw_rows, dbt), mb = isolated(_stage_dbt, url, day)
    stages.append((f"{label}dbt build ({'full refresh' if full_refresh else 'incremental'})", seconds, raw_rows, mb))
    seconds, failed, mb = isolated(_stage_checks, url, day)
    stages.append((f"{label}mart checks", seconds, None, mb))
    seconds, mart_rows, mb = isolated(_stage_publish, url, day)
    stages.append((f"{label}publish", seconds, mart_rows, mb))
    if failed:
        print(f"note: {len(failed)} critical mart check(s) failed on {day}: {', '.join(failed[:5])}")
    return stages, {"load": per_entity, "dbt": dbt}


def _table(stages: list[tuple]) -> list[str]:
    width = max(36, *(len(name) + 1 for name, *_ in stages))
    lines = [f"{'stage':<{width}}{'seconds':>10}{'rows':>14}{'rows/s':>12}{'peak MB':>10}"]
    for name, secs, n, mb in stages:
        rate = f"{n / secs:,.0f}" if n and secs else "-"
        lines.append(
            f"{name:<{width}}{secs:>10.2f}{(f'{n:,}' if n else '-'):>14}{rate:>12}{(f'{mb:,.0f}' if mb else '-'):>10}"
        )
    return lines


def _fresh_pg_database(url: str) -> str:
    """Drop and create the database the URL names (the bench's own); returns the URL."""
    import psycopg2

    from crm_pipeline.load.warehouse import parse_url

    target = parse_url(url)
    if not target.database or not target.database.startswith("crm_bench"):
        raise SystemExit(f"--postgres: the database name must start with crm_bench (it is dropped): {target.database}")
    admin = psycopg2.connect(
        host=target.host, port=target.port, user=target.user, password=target.password or None, dbname="postgres"
    )
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'drop database if exists "{target.database}" with (force)')
        cur.execute(f'create database "{target.database}"')
    admin.close()
    return url


def _pg_version(url: str) -> str:
    from crm_pipeline.load.warehouse import Warehouse

    with Warehouse.from_url(url) as wh:
        return "PostgreSQL " + wh.fetchone("show server_version")[0].split()[0]


def speed_control(rounds: int = 3) -> float:
    """Seconds for a fixed pure-Python workload, best of `rounds`.

    The same code on the same machine takes the same time, so runs taken on
    different days (or on a shared, throttled CPU) compare through it: the
    bench times it before and after the stages.
    """
    import hashlib

    best = float("inf")
    for _ in range(rounds):
        t = time.perf_counter()
        x = b"crm"
        for _ in range(300_000):
            x = hashlib.sha256(x).digest()
        total = 0
        for i in range(1_500_000):
            total += i * i
        best = min(best, time.perf_counter() - t)
    return best


# The incremental day's share of the full build the issue asks for, by scale (PostgreSQL M: M's).
INCREMENTAL_SHARE = {"M": 10, "L": 5}
# The pipeline's own stages of a day: the full build and the incremental day are their sums.
PIPELINE_STAGES = ("extract + load", "raw checks", "text scoring (wall)", "dbt build", "mart checks", "publish")
DAY = "day+1: "


@dataclasses.dataclass(frozen=True)
class Verdict:
    """One of the issue's targets against what a run measured."""

    target: str
    measured: float
    limit: float
    at_most: bool  # met when measured <= limit (a time, a share, memory); else when measured >= limit (a rate)
    unit: str  # format of a value, e.g. "{:,.0f} rows/s"

    @property
    def met(self) -> bool:
        return self.measured <= self.limit if self.at_most else self.measured >= self.limit

    def line(self) -> str:
        sign = "<=" if self.at_most else ">="
        value, limit = self.unit.format(self.measured), self.unit.format(self.limit)
        # How far from the limit, as a factor: over or short when missed, inside or beyond when met.
        high, low = sorted((self.measured, self.limit), reverse=True)
        factor = f"{high / low:.2f}x" if low else "no measure"
        side = {(True, True): "inside", (True, False): "beyond", (False, True): "over", (False, False): "short"}
        how = f"{factor} {side[self.met, self.at_most]}"
        return f"{self.target}: {'met' if self.met else 'missed'}, {value} against {sign} {limit} ({how})"


def _stage_dicts(stages: list[tuple]) -> list[dict]:
    """Stage rows (name, seconds, rows, peak MB) as the results file keeps them."""
    return [{"stage": s, "seconds": round(t, 3), "rows": n, "peak_mb": mb and round(mb)} for s, t, n, mb in stages]


def _pipeline(stages: list[dict], label: str) -> list[dict]:
    """The stages of one day: label '' is the full build, DAY the incremental day."""
    return [s for s in stages if s["stage"].startswith(label) and s["stage"][len(label) :].startswith(PIPELINE_STAGES)]


def _build_seconds(stages: list[dict], label: str) -> float:
    """A day's build time: the sum of its pipeline stages (not the classifier's own clock, not the bench's tooling)."""
    return sum(s["seconds"] for s in _pipeline(stages, label))


def _replaced_seconds(stages: list[dict]) -> float:
    """Our full build's load and dbt: the work the pandas baseline replaces."""
    return sum(s["seconds"] for s in _pipeline(stages, "") if s["stage"].startswith(("extract + load", "dbt build")))


def targets(r: dict) -> list[Verdict]:
    """The issue's targets that apply to a run's scale and engine, from its stages.

    Every target is for DuckDB on this machine but PostgreSQL's full build at
    M. The full build is the sum of the day's pipeline stages (load, raw
    checks, scoring wall time, dbt, mart checks, publish); its peak is their
    largest. The baseline target compares the baseline's three steps with our
    load and dbt, the work they replace; on the shop's order files alone
    (--orders-only) with the whole full build, make run's work.
    """
    stages = r["stages"]
    by_name = {s["stage"]: s for s in stages}
    full, day = _pipeline(stages, ""), _pipeline(stages, DAY)
    full_seconds = _build_seconds(stages, "")
    out: list[Verdict] = []
    day_share = 100 * _build_seconds(stages, DAY) / full_seconds if full and day else None
    baseline = sum(s["seconds"] for s in stages if s["stage"].startswith("pandas baseline: "))
    if r.get("landing") == "orders-only":
        # The whole of make run's work on the shop's files (load, raw checks, scoring, dbt, mart checks,
        # publish) against the baseline's three steps on the same files.
        if r["scale"] == "M" and baseline and full_seconds:
            out.append(Verdict("orders only: speed-up over the pandas baseline (its time / make run's work)",
                               baseline / full_seconds, 3, False, "{:.2f}x"))  # fmt: skip
        return out
    if r.get("engine", "duckdb") != "duckdb":
        if r["scale"] == "M" and full:
            out.append(Verdict("PostgreSQL M full build", full_seconds / 60, 5, True, "{:.1f} min"))
        if r["scale"] == "M" and day_share is not None:
            share = INCREMENTAL_SHARE["M"]
            out.append(
                Verdict("PostgreSQL M incremental day, share of the full build", day_share, share, True, "{:.0f}%")
            )
        return out
    if r["scale"] == "L" and full:
        out.append(Verdict("L full build", full_seconds / 60, 10, True, "{:.1f} min"))
        peak = max((s["peak_mb"] or 0) for s in full)
        out.append(Verdict("L peak memory", peak / 1024, 8, True, "{:.1f} GB"))
    if day_share is not None and r["scale"] in INCREMENTAL_SHARE:
        share = INCREMENTAL_SHARE[r["scale"]]
        out.append(Verdict("incremental day, share of the full build", day_share, share, True, "{:.0f}%"))
    load = by_name.get("extract + load")
    if load and load["seconds"]:
        out.append(Verdict("raw load", load["rows"] / load["seconds"], 500_000, False, "{:,.0f} rows/s"))
    classifier = next((s for s in stages if s["stage"].startswith("text scoring (classifier")), None)
    scored = by_name.get("text scoring (wall)")
    if classifier and scored and scored["rows"]:
        # The rate counts only on a community that says most things once: where texts repeat, the
        # classifier reads each once and the rate flatters it.
        distinct = 100 * classifier["rows"] / scored["rows"]
        out.append(Verdict("distinct texts among the texts scored", distinct, 90, False, "{:.1f}%"))
    if classifier and classifier["seconds"]:
        rate = classifier["rows"] / classifier["seconds"]
        out.append(Verdict("text scoring per core", rate, 20_000, False, "{:,.0f} texts/s"))
    ours = _replaced_seconds(stages)
    if r["scale"] == "M" and baseline and ours:
        out.append(Verdict("speed-up over the pandas baseline (its time / our load + dbt)", baseline / ours, 3,
                           False, "{:.2f}x"))  # fmt: skip
    return out


def _profile_lines(r: dict) -> list[str]:
    """docs: the load's seconds per entity and where dbt's time went, full build beside the incremental day."""
    profile = r.get("profile")
    if not profile:
        return []
    out = ["### Where the time goes", ""]
    load = profile.get("full", {}).get("load")
    if load:
        out += ["Full build's load, per entity (files two at a time in threads, one writer):", ""]
        out += ["| entity | rows | seconds | rows/s |", "|---|---:|---:|---:|"]
        for entity, (secs, rows) in sorted(load.items(), key=lambda kv: -kv[1][0]):
            rate = f"{rows / secs:,.0f}" if rows and secs else "–"
            out.append(f"| {entity} | {rows:,} | {secs:.2f} | {rate} |")
        out.append("")
    builds = [(name, profile[key]["dbt"]) for name, key in (("full", "full"), ("incremental", "day")) if key in profile]
    if builds:
        heads = " | ".join(name for name, _ in builds)
        out += [
            "dbt (two threads: a node's seconds include waiting for the other thread's):",
            "",
            f"| | {heads} |",
            "|---|" + "---:|" * len(builds),
            "| stage seconds | " + " | ".join(f"{d['seconds']:.1f}" for _, d in builds) + " |",
            "| start-up, parse, bookkeeping | " + " | ".join(f"{d['outside_run']:.1f}" for _, d in builds) + " |",
        ]
        for kind in sorted({k for _, d in builds for k in d["thread_seconds"]}):
            values = " | ".join(f"{d['thread_seconds'].get(kind, 0):.1f}" for _, d in builds)
            out.append(f"| {kind}s, thread seconds | {values} |")
        if any("value_fit" in d for _, d in builds):
            values = " | ".join(
                f"{d['value_fit']['seconds']:.1f} ({d['value_fit']['customers']:,} buyers)" if "value_fit" in d else "–"
                for _, d in builds
            )
            out.append(f"| lifetime-value fit (between the halves) | {values} |")
        # The slowest nodes of either build, in the first build's order.
        top = []
        for _, d in builds:
            ranked = sorted(((t, kind, name) for kind, named in d["nodes"].items() for name, t in named.items()),
                            reverse=True)  # fmt: skip
            top += [(kind, name) for _, kind, name in ranked[:12] if (kind, name) not in top]
        first = builds[0][1]["nodes"]
        top.sort(key=lambda kn: -first.get(kn[0], {}).get(kn[1], 0))
        for kind, name in top:
            values = " | ".join(
                f"{d['nodes'][kind][name]:.1f}" if name in d["nodes"].get(kind, {}) else "–" for _, d in builds
            )
            out.append(f"| {kind} `{name}` | {values} |")
        out.append("")
    return out


def _machine_line(r: dict) -> str:
    line = f"Machine: {r['machine']}. Taken {r.get('taken', '?')}."
    if r.get("speed_control"):
        before, after = r["speed_control"]
        line += (
            f" Speed control (fixed Python work, `bench.speed_control`): {before:.2f} s before, {after:.2f} s after."
        )
    return line


def write_docs(results_dir: Path, doc: Path) -> None:
    """docs/benchmarks.md from every bench/results/<scale>.json present."""
    out = [
        "# Benchmarks",
        "",
        "Written by `make bench` (`python -m crm_pipeline.bench --scale S|M|L`) from `bench/results/*.json`;",
        "the figures are one run each, on the machine named and the engine named, nothing else running.",
        "Each pipeline stage runs in a fresh process, as an Airflow task does; its seconds start with its work",
        "(imports done). Peak MB is that process with its children (dbt, scoring workers), sampled every 0.1 s,",
        "or its own high-water mark if larger; on PostgreSQL the server's memory is not in it. The",
        "`write delta files` stage is the benchmark's own tooling, not the pipeline.",
        "",
    ]

    def order(path: Path) -> tuple:
        scale, _, engine = path.stem.partition("-")
        return (list(SCALES).index(scale) if scale in SCALES else 9, engine)

    for path in sorted(results_dir.glob("*.json"), key=order):
        r = json.loads(path.read_text())
        out += [
            f"## Scale {r['scale']}: {r['customers']:,} customers, {r.get('engine', 'duckdb')}"
            + (", the shop's order files only" if r.get("landing") == "orders-only" else ""),
            "",
            _machine_line(r),
            "",
        ]
        if "landed_rows" in r:
            landed = ", ".join(f"{entity} {n:,}" for entity, n in r["landed_rows"].items())
            out += [f"Landed rows: {landed}.", ""]
        out += ["| stage | seconds | rows | rows/s | peak MB |", "|---|---:|---:|---:|---:|"]
        for s in r["stages"]:
            rate = f"{s['rows'] / s['seconds']:,.0f}" if s["rows"] and s["seconds"] else "–"
            out.append(
                f"| {s['stage']} | {s['seconds']:.2f} | {s['rows'] or '–':,} | {rate} | {s['peak_mb'] or '–'} |"
                if s["rows"]
                else f"| {s['stage']} | {s['seconds']:.2f} | – | – | {s['peak_mb'] or '–'} |"
            )
        out.append("")
        out += [f"- {key}: {value}" for key, value in r.get("summary", {}).items()]
        out.append("")
        verdicts = targets(r)
        if verdicts:
            out += ["The issue's targets at this scale and engine:", ""]
            out += [f"- {v.line()}" for v in verdicts]
            out.append("")
        out += _profile_lines(r)
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text("\n".join(out) + "\n", encoding="utf-8")


def describe_machine(pg_url: str | None = None) -> str:
    """The machine and engine a run is on, as the results and docs name them."""
    from crm_pipeline.load.warehouse import ram_bytes

    return (
        f"{platform.machine()}, {os.cpu_count()} cores, {ram_bytes() / 2**30:.0f} GB, {platform.system()}, "
        f"Python {platform.python_version()}, "
        + (_pg_version(pg_url) if pg_url else f"DuckDB {__import__('duckdb').__version__}")
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", default="S", choices=sorted(SCALES))
    ap.add_argument("--skip-baseline", action="store_true", help="do not run the pandas baseline")
    ap.add_argument(
        "--orders-only",
        action="store_true",
        help="the full build and the pandas baseline on the shop's order files alone (no incremental day)",
    )
    ap.add_argument(
        "--postgres",
        metavar="URL",
        help="run on PostgreSQL instead of DuckDB: a server URL whose database is DROPPED and created anew",
    )
    args = ap.parse_args(argv)
    if args.orders_only and (args.postgres or args.skip_baseline):
        ap.error("--orders-only compares with the pandas baseline, on DuckDB: not with --postgres or --skip-baseline")
    engine = "postgres" if args.postgres else "duckdb"
    base = REPO_ROOT / "bench" / "data" / args.scale
    landing, truth = base / "landing", base / "ground_truth"
    stages = []

    control_before = speed_control()
    t0 = time.perf_counter()
    if not _generated(truth, args.scale):
        from crm_pipeline.sample.generate import generate

        shutil.rmtree(base, ignore_errors=True)
        with Peak() as peak:
            volume = _volume(args.scale)
            meta = generate(landing, truth, customers=SCALES[args.scale], seed=42, end_date=END, volume=volume)
        stages.append(("generate", time.perf_counter() - t0, sum(meta["rows"].values()), peak.mb))
    else:
        stages.append(("generate (reused)", 0.0, None, None))
    for old in landing.glob("*/delta_*"):  # a previous bench's incremental day
        old.unlink()
    if args.orders_only:
        base = base / "orders-only"
        landing = orders_only(landing, base / "landing")

    if args.postgres:
        url = _fresh_pg_database(args.postgres)
    else:
        wh_path = base / "warehouse.duckdb"
        for stale in (wh_path, wh_path.with_name(wh_path.name + ".wal")):  # a killed bench can leave its log
            stale.unlink(missing_ok=True)
        url = f"duckdb:///{wh_path}"
    os.environ.update(CRM_WAREHOUSE_URL=url, CRM_LANDING_DIR=str(landing), CRM_DBT_ARTIFACTS_DIR=str(base / "dbt"))
    from crm_pipeline.load.loader import ensure_tables, write_pseudonym_key
    from crm_pipeline.load.warehouse import Warehouse
    from crm_pipeline.text.score import ensure_table
    from crm_pipeline.value.score import ensure_tables as ensure_value_tables

    with Warehouse.from_url(url) as wh:
        ensure_tables(wh)
        write_pseudonym_key(wh, "bench")
        ensure_table(wh)
        ensure_value_tables(wh)
    full, full_profile = run_day(url, landing, END, "")
    stages += full
    full_seconds = _build_seconds(_stage_dicts(full), "")

    summary = {"full build (load, raw checks, scoring, dbt, mart checks, publish)": f"{full_seconds:.1f} s"}
    rates = {name: n / secs for name, secs, n, _ in full if n and secs}
    summary["raw load"] = f"{rates['extract + load']:,.0f} rows/s (target 500,000)"
    summary["text scoring, classifier on one core"] = (
        f"{rates['text scoring (classifier, distinct texts)']:,.0f} texts/s (target 20,000 per core)"
    )
    if not args.skip_baseline:
        from crm_pipeline.bench_baseline import run as baseline

        with Peak() as peak:  # every frame stays in memory until the RFM: the peak is the last step's
            b = baseline(landing, END, "Asia/Shanghai", base / "baseline.sqlite")
        for step, secs in b["seconds"].items():
            last = step == "groupby RFM"
            stages.append((f"pandas baseline: {step}", secs, None if last else b["rows"], peak.mb if last else None))
        ours = _replaced_seconds(_stage_dicts(full))
        theirs = sum(b["seconds"].values())
        summary["pandas baseline (read_csv, to_sql, groupby RFM)"] = f"{theirs:.1f} s, {b['customers_scored']:,} scored"
        summary["ours (load + dbt) / baseline"] = (
            f"{ours / theirs:.2f} (ours does identity, engagement, feedback and every mart besides RFM)"
        )

        if args.orders_only:
            summary["make run's work / baseline"] = f"{full_seconds / theirs:.2f}"

    day_profile = None
    if not args.orders_only:
        day = END + dt.timedelta(days=1)
        t0 = time.perf_counter()
        with Peak() as peak:
            delta_rows = write_delta(landing, day)
        stages.append(("day+1: write delta files", time.perf_counter() - t0, delta_rows, peak.mb))
        incremental, day_profile = run_day(url, landing, day, DAY)
        stages += incremental
        day_seconds = _build_seconds(_stage_dicts(incremental), DAY)
        summary["incremental day"] = (
            f"{day_seconds:.1f} s = {100 * day_seconds / full_seconds:.0f}% of the full build "
            f"({delta_rows:,} delta rows)"
        )

    machine = describe_machine(url if args.postgres else None)
    control = (round(control_before, 3), round(speed_control(), 3))
    print(f"bench scale {args.scale} ({SCALES[args.scale]:,} customers) on {machine}")
    print(f"speed control: {control[0]:.2f} s before, {control[1]:.2f} s after")
    print("\n".join(_table(stages)))
    for key, value in summary.items():
        print(f"{key}: {value}")
    out = REPO_ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    name = args.scale if engine == "duckdb" else f"{args.scale}-{engine}"
    landed = json.loads((truth / "summary.json").read_text(encoding="utf-8"))["rows"]
    if args.orders_only:
        name += "-orders"
        landed = {entity: n for entity, n in landed.items() if entity in ORDER_FILES}
    results = {
        "scale": args.scale,
        "engine": engine,
        "customers": SCALES[args.scale],
        **({"landing": "orders-only"} if args.orders_only else {}),
        "landed_rows": landed,
        "machine": machine,
        "taken": dt.date.today().isoformat(),
        "speed_control": control,
        "stages": _stage_dicts(stages),
        "summary": summary,
        "profile": {"full": full_profile, **({"day": day_profile} if day_profile else {})},
    }
    for verdict in targets(results):
        print(f"target: {verdict.line()}")
    (out / f"{name}.json").write_text(json.dumps(results, indent=2, ensure_ascii=False))
    write_docs(out, REPO_ROOT / "docs" / "benchmarks.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
