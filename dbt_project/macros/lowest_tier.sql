{#- The lowest community tier (community_tiers' smallest tier_rank), as a scalar subquery over
    `tiers`, the model's import CTE of the seed: where a person without a grade stands. -#}
{% macro lowest_tier(tiers='tiers') -%}
    (select {{ tiers }}.tier from {{ tiers }} order by {{ tiers }}.tier_rank limit 1)
{%- endmacro %}
