{#- One row per post: its latest version stamped on or before the as-of day.
    An edit replaces the earlier text; a deletion keeps the row with
    is_deleted, so history stays and counting stops. -#}
with

source as (

    select * from {{ source('forum', 'forum_posts') }}
    where {{ not_held() }}

),

known_as_of as (

    select * from source
    where
        created_at < {{ as_of_end() }}
        and coalesce(updated_at, created_at) < {{ as_of_end() }}

),

versioned as (

    select
        *,
        row_number() over (
            partition by post_id
            order by {{ version_order('coalesce(updated_at, created_at)') }}
        ) as version_rank,
        count(*) over (partition by post_id) as version_count
    from known_as_of

),

latest as (

    select * from versioned
    where version_rank = 1

),

final as (

    select
        -- ids
        latest.post_id,
        latest.topic_id,
        latest.user_id,
        {#- File drops name the parent post; the forum API names its number in the topic. -#}
        coalesce(nullif(trim(latest.reply_to_post_id), ''), parent.post_id) as reply_to_post_id,
        latest.post_number,
        -- attributes
        nullif(trim(latest.category), '') as category,
        nullif(trim(latest.title), '') as title,
        latest.content as post_text,
        coalesce(latest.is_deleted, false) as is_deleted,
        latest.version_count > 1 as has_earlier_versions,
        -- timestamps
        latest.created_at,
        coalesce(latest.updated_at, latest.created_at) as updated_at,
        -- measures
        coalesce(latest.like_count, 0) as like_count,
        -- lineage
        latest._batch_id as batch_id

    from latest
    left join latest as parent
        on
            latest.topic_id = parent.topic_id
            and latest.reply_to_post_number = parent.post_number

)

select * from final
