{#- Every piece of feedback a person gave, as of the as-of day, with the
    classifier's score of its current text: forum posts and replies (not
    deleted), chat text messages (not recalled), reviews and refund reasons.
    A forum post's edited_at is when an edit wrote its current text.
    A review rated var('negative_rating_max') or lower is negative whatever
    its text says (the text still decides the category). A refund whose
    reason is one of the neutral_refund_reasons seed's (compared without
    case, spaces or punctuation: "不想要了", "Changed my mind!") is not a
    complaint, whatever the classifier says of it. Only a negative
    touchpoint keeps its text (severity keywords are matched in it): the
    rest need none, and a table of every text would be the largest write of
    the build. The product is the
    review's, or the refunded order's (its largest line), or else the first
    catalogue product whose name the text mentions (longest name first).

    Incremental: a build first deletes every row that may be stale
    (macros/feedback.sql: feedback_delete_stale), then computes only the
    records the table does not hold. A full refresh computes them all. -#}
{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='fail',
        pre_hook=[
            "{{ feedback_delete_stale('forum') }}",
            "{{ feedback_delete_stale('chat') }}",
            "{{ feedback_delete_stale('review') }}",
            "{{ feedback_delete_stale('refund') }}",
            "{{ feedback_delete_stale('scores') }}",
            "{{ feedback_delete_stale('persons') }}",
            "{{ feedback_delete_stale('catalogue') }}",
        ],
    )
}}

with

posts as (

    select * from {{ ref('stg_forum__posts') }} as posts
    where {{ feedback_not_built('forum', 'posts.post_id') }}

),

messages as (

    select * from {{ ref('stg_chat__messages') }} as messages
    where {{ feedback_not_built('chat', 'messages.msg_id') }}

),

reviews as (

    select * from {{ ref('stg_shop__reviews') }} as reviews
    where {{ feedback_not_built('review', 'reviews.review_id') }}

),

refunds as (

    select * from {{ ref('stg_shop__refunds') }} as refunds
    where {{ feedback_not_built('refund', 'refunds.refund_id') }}

),

orders as (

    select * from {{ ref('stg_shop__orders') }}
    {%- if is_incremental() %}
        where order_id in (select refunds.order_id from refunds)
    {%- endif %}

),

order_items as (

    select * from {{ ref('stg_shop__order_items') }}
    {%- if is_incremental() %}
        where order_id in (
            select reviews.order_id from reviews
            union all
            select refunds.order_id from refunds
        )
    {%- endif %}

),

resolved as (

    select * from {{ ref('int_identity__resolved') }}

),

scores as (

    select * from {{ ref('stg_scoring__text_scores') }}

),

order_products as (

    select
        order_id,
        product_id,
        row_number() over (partition by order_id order by line_amount desc, line_no asc) as product_rank
    from order_items

),

catalogue as (

    {{ feedback_catalogue(ref('stg_shop__order_items')) }}

),

neutral_reasons as (

    select distinct {{ reason_key('reason') }} as reason_key
    from {{ ref('neutral_refund_reasons') }}

),

