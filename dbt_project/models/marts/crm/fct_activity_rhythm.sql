{#- When the community listens: forum posts and replies and chat text
    messages in the 90 days up to as_of_date, by community tier, ISO
    weekday (1 = Monday) and local hour, with the distinct people active in
    each slot. Every (tier, weekday, hour) slot has a row, zero or not, so a
    heatmap has no holes. Staff are not members and are left out. -#}
with

counted as (

    select * from {{ ref('int_engagement__activity_slots') }}

),

tiers as (

    select * from {{ ref('community_tiers') }}

),

weekdays as (

    select generate_series as weekday from generate_series(1, 7)

),

hours as (

    select generate_series as hour_of_day from generate_series(0, 23)

),

slots as (

    select
        tiers.tier as community_tier,
        weekdays.weekday,
        hours.hour_of_day
    from tiers
    cross join weekdays
    cross join hours

),

final as (

    select
        -- grain
        slots.community_tier,
        slots.weekday,
        slots.hour_of_day,
        -- dates
        {{ as_of_date() }} as as_of_date,
        -- measures
        coalesce(counted.forum_posts, 0) as forum_posts,
        coalesce(counted.chat_messages, 0) as chat_messages,
        coalesce(counted.forum_posts, 0) + coalesce(counted.chat_messages, 0) as messages,
        coalesce(counted.active_people, 0) as active_people

    from slots
    left join counted
        on
            slots.community_tier = counted.community_tier
            and slots.weekday = counted.weekday
            and slots.hour_of_day = counted.hour_of_day

)

select * from final
