"""Superset's settings for `make bi` (SUPERSET_CONFIG_PATH points here; crm_pipeline.superset sets the rest).

Local and single-user: metadata in SQLite under the BI home, served on 127.0.0.1 only.
"""

import os

SECRET_KEY = os.environ["SUPERSET_SECRET_KEY"]
SQLALCHEMY_DATABASE_URI = os.environ["SUPERSET_METADATA_URI"]
# Titles are bilingual in the bundle; the interface speaks either language.
BABEL_DEFAULT_LOCALE = "en"
LANGUAGES = {"en": {"flag": "us", "name": "English"}, "zh": {"flag": "cn", "name": "简体中文"}}
FEATURE_FLAGS = {"DASHBOARD_NATIVE_FILTERS": True, "DASHBOARD_CROSS_FILTERS": True}
# Plain http on 127.0.0.1: no HTTPS redirects or HSTS.
TALISMAN_ENABLED = False
# Marts are small and change once a day; a chart query is never left waiting behind a cache.
DATA_CACHE_CONFIG = {"CACHE_TYPE": "NullCache"}
# Thumbnails and alerts need a Celery worker, which `make bi` does not start.
THUMBNAIL_SELENIUM_USER = None
