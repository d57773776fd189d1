"""The short report `make run` prints: loads, quarantine, marts, tier x segment."""

from __future__ import annotations

import datetime as dt

from crm_pipeline.config import mart_names, settings
from crm_pipeline.load.warehouse import Warehouse, parse_url, writer_lock

MARTS = mart_names()
CATEGORIES = ["product_quality", "logistics", "service", "price", "usability", "other"]
TIERS = ["prospect", "customer", "member", "partner"]


def table(headers: list[str], rows: list[list]) -> str:
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in r] for r in rows]
    widths = [max(_width(row[i]) for row in cells) for i in range(len(headers))]
    lines = []
    for n, row in enumerate(cells):
        lines.append("  ".join(_pad(c, w, i > 0 and n > 0) for i, (c, w) in enumerate(zip(row, widths, strict=True))))
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _width(s: str) -> int:
    # CJK characters take two columns in a terminal.
    return sum(2 if ord(ch) > 0x2E80 else 1 for ch in s)


def _pad(s: str, w: int, right: bool) -> str:
    fill = " " * (w - _width(s))
    return fill + s if right else s + fill


def collect(wh: Warehouse, as_of: dt.date) -> dict:
    loads = wh.fetchall(
        "select entity, count(*), sum(extracted_rows), sum(loaded_rows), sum(quarantined_rows), "
        "sum(case when run_date = %s then loaded_rows else 0 end), "
        "sum(case when run_date = %s then quarantined_rows else 0 end) "
        "from audit.load_batches group by entity order by entity",
        (as_of, as_of),
    )
    reasons = wh.fetchall(
        "select entity, reason, count(*) from audit.quarantine group by entity, reason order by 3 desc limit 10"
    )
    counts = {m: wh.fetchone(f"select count(*) from marts.{m}")[0] for m in MARTS if wh.table_exists("marts", m)}
    grid = (
        wh.fetchall("select rfm_segment, community_tier, count(*) from marts.fct_customer_rfm group by 1, 2")
        if "fct_customer_rfm" in counts
        else []
    )
    value = (
        wh.fetchall(
            "select d.community_tier, count(*), sum(v.p_alive), sum(v.expected_orders_365d), sum(v.clv_12m) "
            "from marts.fct_customer_value v join marts.dim_customers d on d.customer_key = v.customer_key "
            "group by 1"
        )
        if "fct_customer_value" in counts and "dim_customers" in counts
        else []
    )
    lift = (
        wh.fetchone(
            "select treated_people - uncompared_people, control_people, window_days, purchase_rate_lift, "
            "purchase_rate_lift_low, purchase_rate_lift_high, purchase_rate_lift_relative, spend_lift, "
            "spend_lift_low, spend_lift_high, purchase_verdict, "
            "(select count(*) from marts.fct_community_lift where cohort_month is not null) "
            "from marts.fct_community_lift where cohort_key = 'all'"
        )
        if "fct_community_lift" in counts
        else None
    )
    tiers = (
        wh.fetchall("select community_tier, count(*) from marts.dim_customers group by 1")
        if "dim_customers" in counts
        else []
    )
    channels = (
        wh.fetchone(
            "select count(*), sum(case when is_customer then 1 else 0 end), "
            "sum(case when is_forum_member then 1 else 0 end), sum(case when is_chat_member then 1 else 0 end), "
            "sum(case when is_customer and (is_forum_member or is_chat_member) then 1 else 0 end) "
            "from marts.dim_customers"
        )
        if "dim_customers" in counts
        else None
    )
    engagement = "fct_community_engagement" in counts
    levels = (
        wh.fetchall(
            "select e.level, l.level_name, count(*) from marts.fct_community_engagement e "
            "left join reference.levels l on e.level = l.level group by e.level, l.level_name order by e.level"
        )
        if engagement
        else []
    )
    leaders = (
        wh.fetchall(
            "select customer_key, distinct_repliers_90d, likes_received_90d, level, community_tier "
            "from marts.fct_community_engagement where is_opinion_leader order by reach_rank, customer_key limit 10"
        )
        if engagement
        else []
    )
    flags = (
        wh.fetchone(
            "select sum(case when is_opinion_leader then 1 else 0 end), sum(case when is_core_fan then 1 else 0 end) "
            "from marts.fct_community_engagement"
        )
        if engagement
        else None
    )
    onion = (
        wh.fetchall("select onion_layer, count(*), sum(activity_90d) from marts.fct_community_engagement group by 1")
        if engagement
        else []
    )
    circles = (
        wh.fetchall(
            "select province, city, people, partners, opinion_leaders, potential_hosts, events_held_90d, "
            "attendances_90d from marts.fct_region_circles where city != 'unknown' "
            "order by potential_hosts desc, people desc, province, city limit 8"
        )
        if "fct_region_circles" in counts
        else []
    )
    rhythm = (
        wh.fetchall(
            "select weekday, hour_of_day, sum(messages) from marts.fct_activity_rhythm "
            "group by 1, 2 order by 3 desc, 1, 2 limit 5"
        )
        if "fct_activity_rhythm" in counts
        else []
    )
    feedback = (
        wh.fetchall("select source, category, count(*) from marts.fct_negative_feedback group by 1, 2")
        if "fct_negative_feedback" in counts
        else []
    )
    severities = (
        wh.fetchall("select severity, count(*) from marts.fct_negative_feedback group by 1")
        if "fct_negative_feedback" in counts
        else []
    )
    at_risk = (
        wh.fetchall(
            "select customer_key, risk_reason, negative_experiences_recent, last_negative_source, "
            "last_negative_category, days_since_last_negative, value_at_stake, "
            "cast(clv_12m as decimal(18, 2)), community_tier "
            "from marts.fct_customer_risk where is_at_risk "
            "order by clv_12m desc nulls last, value_at_stake desc, negative_experiences_recent desc, customer_key "
            "limit 10"
        )
        if "fct_customer_risk" in counts
        else []
    )
    at_risk_total = (
        wh.fetchone(
            "select count(*), coalesce(sum(value_at_stake), 0), "
            "(select count(*) from marts.fct_customer_risk where risk_state = 'win_back'), "
            "cast(sum(clv_12m) as decimal(18, 2)) "
            "from marts.fct_customer_risk where is_at_risk"
        )
        if "fct_customer_risk" in counts
        else None
    )
    scored = (
        wh.fetchall("select classifier_version, count(*) from scoring.text_scores group by 1 order by 1")
        if wh.table_exists("scoring", "text_scores")
        else []
    )
    checks = (
        wh.fetchall(
            "select severity, sum(case when success then 1 else 0 end), sum(case when success then 0 else 1 end), "
            "max(report) from audit.check_results where run_date = %s group by 1 order by 1",
            (as_of,),
        )
        if wh.table_exists("audit", "check_results")
        else []
    )
    failed_checks = (
        wh.fetchall(
            "select severity, suite, expectation, relation, count(*) from audit.check_results "
            "where run_date = %s and not success group by 1, 2, 3, 4 order by 1, 2, 3, 4 limit 15",
            (as_of,),
        )
        if checks
        else []
    )
    held = (
        wh.fetchall(
            "select entity, source, run_date from audit.load_batches where quality_status = 'held' order by 3, 1, 2"
        )
        if wh.table_exists("audit", "load_batches") and "quality_status" in wh.columns("audit", "load_batches")
        else []
    )
    open_alerts = (
        wh.fetchall("select severity, title, times_seen from audit.alerts where status = 'open' order by 2")
        if wh.table_exists("audit", "alerts")
        else []
    )
    return {
        "checks": checks,
        "failed_checks": failed_checks,
        "held": held,
        "open_alerts": open_alerts,
        "feedback": feedback,
        "severities": dict(severities),
        "at_risk": at_risk,
        "at_risk_total": at_risk_total,
        "scored": scored,
        "onion": onion,
        "circles": circles,
        "rhythm": rhythm,
        "levels": levels,
        "leaders": leaders,
        "flags": flags,
        "loads": loads,
        "reasons": reasons,
        "counts": counts,
        "grid": grid,
        "value": value,
        "lift": lift,
        "tiers": dict(tiers),
        "channels": channels,
    }


