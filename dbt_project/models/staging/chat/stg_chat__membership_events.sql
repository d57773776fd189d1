with

messages as (

    select * from {{ ref('stg_chat__messages') }}

),

final as (

    select
        -- ids
        msg_id as membership_event_id,
        group_id,
        sender_id,
        recalled_msg_id,
        -- attributes
        membership_event as event_type,
        -- timestamps
        sent_at as occurred_at

    from messages
    where membership_event is not null

)

select * from final
