{#- Nobody is at risk whose last complaint is older than risk_window_days, or
    who has bought since (checked against the orders, not the mart's own
    columns), or who is at risk for no reason. Each person's last order is
    found once and joined: an EXISTS under an OR ran as a subplan per at-risk
    row on PostgreSQL, more than 7 minutes at scale M. -#}
with

last_orders as (

    select
        persons.customer_key,
        max(orders.ordered_at) as last_ordered_at
    from {{ ref('int_customers__orders_counted') }} as orders
    inner join {{ ref('int_identity__persons') }} as persons
        on orders.person_id = persons.person_id
    group by persons.customer_key

)

select
    risk.customer_key,
    risk.last_negative_at,
    risk.risk_reason
from {{ ref('fct_customer_risk') }} as risk
left join last_orders
    on risk.customer_key = last_orders.customer_key
where
    risk.is_at_risk
    and (
        risk.risk_reason is null
        or risk.last_negative_at < {{ as_of_end() }} - interval '{{ var("risk_window_days") }} days'
        or last_orders.last_ordered_at > risk.last_negative_at
    )
