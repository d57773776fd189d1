{#- Keys held by more than one shop customer account — a family's phone, an
    office email. They say nothing about who is who and link nobody. -#}
with

account_keys as (

    select * from {{ ref('int_identity__account_keys') }}

),

final as (

    select
        key_node,
        count(distinct account_node) as customer_accounts
    from account_keys
    where account_node like ({{ account_prefix('customer') }} || '%')
    group by key_node
    having count(distinct account_node) > 1

)

select * from final
