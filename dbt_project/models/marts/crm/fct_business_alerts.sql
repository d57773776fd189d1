{#- The business alerts that hold as of as_of_date, one row each, from the
    rules in the business_alert_rules seed (enabled ones only):
    - negative_spike: a product's or a category's negative feedback noticed
      in the last window_days against its own daily rate over the
      baseline_days before the window: expected = rate * window_days,
      z = (observed - expected) / sqrt(expected), expected taken as at least
      one negative per baseline period (a Poisson count's standard error);
      an alert when observed >= min_count and z >= z_threshold.
    - valuable_at_risk: a customer of min_tier or above who is at risk
      (fct_customer_risk), with the value at stake.
    - fan_gone_quiet: a core fan by standing (points rank within the core-fan
      cut-off, points, member or partner) or an opinion leader with no
      activity of their own for quiet_days or more.
    - critical_complaint: a critical (safety) negative noticed in the last
      window_days.
    alert_key names the condition, not the day, so the pipeline keeps one
    alert open while the condition holds and resolves it when the row is
    gone (crm_pipeline.alerts.business). People appear as customer_key only. -#}
with

rules as (

    select * from {{ ref('business_alert_rules') }}
    where enabled

),

tiers as (

    select * from {{ ref('community_tiers') }}

),

feedback as (

    select * from {{ ref('fct_negative_feedback') }}

),

risk as (

    select * from {{ ref('fct_customer_risk') }}

),

engagement as (

    select * from {{ ref('fct_community_engagement') }}

),

spike_rule as (

    select * from rules
    where rule = 'negative_spike'

),

subjects as (

    select
        'product' as subject_type,
        product_id as subject_id,
        noticed_date
    from feedback
    where product_id is not null

    union all

    select
        'category' as subject_type,
        category as subject_id,
        noticed_date
    from feedback
    where category is not null

),

spike_counts as (

    select
        subjects.subject_type,
        subjects.subject_id,
        spike_rule.severity,
        spike_rule.window_days,
        spike_rule.baseline_days,
        spike_rule.min_count,
        spike_rule.z_threshold,
        count(
            case when subjects.noticed_date > {{ as_of_date() }} - spike_rule.window_days then 1 end
        ) as observed,
        count(
            case when subjects.noticed_date <= {{ as_of_date() }} - spike_rule.window_days then 1 end
        ) as baseline_count
    from subjects
    cross join spike_rule
    where
        subjects.noticed_date <= {{ as_of_date() }}
        and subjects.noticed_date > {{ as_of_date() }} - spike_rule.window_days - spike_rule.baseline_days
    group by
        subjects.subject_type,
        subjects.subject_id,
        spike_rule.severity,
        spike_rule.window_days,
        spike_rule.baseline_days,
        spike_rule.min_count,
        spike_rule.z_threshold

),

spike_scores as (

    select
        *,
        baseline_count * 1.0 * window_days / baseline_days as expected,
        (observed - baseline_count * 1.0 * window_days / baseline_days)
        / sqrt(greatest(baseline_count, 1) * 1.0 * window_days / baseline_days) as z_score
    from spike_counts

),

spikes as (

    select
        'business:negative_spike:' || subject_type || ':' || subject_id as alert_key,
        'negative_spike' as rule,
        severity,
        subject_type,
        subject_id,
        cast(null as varchar) as customer_key,
        observed,
        round(expected, 2) as expected,
        round(z_score, 2) as z_score,
        cast(null as decimal(18, 2)) as value_at_stake,
        {{ as_of_date() }} - window_days + 1 as since_date,
        'marts.fct_negative_feedback where ' || subject_type
        || (case when subject_type = 'product' then '_id' else '' end)
        || ' = ''' || subject_id || ''' and noticed_date >= '
        || cast({{ as_of_date() }} - window_days + 1 as varchar) as look_at
    from spike_scores
    where observed >= min_count and z_score >= z_threshold

),

at_risk as (

    select
        'business:valuable_at_risk:' || risk.customer_key as alert_key,
        'valuable_at_risk' as rule,
        rules.severity,
        'customer' as subject_type,
        risk.community_tier as subject_id,
        risk.customer_key,
        risk.negative_streak as observed,
        cast(null as decimal(18, 2)) as expected,
        cast(null as decimal(18, 2)) as z_score,
        risk.value_at_stake,
        cast(risk.last_negative_at as date) as since_date,
        'marts.fct_customer_risk and marts.fct_negative_feedback where customer_key = '''
        || risk.customer_key || '''' as look_at
    from risk
    inner join rules
        on rules.rule = 'valuable_at_risk'
    inner join tiers as min_tier
        on rules.min_tier = min_tier.tier
    inner join tiers as own_tier
        on risk.community_tier = own_tier.tier
    where risk.is_at_risk and own_tier.tier_rank >= min_tier.tier_rank

),

quiet as (

    select
        'business:fan_gone_quiet:' || engagement.customer_key as alert_key,
        'fan_gone_quiet' as rule,
        rules.severity,
        case
            when
                engagement.is_opinion_leader
                and engagement.points_rank <= engagement.core_fan_rank_cutoff
                and engagement.points_total > 0
                and engagement.community_tier in ('member', 'partner')
                then 'core_fan_and_opinion_leader'
            when engagement.is_opinion_leader then 'opinion_leader'
            else 'core_fan'
        end as subject_type,
        engagement.community_tier as subject_id,
        engagement.customer_key,
        engagement.days_since_active as observed,
        cast(null as decimal(18, 2)) as expected,
        cast(null as decimal(18, 2)) as z_score,
        cast(null as decimal(18, 2)) as value_at_stake,
        engagement.last_active_date as since_date,
        'marts.fct_community_engagement where customer_key = '''
        || engagement.customer_key || '''' as look_at
    from engagement
    inner join rules
        on rules.rule = 'fan_gone_quiet'
    where
        engagement.days_since_active >= rules.quiet_days
        and (
            engagement.is_opinion_leader
            or (
                engagement.points_rank <= engagement.core_fan_rank_cutoff
                and engagement.points_total > 0
                and engagement.community_tier in ('member', 'partner')
            )
        )

),

critical as (

    select
        'business:critical_complaint:' || feedback.feedback_id as alert_key,
        'critical_complaint' as rule,
        rules.severity,
        feedback.source as subject_type,
        coalesce(feedback.product_id, feedback.category) as subject_id,
        feedback.customer_key,
        1 as observed,
        cast(null as decimal(18, 2)) as expected,
        cast(null as decimal(18, 2)) as z_score,
        cast(null as decimal(18, 2)) as value_at_stake,
        feedback.noticed_date as since_date,
        'marts.fct_negative_feedback where feedback_id = ''' || feedback.feedback_id || '''' as look_at
    from feedback
    inner join rules
        on rules.rule = 'critical_complaint'
    where
        feedback.severity = 'critical'
        and feedback.noticed_date <= {{ as_of_date() }}
        and feedback.noticed_date > {{ as_of_date() }} - rules.window_days

),

unioned as (

    select * from spikes
    union all
    select * from at_risk
    union all
    select * from quiet
    union all
    select * from critical

),

final as (

    select
        -- ids
        alert_key,
        customer_key,
        -- attributes
        rule,
        severity,
        subject_type,
        subject_id,
        look_at,
        -- measures
        cast(observed as integer) as observed,
        cast(expected as decimal(18, 2)) as expected,
        cast(z_score as decimal(18, 2)) as z_score,
        cast(value_at_stake as decimal(18, 2)) as value_at_stake,
        -- dates
        since_date,
        {{ as_of_date() }} as as_of_date
    from unioned

)

select * from final
