{#- Incremental staging: each model is a table kept by delete+insert on its
    key. A run recomputes every key "touched" since the last build from all of
    that key's raw versions (not only the new ones), so a late record with an
    older stamp can never win over the version already chosen.

    A key is touched when a version of it was loaded after the last build
    (var incremental.loaded_after.<entity>), or when a version loaded earlier
    becomes visible because its stamp falls between the last build's as-of
    end and this one's. The pipeline (crm_pipeline.transform.incremental)
    passes these bounds, and runs --full-refresh instead whenever raw rows were
    deleted, replaced or held since the last build, the as-of day moved
    back, or the staging code changed. Without the var (dbt by hand) every
    key counts as touched: slow, and still right. -#}

{% macro incremental_window() -%}
    {{ return(var('incremental', none)) }}
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
