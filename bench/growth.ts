/**
 * How cost grows: the cost per item of vigil's batch work at increasing sizes, in process on the
 * bench database. Each row should stay within 2× of linear: the cost per item at the largest size
 * at most twice the cost at the smallest.
 *
 * - alert_fire: alerts due at once → fired per second, and the evaluation job's duration;
 * - dlq_drain: due DLQ rows → drained per second by one worker, and the p99 of the retry job's
 *   claim statement itself (timed around the dispatcher's own query; each claims one batch, so it
 *   should not grow with the queue at all);
 * - scrape: series on /metrics → scrape p99, with every series changed between two scrapes (the
 *   worst case) and unchanged (a replica at rest);
 * - pattern_steps: steps per pattern → run p99 (PatternService.run: orchestrator and the run's
 *   record, 8 runs at a time).
 *
 * `--full` adds the largest sizes (100,000 alerts, 1,000,000 DLQ rows): minutes more.
 * Also here: `scrapeFigures`, the scrape p99 of a running vigil with ≥ 10,000 series and 300,000
 * DLQ rows, and a request's p99 with and without scrapes beside it.
 *
 * Standalone: `deno run -A --unstable-cron bench/growth.ts [--full|--small]`, or `--scrapes [rows]`
 * (a throwaway durable cluster unless DATABASE_URL is set).
 */
import postgres from "postgres";
import { freePort } from "../tests/support/cluster.ts";
import type { Sql } from "../src/db/database.ts";
import { createMetrics } from "../src/observability/metrics.ts";
import { metricsRoutes } from "../src/observability/routes.ts";
import { PatternDefinitionSchema } from "../src/patterns/definition.ts";
import { alertFirePerSecond, seedDlq, seedWaitingDlq, services } from "./in_process.ts";

export interface Sizes {
  alerts: number[];
  dlq: number[];
  series: number[];
  steps: number[];
}

export const DEFAULT_SIZES: Sizes = {
  alerts: [1_000, 10_000],
  dlq: [10_000, 100_000],
  series: [1_000, 10_000, 50_000],
  steps: [1, 10, 50],
};
export const FULL_SIZES: Sizes = {
  alerts: [1_000, 10_000, 100_000],
  dlq: [10_000, 100_000, 1_000_000],
  series: [1_000, 10_000, 50_000],
  steps: [1, 10, 50],
};
/** For a quick check of the module itself. */
export const SMALL_SIZES: Sizes = {
  alerts: [200, 1_000],
  dlq: [1_000, 5_000],
  series: [1_000, 5_000],
  steps: [1, 10],
};

export interface Growth {
  alert_fire: { size: number; per_s: number; job_ms: number }[];
  dlq_drain: { size: number; rows_per_s: number; claim_p99_ms: number; claims: number }[];
  scrape: { series: number; p99_ms: number; p99_ms_unchanged: number }[];
  pattern_steps: { steps: number; run_p99_ms: number; runs: number }[];
}

const round = (x: number, digits = 2) => Math.round(x * 10 ** digits) / 10 ** digits;
const p99 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.ceil(xs.length * 0.99) - 1];
const log = (line: string) => Deno.stderr.writeSync(new TextEncoder().encode(`growth: ${line}\n`));

/** Every figure of the table, measured at `sizes`. */
export async function growth(url: string, sizes: Sizes = DEFAULT_SIZES): Promise<Growth> {
  const result: Growth = { alert_fire: [], dlq_drain: [], scrape: [], pattern_steps: [] };
  for (const size of sizes.alerts) {
    log(`alerts: ${size} due at once`);
    const perS = await alertFirePerSecond(url, size);
    result.alert_fire.push({ size, per_s: round(perS, 0), job_ms: round((size / perS) * 1000, 1) });
  }
  for (const size of sizes.dlq) {
    log(`DLQ: ${size} due rows, one worker`);
    const r = await dlqDrainTimed(url, size);
    result.dlq_drain.push({
      size,
      rows_per_s: round(r.rowsPerSecond, 0),
      claim_p99_ms: round(r.claimP99Ms),
      claims: r.claims,
    });
  }
  for (const series of sizes.series) {
    log(`/metrics with ${series} series`);
    result.scrape.push({ series, ...await scrapeAt(series, series > 10_000 ? 40 : 100) });
  }
  const sql = postgres(url, { max: 10, onnotice: () => {} });
  try {
    for (const steps of sizes.steps) {
      log(`pattern runs of ${steps} steps`);
      result.pattern_steps.push({ steps, ...await patternRunP99(sql as unknown as Sql, steps) });
    }
  } finally {
    await sql.end();
  }
  return result;
}

