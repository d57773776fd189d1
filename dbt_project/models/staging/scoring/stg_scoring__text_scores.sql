{#- One score per (source, record_id, text_hash): the most recent
    classifier version's (a new version's scores replace the old ones as soon
    as they exist). -#}
with

source as (

    select * from {{ source('scoring', 'text_scores') }}

),

ranked as (

    select
        *,
        row_number() over (
            partition by source, record_id, text_hash
            order by scored_at desc, classifier_version desc
        ) as score_rank
    from source

),

final as (

    select
        -- ids
        source as feedback_source,
        record_id,
        text_hash,
        -- attributes
        classifier_version,
        language,
        is_negative as text_is_negative,
        category as text_category,
        cues,
        -- measures
        sentiment_score,
        -- timestamps
        scored_at

    from ranked
    where score_rank = 1

)

select * from final
