# The compose stack's Superset: the release `make bi` runs (bi/requirements.lock), with the PostgreSQL
# driver its image leaves out. The dashboards come from bi/bundle, mounted at run time (docker-compose.yml).
FROM apache/superset:6.1.0
USER root
RUN pip install --no-cache-dir psycopg2-binary==2.9.13
USER superset
