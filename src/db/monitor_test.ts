import postgres from "postgres";
import { assertEquals } from "../../tests/support/assert.ts";
import { realPostgres, testDatabase } from "../../tests/support/database.ts";
import { dlqCounts } from "../delivery/store.ts";
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

Deno.test("database monitor: alert_dlq_entries from the kept counts, never by reading the queue", async () => {
  await using db = await testDatabase();
  const { sql } = db;
  const [user] = await sql<{ id: string }[]>`
    insert into users (email, name, created_at) values ('monitor@example.com', 'M', now())
    returning id`;
  await sql`
    with d as (
      insert into alert_deliveries (id, user_id, channel, content_hash, payload, status, attempts,
                                    created_at)
      select gen_random_uuid(), ${user.id}, 'inapp', md5(i::text), '{}', 'failed', 1, now()
      from generate_series(1, 2000) as i
      returning id
    )
    insert into alert_dlq (delivery_id, error_message, retry_count, next_retry_at, state,
                           created_at)
    select id, 'x', 0, now(), case when random() < 0.3 then 'exhausted' else 'pending' end, now()
    from d`;
  await sql`update alert_dlq set state = 'uncertain'
            where id in (select id from alert_dlq where state = 'pending' limit 7)`;
  // Every statement the monitor's read sends, as written.
  const statements: string[] = [];
  const spy = ((strings: TemplateStringsArray, ...values: unknown[]) => {
    statements.push(strings.join("$"));
    return (sql as unknown as (s: TemplateStringsArray, ...v: unknown[]) => unknown)(
      strings,
      ...values,
    );
  }) as unknown as typeof sql;
  const metrics = createMetrics();
  const monitor = new DatabaseMonitor({
    sql,
    metrics,
    logger: rootLogger,
    timeoutMs: 2000,
    dlqCounts: () => dlqCounts(spy, 0),
    poolMax: 10,
  });
  await monitor.refresh();
  const expected = await sql<{ state: string; n: number }[]>`
    select state, count(*)::int as n from alert_dlq group by state`;
  for (const { state, n } of expected) {
    assertEquals(await gauge(metrics.dlqEntries, { state }), n, state);
  }
  assertEquals(expected.length, 3);
  assertEquals(statements.length, 2, "a read, then a fold (threshold 0)");
  for (const s of statements) {
    assertEquals(/\balert_dlq\b(?!_counts)/.test(s), false, `reads the queue: ${s}`);
  }
});
