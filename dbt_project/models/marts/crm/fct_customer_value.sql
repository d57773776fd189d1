{#- Predicted value per buyer: BG/NBD and Gamma-Gamma (crm_pipeline.value), fitted on the
    as-of day's calibration summaries; second half of the build (tag after_value_fit). #}
{{ config(tags=['after_value_fit']) }}

with

summaries as (

    select * from {{ ref('int_customers__value_summary') }}

),

predictions as (

    select * from {{ ref('stg_scoring__customer_value') }}

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
        summaries.first_purchase_date,
        summaries.last_purchase_date,
        predictions.parameters_as_of,
        -- calibration summary (weeks)
        summaries.repeat_purchases,
        summaries.recency_weeks,
        summaries.age_weeks,
        summaries.mean_repeat_value,
        -- predictions
        predictions.p_alive,
        1 - predictions.p_alive as churn_probability,
        predictions.expected_purchases_90d as expected_orders_90d,
        predictions.expected_purchases_365d as expected_orders_365d,
        predictions.expected_purchase_value as expected_order_value,
        predictions.clv_12m

    from summaries
    left join predictions
        on summaries.person_id = predictions.person_id
    left join persons
        on summaries.person_id = persons.person_id

)

select * from final
