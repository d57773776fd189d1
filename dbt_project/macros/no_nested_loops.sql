{#- PostgreSQL estimates a join's rows from its inputs' statistics, and a CTE
    referenced twice is materialised without any: after a join on several
    columns it may guess one row and nested-loop what follows, each row
    against a whole scan. On the real datasets int_customers__tiered took
    21-27 s that way (3,958 as-of rows against 126,656 daily standings) and
    2 s with hash joins; stg_forum__posts 2.5 s and 0.04 s. A model whose plan
    goes that way has this as a pre-hook: for its own transaction only
    (set local; a join with no equality can still loop). DuckDB needs nothing. -#}
{% macro no_nested_loops() -%}
    {%- if target.type == 'postgres' -%}
        set local enable_nestloop = off
    {%- endif -%}
{%- endmacro %}
