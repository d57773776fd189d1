{#- Set-returning select expression: one row per "@name" in a text. A name
    runs to the next space, "@", common punctuation or U+2005 (the
    four-per-em space WeChat puts after a mention). -#}
{% macro mentioned_names(text_expr) -%}
    {%- set pattern = "@([^\s@,，:：;；。!！?？()（）\u2005]+)" -%}
    {%- if target.type == 'postgres' -%}
        (regexp_matches({{ text_expr }}, '{{ pattern }}', 'g'))[1]
    {%- else -%}
        unnest(regexp_extract_all({{ text_expr }}, '{{ pattern }}', 1))
    {%- endif -%}
{%- endmacro %}
