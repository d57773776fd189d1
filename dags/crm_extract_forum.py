"""
# crm_extract_forum

An Airflow DAG built by `_common.extract.extract_dag` (the shape all extract DAGs share).
Loads the brand forum (`forum_users`, `forum_posts`) for one as-of day into
`raw.*` from file drops under `$CRM_LANDING_DIR/<entity>/` and, when the
Airflow connection `crm_forum_api` exists (host = base URL, login = API
username, password = API key), from the Discourse-compatible API, paged and
incremental by post id. 429 and 5xx are retried with backoff; a malformed
page fails the task without retries and without moving the watermark. Edited posts
arrive as new versions (staging keeps the latest); deleted posts carry
`is_deleted` and stop counting while their history stays. Updates the
`crm://raw/forum` asset.
"""

from _common import RAW_FORUM
from _common.extract import extract_dag

crm_extract_forum = extract_dag(
    "crm_extract_forum", __doc__, ["forum_users", "forum_posts"], RAW_FORUM, api_source=True
)
