/**
 * Measurements made inside the bench process, on vigil's own services against the bench
 * database: orchestrator cost per step, alert firing throughput, DLQ drain throughput.
 */
import postgres from "postgres";
import { z } from "zod";
import { evaluateDueAlerts } from "../src/alerts/evaluate_job.ts";
import { capability } from "../src/agents/types.ts";
import { systemClock } from "../src/clock.ts";
import { loadConfig } from "../src/config.ts";
import type { Sql } from "../src/db/database.ts";
import { rootLogger } from "../src/observability/logger.ts";
import { createMetrics } from "../src/observability/metrics.ts";
import { setupTracing } from "../src/observability/tracing.ts";
import { PatternDefinitionSchema } from "../src/patterns/definition.ts";
import { createServices } from "../src/services.ts";
import { statusData } from "../src/status/data.ts";
import { renderStatusPage } from "../src/status/page.tsx";
import { statusRoutes } from "../src/status/routes.ts";

export function services(sql: Sql) {
  const config = loadConfig({ VIGIL_ENV: "production", DB_POOL_SIZE: "10" });
  return createServices({
    config,
    sql,
    clock: systemClock,
    logger: rootLogger,
    metrics: createMetrics(),
    tracer: setupTracing(config).tracer,
  });
}

/** Least-squares slope of y over x. */
export function slope(points: [number, number][]): number {
  const n = points.length;
  const mx = points.reduce((a, [x]) => a + x, 0) / n;
  const my = points.reduce((a, [, y]) => a + y, 0) / n;
  const num = points.reduce((a, [x, y]) => a + (x - mx) * (y - my), 0);
  const den = points.reduce((a, [x]) => a + (x - mx) ** 2, 0);
  return num / den;
}

/** Orchestrator cost per step, in µs: runs of 1, 10 and 50 no-op steps (no HTTP, no storage). */
export async function stepOverheadUs(
  sql: Sql,
): Promise<{ slope: number; perSize: Record<number, number> }> {
  const { runtime, orchestrator } = services(sql);
  runtime.register({
    name: "bench",
    kind: "builtin",
    timeoutMs: 1000,
    capabilities: [
      capability({
        name: "bench.noop",
        description: "Returns its argument.",
        args: z.object({ i: z.number() }),
        handler: (args) => Promise.resolve(args.i),
      }),
    ],
  });
  const perSize: Record<number, number> = {};
  for (const size of [1, 10, 50]) {
    const definition = {
      ...PatternDefinitionSchema.parse({
        id: `noop-${size}`,
        steps: Array.from(
          { length: size },
          (_, i) => ({ capability: "bench.noop", args: { i }, as: `s${i}` }),
        ),
      }),
      version: 1,
    };
    const run = () => orchestrator.run({ definition, inputs: {}, userId: null });
    for (let i = 0; i < 200; i++) await run(); // warm up the JIT
    const iterations = Math.max(200, Math.floor(20_000 / size));
    const started = performance.now();
    for (let i = 0; i < iterations; i++) await run();
    perSize[size] = ((performance.now() - started) * 1000) / iterations;
  }
  return { slope: slope(Object.entries(perSize).map(([k, v]) => [Number(k), v])), perSize };
}

async function benchUser(sql: Sql): Promise<string> {
  const [user] = await sql<{ id: string }[]>`
    insert into users (email, name, created_at) values (${`bench-${crypto.randomUUID()}@example.com`}, 'Bench', now())
    returning id`;
  return user.id;
}

/** `count` alerts that match (data.compare 2 > 1), in-app only, all due now. */
export async function seedAlerts(sql: Sql, count: number): Promise<void> {
  const userId = await benchUser(sql);
  await sql`
    insert into alerts (user_id, name, condition, channels, next_eval_at, created_at, updated_at)
    select ${userId}, 'bench ' || i,
           ${
    sql.json({
      capability: "data.compare",
      args: { value: 2, op: ">", threshold: 1 },
      path: "result",
      op: "==",
      threshold: true,
    })
  },
           ${sql.json({ inapp: true, email: false })}, now() - interval '1 minute', now(), now()
    from generate_series(1, ${count}) as i`;
}

/**
 * Alerts fired → in-app notifications delivered, per second (the evaluation job, in process).
 * `checkResults: false` leaves the uptime history out (the baseline of its cost).
 */
