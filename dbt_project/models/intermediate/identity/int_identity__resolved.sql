{#- Accounts -> people: connected components of the account-key graph, so
    a chain A-B-C linked through different keys is one person.

    Shared keys: a key held by more than one shop customer account (a
    family's phone, a shop's shared email) says nothing about who is who and
    is not used for linking.

    Components are found by label propagation: every account starts with its
    own account_node as label; each round, a key takes the smallest label of
    its accounts and an account the smallest label of its keys. Each round
    crosses one account-key-account hop, so var('identity_rounds') rounds
    resolve chains of that many links; the data test
    assert_identity_converged fails the build if any link is left with two
    labels. A person's anchor is the smallest label, i.e. their smallest shop
    customer account when they have one. -#}
{%- set rounds = var('identity_rounds', 8) | int or 8 -%}
with

accounts as (

    select * from {{ ref('int_identity__accounts') }}

),

account_keys as (

    select * from {{ ref('int_identity__account_keys') }}

),

shared_keys as (

    select * from {{ ref('int_identity__shared_keys') }}

),

edges as (

    select
        account_keys.account_node,
        account_keys.key_node
    from account_keys
    left join shared_keys
        on account_keys.key_node = shared_keys.key_node
    where shared_keys.key_node is null

),

labels_0 as (

    select
        account_node,
        account_node as label
    from accounts

),

{% for i in range(1, rounds + 1) %}
    key_labels_{{ i }} as (

        select
            edges.key_node,
            min(labels_{{ i - 1 }}.label) as label
        from edges
        inner join labels_{{ i - 1 }}
            on edges.account_node = labels_{{ i - 1 }}.account_node
        group by edges.key_node

    ),

    labels_{{ i }} as (

        select
            labels_{{ i - 1 }}.account_node,
            least(labels_{{ i - 1 }}.label, coalesce(min(key_labels_{{ i }}.label), labels_{{ i - 1 }}.label)) as label
        from labels_{{ i - 1 }}
        left join edges
            on labels_{{ i - 1 }}.account_node = edges.account_node
        left join key_labels_{{ i }}
            on edges.key_node = key_labels_{{ i }}.key_node
        group by labels_{{ i - 1 }}.account_node, labels_{{ i - 1 }}.label

    ),

{% endfor %}
final as (

    select
        -- ids
        accounts.account_node,
        accounts.account_type,
        accounts.account_id,
        substr(labels_{{ rounds }}.label, 2) as person_id,
        -- attributes
        accounts.is_staff

    from accounts
    inner join labels_{{ rounds }}
        on accounts.account_node = labels_{{ rounds }}.account_node

)

select * from final
