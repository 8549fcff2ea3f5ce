#!/bin/sh
# Run by the compose service `postgres-init` on every `docker compose up`, once PostgreSQL is
# healthy. Ensures the read-only role Grafana's PostgreSQL datasource (uid "postgres") logs in
# with, for the "latest DLQ rows" table of the Alert Delivery dashboard. Idempotent: it also
# applies a changed GRAFANA_DB_PASSWORD and works on an existing data volume.
#
# vigil creates its tables with its own migrations, after this may have run, so the grant on
# future tables is made with ALTER DEFAULT PRIVILEGES (tables created by the vigil role), and
# the tables that already exist get a plain GRANT. The role can read, never write: SELECT only,
# and every transaction is read-only.
#
# Environment: PGHOST, PGUSER, PGPASSWORD, PGDATABASE (libpq), GRAFANA_DB_PASSWORD.
set -eu
reader=vigil_grafana

if [ -z "${GRAFANA_DB_PASSWORD:-}" ]; then
  echo "postgres-init: warning: GRAFANA_DB_PASSWORD is not set; $reader cannot log in (see .env.example)" >&2
  login=NOLOGIN
else
  login=LOGIN
fi

psql -v ON_ERROR_STOP=1 -X -q \
  -v reader="$reader" \
  -v login="$login" \
  -v password="${GRAFANA_DB_PASSWORD:-}" \
  -v owner="$PGUSER" \
  -v dbname="$PGDATABASE" <<'SQL'
SELECT format('CREATE ROLE %I', :'reader')
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'reader')
\gexec
ALTER ROLE :"reader" WITH :login NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS
  CONNECTION LIMIT 5 PASSWORD :'password';
ALTER ROLE :"reader" SET default_transaction_read_only = on;
ALTER ROLE :"reader" SET statement_timeout = '10s';
GRANT CONNECT ON DATABASE :"dbname" TO :"reader";
GRANT USAGE ON SCHEMA public TO :"reader";
GRANT SELECT ON ALL TABLES IN SCHEMA public TO :"reader";
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner" IN SCHEMA public GRANT SELECT ON TABLES TO :"reader";
SQL
echo "postgres-init: role $reader ready ($login, SELECT on schema public)"
