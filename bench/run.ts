/**
 * `deno task bench`: measures vigil side by side with its baselines in one run, on a throwaway
 * PostgreSQL (durable settings) and loopback only. Prints one table and writes
 * bench/results/latest.json. Every figure is the median of 3 runs.
 */
import postgres from "postgres";
import { migrate } from "../src/db/migrate.ts";
import { setupLogging } from "../src/observability/logger.ts";
import { type Cluster, freePort, startCluster, which } from "../tests/support/cluster.ts";
import { chaosFigures } from "./chaos.ts";
import {
  DEFAULT_SIZES,
  FULL_SIZES,
  type Growth,
  growth,
  growthTable,
  scrapeFigures,
} from "./growth.ts";
import { dlqBatchSize, pgbossDrain } from "./pgboss.ts";
import { type ItemCost, itemCosts } from "./costs.ts";
import { alertFirePerSecond, dlqDrain, statusPageP99, stepOverheadUs } from "./in_process.ts";
import { wrk } from "./wrk.ts";

const RUNS = 3;
const LOAD_SECONDS = 5;
/** The HTTP overhead section loads three servers a round: as long as two at LOAD_SECONDS. */
const HTTP_SECONDS = 3;
const CONNECTIONS = 32;
/** Concurrent clients running patterns (issue 13: 64), against the same number of INSERTers. */
const RUN_CLIENTS = 64;
const ALERTS = 10_000;
const STATUS_ALERTS = 100;
const DLQ_ROWS = 10_000;
const ADMIN_KEY = "vgl_" + "b".repeat(43);
const ROOT = new URL("../", import.meta.url).pathname;

/** Exactly what `deno task start` runs (flags included), so that the figures are production's. */
function startArgs(): string[] {
  const config = JSON.parse(Deno.readTextFileSync(`${ROOT}deno.json`));
  const [deno, ...args] = (config.tasks.start as string).split(/\s+/);
  if (deno !== "deno") throw new Error(`unexpected start task: ${config.tasks.start}`);
  return args;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const round = (x: number, digits = 2) => Math.round(x * 10 ** digits) / 10 ** digits;
const log = (line: string) => Deno.stderr.writeSync(new TextEncoder().encode(`bench: ${line}\n`));

async function ensureWrk(): Promise<void> {
  if (which("wrk")) return;
  log("installing wrk (Debian package)");
  const out = await new Deno.Command("apt-get", {
    args: ["install", "-y", "-qq", "wrk"],
    stdout: "null",
  }).output();
  if (!out.success) {
    throw new Error("wrk is missing and could not be installed (apt-get install wrk)");
  }
}

function rssMb(pid: number): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  return Number(status.match(/VmRSS:\s+(\d+) kB/)![1]) / 1024;
}

