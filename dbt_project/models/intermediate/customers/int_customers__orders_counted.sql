{#- The orders RFM counts (docs/architecture.md, RFM): status paid, shipped or
    completed, placed on or before the as-of day, net of refunds made on or
    before it. -#}
with

orders as (

    select * from {{ ref('stg_shop__orders') }}

),

refunds as (

    select * from {{ ref('stg_shop__refunds') }}

),

resolved as (

    select * from {{ ref('int_identity__resolved') }}

),

counted as (

    select * from orders
    where
        order_status in ('paid', 'shipped', 'completed')
        and ordered_at < {{ as_of_end() }}

),

refunded_per_order as (

    select
        order_id,
        sum(refund_amount) as refunded_amount
    from refunds
    group by order_id

),

final as (

    select
        -- ids
        counted.order_id,
        counted.customer_id,
        {#- An order of a customer the shop never exported is that customer's own person. -#}
        coalesce(resolved.person_id, 'customer:' || counted.customer_id) as person_id,
        -- attributes
        counted.order_status,
        counted.channel,
        -- timestamps
        counted.ordered_at,
        {{ local_date('counted.ordered_at') }} as ordered_date,
        -- measures
        counted.total_amount,
        cast(coalesce(refunded_per_order.refunded_amount, 0) as decimal(18, 2)) as refunded_amount,
        cast(
            counted.total_amount - coalesce(refunded_per_order.refunded_amount, 0) as decimal(18, 2)
        ) as net_amount

    from counted
    left join refunded_per_order
        on counted.order_id = refunded_per_order.order_id
    left join resolved
        on {{ account_node('customer', 'counted.customer_id') }} = resolved.account_node

)

select * from final
