{#- Pseudonymous key: sha256 over a secret kept in private.pseudonym_key (a
    table BI cannot read, written by the loader from CRM_KEY_SECRET) and the
    value. The secret never appears in compiled SQL or dbt logs. -#}
{% macro keyed_hash(secret_expr, value_expr) -%}
    {%- if target.type == 'postgres' -%}
        substr(encode(sha256(convert_to({{ secret_expr }} || ':' || {{ value_expr }}, 'UTF8')), 'hex'), 1, 32)
    {%- else -%}
        substr(sha256({{ secret_expr }} || ':' || {{ value_expr }}), 1, 32)
    {%- endif -%}
{%- endmacro %}
