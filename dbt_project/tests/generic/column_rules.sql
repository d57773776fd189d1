{#- A model's column rules, all in one scan of it: each a count of the rows that break it, and a row
    (rule, column_name, failing_rows) for every rule some row breaks. One node per model instead of a
    node per rule and column (dbt parses, compiles and runs each node: 150 of them were half of a
    build's time on the tests' sample), with the meaning of dbt's own tests:
      not_null: [column, ...]               no null;
      unique: [column or expression, ...]   no value twice (nulls are not counted, as in dbt's unique);
      accepted_values: {column: [v, ...]}   nothing else (nulls pass); {column: {values: [...], quote: false}}
                                            for numbers;
      in_range: {column: {min_value: a, max_value: b}}  within the bounds, inclusive; a bound left out is
                                            open; nulls pass.
    Relationships stay dbt's own test (a join to another model, with its own severity). -#}
{% test column_rules(model, not_null=[], unique=[], accepted_values={}, in_range={}) %}
    {%- set checks = [] -%}
    {%- for column in not_null -%}
        {%- do checks.append(("not_null", column, "count(*) - count(" ~ column ~ ")")) -%}
    {%- endfor -%}
    {%- for column in unique -%}
        {%- do checks.append(("unique", column, "count(" ~ column ~ ") - count(distinct " ~ column ~ ")")) -%}
    {%- endfor -%}
    {%- for column, allowed in accepted_values.items() -%}
        {%- set values = allowed["values"] if allowed is mapping else allowed -%}
        {%- set quoted = allowed.get("quote", true) if allowed is mapping else true -%}
        {%- set literals = [] -%}
        {%- for value in values -%}
            {%- do literals.append("'" ~ (value | string | replace("'", "''")) ~ "'" if quoted else value | string) -%}
        {%- endfor -%}
        {%- set count = "sum(case when " ~ column ~ " not in (" ~ literals | join(", ") ~ ") then 1 else 0 end)" -%}
        {%- do checks.append(("accepted_values", column, count)) -%}
    {%- endfor -%}
    {%- for column, bounds in in_range.items() -%}
        {%- set outside = [] -%}
        {%- if bounds.get("min_value") is not none -%}{%- do outside.append(column ~ " < " ~ bounds["min_value"]) -%}{%- endif -%}
        {%- if bounds.get("max_value") is not none -%}{%- do outside.append(column ~ " > " ~ bounds["max_value"]) -%}{%- endif -%}
        {%- set count = "sum(case when " ~ (outside | join(" or ") or "false") ~ " then 1 else 0 end)" -%}
        {%- do checks.append(("in_range", column, count)) -%}
    {%- endfor -%}
    with broken as (
        select
            {%- for rule, column, count in checks %}
                cast({{ count }} as bigint) as rule_{{ loop.index }}{{ "," if not loop.last }}
            {%- endfor %}
        from {{ model }}
    )

    {% for rule, column, count in checks -%}
        select
            '{{ rule }}' as rule,
            '{{ column | replace("'", "''") }}' as column_name,
            rule_{{ loop.index }} as failing_rows
        from broken
        where rule_{{ loop.index }} > 0
        {% if not loop.last %}union all{% endif %}
    {% endfor %}
{% endtest %}
