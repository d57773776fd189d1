with

tiered as (

    select * from {{ ref('int_customers__tiered') }}

),

persons as (

    select * from {{ ref('int_identity__persons') }}

),

final as (

    select
        -- ids
        persons.customer_key,
        -- dates
        {{ as_of_date() }} as as_of_date,
        tiered.last_order_date,
        -- measures
        tiered.recency_days,
        tiered.frequency_orders,
        tiered.monetary_amount,
        tiered.r_score,
        tiered.f_score,
        tiered.m_score,
        tiered.fm_score,
        tiered.rfm_total,
        -- segment and tier
        tiered.rfm_segment,
        tiered.community_tier,
        -- region circle
        case when tiered.province = 'unknown' then null else tiered.province end as province,
        case when tiered.city = 'unknown' then null else tiered.city end as city,
        tiered.circle_level,
        tiered.circle_name,
        tiered.circle_size,
        tiered.circle_rank,
        tiered.circle_percentile,
        tiered.circle_rfm_score

    from tiered
    left join persons
        on tiered.person_id = persons.person_id

)

select * from final
