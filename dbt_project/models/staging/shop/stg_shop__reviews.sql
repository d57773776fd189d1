{{
    config(
        materialized='incremental',
        unique_key='review_id',
        incremental_strategy='delete+insert',
        on_schema_change='fail',
    )
}}

with

source as (

    {{ touched_source(
        source('shop', 'reviews'), 'reviews', 'review_id',
        stamp='created_at', incremental=is_incremental()
    ) }}

),

known_as_of as (

    select * from source
    where created_at < {{ as_of_end() }}

),

versioned as (

    select
        *,
        row_number() over (
            partition by review_id
            order by {{ version_order() }}
        ) as version_rank
    from known_as_of

),

final as (

    select
        -- ids
        review_id,
        customer_id,
        nullif(trim(order_id), '') as order_id,
        nullif(trim(product_id), '') as product_id,
        -- attributes
        rating,
        content as review_text,
        -- timestamps
        created_at,
        -- lineage
        _batch_id as batch_id,
        -- when this build (re)computed the row: downstream incremental models
        -- recompute what rests on it (macros/incremental.sql: built_now)
        {{ built_now() }} as _built_at

    from versioned
    where {{ is_latest_live() }}

)

select * from final
