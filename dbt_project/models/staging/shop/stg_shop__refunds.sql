{{
    config(
        materialized='incremental',
        unique_key='refund_id',
        incremental_strategy='delete+insert',
        on_schema_change='fail',
    )
}}

with

source as (

    {{ touched_source(
        source('shop', 'refunds'), 'refunds', 'refund_id',
        stamp='refunded_at', incremental=is_incremental()
    ) }}

),

known_as_of as (

    select * from source
    where refunded_at < {{ as_of_end() }}

),

versioned as (

    select
        *,
        row_number() over (
            partition by refund_id
            order by {{ version_order() }}
        ) as version_rank
    from known_as_of

),

final as (

    select
        -- ids
        refund_id,
        order_id,
        -- attributes
        reason as refund_reason,
        -- timestamps
        refunded_at,
        -- measures
        amount as refund_amount,
        -- lineage
        _batch_id as batch_id,
        -- when this build (re)computed the row: downstream incremental models
        -- recompute what rests on it (macros/incremental.sql: built_now)
        {{ built_now() }} as _built_at

    from versioned
    where {{ is_latest_live() }}

)

select * from final
