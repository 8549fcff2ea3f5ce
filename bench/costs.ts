/**
 * What one unit of work costs the database, measured (for README "Scale-out on paper"): the
 * transactions, rows written and WAL bytes of N items of each kind, from pg_stat_database and
 * pg_current_wal_lsn() deltas around the work, divided by N. The database is this bench's own
 * (nothing else writes to it meanwhile; autovacuum's writes may add a little).
 *
 * - `evaluation_quiet`: an alert evaluated that does not match (the steady state);
 * - `evaluation_firing`: an alert that fires (episode, events, outbox, in-app notification);
 * - `pattern_run`: a 3-step in-process pattern run through the group writer, 64 concurrent;
 * - `delivery_retry`: a failed in-app delivery retried from the DLQ and delivered.
 *
 * Run alone: `deno run -A --unstable-cron bench/costs.ts` (starts its own cluster).
 */
import postgres from "postgres";
import { evaluateDueAlerts } from "../src/alerts/evaluate_job.ts";
import type { Sql } from "../src/db/database.ts";
import { seedAlerts, seedDlq, services } from "./in_process.ts";

export interface ItemCost {
  items: number;
  transactions_per_item: number;
  rows_written_per_item: number;
  wal_bytes_per_item: number;
  /** One vigil process (this one), on this database. */
  items_per_s: number;
}

type Raw = postgres.Sql;

async function counters(sql: Raw): Promise<{ xacts: number; rows: number; lsn: string }> {
  const [row] = await sql<{ xacts: string; rows: string; lsn: string }[]>`
    select xact_commit + xact_rollback as xacts,
           tup_inserted + tup_updated + tup_deleted as rows,
           pg_current_wal_lsn()::text as lsn
    from pg_stat_database where datname = current_database()`;
  return { xacts: Number(row.xacts), rows: Number(row.rows), lsn: row.lsn };
}

/**
 * The cost of `work` (which makes `items` items) per item. The work runs on a pool of its own,
 * closed before the counters are read again: a backend's statistics are certain to reach
 * pg_stat_database only when it exits (idle backends flush them up to 10 s late).
 */
async function measure(
  url: string,
  sql: Raw,
  items: number,
  work: (app: ReturnType<typeof services>) => Promise<void>,
): Promise<ItemCost> {
  const settle = async () => {
    await new Promise((r) => setTimeout(r, 300));
    await sql`select pg_stat_clear_snapshot()`;
  };
  await settle();
  const before = await counters(sql);
  const pool = postgres(url, { max: 10, onnotice: () => {} });
  let seconds = 0;
  try {
    const app = services(pool as unknown as Sql);
    const started = performance.now();
    await work(app);
    seconds = (performance.now() - started) / 1000;
  } finally {
    await pool.end();
  }
  await settle();
  const after = await counters(sql);
  const [{ bytes }] = await sql<{ bytes: string }[]>`
    select pg_wal_lsn_diff(${after.lsn}, ${before.lsn}) as bytes`;
  const round = (x: number) => Math.round(x * 100) / 100;
  return {
    items,
    // The measuring connection's own: one counters read and one snapshot clear.
    transactions_per_item: round((after.xacts - before.xacts - 2) / items),
    rows_written_per_item: round((after.rows - before.rows) / items),
    wal_bytes_per_item: Math.round(Number(bytes) / items),
    items_per_s: Math.round(items / seconds),
  };
}

export async function itemCosts(url: string, n = 2000): Promise<Record<string, ItemCost>> {
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  try {
    const out: Record<string, ItemCost> = {};
    await sql`truncate alerts, alert_deliveries, notifications, alert_dlq, delivery_attempts,
                       check_results, check_rollups, pattern_runs cascade`;
    await seedAlerts(sql as unknown as Sql, n); // they match: the first evaluation fires
    out.evaluation_firing = await measure(url, sql, n, async (app) => {
      await evaluateDueAlerts(app, new Date());
    });
    // Resolved and quiet: ok, and not matching any more.
    await sql`update alerts set state = 'ok', episode_id = null, consecutive_failures = 0,
                                 condition = jsonb_set(condition, '{threshold}', 'false'),
                                 next_eval_at = now() - interval '1 minute'`;
    out.evaluation_quiet = await measure(url, sql, n, async (app) => {
      await evaluateDueAlerts(app, new Date());
    });

    const pattern = {
      id: "cost-3",
      inputs: { value: { type: "number" } },
      steps: [
        {
          capability: "data.compare",
          args: { value: "{{inputs.value}}", op: ">", threshold: 1 },
          as: "a",
        },
        { capability: "data.pick", args: { value: { x: "{{inputs.value}}" }, path: "x" }, as: "b" },
        { capability: "data.compare", args: { value: "{{b}}", op: "<", threshold: 9 }, as: "c" },
      ],
      outputs: { a: "{{a.result}}", c: "{{c.result}}" },
    };
    const setup = postgres(url, { max: 1, onnotice: () => {} });
    await services(setup as unknown as Sql).patterns.create(pattern as never).catch(() => {});
    await setup.end();
    out.pattern_run = await measure(url, sql, n, async (app) => {
      let next = 0;
      await Promise.all(Array.from({ length: 64 }, async () => {
        while (next++ < n) await app.patterns.run("cost-3", { value: 2 }, { userId: null });
      }));
    });

    await seedDlq(sql as unknown as Sql, n);
    out.delivery_retry = await measure(url, sql, n, async (app) => {
      await app.dispatcher.retryDue();
    });
    return out;
  } finally {
    await sql.end();
  }
}

if (import.meta.main) {
  const { startCluster } = await import("../tests/support/cluster.ts");
  const { migrate } = await import("../src/db/migrate.ts");
  const { setupLogging } = await import("../src/observability/logger.ts");
  setupLogging({ level: "error", sink: () => {} });
  const cluster = await startCluster({ durable: true, prefix: "vigil-costs-" });
  try {
    const sql = postgres(cluster.url, { onnotice: () => {} });
    await migrate(sql as unknown as Sql);
    await sql.end();
    // deno-lint-ignore no-console
    console.log(JSON.stringify(await itemCosts(cluster.url), null, 2));
  } finally {
    cluster.stop();
  }
}
