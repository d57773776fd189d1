{#- Each buyer's calibration summary for the lifetime-value models (crm_pipeline.value), as of the
    as-of day, in weeks: everyone with a counted order (fct_customer_rfm's people). A purchase is a
    local day with counted orders (same-day orders are one purchase), its value net of refunds. #}
with

orders as (

    select * from {{ ref('int_customers__orders_counted') }}

),

purchase_days as (

    select
        person_id,
        ordered_date,
        sum(net_amount) as day_value
    from orders
    group by person_id, ordered_date

),

numbered as (

    select
        person_id,
        ordered_date,
        day_value,
        row_number() over (partition by person_id order by ordered_date) as day_number
    from purchase_days

),

final as (

    select
        -- ids
        person_id,
        -- dates
        min(ordered_date) as first_purchase_date,
        max(ordered_date) as last_purchase_date,
        -- measures
        count(*) - 1 as repeat_purchases,
        cast(max(ordered_date) - min(ordered_date) as double precision) / 7 as recency_weeks,
        cast({{ as_of_date() }} - min(ordered_date) as double precision) / 7 as age_weeks,
        cast(avg(case when day_number > 1 then day_value end) as double precision) as mean_repeat_value

    from numbered
    group by person_id

)

select * from final
