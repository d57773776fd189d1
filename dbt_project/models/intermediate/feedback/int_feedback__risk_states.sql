{#- One row per person with negative feedback as of as_of_date, and the
    state a CRM manager acts on (docs/classifier.md, "Customer risk"); the
    mart fct_customer_risk adds the value at stake. Built before the
    lifetime-value fit, beside the other models, not after it.

    Experiences: touchpoints about the same order (its review, its refund, a
    negative post or message naming the order id) are one experience; it is
    negative when any of them is, and dated at its last negative touchpoint
    (a later neutral word on the same order does not make the complaint
    later, nor hide a purchase made after it), else at its last touchpoint. A positive
    experience is a review rated var('positive_rating_min') or more, or a
    text scored var('positive_sentiment_min') or more, that is not negative.
    The rest are neutral: they neither extend nor end a streak.

    A streak is a run of negative experiences with no purchase (a counted
    order) and no positive experience between them, each within
    var('risk_streak_days') days of the previous one. A person qualifies when
    the streak their last negative belongs to has var('risk_streak_length')
    experiences, or when, in the var('risk_recent_days') days up to their
    last negative, they had var('risk_heavy_negatives') negative experiences
    making at least var('risk_heavy_share') of all their experiences then.

    risk_state:
    - at_risk: qualifies, nothing ended it, and the last negative is within
      var('risk_window_days') days of the as-of day's end;
    - win_back: qualifies, nothing ended it, the last negative is older than
      the window and nothing at all came after it (no touchpoint, no order);
    - recovered: a purchase or a positive experience came after the last
      negative;
    - watch: the rest (one complaint; an old streak with neutral talk since). -#}
with

touchpoints as (

    {#- Without the texts: this is read four times, and DuckDB keeps it in
        memory between (at M, 3.5 million rows, 2 GB with the texts). -#}
    select
        person_id,
        feedback_source,
        source_record_id,
        occurred_at,
        is_negative,
        category,
        rating,
        sentiment_score
    from {{ ref('int_feedback__touchpoints') }}
    where person_id is not null

),

negative_texts as (

    select
        person_id,
        feedback_source,
        source_record_id,
        feedback_text
    from {{ ref('int_feedback__touchpoints') }}
    where person_id is not null and is_negative and feedback_source in ('forum', 'chat')

),

reviews as (

    select * from {{ ref('stg_shop__reviews') }}

),

refunds as (

    select * from {{ ref('stg_shop__refunds') }}

),

orders_counted as (

    select * from {{ ref('int_customers__orders_counted') }}

),

named_orders as (

    {#- A negative post or message naming one of its writer's own orders. -#}
    select
        negative_texts.feedback_source,
        negative_texts.source_record_id,
        min(orders_counted.order_id) as order_id
    from negative_texts
    inner join orders_counted
        on
            negative_texts.person_id = orders_counted.person_id
            and strpos(negative_texts.feedback_text, orders_counted.order_id) > 0
    group by negative_texts.feedback_source, negative_texts.source_record_id

),

keyed as (

    select
        touchpoints.person_id,
        touchpoints.feedback_source,
        touchpoints.source_record_id,
        touchpoints.occurred_at,
        touchpoints.is_negative,
        touchpoints.category,
        not touchpoints.is_negative
        and (
            coalesce(touchpoints.rating >= {{ var('positive_rating_min') }}, false)
            or (
                touchpoints.rating is null
                and coalesce(touchpoints.sentiment_score >= {{ var('positive_sentiment_min') }}, false)
            )
        ) as is_positive,
        coalesce(reviews.order_id, refunds.order_id, named_orders.order_id) is not null as is_about_order,
        coalesce(
            'order:' || coalesce(reviews.order_id, refunds.order_id, named_orders.order_id),
            touchpoints.feedback_source || ':' || touchpoints.source_record_id
        ) as experience_key
    from touchpoints
    left join reviews
        on touchpoints.feedback_source = 'review' and touchpoints.source_record_id = reviews.review_id
    left join refunds
        on touchpoints.feedback_source = 'refund' and touchpoints.source_record_id = refunds.refund_id
    left join named_orders
        on
            touchpoints.feedback_source = named_orders.feedback_source
            and touchpoints.source_record_id = named_orders.source_record_id

),

experiences as (

    {#- Touchpoints about one order are grouped into one experience; any
        other touchpoint is an experience by itself (its key is its own id),
        as it would come out of the same grouping. Most touchpoints are
        those: grouping them too sorted every touchpoint (PostgreSQL, M: a
        sort of 3.5 million rows spilled to disk). -#}
    select
        person_id,
        experience_key,
        coalesce(max(case when is_negative then occurred_at end), max(occurred_at)) as occurred_at,
        bool_or(is_negative) as is_negative,
        not bool_or(is_negative) and bool_or(is_positive) as is_positive,
        min(case when is_positive then feedback_source end) as positive_source
    from keyed
    where is_about_order
    group by person_id, experience_key

    union all

    select
        person_id,
        experience_key,
        occurred_at,
        is_negative,
        is_positive,
        case when is_positive then feedback_source end as positive_source
    from keyed
    where not is_about_order

),

negative_persons as (

    select distinct person_id from experiences
    where is_negative

),

events as (

    {#- What can start, extend or end a streak, in time order: negative and
        positive experiences and purchases. -#}
    select
        person_id,
        experience_key as event_key,
        occurred_at,
        case when is_negative then 'negative' else 'positive_' || positive_source end as event_kind
    from experiences
    where is_negative or is_positive

    union all

    select
        orders_counted.person_id,
        'purchase:' || orders_counted.order_id as event_key,
        orders_counted.ordered_at as occurred_at,
        'purchase' as event_kind
    from orders_counted
    inner join negative_persons
        on orders_counted.person_id = negative_persons.person_id

),

ordered as (

    select
        *,
        lag(event_kind) over (partition by person_id order by occurred_at, event_key) as previous_kind,
        lag(occurred_at) over (partition by person_id order by occurred_at, event_key) as previous_at
    from events

),

streaked as (

    select
        *,
        sum(case
            when
                event_kind = 'negative'
                and previous_kind = 'negative'
                and occurred_at <= previous_at + interval '{{ var("risk_streak_days") }} days'
                then 0
            else 1
        end) over (
            partition by person_id order by occurred_at, event_key
            rows between unbounded preceding and current row
        ) as streak_id
    from ordered

),

last_negative_streak as (

    select
        person_id,
        max(occurred_at) as last_negative_experience_at,
        max(streak_id) as streak_id
    from streaked
    where event_kind = 'negative'
    group by person_id

),

streak as (

    select
        streaked.person_id,
        count(*) as negative_streak,
        min(streaked.occurred_at) as streak_started_at
    from streaked
    inner join last_negative_streak
        on streaked.person_id = last_negative_streak.person_id and streaked.streak_id = last_negative_streak.streak_id
    group by streaked.person_id

),

ended as (

    {#- The first purchase, and the first positive experience, after the last negative. -#}
    select
        streaked.person_id,
        min(case when streaked.event_kind = 'purchase' then streaked.occurred_at end) as purchased_at,
        min(case when streaked.event_kind <> 'purchase' then streaked.occurred_at end) as positive_at
    from streaked
    inner join last_negative_streak
        on
            streaked.person_id = last_negative_streak.person_id
            and streaked.occurred_at > last_negative_streak.last_negative_experience_at
    group by streaked.person_id

),

first_positive as (

    select
        streaked.person_id,
        min(streaked.event_kind) as positive_kind
    from streaked
    inner join ended
        on streaked.person_id = ended.person_id and streaked.occurred_at = ended.positive_at
    where streaked.event_kind <> 'purchase'
    group by streaked.person_id

),

recent as (

    {#- Experiences in the risk_recent_days up to the last negative. -#}
    select
        experiences.person_id,
        sum(case when experiences.is_negative then 1 else 0 end) as negative_experiences_recent,
        count(*) as experiences_recent
    from experiences
    inner join last_negative_streak
        on
            experiences.person_id = last_negative_streak.person_id
            and experiences.occurred_at <= last_negative_streak.last_negative_experience_at
            and experiences.occurred_at
            > last_negative_streak.last_negative_experience_at - interval '{{ var("risk_recent_days") }} days'
    group by experiences.person_id

),

seen as (

    select
        person_id,
        occurred_at
    from touchpoints

    union all

    select
        orders_counted.person_id,
        orders_counted.ordered_at as occurred_at
    from orders_counted
    inner join negative_persons
        on orders_counted.person_id = negative_persons.person_id

),

last_touch as (

    {#- The latest touchpoint or order of each person with negative feedback. -#}
    select
        person_id,
        max(occurred_at) as last_seen_at
    from seen
    group by person_id

),

last_negative as (

    select
        person_id,
        feedback_source,
        category,
        occurred_at,
        row_number() over (
            partition by person_id order by occurred_at desc, feedback_source desc, source_record_id desc
        ) as negative_rank,
        count(*) over (partition by person_id) as negative_touchpoints,
        sum(case when occurred_at >= {{ as_of_end() }} - interval '90 days' then 1 else 0 end)
            over (partition by person_id) as negative_touchpoints_90d
    from touchpoints
    where is_negative

),

judged as (

    select
        last_negative.*,
        streak.negative_streak,
        streak.streak_started_at,
        ended.purchased_at,
        ended.positive_at,
        first_positive.positive_kind,
        recent.negative_experiences_recent,
        recent.experiences_recent,
        cast(recent.negative_experiences_recent as double precision) / recent.experiences_recent
            as negative_share_recent,
        case
            when
                recent.negative_experiences_recent >= {{ var('risk_heavy_negatives') }}
                and recent.negative_experiences_recent
                >= {{ var('risk_heavy_share') }} * recent.experiences_recent
                then 'heavy'
            when streak.negative_streak >= {{ var('risk_streak_length') }} then 'streak'
        end as risk_reason,
        last_negative.occurred_at
        >= {{ as_of_end() }} - interval '{{ var("risk_window_days") }} days' as is_recent,
        last_touch.last_seen_at > last_negative.occurred_at as has_activity_since
    from last_negative
    inner join streak
        on last_negative.person_id = streak.person_id
    inner join recent
        on last_negative.person_id = recent.person_id
    inner join last_touch
        on last_negative.person_id = last_touch.person_id
    left join ended
        on last_negative.person_id = ended.person_id
    left join first_positive
        on last_negative.person_id = first_positive.person_id
    where last_negative.negative_rank = 1

),

stated as (

    {#- A purchase ends every kind of risk; a positive experience ends a
        streak, not a heavy complainer's share (heavy chatters also thank). -#}
    select
        *,
        case
            when purchased_at is not null then purchased_at
            when risk_reason = 'heavy' then null
            else positive_at
        end as recovered_at,
        case
            when purchased_at is not null then 'purchase'
            when risk_reason = 'heavy' then null
            else positive_kind
        end as recovered_by
    from judged

),

classified as (

    select
        *,
        case
            when recovered_at is not null then 'recovered'
            when risk_reason is not null and is_recent then 'at_risk'
            when risk_reason is not null and not has_activity_since then 'win_back'
            else 'watch'
        end as risk_state
    from stated

),

final as (

    select
        -- ids
        person_id,
        -- state
        risk_state,
        risk_reason,
        -- streak
        case when recovered_at is null then negative_streak else 0 end as negative_streak,
        case when recovered_at is null then streak_started_at end as streak_started_at,
        recovered_at,
        recovered_by,
        negative_experiences_recent,
        experiences_recent,
        cast(negative_share_recent as decimal(5, 4)) as negative_share_recent,
        negative_touchpoints,
        negative_touchpoints_90d,
        -- last negative touchpoint
        occurred_at as last_negative_at,
        feedback_source as last_negative_source,
        category as last_negative_category,
        {{ as_of_date() }} - {{ local_date('occurred_at') }} as days_since_last_negative

    from classified

)

select * from final
