{#- An account's node in the identity graph: its kind's prefix and its id ('1customer:C1').
    The digit orders the kinds (customers first, then forum users, then chat senders), so a
    component's smallest node names its person. The prefixes live here and in
    crm_pipeline.privacy.ACCOUNT_PREFIXES (which erases by node), nowhere else. -#}
{% macro account_prefix(kind) -%}
    {%- set prefixes = {'customer': '1customer:', 'forum': '2forum:', 'chat': '3chat:'} -%}
    {%- if kind not in prefixes -%}
        {%- set message = "account_prefix: unknown account kind '" ~ kind ~ "' (customer, forum, chat)" -%}
        {{ exceptions.raise_compiler_error(message) }}
    {%- endif -%}
    '{{ prefixes[kind] }}'
{%- endmacro %}

{% macro account_node(kind, id_column) -%}
    {{ account_prefix(kind) }} || {{ id_column }}
{%- endmacro %}
