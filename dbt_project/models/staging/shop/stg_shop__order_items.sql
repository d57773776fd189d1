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
        source('shop', 'order_items'), 'order_items', 'order_id',
        incremental=is_incremental()
    ) }}

),

versioned as (

    select
        *,
        row_number() over (
            partition by order_id, line_no
            order by {{ version_order() }}
        ) as version_rank
    from source

),

final as (

    select
        -- ids
        order_id,
        line_no,
        product_id,
        -- attributes
        nullif(trim(product_name), '') as product_name,
        nullif(trim(category), '') as category,
        -- measures
        quantity,
        unit_price as unit_price_amount,
        quantity * unit_price as line_amount,
        -- lineage
        _batch_id as batch_id,
        -- when this build (re)computed the row: downstream incremental models
        -- recompute what rests on it (macros/incremental.sql: built_now)
        {{ built_now() }} as _built_at

    from versioned
    where {{ is_latest_live() }}

)

select * from final
