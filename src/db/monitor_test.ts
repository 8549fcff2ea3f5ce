import postgres from "postgres";
import { assertEquals } from "../../tests/support/assert.ts";
import { realPostgres, testDatabase } from "../../tests/support/database.ts";
import { rootLogger } from "../observability/logger.ts";
import { createMetrics } from "../observability/metrics.ts";
import { DatabaseMonitor } from "./monitor.ts";
import { trackTransactions } from "./pool_stats.ts";

const gauge = async (
  metric: { get(): Promise<{ values: { labels: object; value: number }[] }> },
  labels = {},
) =>
  (await metric.get()).values.find((v) => JSON.stringify(v.labels) === JSON.stringify(labels))
    ?.value;

Deno.test({
  name: "database monitor: the pool's connections by state, its size and waiting transactions",
  ignore: !realPostgres,
}, async () => {
  await using db = await testDatabase();
  const sql = postgres(db.url, {
    max: 2,
    onnotice: () => {},
    connection: { application_name: `vigil-test-${crypto.randomUUID()}` },
  });
  const metrics = createMetrics();
  const pool = trackTransactions(sql);
  const monitor = new DatabaseMonitor({
    sql,
    metrics,
    logger: rootLogger,
    timeoutMs: 2000,
    dlqCounts: () => Promise.resolve({ pending: 0, exhausted: 0, uncertain: 0 }),
    pool,
    poolMax: 2,
  });
  try {
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let opened!: () => void;
    const open = new Promise<void>((r) => (opened = r));
    const transaction = sql.begin(async (tx) => {
      await tx`select 1`;
      opened();
      await held; // idle in transaction: in use, as far as the pool goes
    });
    await open;
    const waitingOne = sql.begin((tx) => tx`select 2`); // gets the second connection
    await waitingOne;
    await monitor.refresh();
    assertEquals(await gauge(metrics.databaseUp), 1);
    assertEquals(await gauge(metrics.databasePoolMax), 2);
    assertEquals(await gauge(metrics.databaseConnections, { state: "in_use" }), 1);
    assertEquals(await gauge(metrics.databaseConnections, { state: "idle" }), 1);
    assertEquals(await gauge(metrics.databaseTransactionsWaiting), 0);
    release();
    await transaction;
    await monitor.refresh();
    assertEquals(await gauge(metrics.databaseConnections, { state: "in_use" }), 0);
    assertEquals(await gauge(metrics.databaseConnections, { state: "idle" }), 2);
  } finally {
    monitor.stop();
    await sql.end();
  }
});
