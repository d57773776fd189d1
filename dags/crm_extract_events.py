"""
# crm_extract_events

An Airflow DAG built by `_common.extract.extract_dag` (the shape all extract DAGs share).
Loads offline events (`events`: registrations and check-ins, linked to
people through `attendee_ref`) for one as-of day into `raw.events`.
Updates the `crm://raw/events` asset.
"""

from _common import RAW_EVENTS
from _common.extract import extract_dag

crm_extract_events = extract_dag("crm_extract_events", __doc__, ["events"], RAW_EVENTS)
