{#- The community lift's panel (fct_community_lift; docs/architecture.md, "Community lift"): for each
    joining month (cohort) whose windows lie inside the data and before the as-of day, every shop
    customer who could be compared: those who first joined the forum or a chat group in that month
    (treated) and those who had not joined by the end of its after-window (controls), each with their
    counted orders and net spend in the window before the month and the window after it. -#}

{%- set window_days = var('community_lift_window_days') -%}

with

resolved as (

    select * from {{ ref('int_identity__resolved') }}

),

persons as (

    select * from {{ ref('int_identity__persons') }}

),

customers as (

    select * from {{ ref('stg_shop__customers') }}

),

orders as (

    select * from {{ ref('int_customers__orders_counted') }}

),

forum_users as (

    select * from {{ ref('stg_forum__users') }}

),

chat_members as (

    select * from {{ ref('stg_chat__members') }}

),

chat_messages as (

    select * from {{ ref('stg_chat__messages') }}

),

roster_joins as (

    select
        sender_id,
        min(joined_at) as joined_at
    from chat_members
    where joined_at is not null
    group by sender_id

),

first_seen as (

    select
        sender_id,
        min(sent_at) as first_seen_at
    from chat_messages
    group by sender_id

),

chat_joins as (

    {#- A chat account joined when its group's roster says; without a roster, when it was first seen. -#}
    select
        coalesce(roster_joins.sender_id, first_seen.sender_id) as sender_id,
        coalesce(roster_joins.joined_at, first_seen.first_seen_at) as joined_at
    from roster_joins
    full outer join first_seen
        on roster_joins.sender_id = first_seen.sender_id

),

community_accounts as (

    select
        {{ account_node('forum', 'user_id') }} as account_node,
        joined_at
    from forum_users
    where joined_at is not null

    union all

    select
        {{ account_node('chat', 'sender_id') }} as account_node,
        joined_at
    from chat_joins

),

joined as (

    select
        resolved.person_id,
        min({{ local_date('community_accounts.joined_at') }}) as joined_date
    from community_accounts
    inner join resolved
        on community_accounts.account_node = resolved.account_node
    where community_accounts.joined_at < {{ as_of_end() }}
    group by resolved.person_id

),

registered as (

    select
        resolved.person_id,
        min({{ local_date('customers.registered_at') }}) as registered_date
    from customers
    inner join resolved
        on {{ account_node('customer', 'customers.customer_id') }} = resolved.account_node
    group by resolved.person_id

),

population as (

    {#- Shop customers, not staff, with when they became customers and first joined (null: never). -#}
    select
        persons.person_id,
        registered.registered_date,
        joined.joined_date,
        cast(date_trunc('month', joined.joined_date) as date) as joined_month
    from persons
    inner join registered
        on persons.person_id = registered.person_id
    left join joined
        on persons.person_id = joined.person_id
    where persons.is_customer and not persons.is_staff

),

joining_months as (

    select distinct
        joined_month as cohort_month,
        cast(cast(joined_month + interval '1 month' as date) - 1 as date) as cohort_end
    from population
    where joined_month is not null

),

bounds as (

    select min(ordered_date) as first_order_date
    from orders

),

cohorts as (

    {#- A cohort is a joining month whose before-window starts on or after the first counted order's
        day and whose after-window has ended by the as-of day. -#}
    select
        joining_months.cohort_month,
        cast(joining_months.cohort_month - {{ window_days }} as date) as pre_start,
        cast(joining_months.cohort_month - 1 as date) as pre_end,
        joining_months.cohort_end + 1 as post_start,
        cast(joining_months.cohort_end + {{ window_days }} as date) as post_end
    from joining_months
    cross join bounds
    where
        cast(joining_months.cohort_month - {{ window_days }} as date) >= bounds.first_order_date
        and cast(joining_months.cohort_end + {{ window_days }} as date) <= {{ as_of_date() }}

),

panel as (

    select
        cohorts.cohort_month,
        cohorts.pre_start,
        cohorts.pre_end,
        cohorts.post_start,
        cohorts.post_end,
        population.person_id,
        population.joined_date,
        coalesce(population.joined_month = cohorts.cohort_month, false) as is_treated
    from cohorts
    inner join population
        on
            cohorts.pre_start > population.registered_date
            and (
                cohorts.cohort_month = population.joined_month
                or population.joined_date is null
                or cohorts.post_end < population.joined_date
            )

),

measured as (

    select
        panel.cohort_month,
        panel.person_id,
        panel.joined_date,
        panel.is_treated,
        count(case when orders.ordered_date <= panel.pre_end then orders.order_id end) as pre_orders,
        count(case when orders.ordered_date >= panel.post_start then orders.order_id end) as post_orders,
        coalesce(sum(case when orders.ordered_date <= panel.pre_end then orders.net_amount end), 0) as pre_spend,
        coalesce(sum(case when orders.ordered_date >= panel.post_start then orders.net_amount end), 0) as post_spend
    from panel
    left join orders
        on
            panel.person_id = orders.person_id
            and (
                orders.ordered_date between panel.pre_start and panel.pre_end
                or orders.ordered_date between panel.post_start and panel.post_end
            )
    group by panel.cohort_month, panel.person_id, panel.joined_date, panel.is_treated

),

final as (

    select
        -- ids
        measured.cohort_month,
        measured.person_id,
        -- attributes
        measured.is_treated,
        -- dates
        measured.joined_date,
        -- measures
        measured.pre_orders,
        measured.post_orders,
        cast(measured.pre_spend as double precision) as pre_spend,
        cast(measured.post_spend as double precision) as post_spend

    from measured

)

select * from final