/**
 * `count` due DLQ rows drained by one dispatcher; the claim statement timed from its start (the
 * query is lazy: it runs when the dispatcher awaits it, at once) to its rows.
 */
export async function dlqDrainTimed(
  url: string,
  count: number,
): Promise<{ rowsPerSecond: number; claimP99Ms: number; claims: number }> {
  const seedSql = postgres(url, { max: 10, onnotice: () => {} });
  const pool = postgres(url, { max: 10, onnotice: () => {} });
  const claims: number[] = [];
  // The pool as the dispatcher calls it (services() instruments this function in turn).
  const timed = new Proxy(pool, {
    apply(fn, self, args) {
      const query = Reflect.apply(fn, self, args);
      const strings = args[0] as TemplateStringsArray | undefined;
      if (Array.isArray(strings?.raw) && strings!.join("$").includes("update alert_dlq q")) {
        const started = performance.now();
        (query as Promise<unknown>).then(
          () => claims.push(performance.now() - started),
          () => {},
        );
      }
      return query;
    },
  });
  try {
    await seedDlq(seedSql as unknown as Sql, count);
    const { dispatcher } = services(timed as unknown as Sql);
    const started = performance.now();
    const outcomes = await dispatcher.retryDue();
    const seconds = (performance.now() - started) / 1000;
    const delivered = outcomes.filter((o) => o.status === "delivered").length;
    if (delivered !== count) throw new Error(`drained ${delivered} of ${count}`);
    if (claims.length === 0) throw new Error("the claim statement was not seen");
    return { rowsPerSecond: count / seconds, claimP99Ms: p99(claims), claims: claims.length };
  } finally {
    await Promise.all([seedSql.end(), pool.end()]);
  }
}

/**
 * GET /metrics (the route, in process) with `series` series, `samples` scrapes each way: after
 * every series changed (one observation each, outside the timing) and with nothing changed.
 */
export async function scrapeAt(
  series: number,
  samples = 100,
): Promise<{ p99_ms: number; p99_ms_unchanged: number }> {
  const metrics = createMetrics();
  const app = metricsRoutes({ metrics, open: true });
  const count = async () =>
    (await (await app.request("/metrics")).text()).split("\n")
      .filter((l) => l && !l.startsWith("#")).length;
  // Step histograms (17 series each: 14 buckets, +Inf, sum, count), as pattern runs make them.
  const perSet = 17;
  const sets = Math.max(0, Math.ceil((series - await count()) / perSet));
  const labels = Array.from({ length: sets }, (_, i) => ({
    pattern_id: `growth-${Math.floor(i / 5)}`,
    step_index: String(i % 5),
    capability: "data.compare",
  }));
  const touch = (k: number) => {
    for (const l of labels) metrics.stepDuration.observe(l, (k % 100) / 10_000);
  };
  touch(0);
  const scrape = async () => {
    const started = performance.now();
    await (await app.request("/metrics")).text();
    return performance.now() - started;
  };
  for (let i = 0; i < 5; i++) await scrape(); // warm up the JIT
  const changed: number[] = [];
  const unchanged: number[] = [];
  for (let i = 0; i < samples; i++) {
    touch(i + 1);
    changed.push(await scrape());
    unchanged.push(await scrape());
  }
  return { p99_ms: round(p99(changed)), p99_ms_unchanged: round(p99(unchanged)) };
}

