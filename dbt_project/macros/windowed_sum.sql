{#- Sum of `quantity` over activities of the given types in the last `days`
    local days up to the as-of day (CTE `windowed`, column days_ago). -#}
{% macro windowed_sum(types, days) -%}
    coalesce(sum(case when windowed.activity_type in ({{ types }}) and windowed.days_ago < {{ days }}
        then windowed.quantity end), 0)
{%- endmacro %}