def render(data: dict, as_of: dt.date, where: str) -> str:
    out = [f"== CRM warehouse as of {as_of.isoformat()} ({settings().timezone}) ==", f"warehouse: {where}", ""]
    out.append("Loads (all batches; 'today' = batches loaded by this run date):")
    out.append(
        table(
            ["entity", "batches", "extracted", "loaded", "quarantined", "loaded today", "quarantined today"],
            [list(r) for r in data["loads"]],
        )
    )
    if data["reasons"]:
        out += ["", "Quarantine, top reasons:", table(["entity", "reason", "rows"], [list(r) for r in data["reasons"]])]
    if data.get("checks"):
        report = next((r for *_, r in data["checks"] if r), None)
        out += [
            "",
            "Quality checks this run date (audit.check_results):",
            table(["severity", "passed", "failed"], [[sev, ok, bad] for sev, ok, bad, _ in data["checks"]]),
            f"report: {report}",
        ]
        if data.get("failed_checks"):
            out.append(
                table(
                    ["severity", "suite", "expectation", "relation", "results"],
                    [list(r) for r in data["failed_checks"]],
                )
            )
    if data.get("held"):
        out += [
            "Batches held out of staging by a critical check:",
            table(["entity", "source", "run date"], [list(r) for r in data["held"]]),
        ]
    if data.get("open_alerts"):
        out += ["Open alerts:", table(["severity", "alert", "times seen"], [list(r) for r in data["open_alerts"]])]
    out += ["", "Marts:", table(["mart", "rows"], [[f"marts.{k}", v] for k, v in data["counts"].items()])]
    if data.get("channels"):
        people, shop, forum, chat, both = data["channels"]
        out += [
            "",
            f"People: {people} (shop customers {shop}, forum members {forum}, chat members {chat}; "
            f"{both} both buy and take part)",
        ]
    if data["tiers"]:
        out += [
            "",
            "People by community tier (dim_customers):",
            table(["tier", "people"], [[t, data["tiers"].get(t, 0)] for t in TIERS]),
        ]
    if data.get("levels"):
        total = sum(n for *_, n in data["levels"]) or 1
        out += [
            "",
            "Community members by level (fct_community_engagement):",
            table(
                ["level", "name", "members", "share"],
                [[lv, name, n, f"{100 * n / total:.1f}%"] for lv, name, n in data["levels"]],
            ),
        ]
    if data.get("flags"):
        leaders_n, core_n = data["flags"]
        out += ["", f"Opinion leaders: {leaders_n or 0}; core fans (top engagement, member or partner): {core_n or 0}"]
    if data.get("leaders"):
        out += [
            "Top opinion leaders (by reach: distinct repliers in 90 days):",
            table(["customer_key", "repliers 90d", "likes 90d", "level", "tier"], [list(r) for r in data["leaders"]]),
        ]
    if data.get("onion"):
        by_layer = {layer: (n, act) for layer, n, act in data["onion"]}
        members = sum(n for n, _ in by_layer.values()) or 1
        activity = sum(act or 0 for _, act in by_layer.values()) or 1
        rows = []
        for layer in ("core", "regular", "casual"):
            n, act = by_layer.get(layer, (0, 0))
            rows.append([layer, n, f"{100 * n / members:.1f}%", f"{100 * (act or 0) / activity:.1f}%"])
        out += [
            "",
            "Onion (fct_community_engagement, activity in 90 days):",
            table(["layer", "members", "share of members", "share of activity"], rows),
        ]
    if data.get("circles"):
        out += [
            "",
            "Region circles with the most potential event hosts (fct_region_circles):",
            table(
                ["province", "city", "people", "partners", "opinion leaders", "hosts", "events 90d", "check-ins 90d"],
                [list(r) for r in data["circles"]],
            ),
        ]
    if data.get("rhythm"):
        days = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
        peaks = ", ".join(f"{days[d - 1]} {h:02d}:00 ({n})" for d, h, n in data["rhythm"])
        out += ["", f"Busiest local hours, 90 days (fct_activity_rhythm): {peaks}"]
    if data.get("feedback"):
        cell = {(src, cat): n for src, cat, n in data["feedback"]}
        sources = ["forum", "chat", "review", "refund"]
        rows = [
            [src] + [cell.get((src, c), 0) for c in CATEGORIES] + [sum(cell.get((src, c), 0) for c in CATEGORIES)]
            for src in sources
        ]
        rows.append(
            ["total"] + [sum(cell.get((src, c), 0) for src in sources) for c in CATEGORIES] + [sum(cell.values())]
        )
        sev = data["severities"]
        scored = ", ".join(f"{n} by {v}" for v, n in data["scored"])
        out += [
            "",
            "Negative feedback by source and category (fct_negative_feedback):",
            table(["source", *CATEGORIES, "total"], rows),
            "severity: "
            + ", ".join(f"{s} {sev.get(s, 0)}" for s in ("critical", "high", "medium", "low"))
            + (f"; texts scored: {scored}" if scored else ""),
        ]
    if data.get("at_risk_total"):
        n, value, win_back, clv = data["at_risk_total"]
        lost = f"{clv or 0:,.2f}" if clv is not None or not n else "n/a (no usable value fit)"
        out += [
            "",
            f"At-risk customers (recent unanswered complaints, fct_customer_risk): {n}; their spend to date "
            f"{value:,.2f}, expected value lost if they leave (12-month CLV) {lost}; "
            f"win-back (complaints, then silence): {win_back}",
        ]
        if data.get("at_risk"):
            out.append(
                table(
                    [
                        "customer_key",
                        "reason",
                        "recent negatives",
                        "last source",
                        "last category",
                        "days since",
                        "spend to date",
                        "CLV 12m",
                        "tier",
                    ],
                    [list(r) for r in data["at_risk"]],
                )
            )
    if data["grid"]:
        segs = sorted({s for s, _, _ in data["grid"]})
        cell = {(s, t): n for s, t, n in data["grid"]}
        rows = [
            [s] + [cell.get((s, t), 0) for t in TIERS[1:]] + [sum(cell.get((s, t), 0) for t in TIERS)] for s in segs
        ]
        rows.append(["total"] + [sum(cell.get((s, t), 0) for s in segs) for t in TIERS[1:]] + [sum(cell.values())])
        out += ["", "RFM segment x community tier (fct_customer_rfm):", table(["segment", *TIERS[1:], "total"], rows)]
    if data.get("value"):
        out += ["", "Predicted value by tier (fct_customer_value; 12-month CLV, BG/NBD + Gamma-Gamma):"]
        out.append(
            table(["tier", "buyers", "expected alive", "orders next 365d", "CLV 12m"], _value_rows(data["value"]))
        )
    out += ["", _lift_line(data.get("lift"))]
    return "\n".join(out)


