{#- Does joining the community change buying? Per joining month, and pooled over all of them: the
    customers who joined the forum or a chat group against the customers who had not, before and
    after, as a difference in differences on the ratio scale (method and its limits:
    docs/architecture.md, "Community lift").

    Per cohort: the non-joiners' growth G = their orders after / their orders before (spend alike).
    What a joiner would have bought after without joining is their orders before times G; their
    effect u = orders after - G x orders before; the lift is the mean u over the joiners. Growth as a
    ratio, not a difference, because people buy at very different rates and the season moves
    everyone's rate in proportion: heavy buyers join more, and a difference would credit the season
    to the community (nor are people matched on their buying before: matching on the window that is
    differenced favours controls whose "before" was high by chance, who then fall back).
    Variance (delta method): var(u) / joiners, plus (joiners' mean before / non-joiners' mean before)^2
    x var(non-joiners' after - G x before) / non-joiners. Pooled: every joiner's u with their own
    cohort's G, the second term summed over cohorts weighted by their share of joiners squared. 95%
    interval: lift +- 1.96 standard errors. Rates are per person per 30 days, to six decimals (sums
    of doubles differ in their last bits with the order the rows come in, and a rebuild of the same
    day must give the same mart). -#}

{%- set window_days = var('community_lift_window_days') -%}
{%- set per_30_days = '30.0 / ' ~ window_days -%}

with

panel as (

    select * from {{ ref('int_customers__community_windows') }}

),

growth as (

    {#- The non-joiners of each cohort: how their buying changed (a cohort needs two of them, and
        orders before, to have a growth). -#}
    select
        cohort_month,
        count(*) as controls,
        avg(cast(pre_orders as double precision)) as pre_orders,
        avg(cast(post_orders as double precision)) as post_orders,
        avg(pre_spend) as pre_spend,
        avg(post_spend) as post_spend,
        cast(sum(post_orders) as double precision) / sum(pre_orders) as orders_growth,
        case when sum(pre_spend) > 0 then sum(post_spend) / sum(pre_spend) end as spend_growth
    from panel
    where not is_treated
    group by cohort_month
    having count(*) >= 2 and sum(pre_orders) > 0

),

control_spread as (

    select
        panel.cohort_month,
        var_samp(panel.post_orders - growth.orders_growth * panel.pre_orders) as orders_var,
        var_samp(panel.post_spend - growth.spend_growth * panel.pre_spend) as spend_var
    from panel
    inner join growth
        on panel.cohort_month = growth.cohort_month
    where not panel.is_treated
    group by panel.cohort_month

),

effects as (

    select
        panel.cohort_month,
        panel.person_id,
        growth.cohort_month is not null as has_growth,
        panel.pre_orders,
        panel.post_orders,
        panel.pre_spend,
        panel.post_spend,
        panel.post_orders - growth.orders_growth * panel.pre_orders as orders_effect,
        panel.post_spend - growth.spend_growth * panel.pre_spend as spend_effect,
        growth.orders_growth * panel.pre_orders as expected_post_orders,
        growth.spend_growth * panel.pre_spend as expected_post_spend
    from panel
    left join growth
        on panel.cohort_month = growth.cohort_month
    where panel.is_treated

),

report_groups as (

    {#- One row per cohort and one pooled row (cohort_month null): the groups the lift is reported for. -#}
    select distinct
        cohort_month,
        cast(cohort_month as varchar) as cohort_key
    from panel
    where is_treated

    union all

    select
        cast(null as date) as cohort_month,
        'all' as cohort_key

),

joiner_stats as (

    select
        report_groups.cohort_key,
        count(*) as treated_people,
        count(case when effects.has_growth then 1 end) as compared_people,
        avg(case when effects.has_growth then cast(effects.pre_orders as double precision) end) as pre_orders,
        avg(case when effects.has_growth then cast(effects.post_orders as double precision) end) as post_orders,
        avg(effects.expected_post_orders) as expected_post_orders,
        avg(effects.orders_effect) as orders_lift,
        var_samp(effects.orders_effect) as orders_effect_var,
        avg(effects.expected_post_spend) as expected_post_spend,
        avg(effects.spend_effect) as spend_lift,
        var_samp(effects.spend_effect) as spend_effect_var
    from report_groups
    inner join effects
        on report_groups.cohort_month = effects.cohort_month or report_groups.cohort_month is null
    group by report_groups.cohort_key

),

cohort_terms as (

    {#- Each cohort's joiners, and its non-joiners' share of the variance. -#}
    select
        growth.cohort_month,
        growth.controls,
        growth.pre_orders as control_pre_orders,
        growth.post_orders as control_post_orders,
        count(*) as joiners,
        power(avg(cast(effects.pre_orders as double precision)) / growth.pre_orders, 2)
        * control_spread.orders_var / growth.controls as orders_term,
        case
            when growth.pre_spend > 0
                then
                    power(avg(effects.pre_spend) / growth.pre_spend, 2) * control_spread.spend_var / growth.controls
        end as spend_term
    from growth
    inner join control_spread
        on growth.cohort_month = control_spread.cohort_month
    inner join effects
        on growth.cohort_month = effects.cohort_month
    group by
        growth.cohort_month, growth.controls, growth.pre_orders, growth.post_orders,
        control_spread.orders_var, control_spread.spend_var, growth.pre_spend

),

control_stats as (

    select
        report_groups.cohort_key,
        sum(cohort_terms.controls) as control_people,
        sum(cohort_terms.joiners * cohort_terms.control_pre_orders) / sum(cohort_terms.joiners)
            as control_pre_orders,
        sum(cohort_terms.joiners * cohort_terms.control_post_orders) / sum(cohort_terms.joiners)
            as control_post_orders,
        sum(cast(cohort_terms.joiners as double precision) * cohort_terms.joiners * cohort_terms.orders_term)
            as orders_term,
        sum(cast(cohort_terms.joiners as double precision) * cohort_terms.joiners * cohort_terms.spend_term)
            as spend_term
    from report_groups
    inner join cohort_terms
        on report_groups.cohort_month = cohort_terms.cohort_month or report_groups.cohort_month is null
    group by report_groups.cohort_key

),

estimated as (

    select
        report_groups.cohort_month,
        report_groups.cohort_key,
        joiner_stats.treated_people,
        joiner_stats.compared_people,
        coalesce(control_stats.control_people, 0) as control_people,
        joiner_stats.pre_orders,
        joiner_stats.post_orders,
        joiner_stats.expected_post_orders,
        control_stats.control_pre_orders,
        control_stats.control_post_orders,
        joiner_stats.orders_lift,
        joiner_stats.spend_lift,
        joiner_stats.post_orders / nullif(joiner_stats.expected_post_orders, 0) - 1 as orders_lift_relative,
        case
            when joiner_stats.compared_people >= 2
                then
                    sqrt(
                        joiner_stats.orders_effect_var / joiner_stats.compared_people
                        + control_stats.orders_term / power(joiner_stats.compared_people, 2)
                    )
        end as orders_lift_se,
        case
            when joiner_stats.compared_people >= 2
                then
                    sqrt(
                        joiner_stats.spend_effect_var / joiner_stats.compared_people
                        + control_stats.spend_term / power(joiner_stats.compared_people, 2)
                    )
        end as spend_lift_se
    from report_groups
    inner join joiner_stats
        on report_groups.cohort_key = joiner_stats.cohort_key
    left join control_stats
        on report_groups.cohort_key = control_stats.cohort_key

),

final as (

    select
        -- ids
        cohort_key,
        -- dates
        {{ as_of_date() }} as as_of_date,
        cohort_month,
        -- attributes
        {{ window_days }} as window_days,
        case
            when orders_lift_se is null then 'too few to tell'
            when orders_lift - 1.96 * orders_lift_se > 0 then 'buy more'
            when orders_lift + 1.96 * orders_lift_se < 0 then 'buy less'
            else 'no clear difference'
        end as purchase_verdict,
        -- people
        treated_people,
        treated_people - compared_people as uncompared_people,
        cast(control_people as bigint) as control_people,
        -- purchase rates: orders per person per 30 days, before and after, joiners and non-joiners
        cast(pre_orders * {{ per_30_days }} as decimal(18, 6)) as joined_rate_before,
        cast(post_orders * {{ per_30_days }} as decimal(18, 6)) as joined_rate_after,
        cast(expected_post_orders * {{ per_30_days }} as decimal(18, 6)) as joined_rate_expected,
        cast(control_pre_orders * {{ per_30_days }} as decimal(18, 6)) as control_rate_before,
        cast(control_post_orders * {{ per_30_days }} as decimal(18, 6)) as control_rate_after,
        -- lift: what joiners bought after, less what they would have bought, per person per 30 days
        cast(orders_lift * {{ per_30_days }} as decimal(18, 6)) as purchase_rate_lift,
        cast((orders_lift - 1.96 * orders_lift_se) * {{ per_30_days }} as decimal(18, 6)) as purchase_rate_lift_low,
        cast((orders_lift + 1.96 * orders_lift_se) * {{ per_30_days }} as decimal(18, 6)) as purchase_rate_lift_high,
        cast(orders_lift_relative as decimal(18, 6)) as purchase_rate_lift_relative,
        cast(spend_lift * {{ per_30_days }} as decimal(18, 6)) as spend_lift,
        cast((spend_lift - 1.96 * spend_lift_se) * {{ per_30_days }} as decimal(18, 6)) as spend_lift_low,
        cast((spend_lift + 1.96 * spend_lift_se) * {{ per_30_days }} as decimal(18, 6)) as spend_lift_high

    from estimated

)

select * from final
