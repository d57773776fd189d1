{#- Every community activity attributed to a person, with its local date
    and (for what a person writes) its time: posts and replies written
    (deleted posts do not count), replies received (forum replies and chat
    quoted replies), mentions received ("@name" of a forum username or chat
    display name that names one account), likes received, chat text
    messages (recalled ones do not count) and event check-ins (attendee_ref
    matched to a person by phone, member id or customer id; a phone several
    customers share names nobody). Replying to or mentioning oneself does
    not count. Forum and chat activities come by account from
    int_engagement__activities_by_account (incremental); here they are given
    their persons, on every build, as identity may have changed. -#}
with

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

by_account as (

    select * from {{ ref('int_engagement__activities_by_account') }}

),

{# An account's own activities, likes and replies received (the replier
    not the same person). #}
attributed as (

    select
        resolved.person_id,
        by_account.source_record_id as activity_id,
        by_account.activity_type,
        by_account.activity_date,
        by_account.activity_at,
        by_account.quantity,
        counterpart.person_id as counterpart_person_id
    from by_account
    inner join resolved
        on by_account.account_node = resolved.account_node
    left join resolved as counterpart
        on by_account.counterpart_node = counterpart.account_node
    where
        by_account.activity_type != 'mention_received'
        and (by_account.counterpart_node is null or counterpart.person_id != resolved.person_id)

),

named_accounts as (

    {#- A name held by one account per channel; an ambiguous name is no one. -#}
    select
        min(account_node) as account_node,
        channel,
        display_name
    from (
        select distinct
            {{ account_node('forum', 'user_id') }} as account_node,
            {{ account_prefix('forum') }} as channel,
            username as display_name
        from {{ ref('stg_forum__users') }}
        where username is not null
        union all
        select distinct
            {{ account_node('chat', 'sender_id') }} as account_node,
            {{ account_prefix('chat') }} as channel,
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
        by_account.source_record_id as activity_id,
        by_account.activity_type,
        by_account.activity_date,
        by_account.activity_at,
        by_account.quantity,
        mentioner.person_id as counterpart_person_id
    from by_account
    inner join named_accounts
        on
            by_account.mentioned_name = named_accounts.display_name
            and by_account.counterpart_node like named_accounts.channel || '%'
    inner join resolved as mentioner
        on by_account.counterpart_node = mentioner.account_node
    inner join resolved as mentioned
        on named_accounts.account_node = mentioned.account_node
    where
        by_account.activity_type = 'mention_received'
        and mentioner.person_id != mentioned.person_id

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

    select * from attributed
    union all
    select * from mentions_received
    union all
    select * from events_attended

)

select * from final
