/**
 * The DLQ drain's baseline: pg-boss, a well-kept PostgreSQL job queue (SKIP LOCKED claims, like
 * vigil's), draining no-op jobs on the same PostgreSQL. One worker fetches a batch (the size
 * vigil's retry job claims) and completes it, until the queue is empty: jobs/s.
 *
 * pg-boss lives in a schema of its own (created here, dropped afterwards), so it shares the
 * server, the database and its settings with vigil's DLQ, not its tables. Its maintenance and
 * cron loops are off: the drain measures the claim and the completion, nothing in the background.
 *
 * Standalone: `deno run -A bench/pgboss.ts [jobs]` (a throwaway durable cluster unless
 * DATABASE_URL is set).
 */
import { PgBoss } from "pg-boss";
import postgres from "postgres";
import { loadConfig } from "../src/config.ts";

/** The retry job's batch: vigil's default `DELIVERY_BATCH_SIZE`. */
export function dlqBatchSize(): number {
  return loadConfig({}).DELIVERY_BATCH_SIZE;
}

export interface PgBossDrain {
  jobsPerSecond: number;
  /** Batches fetched (each one fetch and one complete). */
  batches: number;
}

/** `count` no-op jobs queued, then drained by one worker `batchSize` at a time. */
export async function pgbossDrain(
  url: string,
  count: number,
  batchSize = dlqBatchSize(),
): Promise<PgBossDrain> {
  const schema = `pgboss_bench_${crypto.randomUUID().replaceAll("-", "").slice(0, 12)}`;
  const queue = "bench";
  const boss = new PgBoss({
    connectionString: url,
    schema,
    max: 10,
    supervise: false,
    schedule: false,
    migrate: true,
  });
  const errors: unknown[] = [];
  boss.on("error", (error: unknown) => errors.push(error));
  await boss.start();
  try {
    await boss.createQueue(queue);
    // Seeded in slices: one insert of a million jobs is one huge parameter.
    for (let done = 0; done < count; done += 10_000) {
      const n = Math.min(10_000, count - done);
      await boss.insert(queue, Array.from({ length: n }, (_, i) => ({ data: { i: done + i } })));
    }
    let drained = 0;
    let batches = 0;
    const started = performance.now();
    while (true) {
      const jobs = await boss.fetch(queue, { batchSize });
      if (jobs.length === 0) break;
      await boss.complete(queue, jobs.map((j) => j.id));
      drained += jobs.length;
      batches++;
    }
    const seconds = (performance.now() - started) / 1000;
    if (drained !== count) throw new Error(`pg-boss drained ${drained} of ${count} jobs`);
    if (errors.length > 0) throw errors[0];
    return { jobsPerSecond: count / seconds, batches };
  } finally {
    await boss.stop({ graceful: false, close: true });
    const sql = postgres(url, { max: 1, onnotice: () => {} });
    await sql`drop schema if exists ${sql(schema)} cascade`.catch(() => {});
    await sql.end();
  }
}

if (import.meta.main) {
  const { startCluster } = await import("../tests/support/cluster.ts");
  const count = Number(Deno.args[0] ?? 10_000);
  let url = Deno.env.get("DATABASE_URL");
  const cluster = url
    ? undefined
    : await startCluster({ durable: true, prefix: "vigil-pgboss-pg-" });
  url ??= cluster!.url;
  try {
    const batch = dlqBatchSize();
    for (let i = 0; i < 3; i++) {
      const r = await pgbossDrain(url, count, batch);
      Deno.stdout.writeSync(new TextEncoder().encode(
        `pg-boss: ${count} jobs, batch ${batch}, one worker: ${
          Math.round(r.jobsPerSecond)
        } jobs/s ` +
          `(${r.batches} batches)\n`,
      ));
    }
  } finally {
    cluster?.stop();
  }
}
