{#- Where people live by what the community says of them: one row per person
    with a community signal, the most trusted one (docs/architecture.md,
    "Regions"). int_identity__persons uses it for people whose anchor
    customer gives no address (community-only people, mostly).
    1. chat_group: a chat group that is not official and has a place, which
       they talk in or are on the roster of (the one they wrote most in, then
       the group id). An official group's place is where the brand runs it,
       not where its members live.
    2. forum_profile: the province and city on a forum profile.
    3. event: the city of the offline events they checked in at (the most
       check-ins, then the latest), in the province where most of the
       brand's customers in that city live. -#}
with

resolved as (

    select * from {{ ref('int_identity__resolved') }}

),

messages as (

    select * from {{ ref('stg_chat__messages') }}

),

members as (

    select * from {{ ref('stg_chat__members') }}

),

chat_groups as (

    select * from {{ ref('stg_chat__groups') }}
    where not is_official and coalesce(city, province) is not null

),

forum_users as (

    select * from {{ ref('stg_forum__users') }}
    where coalesce(city, province) is not null

),

activities as (

    select * from {{ ref('int_engagement__activities_unioned') }}
    where activity_type = 'event_attended'

),

attendance as (

    select * from {{ ref('stg_events__attendance') }}

),

customers as (

    select * from {{ ref('stg_shop__customers') }}

),

in_groups as (

    select
        group_id,
        sender_id,
        1 as messages
    from messages

    union all

    select
        group_id,
        sender_id,
        0 as messages
    from members

),

by_group as (

    select
        resolved.person_id,
        chat_groups.province,
        chat_groups.city,
        row_number() over (
            partition by resolved.person_id
            order by sum(in_groups.messages) desc, chat_groups.group_id asc
        ) as signal_rank
    from in_groups
    inner join chat_groups
        on in_groups.group_id = chat_groups.group_id
    inner join resolved
        on {{ account_node('chat', 'in_groups.sender_id') }} = resolved.account_node
    group by resolved.person_id, chat_groups.group_id, chat_groups.province, chat_groups.city

),

by_profile as (

    select
        resolved.person_id,
        forum_users.province,
        forum_users.city,
        row_number() over (
            partition by resolved.person_id
            order by forum_users.user_id asc
        ) as signal_rank
    from forum_users
    inner join resolved
        on {{ account_node('forum', 'forum_users.user_id') }} = resolved.account_node

),

event_cities as (

    select distinct
        event_id,
        city
    from attendance
    where city is not null and city <> ''

),

city_provinces as (

    {#- The province where most of the brand's customers in a city live. -#}
    select
        city,
        province,
        row_number() over (partition by city order by count(*) desc, province asc) as province_rank
    from customers
    where city is not null and province is not null
    group by city, province

),

by_event as (

    select
        activities.person_id,
        city_provinces.province,
        event_cities.city,
        row_number() over (
            partition by activities.person_id
            order by count(*) desc, max(activities.activity_date) desc, event_cities.city asc
        ) as signal_rank
    from activities
    inner join event_cities
        on activities.activity_id = event_cities.event_id
    left join city_provinces
        on event_cities.city = city_provinces.city and city_provinces.province_rank = 1
    group by activities.person_id, event_cities.city, city_provinces.province

),

signals as (

    select
        person_id,
        province,
        city,
        'chat_group' as location_source,
        1 as trust
    from by_group
    where signal_rank = 1

    union all

    select
        person_id,
        province,
        city,
        'forum_profile' as location_source,
        2 as trust
    from by_profile
    where signal_rank = 1

    union all

    select
        person_id,
        province,
        city,
        'event' as location_source,
        3 as trust
    from by_event
    where signal_rank = 1

),

ranked as (

    select
        *,
        row_number() over (partition by person_id order by trust asc) as trust_rank
    from signals

),

final as (

    select
        -- ids
        person_id,
        -- attributes
        province,
        city,
        location_source

    from ranked
    where trust_rank = 1

)

select * from final