texts as (

    select
        'forum' as feedback_source,
        posts.post_id as source_record_id,
        {{ account_node('forum', 'posts.user_id') }} as account_node,
        posts.created_at as occurred_at,
        posts.text_edited_at as edited_at,
        posts.post_text as feedback_text,
        cast(null as integer) as rating,
        cast(null as varchar) as known_product_id,
        cast(null as varchar) as reason_key
    from posts
    where not posts.is_deleted and posts.post_text is not null

    union all

    select
        'chat' as feedback_source,
        messages.msg_id as source_record_id,
        {{ account_node('chat', 'messages.sender_id') }} as account_node,
        messages.sent_at as occurred_at,
        cast(null as timestamp) as edited_at,
        messages.message_text as feedback_text,
        cast(null as integer) as rating,
        cast(null as varchar) as known_product_id,
        cast(null as varchar) as reason_key
    from messages
    where messages.is_counted_text and messages.message_text is not null

    union all

    select
        'review' as feedback_source,
        reviews.review_id as source_record_id,
        {{ account_node('customer', 'reviews.customer_id') }} as account_node,
        reviews.created_at as occurred_at,
        cast(null as timestamp) as edited_at,
        reviews.review_text as feedback_text,
        cast(reviews.rating as integer) as rating,
        coalesce(reviews.product_id, order_products.product_id) as known_product_id,
        cast(null as varchar) as reason_key
    from reviews
    left join order_products
        on reviews.order_id = order_products.order_id and order_products.product_rank = 1

    union all

    select
        'refund' as feedback_source,
        refunds.refund_id as source_record_id,
        {{ account_node('customer', 'orders.customer_id') }} as account_node,
        refunds.refunded_at as occurred_at,
        cast(null as timestamp) as edited_at,
        refunds.refund_reason as feedback_text,
        cast(null as integer) as rating,
        order_products.product_id as known_product_id,
        {#- Keyed here, for refunds only: as a join condition the regexp ran on
            every text (DuckDB at M: 5.8 s for 71,550 refunds). -#}
        {{ reason_key('refunds.refund_reason') }} as reason_key
    from refunds
    left join orders
        on refunds.order_id = orders.order_id
    left join order_products
        on refunds.order_id = order_products.order_id and order_products.product_rank = 1

),

unlinked as materialized (

    {#- Texts without a product yet, lower-cased once each, not once for
        every catalogue name they are compared with (DuckDB at M: 3.2 million
        texts, ten names, the join 11.0 s -> 1.2 s). Materialized, as are the
        names: PostgreSQL would otherwise fold lower() back into the join's
        condition, to run for every pair. -#}
    select
        feedback_source,
        source_record_id,
        lower(feedback_text) as text_lower
    from texts
    where known_product_id is null and feedback_text is not null

),

names as materialized (

    select
        product_id,
        product_name,
        lower(product_name) as name_lower
    from catalogue

),

mentioned_products as (

    select
        unlinked.feedback_source,
        unlinked.source_record_id,
        names.product_id,
        row_number() over (
            partition by unlinked.feedback_source, unlinked.source_record_id
            order by length(names.product_name) desc, names.product_id asc
        ) as mention_rank
    from unlinked
    inner join names
        on strpos(unlinked.text_lower, names.name_lower) > 0

),

judged as (

    select
        texts.*,
        resolved.person_id,
        resolved.is_staff,
        mentioned_products.product_id as mentioned_product_id,
        scores.language,
        scores.classifier_version,
        scores.cues,
        scores.text_is_negative,
        scores.text_category,
        scores.sentiment_score,
        scores.scored_at,
        (
            coalesce(texts.rating <= {{ var('negative_rating_max') }}, false)
            or coalesce(scores.text_is_negative, false)
        )
        and neutral_reasons.reason_key is null as is_negative
    from texts
    left join resolved
        on texts.account_node = resolved.account_node
    left join scores
        on
            texts.feedback_source = scores.feedback_source
            and texts.source_record_id = scores.record_id
            and md5(texts.feedback_text) = scores.text_hash
    left join mentioned_products
        on
            texts.feedback_source = mentioned_products.feedback_source
            and texts.source_record_id = mentioned_products.source_record_id
            and mentioned_products.mention_rank = 1
    left join neutral_reasons
        on texts.reason_key = neutral_reasons.reason_key

),

final as (

    select
        -- ids
        feedback_source,
        source_record_id,
        account_node,
        person_id,
        coalesce(known_product_id, mentioned_product_id) as product_id,
        -- attributes
        case when is_negative then feedback_text end as feedback_text,
        case
            when is_negative then md5(coalesce(feedback_text, '') || ' ' || coalesce(cues, ''))
        end as feedback_hash,
        rating,
        language,
        classifier_version,
        cues,
        is_negative,
        text_is_negative,
        case when is_negative then coalesce(text_category, 'other') end as category,
        sentiment_score,
        sentiment_score is not null as is_scored,
        scored_at,
        case
            when known_product_id is not null then 'order'
            when mentioned_product_id is not null then 'text'
        end as product_link,
        -- timestamps
        occurred_at,
        edited_at

    from judged
    where coalesce(is_staff, false) = false

)

select * from final
