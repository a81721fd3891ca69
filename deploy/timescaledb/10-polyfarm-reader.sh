#!/bin/sh
# Run once by the TimescaleDB image when it creates the database (docker-entrypoint-initdb.d):
# the API's read-only login, with the password from deploy/.env. Migration 0008 finds the role
# and grants it SELECT on every table; every session of the role is READ ONLY.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    -v reader_password="$POLYFARM_READER_PASSWORD" <<'SQL'
CREATE ROLE polyfarm_reader LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT
    PASSWORD :'reader_password';
ALTER ROLE polyfarm_reader SET default_transaction_read_only = on;
SQL
