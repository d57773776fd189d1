{#- One row per person with negative feedback as of as_of_date. A streak is
    a run of negative touchpoints (feedback in any channel) with no
    non-negative touchpoint between them, each within
    var('risk_streak_days') days of the previous one. A person is at risk
    when their current streak (the one their latest touchpoint belongs to)
    has at least var('risk_streak_length') touchpoints. Value at stake is
    their net spend (monetary_amount, RFM). -#}
with

touchpoints as (

    select * from {{ ref('int_feedback__touchpoints') }}

),

tiered as (

    select * from {{ ref('int_customers__tiered') }}

),

persons as (

    select * from {{ ref('int_identity__persons') }}

),

ordered as (

    select
        person_id,
        feedback_source,
        source_record_id,
        occurred_at,
        is_negative,
        category,
        lag(is_negative) over (
            partition by person_id order by occurred_at, feedback_source, source_record_id
        ) as previous_is_negative,
        lag(occurred_at) over (
            partition by person_id order by occurred_at, feedback_source, source_record_id
        ) as previous_at,
        row_number() over (
            partition by person_id order by occurred_at desc, feedback_source desc, source_record_id desc
        ) as recency_rank
    from touchpoints
    where person_id is not null

),

streaked as (

    select
        *,
        sum(case
            when
                is_negative
                and coalesce(previous_is_negative, false)
                and occurred_at <= previous_at + interval '{{ var("risk_streak_days") }} days'
                then 0
            else 1
        end) over (
            partition by person_id order by occurred_at, feedback_source, source_record_id
            rows between unbounded preceding and current row
        ) as streak_id
    from ordered

),

latest as (

    select * from streaked
    where recency_rank = 1

),

current_streak as (

    select
        streaked.person_id,
        count(*) as negative_streak,
        min(streaked.occurred_at) as streak_started_at
    from streaked
    inner join latest
        on streaked.person_id = latest.person_id and streaked.streak_id = latest.streak_id
    where latest.is_negative and streaked.is_negative
    group by streaked.person_id

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
    from streaked
    where is_negative

),

final as (

    select
        -- ids
        persons.customer_key,
        -- dates
        {{ as_of_date() }} as as_of_date,
        -- streak
        coalesce(current_streak.negative_streak, 0) as negative_streak,
        current_streak.streak_started_at,
        coalesce(current_streak.negative_streak, 0) >= {{ var('risk_streak_length') }} as is_at_risk,
        last_negative.negative_touchpoints,
        last_negative.negative_touchpoints_90d,
        -- last negative touchpoint
        last_negative.occurred_at as last_negative_at,
        last_negative.feedback_source as last_negative_source,
        last_negative.category as last_negative_category,
        {{ as_of_date() }} - {{ local_date('last_negative.occurred_at') }} as days_since_last_negative,
        -- value at stake
        cast(coalesce(tiered.monetary_amount, 0) as decimal(18, 2)) as value_at_stake,
        tiered.frequency_orders,
        tiered.rfm_segment,
        coalesce(tiered.community_tier, 'prospect') as community_tier,
        persons.province,
        persons.city

    from last_negative
    left join current_streak
        on last_negative.person_id = current_streak.person_id
    left join tiered
        on last_negative.person_id = tiered.person_id
    left join persons
        on last_negative.person_id = persons.person_id
    where last_negative.negative_rank = 1

)

select * from final