async function waitFor(url: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      const res = await fetch(url);
      await res.body?.cancel();
      if (res.ok) return;
    } catch { /* not up yet */ }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${url} did not come up`);
}

function spawn(args: string[], env: Record<string, string>): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args,
    cwd: ROOT,
    env: { NO_COLOR: "1", ...env },
    stdout: "null",
    stderr: "inherit",
  }).spawn();
}

/** A local OTLP/HTTP sink: accepts span batches and counts them. */
function otlpSink() {
  let batches = 0;
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    await req.arrayBuffer();
    batches++;
    return Response.json({});
  });
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    batches: () => batches,
    close: () => server.shutdown(),
  };
}

/** Samples a process's resident memory while `work` runs; returns the peak. */
async function peakRss<T>(pid: number, work: () => Promise<T>): Promise<[T, number]> {
  let peak = rssMb(pid);
  const timer = setInterval(() => (peak = Math.max(peak, rssMb(pid))), 100);
  try {
    return [await work(), peak];
  } finally {
    clearInterval(timer);
    peak = Math.max(peak, rssMb(pid));
  }
}

/** Single-row INSERT transactions/s: `clients` concurrent callers on a pool of `poolSize`. */
async function insertBaselineTps(
  url: string,
  poolSize: number,
  seconds: number,
  clients = poolSize,
): Promise<number> {
  const sql = postgres(url, { max: poolSize, onnotice: () => {} });
  try {
    await sql`
      create table if not exists bench_inserts (
        id uuid primary key, pattern_id text not null, status text not null, outputs jsonb,
        trace jsonb not null, started_at timestamptz not null, duration_ms double precision not null)`;
    const trace = [{
      step_index: 0,
      capability: "data.compare",
      duration_ms: 0.1,
      cache_hit: false,
    }];
    let count = 0;
    const deadline = performance.now() + seconds * 1000;
    const started = performance.now();
    await Promise.all(Array.from({ length: clients }, async () => {
      while (performance.now() < deadline) {
        await sql`
          insert into bench_inserts (id, pattern_id, status, outputs, trace, started_at, duration_ms)
          values (${crypto.randomUUID()}, 'bench', 'success', ${sql.json({ ok: true })}, ${
          sql.json(trace)
        }, now(), 0.5)`;
        count++;
      }
    }));
    return count / ((performance.now() - started) / 1000);
  } finally {
    await sql.end();
  }
}

async function main() {
  setupLogging({ level: "error", sink: () => {} });
  await ensureWrk();
  let cluster: Cluster | undefined;
  let baseUrl = Deno.env.get("DATABASE_URL");
  if (!baseUrl) {
    log("starting a throwaway PostgreSQL cluster");
    cluster = await startCluster({ durable: true, prefix: "vigil-bench-pg-" });
    baseUrl = cluster.url;
  }
  const admin = postgres(baseUrl, { max: 1, onnotice: () => {} });
  const dbName = `vigil_bench_${Date.now()}`;
  await admin`create database ${admin(dbName)}`;
  const u = new URL(baseUrl);
  u.pathname = `/${dbName}`;
  const dbUrl = u.toString();
  const [{ version }] = await admin`select current_setting('server_version') as version`;

  const results: Record<string, unknown> = {};
  const sink = otlpSink();
  let vigil: Deno.ChildProcess | undefined;
  let bare: Deno.ChildProcess | undefined;
  try {
    const sql = postgres(dbUrl, { max: 10, onnotice: () => {} });
    await migrate(sql);

    log("step overhead (in process)");
    const steps = await stepOverheadUs(sql);
    results.step_overhead_us = round(steps.slope);
    results.step_run_us = Object.fromEntries(
      Object.entries(steps.perSize).map(([k, v]) => [k, round(v)]),
    );
    await sql.end();

    log("starting vigil and the bare Hono baseline");
    const vigilPort = freePort();
    vigil = spawn(startArgs(), {
      DATABASE_URL: dbUrl,
      HOST: "127.0.0.1",
      PORT: String(vigilPort),
      ADMIN_API_KEY: ADMIN_KEY,
      VIGIL_SECRET_KEY: btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(32)))),
      OTEL_EXPORTER_OTLP_ENDPOINT: sink.url,
      LOG_LEVEL: "info",
      METRICS_PUBLIC: "true", // the bench scrapes /metrics without a token
      RATE_LIMIT_PER_MINUTE: "100000000", // wrk sends every request with one key
    });
    const barePort = freePort();
    bare = spawn(["run", "-A", "bench/bare_hono.ts", String(barePort)], {});
    const vigilUrl = `http://127.0.0.1:${vigilPort}`;
    await waitFor(`${vigilUrl}/health/ready`);
    await waitFor(`http://127.0.0.1:${barePort}/v1/me`);
    await new Promise((r) => setTimeout(r, 2000)); // let start-up garbage settle before reading RSS
    results.rss_mb_idle = round(rssMb(vigil.pid), 1);

    const auth = { authorization: `Bearer ${ADMIN_KEY}` };
    let peak = 0;
    // /v1/me on vigil as `deno task start` runs it (production defaults: one trace in ten
    // sampled) and on a second vigil that samples every trace, each against bare Hono in the
    // same rounds (vigil, bare, vigil sampled): a round's three figures share the machine's
    // moment. The sampled one has a database of its own and lives for this section only.
    log("HTTP overhead: /v1/me on vigil (production defaults; every trace sampled) vs bare Hono");
    const sampledDb = `${dbName}_sampled`;
    await admin`create database ${admin(sampledDb)}`;
    const sampledDbUrl = new URL(dbUrl);
    sampledDbUrl.pathname = `/${sampledDb}`;
    const sampledPort = freePort();
    const sampled = spawn(startArgs(), {
      DATABASE_URL: sampledDbUrl.toString(),
      HOST: "127.0.0.1",
      PORT: String(sampledPort),
      ADMIN_API_KEY: ADMIN_KEY,
      VIGIL_SECRET_KEY: btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(32)))),
      OTEL_EXPORTER_OTLP_ENDPOINT: sink.url,
      OTEL_TRACES_SAMPLER_ARG: "1",
      LOG_LEVEL: "info",
      RATE_LIMIT_PER_MINUTE: "100000000",
    });
    const vigilRps: number[] = [];
    const sampledRps: number[] = [];
    const bareRps: number[] = [];
    try {
      const sampledUrl = `http://127.0.0.1:${sampledPort}`;
      await waitFor(`${sampledUrl}/health/ready`);
      const load = async (
        url: string,
        headers: Record<string, string> = {},
        seconds = HTTP_SECONDS,
      ) => {
        const r = await wrk({ url, seconds, connections: CONNECTIONS, headers });
        if (r.errors) throw new Error(`${url} answered ${r.errors} errors`);
        return r.requestsPerSecond;
      };
      // A second each first, not counted: the first round would otherwise measure the JIT.
      await load(`${vigilUrl}/v1/me`, auth, 1);
      await load(`http://127.0.0.1:${barePort}/v1/me`, {}, 1);
      await load(`${sampledUrl}/v1/me`, auth, 1);
      for (let i = 0; i < RUNS; i++) {
        const [rps, p] = await peakRss(vigil.pid, () => load(`${vigilUrl}/v1/me`, auth));
        peak = Math.max(peak, p);
        vigilRps.push(rps);
        bareRps.push(await load(`http://127.0.0.1:${barePort}/v1/me`));
        sampledRps.push(await load(`${sampledUrl}/v1/me`, auth));
      }
    } finally {
      sampled.kill("SIGTERM");
      await sampled.status;
      await admin`drop database if exists ${admin(sampledDb)} with (force)`.catch(() => {});
    }
    results.http_vigil_rps = round(median(vigilRps), 0);
    results.http_vigil_sampled_rps = round(median(sampledRps), 0);
    results.http_bare_hono_rps = round(median(bareRps), 0);
    results.http_overhead_ratio = round(median(vigilRps) / median(bareRps), 3);
    results.http_overhead_ratio_sampled = round(median(sampledRps) / median(bareRps), 3);

    log("pattern runs: POST /v1/patterns/:id/run of a 3-step in-process pattern");
    const create = await fetch(`${vigilUrl}/v1/patterns`, {
      method: "POST",
      headers: { ...auth, "content-type": "application/json" },
      body: JSON.stringify({
        id: "bench-3",
        inputs: { value: { type: "number" }, doc: { type: "object" } },
        steps: [
          {
            capability: "data.compare",
            args: { value: "{{inputs.value}}", op: ">", threshold: 10 },
            as: "over",
          },
          {
            capability: "data.pick",
            args: { value: "{{inputs.doc}}", path: "service.latency_ms" },
            as: "latency",
          },
          {
            capability: "data.compare",
            args: { value: "{{latency}}", op: "<=", threshold: 250 },
            as: "fast",
          },
        ],
        outputs: { over: "{{over.result}}", fast: "{{fast.result}}", latency_ms: "{{latency}}" },
      }),
    });
    if (create.status !== 201) throw new Error(`creating the pattern: ${await create.text()}`);
    const runRps: number[] = [];
    const runP99: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const [r, p] = await peakRss(vigil.pid, () =>
        wrk({
          url: `${vigilUrl}/v1/patterns/bench-3/run`,
          seconds: LOAD_SECONDS,
          connections: RUN_CLIENTS,
          method: "POST",
          headers: { ...auth, "content-type": "application/json" },
          body: JSON.stringify({ inputs: { value: 12, doc: { service: { latency_ms: 120 } } } }),
        }));
      peak = Math.max(peak, p);
      if (r.errors) throw new Error(`pattern runs answered ${r.errors} errors`);
      runRps.push(r.requestsPerSecond);
      runP99.push(r.p99Ms);
    }
    results.pattern_runs_per_s = round(median(runRps), 0);
    results.pattern_run_p99_ms = round(median(runP99), 2);
    // How many runs shared a commit (the group writer's batches).
    const batches = await (await fetch(`${vigilUrl}/metrics`)).text();
    const sum = Number(batches.match(/^pattern_run_write_batch_size_sum (\S+)/m)?.[1]);
    const count = Number(batches.match(/^pattern_run_write_batch_size_count (\S+)/m)?.[1]);
    results.pattern_run_batch_mean = count ? round(sum / count, 1) : null;
    results.rss_mb_under_load = round(peak, 1);

    log(`baseline: single-row INSERT transactions, ${RUN_CLIENTS} clients on vigil's pool (10)`);
    const inserts: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      inserts.push(await insertBaselineTps(dbUrl, 10, LOAD_SECONDS, RUN_CLIENTS));
    }
    results.insert_baseline_tps = round(median(inserts), 0);
    results.pattern_runs_vs_insert_ratio = round(median(runRps) / median(inserts), 3);

    log("metrics scrape of a fresh vigil, with the database up and then stopped");
    results.metrics_scrape_p99_ms_database_up = round(await scrapeP99(vigilUrl), 2);
    if (cluster) {
      await cluster.pause();
      await waitForMetric(vigilUrl, "vigil_database_up 0");
      results.metrics_scrape_p99_ms_database_down = round(await scrapeP99(vigilUrl), 2);
      await cluster.resume();
      await waitFor(`${vigilUrl}/health/ready`);
    }

    log("metrics scrape with >= 10,000 series");
    for (let i = 0; i < 160; i++) {
      const id = `series-${i}`;
      const body = JSON.stringify({
        id,
        steps: [
          { capability: "data.compare", args: { value: i, op: ">", threshold: 1 }, as: "a" },
          { capability: "data.compare", args: { value: i, op: "<", threshold: 1 }, as: "b" },
          { capability: "data.pick", args: { value: { x: i }, path: "x" }, as: "c" },
        ],
      });
      const made = await fetch(`${vigilUrl}/v1/patterns`, {
        method: "POST",
        headers: { ...auth, "content-type": "application/json" },
        body,
      });
      await made.body?.cancel();
      const ran = await fetch(`${vigilUrl}/v1/patterns/${id}/run`, {
        method: "POST",
        headers: { ...auth, "content-type": "application/json" },
        body: "{}",
      });
      await ran.body?.cancel();
    }
    const scrape = await (await fetch(`${vigilUrl}/metrics`)).text();
    results.metrics_series = scrape.split("\n").filter((l) => l && !l.startsWith("#")).length;
    // metrics_scrape_p99_ms itself is measured below, with 300,000 rows in the DLQ.
    results.metrics_scrape_p99_ms_empty_dlq = round(await scrapeP99(vigilUrl), 2);
    results.spans_exported_batches = sink.batches();

    vigil.kill("SIGTERM");
    await vigil.status;
    vigil = undefined;

    log(`alert firing: ${ALERTS} alerts → in-app notifications, with and without check results`);
    const fire: number[] = [];
    const fireWithout: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      fireWithout.push(await alertFirePerSecond(dbUrl, ALERTS, { checkResults: false }));
      fire.push(await alertFirePerSecond(dbUrl, ALERTS));
    }
    results.alert_fire_per_s = round(median(fire), 0);
    results.alert_fire_per_s_without_check_results = round(median(fireWithout), 0);
    results.check_results_cost_ratio = round(median(fire) / median(fireWithout), 3);

    log(`status page: ${STATUS_ALERTS} public alerts, 90 days each`);
    const status = await statusPageP99(dbUrl, STATUS_ALERTS);
    results.status_page_p99_ms = round(status.p99Ms);
    results.status_compute_p99_ms = round(status.computeP99Ms);
    results.status_render_p99_ms = round(status.renderP99Ms);
    results.status_page_bytes = status.bytes;
    results.status_page_gzip_bytes = status.gzipBytes;

    log("cost per item: transactions, rows and WAL bytes (README: Scale-out on paper)");
    results.item_costs = await itemCosts(dbUrl);

    log(`DLQ drain: ${DLQ_ROWS} due rows, one worker then two`);
    const one: number[] = [];
    const two: number[] = [];
    let duplicates = 0;
    for (let i = 0; i < RUNS; i++) {
      one.push((await dlqDrain(dbUrl, DLQ_ROWS, 1)).rowsPerSecond);
      const pair = await dlqDrain(dbUrl, DLQ_ROWS, 2);
      two.push(pair.rowsPerSecond);
      duplicates += pair.duplicates;
    }
    results.dlq_drain_rows_per_s_1w = round(median(one), 0);
    results.dlq_drain_rows_per_s_2w = round(median(two), 0);
    results.dlq_duplicates = duplicates;

    log("chaos: two replicas killed mid-send (tests/support/chaos.ts)");
    Object.assign(results, await chaosFigures(baseUrl));

    const batch = dlqBatchSize();
    log(`pg-boss: ${DLQ_ROWS} no-op jobs, fetch + complete ${batch} at a time, one worker`);
    const boss: number[] = [];
    for (let i = 0; i < RUNS; i++) boss.push((await pgbossDrain(dbUrl, DLQ_ROWS)).jobsPerSecond);
    results.pgboss_jobs_per_s = round(median(boss), 0);
    results.dlq_drain_vs_pgboss = round(
      Number(results.dlq_drain_rows_per_s_1w) / median(boss),
      3,
    );

    log("scrapes: >= 10,000 series and 300,000 DLQ rows; requests with and without scrapes");
    Object.assign(results, await scrapeFigures(dbUrl, { dlqRows: 300_000, otlpUrl: sink.url }));

    const full = Deno.args.includes("--full");
    log(`how cost grows${full ? " (--full)" : " (--full adds the largest sizes)"}`);
    results.growth = await growth(dbUrl, full ? FULL_SIZES : DEFAULT_SIZES);
  } finally {
    vigil?.kill("SIGKILL");
    bare?.kill("SIGKILL");
    await sink.close();
    await admin`drop database if exists ${admin(dbName)} with (force)`.catch(() => {});
    await admin.end();
    cluster?.stop();
  }

  // The DLQ drain is compared with the previous run's figure, kept in bench/results.
  const previous: Record<string, unknown> = await Deno.readTextFile(
    `${ROOT}bench/results/latest.json`,
  ).then((text) => JSON.parse(text), () => ({}));
  results.dlq_drain_rows_per_s_1w_previous = previous.dlq_drain_rows_per_s_1w ?? null;
  const meminfo = Deno.readTextFileSync("/proc/meminfo").match(/MemTotal:\s+(\d+) kB/)![1];
  const output = {
    ...results,
    machine: {
      cores: navigator.hardwareConcurrency,
      memory_gb: round(Number(meminfo) / 1024 / 1024, 1),
    },
    deno: Deno.version.deno,
    postgres: version,
    at: new Date().toISOString(),
  };
  await Deno.writeTextFile(
    `${ROOT}bench/results/latest.json`,
    JSON.stringify(output, null, 2) + "\n",
  );
  printTable(output);
  Deno.stdout.writeSync(
    new TextEncoder().encode(`\n${growthTable(results.growth as Growth)}\n`),
  );
}

