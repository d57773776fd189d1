{#- One row per post: its latest version stamped on or before the as-of day.
    An edit replaces the earlier text; a deletion keeps the row with
    is_deleted, so history stays and counting stops. -#}
{{
    config(
        materialized='incremental',
        unique_key='post_id',
        incremental_strategy='delete+insert',
        on_schema_change='fail',
        pre_hook="{{ no_nested_loops() }}",
    )
}}

{%- set post_stamp = 'greatest(created_at, coalesce(updated_at, created_at))' %}

with

{#- Incremental: replies to a touched post are touched too (their parent may
    have just arrived), and parents not touched come from the table built.
    One IN over a union (not ORs of EXISTS), so PostgreSQL hashes it. #}
source as (

    -- noqa: disable=LT02,LT05
    select * from {{ source('forum', 'forum_posts') }}
    where
        {{ not_held() }}
        {%- if is_incremental() %}
            and post_id in (
                select touched.post_id
                from ({{ touched_keys(source('forum', 'forum_posts'), 'forum_posts', 'post_id', post_stamp) }}) as touched

                union all

                select reply.post_id
                from {{ source('forum', 'forum_posts') }} as reply
                inner join {{ source('forum', 'forum_posts') }} as parent
                    on
                        reply.topic_id = parent.topic_id
                        and reply.reply_to_post_number = parent.post_number
                where parent.post_id in (
                    {{ touched_keys(source('forum', 'forum_posts'), 'forum_posts', 'post_id', post_stamp) }}
                )

                union all

                select reply.post_id
                from {{ source('forum', 'forum_posts') }} as reply
                inner join {{ this }} as parent
                    on
                        reply.topic_id = parent.topic_id
                        and reply.reply_to_post_number = parent.post_number
                where parent.post_id in (
                    {{ touched_keys(source('forum', 'forum_posts'), 'forum_posts', 'post_id', post_stamp) }}
                )
            )
        {%- endif %}
-- noqa: enable=LT02,LT05

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
    where {{ is_latest_live() }}

),

other_texts as (

    {#- The last version whose text differs from the latest's. -#}
    select
        versioned.post_id,
        max(coalesce(versioned.updated_at, versioned.created_at)) as last_other_at
    from versioned
    inner join latest
        on versioned.post_id = latest.post_id
    where versioned.content is distinct from latest.content
    group by versioned.post_id

),

text_since as (

    {#- When the latest text was first written: the first version after the
        last one with another text. An edit of likes or a deletion flag is no
        new text. -#}
    select
        versioned.post_id,
        min(coalesce(versioned.updated_at, versioned.created_at)) as text_since
    from versioned
    inner join latest
        on versioned.post_id = latest.post_id
    left join other_texts
        on versioned.post_id = other_texts.post_id
    where
        versioned.content is not distinct from latest.content
        and (
            other_texts.last_other_at is null
            or coalesce(versioned.updated_at, versioned.created_at) > other_texts.last_other_at
        )
    group by versioned.post_id

),

parents as (

    select
        topic_id,
        post_number,
        post_id
    from latest
    {%- if is_incremental() %}

        union all

        select
            built.topic_id,
            built.post_number,
            built.post_id
        from {{ this }} as built
        where built.post_id not in (select latest.post_id from latest)
    {%- endif %}

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
        case when text_since.text_since > latest.created_at then text_since.text_since end as text_edited_at,
        -- measures
        coalesce(latest.like_count, 0) as like_count,
        -- lineage
        latest._batch_id as batch_id,
        -- when this build (re)computed the row: downstream incremental models
        -- recompute what rests on it (macros/incremental.sql: built_now)
        {{ built_now() }} as _built_at

    from latest
    left join parents as parent
        on
            latest.topic_id = parent.topic_id
            and latest.reply_to_post_number = parent.post_number
    left join text_since
        on latest.post_id = text_since.post_id

)

select * from final
