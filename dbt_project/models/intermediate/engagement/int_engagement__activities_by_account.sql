{#- Every forum and chat activity attributed to an account, not yet to a
    person: posts and replies written (not deleted), likes received, replies
    received (forum replies and chat quoted replies, the parent neither
    deleted nor recalled), chat text messages (not recalled) and the
    "@name"s a post or chat text mentions. account_node is who did it or
    received it (for a reply received, the parent's author); counterpart_node
    the replier or the mentioner; a mention names its account only by
    mentioned_name. int_engagement__activities_unioned turns accounts into persons
    on every build (identity changes from day to day) and adds events.

    Incremental: the rows of every post and message staging recomputed in
    this build (built_now()), and of every reply to one (its parent may have
    been deleted or recalled), are deleted and computed again. -#}
{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='fail',
        pre_hook=[
            "{{ activities_delete_stale('forum') }}",
            "{{ activities_delete_stale('chat') }}",
        ],
    )
}}

with

all_posts as (

    select * from {{ ref('stg_forum__posts') }}

),

all_messages as (

    select * from {{ ref('stg_chat__messages') }}

),

posts as (

    select * from all_posts
    {%- if is_incremental() %}
        where post_id in ({{ activities_stale_records('forum') }})
    {%- endif %}

),

messages as (

    select * from all_messages
    {%- if is_incremental() %}
        where msg_id in ({{ activities_stale_records('chat') }})
    {%- endif %}

),

authored as (

    select
        'forum' as activity_source,
        post_id as source_record_id,
        case when reply_to_post_id is null then 'post' else 'reply' end as activity_type,
        {{ local_date('created_at') }} as activity_date,
        created_at as activity_at,
        1 as quantity,
        {{ account_node('forum', 'user_id') }} as account_node,
        cast(null as varchar) as counterpart_node,
        cast(null as varchar) as mentioned_name
    from posts
    where not is_deleted

),

replies_received as (

    select
        'forum' as activity_source,
        reply.post_id as source_record_id,
        'reply_received' as activity_type,
        {{ local_date('reply.created_at') }} as activity_date,
        reply.created_at as activity_at,
        1 as quantity,
        {{ account_node('forum', 'parent.user_id') }} as account_node,
        {{ account_node('forum', 'reply.user_id') }} as counterpart_node,
        cast(null as varchar) as mentioned_name
    from posts as reply
    inner join all_posts as parent
        on reply.reply_to_post_id = parent.post_id
    where not reply.is_deleted and not parent.is_deleted

),

likes_received as (

    select
        'forum' as activity_source,
        post_id as source_record_id,
        'like_received' as activity_type,
        {{ local_date('created_at') }} as activity_date,
        cast(null as timestamp) as activity_at,
        like_count as quantity,
        {{ account_node('forum', 'user_id') }} as account_node,
        cast(null as varchar) as counterpart_node,
        cast(null as varchar) as mentioned_name
    from posts
    where not is_deleted and like_count > 0

),

chat_replies_received as (

    select
        'chat' as activity_source,
        reply.msg_id as source_record_id,
        'reply_received' as activity_type,
        {{ local_date('reply.sent_at') }} as activity_date,
        reply.sent_at as activity_at,
        1 as quantity,
        {{ account_node('chat', 'parent.sender_id') }} as account_node,
        {{ account_node('chat', 'reply.sender_id') }} as counterpart_node,
        cast(null as varchar) as mentioned_name
    from messages as reply
    inner join all_messages as parent
        on reply.reply_to_msg_id = parent.msg_id
    where reply.is_counted_text and not parent.is_recalled

),

chat as (

    select
        'chat' as activity_source,
        msg_id as source_record_id,
        'chat_message' as activity_type,
        {{ local_date('sent_at') }} as activity_date,
        sent_at as activity_at,
        1 as quantity,
        {{ account_node('chat', 'sender_id') }} as account_node,
        cast(null as varchar) as counterpart_node,
        cast(null as varchar) as mentioned_name
    from messages
    where is_counted_text

),

written as (

    select
        'forum' as activity_source,
        post_id as source_record_id,
        {{ account_node('forum', 'user_id') }} as counterpart_node,
        created_at as activity_at,
        post_text as body
    from posts
    where not is_deleted and post_text like '%@%'

    union all

    select
        'chat' as activity_source,
        msg_id as source_record_id,
        {{ account_node('chat', 'sender_id') }} as counterpart_node,
        sent_at as activity_at,
        message_text as body
    from messages
    where is_counted_text and message_text like '%@%'

),

mention_names as (

    select
        activity_source,
        source_record_id,
        counterpart_node,
        activity_at,
        {{ mentioned_names('body') }} as mentioned_name
    from written

),

mentions as (

    select distinct
        activity_source,
        source_record_id,
        'mention_received' as activity_type,
        {{ local_date('activity_at') }} as activity_date,
        activity_at,
        1 as quantity,
        cast(null as varchar) as account_node,
        counterpart_node,
        mentioned_name
    from mention_names

),

final as (

    select * from authored
    union all
    select * from replies_received
    union all
    select * from likes_received
    union all
    select * from chat_replies_received
    union all
    select * from chat
    union all
    select * from mentions

)

select * from final
