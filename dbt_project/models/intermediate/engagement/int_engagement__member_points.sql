{#- Points per person up to the as-of day: activities x points_rules, each
    type capped per person per local day, then the highest level whose
    threshold is reached. -#}
with

activities as (

    select * from {{ ref('int_engagement__activities_unioned') }}

),

rules as (

    select * from {{ ref('points_rules') }}

),

levels as (

    select * from {{ ref('levels') }}

),

daily as (

    select
        activities.person_id,
        activities.activity_type,
        activities.activity_date,
        sum(activities.quantity) * rules.points_each as raw_points,
        rules.daily_cap
    from activities
    inner join rules
        on activities.activity_type = rules.activity_type
    where activities.activity_date <= {{ as_of_date() }}
    group by
        activities.person_id, activities.activity_type, activities.activity_date, rules.points_each, rules.daily_cap

),

capped as (

    select
        person_id,
        case when daily_cap is null then raw_points else least(raw_points, daily_cap) end as points
    from daily

),

totals as (

    select
        person_id,
        cast(sum(points) as integer) as points_total
    from capped
    group by person_id

),

leveled as (

    select
        totals.person_id,
        max(levels.level) as level
    from totals
    inner join levels
        on totals.points_total >= levels.min_points
    group by totals.person_id

),

final as (

    select
        -- ids
        totals.person_id,
        -- measures
        totals.points_total,
        leveled.level,
        levels.level_name

    from totals
    inner join leveled
        on totals.person_id = leveled.person_id
    inner join levels
        on leveled.level = levels.level

)

select * from final
