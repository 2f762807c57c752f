#!/bin/sh
# docker-entrypoint-initdb.d hook: passes the passwords from the environment to the SQL.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
     -v airflow_password="$AIRFLOW_DB_PASSWORD" -v crmhub_password="$CRMHUB_DB_PASSWORD" \
     -f /docker-entrypoint-initdb.d/init.sql.in