type Target = { min?: number; max?: number };

function printTable(r: Record<string, unknown>) {
  const targets: Record<string, Target> = JSON.parse(
    Deno.readTextFileSync(`${ROOT}bench/targets.json`),
  );
  const rows: [string, unknown, unknown, unknown][] = [
    ["http_overhead_ratio", r.http_vigil_rps, r.http_bare_hono_rps, r.http_overhead_ratio],
    [
      "http_overhead_ratio_sampled",
      r.http_vigil_sampled_rps,
      r.http_bare_hono_rps,
      r.http_overhead_ratio_sampled,
    ],
    ["pattern_runs_per_s", r.pattern_runs_per_s, "—", "—"],
    ["pattern_run_p99_ms", r.pattern_run_p99_ms, "—", "—"],
    ["pattern_run_batch_mean", r.pattern_run_batch_mean, "—", "—"],
    ["insert_baseline_tps", "—", r.insert_baseline_tps, "—"],
    [
      "pattern_runs_vs_insert_ratio",
      r.pattern_runs_per_s,
      r.insert_baseline_tps,
      r.pattern_runs_vs_insert_ratio,
    ],
    ["step_overhead_us", r.step_overhead_us, "—", "—"],
    ["alert_fire_per_s", r.alert_fire_per_s, "—", "—"],
    [
      "check_results_cost_ratio",
      r.alert_fire_per_s,
      `${r.alert_fire_per_s_without_check_results} (without check results)`,
      r.check_results_cost_ratio,
    ],
    [
      "status_page_p99_ms",
      r.status_page_p99_ms,
      `${r.status_compute_p99_ms} (uncached: ${r.status_render_p99_ms} of it rendering)`,
      "—",
    ],
    [
      "dlq_drain_rows_per_s_1w",
      r.dlq_drain_rows_per_s_1w,
      r.dlq_drain_rows_per_s_1w_previous
        ? `${r.dlq_drain_rows_per_s_1w_previous} (previous run)`
        : "—",
      r.dlq_drain_rows_per_s_1w_previous
        ? round(Number(r.dlq_drain_rows_per_s_1w) / Number(r.dlq_drain_rows_per_s_1w_previous), 2)
        : "—",
    ],
    ["dlq_drain_rows_per_s_2w", r.dlq_drain_rows_per_s_2w, "—", "—"],
    ["dlq_duplicates", r.dlq_duplicates, "—", "—"],
    ["chaos_lost", r.chaos_lost, "—", "—"],
    ["chaos_duplicates", r.chaos_duplicates, "—", "—"],
    [
      "metrics_scrape_p99_ms",
      r.metrics_scrape_p99_ms,
      `${r.metrics_scrape_p99_ms_empty_dlq} (empty DLQ)`,
      "—",
    ],
    [
      "scrape_blocking_ms",
      r.request_p99_during_scrapes_ms,
      `${r.request_p99_without_scrapes_ms} (request p99 without scrapes)`,
      r.scrape_blocking_ms,
    ],
    ["pgboss_jobs_per_s", "—", r.pgboss_jobs_per_s, "—"],
    [
      "dlq_drain_vs_pgboss",
      r.dlq_drain_rows_per_s_1w,
      `${r.pgboss_jobs_per_s} (pg-boss jobs/s)`,
      r.dlq_drain_vs_pgboss,
    ],
    [
      "metrics_scrape_p99_ms_database_down",
      r.metrics_scrape_p99_ms_database_down ?? "(needs initdb)",
      `${r.metrics_scrape_p99_ms_database_up} (database up)`,
      r.metrics_scrape_p99_ms_database_down
        ? round(
          Number(r.metrics_scrape_p99_ms_database_down) /
            Number(r.metrics_scrape_p99_ms_database_up),
          2,
        )
        : "—",
    ],
    ["rss_mb_idle", r.rss_mb_idle, "—", "—"],
    ["rss_mb_under_load", r.rss_mb_under_load, "—", "—"],
  ];
  const verdict = (key: string) => {
    const t = targets[key];
    if (!t) return ["", ""];
    const v = Number(r[key]);
    const ok = (t.min === undefined || v >= t.min) && (t.max === undefined || v <= t.max);
    return [t.min !== undefined ? `≥ ${t.min}` : `≤ ${t.max}`, ok ? "ok" : "MISS"];
  };
  const table = [
    ["figure", "vigil", "baseline", "ratio", "target", ""],
    ...rows.map(([k, v, b, ratio]) => [k, String(v), String(b), String(ratio), ...verdict(k)]),
  ];
  const widths = table[0].map((_, i) => Math.max(...table.map((row) => row[i].length)));
  const text = table.map((row) => row.map((c, i) => c.padEnd(widths[i])).join("  ").trimEnd()).join(
    "\n",
  );
  Deno.stdout.writeSync(new TextEncoder().encode(
    `\n${text}\n\n${
      r.machine && JSON.stringify(r.machine)
    } · deno ${r.deno} · PostgreSQL ${r.postgres} · ${r.metrics_series} series scraped\n${
      costsTable(r.item_costs as Record<string, ItemCost> | undefined)
    }`,
  ));
}

