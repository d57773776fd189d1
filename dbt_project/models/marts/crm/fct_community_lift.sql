{#- Does joining the community change buying? Per joining month, and pooled over all of them: the
    customers who joined the forum or a chat group against customers who had not, matched exactly on
    their buying before the month (stratum), compared before and after (difference in differences).
    Method and its limits: docs/architecture.md, "Community lift".

    Per stratum s of a cohort: each side's mean change (after minus before) in orders and net spend.
    A treated person's effect is their change minus their stratum's control mean change; the lift is
    the mean effect over the matched treated (strata without controls are left out, and counted).
    Its variance: the treated effects' sample variance over their number, plus, per stratum, the
    squared share of the treated in it times the control changes' sample variance over the number of
    controls (strata need two controls). 95% interval: lift +- 1.96 standard errors. Rates are per
    person per 30 days, to six decimals: sums of doubles differ in their last bits with the order the
    rows come in, and a rebuild of the same day must give the same mart. -#}

{%- set window_days = var('community_lift_window_days') -%}
{%- set per_30_days = '30.0 / ' ~ window_days -%}

with

panel as (

    select * from {{ ref('int_customers__community_windows') }}

),

controls as (

    select
        cohort_month,
        stratum,
        count(*) as controls,
        avg(cast(pre_orders as double precision)) as pre_orders,
        avg(cast(post_orders as double precision)) as post_orders,
        avg(pre_spend) as pre_spend,
        avg(post_spend) as post_spend,
        avg(cast(post_orders - pre_orders as double precision)) as orders_change,
        avg(post_spend - pre_spend) as spend_change,
        var_samp(cast(post_orders - pre_orders as double precision)) as orders_change_var,
        var_samp(post_spend - pre_spend) as spend_change_var
    from panel
    where not is_treated
    group by cohort_month, stratum
    having count(*) >= 2

),

treated as (

    select
        panel.cohort_month,
        panel.stratum,
        panel.person_id,
        controls.stratum is not null as is_matched,
        panel.pre_orders,
        panel.post_orders,
        panel.pre_spend,
        panel.post_spend,
        controls.pre_orders as control_pre_orders,
        controls.post_orders as control_post_orders,
        controls.pre_spend as control_pre_spend,
        controls.post_spend as control_post_spend,
        (panel.post_orders - panel.pre_orders) - controls.orders_change as orders_effect,
        (panel.post_spend - panel.pre_spend) - controls.spend_change as spend_effect
    from panel
    left join controls
        on
            panel.cohort_month = controls.cohort_month
            and panel.stratum = controls.stratum
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

treated_stats as (

    select
        report_groups.cohort_key,
        count(*) as treated_people,
        count(case when treated.is_matched then 1 end) as matched_treated,
        avg(case when treated.is_matched then cast(treated.pre_orders as double precision) end) as pre_orders,
        avg(case when treated.is_matched then cast(treated.post_orders as double precision) end) as post_orders,
        avg(case when treated.is_matched then treated.pre_spend end) as pre_spend,
        avg(case when treated.is_matched then treated.post_spend end) as post_spend,
        avg(treated.control_pre_orders) as control_pre_orders,
        avg(treated.control_post_orders) as control_post_orders,
        avg(treated.control_pre_spend) as control_pre_spend,
        avg(treated.control_post_spend) as control_post_spend,
        avg(treated.orders_effect) as orders_lift,
        avg(treated.spend_effect) as spend_lift,
        var_samp(treated.orders_effect) as orders_effect_var,
        var_samp(treated.spend_effect) as spend_effect_var
    from report_groups
    inner join treated
        on report_groups.cohort_month = treated.cohort_month or report_groups.cohort_month is null
    group by report_groups.cohort_key

),

strata as (

    {#- The controls' share of the variance: per matched stratum, (treated in it / matched treated)^2
        times the control variance over the number of controls. -#}
    select
        cohort_month,
        stratum,
        count(*) as treated_in_stratum
    from treated
    where is_matched
    group by cohort_month, stratum

),

control_stats as (

    select
        report_groups.cohort_key,
        count(distinct controls.cohort_month || '/' || controls.stratum) as matched_strata,
        sum(controls.controls) as control_people,
        sum(
            cast(strata.treated_in_stratum as double precision) * strata.treated_in_stratum
            * controls.orders_change_var / controls.controls
        ) as orders_control_term,
        sum(
            cast(strata.treated_in_stratum as double precision) * strata.treated_in_stratum
            * controls.spend_change_var / controls.controls
        ) as spend_control_term
    from report_groups
    inner join strata
        on report_groups.cohort_month = strata.cohort_month or report_groups.cohort_month is null
    inner join controls
        on
            strata.cohort_month = controls.cohort_month
            and strata.stratum = controls.stratum
    group by report_groups.cohort_key

),

estimated as (

    select
        report_groups.cohort_month,
        report_groups.cohort_key,
        treated_stats.treated_people,
        treated_stats.matched_treated,
        coalesce(control_stats.matched_strata, 0) as matched_strata,
        coalesce(control_stats.control_people, 0) as control_people,
        treated_stats.pre_orders,
        treated_stats.post_orders,
        treated_stats.pre_spend,
        treated_stats.post_spend,
        treated_stats.control_pre_orders,
        treated_stats.control_post_orders,
        treated_stats.control_pre_spend,
        treated_stats.control_post_spend,
        treated_stats.orders_lift,
        treated_stats.spend_lift,
        case
            when treated_stats.matched_treated >= 2
                then
                    sqrt(
                        treated_stats.orders_effect_var / treated_stats.matched_treated
                        + control_stats.orders_control_term
                        / (cast(treated_stats.matched_treated as double precision) * treated_stats.matched_treated)
                    )
        end as orders_lift_se,
        case
            when treated_stats.matched_treated >= 2
                then
                    sqrt(
                        treated_stats.spend_effect_var / treated_stats.matched_treated
                        + control_stats.spend_control_term
                        / (cast(treated_stats.matched_treated as double precision) * treated_stats.matched_treated)
                    )
        end as spend_lift_se
    from report_groups
    inner join treated_stats
        on report_groups.cohort_key = treated_stats.cohort_key
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
        matched_treated,
        treated_people - matched_treated as unmatched_treated,
        cast(control_people as bigint) as control_people,
        matched_strata,
        -- purchase rates: orders per person per 30 days, before and after, joiners and their controls
        cast(pre_orders * {{ per_30_days }} as decimal(18, 6)) as joined_rate_before,
        cast(post_orders * {{ per_30_days }} as decimal(18, 6)) as joined_rate_after,
        cast(control_pre_orders * {{ per_30_days }} as decimal(18, 6)) as control_rate_before,
        cast(control_post_orders * {{ per_30_days }} as decimal(18, 6)) as control_rate_after,
        -- lift: difference in differences, per person per 30 days
        cast(orders_lift * {{ per_30_days }} as decimal(18, 6)) as purchase_rate_lift,
        cast((orders_lift - 1.96 * orders_lift_se) * {{ per_30_days }} as decimal(18, 6)) as purchase_rate_lift_low,
        cast((orders_lift + 1.96 * orders_lift_se) * {{ per_30_days }} as decimal(18, 6)) as purchase_rate_lift_high,
        cast(spend_lift * {{ per_30_days }} as decimal(18, 6)) as spend_lift,
        cast((spend_lift - 1.96 * spend_lift_se) * {{ per_30_days }} as decimal(18, 6)) as spend_lift_low,
        cast((spend_lift + 1.96 * spend_lift_se) * {{ per_30_days }} as decimal(18, 6)) as spend_lift_high

    from estimated

)

select * from final
