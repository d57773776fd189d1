"""
# crm_extract_chat

An Airflow DAG built by `_common.extract.extract_dag` (the shape all extract DAGs share).
Loads chat-group exports (`chat_messages`) for one as-of day into
`raw.chat_messages`: the contract's CSV, desktop WeChat backup CSV, JSON
Lines shaped like WeCom chat-archive records and QQ message-manager text
exports (.txt), all into one table; and the groups' member rosters
(`chat_members`, which link senders to people) and places (`chat_groups`).
Join/leave/recall become membership events in staging; a recalled message
stops counting as text. Updates the `crm://raw/chat` asset.
"""

from _common import RAW_CHAT
from _common.extract import extract_dag

crm_extract_chat = extract_dag("crm_extract_chat", __doc__, ["chat_messages", "chat_members", "chat_groups"], RAW_CHAT)
