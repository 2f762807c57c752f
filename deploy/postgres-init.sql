-- Runs once when the postgres volume is created: one server, two databases, two owners.
-- Airflow's metadata and the crmhub warehouse never share a database (or a password).
CREATE ROLE airflow LOGIN PASSWORD :'airflow_password';
CREATE DATABASE airflow OWNER airflow;
CREATE ROLE crmhub LOGIN PASSWORD :'crmhub_password';
CREATE DATABASE crmhub OWNER crmhub;
