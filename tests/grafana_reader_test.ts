/**
 * Grafana's database role (observability/compose/grafana-reader.sh, run with psql as compose's
 * postgres-init does) reads the two reporting views and nothing else: no table of schema public,
 * also after older versions of the script had granted them all; in either order of script and
 * migrations.
 */
import postgres from "postgres";
import { migrate } from "../src/db/migrate.ts";
import { createUser } from "../src/users/store.ts";
import { assert, assertEquals, assertMatch } from "./support/assert.ts";
import { which } from "./support/cluster.ts";
import { dbTest, realPostgres, type TestDatabase } from "./support/database.ts";

const SCRIPT = new URL("../observability/compose/grafana-reader.sh", import.meta.url).pathname;
const READER = "vigil_grafana";
const PASSWORD = "grafana-test-password";
const hasPsql = which("psql");

/** Runs the script against the test's database with the libpq variables it reads. */
async function runScript(db: TestDatabase): Promise<string> {
  const url = new URL(db.url);
  const out = await new Deno.Command("sh", {
    args: [SCRIPT],
    env: {
      PGHOST: url.hostname,
      PGPORT: url.port,
      PGUSER: decodeURIComponent(url.username),
      PGPASSWORD: decodeURIComponent(url.password),
      PGDATABASE: url.pathname.slice(1),
      GRAFANA_DB_PASSWORD: PASSWORD,
    },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  if (!out.success) throw new Error(`grafana-reader.sh failed: ${text}`);
  return text;
}

/** A connection as the reader, with its password. */
function asReader(db: TestDatabase) {
  const url = new URL(db.url);
  url.username = READER;
  url.password = PASSWORD;
  return postgres(url.toString(), { max: 1, onnotice: () => {} });
}

async function deniedOn(reader: postgres.Sql, table: string): Promise<void> {
  try {
    await reader`select * from ${reader(table)} limit 1`;
  } catch (error) {
    const e = error as { code?: string; message: string };
    assertEquals(e.code, "42501", `${table}: ${e.message}`);
    assertMatch(e.message, /^permission denied for (table|relation) /);
    return;
  }
  throw new Error(`${READER} can read ${table}`);
}

async function aDeadLetter(db: TestDatabase): Promise<void> {
  const { user } = await createUser(db.sql, {
    email: "ann@example.com",
    name: "Ann",
    role: "user",
    now: new Date(),
  });
  const [alert] = await db.sql`
    insert into alerts (user_id, name, condition, channels, next_eval_at, created_at, updated_at)
    values (${user.id}, 'reported', '{}', '{"inapp": true}', now(), now(), now()) returning id`;
  const [delivery] = await db.sql`
    insert into alert_deliveries (id, alert_id, user_id, channel, content_hash, payload, status,
                                  created_at)
    values (${crypto.randomUUID()}, ${alert.id}, ${user.id}, 'webhook', 'h', '{}', 'failed', now())
    returning id`;
  await db.sql`
    insert into alert_dlq (delivery_id, error_message, retry_count, next_retry_at, state, created_at)
    values (${delivery.id}, 'webhook answered HTTP 503', 0, now(), 'pending', now())`;
}

const skip = !hasPsql || !realPostgres;
const name = (n: string) => skip ? `${n} (skipped: needs psql and real PostgreSQL)` : n;

dbTest(
  name("grafana reader: the two reporting views, and permission denied on every table"),
  async (t, db) => {
    if (skip) return;
    await aDeadLetter(db);
    await t.step("what older versions granted (all of public, now and later)", async () => {
      await db.sql.unsafe(`
        do $$ begin
          if not exists (select from pg_roles where rolname = '${READER}') then
            create role ${READER} login;
          end if;
        end $$;
        grant usage on schema public to ${READER};
        grant select on all tables in schema public to ${READER};
        alter default privileges in schema public grant select on tables to ${READER};`);
    });
    const first = await runScript(db);
    assertMatch(first, /role vigil_grafana ready \(LOGIN, SELECT on reporting\.dlq_summary/);
    await runScript(db); // idempotent
    const reader = asReader(db);
    try {
      await t.step("it reads both views (through them, the tables behind)", async () => {
        const summary = await reader`select channel, state, entries from reporting.dlq_summary`;
        assertEquals(summary.map((r) => ({ ...r })), [
          { channel: "webhook", state: "pending", entries: "1" },
        ]);
        const latest = await reader`select alert, error from reporting.dlq_latest`;
        assertEquals(latest.map((r) => ({ ...r })), [
          { alert: "reported", error: "webhook answered HTTP 503" },
        ]);
      });
      await t.step("it reads no table of schema public", async () => {
        for (
          const table of ["alerts", "api_keys", "users", "alert_deliveries", "alert_dlq", "agents"]
        ) {
          await deniedOn(reader, table);
        }
      });
      await t.step("the old default privileges are gone: a new table is not readable", async () => {
        await db.sql`create table later_table (id int)`;
        await deniedOn(reader, "later_table");
      });
      await t.step("its privileges are exactly the two views", async () => {
        const rows = await db.sql<{ object: string; privilege: string }[]>`
          select table_schema || '.' || table_name as object, privilege_type as privilege
          from information_schema.role_table_grants
          where grantee = ${READER} order by 1, 2`;
        assertEquals(rows.map((r) => `${r.object} ${r.privilege}`), [
          "reporting.dlq_latest SELECT",
          "reporting.dlq_summary SELECT",
        ]);
      });
      await t.step("it cannot write (read-only transactions)", async () => {
        try {
          await reader`create temporary table nope (id int)`;
          throw new Error("the reader wrote");
        } catch (error) {
          assertEquals((error as { code?: string }).code, "25006"); // read_only_sql_transaction
        }
      });
    } finally {
      await reader.end();
    }
  },
  { realPostgresOnly: true },
);

dbTest(
  name("grafana reader: run before vigil's migrations, the views are granted when they appear"),
  async (_t, db) => {
    if (skip) return;
    const text = await runScript(db); // an empty database: no schema reporting yet
    assert(text.includes("ready"), text);
    await migrate(db.sql); // migration 008 grants the views to the existing role
    const reader = asReader(db);
    try {
      assertEquals((await reader`select * from reporting.dlq_summary`).length, 0);
      assertEquals((await reader`select * from reporting.dlq_latest`).length, 0);
      await deniedOn(reader, "alerts");
      await deniedOn(reader, "api_keys");
    } finally {
      await reader.end();
    }
  },
  { realPostgresOnly: true, empty: true },
);
