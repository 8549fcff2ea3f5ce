/**
 * The one Prometheus registry of a vigil process and every series it exports (DESIGN.md's
 * metric catalogue). Label values are always bounded: pattern ids, agent and capability names,
 * channels, states — never user ids, URLs or error text.
 */
import process from "node:process";
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import { ALERT_STATES, ALERT_TRANSITIONS, NOTIFICATION_KINDS } from "../alerts/lifecycle.ts";
import { DLQ_STATES } from "../delivery/store.ts";
import { CHANNELS } from "../delivery/types.ts";

export type BreakerState = "closed" | "open" | "half_open";
export const BREAKER_STATES: readonly BreakerState[] = ["closed", "open", "half_open"];
/** `unknown`: no answer, retried inside the idempotency window; `uncertain`: outside it. */
export const DELIVERY_STATUSES = [
  "delivered",
  "failed",
  "unknown",
  "suppressed",
  "exhausted",
  "uncertain",
] as const;
export const RETRY_OUTCOMES = ["delivered", "failed", "unknown", "exhausted", "uncertain"] as const;
export { DLQ_STATES } from "../delivery/store.ts";
export const EVALUATION_RESULTS = ["matched", "not_matched", "error"] as const;
export const JOB_STATUSES = ["success", "error"] as const;

/** Latency buckets (seconds) from 1 ms to 30 s: agent calls and steps are often sub-millisecond. */
const LATENCY_BUCKETS = [
  0.001,
  0.0025,
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
  10,
  30,
];

/**
 * The HTTP buckets of @hono/prometheus, which the dashboards and SLO rules were written for,
 * extended to 60 s: a request held by a slow dependency must not vanish into +Inf.
 */
export const HTTP_BUCKETS = [
  0.005,
  0.01,
  0.025,
  0.05,
  0.075,
  0.1,
  0.25,
  0.5,
  0.75,
  1,
  2.5,
  5,
  7.5,
  10,
  15,
  30,
  60,
];

export const VERSION = "1.0.0";

