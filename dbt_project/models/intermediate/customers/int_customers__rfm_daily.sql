{#- R, F and M per person with at least one counted order (all their shop
    accounts together), for every day of the tier window: the as-of day and
    the days before it that community tiers look back on (the largest
    grace_days in the community_tiers seed, plus one day so yesterday's tier
    is known too). Each day is scored as if it were the as-of day: orders
    placed and refunds made up to that day, scores 1-5 by quintile among that
    day's customers (macro quintile_score), named by the rfm_segments seed.
    The as-of day's rows are the RFM the marts report. -#}
with

orders as (

    select * from {{ ref('int_customers__orders_counted') }}

),

refunds as (

    select * from {{ ref('stg_shop__refunds') }}

),

segments as (

    select * from {{ ref('rfm_segments') }}

),

tiers as (

    select * from {{ ref('community_tiers') }}

),

spine as (

    select {{ as_of_date() }} - cast(generate_series as integer) as standing_date
    from generate_series(0, 400)
    where generate_series <= (select max(grace_days) from tiers) + 1

),

window_start as (

    select min(standing_date) as first_day from spine

),

events as (

    {#- An order adds one order and its total on the day it was placed; a
        refund takes its amount off on the day it was made. Whatever happened
        before the window is folded onto its first day. -#}
    select
        person_id,
        ordered_date as event_date,
        1 as orders,
        total_amount as amount,
        ordered_at,
        ordered_date
    from orders

    union all

    select
        orders.person_id,
        {{ local_date('refunds.refunded_at') }} as event_date,
        0 as orders,
        -refunds.refund_amount as amount,
        null as ordered_at,
        null as ordered_date
    from refunds
    inner join orders
        on refunds.order_id = orders.order_id
    where refunds.refunded_at < {{ as_of_end() }}

),

per_day as (

    select
        events.person_id,
        greatest(events.event_date, window_start.first_day) as standing_date,
        sum(events.orders) as orders,
        sum(events.amount) as amount,
        min(events.ordered_at) as first_order_at,
        max(events.ordered_at) as last_order_at,
        max(events.ordered_date) as last_order_date
    from events
    cross join window_start
    group by events.person_id, greatest(events.event_date, window_start.first_day)

),

running as (

    {#- Each person's totals after each day they changed, valid until the
        next such day: a handful of rows per person, not one per day. -#}
    select
        person_id,
        standing_date as valid_from,
        lead(standing_date) over by_day as valid_to,
        min(first_order_at) over to_date as first_order_at,
        max(last_order_at) over to_date as last_order_at,
        max(last_order_date) over to_date as last_order_date,
        sum(orders) over to_date as frequency_orders,
        sum(amount) over to_date as monetary_amount
    from per_day
    window
        by_day as (partition by person_id order by standing_date),
        to_date as (partition by person_id order by standing_date rows between unbounded preceding and current row)

),

cumulative as (

    select
        running.person_id,
        spine.standing_date,
        running.first_order_at,
        running.last_order_at,
        running.last_order_date,
        running.frequency_orders,
        running.monetary_amount
    from running
    inner join spine
        on
            running.valid_from <= spine.standing_date
            and (running.valid_to is null or running.valid_to > spine.standing_date)

),

measured as (

    select
        person_id,
        standing_date,
        first_order_at,
        last_order_at,
        last_order_date,
        cast(frequency_orders as integer) as frequency_orders,
        cast(monetary_amount as decimal(18, 2)) as monetary_amount,
        standing_date - last_order_date as recency_days
    from cumulative
    where frequency_orders > 0

),

recency_counts as (

    {#- Quintile scores (macros quintile_of, quintile_score: 1 + floor(5 *
        those ranked worse / n)) from counts per value where values repeat a lot: days
        since the last order and orders; money by rank. -#}
    select
        standing_date,
        recency_days,
        coalesce(sum(count(*)) over (
            partition by standing_date order by recency_days desc
            rows between unbounded preceding and 1 preceding
        ), 0) as worse,
        sum(count(*)) over (partition by standing_date) as customers
    from measured
    group by standing_date, recency_days

),

frequency_counts as (

    select
        standing_date,
        frequency_orders,
        coalesce(sum(count(*)) over (
            partition by standing_date order by frequency_orders
            rows between unbounded preceding and 1 preceding
        ), 0) as worse
    from measured
    group by standing_date, frequency_orders

),

scored as (

    select
        measured.*,
        {{ quintile_of('recency_counts.worse', 'recency_counts.customers') }} as r_score,
        {{ quintile_of('frequency_counts.worse', 'recency_counts.customers') }} as f_score,
        {{ quintile_score('measured.monetary_amount', partition_by='measured.standing_date') }} as m_score
    from measured
    inner join recency_counts
        on
            measured.standing_date = recency_counts.standing_date
            and measured.recency_days = recency_counts.recency_days
    inner join frequency_counts
        on
            measured.standing_date = frequency_counts.standing_date
            and measured.frequency_orders = frequency_counts.frequency_orders

),

with_fm as (

    select
        *,
        cast(floor((f_score + m_score + 1) / 2.0) as integer) as fm_score
    from scored

),

final as (

    select
        -- ids
        with_fm.person_id,
        -- dates
        with_fm.standing_date,
        -- timestamps
        with_fm.first_order_at,
        with_fm.last_order_at,
        with_fm.last_order_date,
        -- measures
        with_fm.recency_days,
        with_fm.frequency_orders,
        with_fm.monetary_amount,
        with_fm.r_score,
        with_fm.f_score,
        with_fm.m_score,
        with_fm.fm_score,
        with_fm.r_score + with_fm.f_score + with_fm.m_score as rfm_total,
        -- attributes
        segments.rfm_segment

    from with_fm
    left join segments
        on
            with_fm.r_score = segments.r_score
            and with_fm.fm_score = segments.fm_score

)

select * from final
