{#- Every community activity attributed to a person, with its local date:
    posts and replies written (deleted posts do not count), replies and
    likes received, chat text messages (recalled ones do not count) and
    event check-ins (attendee_ref matched to a person by phone, member id or
    customer id). A reply to one's own post is not a reply received. -#}
with

posts as (

    select * from {{ ref('stg_forum__posts') }}

),

messages as (

    select * from {{ ref('stg_chat__messages') }}

),

attendance as (

    select * from {{ ref('stg_events__attendance') }}

),

resolved as (

    select * from {{ ref('int_identity__resolved') }}

),

account_keys as (

    select * from {{ ref('int_identity__account_keys') }}

),

authored as (

    select
        resolved.person_id,
        posts.post_id as activity_id,
        case when posts.reply_to_post_id is null then 'post' else 'reply' end as activity_type,
        {{ local_date('posts.created_at') }} as activity_date,
        1 as quantity,
        cast(null as varchar) as counterpart_person_id
    from posts
    inner join resolved
        on '2forum:' || posts.user_id = resolved.account_node
    where not posts.is_deleted

),

replies_received as (

    select
        parent_author.person_id,
        reply.post_id as activity_id,
        'reply_received' as activity_type,
        {{ local_date('reply.created_at') }} as activity_date,
        1 as quantity,
        replier.person_id as counterpart_person_id
    from posts as reply
    inner join posts as parent
        on reply.reply_to_post_id = parent.post_id
    inner join resolved as replier
        on '2forum:' || reply.user_id = replier.account_node
    inner join resolved as parent_author
        on '2forum:' || parent.user_id = parent_author.account_node
    where
        not reply.is_deleted
        and not parent.is_deleted
        and replier.person_id != parent_author.person_id

),

likes_received as (

    select
        resolved.person_id,
        posts.post_id as activity_id,
        'like_received' as activity_type,
        {{ local_date('posts.created_at') }} as activity_date,
        posts.like_count as quantity,
        cast(null as varchar) as counterpart_person_id
    from posts
    inner join resolved
        on '2forum:' || posts.user_id = resolved.account_node
    where not posts.is_deleted and posts.like_count > 0

),

chat as (

    select
        resolved.person_id,
        messages.msg_id as activity_id,
        'chat_message' as activity_type,
        {{ local_date('messages.sent_at') }} as activity_date,
        1 as quantity,
        cast(null as varchar) as counterpart_person_id
    from messages
    inner join resolved
        on '3chat:' || messages.sender_id = resolved.account_node
    where messages.is_counted_text

),

attendee_keys as (

    select distinct
        attendance.event_id,
        attendance.event_date,
        resolved.person_id
    from attendance
    inner join account_keys
        on account_keys.key_node in (
            'phone:' || coalesce({{ normalise_phone('attendance.attendee_ref') }}, ''),
            'member_id:' || upper(attendance.attendee_ref),
            'customer_id:' || attendance.attendee_ref
        )
    inner join resolved
        on account_keys.account_node = resolved.account_node
    where attendance.attendance_status = 'attended'

),

events_attended as (

    select
        person_id,
        event_id as activity_id,
        'event_attended' as activity_type,
        event_date as activity_date,
        1 as quantity,
        cast(null as varchar) as counterpart_person_id
    from attendee_keys

),

final as (

    select * from authored
    union all
    select * from replies_received
    union all
    select * from likes_received
    union all
    select * from chat
    union all
    select * from events_attended

)

select * from final