export function createMetrics() {
  const registry = new Registry();
  const registers = [registry];

  const metrics = {
    registry,

    httpRequests: new Counter({
      name: "http_requests_total",
      help: "API requests (/v1), by method, route pattern and status.",
      labelNames: ["method", "status", "ok", "route"] as const,
      registers,
    }),
    httpDuration: new Histogram({
      name: "http_request_duration_seconds",
      help: "Duration of API requests (/v1), by method, route pattern and status.",
      labelNames: ["method", "status", "ok", "route"] as const,
      buckets: HTTP_BUCKETS,
      registers,
    }),

    patternExecutions: new Counter({
      name: "pattern_executions_total",
      help: "Pattern runs, by pattern and outcome.",
      labelNames: ["pattern_id", "status"] as const,
      registers,
    }),
    patternDuration: new Histogram({
      name: "pattern_duration_seconds",
      help: "Duration of whole pattern runs.",
      labelNames: ["pattern_id", "status"] as const,
      buckets: LATENCY_BUCKETS,
      registers,
    }),
    stepDuration: new Histogram({
      name: "pattern_step_duration_seconds",
      help: "Duration of pattern steps (cache hits included).",
      labelNames: ["pattern_id", "step_index", "capability"] as const,
      buckets: LATENCY_BUCKETS,
      registers,
    }),
    agentInvocations: new Counter({
      name: "agent_invocations_total",
      help: "Capability calls made to agents; rejected = refused by an open circuit breaker.",
      labelNames: ["agent_name", "capability", "status"] as const,
      registers,
    }),
    agentLatency: new Histogram({
      name: "agent_latency_seconds",
      help: "Latency of capability calls to agents.",
      labelNames: ["agent_name", "capability"] as const,
      buckets: LATENCY_BUCKETS,
      registers,
    }),
    breakerState: new Gauge({
      name: "circuit_breaker_state",
      help: "Circuit breaker state per agent: 1 for the current state, 0 for the others.",
      labelNames: ["agent_name", "state"] as const,
      registers,
    }),

    runWriteBatch: new Histogram({
      name: "pattern_run_write_batch_size",
      help: "Runs written per statement by the group writer (one commit each).",
      buckets: [1, 2, 5, 10, 20, 50, 100, 200],
      registers,
    }),

    alertEvaluations: new Counter({
      name: "alert_evaluations_total",
      help: "Alert condition evaluations, by result.",
      labelNames: ["result"] as const,
      registers,
    }),
    alertsByState: new Gauge({
      name: "alerts_by_state",
      help: "Alerts by lifecycle state (read from the database in the background).",
      labelNames: ["state"] as const,
      registers,
    }),
    // Public alerts only (at most PUBLIC_CHECK_SERIES), read from the database in the
    // background like the DLQ counts, so every replica says the same and the labels stay bounded.
    checkUp: new Gauge({
      name: "check_up",
      help: "Public alerts (status page): 0 while firing, else 1 (read from the database).",
      labelNames: ["alert_id", "name", "group"] as const,
      registers,
    }),
    checkUptime: new Gauge({
      name: "check_uptime_ratio",
      help:
        "Public alerts: share of evaluations that passed, from the rollups: 24h = this hour and the 24 before it, 30d = as the uptime API.",
      labelNames: ["alert_id", "name", "group", "window"] as const,
      registers,
    }),
    checkResultWriteFailures: new Counter({
      name: "check_result_write_failures_total",
      help: "Check results (uptime history) that could not be written: a gap in the history.",
      registers,
    }),
    slaTrafficDropped: new Counter({
      name: "sla_traffic_dropped_total",
      help:
        "API requests left out of /sla/status: held unwritten longer than a day (database away).",
      registers,
    }),
    alertTransitions: new Counter({
      name: "alert_transitions_total",
      help: "Alert state transitions, by from and to state.",
      labelNames: ["from", "to"] as const,
      registers,
    }),
    alertNotifications: new Counter({
      name: "alert_notifications_total",
      help: "Alert notifications written to the outbox, by kind (firing, resolved, repeat, error).",
      labelNames: ["kind"] as const,
      registers,
    }),
    silencedNotifications: new Counter({
      name: "silenced_notifications_total",
      help: "Alert notifications a silence held back (recorded, not sent).",
      registers,
    }),
    alertsFired: new Counter({
      name: "alerts_fired_total",
      help: "Alert firings that produced deliveries.",
      registers,
    }),
    deliveries: new Counter({
      name: "alert_deliveries_total",
      help: "Alert deliveries by channel and outcome.",
      labelNames: ["channel", "status"] as const,
      registers,
    }),
    deliveryDuration: new Histogram({
      name: "alert_delivery_duration_seconds",
      help: "Time to send one delivery through its channel.",
      labelNames: ["channel"] as const,
      buckets: LATENCY_BUCKETS,
      registers,
    }),
    // Read from the database in the background (db/monitor.ts), so it is true across restarts
    // and replicas and a scrape never waits on the database; its age says how fresh it is.
    dlqEntries: new Gauge({
      name: "alert_dlq_entries",
      help: "Rows in the alert dead-letter queue, by state (read from the database).",
      labelNames: ["state"] as const,
      registers,
    }),
    databaseUp: new Gauge({
      name: "vigil_database_up",
      help: "1 when the database answered the last ping (every 5 s), else 0.",
      registers,
    }),
    databasePing: new Gauge({
      name: "vigil_database_ping_seconds",
      help: "Round trip of the last successful database ping.",
      registers,
    }),
    databaseConnections: new Gauge({
      name: "vigil_database_connections",
      help:
        "This replica's open database connections as PostgreSQL sees them (pg_stat_activity), " +
        "by state: in_use (running a statement or inside a transaction) or idle.",
      labelNames: ["state"] as const,
      registers,
    }),
    databasePoolMax: new Gauge({
      name: "vigil_database_pool_max",
      help: "Most connections this replica opens to the database (DB_POOL_SIZE).",
      registers,
    }),
    databaseTransactionsWaiting: new Gauge({
      name: "vigil_database_transactions_waiting",
      help: "Transactions started but still waiting for a database connection (the pool is busy " +
        "or the database does not answer).",
      registers,
    }),
    databaseLastRead: new Gauge({
      name: "vigil_database_last_read_timestamp_seconds",
      help: "When values read from the database (the DLQ counts) were last refreshed; " +
        "time() minus this is their age.",
      registers,
    }),
    retryAttempts: new Counter({
      name: "alert_retry_attempts_total",
      help: "Retries of dead-lettered deliveries, by channel and outcome.",
      labelNames: ["channel", "outcome"] as const,
      registers,
    }),
    alertmanagerAlerts: new Counter({
      name: "alertmanager_alerts_total",
      help: "Alerts received from Alertmanager, by who was notified: recipients (the users " +
        "ALERTMANAGER_RECIPIENTS names), admins (none of them is a user) or dropped (no admin either).",
      labelNames: ["outcome"] as const,
      registers,
    }),
    rateLimited: new Counter({
      name: "http_rate_limited_total",
      help: "Requests refused with 429, by reason (api_key, auth_failures).",
      labelNames: ["reason"] as const,
      registers,
    }),
    clockSkew: new Gauge({
      name: "vigil_clock_skew_seconds",
      help: "Database clock minus this replica's clock, measured every minute.",
      registers,
    }),
    eventLoopLag: new Histogram({
      name: "vigil_event_loop_lag_seconds",
      help:
        "How late a 100 ms timer fires: time the event loop was blocked (sampled 10 times a second).",
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    }),
    cronRuns: new Counter({
      name: "cron_job_runs_total",
      help: "Scheduled job runs, by job and outcome.",
      labelNames: ["job", "status"] as const,
      registers,
    }),
    cronDuration: new Histogram({
      name: "cron_job_duration_seconds",
      help: "Duration of scheduled job runs.",
      labelNames: ["job"] as const,
      buckets: LATENCY_BUCKETS,
      registers,
    }),
  };

  // Bounded label sets start at zero, so that a quiet system shows 0 rather than "No data".
  for (const result of EVALUATION_RESULTS) metrics.alertEvaluations.inc({ result }, 0);
  for (const state of DLQ_STATES) metrics.dlqEntries.set({ state }, 0);
  for (const channel of CHANNELS) {
    for (const status of DELIVERY_STATUSES) metrics.deliveries.inc({ channel, status }, 0);
    for (const outcome of RETRY_OUTCOMES) metrics.retryAttempts.inc({ channel, outcome }, 0);
    metrics.deliveryDuration.zero({ channel });
  }
  metrics.alertsFired.inc(0);
  metrics.silencedNotifications.inc(0);
  for (const state of ALERT_STATES) metrics.alertsByState.set({ state }, 0);
  for (const kind of NOTIFICATION_KINDS) metrics.alertNotifications.inc({ kind }, 0);
  for (const [from, to] of ALERT_TRANSITIONS) metrics.alertTransitions.inc({ from, to }, 0);
  for (const reason of ["api_key", "auth_failures"]) metrics.rateLimited.inc({ reason }, 0);
  for (const state of ["in_use", "idle"]) metrics.databaseConnections.set({ state }, 0);
  for (const outcome of ["recipients", "admins", "dropped"]) {
    metrics.alertmanagerAlerts.inc({ outcome }, 0);
  }

  registerProcessMetrics(registry);
  return metrics;
}

