{#- Negative rate per product and ISO week (Monday start, local time) up to
    as_of_date, so a quality problem shows early: every piece of feedback
    linked to a product (reviews and refunds through their order, forum and
    chat through a catalogue name in the text) and how much of it is
    negative. -#}
with

touchpoints as (

    select * from {{ ref('int_feedback__touchpoints') }}

),

linked as (

    select
        product_id,
        feedback_source,
        is_negative,
        cast(date_trunc('week', {{ local_date('occurred_at') }}) as date) as week_start
    from touchpoints
    where product_id is not null

),

final as (

    select
        -- grain
        product_id,
        week_start,
        -- dates
        {{ as_of_date() }} as as_of_date,
        -- measures
        count(*) as feedback_count,
        sum(case when is_negative then 1 else 0 end) as negative_count,
        cast(sum(case when is_negative then 1 else 0 end) as double precision) / count(*) as negative_rate,
        sum(case when feedback_source = 'review' then 1 else 0 end) as reviews,
        sum(case when feedback_source = 'refund' then 1 else 0 end) as refunds,
        sum(case when feedback_source in ('forum', 'chat') then 1 else 0 end) as community_mentions

    from linked
    group by product_id, week_start

)

select * from final
