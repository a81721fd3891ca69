-- A read-only role for the monitoring API: it may read every table and view, now and later,
-- and write nothing. Creating a role needs CREATEROLE; where the migrating user lacks it (a
-- managed database), the block says so in a NOTICE and the operator creates the role.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'polyfarm_reader') THEN
        CREATE ROLE polyfarm_reader LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT;
    END IF;
EXCEPTION WHEN insufficient_privilege THEN
    RAISE NOTICE 'cannot create role polyfarm_reader (needs CREATEROLE); create it by hand';
END
$$;

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'polyfarm_reader') THEN
        EXECUTE format('GRANT CONNECT ON DATABASE %I TO polyfarm_reader', current_database());
        GRANT USAGE ON SCHEMA public TO polyfarm_reader;
        GRANT SELECT ON ALL TABLES IN SCHEMA public TO polyfarm_reader;
        ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO polyfarm_reader;
        ALTER ROLE polyfarm_reader SET default_transaction_read_only = on;
    END IF;
END
$$;
