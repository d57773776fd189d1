{#- One row per community member (forum or chat account, not staff) as of
    as_of_date: 30- and 90-day windows ending on that local day, forum and
    chat together; points and level (int_engagement__member_points); opinion leaders
    by reach — distinct members (not staff) who replied to or mentioned
    them in 90 days, ranked (ties broken by likes received), the top
    var('opinion_leader_share') of members with at least
    var('opinion_leader_min_repliers') of them; core fans: the top
    var('core_fan_share') by points who are also member or partner tier and
    active now: their own last activity (post, reply, chat message, event)
    within var('core_fan_active_days') days of as_of_date.
    Onion: members ordered by their own activity in 90 days (posts, replies,
    chat messages, events attended); a member is core while the members
    strictly more active than them hold less than var('onion_core_share') of
    all activity, regular while they hold less than
    var('onion_regular_share'), casual after that or with no activity. -#}
with

persons as (

    select * from {{ ref('int_identity__persons') }}

),

activities as (

    select * from {{ ref('int_engagement__activities_unioned') }}

),

points as (

    select * from {{ ref('int_engagement__member_points') }}

),

tiered as (

    select * from {{ ref('int_customers__tiered') }}

),

members as (

    select person_id
    from persons
    where (is_forum_member or is_chat_member) and not is_staff

),

windowed as (

    select
        person_id,
        activity_type,
        activity_date,
        quantity,
        counterpart_person_id,
        {{ as_of_date() }} - activity_date as days_ago
    from activities
    where activity_date <= {{ as_of_date() }}

),

per_member as (

    select
        members.person_id,
        {{ windowed_sum("'post', 'reply'", 30) }} as posts_30d,
        {{ windowed_sum("'reply_received'", 30) }} as replies_received_30d,
        {{ windowed_sum("'like_received'", 30) }} as likes_received_30d,
        {{ windowed_sum("'chat_message'", 30) }} as chat_messages_30d,
        count(distinct case
            when
                windowed.activity_type in ('post', 'reply', 'chat_message', 'event_attended')
                and windowed.days_ago < 30 then windowed.activity_date
        end) as active_days_30d,
        {{ windowed_sum("'event_attended'", 90) }} as events_attended_90d,
        {{ windowed_sum("'like_received'", 90) }} as likes_received_90d,
        {{ windowed_sum("'reply_received'", 90) }} as replies_received_90d,
        {{ windowed_sum("'mention_received'", 90) }} as mentions_received_90d,
        count(distinct case
            when
                windowed.activity_type in ('reply_received', 'mention_received')
                and windowed.days_ago < 90
                and counterparts.person_id is not null
                then windowed.counterpart_person_id
        end) as distinct_repliers_90d,
        {{ windowed_sum("'post', 'reply', 'chat_message', 'event_attended'", 90) }} as activity_90d,
        max(case
            when windowed.activity_type in ('post', 'reply', 'chat_message', 'event_attended')
                then windowed.activity_date
        end) as last_active_date
    from members
    left join windowed
        on members.person_id = windowed.person_id
    left join members as counterparts
        on windowed.counterpart_person_id = counterparts.person_id
    group by members.person_id

),

onion as (

    select
        person_id,
        coalesce(
            (
                sum(activity_90d) over (order by activity_90d desc)
                - activity_90d * count(*) over (partition by activity_90d)
            ) * 1.0 / nullif(sum(activity_90d) over (), 0),
            0
        ) as activity_share_before
    from per_member

),

ranked as (

    select
        per_member.*,
        coalesce(points.points_total, 0) as points_total,
        coalesce(points.level, 1) as level,
        tiered.community_tier,
        rank() over (order by per_member.distinct_repliers_90d desc, per_member.likes_received_90d desc)
            as reach_rank,
        rank() over (order by coalesce(points.points_total, 0) desc) as points_rank,
        cast(ceil({{ var('opinion_leader_share') }} * count(*) over ()) as integer) as opinion_leader_rank_cutoff,
        cast(ceil({{ var('core_fan_share') }} * count(*) over ()) as integer) as core_fan_rank_cutoff,
        onion.activity_share_before
    from per_member
    inner join onion
        on per_member.person_id = onion.person_id
    left join points
        on per_member.person_id = points.person_id
    left join tiered
        on per_member.person_id = tiered.person_id

),

final as (

    select
        -- ids
        persons.customer_key,
        -- dates
        {{ as_of_date() }} as as_of_date,
        -- measures
        ranked.posts_30d,
        ranked.replies_received_30d,
        ranked.likes_received_30d,
        ranked.chat_messages_30d,
        ranked.active_days_30d,
        ranked.events_attended_90d,
        ranked.points_total,
        ranked.level,
        -- opinion leadership, with its inputs
        ranked.distinct_repliers_90d,
        ranked.replies_received_90d,
        ranked.mentions_received_90d,
        ranked.likes_received_90d,
        ranked.reach_rank,
        ranked.opinion_leader_rank_cutoff,
        (
            ranked.distinct_repliers_90d >= {{ var('opinion_leader_min_repliers') }}
            and ranked.reach_rank <= ranked.opinion_leader_rank_cutoff
        ) as is_opinion_leader,
        -- core fans: top points, member-or-partner tier, active now
        ranked.points_rank,
        ranked.core_fan_rank_cutoff,
        coalesce(ranked.community_tier, 'prospect') as community_tier,
        ranked.last_active_date,
        {{ as_of_date() }} - ranked.last_active_date as days_since_active,
        (
            ranked.points_rank <= ranked.core_fan_rank_cutoff
            and ranked.points_total > 0
            and coalesce(ranked.community_tier, 'prospect') in ('member', 'partner')
            and coalesce({{ as_of_date() }} - ranked.last_active_date < {{ var('core_fan_active_days') }}, false)
        ) as is_core_fan,
        -- onion layer, with its inputs
        ranked.activity_90d,
        ranked.activity_share_before,
        case
            when ranked.activity_90d = 0 then 'casual'
            when ranked.activity_share_before < {{ var('onion_core_share') }} then 'core'
            when ranked.activity_share_before < {{ var('onion_regular_share') }} then 'regular'
            else 'casual'
        end as onion_layer

    from ranked
    left join persons
        on ranked.person_id = persons.person_id

)

select * from final