export type Metrics = ReturnType<typeof createMetrics>;

/** Sets the breaker gauge: 1 for `state`, 0 for the other two. */
export function setBreakerState(metrics: Metrics, agentName: string, state: BreakerState): void {
  for (const s of BREAKER_STATES) {
    metrics.breakerState.set({ agent_name: agentName, state: s }, s === state ? 1 : 0);
  }
}

export function initJobMetrics(metrics: Metrics, job: string): void {
  for (const status of JOB_STATUSES) metrics.cronRuns.inc({ job, status }, 0);
  metrics.cronDuration.zero({ job });
}

/** prom-client's default Node metrics throw under Deno: these are read from Deno itself. */
function registerProcessMetrics(registry: Registry): void {
  const registers = [registry];
  const startSeconds = Date.now() / 1000 - performance.now() / 1000;
  new Gauge({
    name: "process_resident_memory_bytes",
    help: "Resident memory size in bytes.",
    registers,
    collect() {
      this.set(Deno.memoryUsage().rss);
    },
  });
  new Gauge({
    name: "process_heap_used_bytes",
    help: "V8 heap in use, in bytes.",
    registers,
    collect() {
      this.set(Deno.memoryUsage().heapUsed);
    },
  });
  new Gauge({
    name: "process_heap_total_bytes",
    help: "V8 heap reserved, in bytes.",
    registers,
    collect() {
      this.set(Deno.memoryUsage().heapTotal);
    },
  });
  // CPU time is read from the process at scrape time; counters that only ever grow.
  const cpu = (
    name: string,
    help: string,
    read: (u: ReturnType<typeof process.cpuUsage>) => number,
  ) =>
    new Counter({
      name,
      help,
      registers,
      collect() {
        this.reset();
        this.inc(read(process.cpuUsage()) / 1e6);
      },
    });
  cpu("process_cpu_user_seconds_total", "User CPU time spent, in seconds.", (u) => u.user);
  cpu("process_cpu_system_seconds_total", "System CPU time spent, in seconds.", (u) => u.system);
  cpu(
    "process_cpu_seconds_total",
    "User and system CPU time spent, in seconds.",
    (u) => u.user + u.system,
  );
  new Gauge({
    name: "process_start_time_seconds",
    help: "Start time of the process since the Unix epoch, in seconds.",
    registers,
  }).set(startSeconds);
  new Gauge({
    name: "process_uptime_seconds",
    help: "Seconds since the process started.",
    registers,
    collect() {
      this.set(performance.now() / 1000);
    },
  });
  new Gauge({
    name: "vigil_build_info",
    help: "Always 1; labels carry the vigil and Deno versions.",
    labelNames: ["version", "deno"] as const,
    registers,
  }).set({ version: VERSION, deno: Deno.version.deno }, 1);
}

