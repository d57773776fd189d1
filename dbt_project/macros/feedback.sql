-- sqlfluff:exclude_rules:LT02
{#- Linted but for indentation (LT02): these macros emit SQL fragments (where-clause pieces)
    inside Jinja branches, which the layout rules cannot place. -#}
{#- The product catalogue a text's product mention is matched against: one
    name per product (the least), at least two characters long. -#}
{% macro feedback_catalogue(order_items) -%}
    select
        product_id,
        min(product_name) as product_name
    from {{ order_items }}
    where product_name is not null and length(product_name) >= 2
    group by product_id
{%- endmacro %}

{#- Incremental int_feedback__touchpoints: the record (`record_id`, an
    expression) of `feedback_source` is not in the table yet (always true on
    a full refresh). -#}
{% macro feedback_not_built(feedback_source, record_id) -%}
    {%- if is_incremental() -%}
        not exists (
            select 1 from {{ this }} as built
            where built.feedback_source = '{{ feedback_source }}' and built.source_record_id = {{ record_id }}
        )
    {%- else -%}
        true
    {%- endif -%}
{%- endmacro %}

{#- Incremental int_feedback__touchpoints, before the build inserts what is
    missing: delete every row that may be stale, one rule (`rule`) per
    pre-hook statement:
    - 'forum', 'chat', 'review', 'refund': its record, or the order a review
      or refund names (its product, its customer), was recomputed by staging
      in this build (built_now());
    - 'scores': a score of its record was written after the last build's
      snapshot of scoring.text_scores (crm_pipeline.transform.incremental
      passes it in var incremental.loaded_after.text_scores);
    - 'persons': its account now resolves to another person (identity merged
      or split);
    - 'catalogue': the catalogue changed: every row whose product came from
      the text.
    One statement per rule and per source, each a plain `in (subquery)`, no
    OR around one:
    PostgreSQL runs an `in (subquery)` under an OR as a subplan, which is
    re-scanned for every row once its result outgrows work_mem (431 s at M
    for one DELETE of all the rules together); alone, it is a semi-join.
    The staff list is a seed: changing it makes the next build a full refresh
    (crm_pipeline.transform.incremental.code_hash). -#}
{% macro feedback_delete_stale(rule) -%}
{%- set w = incremental_window() -%}
{%- if is_incremental() and w is not mapping -%}
    {#- no window (dbt by hand): every row may be stale -#}
    {%- if rule == 'forum' %}delete from {{ this }}{% else %}select 1{% endif -%}
{%- elif is_incremental() -%}
{%- set now = built_now() -%}
{%- set order_items = ref('stg_shop__order_items') -%}
{%- if rule == 'forum' -%}
delete from {{ this }}
where feedback_source = 'forum' and source_record_id in (
    select post_id from {{ ref('stg_forum__posts') }} where _built_at = {{ now }}
)
{%- elif rule == 'chat' -%}
delete from {{ this }}
where feedback_source = 'chat' and source_record_id in (
    select msg_id from {{ ref('stg_chat__messages') }} where _built_at = {{ now }}
)
{%- elif rule == 'review' -%}
delete from {{ this }}
where feedback_source = 'review' and source_record_id in (
    select review_id from {{ ref('stg_shop__reviews') }} where _built_at = {{ now }}
    union all
    select review_id from {{ ref('stg_shop__reviews') }}
    where order_id in (select order_id from {{ order_items }} where _built_at = {{ now }})
)
{%- elif rule == 'refund' -%}
delete from {{ this }}
where feedback_source = 'refund' and source_record_id in (
    select refund_id from {{ ref('stg_shop__refunds') }} where _built_at = {{ now }}
    union all
    select refund_id from {{ ref('stg_shop__refunds') }}
    where order_id in (
        select order_id from {{ order_items }} where _built_at = {{ now }}
        union all
        select order_id from {{ ref('stg_shop__orders') }} where _built_at = {{ now }}
    )
)
{%- elif rule == 'scores' -%}
{%- set scored_after = w['loaded_after'].get('text_scores', '1900-01-01 00:00:00') -%}
{#- the raw score rows written since the snapshot: a superset of the staged winners that changed -#}
delete from {{ this }}
where feedback_source || ':' || source_record_id in (
    select source || ':' || record_id from {{ source('scoring', 'text_scores') }}
    where scored_at > cast('{{ scored_after }}' as timestamp)
)
{%- elif rule == 'persons' -%}
delete from {{ this }}
where account_node in (
    select built.account_node
    from (select distinct account_node, person_id from {{ this }}) as built
    left join {{ ref('int_identity__resolved') }} as resolved
        on built.account_node = resolved.account_node
    where built.person_id is distinct from resolved.person_id
)
{%- elif rule == 'catalogue' and feedback_catalogue_changed() -%}
delete from {{ this }}
where product_link is distinct from 'order'
{%- else -%}
    select 1
{%- endif -%}
{%- else -%}
    select 1
{%- endif -%}
{%- endmacro %}

{#- Incremental int_feedback__keyword_hits: the touchpoint (`alias`) has no
    rows in the table yet (always true on a full refresh). -#}
{% macro keyword_hits_not_built(alias) -%}
    {%- if is_incremental() -%}
        not exists (
            select 1 from {{ this }} as built
            where built.feedback_source = {{ alias }}.feedback_source and built.source_record_id = {{ alias }}.source_record_id
        )
    {%- else -%}
        true
    {%- endif -%}
{%- endmacro %}

{#- Incremental int_feedback__keyword_hits, before the build matches what is
    missing: delete the rows of every touchpoint that is no longer negative
    (or no longer there), or whose text or cues changed (another
    feedback_hash). A plain not exists: an anti-join on both engines. -#}
{% macro keyword_hits_delete_stale() -%}
{%- if is_incremental() -%}
delete from {{ this }} as built
where not exists (
    select 1 from {{ ref('int_feedback__touchpoints') }} as touchpoints
    where
        touchpoints.is_negative
        and touchpoints.feedback_source = built.feedback_source
        and touchpoints.source_record_id = built.source_record_id
        and touchpoints.feedback_hash = built.feedback_hash
)
{%- else -%}
    select 1
{%- endif -%}
{%- endmacro %}

{#- Whether the catalogue differs from the one the last build matched texts
    against (int_feedback__catalogue, built after the touchpoints). -#}
{% macro feedback_catalogue_changed() -%}
    {%- if not execute -%}
        {{ return(true) }}
    {%- endif -%}
    {%- set seen = adapter.get_relation(
        database=this.database, schema=this.schema, identifier='int_feedback__catalogue'
    ) -%}
    {%- if seen is none -%}
        {{ return(true) }}
    {%- endif -%}
    {%- set query -%}
        select count(*)
        from ({{ feedback_catalogue(ref('stg_shop__order_items')) }}) as now_
        full outer join {{ seen }} as seen
            on now_.product_id = seen.product_id
        where now_.product_name is distinct from seen.product_name
    {%- endset -%}
    {{ return(run_query(query).columns[0].values()[0] > 0) }}
{%- endmacro %}

{#- A refund reason as the neutral_refund_reasons seed is matched: lower
    case, without spaces or punctuation (ASCII or full-width). -#}
{% macro reason_key(text_expr) -%}
    regexp_replace(lower({{ text_expr }}), '[[:space:][:punct:]。，、！？；：…～·“”‘’（）【】]+', '', 'g')
{%- endmacro %}

{#- How many times `needle` occurs in `haystack` (both expressions), without overlaps. -#}
{% macro occurrences(haystack, needle) -%}
    ((length({{ haystack }}) - length(replace({{ haystack }}, {{ needle }}, ''))) / length({{ needle }}))
{%- endmacro %}
