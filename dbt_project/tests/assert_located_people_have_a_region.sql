{#- Every person with any location signal has a region: an address on their
    anchor customer, a message in or a roster entry of a non-official chat
    group with a place, a forum profile location, or a check-in at an event
    with a city. Checked from the staging tables, not from the model's
    ranking. -#}
with

signals as (

    select persons.person_id
    from {{ ref('int_identity__persons') }} as persons
    inner join {{ ref('stg_shop__customers') }} as customers
        on persons.anchor_customer_id = customers.customer_id
    where coalesce(customers.city, customers.province) is not null

    union all

    select resolved.person_id
    from {{ ref('stg_chat__messages') }} as messages
    inner join {{ ref('stg_chat__groups') }} as chat_groups
        on messages.group_id = chat_groups.group_id
    inner join {{ ref('int_identity__resolved') }} as resolved
        on {{ account_node('chat', 'messages.sender_id') }} = resolved.account_node
    where not chat_groups.is_official and coalesce(chat_groups.city, chat_groups.province) is not null

    union all

    select resolved.person_id
    from {{ ref('stg_chat__members') }} as members
    inner join {{ ref('stg_chat__groups') }} as chat_groups
        on members.group_id = chat_groups.group_id
    inner join {{ ref('int_identity__resolved') }} as resolved
        on {{ account_node('chat', 'members.sender_id') }} = resolved.account_node
    where not chat_groups.is_official and coalesce(chat_groups.city, chat_groups.province) is not null

    union all

    select resolved.person_id
    from {{ ref('stg_forum__users') }} as forum_users
    inner join {{ ref('int_identity__resolved') }} as resolved
        on {{ account_node('forum', 'forum_users.user_id') }} = resolved.account_node
    where coalesce(forum_users.city, forum_users.province) is not null

    union all

    select activities.person_id
    from {{ ref('int_engagement__activities_unioned') }} as activities
    inner join {{ ref('stg_events__attendance') }} as attendance
        on activities.activity_id = attendance.event_id
    where activities.activity_type = 'event_attended' and attendance.city <> ''

)

select distinct persons.person_id
from {{ ref('int_identity__persons') }} as persons
inner join signals
    on persons.person_id = signals.person_id
where coalesce(persons.city, persons.province) is null
