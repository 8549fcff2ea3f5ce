/**
 * Plain SQL migrations (`migrations/NNN_name.sql`), applied in order, each in its own
 * transaction and recorded in `schema_migrations`. Every transaction first takes a
 * transaction-scoped advisory lock, so processes starting together apply each file exactly once.
 */
import type { Logger } from "../observability/logger.ts";
import type { Sql } from "./database.ts";

export const MIGRATIONS_DIR = new URL("../../migrations/", import.meta.url);
const LOCK_KEY = 7_164_001; // arbitrary, constant: "vigil migrations"

export async function listMigrations(dir: URL = MIGRATIONS_DIR): Promise<string[]> {
  const names: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    if (entry.isFile && /^\d{3}_[a-z0-9_]+\.sql$/.test(entry.name)) names.push(entry.name);
  }
  return names.sort();
}

/** Applies pending migrations; returns the names this call applied. */
export async function migrate(
  sql: Sql,
  logger?: Logger,
  dir: URL = MIGRATIONS_DIR,
): Promise<string[]> {
  const applied: string[] = [];
  for (const name of await listMigrations(dir)) {
    const didApply = await sql.begin(async (tx) => {
      // A migration may take long, and so may waiting for another replica's.
      await tx`set local statement_timeout = 0`;
      await tx`select pg_advisory_xact_lock(${LOCK_KEY})`;
      await tx`
        create table if not exists schema_migrations (
          name text primary key,
          applied_at timestamptz not null default now()
        )`;
      const [done] = await tx`select 1 from schema_migrations where name = ${name}`;
      if (done) return false;
      // A migration file is trusted code from the repository, run as one simple-protocol batch.
      await tx.file(new URL(name, dir).pathname);
      await tx`insert into schema_migrations (name) values (${name})`;
      return true;
    });
    if (didApply) {
      applied.push(name);
      logger?.info("applied migration {name}", { name });
    }
  }
  return applied;
}
