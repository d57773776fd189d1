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

accounts as (

    select * from {{ ref('int_identity__accounts') }}

),

persons as (

    select * from {{ ref('int_identity__persons') }}

),

orders as (

    select * from {{ ref('int_customers__orders_counted') }}

),

person_dates as (

    {#- When each person became a shop customer (their first registration) and first joined the forum
        or a chat group (int_identity__accounts: a forum user's joined_at, a chat roster's, else the
        first message seen), as local days. -#}
    select
        resolved.person_id,
        min(case when accounts.account_type = 'customer' then {{ local_date('accounts.joined_at') }} end)
            as registered_date,
        min(
            case
                when accounts.account_type <> 'customer' and accounts.joined_at < {{ as_of_end() }}
                    then {{ local_date('accounts.joined_at') }}
            end
        ) as joined_date
    from resolved
    inner join accounts
        on resolved.account_node = accounts.account_node
    group by resolved.person_id

),

population as (

    {#- Shop customers, not staff, with when they became customers and first joined (null: never). -#}
    select
        persons.person_id,
        person_dates.registered_date,
        person_dates.joined_date,
        cast(date_trunc('month', person_dates.joined_date) as date) as joined_month
    from persons
    inner join person_dates
        on persons.person_id = person_dates.person_id
    where persons.is_customer and not persons.is_staff and person_dates.registered_date is not null

),

windows as (

    select distinct
        joined_month as cohort_month,
        cast(joined_month - {{ window_days }} as date) as pre_start,
        cast(joined_month - 1 as date) as pre_end,
        cast(joined_month + interval '1 month' as date) as post_start,
        cast(cast(joined_month + interval '1 month' as date) - 1 + {{ window_days }} as date) as post_end
    from population
    where joined_month is not null

),

cohorts as (

    {#- A cohort is a joining month whose before-window starts on or after the first counted order's
        day and whose after-window has ended by the as-of day. -#}
    select windows.*
    from windows
    where
        windows.pre_start >= (select min(orders.ordered_date) from orders)
        and windows.post_end <= {{ as_of_date() }}

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
