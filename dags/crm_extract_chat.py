"""
# crm_extract_chat

An Airflow DAG built by `_common.extract.extract_dag` (the shape all extract DAGs share).
Loads chat-group exports (`chat_messages`) for one as-of day into
`raw.chat_messages`: flattened CSV as WeChat/QQ backup tools write it, and
JSON Lines shaped like WeCom chat-archive records, both into one table.
Join/leave/recall become membership events in staging; a recalled message
stops counting as text. Updates the `crm://raw/chat` asset.
"""

from _common import RAW_CHAT
from _common.extract import extract_dag

crm_extract_chat = extract_dag("crm_extract_chat", __doc__, ["chat_messages"], RAW_CHAT)
