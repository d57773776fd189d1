{#- One row per message sent on or before the as-of day. A recall record
    (WeCom action = recall) marks its target recalled and is itself kept as
    a system record. System texts of joins and leaves become
    membership_event. -#}
{{
    config(
        materialized='incremental',
        unique_key='msg_id',
        incremental_strategy='delete+insert',
        on_schema_change='fail',
    )
}}

with

{#- Incremental: a touched recall touches its target too, and a target
    recomputed alone finds its older recall in the table already built.
    One IN over a union (not IN ... OR IN ...), so PostgreSQL hashes it. #}
source as (

    select * from {{ source('chat', 'chat_messages') }}
    where
        {{ not_held() }}
        {%- if is_incremental() %}
            and msg_id in (
                select touched.msg_id
                from (
                    {{ touched_keys(source('chat', 'chat_messages'), 'chat_messages', 'msg_id', 'sent_at') }}
                ) as touched

                union all

                select recall.recalled_msg_id
                from {{ source('chat', 'chat_messages') }} as recall
                where
                    recall.action = 'recall'
                    and recall.msg_id in (
                        {{ touched_keys(source('chat', 'chat_messages'), 'chat_messages', 'msg_id', 'sent_at') }}
                    )
            )
        {%- endif %}

),

known_as_of as (

    select * from source
    where sent_at < {{ as_of_end() }}

),

versioned as (

    select
        *,
        row_number() over (
            partition by msg_id
            order by {{ version_order() }}
        ) as version_rank
    from known_as_of

),

latest as (

    select * from versioned
    where {{ is_latest_live() }}

),

recalls as (

    select distinct recalled_msg_id
    from latest
    where action = 'recall'
    {%- if is_incremental() %}

        union

        select built.recalled_msg_id
        from {{ this }} as built
        where
            built.membership_event = 'recall'
            and built.msg_id not in (select latest.msg_id from latest)
    {%- endif %}

),

final as (

    select
        -- ids
        latest.msg_id,
        latest.group_id,
        latest.sender_id,
        nullif(trim(latest.sender_unionid), '') as sender_unionid,
        nullif(trim(latest.sender_name), '') as sender_name,
        nullif(trim(latest.reply_to_msg_id), '') as reply_to_msg_id,
        latest.recalled_msg_id,
        -- attributes
        nullif(trim(latest.group_name), '') as group_name,
        latest.msg_type,
        latest.content as message_text,
        recalls.recalled_msg_id is not null as is_recalled,
        latest.msg_type = 'text' and recalls.recalled_msg_id is null as is_counted_text,
        case
            when latest.action = 'recall' then 'recall'
            when latest.msg_type != 'system' then null
            when
                latest.content like '%加入了群聊%'
                or latest.content like '%加入群聊%'
                or latest.content like '%加入本群%'
                or lower(latest.content) like '%joined%'
                then 'join'
            when
                latest.content like '%退出了群聊%'
                or latest.content like '%移出了群聊%'
                or latest.content like '%退出本群%'
                or latest.content like '%移出本群%'
                or lower(latest.content) like '%left the group%'
                then 'leave'
            -- a recall notice that does not say which message (WeChat's plain-text kind)
            when latest.content like '%撤回了一条消息%' then 'recall'
        end as membership_event,
        -- timestamps
        latest.sent_at,
        -- lineage
        latest._batch_id as batch_id,
        -- when this build (re)computed the row: downstream incremental models
        -- recompute what rests on it (macros/incremental.sql: built_now)
        {{ built_now() }} as _built_at

    from latest
    left join recalls
        on latest.msg_id = recalls.recalled_msg_id

)

select * from final
