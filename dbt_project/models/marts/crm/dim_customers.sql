{#- One row per person: a shop customer, a community member, or both, as
    identity resolution links them (int_identity__resolved). customer_key is
    a keyed hash of the person's anchor account: their smallest shop customer
    id when they have one, so it stays stable while their links do not
    change. -#}
with

persons as (

    select * from {{ ref('int_identity__persons') }}

),

tiered as (

    select * from {{ ref('int_customers__tiered') }}

),

tiers as (

    select * from {{ ref('community_tiers') }}

),

final as (

    select
        -- ids
        persons.customer_key,
        -- attributes
        persons.province,
        persons.city,
        persons.location_source,
        persons.is_customer,
        persons.is_forum_member,
        persons.is_chat_member,
        persons.is_staff,
        coalesce(tiered.community_tier, {{ lowest_tier() }}) as community_tier,
        coalesce(tiered.qualified_tier, {{ lowest_tier() }}) as qualified_tier,
        coalesce(tiered.previous_tier, {{ lowest_tier() }}) as previous_tier,
        tiered.tier_held_until,
        -- timestamps
        persons.registered_at,
        tiered.first_order_at,
        -- dates
        {{ as_of_date() }} as as_of_date

    from persons
    left join tiered
        on persons.person_id = tiered.person_id

)

select * from final
