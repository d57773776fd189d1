{#- PostgreSQL plans joins from table statistics, and a table dbt has just
    created has none until autovacuum gets to it: without them the planner
    guessed trillions of rows and nested-looped int_engagement__activities_unioned
    for minutes at scale M. Tables are analysed as soon as they are built
    (post-hook on every model); DuckDB needs nothing. -#}
{% macro analyze_table() -%}
    {%- if target.type == 'postgres' and config.get('materialized') in ('table', 'incremental') -%}
        analyze {{ this }}
    {%- endif -%}
{%- endmacro %}