/** What the renderer reads of prom-client's (15.x) metrics: the same fields their get() reads. */
interface MetricInternals {
  name: string;
  help: string;
  type: string;
  hashMap: Record<string, SeriesInternals>;
  collect?: () => unknown;
  /** Histograms: their buckets, in order. */
  upperBounds?: number[];
}

interface SeriesInternals {
  labels: Record<string, unknown>;
  /** Counters and gauges. */
  value?: number;
  /** Histograms: observations per bucket (not cumulative), by upper bound. */
  bucketValues?: Record<string, number>;
  sum?: number;
  count?: number;
}

export interface RenderOptions {
  /** Longest the renderer works in one event-loop turn before it lets other work in (ms). */
  sliceMs?: number;
  /** How it lets other work in: a macrotask, so that pending I/O (requests) is polled. */
  pause?: () => Promise<void>;
}

/** The event loop's turn: `setTimeout(0)`; a microtask or setImmediate would not poll I/O. */
const nextTurn = () => new Promise<void>((resolve) => setTimeout(resolve, 0));

/**
 * The registry in Prometheus' text format, byte for byte what prom-client's `registry.metrics()`
 * returns (metrics_test.ts compares them), without holding the event loop for the whole of it:
 * prom-client renders every series in one turn (≈ 11 ms at 10,000 series, during which no request
 * is served), and builds an object per histogram bucket on the way. This writes each line from
 * the metrics' own values (one label string per series, shared by its bucket lines), keeps the
 * lines of a series until its value (a histogram's count) changes — most series are idle between
 * two scrapes — and yields to the event loop whenever a turn has taken `sliceMs`: a request that
 * arrives during a scrape waits for one slice, not for the whole text. Each metric's series are
 * listed at once (after its `collect`), so a family is rendered from one set of series, as
 * prom-client does; values are read as each series is written.
 *
 * Counters, gauges and histograms of a Prometheus-format registry without default labels are
 * rendered here; anything else (summaries, OpenMetrics, default labels) by prom-client itself.
 */
