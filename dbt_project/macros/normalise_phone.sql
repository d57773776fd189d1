{#- A phone as people type it -> 11 digits, or null when it is not a mainland
    mobile number: full-width digits folded, everything but digits removed,
    a leading 86 country code dropped. Same SQL on DuckDB and PostgreSQL. -#}
{% macro normalise_phone(expr) -%}
    {%- set digits -%}
        regexp_replace(translate({{ expr }}, '０１２３４５６７８９', '0123456789'), '[^0-9]', '', 'g')
    {%- endset -%}
    case
        when length({{ digits }}) = 13 and {{ digits }} like '861%' then substr({{ digits }}, 3)
        when length({{ digits }}) = 11 and {{ digits }} like '1%' then {{ digits }}
    end
{%- endmacro %}
