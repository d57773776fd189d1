"""The input contract as data: one small spec per entity."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Field:
    name: str
    type: str  # text | int | amount | timestamp | date | bool
    required: bool = False
    enum: tuple[str, ...] | None = None
    min_value: int | None = None
    max_value: int | None = None


@dataclass(frozen=True)
class EntitySpec:
    name: str
    fields: tuple[Field, ...]
    key: tuple[str, ...]
    source_system: str  # shop | forum | chat | events

    @property
    def field_names(self) -> list[str]:
        return [f.name for f in self.fields]

    @property
    def required(self) -> list[str]:
        return [f.name for f in self.fields if f.required]


def F(name, type_="text", *, req=False, enum=None, lo=None, hi=None) -> Field:  # noqa: N802 - reads like a table
    return Field(name, type_, req, tuple(enum) if enum else None, lo, hi)


ORDER_STATUSES = ("created", "paid", "shipped", "completed", "cancelled", "refunded")
MSG_TYPES = ("text", "image", "voice", "video", "link", "red_packet", "system")

SPECS: dict[str, EntitySpec] = {
    s.name: s
    for s in [
        EntitySpec(
            "customers",
            (
                F("customer_id", req=True),
                F("registered_at", "timestamp", req=True),
                F("phone"),
                F("email"),
                F("wechat_unionid"),
                F("member_id"),
                F("province"),
                F("city"),
                F("updated_at", "timestamp"),
            ),
            ("customer_id",),
            "shop",
        ),
        EntitySpec(
            "orders",
            (
                F("order_id", req=True),
                F("customer_id", req=True),
                F("ordered_at", "timestamp", req=True),
                F("status", req=True, enum=ORDER_STATUSES),
                F("total_amount", "amount", req=True),
                F("currency"),
                F("channel"),
                F("updated_at", "timestamp"),
            ),
            ("order_id",),
            "shop",
        ),
        EntitySpec(
            "order_items",
            (
                F("order_id", req=True),
                F("line_no", "int", req=True, lo=1),
                F("product_id", req=True),
                F("quantity", "int", req=True, lo=1),
                F("unit_price", "amount", req=True),
                F("product_name"),
                F("category"),
            ),
            ("order_id", "line_no"),
            "shop",
        ),
        EntitySpec(
            "refunds",
            (
                F("refund_id", req=True),
                F("order_id", req=True),
                F("refunded_at", "timestamp", req=True),
                F("amount", "amount", req=True),
                F("reason"),
            ),
            ("refund_id",),
            "shop",
        ),
        EntitySpec(
            "reviews",
            (
                F("review_id", req=True),
                F("customer_id", req=True),
                F("rating", "int", req=True, lo=1, hi=5),
                F("created_at", "timestamp", req=True),
                F("order_id"),
                F("product_id"),
                F("content"),
            ),
            ("review_id",),
            "shop",
        ),
        EntitySpec(
            "forum_users",
            (
                F("user_id", req=True),
                F("joined_at", "timestamp", req=True),
                F("username"),
                F("member_id"),
                F("phone"),
                F("email"),
                F("wechat_unionid"),
                F("province"),
                F("city"),
            ),
            ("user_id",),
            "forum",
        ),
        EntitySpec(
            "forum_posts",
            (
                F("post_id", req=True),
                F("topic_id", req=True),
                F("user_id", req=True),
                F("created_at", "timestamp", req=True),
                F("content", req=True),
                F("reply_to_post_id"),
                F("category"),
                F("title"),
                F("like_count", "int", lo=0),
                F("updated_at", "timestamp"),
                F("is_deleted", "bool"),
                # From the forum API: replies name a post number in the topic.
                F("post_number", "int", lo=1),
                F("reply_to_post_number", "int", lo=1),
            ),
            ("post_id",),
            "forum",
        ),
        EntitySpec(
            "chat_messages",
            (
                F("msg_id", req=True),
                F("group_id", req=True),
                F("sender_id", req=True),
                F("sent_at", "timestamp", req=True),
                F("msg_type", req=True, enum=MSG_TYPES),
                F("content", req=True),
                F("group_name"),
                F("sender_name"),
                F("sender_unionid"),
                F("reply_to_msg_id"),
                # Not in the contract's files; filled by the WeCom adapter.
                F("action", enum=("send", "recall")),
                F("recalled_msg_id"),
                F("recipients"),
            ),
            ("msg_id",),
            "chat",
        ),
        # A group's member list (WeCom customer-group API, a community tool's export): links chat
        # senders to people when the messages carry no unionid.
        EntitySpec(
            "chat_members",
            (
                F("group_id", req=True),
                F("sender_id", req=True),
                F("display_name"),
                F("wechat_unionid"),
                F("phone"),
                F("member_id"),
                F("joined_at", "timestamp"),
                F("left_at", "timestamp"),
            ),
            ("group_id", "sender_id"),
            "chat",
        ),
        # A chat group's place: its region places the community-only people who talk in it.
        EntitySpec(
            "chat_groups",
            (F("group_id", req=True), F("group_name"), F("province"), F("city"), F("is_official", "bool")),
            ("group_id",),
            "chat",
        ),
        EntitySpec(
            "events",
            (
                F("event_id", req=True),
                F("event_date", "date", req=True),
                F("city", req=True),
                F("attendee_ref", req=True),
                F("status", req=True, enum=("registered", "attended")),
                F("event_name"),
            ),
            ("event_id", "attendee_ref", "status"),
            "events",
        ),
        # Not a source: a person's request to be erased (crm_pipeline.privacy), by customer id or phone.
        EntitySpec(
            "deletion_requests",
            (F("request_id", req=True), F("requested_at", "timestamp", req=True), F("customer_id"), F("phone")),
            ("request_id",),
            "privacy",
        ),
    ]
}

SHOP_ENTITIES = [n for n, s in SPECS.items() if s.source_system == "shop"]


def adapter(entity: str):
    """A source-shape adapter applied to each record before normalisation, if the entity has one."""
    if entity == "chat_messages":
        from crm_pipeline.sources.chat import adapt

        return adapt
    return None
