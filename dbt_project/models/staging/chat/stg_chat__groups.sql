{#- Chat groups and where they are: one row per group, the latest version
    loaded. The region places community-only people who talk in the group. -#}
with

source as (

    select * from {{ source('chat', 'chat_groups') }}
    where {{ not_held() }}

),

versioned as (

    select
        *,
        row_number() over (
            partition by group_id
            order by {{ version_order() }}
        ) as version_rank
    from source

),

final as (

    select
        -- ids
        trim(group_id) as group_id,
        -- attributes
        nullif(trim(group_name), '') as group_name,
        nullif(trim(province), '') as province,
        nullif(trim(city), '') as city,
        coalesce(is_official, false) as is_official,
        -- lineage
        _batch_id as batch_id

    from versioned
    where {{ is_latest_live() }}

)

select * from final
