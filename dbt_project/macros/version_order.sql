{#- The order that picks a record's latest version in staging: the source's
    own change stamp first (when it has one), then the later load, the later
    line in the file, and the row hash so ties never depend on the engine. -#}
{% macro version_order(stamp=none) -%}
    {%- if stamp %}{{ stamp }} desc, {% endif -%}
    _loaded_at desc, coalesce(_line_no, 0) desc, _row_hash desc
{%- endmacro %}

{#- The version staging keeps: the latest, unless it is a tombstone (the
    source deleted the key: raw._deleted, written by the SQL source's soft
    deletes and key reconciliation), in which case the key is left out. -#}
{% macro is_latest_live(rank='version_rank') -%}
    {{ rank }} = 1 and not coalesce(_deleted, false)
{%- endmacro %}
