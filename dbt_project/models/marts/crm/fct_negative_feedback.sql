{#- One row per negative piece of feedback, as of as_of_date, from every
    channel: forum posts, chat messages, reviews (rated
    var('negative_rating_max') or lower, or negative text) and refund
    reasons. Severity from the severity_rules seed (the highest matching
    rule; low when none), with the rules that fired. Keyword rules are
    matched in the text and the classifier's cues by
    int_feedback__keyword_hits (whole words, whole terms). No text, name
    or contact detail: the cues that fired explain the verdict. is_safety:
    the seed's rule named safety fired (crm_pipeline.text.safety is the same
    rule in Python, for make eval-text). -#}
with

touchpoints as (

    select * from {{ ref('int_feedback__touchpoints') }}

),

tiered as (

    select * from {{ ref('int_customers__tiered') }}

),

rules as (

    select * from {{ ref('severity_rules') }}

),

persons as (

    select * from {{ ref('int_identity__persons') }}

),

negatives as (

    select
        touchpoints.*,
        tiered.community_tier
    from touchpoints
    left join tiered
        on touchpoints.person_id = tiered.person_id
    where touchpoints.is_negative

),

repeats as (

    {#- Negatives in the window ending at this one, on the same product
        (repeat_product_days) and by the same person (risk_streak_days):
        those at or before it and less than N days earlier. Range windows,
        not a self-join (which paired every negative with every other on its
        product). Timestamps are whole microseconds, so "less than N days
        earlier" is "at most N days less 1 microsecond" earlier. -#}
    {%- set product_us = (var("repeat_product_days") | int) * 86400000000 - 1 %}
    {%- set person_us = (var("risk_streak_days") | int) * 86400000000 - 1 %}
    select
        feedback_source,
        source_record_id,
        case when product_id is not null and occurred_at is not null then count(*) over (
            partition by product_id
            order by occurred_at
            range between interval '{{ product_us }} microseconds' preceding and current row
        ) end as product_negatives,
        case when person_id is not null and occurred_at is not null then count(*) over (
            partition by person_id
            order by occurred_at
            range between interval '{{ person_us }} microseconds' preceding and current row
        ) end as person_negatives
    from negatives

),

keyword_hits as (

    {#- The keyword rules matched in each negative's text and cues
        (int_feedback__keyword_hits keeps them from day to day). -#}
    select
        feedback_source,
        source_record_id,
        rule,
        severity
    from {{ ref('int_feedback__keyword_hits') }}
    where rule is not null

),

matched as (

    select
        negatives.feedback_source,
        negatives.source_record_id,
        rules.rule,
        rules.severity
    from negatives
    left join repeats
        on
            negatives.feedback_source = repeats.feedback_source
            and negatives.source_record_id = repeats.source_record_id
    inner join rules
        on
            (rules.kind = 'tier' and negatives.community_tier = rules.value)
            or (rules.kind = 'source' and negatives.feedback_source = rules.value)
            or (
                rules.kind = 'person_repeat'
                and repeats.person_negatives >= cast(rules.value as integer)
            )
            or (
                rules.kind = 'product_repeat'
                and repeats.product_negatives >= cast(rules.value as integer)
            )
            or (
                rules.kind = 'sentiment_at_most'
                and negatives.sentiment_score <= cast(rules.value as double precision)
            )
            or (rules.kind = 'rating_at_most' and negatives.rating <= cast(rules.value as integer))

    union all

    select * from keyword_hits

),

matched_rules as (

    select distinct
        feedback_source,
        source_record_id,
        rule,
        case severity when 'critical' then 4 when 'high' then 3 when 'medium' then 2 else 1 end as severity_rank
    from matched

),

severities as (

    select
        feedback_source,
        source_record_id,
        max(severity_rank) as severity_rank,
        string_agg(rule, ', ' order by rule) as severity_rules,
        bool_or(rule = 'safety') as is_safety
    from matched_rules
    group by feedback_source, source_record_id

),

final as (

    select
        -- ids
        negatives.feedback_source || ':' || negatives.source_record_id as feedback_id,
        negatives.feedback_source as source,
        negatives.source_record_id,
        persons.customer_key,
        negatives.product_id,
        -- attributes
        negatives.category,
        case coalesce(severities.severity_rank, 1)
            when 4 then 'critical' when 3 then 'high' when 2 then 'medium' else 'low'
        end as severity,
        severities.severity_rules,
        coalesce(severities.is_safety, false) as is_safety,
        negatives.language,
        negatives.rating,
        negatives.text_is_negative,
        negatives.cues,
        negatives.classifier_version,
        negatives.product_link,
        coalesce(negatives.community_tier, 'prospect') as community_tier,
        -- measures
        negatives.sentiment_score,
        -- timestamps
        negatives.occurred_at,
        negatives.edited_at,
        coalesce(negatives.edited_at, negatives.occurred_at) as noticed_at,
        -- dates
        {{ local_date('negatives.occurred_at') }} as occurred_date,
        {{ local_date('coalesce(negatives.edited_at, negatives.occurred_at)') }} as noticed_date,
        {{ as_of_date() }} as as_of_date

    from negatives
    left join persons
        on negatives.person_id = persons.person_id
    left join severities
        on
            negatives.feedback_source = severities.feedback_source
            and negatives.source_record_id = severities.source_record_id

)

select * from final
