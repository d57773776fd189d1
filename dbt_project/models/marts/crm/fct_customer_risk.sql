{#- One row per person with negative feedback as of as_of_date: the state a
    CRM manager acts on (at_risk, win_back, recovered, watch: worked out in
    int_feedback__risk_states; docs/classifier.md, "Customer risk") and the
    value at stake: their net spend (monetary_amount, RFM) and the
    lifetime-value model's churn probability and 12-month value. -#}
with

states as (

    select * from {{ ref('int_feedback__risk_states') }}

),

tiered as (

    select * from {{ ref('int_customers__tiered') }}

),

persons as (

    select * from {{ ref('int_identity__persons') }}

),

predicted as (

    select * from {{ ref('fct_customer_value') }}

),

final as (

    select
        -- ids
        persons.customer_key,
        -- dates
        {{ as_of_date() }} as as_of_date,
        -- state
        states.risk_state,
        states.risk_state = 'at_risk' as is_at_risk,
        states.risk_reason,
        -- streak
        states.negative_streak,
        states.streak_started_at,
        states.recovered_at,
        states.recovered_by,
        states.negative_experiences_recent,
        states.experiences_recent,
        states.negative_share_recent,
        states.negative_touchpoints,
        states.negative_touchpoints_90d,
        -- last negative touchpoint
        states.last_negative_at,
        states.last_negative_source,
        states.last_negative_category,
        states.days_since_last_negative,
        -- value at stake
        cast(coalesce(tiered.monetary_amount, 0) as decimal(18, 2)) as value_at_stake,
        predicted.churn_probability,
        predicted.clv_12m,
        tiered.frequency_orders,
        tiered.rfm_segment,
        coalesce(tiered.community_tier, 'prospect') as community_tier,
        persons.province,
        persons.city

    from states
    left join tiered
        on states.person_id = tiered.person_id
    left join persons
        on states.person_id = persons.person_id
    left join predicted
        on persons.customer_key = predicted.customer_key

)

select * from final
