{#- None of the listed columns holds a null: one scan of the model for all of them, a row per
    column that has any (column_name, null_rows). It replaces a not_null test per column, each
    its own node that dbt parses, compiles and runs: 120 of them took half a small build. #}
{% test not_null_columns(model, columns) %}
    with null_rows as (
        select
            {%- for column in columns %}
                count(*) - count({{ column }}) as {{ column }}{{ "," if not loop.last }}
            {%- endfor %}
        from {{ model }}
    )

    {% for column in columns -%}
        select
            '{{ column }}' as column_name,
            {{ column }} as null_rows
        from null_rows
        where {{ column }} > 0
        {% if not loop.last %}union all{% endif %}
    {% endfor %}
{% endtest %}
