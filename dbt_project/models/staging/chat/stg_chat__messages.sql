{#- One row per message sent on or before the as-of day. A recall record
    (WeCom action = recall) marks its target recalled and is itself kept as
    a system record. System texts of joins and leaves become
    membership_event. -#}
with

source as (

    select * from {{ source('chat', 'chat_messages') }}
    where {{ not_held() }}

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
    where version_rank = 1

),

recalls as (

    select distinct recalled_msg_id
    from latest
    where action = 'recall'

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
                or lower(latest.content) like '%joined%'
                then 'join'
            when
                latest.content like '%退出了群聊%'
                or latest.content like '%移出了群聊%'
                or lower(latest.content) like '%left the group%'
                then 'leave'
        end as membership_event,
        -- timestamps
        latest.sent_at,
        -- lineage
        latest._batch_id as batch_id

    from latest
    left join recalls
        on latest.msg_id = recalls.recalled_msg_id

)

select * from final