/** Per item: transactions, rows written, WAL bytes, and one process's rate. */
function costsTable(costs: Record<string, ItemCost> | undefined): string {
  if (!costs) return "";
  const lines = Object.entries(costs).map(([kind, c]) =>
    `  ${kind.padEnd(18)} ${String(c.transactions_per_item).padStart(6)} tx  ${
      String(c.rows_written_per_item).padStart(6)
    } rows  ${String(c.wal_bytes_per_item).padStart(6)} WAL bytes  ${
      String(c.items_per_s).padStart(6)
    } /s`
  );
  return `\ncost per item (one process):\n${lines.join("\n")}\n`;
}

/** The median over RUNS of the p99 of 100 sequential scrapes, in ms. */
async function scrapeP99(vigilUrl: string): Promise<number> {
  const p99s: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const latencies: number[] = [];
    for (let j = 0; j < 100; j++) {
      const started = performance.now();
      await (await fetch(`${vigilUrl}/metrics`)).text();
      latencies.push(performance.now() - started);
    }
    latencies.sort((a, b) => a - b);
    p99s.push(latencies[Math.floor(latencies.length * 0.99) - 1]);
  }
  return median(p99s);
}

/** Polls /metrics until a line of it is `line` (the database monitor pings every 5 s). */
async function waitForMetric(vigilUrl: string, line: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const text = await (await fetch(`${vigilUrl}/metrics`)).text();
    if (text.split("\n").includes(line)) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`/metrics never showed ${line}`);
}

await main();
