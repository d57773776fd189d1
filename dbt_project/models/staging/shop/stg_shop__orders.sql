{{
    config(
        materialized='incremental',
        unique_key='order_id',
        incremental_strategy='delete+insert',
        on_schema_change='fail',
    )
}}

with

source as (

    {{ touched_source(
        source('shop', 'orders'), 'orders', 'order_id',
        stamp='coalesce(updated_at, ordered_at)', incremental=is_incremental()
    ) }}

),

known_as_of as (

    {#- A version stamped after the as-of day is not known yet. -#}
    select * from source
    where coalesce(updated_at, ordered_at) < {{ as_of_end() }}

),

versioned as (

    select
        *,
        row_number() over (
            partition by order_id
            order by {{ version_order('coalesce(updated_at, ordered_at)') }}
        ) as version_rank
    from known_as_of

),

final as (

    select
        -- ids
        order_id,
        customer_id,
        -- attributes
        status as order_status,
        coalesce(nullif(trim(currency), ''), 'CNY') as currency,
        nullif(trim(channel), '') as channel,
        -- timestamps
        ordered_at,
        coalesce(updated_at, ordered_at) as updated_at,
        -- measures
        total_amount,
        -- lineage
        _batch_id as batch_id,
        -- when this build (re)computed the row: downstream incremental models
        -- recompute what rests on it (macros/incremental.sql: built_now)
        {{ built_now() }} as _built_at

    from versioned
    where {{ is_latest_live() }}

)

select * from final
