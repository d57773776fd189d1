{#- Nobody is at risk whose last complaint is older than risk_window_days, or
    who has bought since (checked against the orders, not the mart's own
    columns), or who is at risk for no reason. -#}
select
    risk.customer_key,
    risk.last_negative_at,
    risk.risk_reason
from {{ ref('fct_customer_risk') }} as risk
where
    risk.is_at_risk
    and (
        risk.risk_reason is null
        or risk.last_negative_at < {{ as_of_end() }} - interval '{{ var("risk_window_days") }} days'
        or exists (
            select 1
            from {{ ref('int_customers__orders_counted') }} as orders
            inner join {{ ref('int_identity__persons') }} as persons
                on orders.person_id = persons.person_id
            where persons.customer_key = risk.customer_key and orders.ordered_at > risk.last_negative_at
        )
    )
