{#- One row per person. For now a person is a shop customer; identity
    across forum and chat (issue 4) adds community-only members. -#}
with

customers as (

    select * from {{ ref('stg_shop__customers') }}

),

tiered as (

    select * from {{ ref('int_customers_tiered') }}

),

tiers as (

    select * from {{ ref('community_tiers') }}

),

pseudonym_key as (

    select * from {{ source('private', 'pseudonym_key') }}

),

lowest_rank as (

    select min(tier_rank) as tier_rank from tiers

),

lowest_tier as (

    select tiers.tier
    from tiers
    inner join lowest_rank
        on tiers.tier_rank = lowest_rank.tier_rank

),

final as (

    select
        -- ids
        {{ keyed_hash('pseudonym_key.secret', "'customer:' || customers.customer_id") }} as customer_key,
        -- attributes
        customers.province,
        customers.city,
        false as is_forum_member,
        false as is_chat_member,
        coalesce(tiered.community_tier, lowest_tier.tier) as community_tier,
        -- timestamps
        customers.registered_at,
        tiered.first_order_at,
        -- dates
        {{ as_of_date() }} as as_of_date

    from customers
    cross join pseudonym_key
    cross join lowest_tier
    left join tiered
        on customers.customer_id = tiered.customer_id

)

select * from final
