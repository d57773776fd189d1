{#- Naive UTC timestamp -> naive local timestamp (and date) in the configured
    time zone. The same SQL is correct on DuckDB and PostgreSQL whatever the
    session time zone. -#}
{% macro local_ts(ts) -%}
    (({{ ts }} at time zone 'UTC') at time zone '{{ var("timezone") }}')
{%- endmacro %}

{% macro local_date(ts) -%}
    cast({{ local_ts(ts) }} as date)
{%- endmacro %}

{#- The values of one run: the as-of day, its end and the incremental window.
    The pipeline passes them in the environment (CRM_DBT_RUN_VARS, a JSON
    object), not in --vars: dbt re-parses the whole project whenever --vars
    changes, and the day changes every run. They are read only when dbt
    executes, so parsing never sees them and the saved parse stays valid from
    one day to the next; the SQL is compiled from them on every run. A var of
    the same name (dbt by hand: --vars; a unit test's overrides) wins; with
    neither, `default`. -#}
{% macro run_var(name, default=none) -%}
    {%- set value = var(name, none) -%}
    {%- if value is none and execute -%}
        {%- set value = fromjson(env_var('CRM_DBT_RUN_VARS', '{}')).get(name, default) -%}
    {%- endif -%}
    {{ return(value) }}
{%- endmacro %}

{#- End of the as-of day (exclusive), as a naive UTC timestamp literal. -#}
{% macro as_of_end() -%}
    cast('{{ run_var("as_of_end_utc", "2100-01-01 00:00:00") }}' as timestamp)
{%- endmacro %}

{% macro as_of_date() -%}
    cast('{{ run_var("as_of_date", "2099-12-31") }}' as date)
{%- endmacro %}
