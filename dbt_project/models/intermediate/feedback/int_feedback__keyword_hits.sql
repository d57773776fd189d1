{#- The severity_rules keyword rules that fire on each negative touchpoint:
    one row per negative and rule that fired, or one row with a null rule
    when none did. A keyword is matched in the text and the classifier's
    cues: an English one as whole words ("fire" is not in "firefox"), a
    Chinese one as a whole term (it occurs more often than inside the longer
    words of seed severity_term_exceptions: 着火 in 挨着火车站 is no fire).

    Which rules fire depends on the text and the cues alone (the touchpoint's
    feedback_hash), so yesterday's answers are kept. Incremental: a build
    first deletes the rows of every touchpoint that is no longer negative or
    whose text or cues changed (macros/feedback.sql: keyword_hits_delete_stale),
    then matches only the negatives the table does not hold. The seeds are
    code: changing them makes the next build a full refresh. -#}
{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='fail',
        pre_hook="{{ keyword_hits_delete_stale() }}",
    )
}}

with

negatives as (

    select
        touchpoints.feedback_source,
        touchpoints.source_record_id,
        touchpoints.feedback_hash,
        touchpoints.feedback_text,
        touchpoints.cues
    from {{ ref('int_feedback__touchpoints') }} as touchpoints
    where touchpoints.is_negative and {{ keyword_hits_not_built('touchpoints') }}

),

rules as (

    select * from {{ ref('severity_rules') }}

),

exceptions as (

    select * from {{ ref('severity_term_exceptions') }}

),

searched as materialized (

    {#- What keywords are looked for in: the lower-cased text and cues, and
        the same as ASCII words between single spaces (for whole-word matches).
        Materialised: inlined, PostgreSQL computed both (a lower() and a
        regexp_replace of the whole text) again for every keyword rule a
        negative was tested against. -#}
    select
        feedback_source,
        source_record_id,
        lower(coalesce(feedback_text, '')) || ' ' || lower(coalesce(cues, '')) as haystack,
        ' ' || regexp_replace(
            lower(coalesce(feedback_text, '') || ' ' || coalesce(cues, '')), '[^a-z0-9]+', ' ', 'g'
        ) || ' ' as words
    from negatives

),

keywords as materialized (

    {#- Each keyword rule lower-cased once, not for every negative it is
        tested against. -#}
    select
        rule,
        severity,
        lower(value) as keyword,
        lower(value) = regexp_replace(lower(value), '[^a-z0-9 ]', '', 'g') as is_whole_word
    from rules
    where kind = 'keyword'

),

keyword_candidates as (

    {#- A keyword rule can fire only where its keyword occurs at all (a whole
        word is in the words, any other match is in the haystack): pairs
        found by strpos first, so the exact test below, with its exceptions,
        reads a few pairs, not every negative with every rule. -#}
    select
        searched.feedback_source,
        searched.source_record_id,
        searched.haystack,
        searched.words,
        keywords.rule,
        keywords.severity,
        keywords.keyword,
        keywords.is_whole_word
    from searched
    inner join keywords
        on strpos(searched.haystack, keywords.keyword) > 0 or strpos(searched.words, keywords.keyword) > 0

),

fired as (

    select distinct
        feedback_source,
        source_record_id,
        rule,
        severity
    from keyword_candidates
    where
        case
            when is_whole_word
                then strpos(words, ' ' || keyword || ' ') > 0
            else
                {{ occurrences('haystack', 'keyword') }} > coalesce((
                    select sum({{ occurrences('keyword_candidates.haystack', 'lower(exceptions.within)') }})
                    from exceptions
                    where lower(exceptions.term) = keyword_candidates.keyword
                ), 0)
        end

),

final as (

    select
        -- ids
        negatives.feedback_source,
        negatives.source_record_id,
        negatives.feedback_hash,
        -- attributes
        fired.rule,
        fired.severity

    from negatives
    left join fired
        on
            negatives.feedback_source = fired.feedback_source
            and negatives.source_record_id = fired.source_record_id

)

select * from final
