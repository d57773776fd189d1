{#- R, F and M per person with at least one counted order (all their shop
    accounts together), scored 1-5 overall (macro quintile_score), then named
    by the rfm_segments seed. -#}
with

orders as (

    select * from {{ ref('int_customers__orders_counted') }}

),

segments as (

    select * from {{ ref('rfm_segments') }}

),

per_customer as (

    select
        person_id,
        min(ordered_at) as first_order_at,
        max(ordered_at) as last_order_at,
        max(ordered_date) as last_order_date,
        count(*) as frequency_orders,
        cast(sum(net_amount) as decimal(18, 2)) as monetary_amount
    from orders
    group by person_id

),

measured as (

    select
        *,
        {{ as_of_date() }} - last_order_date as recency_days
    from per_customer

),

scored as (

    select
        *,
        {{ quintile_score('recency_days desc') }} as r_score,
        {{ quintile_score('frequency_orders') }} as f_score,
        {{ quintile_score('monetary_amount') }} as m_score
    from measured

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
