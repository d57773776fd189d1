{#- Region first, then grade: each scored customer's circle is their city,
    or their province when the city has fewer than var('circle_min_size')
    scored customers, or the whole country when the province is also too
    small. circle_percentile is the share of the circle ranked strictly
    below on rfm_total (ties share it). community_tier is the highest tier in
    the community_tiers seed whose every threshold the customer meets; people
    with no counted order are prospects. -#}
with

persons as (

    select * from {{ ref('int_identity__persons') }}

),

scored as (

    select * from {{ ref('int_customers__rfm_scored') }}

),

tiers as (

    select * from {{ ref('community_tiers') }}

),

located as (

    select
        scored.*,
        coalesce(persons.province, 'unknown') as province,
        coalesce(persons.city, persons.province, 'unknown') as city
    from scored
    left join persons
        on scored.person_id = persons.person_id

),

sized as (

    select
        *,
        count(*) over (partition by province, city) as city_size,
        count(*) over (partition by province) as province_size,
        count(*) over () as national_size
    from located

),

standings as (

    {#- Standing in all three possible circles; the chosen level picks one.
        A small city's people are compared with their whole province, big
        cities included. -#}
    select
        *,
        rank() over (partition by province, city order by rfm_total desc) as city_rank,
        rank() over (partition by province order by rfm_total desc) as province_rank,
        rank() over (order by rfm_total desc) as national_rank,
        rank() over (partition by province, city order by rfm_total) - 1 as city_below,
        rank() over (partition by province order by rfm_total) - 1 as province_below,
        rank() over (order by rfm_total) - 1 as national_below,
        {{ quintile_score('rfm_total', partition_by='province, city') }} as city_rfm_score,
        {{ quintile_score('rfm_total', partition_by='province') }} as province_rfm_score,
        {{ quintile_score('rfm_total') }} as national_rfm_score
    from sized

),

graded as (

    select
        *,
        case
            when city_size >= {{ var('circle_min_size') }} then 'city'
            when province_size >= {{ var('circle_min_size') }} then 'province'
            else 'national'
        end as circle_level,
        case
            when city_size >= {{ var('circle_min_size') }} then province || '/' || city
            when province_size >= {{ var('circle_min_size') }} then province
            else 'national'
        end as circle_name,
        case
            when city_size >= {{ var('circle_min_size') }} then city_size
            when province_size >= {{ var('circle_min_size') }} then province_size
            else national_size
        end as circle_size,
        case
            when city_size >= {{ var('circle_min_size') }} then city_rank
            when province_size >= {{ var('circle_min_size') }} then province_rank
            else national_rank
        end as circle_rank,
        case
            when city_size >= {{ var('circle_min_size') }} then city_below * 1.0 / city_size
            when province_size >= {{ var('circle_min_size') }} then province_below * 1.0 / province_size
            else national_below * 1.0 / national_size
        end as circle_percentile,
        case
            when city_size >= {{ var('circle_min_size') }} then city_rfm_score
            when province_size >= {{ var('circle_min_size') }} then province_rfm_score
            else national_rfm_score
        end as circle_rfm_score
    from standings

),

tier_matches as (

    select
        graded.person_id,
        max(tiers.tier_rank) as tier_rank
    from graded
    inner join tiers
        on
            graded.frequency_orders >= tiers.min_frequency_orders
            and graded.circle_percentile >= tiers.min_circle_percentile
    group by graded.person_id

),

final as (

    select
        graded.*,
        tiers.tier as community_tier
    from graded
    inner join tier_matches
        on graded.person_id = tier_matches.person_id
    inner join tiers
        on tier_matches.tier_rank = tiers.tier_rank

)

select * from final
