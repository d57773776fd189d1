{#- The order that picks a record's latest version in staging: the source's
    own change stamp first (when it has one), then the later load, the later
    line in the file, and the row hash so ties never depend on the engine. -#}
{% macro version_order(stamp=none) -%}
    {%- if stamp %}{{ stamp }} desc, {% endif -%}
    _loaded_at desc, coalesce(_line_no, 0) desc, _row_hash desc
{%- endmacro %}