def _lift_line(lift: tuple | None) -> str:
    """The pooled community lift (fct_community_lift), or why there is none."""
    head = "Community lift (fct_community_lift; joiners against their own buying before, grown as non-joiners' grew): "
    if lift is None:
        return head + "no cohort yet (a joining month needs its windows inside the data and over by the as-of day)"
    joiners, controls, days, rate, low, high, relative, spend, spend_low, spend_high, verdict, cohorts = lift
    if rate is None or low is None:
        return head + f"{verdict} ({joiners} joiners compared over {cohorts} joining months)"
    return head + (
        f"{verdict}: {rate:+.3f} orders per person per 30 days ({relative:+.0%} on what they would have bought; "
        f"95% CI {low:+.3f} to {high:+.3f}), net spend {spend:+,.2f} (CI {spend_low:+,.2f} to {spend_high:+,.2f}); "
        f"{joiners} joiners over {cohorts} joining months against {controls:,} non-joiner comparisons, "
        f"{days}-day windows"
    )


def _value_rows(value: list[tuple]) -> list[list]:
    """A row per tier in tier order and a total; predictions are null (None) when no fit was usable."""
    order = {t: i for i, t in enumerate(TIERS)}
    rows = sorted(value, key=lambda r: order.get(r[0], len(TIERS)))
    num = lambda v, fmt: "n/a" if v is None else format(float(v), fmt)  # noqa: E731
    out = [[t, n, num(alive, ",.1f"), num(orders, ",.1f"), num(clv, ",.2f")] for t, n, alive, orders, clv in rows]
    total = [sum(r[i] or 0 for r in rows) if all(r[i] is not None for r in rows) else None for i in (2, 3, 4)]
    out.append(["total", sum(r[1] for r in rows), num(total[0], ",.1f"), num(total[1], ",.1f"), num(total[2], ",.2f")])
    return out


def print_summary(as_of: dt.date) -> None:
    cfg = settings()
    target = parse_url(cfg.warehouse_url)
    with writer_lock(target), Warehouse(target) as wh:  # DuckDB: another run may be writing
        data = collect(wh, as_of)
        print(render(data, as_of, target.label))
        # The sample community's ground truth lives beside the landing dir; real data has none.
        truth = cfg.landing_dir.parent / "ground_truth"
        if (truth / "people.csv").exists() and wh.table_exists("intermediate", "int_identity__resolved"):
            from crm_pipeline.identity_eval import score

            s = score(wh, truth)
            print(
                f"\nIdentity linking vs ground truth ({truth}): precision {s.precision:.4f}, recall {s.recall:.4f} "
                f"({s.correct_pairs} of {s.predicted_pairs} predicted pairs correct, {s.true_pairs} linkable pairs)"
            )
