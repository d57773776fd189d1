"""Generate a deterministic sample community into a landing dir, and its ground truth beside it.

The pipeline reads only the landing dir. The ground-truth folder records what
the generator knows and the pipeline must discover: who is who across shop,
forum and chat, and which texts were written negative and about what.

    python -m crm_pipeline.sample.generate --customers 2000 --seed 7 \
        --end-date 2026-11-23 --out data/landing --truth data/ground_truth
"""

from __future__ import annotations

import argparse
import collections
import csv
import dataclasses
import datetime as dt
import hashlib
import itertools
import json
import math
import random
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

from crm_pipeline.sample import texts

# (province, [cities]) with rough population weights; real names so region
# circles look like a brand's map.
REGIONS = [
    ("广东省", ["广州市", "深圳市", "东莞市", "佛山市"], 14),
    ("浙江省", ["杭州市", "宁波市", "温州市"], 8),
    ("江苏省", ["南京市", "苏州市", "无锡市"], 9),
    ("上海市", ["上海市"], 7),
    ("北京市", ["北京市"], 7),
    ("四川省", ["成都市", "绵阳市"], 7),
    ("湖北省", ["武汉市", "宜昌市"], 5),
    ("山东省", ["济南市", "青岛市", "烟台市"], 8),
    ("河南省", ["郑州市", "洛阳市"], 7),
    ("福建省", ["福州市", "厦门市", "泉州市"], 5),
    ("陕西省", ["西安市"], 4),
    ("湖南省", ["长沙市"], 4),
    ("重庆市", ["重庆市"], 3),
    ("天津市", ["天津市"], 2),
    ("辽宁省", ["沈阳市", "大连市"], 3),
    ("云南省", ["昆明市"], 2),
    ("西藏自治区", ["拉萨市"], 1),
]

CHANNELS = [("mini_program", 30), ("tmall", 25), ("jd", 20), ("live_stream", 15), ("offline_store", 10)]

PRODUCTS = [
    # product_id, name, category, price
    ("P1001", "星耀手机 X1", "phone", 2999.00),
    ("P1002", "星耀手机 X1 Pro", "phone", 4299.00),
    ("P2001", "灵动耳机 Air", "audio", 499.00),
    ("P2002", "灵动耳机 Pro", "audio", 899.00),
    ("P3001", "智能手表 S3", "wearable", 1299.00),
    ("P3002", "手环 Band 7", "wearable", 249.00),
    ("P4001", "65W 快充充电器", "accessory", 129.00),
    ("P4002", "磁吸保护壳", "accessory", 79.00),
    ("P5001", "扫地机器人 R5", "smart_home", 2199.00),
    ("P5002", "智能音箱 Mini", "smart_home", 199.00),
]

MSG_TYPES = [("text", 70), ("image", 10), ("voice", 5), ("video", 2), ("link", 5), ("red_packet", 3)]
TZ = ZoneInfo("Asia/Shanghai")
LANGS = [("zh", 70), ("zh_hant", 10), ("en", 20)]


def _weighted(rng: random.Random, pairs):
    items, weights = zip(*pairs, strict=True)
    return rng.choices(items, weights=weights, k=1)[0]


def _fullwidth(s: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if c.isdigit() else c for c in s)


def format_phone(rng: random.Random, digits: str) -> str:
    """One phone number in one of the shapes people really type."""
    style = rng.randrange(6)
    if style == 0:
        return digits
    if style == 1:
        return f"+86 {digits[:3]} {digits[3:7]} {digits[7:]}"
    if style == 2:
        return f"{digits[:3]}-{digits[3:7]}-{digits[7:]}"
    if style == 3:
        return f"86{digits}"
    if style == 4:
        return _fullwidth(digits)
    return f"+86-{digits}"


def format_amount(rng: random.Random, amount: float) -> str:
    style = rng.randrange(7)
    if style <= 2:
        return f"{amount:.2f}"
    if style == 3:
        return f"¥{amount:,.2f}"
    if style == 4:
        return f"￥{amount:.0f}" if amount == int(amount) else f"￥{amount:.2f}"
    if style == 5:
        return f"{amount:.2f}元"
    return _fullwidth(f"{amount:.2f}").replace(".", "．")


def format_ts(rng: random.Random, ts_utc: dt.datetime) -> str:
    """ISO-8601, sometimes naive local time, sometimes with an offset."""
    style = rng.randrange(3)
    if style == 0:
        return ts_utc.astimezone(TZ).replace(tzinfo=None).isoformat(sep=" ", timespec="seconds")
    if style == 1:
        return ts_utc.astimezone(TZ).isoformat(timespec="seconds")
    return ts_utc.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass
