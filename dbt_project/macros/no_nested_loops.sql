{#- PostgreSQL estimates a join's rows from its inputs' statistics, and a CTE
    referenced twice is materialised without any: after a join on several
    columns it may guess one row and nested-loop what follows, each row
    against a whole scan. On the real datasets stg_forum__posts took 2.5 s
    that way and 0.04 s with hash joins. A model whose plan goes that way and
    cannot be written round it has this as a pre-hook: for its own
    transaction only (set local; a join with no equality can still loop).
    Not for a model with inequality joins: on the tests' small sample it made
    int_customers__tiered's builds slower, not faster. DuckDB needs nothing. -#}
{% macro no_nested_loops() -%}
    {%- if target.type == 'postgres' -%}
        set local enable_nestloop = off
    {%- endif -%}
{%- endmacro %}
