{#- RFM score 1-5 by quintile of rank, ties sharing a score:
    1 + floor(5 * (rank - 1) / n), rank() ascending over "better".
    With n distinct values the worst fifth scores 1 and the best fifth 5;
    equal values get the same (lowest) rank, hence the same score. -#}
{% macro quintile_score(order_expr, partition_by=none) -%}
    {%- set window = ('partition by ' ~ partition_by ~ ' ') if partition_by else '' -%}
    {{ quintile_of(
        'rank() over (' ~ window ~ 'order by ' ~ order_expr ~ ') - 1',
        'count(*) over (' ~ window.strip() ~ ')'
    ) }}
{%- endmacro %}

{#- The same score from counts: `worse` of `n` rank strictly worse (rank - 1
    above), where counting per value is cheaper than ranking every row. -#}
{% macro quintile_of(worse, n) -%}
    cast(floor(5.0 * ({{ worse }}) / ({{ n }})) as integer) + 1
{%- endmacro %}
