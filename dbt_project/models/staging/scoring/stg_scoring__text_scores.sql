{#- One score per (source, record_id, text_hash): the most recent
    classifier version's (a new version's scores replace the old ones as soon
    as they exist).

    Incremental: a build re-ranks every score of the records scored since the
    last build's snapshot of scoring.text_scores (var
    incremental.loaded_after.text_scores), and replaces their rows. Scores
    deleted since (an erasure, a purge) make the build a full refresh
    (crm_pipeline.transform.incremental); without the var (dbt by hand) every
    record is re-ranked. -#}
{{
    config(
        materialized='incremental',
        unique_key=['feedback_source', 'record_id'],
        incremental_strategy='delete+insert',
        on_schema_change='fail',
    )
}}

with

source as (

    select * from {{ source('scoring', 'text_scores') }}
    {%- if is_incremental() and incremental_window() is mapping %}
        {%- set after = incremental_window()['loaded_after'].get('text_scores', '1900-01-01 00:00:00') %}
        where source || ':' || record_id in (
            select scored.source || ':' || scored.record_id
            from {{ source('scoring', 'text_scores') }} as scored
            where scored.scored_at > cast('{{ after }}' as timestamp)
        )
    {%- endif %}

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