class Person:
    person_id: str
    province: str
    city: str
    phone: str | None
    email: str | None
    unionid: str | None
    member_id: str | None
    customer_id: str | None = None
    forum_user_id: str | None = None
    chat_sender_id: str | None = None
    forum_link: str = ""  # the key the forum account shares with the shop, if any
    family_phone: bool = False  # the phone is shared with another customer (a family's)
    is_staff: bool = False  # a brand employee or bot account
    display_name: str = ""  # staff accounts' names (members get generated ones)
    value: float = 1.0  # Pareto spend multiplier
    activity: float = 1.0  # community activity multiplier
    dropped_out_at: dt.datetime | None = None  # stopped buying then (a buyer who dropped out), UTC
    base_orders: int = 0  # orders drawn before any community effect
    buying_from: dt.datetime | None = None  # start of the span those orders were drawn over, UTC
    community_joined_at: dt.datetime | None = None  # first forum or chat-group join, UTC


@dataclass(frozen=True)
class Volume:
    """How much each customer does, as multiples of the sample's own habits (1.0: the sample as it is).

    orders: orders a buyer places (items, reviews and refunds follow them); forum_posts: topics
    started per forum member (replies follow the topics); chat: messages per customer;
    distinct_texts: texts vary as a real community's do (the benchmark's scales), drawn from a random
    stream of their own so that every other value is the same as without it.
    """

    orders: float = 1.0
    forum_posts: float = 1.0
    chat: float = 1.0
    # Each text said once, as in real data (texts.CONTEXTS before it): the sample's texts repeat, so a
    # classifier that reads each distinct text once looks faster on it than on a real community.
    distinct_texts: bool = False


ROWS_PER_FILE = 20_000
TEXT_TRUTH_FIELDS = ["source", "record_id", "language", "is_negative", "category"]


class Spool:
    """One entity's rows written as they are made, ROWS_PER_FILE to a file: memory holds one file's rows.

    Files are numbered in the order their rows were made (four digits, so they sort in
    that order), which is the order the loader reads them.
    """

    def __init__(self, out: Path, entity: str, fmt: str, encoding: str):
        self.folder, self.entity, self.fmt, self.encoding = out / entity, entity, fmt, encoding
        self.rows: list[dict] = []
        self.count = self.parts = 0

    def append(self, row: dict) -> None:
        self.rows.append(row)
        self.count += 1
        if len(self.rows) >= ROWS_PER_FILE:
            self._flush()

    def extend(self, rows) -> None:
        for row in rows:
            self.append(row)

    def _flush(self) -> None:
        if self.rows:
            self.parts += 1
            write_rows(self.folder / f"{self.entity}_{self.parts:04d}.{self.fmt}", self.rows, self.fmt, self.encoding)
            self.rows = []

    def close(self) -> int:
        self._flush()
        return self.count


# Share of buyers who stop buying for good before the sample's last day (ground truth: people.csv).
DROPOUT_SHARE = 0.4
# How much more often a buyer buys after joining the forum or a chat group (0.5: half as often again);
# the orders it adds are listed in the ground truth (lift_orders.csv).
MEMBER_LIFT = 0.5


def _poisson(rng: random.Random, mean: float) -> int:
    """A Poisson draw (Knuth's product of uniforms; the means here are small)."""
    limit, k, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        k += 1
        product *= rng.random()
    return k


def _iso(ts: dt.datetime | None) -> str:
    return ts.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z") if ts else ""


def _before(ordered: dt.datetime, lo: dt.datetime, end: dt.datetime, stop: dt.datetime) -> dt.datetime:
    """An order time drawn over [lo, end] moved into [lo, stop] in proportion, at its own local time of day."""
    moved = (lo + (ordered - lo) * ((stop - lo) / (end - lo))).astimezone(TZ)
    local = ordered.astimezone(TZ)
    moved = moved.replace(hour=local.hour, minute=local.minute, second=local.second).astimezone(dt.UTC)
    return min(max(moved, lo), stop)


