{#- One row per (province, city) as of as_of_date, for organising offline
    events city by city: people by tier (staff excluded; people with no
    known location under 'unknown'), community members, opinion leaders and
    core fans, and potential hosts (partners or opinion leaders, counted
    once); events held there (all time and in the last 90 days) and their
    registrations and check-ins in 90 days. An event's city is placed in
    the province where most of the brand's people in that city live. -#}
with

customers as (

    select * from {{ ref('dim_customers') }}

),

engagement as (

    select * from {{ ref('fct_community_engagement') }}

),

attendance as (

    select * from {{ ref('stg_events__attendance') }}

),

people as (

    select
        coalesce(customers.province, 'unknown') as province,
        coalesce(customers.city, customers.province, 'unknown') as city,
        customers.community_tier,
        customers.is_forum_member or customers.is_chat_member as is_member,
        coalesce(engagement.is_opinion_leader, false) as is_opinion_leader,
        coalesce(engagement.is_core_fan, false) as is_core_fan
    from customers
    left join engagement
        on customers.customer_key = engagement.customer_key
    where not customers.is_staff

),

people_by_city as (

    select
        province,
        city,
        count(*) as people,
        sum(case when community_tier = 'prospect' then 1 else 0 end) as prospects,
        sum(case when community_tier = 'customer' then 1 else 0 end) as customers,
        sum(case when community_tier = 'member' then 1 else 0 end) as members,
        sum(case when community_tier = 'partner' then 1 else 0 end) as partners,
        sum(case when is_member then 1 else 0 end) as community_members,
        sum(case when is_opinion_leader then 1 else 0 end) as opinion_leaders,
        sum(case when is_core_fan then 1 else 0 end) as core_fans,
        sum(case when community_tier = 'partner' or is_opinion_leader then 1 else 0 end) as potential_hosts
    from people
    group by province, city

),

city_provinces as (

    select
        city,
        province,
        row_number() over (partition by city order by people desc, province asc) as province_rank
    from people_by_city
    where city != 'unknown'

),

events_by_city as (

    select
        coalesce(city_provinces.province, 'unknown') as province,
        attendance.city,
        count(distinct attendance.event_id) as events_held,
        count(distinct case
            when attendance.event_date > {{ as_of_date() }} - 90 then attendance.event_id
        end) as events_held_90d,
        sum(case
            when attendance.event_date > {{ as_of_date() }} - 90 and attendance.attendance_status = 'registered'
                then 1
            else 0
        end) as registrations_90d,
        sum(case
            when attendance.event_date > {{ as_of_date() }} - 90 and attendance.attendance_status = 'attended'
                then 1
            else 0
        end) as attendances_90d
    from attendance
    left join city_provinces
        on attendance.city = city_provinces.city and city_provinces.province_rank = 1
    where attendance.event_date <= {{ as_of_date() }}
    group by coalesce(city_provinces.province, 'unknown'), attendance.city

),

final as (

    select
        -- grain
        coalesce(people_by_city.province, events_by_city.province) as province,
        coalesce(people_by_city.city, events_by_city.city) as city,
        -- dates
        {{ as_of_date() }} as as_of_date,
        -- people
        coalesce(people_by_city.people, 0) as people,
        coalesce(people_by_city.prospects, 0) as prospects,
        coalesce(people_by_city.customers, 0) as customers,
        coalesce(people_by_city.members, 0) as members,
        coalesce(people_by_city.partners, 0) as partners,
        coalesce(people_by_city.community_members, 0) as community_members,
        coalesce(people_by_city.opinion_leaders, 0) as opinion_leaders,
        coalesce(people_by_city.core_fans, 0) as core_fans,
        coalesce(people_by_city.potential_hosts, 0) as potential_hosts,
        -- events
        coalesce(events_by_city.events_held, 0) as events_held,
        coalesce(events_by_city.events_held_90d, 0) as events_held_90d,
        coalesce(events_by_city.registrations_90d, 0) as registrations_90d,
        coalesce(events_by_city.attendances_90d, 0) as attendances_90d,
        cast(events_by_city.attendances_90d as double precision)
        / nullif(events_by_city.registrations_90d, 0) as attendance_rate_90d

    from people_by_city
    full outer join events_by_city
        on
            people_by_city.province = events_by_city.province
            and people_by_city.city = events_by_city.city

)

select * from final