export async function alertFirePerSecond(
  url: string,
  count: number,
  options: { checkResults?: boolean } = {},
): Promise<number> {
  const sql = postgres(url, { max: 10, onnotice: () => {} });
  try {
    await sql`truncate alerts, alert_deliveries, notifications, alert_dlq, delivery_attempts cascade`;
    await seedAlerts(sql, count);
    const app = services(sql);
    if (options.checkResults === false) app.evaluator.record = () => Promise.resolve();
    const started = performance.now();
    const result = await evaluateDueAlerts(app, new Date());
    const seconds = (performance.now() - started) / 1000;
    const [{ n }] = await sql<{ n: number }[]>`select count(*)::int as n from notifications`;
    if (result.fired !== count || n !== count) {
      throw new Error(`expected ${count} firings and notifications, got ${result.fired} and ${n}`);
    }
    return count / seconds;
  } finally {
    await sql.end();
  }
}

/** DLQ rows retried successfully per second by `workers` concurrent workers; and duplicates. */
export async function dlqDrain(
  url: string,
  count: number,
  workers: number,
): Promise<{ rowsPerSecond: number; duplicates: number }> {
  const seedSql = postgres(url, { max: 10, onnotice: () => {} });
  const pools = Array.from(
    { length: workers },
    () => postgres(url, { max: 10, onnotice: () => {} }),
  );
  try {
    await seedDlq(seedSql, count);
    const dispatchers = pools.map((sql) => services(sql).dispatcher);
    const started = performance.now();
    const outcomes = await Promise.all(dispatchers.map((d) => d.retryDue()));
    const seconds = (performance.now() - started) / 1000;
    const delivered = outcomes.flat().filter((o) => o.status === "delivered").length;
    const [{ left }] = await seedSql<
      { left: number }[]
    >`select count(*)::int as left from alert_dlq`;
    if (delivered !== count || left !== 0) {
      throw new Error(`drained ${delivered} of ${count}, ${left} left`);
    }
    const [{ duplicates }] = await seedSql<{ duplicates: number }[]>`
      select (select count(*) from delivery_attempts where outcome = 'delivered')
           - (select count(distinct delivery_id) from delivery_attempts where outcome = 'delivered')
           + (select count(*) from notifications) - (select count(distinct delivery_id) from notifications)
           as duplicates`;
    return { rowsPerSecond: count / seconds, duplicates: Number(duplicates) };
  } finally {
    await Promise.all([seedSql.end(), ...pools.map((p) => p.end())]);
  }
}

/**
 * GET /status with `count` public alerts and 90 days of history each: the p99 of requests from 8
 * clients for 3 s while the cache recomputes every 200 ms (in the background: stale while
 * revalidating), beside the p99 of one uncached computation (its five statements and render).
 */
export async function statusPageP99(
  url: string,
  count: number,
  samples = 40,
): Promise<
  { p99Ms: number; computeP99Ms: number; renderP99Ms: number; bytes: number; gzipBytes: number }
