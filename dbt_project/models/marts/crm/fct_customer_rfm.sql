with

tiered as (

    select * from {{ ref('int_customers_tiered') }}

),

pseudonym_key as (

    select * from {{ source('private', 'pseudonym_key') }}

),

final as (

    select
        -- ids
        {{ keyed_hash('pseudonym_key.secret', 'tiered.person_id') }} as customer_key,
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
    cross join pseudonym_key

)

select * from final
