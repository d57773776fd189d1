-- One PostgreSQL server, two databases: Airflow's metadata and the warehouse.
-- Runs once, when the postgres container initialises its data directory.
CREATE DATABASE airflow;
CREATE DATABASE warehouse;
