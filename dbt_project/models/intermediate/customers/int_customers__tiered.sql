{#- Region first, then grade, then hold. On every day of the tier window
    (int_customers__rfm_daily) each customer's circle is their city, or their
    province when the city has fewer than var('circle_min_size') customers
    that day, or the whole country when the province is also too small.
    circle_percentile is the share of the circle ranked strictly below on
    rfm_total (ties share it). qualified_tier is the highest tier in the
    community_tiers seed whose every threshold the customer meets that day.

    community_tier is the tier they hold: the highest tier they qualified for
    on the day itself or on any of the grace_days days before it. A tier is
    earned the day it is qualified for and lost only after grace_days days
    without qualifying, so a neighbour's order, which can move the people
    around them in their circle's ranking, changes no one else's tier that
    day. Everything is a function of the orders up to the day, so any past
    day's tiers are rebuilt by running that day. One row per person with a
    counted order on the as-of day, with that day's circle and yesterday's
    held tier (previous_tier; null for a person who had no counted order). -#}
with

persons as (

    select * from {{ ref('int_identity__persons') }}

),

daily as (

    select * from {{ ref('int_customers__rfm_daily') }}

),

tiers as (

    select * from {{ ref('community_tiers') }}

),

located as (

    {#- Every column of the day's standing travels on to final: joining
        the standings again there made PostgreSQL, which keeps a CTE used
        twice without statistics, nested-loop every as-of row against all
        of them (27 s on the real datasets). -#}
    select
        daily.*,
        coalesce(persons.province, 'unknown') as province,
        coalesce(persons.city, persons.province, 'unknown') as city
    from daily
    left join persons
        on daily.person_id = persons.person_id

),

city_counts as (

    {#- A standing depends only on the day, the circle and rfm_total (3-15),
        so it is computed once per (day, province, city, rfm_total) from
        counts, not by ranking every person on every day. -#}
    select
        standing_date,
        province,
        city,
        rfm_total,
        count(*) as at_total
    from located
    group by standing_date, province, city, rfm_total

),

province_counts as (

    select
        standing_date,
        province,
        rfm_total,
        sum(at_total) as at_total
    from city_counts
    group by standing_date, province, rfm_total

),

national_counts as (

    select
        standing_date,
        rfm_total,
        sum(at_total) as at_total
    from province_counts
    group by standing_date, rfm_total

),

city_standings as (

    select
        *,
        sum(at_total) over (partition by standing_date, province, city) as circle_size,
        coalesce(sum(at_total) over (
            partition by standing_date, province, city order by rfm_total
            rows between unbounded preceding and 1 preceding
        ), 0) as below
    from city_counts

),

province_standings as (

    select
        *,
        sum(at_total) over (partition by standing_date, province) as circle_size,
        coalesce(sum(at_total) over (
            partition by standing_date, province order by rfm_total
            rows between unbounded preceding and 1 preceding
        ), 0) as below
    from province_counts

),

national_standings as (

    select
        *,
        sum(at_total) over (partition by standing_date) as circle_size,
        coalesce(sum(at_total) over (
            partition by standing_date order by rfm_total
            rows between unbounded preceding and 1 preceding
        ), 0) as below
    from national_counts

),

circles as (

    {#- The circle each (day, city) grades in: the city, else the province
        (a small city's people are compared with their whole province, big
        cities included), else the country. -#}
    select
        city_standings.standing_date,
        city_standings.province,
        city_standings.city,
        city_standings.rfm_total,
        case
            when city_standings.circle_size >= {{ var('circle_min_size') }} then 'city'
            when province_standings.circle_size >= {{ var('circle_min_size') }} then 'province'
            else 'national'
        end as circle_level,
        case
            when city_standings.circle_size >= {{ var('circle_min_size') }}
                then city_standings.province || '/' || city_standings.city
            when province_standings.circle_size >= {{ var('circle_min_size') }} then city_standings.province
            else 'national'
        end as circle_name,
        case
            when city_standings.circle_size >= {{ var('circle_min_size') }} then city_standings.circle_size
            when province_standings.circle_size >= {{ var('circle_min_size') }} then province_standings.circle_size
            else national_standings.circle_size
        end as circle_size,
        case
            when city_standings.circle_size >= {{ var('circle_min_size') }} then city_standings.below
            when province_standings.circle_size >= {{ var('circle_min_size') }} then province_standings.below
            else national_standings.below
        end as below,
        case
            when city_standings.circle_size >= {{ var('circle_min_size') }} then city_standings.at_total
            when province_standings.circle_size >= {{ var('circle_min_size') }} then province_standings.at_total
            else national_standings.at_total
        end as at_total
    from city_standings
    inner join province_standings
        on
            city_standings.standing_date = province_standings.standing_date
            and city_standings.province = province_standings.province
            and city_standings.rfm_total = province_standings.rfm_total
    inner join national_standings
        on
            city_standings.standing_date = national_standings.standing_date
            and city_standings.rfm_total = national_standings.rfm_total

),

graded as (

    {#- circle_rank: 1 + those ranked strictly above (ties share it);
        circle_rfm_score: 1 + floor(5 * those below / size), the quintile
        score (macro quintile_of) within the circle. Before yesterday,
        only people who could qualify for a tier with a grace period
        (everyone counts in the circles above). -#}
    select
        located.*,
        circles.circle_level,
        circles.circle_name,
        circles.circle_size,
        circles.circle_size - circles.below - circles.at_total + 1 as circle_rank,
        circles.below * 1.0 / circles.circle_size as circle_percentile,
        {{ quintile_of('circles.below', 'circles.circle_size') }} as circle_rfm_score
    from located
    inner join circles
        on
            located.standing_date = circles.standing_date
            and located.province = circles.province
            and located.city = circles.city
            and located.rfm_total = circles.rfm_total
    where
        located.standing_date >= {{ as_of_date() }} - 1
        or located.frequency_orders >= (
            select min(tiers.min_frequency_orders) from tiers
            where tiers.grace_days > 0
        )

),

qualified as (

    {#- Every (person, day, tier) whose thresholds the person met that day:
        on every day of the window for a tier with a grace period, on the
        as-of day and the day before for the rest. -#}
    select
        graded.person_id,
        graded.standing_date,
        tiers.tier_rank,
        tiers.grace_days
    from graded
    inner join tiers
        on
            graded.frequency_orders >= tiers.min_frequency_orders
            and graded.circle_percentile >= tiers.min_circle_percentile
    where tiers.grace_days > 0 or graded.standing_date >= {{ as_of_date() }} - 1

),

last_qualified as (

    {#- The last day each person qualified for each tier: by the as-of day,
        and by the day before. -#}
    select
        person_id,
        tier_rank,
        grace_days,
        max(standing_date) as last_day,
        max(case when standing_date < {{ as_of_date() }} then standing_date end) as last_day_before
    from qualified
    group by person_id, tier_rank, grace_days

),

ranks as (

    select
        person_id,
        max(case when last_day = {{ as_of_date() }} then tier_rank end) as qualified_rank,
        max(case when last_day >= {{ as_of_date() }} - grace_days then tier_rank end) as held_rank,
        max(case when last_day_before >= {{ as_of_date() }} - 1 - grace_days then tier_rank end) as previous_rank
    from last_qualified
    group by person_id

),

held as (

    select
        ranks.person_id,
        ranks.qualified_rank,
        ranks.held_rank,
        ranks.previous_rank,
        {#- The held tier is kept through its last qualifying day plus its grace. -#}
        last_qualified.last_day + last_qualified.grace_days as held_until
    from ranks
    inner join last_qualified
        on
            ranks.person_id = last_qualified.person_id
            and ranks.held_rank = last_qualified.tier_rank

),

final as (

    select
        graded.*,
        qualified_tiers.tier as qualified_tier,
        held_tiers.tier as community_tier,
        previous_tiers.tier as previous_tier,
        case when held.held_rank > held.qualified_rank then held.held_until end as tier_held_until
    from graded
    inner join held
        on graded.person_id = held.person_id
    inner join tiers as qualified_tiers
        on held.qualified_rank = qualified_tiers.tier_rank
    inner join tiers as held_tiers
        on held.held_rank = held_tiers.tier_rank
    left join tiers as previous_tiers
        on held.previous_rank = previous_tiers.tier_rank
    where graded.standing_date = {{ as_of_date() }}

)

select * from final