export async function renderMetrics(
  registry: Registry,
  { sliceMs = 2, pause = nextTurn }: RenderOptions = {},
): Promise<string> {
  const defaults = (registry as unknown as { _defaultLabels?: object })._defaultLabels;
  if (
    registry.contentType !== Registry.PROMETHEUS_CONTENT_TYPE ||
    (defaults && Object.keys(defaults).length > 0)
  ) {
    return await registry.metrics();
  }
  // The text is joined in pieces of about PIECE_CHARS as it goes, between pauses, so that the
  // last join copies a few dozen flat strings: no turn builds the whole text from its lines.
  const pieces: string[] = [];
  let parts: string[] = [];
  let size = 0;
  const add = (text: string) => {
    parts.push(text);
    size += text.length;
    if (size < PIECE_CHARS) return;
    pieces.push(parts.join(""));
    parts = [];
    size = 0;
  };
  let turn = performance.now();
  const maybePause = async () => {
    if (performance.now() - turn < sliceMs) return;
    await pause();
    turn = performance.now();
  };
  const metrics = registry.getMetricsAsArray();
  for (let f = 0; f < metrics.length; f++) {
    const metric = metrics[f];
    if (f > 0) add("\n\n");
    if (!(metric instanceof Counter || metric instanceof Gauge || metric instanceof Histogram)) {
      add(await registry.getSingleMetricAsString(metric.name));
      await maybePause();
      continue;
    }
    const m = metric as unknown as MetricInternals;
    if (m.collect) {
      const collected = m.collect();
      if (collected instanceof Promise) await collected;
    }
    const name = escapeString(m.name);
    add(`# HELP ${name} ${escapeString(m.help)}\n# TYPE ${name} ${m.type}`);
    const series = Object.values(m.hashMap);
    const bounds = m.type === "histogram" ? m.upperBounds! : undefined;
    // `name_bucket{le="…",` for each bucket, then +Inf: prom-client puts `le` first.
    const bucketHeads = bounds?.map((b) => `${m.name}_bucket{le="${b}"`);
    const infHead = `${m.name}_bucket{le="+Inf"`;
    for (let i = 0; i < series.length; i++) {
      const s = series[i];
      // A series that has not changed since the last scrape has the same lines: a histogram's
      // buckets and sum change only with its count (observe); reset and zero make new series.
      const key = bounds ? s.count! : s.value!;
      let done = rendered.get(s);
      if (!done || done.key !== key || done.labels !== s.labels) {
        done = { key, labels: s.labels, text: renderSeries(m, name, s, bucketHeads, infHead) };
        rendered.set(s, done);
      }
      add(done.text);
      if ((i & 15) === 15) await maybePause();
    }
    await maybePause();
  }
  add("\n");
  pieces.push(parts.join(""));
  return pieces.join("");
}

/** Characters per piece of the text (see renderMetrics): tens of µs to join each. */
const PIECE_CHARS = 64 * 1024;

/** Each series' lines as last rendered, by the series object (prom-client's own). */
const rendered = new WeakMap<SeriesInternals, { key: number; labels: object; text: string }>();

/**
 * One series' lines, each after a newline, as one flat string: joined from an array (a string
 * built with `+=` is a rope, which every later join would walk again, scrape after scrape).
 */
function renderSeries(
  m: MetricInternals,
  name: string,
  s: SeriesInternals,
  bucketHeads: string[] | undefined,
  infHead: string,
): string {
  const labels = labelString(s.labels);
  if (!bucketHeads) {
    return ["\n", name, labels ? `{${labels}}` : "", " ", valueString(s.value!)].join("");
  }
  const bounds = m.upperBounds!;
  const tail = labels ? `,${labels}} ` : "} ";
  const lines = [""]; // each line after a newline
  let cumulative = 0;
  for (let b = 0; b < bounds.length; b++) {
    cumulative += s.bucketValues![bounds[b]];
    lines.push(bucketHeads[b] + tail + valueString(cumulative));
  }
  const braces = labels ? `{${labels}} ` : " ";
  lines.push(
    infHead + tail + valueString(s.count!),
    `${m.name}_sum${braces}${valueString(s.sum!)}`,
    `${m.name}_count${braces}${valueString(s.count!)}`,
  );
  return lines.join("\n");
}

/** `a="x",b="y"` in the labels' own order, escaped as prom-client escapes them. */
function labelString(labels: Record<string, unknown>): string {
  let out = "";
  for (const key in labels) {
    if (!Object.prototype.hasOwnProperty.call(labels, key)) continue;
    const value = labels[key];
    const text = typeof value === "string" ? escapeString(value).replace(/"/g, '\\"') : value;
    out += `${out ? "," : ""}${key}="${text}"`;
  }
  return out;
}

function escapeString(text: string): string {
  return text.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
}

/** prom-client's getValueAsString (its spelling of NaN included). */
function valueString(value: number): string {
  if (Number.isNaN(value)) return "Nan";
  if (!Number.isFinite(value)) return value < 0 ? "-Inf" : "+Inf";
  return `${value}`;
}