/** Run p99 of a pattern of `steps` data.compare steps, 8 runs at a time for 2 s. */
export async function patternRunP99(
  sql: Sql,
  steps: number,
  seconds = 2,
): Promise<{ run_p99_ms: number; runs: number }> {
  const { patterns } = services(sql);
  const id = `growth-${steps}-${crypto.randomUUID().slice(0, 8)}`;
  await patterns.create(PatternDefinitionSchema.parse({
    id,
    steps: Array.from({ length: steps }, (_, i) => ({
      capability: "data.compare",
      args: { value: i, op: ">=", threshold: 0 },
      as: `s${i}`,
    })),
  }));
  try {
    const run = () => patterns.run(id, {}, { userId: null });
    for (let i = 0; i < 50; i++) await run(); // warm up
    const latencies: number[] = [];
    const until = performance.now() + seconds * 1000;
    await Promise.all(Array.from({ length: 8 }, async () => {
      while (performance.now() < until) {
        const started = performance.now();
        await run();
        latencies.push(performance.now() - started);
      }
    }));
    return { run_p99_ms: round(p99(latencies)), runs: latencies.length };
  } finally {
    await patterns.delete(id).catch(() => {});
  }
}

// ---- scrapes of a running vigil ----------------------------------------------------------

const ROOT = new URL("../", import.meta.url).pathname;
const SCRAPE_GAP_MS = 150;
const ADMIN_KEY = "vgl_" + "s".repeat(43);

export interface ScrapeFigures {
  /** p99 of 100 sequential scrapes, median of 3 runs. */
  metrics_scrape_p99_ms: number;
  metrics_scrape_series: number;
  metrics_scrape_dlq_rows: number;
  /** GET /health/live from 4 paced connections (pacedLoad, 3 s), median of 3 runs each way. */
  request_p99_without_scrapes_ms: number;
  /**
   * The same while one client scrapes /metrics again SCRAPE_GAP_MS after each answer (about 6 a
   * second: 90 times Prometheus' every 15 s, so that a few % of the requests meet a scrape).
   */
  request_p99_during_scrapes_ms: number;
  /** during − without: how long a scrape holds a request up. */
  scrape_blocking_ms: number;
  scrapes_during_requests: number;
}

/**
 * vigil as `deno task start` runs it, on `dbUrl` with `dlqRows` waiting DLQ rows and ≥ 10,000
 * series (160 three-step patterns run once each): the scrape p99, and a request's p99 with and
 * without scrapes running beside it.
 */