class Generator:
    def __init__(
        self,
        customers: int,
        seed: int,
        end_date: dt.date,
        out: Path,
        truth: Path,
        volume: Volume | None = None,
        history_days: int = 730,
        member_lift: float = MEMBER_LIFT,
        join_bias: float = 0.0,
    ):
        self.n = customers
        self.member_lift = member_lift
        self.join_bias = join_bias
        self.seed = seed
        self.rng = random.Random(seed)
        self.end_date = end_date
        self.end = dt.datetime.combine(end_date, dt.time(23, 59, 59), TZ).astimezone(dt.UTC)
        self.start = self.end - dt.timedelta(days=history_days)
        self.volume = volume or Volume()
        self.text_rng = random.Random(f"texts:{seed}")  # distinct_texts only: the main stream stays as it is
        self.people: list[Person] = []
        self.rows = {entity: Spool(out, entity, fmt, enc) for entity, (fmt, enc) in FILE_PLAN.items()}
        truth.mkdir(parents=True, exist_ok=True)
        self._truth_file = (truth / "texts.csv").open("w", encoding="utf-8", newline="")
        self._truth_writer = csv.DictWriter(self._truth_file, fieldnames=TEXT_TRUTH_FIELDS)
        self._truth_writer.writeheader()

    # -- helpers ---------------------------------------------------------
    def _day_weight(self, day: dt.date) -> float:
        w = 1.0
        if day.month == 6 and day.day <= 18:
            w += 2.0 if day.day >= 16 else 0.8  # 618
        if day.month == 11 and day.day <= 11:
            w += 4.0 if day.day >= 10 else 1.0  # Double 11
        if day.month == 12 and day.day == 12:
            w += 1.5
        if (day.month == 1 and day.day >= 15) or (day.month == 2 and day.day <= 10):
            w *= 0.5  # Spring Festival: logistics pause, fewer orders
        return w

    def _random_time(self, lo: dt.datetime, hi: dt.datetime, seasonal: bool = False) -> dt.datetime:
        span = (hi - lo).total_seconds()
        if span <= 0:
            return lo
        while True:
            t = lo + dt.timedelta(seconds=self.rng.random() * span)
            if not seasonal or self.rng.random() * 5.0 < self._day_weight(t.astimezone(TZ).date()):
                # Daytime-heavy hours, local.
                local = t.astimezone(TZ)
                hour = _weighted(
                    self.rng, [(h, 1 + (6 if 19 <= h <= 23 else 3 if 9 <= h <= 18 else 0)) for h in range(24)]
                )
                return local.replace(hour=hour).astimezone(dt.UTC)

    def _text(self, kind: str, lang: str | None = None, category: str | None = None) -> tuple[str, str, str | None]:
        rng = self.rng
        lang = lang or _weighted(rng, LANGS)
        if kind == "negative":
            category = category or rng.choice(list(texts.NEGATIVE))
            bank = texts.NEGATIVE[category]
            text = rng.choice(bank.get(lang) or bank["zh"])
        elif kind == "positive":
            text = rng.choice(texts.POSITIVE[lang])
        else:
            text = rng.choice(texts.NEUTRAL[lang])
        if rng.random() < 0.25:
            text += rng.choice(texts.EMOJI)
        if self.volume.distinct_texts:
            text = self._context(lang) + text
        return text, lang, category if kind == "negative" else None

    def _context(self, lang: str) -> str:
        """A clause that says which product, how long, where or which order (texts.CONTEXTS), never a sentiment."""
        r = self.text_rng
        return r.choice(texts.CONTEXTS[lang]).format(
            product=r.choice(texts.PRODUCT_SERIES) + str(r.randint(1, 999)),
            n=r.randint(2, 400),
            k=r.randint(2, 9),
            m=r.randint(2, 72),
            city=r.choice(texts.CITIES[lang]),
            order=f"{r.randrange(10**8):08d}",
        )

    def _truth(self, source: str, record_id: str, kind: str, lang: str, category: str | None) -> None:
        self._truth_writer.writerow(
            {
                "source": source,
                "record_id": record_id,
                "language": lang,
                "is_negative": int(kind == "negative"),
                "category": category or "",
            }
        )

    # -- entities --------------------------------------------------------
    def make_people(self) -> None:
        rng = self.rng
        regions = [(p, c) for p, cities, w in REGIONS for c in cities for _ in range(w)]
        phones: set[str] = set()
        for i in range(1, self.n + 1):
            province, city = rng.choice(regions)
            phone = None
            family = None
            if self.people and rng.random() < 0.03:
                # A family shares one phone: a relative living in the same city.
                family = rng.choice(self.people[-50:])
                if family.phone:
                    province, city, phone = family.province, family.city, family.phone
                    family.family_phone = True
                else:
                    family = None
            if family is None and rng.random() < 0.9:
                while True:
                    phone = rng.choice(["13", "15", "17", "18", "19"]) + f"{rng.randrange(10**9):09d}"
                    if phone not in phones:
                        phones.add(phone)
                        break
            p = Person(
                person_id=f"PER{i:06d}",
                province=province,
                city=city,
                phone=phone,
                email=f"user{i}@example.{rng.choice(['com', 'cn'])}" if rng.random() < 0.4 else None,
                unionid=f"oUn{rng.getrandbits(64):016x}" if rng.random() < 0.5 else None,
                member_id=f"M{i:07d}" if rng.random() < 0.6 else None,
                customer_id=f"C{i:06d}",
                value=min(rng.paretovariate(1.3), 40.0),
                activity=min(rng.paretovariate(1.5), 30.0),
                family_phone=family is not None,
            )
            self.people.append(p)

    def make_customers(self) -> None:
        rng = self.rng
        rows = self.rows["customers"]
        for p in self.people:
            registered = self._random_time(self.start - dt.timedelta(days=365), self.end - dt.timedelta(days=1))
            p.registered = registered
            rows.append(
                {
                    "customer_id": p.customer_id,
                    "registered_at": format_ts(rng, registered),
                    "phone": format_phone(rng, p.phone) if p.phone else "",
                    "email": (p.email.upper() if rng.random() < 0.2 else p.email) if p.email else "",
                    "wechat_unionid": p.unionid or "",
                    "member_id": p.member_id or "",
                    "province": p.province,
                    "city": p.city,
                    "updated_at": format_ts(rng, registered),
                }
            )

    def make_orders(self) -> None:
        rng = self.rng
        orders, items, refunds, reviews = (self.rows[e] for e in ("orders", "order_items", "refunds", "reviews"))
        oid = rid = vid = 0
        # Dropout, from a stream of its own (everything else is drawn as before): a share of the
        # buyers stop buying for good at a time of their own, and their orders fall before it.
        dropout = random.Random(f"dropout:{self.seed}")
        for p in self.people:
            # Many buy once or never, a few buy often: Pareto-shaped frequency.
            n_orders = 0 if rng.random() < 0.18 else max(1, int(rng.paretovariate(1.6)))
            n_orders = min(n_orders, 25)
            if self.volume.orders != 1.0:
                n_orders = round(n_orders * self.volume.orders)
            lo = max(self.start, p.registered)
            p.base_orders, p.buying_from = n_orders, lo
            if n_orders and dropout.random() < DROPOUT_SHARE and self.end > lo:
                p.dropped_out_at = lo + (self.end - lo) * dropout.uniform(0.1, 0.8)
            for _ in range(n_orders):
                oid += 1
                order_id = f"O{oid:08d}"
                ordered = self._random_time(lo, self.end, seasonal=True)
                if p.dropped_out_at:
                    ordered = _before(ordered, lo, self.end, p.dropped_out_at)
                channel = _weighted(rng, CHANNELS)
                lines = []
                for line_no in range(1, 1 + _weighted(rng, [(1, 70), (2, 22), (3, 8)])):
                    pid, name, cat, price = rng.choice(PRODUCTS)
                    # Each buyer's own spending level (from their Pareto value, damped): people differ
                    # in what they spend per order, not only in how often they order.
                    unit = round(price * rng.choice([1.0, 1.0, 0.95, 0.9, 0.85]) * p.value**0.5, 2)
                    qty = 1 if rng.random() < 0.85 else rng.randint(2, 3)
                    lines.append((line_no, pid, name, cat, unit, qty))
                total = round(sum(u * q for *_, u, q in lines), 2)
                age_days = (self.end - ordered).days
                r = rng.random()
                if age_days < 2 and r < 0.3:
                    status = "created"
                elif r < 0.07:
                    status = "cancelled"
                elif age_days < 3:
                    status = "paid"
                elif age_days < 7:
                    status = "shipped"
                else:
                    status = "completed"
                updated = min(ordered + dt.timedelta(hours=rng.randint(1, 24 * 6)), self.end)
                refund_rows = []
                if status == "completed" and rng.random() < 0.09:
                    refunded_at = min(ordered + dt.timedelta(days=rng.randint(7, 20)), self.end)
                    full = rng.random() < 0.5
                    amount = total if full else round(total * rng.choice([0.1, 0.2, 0.3, 0.5]), 2)
                    if rng.random() < 0.6:
                        text, lang, cat = self._text("negative")
                        kind = "negative"
                    else:
                        text, lang, cat, kind = rng.choice(texts.REFUND_REASONS_OTHER), "zh", None, "neutral"
                    rid += 1
                    refund_id = f"R{rid:07d}"
                    refund_rows.append(
                        {
                            "refund_id": refund_id,
                            "order_id": order_id,
                            "refunded_at": format_ts(rng, refunded_at),
                            "amount": f"{amount:.2f}",
                            "reason": text,
                        }
                    )
                    self._truth("refund", refund_id, kind, lang, cat)
                    if full:
                        status = "refunded"
                        updated = refunded_at
                # An order is exported at each status change; keep the
                # earlier "paid" version too so dedupe-to-latest is exercised.
                if status in ("shipped", "completed", "refunded") and rng.random() < 0.15:
                    orders.append(
                        self._order_row(order_id, p, ordered, "paid", total, channel, ordered + dt.timedelta(minutes=5))
                    )
                orders.append(self._order_row(order_id, p, ordered, status, total, channel, max(updated, ordered)))
                for line_no, pid, name, cat, unit, qty in lines:
                    items.append(
                        {
                            "order_id": order_id,
                            "line_no": line_no,
                            "product_id": pid,
                            "quantity": qty,
                            "unit_price": f"{unit:.2f}",
                            "product_name": name,
                            "category": cat,
                        }
                    )
                refunds.extend(refund_rows)
                if status == "completed" and rng.random() < 0.3:
                    rating = _weighted(rng, [(5, 45), (4, 25), (3, 12), (2, 8), (1, 10)])
                    kind = "positive" if rating >= 4 else "neutral" if rating == 3 else "negative"
                    text, lang, cat = self._text(kind)
                    vid += 1
                    review_id = f"V{vid:07d}"
                    created = min(updated + dt.timedelta(days=rng.randint(0, 10)), self.end)
                    reviews.append(
                        {
                            "review_id": review_id,
                            "customer_id": p.customer_id,
                            "rating": rating,
                            "created_at": format_ts(rng, created),
                            "order_id": order_id,
                            "product_id": lines[0][1],
                            "content": text,
                        }
                    )
                    self._truth("review", review_id, kind, lang, cat)
        self.orders_made = oid
        self.mean_orders = sum(p.base_orders for p in self.people) / max(len(self.people), 1)

    def _order_row(self, order_id, p, ordered, status, total, channel, updated, rng=None) -> dict:
        rng = rng or self.rng
        return {
            "order_id": order_id,
            "customer_id": p.customer_id,
            "ordered_at": format_ts(rng, ordered),
            "status": status,
            "total_amount": format_amount(rng, total),
            "currency": "CNY",
            "channel": channel,
            "updated_at": format_ts(rng, updated),
        }

    def make_lift_orders(self) -> None:
        """The community's effect, known exactly: after joining the forum or a chat group, a buyer buys
        `member_lift` times as often again, until they drop out. Their extra orders are drawn from a
        stream of their own, after everything else, so every other row is what it is without a lift.

        A buyer's own rate is the orders drawn for them over the span they were drawn over; the added
        orders are Poisson with mean lift x rate x time as a member, uniform over that time, one line
        each, and are listed in the ground truth (lift_orders.csv).
        """
        self.lift_rows: list[tuple[str, str, dt.datetime, float]] = []
        if self.member_lift <= 0:
            return
        rng = random.Random(f"lift:{self.seed}")
        orders, items = self.rows["orders"], self.rows["order_items"]
        oid = self.orders_made
        for p in self.people:
            if not (p.customer_id and p.base_orders and p.community_joined_at and p.buying_from):
                continue
            joined = max(p.community_joined_at, p.buying_from)
            stop = min(self.end, p.dropped_out_at or self.end)
            member_days = (stop - joined).total_seconds() / 86400
            if member_days <= 0:
                continue
            rate = p.base_orders / max((self.end - p.buying_from).total_seconds() / 86400, 1.0)
            for _ in range(_poisson(rng, self.member_lift * rate * member_days)):
                oid += 1
                order_id = f"O{oid:08d}"
                ordered = joined + (stop - joined) * rng.random()
                pid, name, cat, price = rng.choice(PRODUCTS)
                unit = round(price * p.value**0.5, 2)
                status = "completed" if (self.end - ordered).days >= 7 else "paid"
                orders.append(self._order_row(order_id, p, ordered, status, unit, "mini_program", ordered, rng))
                items.append(
                    {
                        "order_id": order_id,
                        "line_no": 1,
                        "product_id": pid,
                        "quantity": 1,
                        "unit_price": f"{unit:.2f}",
                        "product_name": name,
                        "category": cat,
                    }
                )
                self.lift_rows.append((order_id, p.person_id, ordered, unit))

    def _join_share(self, p: Person, share: float) -> float:
        """How likely a person is to join: `share` for everyone (join_bias 0, the sample's own), or, with
        a join bias, more likely the more they bought (their orders against the mean, to that power)."""
        if not self.join_bias:
            return share
        return min(0.95, share * ((1 + p.base_orders) / (1 + self.mean_orders)) ** self.join_bias)

    def make_forum(self) -> None:
        rng = self.rng
        users = self.rows["forum_users"]
        uid = 0
        # ~40% of customers hold a forum account linked by one shared key;
        # some forum users are community-only and link to nobody.
        members = [p for p in self.people if rng.random() < self._join_share(p, 0.4)]
        extra = [
            Person(
                person_id=f"PER{self.n + i:06d}",
                province="",
                city="",
                phone=None,
                email=None,
                unionid=None,
                member_id=None,
                activity=min(rng.paretovariate(1.5), 30.0),
            )
            for i in range(1, int(self.n * 0.15) + 1)
        ]
        self.people.extend(extra)
        # Profile locations draw from their own stream, so adding them left
        # every other generated row as it was. A third of customers fill
        # theirs in; half the community-only people do, which is then the
        # only place anyone knows they live.
        where = random.Random(self.seed * 7919 + 17)
        regions = [(p, c) for p, cities, w in REGIONS for c in cities for _ in range(w)]
        for p in members + extra:
            uid += 1
            p.forum_user_id = f"F{uid:06d}"
            if not p.customer_id and where.random() < 0.5:
                p.province, p.city = where.choice(regions)
            shown = p.city and (not p.customer_id or where.random() < 0.33)
            row = {
                "user_id": p.forum_user_id,
                "joined_at": "",
                "username": f"fan_{uid}",
                "member_id": "",
                "phone": "",
                "email": "",
                "wechat_unionid": "",
                "province": p.province if shown else "",
                "city": p.city if shown else "",
            }
            links = [k for k in ("member_id", "phone", "email", "unionid") if getattr(p, k)]
            p.forum_link = ""
            if links:
                key = rng.choice(links)
                p.forum_link = key
                if key == "phone":
                    row["phone"] = format_phone(rng, p.phone)
                    if p.family_phone:
                        # Linkable to the family, not to one of its people.
                        p.forum_link = "phone(shared)"
                elif key == "unionid":
                    row["wechat_unionid"] = p.unionid
                elif key == "email":
                    row["email"] = p.email
                else:
                    row["member_id"] = p.member_id
            joined = self._random_time(self.start, self.end - dt.timedelta(days=2))
            p.joined = joined
            p.community_joined_at = joined
            row["joined_at"] = format_ts(rng, joined)
            users.append(row)
        # Staff post and reply a lot; identity must keep them out of member
        # metrics (seed staff_accounts matches them by name).
        staff = self._staff(["admin_xingyao", "moderator_li", "moderator_chen"], activity=25.0)
        for p in staff:
            uid += 1
            p.forum_user_id = f"F{uid:06d}"
            joined = self.start
            p.joined = joined
            users.append(
                {
                    "user_id": p.forum_user_id,
                    "joined_at": format_ts(rng, joined),
                    "username": p.display_name,
                    "member_id": "",
                    "phone": "",
                    "email": "",
                    "wechat_unionid": "",
                    "province": "",
                    "city": "",
                }
            )
        forum_people = members + extra + staff
        posts = self.rows["forum_posts"]
        authors: list[Person] = [None]  # by post number (FP<n>): whom a reply's mention names
        pid = 0
        topic_id = 0
        categories = ["unboxing", "tips", "firmware", "support", "events", "photography"]
        # Cumulative weights once: random.choices with `weights` re-adds them on every call (quadratic at scale M).
        forum_cum = list(itertools.accumulate(q.activity for q in forum_people))
        for _ in range(max(1, int(len(forum_people) * 0.8 * self.volume.forum_posts))):
            author = rng.choices(forum_people, cum_weights=forum_cum)[0]
            topic_id += 1
            t0 = self._random_time(max(author.joined, self.start), self.end)
            kind = _weighted(rng, [("positive", 35), ("neutral", 45), ("negative", 20)])
            text, lang, cat = self._text(kind)
            pid += 1
            first = f"FP{pid:07d}"
            title_lang = "en" if lang == "en" else "zh"
            posts.append(
                self._post(
                    first,
                    topic_id,
                    author,
                    t0,
                    text,
                    None,
                    rng.choice(categories),
                    rng.choice(texts.FORUM_TOPIC_TITLES[title_lang]),
                )
            )
            self._truth("forum", first, kind, lang, cat)
            authors.append(author)
            thread = [pid]
            for _ in range(int(rng.paretovariate(1.2)) if rng.random() < 0.7 else 0):
                if len(thread) > 60:
                    break
                replier = rng.choices(forum_people, cum_weights=forum_cum)[0]
                t = self._random_time(t0, min(t0 + dt.timedelta(days=5), self.end))
                kind = _weighted(rng, [("positive", 30), ("neutral", 50), ("negative", 20)])
                text, lang, cat = self._text(kind)
                pid += 1
                post_id = f"FP{pid:07d}"
                parent = rng.choice(thread)
                if rng.random() < 0.15 and authors[parent] is not replier:
                    # Discourse-style mention of the author replied to.
                    text = f"@{self._username(authors[parent])} {text}"
                posts.append(self._post(post_id, topic_id, replier, t, text, f"FP{parent:07d}", "", ""))
                authors.append(replier)
                self._truth("forum", post_id, kind, lang, cat)
                thread.append(pid)
        self.forum_people = forum_people

    def _post(self, post_id, topic_id, author, created, text, reply_to, category, title) -> dict:
        rng = self.rng
        deleted = rng.random() < 0.02
        updated = created + dt.timedelta(minutes=rng.randint(1, 600)) if rng.random() < 0.1 else created
        return {
            "post_id": post_id,
            "topic_id": f"T{topic_id:06d}",
            "user_id": author.forum_user_id,
            "created_at": format_ts(rng, created),
            "content": text,
            "reply_to_post_id": reply_to or "",
            "category": category,
            "title": title,
            "like_count": int(rng.paretovariate(1.4)) - 1,
            "updated_at": format_ts(rng, min(updated, self.end)),
            "is_deleted": "true" if deleted else "false",
        }

    @staticmethod
    def _sender_name(p: Person) -> str:
        return p.display_name or f"粉丝{p.chat_sender_id[-4:]}"

    @staticmethod
    def _username(p: Person) -> str:
        return p.display_name or f"fan_{int(p.forum_user_id[1:])}"

    def _staff(self, names: list[str], activity: float) -> list[Person]:
        staff = [
            Person(
                person_id=f"PER{len(self.people) + i:06d}",
                province="",
                city="",
                phone=None,
                email=None,
                unionid=None,
                member_id=None,
                activity=activity,
                is_staff=True,
                display_name=name,
            )
            for i, name in enumerate(names, start=1)
        ]
        self.people.extend(staff)
        return staff

    def make_chat(self) -> None:
        rng = self.rng
        groups = [
            ("G001", "星耀官方粉丝1群"),
            ("G002", "星耀官方粉丝2群"),
            ("G003", "深圳同城玩家群"),
            ("G004", "Global fans (EN)"),
            ("G005", "新品内测群"),
        ]
        # Chat senders: linked ones share their unionid; some are chat-only.
        candidates = [p for p in self.people if p.unionid and rng.random() < self._join_share(p, 0.35)]
        chat_only = [
            Person(
                person_id=f"PER{len(self.people) + i:06d}",
                province="",
                city="",
                phone=None,
                email=None,
                unionid=None,
                member_id=None,
                activity=min(rng.paretovariate(1.5), 30.0),
            )
            for i in range(1, int(self.n * 0.08) + 1)
        ]
        self.people.extend(chat_only)
        senders = candidates + chat_only + self._staff(["星耀官方客服", "群小助手"], activity=20.0)
        for i, p in enumerate(senders, start=1):
            p.chat_sender_id = f"wxid_{i:06d}{rng.getrandbits(24):06x}"
        msgs = self.rows["chat_messages"]
        sender_of: list[Person] = [None]  # by message number (MSG<n>): whom a reply's mention names
        mid = 0
        n_msgs = int(self.n * 10 * self.volume.chat)
        window_start = self.end - dt.timedelta(days=180)
        # Join messages first, so membership starts before activity.
        for p in senders:
            gid, gname = rng.choice(groups)
            p.group = (gid, gname)
            mid += 1
            joined = self._random_time(window_start - dt.timedelta(days=30), window_start)
            p.community_joined_at = min(p.community_joined_at or joined, joined)
            msgs.append(self._msg(mid, gid, gname, p, joined, "system", f'"{p.chat_sender_id}"加入了群聊', None))
            sender_of.append(p)
        sender_cum = list(itertools.accumulate(p.activity for p in senders))
        for _ in range(n_msgs):
            p = rng.choices(senders, cum_weights=sender_cum)[0]
            gid, gname = p.group if rng.random() < 0.85 else rng.choice(groups)
            t = self._random_time(window_start, self.end)
            mtype = _weighted(rng, MSG_TYPES)
            mid += 1
            msg_id = f"MSG{mid:08d}"
            if mtype == "text":
                kind = _weighted(rng, [("positive", 30), ("neutral", 55), ("negative", 15)])
                lang = "en" if gid == "G004" else None
                text, lang, cat = self._text(kind, lang)
                self._truth("chat", msg_id, kind, lang, cat)
            elif mtype == "red_packet":
                text = "[红包]恭喜发财，大吉大利"
            elif mtype == "link":
                text = "https://example.com/article/" + str(rng.randrange(10**6))
            else:
                text = f"[{mtype}]"
            reply = rng.randrange(1, mid) if mtype == "text" and rng.random() < 0.2 and mid > 1 else None
            if reply and rng.random() < 0.4 and sender_of[reply] is not p:
                # WeChat puts U+2005 after a mention.
                text = f"@{self._sender_name(sender_of[reply])}\u2005{text}"
            msgs.append(self._msg(mid, gid, gname, p, t, mtype, text, reply and f"MSG{reply:08d}"))
            sender_of.append(p)
        for p in rng.sample(senders, k=len(senders) // 20):
            mid += 1
            msgs.append(
                self._msg(
                    mid,
                    p.group[0],
                    p.group[1],
                    p,
                    self._random_time(window_start, self.end),
                    "system",
                    f'"{p.chat_sender_id}"退出了群聊',
                    None,
                )
            )

    def _msg(self, mid, gid, gname, p, t, mtype, text, reply) -> dict:
        return {
            "msg_id": f"MSG{mid:08d}",
            "group_id": gid,
            "sender_id": p.chat_sender_id,
            "sent_at": format_ts(self.rng, t),
            "msg_type": mtype,
            "content": text,
            "group_name": gname,
            "sender_name": self._sender_name(p),
            "sender_unionid": p.unionid or "",
            "reply_to_msg_id": reply or "",
        }

    def make_events(self) -> None:
        rng = self.rng
        by_city: dict[str, list[Person]] = {}
        for p in self.people:
            if p.customer_id and p.city:
                by_city.setdefault(p.city, []).append(p)
        rows = self.rows["events"]
        eid = 0
        big_cities = sorted(by_city, key=lambda c: -len(by_city[c]))[:8]
        for month_back in range(12):
            for city in rng.sample(big_cities, k=2):
                eid += 1
                event_day = (self.end - dt.timedelta(days=30 * month_back + rng.randint(0, 25))).astimezone(TZ).date()
                name = rng.choice(["新品体验会", "粉丝见面会", "摄影沙龙", "Fan meetup"])
                pool = by_city[city]
                for p in rng.sample(pool, k=min(len(pool), rng.randint(5, 25))):
                    ref_choices = [("customer_id", p.customer_id)]
                    if p.phone:
                        ref_choices.append(("phone", format_phone(rng, p.phone)))
                    if p.member_id:
                        ref_choices.append(("member_id", p.member_id))
                    _, ref = rng.choice(ref_choices)
                    base = {
                        "event_id": f"E{eid:05d}",
                        "event_date": event_day.isoformat(),
                        "city": city,
                        "attendee_ref": ref,
                        "event_name": name,
                    }
                    rows.append({**base, "status": "registered"})
                    if rng.random() < 0.7:
                        rows.append({**base, "status": "attended"})

    def run(self) -> None:
        self.make_people()
        self.make_customers()
        self.make_orders()
        self.make_forum()
        self.make_chat()
        self.make_events()
        self.make_lift_orders()
        self._truth_file.close()


# How each entity is written, so the loader meets every supported encoding
# and both file formats on the sample community.
FILE_PLAN = {
    "customers": ("csv", "utf-8-sig"),
    "orders": ("csv", "utf-8"),
    "order_items": ("csv", "utf-8"),
    "refunds": ("jsonl", "utf-8"),
    "reviews": ("csv", "gb18030"),
    "forum_users": ("csv", "utf-8"),
    "forum_posts": ("jsonl", "utf-8"),
    "chat_messages": ("csv", "utf-16"),
    "events": ("csv", "gbk"),
}


def write_rows(path: Path, rows: list[dict], fmt: str, encoding: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = _sanitise_for(encoding, rows)
    if fmt == "jsonl":
        with path.open("w", encoding=encoding, newline="\n") as fh:
            for r in rows:
                fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    else:
        with path.open("w", encoding=encoding, newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)


def _sanitise_for(encoding: str, rows: list[dict]) -> list[dict]:
    """GBK cannot hold emoji; drop what the encoding cannot represent, as exporters do."""
    if encoding != "gbk":
        return rows
    out = []
    for r in rows:
        out.append({k: (v.encode("gbk", "ignore").decode("gbk") if isinstance(v, str) else v) for k, v in r.items()})
    return out


def generator_digest() -> str:
    """Digest of the sample package's code: what other code generated is other data (bench.py reuses by it)."""
    h = hashlib.sha256()
    for path in sorted(Path(__file__).parent.glob("*.py")):
        h.update(path.name.encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:16]


def generate(
    out: Path,
    truth: Path,
    customers: int = 2000,
    seed: int = 7,
    end_date: dt.date | None = None,
    volume: Volume | None = None,
    real_shapes: bool = False,
    member_lift: float = MEMBER_LIFT,
    join_bias: float = 0.0,
) -> dict:
    """Write the community; rows go to their files as they are made, so memory holds the people, not the rows.

    `real_shapes` adds what real exports look like (crm_pipeline.sample.real_shapes: WeChat backup and
    QQ exports with rosters and group places, a few malformed rows per entity) and three years of
    history instead of two; `make run` asks for it.
    """
    end_date = end_date or dt.datetime.now(TZ).date()
    out.mkdir(parents=True, exist_ok=True)
    # make run's sample (real_shapes) keeps three years of orders and posts, as brands do.
    gen = Generator(
        customers,
        seed,
        end_date,
        out,
        truth,
        volume,
        history_days=1100 if real_shapes else 730,
        member_lift=member_lift,
        join_bias=join_bias,
    )
    gen.run()
    extras = {}
    if real_shapes:
        from crm_pipeline.sample.real_shapes import add_malformed, write_real_shapes

        extras = {"malformed_rows": add_malformed(gen, truth), **write_real_shapes(gen, out, truth)}
    counts = {entity: spool.close() for entity, spool in gen.rows.items()}
    lift_orders = collections.Counter(person for _, person, _, _ in gen.lift_rows)
    with (truth / "people.csv").open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(
            [
                "person_id",
                "customer_id",
                "forum_user_id",
                "chat_sender_id",
                "forum_link_key",
                "is_staff",
                "phone",
                "email",
                "unionid",
                "member_id",
                "province",
                "city",
                "dropped_out_at",
                "community_joined_at",
                "lift_orders",
            ]
        )
        for p in gen.people:
            w.writerow(
                [
                    p.person_id,
                    p.customer_id or "",
                    p.forum_user_id or "",
                    p.chat_sender_id or "",
                    p.forum_link,
                    int(p.is_staff),
                    p.phone or "",
                    p.email or "",
                    p.unionid or "",
                    p.member_id or "",
                    p.province,
                    p.city,
                    _iso(p.dropped_out_at),
                    _iso(p.community_joined_at),
                    lift_orders.get(p.person_id, 0),
                ]
            )
    with (truth / "lift_orders.csv").open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["order_id", "person_id", "ordered_at", "amount"])
        w.writerows((order_id, person, _iso(at), f"{amount:.2f}") for order_id, person, at, amount in gen.lift_rows)
    meta = {
        "customers": customers,
        "seed": seed,
        "end_date": end_date.isoformat(),
        "rows": counts,
        "volume": dataclasses.asdict(gen.volume),
        "generator": generator_digest(),
        "member_lift": member_lift,
        "join_bias": join_bias,
        "files": {e: {"format": f, "encoding": enc} for e, (f, enc) in FILE_PLAN.items()},
        "real_shapes": extras,
    }
    (truth / "summary.json").write_text(json.dumps(meta, ensure_ascii=False, indent=2), encoding="utf-8")
    return meta


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--customers", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--end-date", type=dt.date.fromisoformat, default=None)
    ap.add_argument("--out", type=Path, default=Path("data/landing"))
    ap.add_argument("--truth", type=Path, default=Path("data/ground_truth"))
    ap.add_argument(
        "--member-lift", type=float, default=MEMBER_LIFT, help="how much more often members buy after joining"
    )
    args = ap.parse_args(argv)
    meta = generate(args.out, args.truth, args.customers, args.seed, args.end_date, member_lift=args.member_lift)
    print(json.dumps(meta["rows"], ensure_ascii=False))


if __name__ == "__main__":
    main()
