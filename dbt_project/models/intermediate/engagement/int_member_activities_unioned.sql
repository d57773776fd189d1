{#- Every community activity attributed to a person, with its local date
    and (for what a person writes) its time: posts and replies written
    (deleted posts do not count), replies received (forum replies and chat
    quoted replies), mentions received ("@name" of a forum username or chat
    display name that names one account), likes received, chat text
    messages (recalled ones do not count) and event check-ins (attendee_ref
    matched to a person by phone, member id or customer id; a phone several
    customers share names nobody). Replying to or mentioning oneself does
    not count. -#}
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

shared_keys as (

    select * from {{ ref('int_identity__shared_keys') }}

),

authored as (

    select
        resolved.person_id,
        posts.post_id as activity_id,
        case when posts.reply_to_post_id is null then 'post' else 'reply' end as activity_type,
        {{ local_date('posts.created_at') }} as activity_date,
        posts.created_at as activity_at,
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
        reply.created_at as activity_at,
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
        cast(null as timestamp) as activity_at,
        posts.like_count as quantity,
        cast(null as varchar) as counterpart_person_id
    from posts
    inner join resolved
        on '2forum:' || posts.user_id = resolved.account_node
    where not posts.is_deleted and posts.like_count > 0

),

chat_replies_received as (

    select
        parent_sender.person_id,
        reply.msg_id as activity_id,
        'reply_received' as activity_type,
        {{ local_date('reply.sent_at') }} as activity_date,
        reply.sent_at as activity_at,
        1 as quantity,
        replier.person_id as counterpart_person_id
    from messages as reply
    inner join messages as parent
        on reply.reply_to_msg_id = parent.msg_id
    inner join resolved as replier
        on '3chat:' || reply.sender_id = replier.account_node
    inner join resolved as parent_sender
        on '3chat:' || parent.sender_id = parent_sender.account_node
    where
        reply.is_counted_text
        and not parent.is_recalled
        and replier.person_id != parent_sender.person_id

),

written as (

    select
        '2forum:' || user_id as account_node,
        post_id as activity_id,
        created_at as activity_at,
        post_text as body
    from posts
    where not is_deleted and post_text like '%@%'

    union all

    select
        '3chat:' || sender_id as account_node,
        msg_id as activity_id,
        sent_at as activity_at,
        message_text as body
    from messages
    where is_counted_text and message_text like '%@%'

),

mentions as (

    select
        account_node,
        activity_id,
        activity_at,
        {{ mentioned_names('body') }} as mentioned_name
    from written

),

named_accounts as (

    {#- A name held by one account per channel; an ambiguous name is no one. -#}
    select
        min(account_node) as account_node,
        channel,
        display_name
    from (
        select distinct
            '2forum:' || user_id as account_node,
            '2forum:' as channel,
            username as display_name
        from {{ ref('stg_forum__users') }}
        where username is not null
        union all
        select distinct
            '3chat:' || sender_id as account_node,
            '3chat:' as channel,
            sender_name as display_name
        from messages
        where sender_name is not null
    ) as names
    group by channel, display_name
    having count(distinct account_node) = 1

),

mentions_received as (

    select distinct
        mentioned.person_id,
        mentions.activity_id,
        'mention_received' as activity_type,
        {{ local_date('mentions.activity_at') }} as activity_date,
        mentions.activity_at,
        1 as quantity,
        mentioner.person_id as counterpart_person_id
    from mentions
    inner join named_accounts
        on
            mentions.mentioned_name = named_accounts.display_name
            and mentions.account_node like named_accounts.channel || '%'
    inner join resolved as mentioner
        on mentions.account_node = mentioner.account_node
    inner join resolved as mentioned
        on named_accounts.account_node = mentioned.account_node
    where mentioner.person_id != mentioned.person_id

),

chat as (

    select
        resolved.person_id,
        messages.msg_id as activity_id,
        'chat_message' as activity_type,
        {{ local_date('messages.sent_at') }} as activity_date,
        messages.sent_at as activity_at,
        1 as quantity,
        cast(null as varchar) as counterpart_person_id
    from messages
    inner join resolved
        on '3chat:' || messages.sender_id = resolved.account_node
    where messages.is_counted_text

),

{# The keys an attendee_ref may be, one row each, so the match below is an
    equality join (an IN list in the join condition made PostgreSQL compare
    every attendance with every account key through the phone regex). #}
attendance_keys as (

    select
        event_id,
        event_date,
        'phone:' || coalesce({{ normalise_phone('attendee_ref') }}, '') as key_node
    from attendance
    where attendance_status = 'attended'

    union all

    select
        event_id,
        event_date,
        'member_id:' || upper(attendee_ref) as key_node
    from attendance
    where attendance_status = 'attended'

    union all

    select
        event_id,
        event_date,
        'customer_id:' || attendee_ref as key_node
    from attendance
    where attendance_status = 'attended'

),

attendee_keys as (

    select distinct
        attendance_keys.event_id,
        attendance_keys.event_date,
        resolved.person_id
    from attendance_keys
    inner join account_keys
        on attendance_keys.key_node = account_keys.key_node
    inner join resolved
        on account_keys.account_node = resolved.account_node
    left join shared_keys
        on account_keys.key_node = shared_keys.key_node
    -- a family's phone names no one person
    where shared_keys.key_node is null

),

events_attended as (

    select
        person_id,
        event_id as activity_id,
        'event_attended' as activity_type,
        event_date as activity_date,
        cast(null as timestamp) as activity_at,
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
    select * from chat_replies_received
    union all
    select * from mentions_received
    union all
    select * from chat
    union all
    select * from events_attended

)

select * from final
