{#- One row per post: its latest version stamped on or before the as-of day.
    An edit replaces the earlier text; a deletion keeps the row with
    is_deleted, so history stays and counting stops. -#}
with

source as (

    select * from {{ source('forum', 'forum_posts') }}

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
            order by
                coalesce(updated_at, created_at) desc,
                _loaded_at desc,
                coalesce(_line_no, 0) desc,
                _row_hash desc
        ) as version_rank,
        count(*) over (partition by post_id) as version_count
    from known_as_of

),

final as (

    select
        -- ids
        post_id,
        topic_id,
        user_id,
        nullif(trim(reply_to_post_id), '') as reply_to_post_id,
        -- attributes
        nullif(trim(category), '') as category,
        nullif(trim(title), '') as title,
        content as post_text,
        coalesce(is_deleted, false) as is_deleted,
        version_count > 1 as has_earlier_versions,
        -- timestamps
        created_at,
        coalesce(updated_at, created_at) as updated_at,
        -- measures
        coalesce(like_count, 0) as like_count,
        -- lineage
        _batch_id as batch_id

    from versioned
    where version_rank = 1

)

select * from final
