"""`make bench`: time each pipeline stage on a generated community and print a table.

    python -m crm_pipeline.bench --scale S

A first cut for the backbone: generate (reused when present), extract and
load, dbt, with rows per second and peak memory per stage, written to
bench/results/<scale>.json. The pandas baseline, incremental days and the
PostgreSQL run belong to the benchmark issue. It never fails on a time.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import shutil
import time

from crm_pipeline.config import REPO_ROOT

SCALES = {"XS": 2_000, "S": 10_000, "M": 100_000, "L": 1_000_000}
END = dt.date(2026, 11, 22)


def _rss_mb(who: int) -> float:
    return resource.getrusage(who).ru_maxrss / 1024


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", default="S", choices=sorted(SCALES))
    args = ap.parse_args(argv)
    base = REPO_ROOT / "bench" / "data" / args.scale
    landing, truth = base / "landing", base / "ground_truth"
    stages = []

    t0 = time.perf_counter()
    if not (truth / "summary.json").exists():
        from crm_pipeline.sample.generate import generate

        shutil.rmtree(base, ignore_errors=True)
        generate(landing, truth, customers=SCALES[args.scale], seed=42, end_date=END)
        stages.append(("generate", time.perf_counter() - t0, None, _rss_mb(resource.RUSAGE_SELF)))
    else:
        stages.append(("generate (reused)", 0.0, None, None))

    wh_path = base / "warehouse.duckdb"
    wh_path.unlink(missing_ok=True)
    url = f"duckdb:///{wh_path}"
    os.environ.update(CRM_WAREHOUSE_URL=url, CRM_LANDING_DIR=str(landing), CRM_DBT_ARTIFACTS_DIR=str(base / "dbt"))
    from zoneinfo import ZoneInfo

    from crm_pipeline.load.loader import ensure_tables, load_landing, write_pseudonym_key
    from crm_pipeline.load.specs import SPECS
    from crm_pipeline.load.warehouse import Warehouse
    from crm_pipeline.transform.dbt import run_dbt

    t0 = time.perf_counter()
    rows = 0
    with Warehouse.from_url(url) as wh:
        ensure_tables(wh)
        write_pseudonym_key(wh, "bench")
        for entity in SPECS:
            rows += sum(r.extracted_rows for r in load_landing(wh, entity, landing, END, ZoneInfo("Asia/Shanghai")))
    stages.append(("extract + load (all)", time.perf_counter() - t0, rows, _rss_mb(resource.RUSAGE_SELF)))

    from crm_pipeline.text.score import score_pending

    t0 = time.perf_counter()
    with Warehouse.from_url(url) as wh:
        scored = score_pending(wh)
    stages.append(("text scoring (wall)", time.perf_counter() - t0, scored.scored, _rss_mb(resource.RUSAGE_SELF)))
    # The classifier alone, one process on one core: the texts/s target.
    stages.append(("text scoring (classifier)", scored.seconds, scored.scored, None))

    t0 = time.perf_counter()
    run_dbt(["seed"], END)
    run_dbt(["build", "--exclude", "resource_type:seed"], END)
    stages.append(("dbt seed + build", time.perf_counter() - t0, rows, _rss_mb(resource.RUSAGE_CHILDREN)))

    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    print(f"bench scale {args.scale} ({SCALES[args.scale]:,} customers) on {machine}")
    print(f"{'stage':<28}{'seconds':>10}{'rows':>12}{'rows/s':>12}{'peak MB':>10}")
    for name, secs, n, mb in stages:
        rate = f"{n / secs:,.0f}" if n and secs else "-"
        print(f"{name:<28}{secs:>10.2f}{(f'{n:,}' if n else '-'):>12}{rate:>12}{(f'{mb:,.0f}' if mb else '-'):>10}")
    out = REPO_ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{args.scale}.json").write_text(
        json.dumps(
            {
                "scale": args.scale,
                "customers": SCALES[args.scale],
                "machine": machine,
                "stages": [
                    {"stage": s, "seconds": round(t, 3), "rows": n, "peak_mb": mb and round(mb)}
                    for s, t, n, mb in stages
                ],
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
