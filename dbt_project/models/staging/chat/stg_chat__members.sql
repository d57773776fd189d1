{#- Group rosters: one row per (group, sender), the latest version loaded.
    A view: rosters are small, and identity resolution (a table rebuilt
    every build) is what reads them. -#}
with

source as (

    select * from {{ source('chat', 'chat_members') }}
    where {{ not_held() }}

),

versioned as (

    select
        *,
        row_number() over (
            partition by group_id, sender_id
            order by {{ version_order() }}
        ) as version_rank
    from source
    where coalesce(joined_at, cast('1900-01-01' as timestamp)) < {{ as_of_end() }}

),

final as (

    select
        -- ids
        trim(group_id) as group_id,
        trim(sender_id) as sender_id,
        nullif(upper(trim(member_id)), '') as member_id,
        nullif(trim(wechat_unionid), '') as wechat_unionid,
        nullif(trim(phone), '') as phone,
        -- attributes
        nullif(trim(display_name), '') as display_name,
        left_at is not null and left_at < {{ as_of_end() }} as has_left,
        -- timestamps
        joined_at,
        left_at,
        -- lineage
        _batch_id as batch_id

    from versioned
    where {{ is_latest_live() }}

)

select * from final