export async function scrapeFigures(
  dbUrl: string,
  { dlqRows = 300_000, otlpUrl }: { dlqRows?: number; otlpUrl?: string } = {},
): Promise<ScrapeFigures> {
  const sql = postgres(dbUrl, { max: 2, onnotice: () => {} });
  try {
    await seedWaitingDlq(sql as unknown as Sql, dlqRows);
  } finally {
    await sql.end();
  }
  const config = JSON.parse(Deno.readTextFileSync(`${ROOT}deno.json`));
  const [, ...args] = (config.tasks.start as string).split(/\s+/);
  const port = freePort();
  const vigil = new Deno.Command(Deno.execPath(), {
    args,
    cwd: ROOT,
    env: {
      NO_COLOR: "1",
      DATABASE_URL: dbUrl,
      HOST: "127.0.0.1",
      PORT: String(port),
      ADMIN_API_KEY: ADMIN_KEY,
      VIGIL_SECRET_KEY: btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(32)))),
      ...(otlpUrl ? { OTEL_EXPORTER_OTLP_ENDPOINT: otlpUrl } : {}),
      LOG_LEVEL: "info",
      METRICS_PUBLIC: "true",
      RATE_LIMIT_PER_MINUTE: "100000000",
    },
    stdout: "null",
    stderr: "inherit",
  }).spawn();
  try {
    const url = `http://127.0.0.1:${port}`;
    await until(async () => (await fetch(`${url}/health/ready`).then(ok, () => false)));
    const auth = { authorization: `Bearer ${ADMIN_KEY}`, "content-type": "application/json" };
    for (let i = 0; i < 160; i++) {
      const id = `series-${i}`;
      // The bench's earlier scrape section made the same patterns: 409 then, and that is fine.
      await fetch(`${url}/v1/patterns`, {
        method: "POST",
        headers: auth,
        body: JSON.stringify({
          id,
          steps: [
            { capability: "data.compare", args: { value: i, op: ">", threshold: 1 }, as: "a" },
            { capability: "data.compare", args: { value: i, op: "<", threshold: 1 }, as: "b" },
            { capability: "data.pick", args: { value: { x: i }, path: "x" }, as: "c" },
          ],
        }),
      }).then((r) => r.body?.cancel());
      const ran = await fetch(`${url}/v1/patterns/${id}/run`, {
        method: "POST",
        headers: auth,
        body: "{}",
      });
      await ran.body?.cancel();
      if (!ran.ok) throw new Error(`running ${id}: ${ran.status}`);
    }
    // The monitor reads the DLQ counts every 5 s.
    const exhausted = dlqRows - Math.floor(dlqRows / 3);
    await until(async () =>
      (await scrapeText(url)).includes(`alert_dlq_entries{state="exhausted"} ${exhausted}\n`)
    );
    const text = await scrapeText(url);
    const series = text.split("\n").filter((l) => l && !l.startsWith("#")).length;
    const p99s: number[] = [];
    for (let run = 0; run < 3; run++) {
      const latencies: number[] = [];
      for (let j = 0; j < 100; j++) {
        const started = performance.now();
        await scrapeText(url);
        latencies.push(performance.now() - started);
      }
      p99s.push(p99(latencies));
    }
    const load = () => pacedLoad(`${url}/health/live`, 3);
    const without: number[] = [];
    const during: number[] = [];
    let scrapes = 0;
    for (let run = 0; run < 3; run++) {
      const alone = await load();
      if (alone.errors) throw new Error(`/health/live answered ${alone.errors} errors`);
      without.push(alone.p99Ms);
      let done = false;
      const scraping = (async () => {
        while (!done) {
          await (await fetch(`${url}/metrics`)).arrayBuffer(); // bytes: no decoding
          scrapes++;
          await new Promise((r) => setTimeout(r, SCRAPE_GAP_MS));
        }
      })();
      const beside = await load().finally(() => (done = true));
      await scraping;
      if (beside.errors) throw new Error(`/health/live answered ${beside.errors} errors`);
      during.push(beside.p99Ms);
    }
    const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
    return {
      metrics_scrape_p99_ms: round(med(p99s)),
      metrics_scrape_series: series,
      metrics_scrape_dlq_rows: dlqRows,
      request_p99_without_scrapes_ms: round(med(without)),
      request_p99_during_scrapes_ms: round(med(during)),
      scrape_blocking_ms: round(med(during) - med(without)),
      scrapes_during_requests: scrapes,
    };
  } finally {
    vigil.kill("SIGTERM");
    await vigil.status;
  }
}

/**
 * wrk from 4 connections, each waiting 1 ms between a response and its next request (about
 * 3,000 requests/s: vigil is not saturated, and wrk does not take a core of its own on a 2-core
 * machine), so that the p99 shows how long requests are held up, not a queue at full load.
 */
