{#- Fails when label propagation stopped early: two accounts joined by a
    (non-shared) key but resolved to different people. Raise
    var('identity_rounds') if this ever fires. -#}
with

resolved as (

    select * from {{ ref('int_identity__resolved') }}

),

account_keys as (

    select * from {{ ref('int_identity__account_keys') }}

),

shared_keys as (

    select * from {{ ref('int_identity__shared_keys') }}

),

final as (

    select account_keys.key_node
    from account_keys
    inner join resolved
        on account_keys.account_node = resolved.account_node
    where account_keys.key_node not in (select shared_keys.key_node from shared_keys)
    group by account_keys.key_node
    having count(distinct resolved.person_id) > 1

)

select * from final
