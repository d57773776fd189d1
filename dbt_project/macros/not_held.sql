{#- The quality gate: rows of a batch a critical check held back
    (audit.load_batches.quality_status = 'held') stay out of staging until a
    corrected file replaces the batch. -#}
{% macro not_held() -%}
    _batch_id not in (
        select held.batch_id from {{ source('audit', 'load_batches') }} as held
        where held.quality_status = 'held'
    )
{%- endmacro %}
