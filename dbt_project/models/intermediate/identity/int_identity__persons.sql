{#- One row per person: their customer_key, where they live (their anchor
    customer's address; without one, what the community says of them:
    int_identity__located), and which channels they are on. customer_key is
    computed here and only here: every mart that names a person joins this
    model for it. -#}
with

resolved as (

    select * from {{ ref('int_identity__resolved') }}

),

customers as (

    select
        *,
        coalesce(city, province) is not null as has_address
    from {{ ref('stg_shop__customers') }}

),

located as (

    select * from {{ ref('int_identity__located') }}

),

pseudonym_key as (

    select * from {{ source('private', 'pseudonym_key') }}

),

per_person as (

    select
        person_id,
        min(case when account_type = 'customer' then account_id end) as anchor_customer_id,
        count(*) as account_count,
        sum(case when account_type = 'customer' then 1 else 0 end) as customer_accounts,
        sum(case when account_type = 'forum' then 1 else 0 end) as forum_accounts,
        sum(case when account_type = 'chat' then 1 else 0 end) as chat_accounts,
        max(case when is_staff then 1 else 0 end) = 1 as is_staff
    from resolved
    group by person_id

),

final as (

    select
        -- ids
        per_person.person_id,
        {{ keyed_hash('pseudonym_key.secret', 'per_person.person_id') }} as customer_key,
        per_person.anchor_customer_id,
        -- attributes
        case when customers.has_address then customers.province else located.province end as province,
        case when customers.has_address then customers.city else located.city end as city,
        case when customers.has_address then 'customer' else located.location_source end as location_source,
        per_person.customer_accounts > 0 as is_customer,
        per_person.forum_accounts > 0 as is_forum_member,
        per_person.chat_accounts > 0 as is_chat_member,
        per_person.is_staff,
        -- measures
        per_person.account_count,
        -- timestamps
        customers.registered_at

    from per_person
    cross join pseudonym_key
    left join customers
        on per_person.anchor_customer_id = customers.customer_id
    left join located
        on per_person.person_id = located.person_id

)

select * from final
