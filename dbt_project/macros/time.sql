{#- Naive UTC timestamp -> naive local timestamp (and date) in the configured
    time zone. The same SQL is correct on DuckDB and PostgreSQL whatever the
    session time zone. -#}
{% macro local_ts(ts) -%}
    (({{ ts }} at time zone 'UTC') at time zone '{{ var("timezone") }}')
{%- endmacro %}

{% macro local_date(ts) -%}
    cast({{ local_ts(ts) }} as date)
{%- endmacro %}

{#- End of the as-of day (exclusive), as a naive UTC timestamp literal. -#}
{% macro as_of_end() -%}
    cast('{{ var("as_of_end_utc") }}' as timestamp)
{%- endmacro %}

{% macro as_of_date() -%}
    cast('{{ var("as_of_date") }}' as date)
{%- endmacro %}
