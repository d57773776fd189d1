{#- The identifying keys each account carries, normalised so the same
    person's keys compare equal: member id upper-cased, phone to 11 digits
    (macro normalise_phone), email lower-cased, unionid trimmed. Shop
    customers also carry their customer id, which event attendee_ref may
    name. Chat senders carry their keys from the messages and from the
    groups' rosters (stg_chat__members). -#}
with

customers as (

    select * from {{ ref('stg_shop__customers') }}

),

forum_users as (

    select * from {{ ref('stg_forum__users') }}

),

chat_messages as (

    select * from {{ ref('stg_chat__messages') }}

),

chat_members as (

    select * from {{ ref('stg_chat__members') }}

),

customer_accounts as (

    select
        {{ account_node('customer', 'customer_id') }} as account_node,
        customer_id,
        upper(member_id) as member_id,
        wechat_unionid,
        {{ normalise_phone('phone') }} as phone,
        email
    from customers

),

forum_accounts as (

    select
        {{ account_node('forum', 'user_id') }} as account_node,
        cast(null as varchar) as customer_id,
        upper(member_id) as member_id,
        wechat_unionid,
        {{ normalise_phone('phone') }} as phone,
        email
    from forum_users

),

chat_accounts as (

    select distinct
        {{ account_node('chat', 'sender_id') }} as account_node,
        cast(null as varchar) as customer_id,
        cast(null as varchar) as member_id,
        sender_unionid as wechat_unionid,
        cast(null as varchar) as phone,
        cast(null as varchar) as email
    from chat_messages

),

-- A roster says who a sender is when their messages do not (real exports carry no unionid).
roster_accounts as (

    select distinct
        {{ account_node('chat', 'sender_id') }} as account_node,
        cast(null as varchar) as customer_id,
        member_id,
        wechat_unionid,
        {{ normalise_phone('phone') }} as phone,
        cast(null as varchar) as email
    from chat_members

),

accounts as (

    select * from customer_accounts
    union all
    select * from forum_accounts
    union all
    select * from chat_accounts
    union all
    select * from roster_accounts

),

all_keys as (

    {% for key in ['customer_id', 'member_id', 'wechat_unionid', 'phone', 'email'] %}
        select
            account_node,
            '{{ key }}' as key_type,
            {{ key }} as key_value
        from accounts
        {% if not loop.last %}union all{% endif %}
    {% endfor %}

),

final as (

    select distinct
        -- ids
        account_node,
        key_type,
        trim(key_value) as key_value,
        key_type || ':' || trim(key_value) as key_node

    from all_keys
    where nullif(trim(key_value), '') is not null

)

select * from final
