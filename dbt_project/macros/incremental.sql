-- sqlfluff:exclude_rules:LT02
{#- Linted but for indentation (LT02): these macros emit SQL fragments (where-clause pieces)
    inside Jinja branches, which the layout rules cannot place. -#}
{#- Incremental staging: each model is a table kept by delete+insert on its
    key. A run recomputes every key "touched" since the last build from all of
    that key's raw versions (not only the new ones), so a late record with an
    older stamp can never win over the version already chosen.

    A key is touched when a version of it was loaded after the last build
    (run var incremental.loaded_after.<entity>), or when a version loaded earlier
    becomes visible because its stamp falls between the last build's as-of
    end and this one's. The pipeline (crm_pipeline.transform.incremental)
    passes these bounds, and runs --full-refresh instead whenever raw rows were
    deleted, replaced or held since the last build, the as-of day moved
    back, or the staging code changed. Without the var (dbt by hand) every
    key counts as touched: slow, and still right. -#}

{% macro incremental_window() -%}
    {{ return(run_var('incremental')) }}
{%- endmacro %}

{#- The raw rows of `entity` to (re)compute: every version of every touched
    key (`relation` is the model's own source(), so dbt sees the dependency
    in the model). `key` is one column; `stamp` is the expression that must be before
    the as-of end for a version to be known (none when there is none);
    `stamp_is_date` compares it with the as-of date instead. The model passes
    is_incremental(), so a unit test can override it. -#}
{% macro touched_source(relation, entity, key, stamp=none, stamp_is_date=false, incremental=false) -%}
select * from {{ relation }}
where {{ not_held() }}
{%- if incremental %}
    and {{ key }} in ({{ touched_keys(relation, entity, key, stamp, stamp_is_date) }})
{%- endif %}
{%- endmacro %}

{% macro touched_keys(relation, entity, key, stamp=none, stamp_is_date=false) -%}
{%- set w = incremental_window() -%}
{%- if w is not mapping -%}
    select {{ key }} from {{ relation }}
{%- else -%}
    {%- set after = w['loaded_after'].get(entity, '1900-01-01 00:00:00') -%}
    {%- set prev_date = "cast('" ~ w['prev_as_of_date'] ~ "' as date)" -%}
    {%- set prev_end = "cast('" ~ w['prev_as_of_end_utc'] ~ "' as timestamp)" -%}
    select {{ key }} from {{ relation }}
    where
        _loaded_at > cast('{{ after }}' as timestamp)
        {%- if stamp is not none and stamp_is_date %}
            or ({{ stamp }} > {{ prev_date }} and {{ stamp }} <= {{ as_of_date() }})
        {%- elif stamp is not none %}
            or ({{ stamp }} >= {{ prev_end }} and {{ stamp }} < {{ as_of_end() }})
        {%- endif %}
{%- endif -%}
{%- endmacro %}

{#- The start of this dbt invocation, stamped as `_built_at` on every row an
    incremental staging model (re)computes. A downstream incremental model
    recomputes the rows resting on a staging row stamped with this build's
    built_now(): that set is exactly what staging changed, however it got
    touched (a late version, a recall, a parent arriving). -#}
{% macro built_now() -%}
    {#- run_started_at is dbt's; sqlfluff's templater has no such variable. -#}
    {%- set started = "1970-01-01 00:00:00" -%}
    {%- if run_started_at is defined -%}
        {%- set started = run_started_at.strftime("%Y-%m-%d %H:%M:%S.%f") -%}
    {%- endif -%}
    cast('{{ started }}' as timestamp)
{%- endmacro %}

{#- int_engagement__activities_by_account: the posts ('forum') or messages
    ('chat') whose activities a build recomputes: those staging recomputed
    in this build, and every reply to one. -#}
{% macro activities_stale_records(source) -%}
{%- if source == 'forum' -%}
    {%- set relation, key, parent = ref('stg_forum__posts'), 'post_id', 'reply_to_post_id' -%}
{%- else -%}
    {%- set relation, key, parent = ref('stg_chat__messages'), 'msg_id', 'reply_to_msg_id' -%}
{%- endif -%}
    select built.{{ key }} from {{ relation }} as built
    where built._built_at = {{ built_now() }}
    union all
    select reply.{{ key }} from {{ relation }} as reply
    where reply.{{ parent }} in (
        select parent.{{ key }} from {{ relation }} as parent
        where parent._built_at = {{ built_now() }}
    )
{%- endmacro %}

{#- One statement per source (a pre-hook each), not an OR of two
    `in (subquery)`s, which PostgreSQL runs as subplans (see
    feedback_delete_stale). -#}
{% macro activities_delete_stale(source) -%}
{%- if is_incremental() -%}
    delete from {{ this }}
    where activity_source = '{{ source }}' and source_record_id in ({{ activities_stale_records(source) }})
{%- else -%}
    select 1
{%- endif -%}
{%- endmacro %}