async function pacedLoad(url: string, seconds: number): Promise<{ p99Ms: number; errors: number }> {
  const script = await Deno.makeTempFile({ suffix: ".lua" });
  await Deno.writeTextFile(script, "function delay()\n  return 1\nend\n");
  try {
    const out = await new Deno.Command("wrk", {
      args: ["-t1", "-c4", `-d${seconds}s`, "--latency", "-s", script, url],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout);
    const p99 = /^\s+99%\s+([\d.]+)(us|ms|s)$/m.exec(text);
    if (!out.success || !p99) {
      throw new Error(`wrk: ${text}${new TextDecoder().decode(out.stderr)}`);
    }
    const errors = Number(/Non-2xx or 3xx responses: (\d+)/.exec(text)?.[1] ?? 0) +
      Number(/Socket errors: .*timeout (\d+)/.exec(text)?.[1] ?? 0);
    const n = Number(p99[1]);
    return { p99Ms: p99[2] === "us" ? n / 1000 : p99[2] === "ms" ? n : n * 1000, errors };
  } finally {
    await Deno.remove(script);
  }
}

const ok = async (res: Response) => (await res.body?.cancel(), res.ok);
const scrapeText = async (url: string) => await (await fetch(`${url}/metrics`)).text();

async function until(check: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error("timed out waiting for vigil");
}

export interface GrowthRow {
  row: string;
  sizes: number[];
  figures: string[];
  /** Cost per item at the largest size ÷ at the smallest: 1 is linear, ≤ 2 is the target. */
  ratio: number;
}

/** The table's rows: each one's per-item cost, largest size against smallest. */
export function growthRows(g: Growth): GrowthRow[] {
  const ratio = (costs: number[]) => round(costs[costs.length - 1] / costs[0], 2);
  return [
    {
      row: "alert_fire_per_s (job ms)",
      sizes: g.alert_fire.map((r) => r.size),
      figures: g.alert_fire.map((r) => `${r.per_s}/s (${r.job_ms} ms)`),
      ratio: ratio(g.alert_fire.map((r) => 1 / r.per_s)),
    },
    {
      row: "dlq_drain_rows_per_s_1w",
      sizes: g.dlq_drain.map((r) => r.size),
      figures: g.dlq_drain.map((r) => `${r.rows_per_s}/s`),
      ratio: ratio(g.dlq_drain.map((r) => 1 / r.rows_per_s)),
    },
    {
      // One batch per claim whatever the queue's length: flat is linear here.
      row: "dlq_claim_p99_ms (per batch)",
      sizes: g.dlq_drain.map((r) => r.size),
      figures: g.dlq_drain.map((r) => `${r.claim_p99_ms} ms`),
      ratio: ratio(g.dlq_drain.map((r) => r.claim_p99_ms)),
    },
    {
      row: "scrape_p99_ms (all changed)",
      sizes: g.scrape.map((r) => r.series),
      figures: g.scrape.map((r) => `${r.p99_ms} ms`),
      ratio: ratio(g.scrape.map((r) => r.p99_ms / r.series)),
    },
    {
      row: "scrape_p99_ms (unchanged)",
      sizes: g.scrape.map((r) => r.series),
      figures: g.scrape.map((r) => `${r.p99_ms_unchanged} ms`),
      ratio: ratio(g.scrape.map((r) => r.p99_ms_unchanged / r.series)),
    },
    {
      row: "pattern_run_p99_ms",
      sizes: g.pattern_steps.map((r) => r.steps),
      figures: g.pattern_steps.map((r) => `${r.run_p99_ms} ms`),
      ratio: ratio(g.pattern_steps.map((r) => r.run_p99_ms / r.steps)),
    },
  ];
}

export function growthTable(g: Growth): string {
  const table = [
    ["growth", "sizes", "figures", "per-item cost, largest ÷ smallest", ""],
    ...growthRows(g).map((r) => [
      r.row,
      r.sizes.map((s) => s.toLocaleString("en")).join(" / "),
      r.figures.join(" / "),
      String(r.ratio),
      r.ratio <= 2 ? "ok" : "OVER 2×",
    ]),
  ];
  const widths = table[0].map((_, i) => Math.max(...table.map((row) => row[i].length)));
  return table.map((row) => row.map((c, i) => c.padEnd(widths[i])).join("  ").trimEnd())
    .join("\n");
}

if (import.meta.main) {
  const { setupLogging } = await import("../src/observability/logger.ts");
  const { migrate } = await import("../src/db/migrate.ts");
  const { startCluster } = await import("../tests/support/cluster.ts");
  setupLogging({ level: "error", sink: () => {} });
  const sizes = Deno.args.includes("--full")
    ? FULL_SIZES
    : Deno.args.includes("--small")
    ? SMALL_SIZES
    : DEFAULT_SIZES;
  let url = Deno.env.get("DATABASE_URL");
  const cluster = url
    ? undefined
    : await startCluster({ durable: true, prefix: "vigil-growth-pg-" });
  url ??= cluster!.url;
  try {
    const sql = postgres(url, { max: 2, onnotice: () => {} });
    await migrate(sql as unknown as Sql);
    await sql.end();
    if (Deno.args.includes("--scrapes")) {
      const rows = Number(Deno.args.find((a) => /^\d+$/.test(a)) ?? 300_000);
      const figures = await scrapeFigures(url, { dlqRows: rows });
      Deno.stdout.writeSync(new TextEncoder().encode(`${JSON.stringify(figures, null, 2)}\n`));
    } else {
      const g = await growth(url, sizes);
      Deno.stdout.writeSync(
        new TextEncoder().encode(`${growthTable(g)}\n\n${JSON.stringify(g, null, 2)}\n`),
      );
    }
  } finally {
    cluster?.stop();
  }
}
