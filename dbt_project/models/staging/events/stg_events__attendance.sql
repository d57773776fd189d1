{#- One row per (event, attendee_ref, status) on or before the as-of day. -#}
{{
    config(
        materialized='incremental',
        unique_key='event_id',
        incremental_strategy='delete+insert',
        on_schema_change='fail',
    )
}}

with

source as (

    {{ touched_source(
        source('events', 'events'), 'events', 'event_id',
        stamp='event_date', stamp_is_date=true, incremental=is_incremental()
    ) }}

),

known_as_of as (

    select * from source
    where event_date <= {{ as_of_date() }}

),

versioned as (

    select
        *,
        row_number() over (
            partition by event_id, attendee_ref, status
            order by {{ version_order() }}
        ) as version_rank
    from known_as_of

),

final as (

    select
        -- ids
        event_id,
        trim(attendee_ref) as attendee_ref,
        -- attributes
        nullif(trim(event_name), '') as event_name,
        trim(city) as city,
        status as attendance_status,
        -- dates
        event_date,
        -- lineage
        _batch_id as batch_id,
        -- when this build (re)computed the row: downstream incremental models
        -- recompute what rests on it (macros/incremental.sql: built_now)
        {{ built_now() }} as _built_at

    from versioned
    where {{ is_latest_live() }}

)

select * from final
