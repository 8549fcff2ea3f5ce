/**
 * One postgres.js pool for the whole process: against DATABASE_URL, or against the embedded
 * PGlite server when it is unset.
 */
import postgres from "postgres";
import type { Config } from "../config.ts";
import { EMBEDDED_POOL_SIZE, startEmbeddedPostgres } from "./embedded.ts";

export type Sql = postgres.Sql;
export type TransactionSql = postgres.TransactionSql;
/** Either the pool or a transaction: store functions accept both. */
export type Queryable = Sql | TransactionSql;

export interface Database {
  sql: Sql;
  kind: "postgres" | "embedded";
  close(): Promise<void>;
}

function options(
  timeoutMs: number,
  applicationName: string,
): postgres.Options<Record<string, never>> {
  return {
    onnotice: () => {}, // "relation already exists, skipping" and friends are not news
    idle_timeout: 30,
    // A database that is away fails requests fast (503) instead of holding them.
    connect_timeout: Math.max(1, Math.ceil(timeoutMs / 1000)),
    // postgres.js waits up to 20 s between reconnect attempts (3^n / 100 s), and queued queries
    // wait with it: capped at half a second, a stopped database fails requests in about that.
    backoff: (retries: number) => Math.min(0.05 * 2 ** retries, 0.5),
    connection: {
      // One name per replica: the database monitor reads this replica's connections by it.
      application_name: applicationName.slice(0, 63),
      // The server stops a statement the client has given up on (instrumented_sql.ts's
      // deadline is the same), so an abandoned statement does not hold locks or a backend.
      statement_timeout: timeoutMs,
    },
  };
}

export async function openDatabase(
  config: Pick<Config, "DATABASE_URL" | "DATA_DIR" | "DB_POOL_SIZE" | "DB_TIMEOUT_MS">,
  applicationName = "vigil",
): Promise<Database> {
  const COMMON = options(config.DB_TIMEOUT_MS, applicationName);
  if (config.DATABASE_URL) {
    const sql = postgres(config.DATABASE_URL, { ...COMMON, max: config.DB_POOL_SIZE });
    return { sql, kind: "postgres", close: () => sql.end({ timeout: 5 }) };
  }
  const embedded = await startEmbeddedPostgres(config.DATA_DIR);
  const sql = postgres({
    ...COMMON,
    host: embedded.host,
    port: embedded.port,
    user: "postgres",
    database: "postgres",
    max: EMBEDDED_POOL_SIZE,
  });
  return {
    sql,
    kind: "embedded",
    async close() {
      await sql.end({ timeout: 5 });
      await embedded.stop();
    },
  };
}
