"""Run dbt for the warehouse in CRM_WAREHOUSE_URL."""