> {
  const sql = postgres(url, { max: 4, onnotice: () => {} });
  try {
    await sql`truncate alerts, alert_episodes, check_results, check_rollups cascade`;
    const userId = await benchUser(sql);
    const now = new Date();
    await sql`
      insert into alerts (user_id, name, condition, next_eval_at, created_at, updated_at, public,
                          labels, enabled)
      select ${userId}, 'check ' || i, '{}', now(), now(), now(), true,
             jsonb_build_object('group', 'group ' || (i % 5)), false
      from generate_series(1, ${count}) as i`;
    // 90 daily and 24 hourly rollups per alert; every tenth alert firing, with an episode.
    await sql`
      insert into check_rollups (alert_id, period, bucket, evaluations, ok, latency_min_ms,
                                 latency_max_ms, latency_sum_ms, latency_buckets)
      select a.id, p.period, p.bucket, 1440, 1440 - (random() * 5)::int, 5, 900, 1440 * 40,
             '{0,100,800,400,100,30,8,2,0,0,0,0}'
      from alerts a cross join lateral (
        select 'day' as period, date_trunc('day', ${now}::timestamptz at time zone 'UTC')
                 at time zone 'UTC' - d * interval '1 day' as bucket
        from generate_series(0, 89) as d
        union all
        select 'hour', date_trunc('hour', ${now}::timestamptz) - h * interval '1 hour'
        from generate_series(0, 23) as h
      ) p`;
    await sql`
      with firing as (
        select id, user_id from alerts where (substring(name from 7))::int % 10 = 0
      ), opened as (
        insert into alert_episodes (id, alert_id, user_id, started_at)
        select gen_random_uuid(), id, user_id, now() - interval '12 minutes' from firing
        returning id, alert_id
      )
      update alerts a set state = 'firing', episode_id = o.id from opened o
      where a.id = o.alert_id`;
    const config = { STATUS_PAGE_TITLE: "bench status", STATUS_PAGE_DESCRIPTION: undefined };
    const p99 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.ceil(xs.length * 0.99) - 1];
    const compute: number[] = [];
    const render: number[] = [];
    let bytes = 0;
    for (let i = 0; i < samples; i++) {
      const started = performance.now();
      const data = await statusData(sql as unknown as Sql, new Date(), config);
      const rendering = performance.now();
      bytes = renderStatusPage(data).length;
      const done = performance.now();
      compute.push(done - started);
      render.push(done - rendering);
    }
    const routes = statusRoutes({
      sql: sql as unknown as Sql,
      clock: systemClock,
      config,
      cacheMs: 200,
    });
    await (await routes.request("/status")).text(); // warm
    const served: number[] = [];
    const until = performance.now() + 3000;
    await Promise.all(Array.from({ length: 8 }, async () => {
      while (performance.now() < until) {
        const started = performance.now();
        const res = await routes.request("/status");
        await res.text();
        served.push(performance.now() - started);
      }
    }));
    const gzipped = await routes.request("/status", { headers: { "accept-encoding": "gzip" } });
    const gzipBytes = (await gzipped.arrayBuffer()).byteLength;
    return {
      p99Ms: p99(served),
      computeP99Ms: p99(compute),
      renderP99Ms: p99(render),
      bytes,
      gzipBytes,
    };
  } finally {
    await sql.end();
  }
}

/**
 * `count` DLQ rows that the retry job leaves alone: two thirds exhausted, a third pending but
 * due only tomorrow (a queue at rest, as a scrape sees it). Replaces what the DLQ held.
 */
export async function seedWaitingDlq(sql: Sql, count: number): Promise<void> {
  await sql`truncate alert_deliveries, notifications, alert_dlq, delivery_attempts cascade`;
  const userId = await benchUser(sql);
  await sql`
    with d as (
      insert into alert_deliveries (id, user_id, channel, content_hash, payload, status, attempts,
                                    created_at)
      select gen_random_uuid(), ${userId}, 'inapp', md5(i::text), '{}',
             case when i % 3 = 0 then 'failed' else 'exhausted' end, 1, now()
      from generate_series(1, ${count}) as i
      returning id, status
    )
    insert into alert_dlq (delivery_id, error_message, retry_count, next_retry_at, state,
                           created_at)
    select id, 'bench', 1,
           case when status = 'failed' then now() + interval '1 day' end,
           case when status = 'failed' then 'pending' else 'exhausted' end, now()
    from d`;
  await sql`analyze alert_deliveries, alert_dlq`;
}

/**
 * `count` failed in-app deliveries whose DLQ rows are due now, written `slice` at a time: one
 * statement of a million rows and their foreign-key checks takes many times ten of a hundred
 * thousand (the checks lock every referenced row of a table larger than shared_buffers).
 */
export async function seedDlq(sql: Sql, count: number, slice = 50_000): Promise<void> {
  await sql`truncate alerts, alert_deliveries, notifications, alert_dlq, delivery_attempts cascade`;
  const userId = await benchUser(sql);
  const payload = {
    type: "alert.fired",
    source: "rule",
    title: "bench",
    message: "bench",
    alert: null,
    fired_at: new Date().toISOString(),
  };
  for (let from = 1; from <= count; from += slice) {
    const to = Math.min(count, from + slice - 1);
    await sql`
      with d as (
        insert into alert_deliveries (id, user_id, channel, content_hash, payload, status,
                                      attempts, created_at)
        select gen_random_uuid(), ${userId}, 'inapp', md5(i::text), ${sql.json(payload)},
               'failed', 1, now()
        from generate_series(${from}::int, ${to}::int) as i
        returning id
      )
      insert into alert_dlq (delivery_id, error_message, retry_count, next_retry_at, state,
                             created_at)
      select id, 'bench', 0, now() - interval '1 minute', 'pending', now() from d`;
  }
  await sql`analyze alert_deliveries, alert_dlq`; // as autovacuum would have, in time
}
