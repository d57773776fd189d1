{#- community_tiers.grace_days within 0-365: int_customers__rfm_daily scores
    that many days back, from a series of 400. -#}
select *
from {{ ref('community_tiers') }}
where grace_days < 0 or grace_days > 365
