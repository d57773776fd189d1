{#- The lifetime-value models behind fct_customer_value: the as-of day's fit, one row (from
    audit.value_fits, which crm_pipeline.value writes between the build's halves). A day whose fit
    was refused shows the parameters it kept (parameters_as_of says whose). #}
{{ config(tags=['after_value_fit']) }}

with

fits as (

    select * from {{ source('audit', 'value_fits') }}

),

final as (

    select
        -- ids
        as_of_date,
        parameters_as_of,
        -- data
        customers,
        repeat_buyers as repeat_customers,
        -- BG/NBD (time unit: weeks)
        r as bgnbd_r,
        alpha as bgnbd_alpha,
        a as bgnbd_a,
        b as bgnbd_b,
        bgnbd_log_likelihood,
        -- Gamma-Gamma
        p as gg_p,
        q as gg_q,
        v as gg_v,
        gamma_gamma_log_likelihood as gg_log_likelihood

    from fits
    where status in ('fitted', 'kept') and as_of_date = {{ as_of_date() }}

)

select * from final
