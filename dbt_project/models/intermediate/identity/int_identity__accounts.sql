{#- Every account a person can hold: shop customer, forum user, chat sender.
    account_node sorts customers first ('1customer:', '2forum:', '3chat:'),
    so a person's anchor is their smallest shop customer id when they have
    one. Staff and bots (seed staff_accounts) are flagged. -#}
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

staff_patterns as (

    select * from {{ ref('staff_accounts') }}

),

-- Everyone who wrote, and everyone a roster lists (a silent member of a group is a member too);
-- joined when a roster says, else when first seen.
chat_senders as (

    select
        sender_id,
        max(display_name) as display_name,
        coalesce(min(roster_joined_at), min(sent_at)) as joined_at
    from (
        select
            sender_id,
            sender_name as display_name,
            sent_at,
            cast(null as timestamp) as roster_joined_at
        from chat_messages
        union all
        select
            sender_id,
            display_name,
            cast(null as timestamp) as sent_at,
            joined_at as roster_joined_at
        from chat_members
    ) as named
    group by sender_id

),

accounts as (

    select
        {{ account_node('customer', 'customer_id') }} as account_node,
        'customer' as account_type,
        customer_id as account_id,
        cast(null as varchar) as display_name,
        registered_at as joined_at
    from customers

    union all

    select
        {{ account_node('forum', 'user_id') }} as account_node,
        'forum' as account_type,
        user_id as account_id,
        username as display_name,
        joined_at
    from forum_users

    union all

    select
        {{ account_node('chat', 'sender_id') }} as account_node,
        'chat' as account_type,
        sender_id as account_id,
        display_name,
        joined_at
    from chat_senders

),

staff as (

    select distinct accounts.account_node
    from accounts
    inner join staff_patterns
        on
            accounts.account_type = staff_patterns.account_type
            and (
                lower(accounts.account_id) like lower(staff_patterns.pattern)
                or lower(coalesce(accounts.display_name, '')) like lower(staff_patterns.pattern)
            )

),

final as (

    select
        -- ids
        accounts.account_node,
        accounts.account_type,
        accounts.account_id,
        -- attributes
        staff.account_node is not null as is_staff,
        -- timestamps
        accounts.joined_at

    from accounts
    left join staff
        on accounts.account_node = staff.account_node

)

select * from final
