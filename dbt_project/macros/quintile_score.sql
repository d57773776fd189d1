{#- RFM score 1-5 by quintile of rank, ties sharing a score:
    1 + floor(5 * (rank - 1) / n), rank() ascending over "better".
    With n distinct values the worst fifth scores 1 and the best fifth 5;
    equal values get the same (lowest) rank, hence the same score. -#}
{% macro quintile_score(order_expr, partition_by=none) -%}
    cast(floor(
        5.0 * (rank() over ({% if partition_by %}partition by {{ partition_by }} {% endif %}order by {{ order_expr }}) - 1)
        / count(*) over ({% if partition_by %}partition by {{ partition_by }}{% endif %})
    ) as integer) + 1
{%- endmacro %}
