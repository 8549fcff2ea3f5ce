#!/bin/sh
# Run by the compose service `postgres-init` on every `docker compose up`, once PostgreSQL is
# healthy. Ensures the read-only role Grafana's PostgreSQL datasource (uid "postgres") logs in
# with, for the DLQ panels of the Alert Delivery dashboard.
#
# Least privilege: the role may read the two views of schema `reporting` (migration 007:
# reporting.dlq_summary, reporting.dlq_latest) and nothing else — no table of schema public
# (alerts hold webhook secrets, api_keys key hashes, users emails). A view runs with its owner's
# rights, so the role needs no grant on the tables behind the views.
#
# Idempotent, and it converges: every run first takes back what older versions of this script
# granted (SELECT on every table of schema public, and the ALTER DEFAULT PRIVILEGES that granted
# it on future tables), then grants the views. It may run before vigil's migrations have created
# the views (a first `up`: vigil migrates when it starts): it then grants what exists, and
# migration 008 grants the views to the role when it runs (a no-op where the role does not
# exist). Either order ends with the same grants. `create or replace view` keeps them; a later
# migration that drops and re-creates a view must grant it again (the next `up` also does).
#
# The role can read, never write: SELECT only, and every transaction is read-only. Everything
# runs in one transaction, so the role never has more (or less) than one of the two states.
#
# Environment: PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE (libpq), GRAFANA_DB_PASSWORD.
set -eu
reader=vigil_grafana

if [ -z "${GRAFANA_DB_PASSWORD:-}" ]; then
  echo "postgres-init: warning: GRAFANA_DB_PASSWORD is not set; $reader cannot log in (see .env.example)" >&2
  login=NOLOGIN
else
  login=LOGIN
fi

psql -v ON_ERROR_STOP=1 -X -q -1 \
  -v reader="$reader" \
  -v login="$login" \
  -v password="${GRAFANA_DB_PASSWORD:-}" \
  -v owner="$PGUSER" \
  -v dbname="$PGDATABASE" <<'SQL'
SELECT format('CREATE ROLE %I', :'reader')
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'reader')
\gexec
ALTER ROLE :"reader" WITH :login NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS
  NOINHERIT CONNECTION LIMIT 5 PASSWORD :'password';
ALTER ROLE :"reader" SET default_transaction_read_only = on;
ALTER ROLE :"reader" SET statement_timeout = '10s';
GRANT CONNECT ON DATABASE :"dbname" TO :"reader";

-- What older versions granted: every table of schema public, now and in the future.
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner" IN SCHEMA public REVOKE ALL ON TABLES FROM :"reader";
REVOKE ALL ON ALL TABLES IN SCHEMA public FROM :"reader";
REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM :"reader";
REVOKE ALL ON SCHEMA public FROM :"reader";

-- The reporting views, as far as vigil's migrations have created them (else migration 008
-- grants them when it runs); nothing else in the schema.
SELECT format('REVOKE ALL ON ALL TABLES IN SCHEMA reporting FROM %I', :'reader'),
       format('GRANT USAGE ON SCHEMA reporting TO %I', :'reader')
 WHERE to_regnamespace('reporting') IS NOT NULL
\gexec
SELECT format('GRANT SELECT ON %s TO %I', v, :'reader')
  FROM unnest(ARRAY['reporting.dlq_summary', 'reporting.dlq_latest']) AS v
 WHERE to_regclass(v) IS NOT NULL
\gexec
SQL
echo "postgres-init: role $reader ready ($login, SELECT on reporting.dlq_summary and reporting.dlq_latest only)"
