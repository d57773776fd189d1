{#- Forum posts and replies and chat text messages of members (not staff)
    in the 90 days up to as_of_date, counted by community tier, ISO weekday
    (1 = Monday) and local hour; only slots with activity. -#}
with

activities as (

    select * from {{ ref('int_engagement__activities_unioned') }}

),

persons as (

    select * from {{ ref('int_identity__persons') }}

),

tiered as (

    select * from {{ ref('int_customers__tiered') }}

),

tiers as (

    select * from {{ ref('community_tiers') }}

),

written as (

    select
        activities.person_id,
        activities.activity_type,
        coalesce(tiered.community_tier, {{ lowest_tier() }}) as community_tier,
        cast(extract(isodow from {{ local_ts('activities.activity_at') }}) as integer) as weekday,
        cast(extract(hour from {{ local_ts('activities.activity_at') }}) as integer) as hour_of_day
    from activities
    inner join persons
        on activities.person_id = persons.person_id
    left join tiered
        on activities.person_id = tiered.person_id
    where
        activities.activity_type in ('post', 'reply', 'chat_message')
        and activities.activity_date <= {{ as_of_date() }}
        and activities.activity_date > {{ as_of_date() }} - 90
        and not persons.is_staff

),

final as (

    select
        community_tier,
        weekday,
        hour_of_day,
        sum(case when activity_type in ('post', 'reply') then 1 else 0 end) as forum_posts,
        sum(case when activity_type = 'chat_message' then 1 else 0 end) as chat_messages,
        count(distinct person_id) as active_people
    from written
    group by community_tier, weekday, hour_of_day

)

select * from final
