{{
    config(
        materialized='incremental',
        unique_key='user_id',
        incremental_strategy='delete+insert',
        on_schema_change='fail',
    )
}}

with

source as (

    {{ touched_source(
        source('forum', 'forum_users'), 'forum_users', 'user_id',
        stamp='joined_at', incremental=is_incremental()
    ) }}

),

known_as_of as (

    select * from source
    where joined_at < {{ as_of_end() }}

),

versioned as (

    select
        *,
        row_number() over (
            partition by user_id
            order by {{ version_order() }}
        ) as version_rank
    from known_as_of

),

final as (

    select
        -- ids
        user_id,
        nullif(trim(member_id), '') as member_id,
        nullif(trim(wechat_unionid), '') as wechat_unionid,
        nullif(trim(phone), '') as phone,
        nullif(lower(trim(email)), '') as email,
        -- attributes
        username,
        nullif(trim(province), '') as province,
        nullif(trim(city), '') as city,
        -- timestamps
        joined_at,
        -- lineage
        _batch_id as batch_id,
        -- when this build (re)computed the row: downstream incremental models
        -- recompute what rests on it (macros/incremental.sql: built_now)
        {{ built_now() }} as _built_at

    from versioned
    where {{ is_latest_live() }}

)

select * from final
