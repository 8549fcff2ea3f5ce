/**
 * Isolated databases for tests.
 *
 * - `DATABASE_URL` set: that server.
 * - else `initdb` on PATH: a throwaway cluster (run as the `postgres` user when we are root) on a
 *   free port, started once per test process and removed when it exits.
 * - else: embedded PGlite.
 *
 * On a real server every test gets its own database, cloned from a migrated template (fast, and
 * nothing leaks between tests). On PGlite there is one database per process, emptied between
 * tests. Tests that prove concurrency guarantees run only on real PostgreSQL (`realPostgres`).
 */
import postgres from "postgres";
import { startEmbeddedPostgres } from "../../src/db/embedded.ts";
import type { Sql } from "../../src/db/database.ts";
import { migrate } from "../../src/db/migrate.ts";
import { startCluster, which } from "./cluster.ts";

export interface TestDatabase extends AsyncDisposable {
  sql: Sql;
  /** Connection URL, for processes started by the test. */
  url: string;
  kind: "postgres" | "embedded";
}

/** True when tests run against a real PostgreSQL server (concurrency tests need one). */
export const realPostgres: boolean = Deno.env.get("DATABASE_URL") !== undefined ||
  (which("initdb") && which("pg_ctl"));

const SILENT = { onnotice: () => {} } as const;

let server: Promise<string> | undefined;
let template: Promise<string> | undefined;

/**
 * A fresh database for one test, migrated unless `empty` (real PostgreSQL only); dispose it
 * (`await using`) when done.
 */
export async function testDatabase(options: { empty?: boolean } = {}): Promise<TestDatabase> {
  if (!realPostgres) {
    if (options.empty) throw new Error("an empty database needs real PostgreSQL");
    return await embeddedDatabase();
  }
  const adminUrl = await (server ??= startServer());
  const name = `vigil_t_${crypto.randomUUID().replaceAll("-", "").slice(0, 16)}`;
  const admin = postgres(adminUrl, { ...SILENT, max: 1 });
  try {
    if (options.empty) {
      await admin`create database ${admin(name)}`;
    } else {
      const tpl = await (template ??= createTemplate(adminUrl));
      await admin`create database ${admin(name)} template ${admin(tpl)}`;
    }
  } finally {
    await admin.end();
  }
  const url = withDatabase(adminUrl, name);
  const sql = postgres(url, { ...SILENT, max: 10 });
  return {
    sql,
    url,
    kind: "postgres",
    async [Symbol.asyncDispose]() {
      await sql.end({ timeout: 5 });
      const admin = postgres(adminUrl, { ...SILENT, max: 1 });
      try {
        await admin`drop database if exists ${admin(name)} with (force)`;
      } finally {
        await admin.end();
      }
    },
  };
}

function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

/**
 * The migrated template, named after the migrations' content so that a run against a long-lived
 * DATABASE_URL reuses it and a changed migration gets a new one.
 */
async function createTemplate(adminUrl: string): Promise<string> {
  const name = `vigil_tpl_${(await migrationsDigest()).slice(0, 16)}`;
  const admin = postgres(adminUrl, { ...SILENT, max: 1 });
  try {
    const [exists] = await admin`select 1 from pg_database where datname = ${name}`;
    if (exists) return name;
    const building = `${name}_${crypto.randomUUID().slice(0, 8)}`;
    await admin`create database ${admin(building)}`;
    const sql = postgres(withDatabase(adminUrl, building), { ...SILENT, max: 1 });
    try {
      await migrate(sql);
    } finally {
      await sql.end();
    }
    // Renamed only once complete: a half-built template is never used.
    await admin`alter database ${admin(building)} rename to ${admin(name)}`.catch(async () => {
      await admin`drop database if exists ${admin(building)}`; // another process won the race
    });
    return name;
  } finally {
    await admin.end();
  }
}

async function migrationsDigest(): Promise<string> {
  const dir = new URL("../../migrations/", import.meta.url);
  const names = [...Deno.readDirSync(dir)].map((e) => e.name).sort();
  let text = "";
  for (const n of names) text += n + "\n" + Deno.readTextFileSync(new URL(n, dir)) + "\n";
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

async function startServer(): Promise<string> {
  const url = Deno.env.get("DATABASE_URL");
  if (url) return url;
  return await startThrowawayCluster();
}

// `unload` listeners must be synchronous: the cluster is stopped with a blocking pg_ctl.
let stopCluster: (() => void) | undefined;
globalThis.addEventListener("unload", () => stopCluster?.());

async function startThrowawayCluster(): Promise<string> {
  const cluster = await startCluster({ durable: false, prefix: "vigil-test-pg-" });
  stopCluster = cluster.stop;
  return cluster.url;
}

// ---- embedded fallback -------------------------------------------------------------------

let embedded: Promise<{ url: string; sql: Sql }> | undefined;

async function embeddedDatabase(): Promise<TestDatabase> {
  const shared = await (embedded ??= (async () => {
    const pg = await startEmbeddedPostgres(undefined);
    const url = `postgres://postgres@${pg.host}:${pg.port}/postgres`;
    const sql = postgres(url, { ...SILENT, max: 1 });
    await migrate(sql);
    return { url, sql };
  })());
  await truncateAll(shared.sql);
  // The shared connection outlives the test: sanitizers must not count it.
  return {
    sql: shared.sql,
    url: shared.url,
    kind: "embedded",
    async [Symbol.asyncDispose]() {},
  };
}

async function truncateAll(sql: Sql): Promise<void> {
  const tables = await sql<{ name: string }[]>`
    select tablename as name from pg_tables
    where schemaname = 'public' and tablename <> 'schema_migrations'`;
  if (tables.length > 0) await sql`truncate ${sql(tables.map((t) => t.name))} cascade`;
}

/**
 * A test with its own database. Sanitizers are off: postgres.js keeps sockets and timers that
 * outlive a test by design (and the embedded fallback shares one connection).
 */
export function dbTest(
  name: string,
  fn: (t: Deno.TestContext, db: TestDatabase) => Promise<void>,
  options: { realPostgresOnly?: boolean; empty?: boolean } = {},
): void {
  const skip = options.realPostgresOnly && !realPostgres;
  Deno.test({
    name: skip ? `${name} (skipped: needs real PostgreSQL)` : name,
    ignore: skip,
    sanitizeResources: false,
    sanitizeOps: false,
    fn: async (t) => {
      await using db = await testDatabase({ empty: options.empty });
      await fn(t, db);
    },
  });
}
