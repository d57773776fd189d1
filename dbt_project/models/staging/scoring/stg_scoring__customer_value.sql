{#- The lifetime-value predictions of this build (crm_pipeline.value writes them between the two
    halves of the build: tag after_value_fit is the second half). #}
{{ config(tags=['after_value_fit']) }}

with

source as (

    select * from {{ source('scoring', 'customer_value') }}

),

final as (

    select
        -- ids
        person_id,
        -- dates
        as_of_date,
        parameters_as_of,
        -- predictions
        p_alive,
        expected_purchases_90d,
        expected_purchases_365d,
        expected_purchase_value,
        clv_12m

    from source

)

select * from final
