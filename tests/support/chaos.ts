/**
 * A process chaos run of vigil's delivery guarantees: "an alert is never lost and never sent
 * twice". Two real replicas (`src/main.ts`, as `deno task start` runs it) share one real
 * PostgreSQL; a slow and flaky webhook receiver and a fake Resend that de-duplicates by
 * Idempotency-Key (like the real one) record every request. Alerts are evaluated on both replicas
 * at once (later waves before each later event), replicas are killed with SIGKILL while sends
 * are in flight and restarted, one is stopped with SIGTERM during slow sends and must exit 0
 * with its sends recorded, one is frozen (SIGSTOP) past its lease and resumed; meanwhile the
 * retry job runs on the live replica. Then the receivers become healthy and the retry job is
 * driven on both replicas until nothing is left to do, and the database is compared with what
 * the receivers saw.
 *
 * `runChaos()` is used by tests/chaos_test.ts (which asserts) and bench/chaos.ts (which reports).
 *
 * What counts, per alert firing and channel:
 * - a user-visible copy: a distinct accepted `webhook-id` (a receiver de-duplicates by it, per
 *   Standard Webhooks), a distinct accepted Resend Idempotency-Key, a `notifications` row;
 * - lost: no copy, and nothing visible in the database (exhausted / uncertain) says so;
 * - duplicates: copies beyond one;
 * - stuck: pending / failed deliveries or pending DLQ rows after recovery;
 * - resends: a request for a key that had already been accepted (allowed: it is idempotent).
 */
import postgres from "postgres";
import { Webhook } from "standardwebhooks";
import { startVigil, type VigilProcess } from "./process.ts";
import { type LocalServer, serveLocal } from "./servers.ts";

export interface ChaosOptions {
  /** A database for this run (migrated or empty; the replicas migrate at start-up). */
  databaseUrl: string;
  alerts?: number;
  /** Every n-th alert also sends an email (all have in-app and a webhook). */
  emailEvery?: number;
  /**
   * The share of the alerts held back from the first evaluation and switched on in waves, one
   * before each later event, so that every signal meets fresh sends.
   */
  laterWaves?: number;
  /** SIGKILLs (alternating replicas), and whether one SIGTERM happens among them. */
  kills?: number;
  sigterm?: boolean;
  /** Replicas frozen (SIGSTOP) mid-send for longer than the lease, then resumed (SIGCONT). */
  pauses?: number;
  /** Receivers during the chaos phase. */
  failureRate?: number;
  latencyMs?: [number, number];
  /** Share of requests answered only after the sender's timeout, yet processed (accepted). */
  lateRate?: number;
  /**
   * How long those are held (default: the send timeout + 3 s, so that a retry can arrive while
   * the first request is still in progress: Resend answers it 409).
   */
  lateMs?: number;
  /** Receivers while the SIGTERM is sent (sends must still be in flight). */
  slowLatencyMs?: [number, number];
  /**
   * A key never fails more than this many times in a row: the injected faults alone then cannot
   * exhaust a delivery's retries, so an exhausted delivery after a healthy recovery is vigil's.
   */
  maxConsecutiveFailures?: number;
  /** DELIVERY_BACKOFF, DELIVERY_LEASE_SECONDS, WEBHOOK_TIMEOUT_MS / RESEND_TIMEOUT_MS. */
  backoff?: string;
  leaseSeconds?: number;
  sendTimeoutMs?: number;
  shutdownTimeoutMs?: number;
  /** How long recovery may take before what is left counts as stuck. */
  recoveryTimeoutMs?: number;
  seed?: number;
  /** Progress lines (default: none). */
  log?: (line: string) => void;
  /** Writes every log line of every replica process here (JSON lines, with `incarnation`). */
  logFile?: string;
  /** Extra environment for both replicas. */
  env?: Record<string, string>;
}

export interface ChaosEvent {
  at_ms: number;
  replica: string;
  /** SIGSTOP: frozen past its lease, then SIGCONT (exit_ms is how long it was frozen). */
  signal: "SIGKILL" | "SIGTERM" | "SIGSTOP";
  /** Requests held by the receivers when the signal was sent (all replicas). */
  in_flight: number;
  /** Whether the target itself was seen sending (its email in flight, or its job running). */
  target_busy: boolean;
  exit_code: number;
  /** From the signal to the exit. */
  exit_ms: number;
  restart_ms: number;
}

export interface ChaosResult {
  alerts: number;
  /**
   * The code under src/, migrations/ or deno.json changed during the run: restarted replicas
   * ran another version than the first ones (the figures are then not about one version).
   */
  code_changed: boolean;
  /** Distinct (alert, fired_at) among the non-suppressed deliveries. */
  firings: number;
  /** Alerts that never fired by the end (their channels count as lost). */
  unfired: number;
  /** Alerts whose claimed evaluation a kill interrupted, re-evaluated during recovery. */
  re_evaluated: number;
  /** Attempts recorded by a sender that had lost its lease (kept, fenced out); null: no column. */
  fenced_attempts: number | null;
  /** Firings × channels. */
  expected: number;
  lost: number;
  duplicates: number;
  stuck: number;
  resends: number;
  kills: number;
  sigterms: number;
  pauses: number;
  sigterm: {
    exit_code: number;
    exit_ms: number;
    timeout_ms: number;
    in_flight: number;
    /** What is known of each unrecorded delivery (row, attempts, requests; times from the signal). */
    details: string[];
    /** Sends of the stopped process that were in flight during the stop (it let them finish). */
    sends_during_stop: number;
    /** Their delivery statuses once it had exited. */
    statuses: Record<string, number>;
    /**
     * Of those, left `pending` and still leased to the exited process (nothing recorded) when it
     * had exited. A send cut off at the deadline and released (pending, leased to nobody) counts
     * as recorded: any replica sends it at its next tick.
     */
    unrecorded: number;
    /**
     * Of those, accepted by the receiver yet not recorded delivered (the sender gave up before
     * the answer: an unknown outcome, retried under the same key). Information only.
     */
    accepted_not_delivered: number;
  } | null;
  by_status: Record<string, number>;
  dlq_by_state: Record<string, number>;
  delivered: number;
  exhausted: number;
  uncertain: number;
  /** Database and receivers disagree: delivered without a copy, or a copy not delivered. */
  disagreements: number;
  requests: {
    webhook: number;
    email: number;
    injected_failures: number;
    /** Answered after the sender's timeout (and accepted): unknown outcomes. */
    late_answers: number;
    /** Resend 409 concurrent_idempotent_requests (a key still being processed). */
    conflicts: number;
    /** Resend 409 invalid_idempotent_request (same key, another body). */
    mismatches: number;
    bad_signatures: number;
  };
  recovered: boolean;
  recovery_ms: number;
  wall_ms: number;
  seed: number;
  events: ChaosEvent[];
  /** Job runs answered with status "error", and job requests cut by a signal. */
  job_errors: number;
  job_interrupted: number;
  /** Exit codes of the final graceful stop. */
  final_exit_codes: number[];
  /** Human-readable details of every problem found (lost, duplicate, stuck, disagreement). */
  problems: string[];
  /** warn / error / fatal log lines of every replica process, counted by message template. */
  log_summary: Record<string, number>;
}

const ADMIN_KEY = "vgl_chaos_" + "c".repeat(40);
const SECRET = "whsec_" + btoa("chaos-signing-secret-0123456789ab");

const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Real time: these are real processes whose leases and backoff are real seconds. */
async function waitUntil(predicate: () => boolean, timeoutMs: number, every = 5) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (predicate()) return true;
    await sleep(every);
  }
  return predicate();
}

/** mulberry32: a small seeded generator, so that a run's faults can be replayed. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// ---- flaky receivers --------------------------------------------------------------------

export interface FaultMode {
  failureRate: number;
  latencyMs: [number, number];
  /**
   * Requests held past the sender's timeout and then processed (accepted): the sender sees no
   * answer (an unknown outcome) while the receiver has the message.
   */
  lateRate?: number;
  lateMs?: number;
}

export const HEALTHY: FaultMode = { failureRate: 0, latencyMs: [1, 5] };

/** Decides, per request, how long it is held and whether it fails (500). */
export class Faults {
  mode: FaultMode;
  injected = 0;
  late = 0;
  readonly #streaks = new Map<string, number>();

  constructor(
    mode: FaultMode,
    private readonly random: () => number,
    private readonly maxConsecutive: number,
  ) {
    this.mode = mode;
  }

  decide(key: string): { fail: boolean; delayMs: number } {
    const [lo, hi] = this.mode.latencyMs;
    const delayMs = lo + this.random() * (hi - lo);
    const streak = this.#streaks.get(key) ?? 0;
    const fail = streak < this.maxConsecutive && this.random() < this.mode.failureRate;
    this.#streaks.set(key, fail ? streak + 1 : 0);
    if (fail) this.injected++;
    if (!fail && this.mode.lateMs && this.random() < (this.mode.lateRate ?? 0)) {
      this.late++;
      return { fail, delayMs: this.mode.lateMs };
    }
    return { fail, delayMs };
  }
}

export interface WebhookRequest {
  id: string;
  alertId: string | null;
  /** Arrival, and when it was answered (processed). */
  at: number;
  doneAt: number;
  status: number;
  outcome: "accepted" | "replayed" | "failed" | "rejected";
}

/**
 * A webhook receiver that verifies signatures and de-duplicates by `webhook-id` (Standard
 * Webhooks): the first 2xx for an id is the user-visible copy; later requests for it are
 * re-sends, answered 200 without a second copy.
 */
export function flakyWebhook(faults: Faults, secret: string) {
  const requests: WebhookRequest[] = [];
  const accepted = new Map<string, { alertId: string | null; at: number }>();
  let held = 0;
  let badSignatures = 0;
  const server = serveLocal(async (req) => {
    const at = Date.now();
    const body = await req.text();
    const id = req.headers.get("webhook-id") ?? "";
    let payload: { delivery_id?: string; alert?: { id?: string } } | undefined;
    try {
      payload = new Webhook(secret).verify(body, Object.fromEntries(req.headers)) as typeof payload;
    } catch { /* counted below */ }
    const alertId = payload?.alert?.id ?? null;
    if (!payload || payload.delivery_id !== id) {
      badSignatures++;
      requests.push({ id, alertId, at, doneAt: at, status: 400, outcome: "rejected" });
      return new Response("bad signature", { status: 400 });
    }
    const { fail, delayMs } = faults.decide(`webhook:${id}`);
    held++;
    try {
      await sleep(delayMs);
    } finally {
      held--;
    }
    // Processing happens here, after the latency: de-duplicate, fail, or accept.
    if (accepted.has(id)) {
      requests.push({ id, alertId, at, doneAt: Date.now(), status: 200, outcome: "replayed" });
      return new Response(null, { status: 200 });
    }
    if (fail) {
      requests.push({ id, alertId, at, doneAt: Date.now(), status: 500, outcome: "failed" });
      return new Response("injected failure", { status: 500 });
    }
    accepted.set(id, { alertId, at: Date.now() });
    requests.push({ id, alertId, at, doneAt: Date.now(), status: 204, outcome: "accepted" });
    return new Response(null, { status: 204 });
  });
  return {
    url: server.url,
    requests,
    accepted,
    held: () => held,
    badSignatures: () => badSignatures,
    close: () => server.close(),
  };
}

export interface EmailRequest {
  key: string | null;
  /** Which process sent it (replica and incarnation). */
  source: string;
  at: number;
  doneAt: number;
  status: number;
  outcome: "created" | "replayed" | "failed" | "conflict" | "mismatch";
}

/**
 * Resend's `POST /emails` with its idempotency: a key already accepted returns the first answer
 * (same email id) without a second email, the same key with another body is 409
 * `invalid_idempotent_request`, and a key still being processed is 409
 * `concurrent_idempotent_requests`. Only a success stores the key. `sourceOf` names the sending
 * process from its API key (each replica gets its own).
 */
export function idempotentResend(faults: Faults, sourceOf: (apiKey: string) => string) {
  const requests: EmailRequest[] = [];
  const accepted = new Map<string, { emailId: string; body: string; source: string; at: number }>();
  const processing = new Set<string>();
  const held = new Map<string, number>();
  const server = serveLocal(async (req) => {
    const at = Date.now();
    if (req.method !== "POST" || new URL(req.url).pathname !== "/emails") {
      return Response.json({ statusCode: 404, name: "not_found", message: "Not found" }, {
        status: 404,
      });
    }
    const apiKey = (req.headers.get("authorization") ?? "").replace(/^Bearer /, "");
    const source = sourceOf(apiKey);
    const key = req.headers.get("idempotency-key");
    const body = await req.text();
    const record = (status: number, outcome: EmailRequest["outcome"]) =>
      requests.push({ key, source, at, doneAt: Date.now(), status, outcome });
    const error = (status: number, name: string, message: string) =>
      Response.json({ statusCode: status, name, message }, { status });
    const { fail, delayMs } = faults.decide(`email:${key}`);
    // A key is in progress from the arrival of its first request to its answer: another request
    // with it meanwhile is refused (409), like Resend does.
    const first = key !== null && !accepted.has(key) && !processing.has(key);
    if (first) processing.add(key);
    held.set(source, (held.get(source) ?? 0) + 1);
    try {
      await sleep(delayMs);
    } finally {
      held.set(source, held.get(source)! - 1);
      if (first) processing.delete(key);
    }
    const previous = key ? accepted.get(key) : undefined;
    if (previous) {
      if (previous.body !== body) {
        record(409, "mismatch");
        return error(
          409,
          "invalid_idempotent_request",
          "Same idempotency key used with a different request payload.",
        );
      }
      record(200, "replayed");
      return Response.json({ id: previous.emailId });
    }
    if (key !== null && !first) {
      record(409, "conflict");
      return error(
        409,
        "concurrent_idempotent_requests",
        "Same idempotency key used while original request is still in progress.",
      );
    }
    if (fail) {
      record(500, "failed");
      return error(500, "internal_server_error", "injected failure");
    }
    const emailId = crypto.randomUUID();
    if (key) accepted.set(key, { emailId, body, source, at: Date.now() });
    record(200, "created");
    return Response.json({ id: emailId });
  });
  return {
    url: server.url,
    requests,
    accepted,
    held: (source?: string) =>
      source === undefined ? [...held.values()].reduce((a, b) => a + b, 0) : held.get(source) ?? 0,
    close: () => server.close(),
  };
}

/**
 * A digest of the code the replicas run (src/, migrations/, deno.json): a restarted replica
 * loads the working tree as it is then, so a run during which it changed mixes versions.
 */
async function codeDigest(): Promise<string> {
  const root = new URL("../../", import.meta.url);
  const files: string[] = [];
  const walk = (dir: URL, rel: string) => {
    for (const entry of Deno.readDirSync(dir)) {
      const path = `${rel}${entry.name}`;
      if (entry.isDirectory) walk(new URL(`${entry.name}/`, dir), `${path}/`);
      else files.push(path);
    }
  };
  walk(new URL("src/", root), "src/");
  walk(new URL("migrations/", root), "migrations/");
  files.push("deno.json");
  const hash = new Uint8Array(
    await crypto.subtle.digest(
      "SHA-256",
      new TextEncoder().encode(
        files.sort().map((f) => `${f}\n${Deno.readTextFileSync(new URL(f, root))}`).join("\n"),
      ),
    ),
  );
  return [...hash.slice(0, 8)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

// ---- replicas -----------------------------------------------------------------------------

export type JobOutcome =
  | { kind: "ran"; status: "success" | "error"; result: unknown }
  | { kind: "interrupted"; error: string };

/** One replica: restarted under the same environment; each start is a new incarnation. */
export class Replica {
  incarnation = 0;
  process: VigilProcess | undefined;
  /** Job requests currently outstanding. */
  outstanding = 0;
  jobErrors = 0;
  interrupted = 0;
  readonly logs: Record<string, unknown>[] = [];

  constructor(readonly name: string, readonly env: Record<string, string>) {}

  get label(): string {
    return `${this.name}${this.incarnation}`;
  }

  get up(): boolean {
    return this.process !== undefined;
  }

  async start(): Promise<void> {
    this.incarnation++;
    this.process = await startVigil(this.env);
  }

  /** Sends a signal and waits for the exit; the process's log lines are kept. */
  async stop(signal: "SIGKILL" | "SIGTERM"): Promise<{ code: number; ms: number }> {
    const p = this.process;
    if (!p) return { code: -1, ms: 0 };
    const started = performance.now();
    const code = await p.stop(signal);
    const ms = performance.now() - started;
    this.logs.push(...p.logs.map((l) => ({ ...l, incarnation: this.label })));
    this.process = undefined;
    return { code, ms };
  }

  /** `POST /v1/jobs/{name}/run` on this replica. */
  async job(name: string): Promise<JobOutcome> {
    const p = this.process;
    if (!p) return { kind: "interrupted", error: "not running" };
    this.outstanding++;
    try {
      const res = await fetch(`${p.url}/v1/jobs/${name}/run`, {
        method: "POST",
        headers: { authorization: `Bearer ${ADMIN_KEY}`, "content-type": "application/json" },
        body: "{}",
        signal: AbortSignal.timeout(60_000),
      });
      const text = await res.text();
      if (res.status === 404) {
        throw new ContractMissing(
          `POST /v1/jobs/${name}/run answered 404 (${text.slice(0, 200)}): ` +
            "the jobs endpoint of the delivery contract is not there",
        );
      }
      if (res.status !== 200) throw new Error(`job ${name}: HTTP ${res.status} ${text}`);
      const body = JSON.parse(text) as { status: "success" | "error"; result: unknown };
      if (body.status !== "success") this.jobErrors++;
      return { kind: "ran", status: body.status, result: body.result };
    } catch (error) {
      if (error instanceof ContractMissing) throw error;
      if (error instanceof Error && error.message.startsWith(`job ${name}: HTTP`)) throw error;
      this.interrupted++;
      return { kind: "interrupted", error: String(error) };
    } finally {
      this.outstanding--;
    }
  }
}

export class ContractMissing extends Error {
  override name = "ContractMissing";
}

/** Runs a job on a replica over and over (while it is up) until stopped. */
function drive(replica: Replica, job: string) {
  let stopped = false;
  let runs = 0;
  let failure: unknown;
  const loop = (async () => {
    while (!stopped) {
      if (!replica.up) {
        await sleep(20);
        continue;
      }
      try {
        const outcome = await replica.job(job);
        runs++;
        await sleep(outcome.kind === "interrupted" ? 20 : 50);
      } catch (error) {
        failure = error;
        return;
      }
    }
  })();
  return {
    get runs() {
      return runs;
    },
    stop: async () => {
      stopped = true;
      await loop;
      if (failure) throw failure;
    },
    /** Stops asking for more runs without waiting for the one in flight. */
    halt: () => (stopped = true),
    done: loop,
  };
}

/**
 * After a SIGTERM: every send the process had in flight when signalled (or started while
 * stopping) must have its outcome recorded by the time it exits: none may be left `pending` for
 * another replica to take over when the lease runs out. Emails are attributed to the process
 * exactly (its own API key); webhooks only while the other replica is idle, which the scenario
 * arranges, unless a minutely cron tick fell into the window.
 */
async function checkGracefulStop(input: {
  sql: postgres.Sql;
  label: string;
  signalledAt: number;
  code: number;
  ms: number;
  inFlight: number;
  timeoutMs: number;
  emails: EmailRequest[];
  webhooks: WebhookRequest[];
  /** Since when the target was the only replica sending. */
  webhooksSince: number;
  log: (line: string) => void;
}): Promise<NonNullable<ChaosResult["sigterm"]>> {
  const { sql, label, signalledAt } = input;
  const exitedAt = Date.now();
  const minute = 60_000;
  const cronTick = Math.floor((signalledAt - 2_000) / minute) !== Math.floor(exitedAt / minute);
  const during = (r: { at: number; doneAt: number }) => r.doneAt >= signalledAt && r.at < exitedAt;
  const emails = input.emails.filter((r) => r.source === label && during(r));
  // A request that arrived before the other replica fell quiet may be that replica's (one it
  // sent just before it was killed can still be held by the receiver).
  const webhooks = cronTick
    ? []
    : input.webhooks.filter((r) => during(r) && r.at >= input.webhooksSince);
  const keys = [...new Set([...emails.map((r) => r.key!), ...webhooks.map((r) => r.id)])];
  const accepted = new Set([
    ...emails.filter((r) => r.outcome === "created" || r.outcome === "replayed").map((r) => r.key),
    ...webhooks.filter((r) => r.outcome === "accepted" || r.outcome === "replayed").map((r) =>
      r.id
    ),
  ]);
  const rows = keys.length
    ? await sql<{ id: string; status: string; leased: boolean; last_error: string | null }[]>`
        select id, status, lease_until is not null as leased, last_error
        from alert_deliveries where id = any(${keys}::uuid[])`
    : [];
  const byId = new Map(rows.map((r) => [r.id, r]));
  const statuses: Record<string, number> = {};
  for (const k of keys) {
    const row = byId.get(k);
    const s = !row ? "missing" : row.status === "pending" && !row.leased ? "released" : row.status;
    statuses[s] = (statuses[s] ?? 0) + 1;
  }
  // Released (pending, leased to nobody: cut off at the deadline) is recorded; still leased to
  // the exited process is not.
  const unrecorded = keys.filter((k) => {
    const row = byId.get(k);
    return !row || (row.status === "pending" && row.leased);
  });
  const acceptedNotDelivered = keys.filter((k) =>
    accepted.has(k) && byId.get(k)?.status !== "delivered"
  );
  const errors = [...new Set(acceptedNotDelivered.map((k) => byId.get(k)?.last_error))];
  const details = unrecorded.length
    ? await describeDeliveries(sql, unrecorded, signalledAt, exitedAt, [
      ...input.emails.map((r) => ({
        key: r.key,
        at: r.at,
        doneAt: r.doneAt,
        what: `email ${r.source} ${r.outcome}`,
      })),
      ...input.webhooks.map((r) => ({
        key: r.id,
        at: r.at,
        doneAt: r.doneAt,
        what: `webhook ${r.outcome}`,
      })),
    ])
    : [];
  input.log(
    `${label} exited ${input.code} after ${Math.round(input.ms)} ms; sends in flight during the ` +
      `stop: ${emails.length} emails, ${webhooks.length} webhooks${
        cronTick ? " (webhooks not attributed: cron tick)" : ""
      } → ${JSON.stringify(statuses)}; left leased to it: ${unrecorded.length}` +
      (unrecorded.length ? ` (${unrecorded.slice(0, 5).join(", ")})` : "") +
      `; accepted by the receiver but not recorded delivered: ${acceptedNotDelivered.length}` +
      (errors.length ? ` (errors: ${errors.slice(0, 3).join(" | ")})` : "") +
      details.map((d) => `\n  ${d}`).join(""),
  );
  return {
    details,
    exit_code: input.code,
    exit_ms: Math.round(input.ms),
    timeout_ms: input.timeoutMs,
    in_flight: input.inFlight,
    sends_during_stop: keys.length,
    statuses,
    unrecorded: unrecorded.length,
    accepted_not_delivered: acceptedNotDelivered.length,
  };
}

/** Everything known about some deliveries: row, attempts, requests (times relative to `t0`). */
async function describeDeliveries(
  sql: postgres.Sql,
  ids: string[],
  t0: number,
  t1: number,
  requests: { key: string | null; at: number; doneAt: number; what: string }[],
): Promise<string[]> {
  const rel = (t: number | Date | null) =>
    t === null ? "-" : `${((new Date(t).getTime() - t0) / 1000).toFixed(2)}s`;
  const rows = await sql<
    {
      id: string;
      channel: string;
      status: string;
      attempts: number;
      lease_until: Date | null;
      created_at: Date;
      history: {
        attempt: number;
        at: string;
        outcome: string;
        error: string | null;
        fenced: boolean;
      }[];
    }[]
  >`
    select d.id, d.channel, d.status, d.attempts, d.lease_until, d.created_at,
           coalesce((select json_agg(json_build_object('attempt', a.attempt, 'at', a.at,
                       'outcome', a.outcome, 'error', a.error, 'fenced', a.fenced) order by a.id)
                     from delivery_attempts a where a.delivery_id = d.id), '[]') as history
    from alert_deliveries d where d.id = any(${ids}::uuid[])`;
  return rows.map((r) =>
    `${r.channel} ${r.id}: ${r.status}, lease until ${rel(r.lease_until)} (exit at ${
      rel(t1)
    }), created ${rel(r.created_at)}, attempts ${r.attempts} [${
      r.history.map((h) =>
        `#${h.attempt} ${h.outcome}${h.fenced ? " fenced" : ""} @${rel(new Date(h.at))}${
          h.error ? ` (${h.error})` : ""
        }`
      ).join(", ")
    }]; requests [${
      requests.filter((q) => q.key === r.id).map((q) => `${q.what} ${rel(q.at)}→${rel(q.doneAt)}`)
        .join(", ")
    }]`
  );
}

// ---- the run ------------------------------------------------------------------------------

interface DeliveryRow {
  id: string;
  alert_id: string | null;
  channel: string;
  status: string;
  attempts: number;
  fired_at: string | null;
  dlq_state: string | null;
  retry_count: number | null;
  next_retry_at: Date | null;
  last_error: string | null;
}

export async function runChaos(options: ChaosOptions): Promise<ChaosResult> {
  const o = {
    alerts: 200,
    emailEvery: 2,
    laterWaves: 0.4,
    kills: 4,
    sigterm: true,
    pauses: 1,
    failureRate: 0.3,
    lateRate: 0.03,
    latencyMs: [50, 400] as [number, number],
    slowLatencyMs: [900, 1600] as [number, number],
    maxConsecutiveFailures: 3,
    backoff: "1s,1s,2s,2s,3s",
    leaseSeconds: 3,
    sendTimeoutMs: 2000,
    shutdownTimeoutMs: 10_000,
    recoveryTimeoutMs: 40_000,
    seed: Math.floor(Math.random() * 2 ** 31),
    log: (_line: string) => {},
    ...options,
  };
  const started = performance.now();
  const wallStart = Date.now();
  const codeAtStart = await codeDigest();
  const since = () => Math.round(performance.now() - started);
  const log = (line: string) => o.log(`[${(since() / 1000).toFixed(1)}s] ${line}`);
  const random = seeded(o.seed);
  const chaos: FaultMode = {
    failureRate: o.failureRate,
    latencyMs: o.latencyMs,
    lateRate: o.lateRate,
    lateMs: o.lateMs ?? o.sendTimeoutMs + 3000,
  };
  const faults = new Faults(chaos, random, o.maxConsecutiveFailures);

  const sql = postgres(o.databaseUrl, { max: 2, onnotice: () => {} });
  const replicas: Replica[] = [];
  const sourceByKey = new Map<string, Replica>();
  const hook = flakyWebhook(faults, SECRET);
  const resend = idempotentResend(faults, (apiKey) => sourceByKey.get(apiKey)?.label ?? apiKey);
  const gauge: LocalServer = serveLocal(() => Response.json({ value: 11 }));
  const held = () => hook.held() + resend.held();

  try {
    for (const name of ["A", "B"]) {
      const apiKey = `re_chaos_${name}`;
      const replica = new Replica(name, {
        DATABASE_URL: o.databaseUrl,
        ADMIN_API_KEY: ADMIN_KEY,
        ALLOW_PRIVATE_TARGETS: "true",
        LOG_LEVEL: "info",
        DB_POOL_SIZE: "10",
        RESEND_API_KEY: apiKey,
        RESEND_BASE_URL: resend.url,
        RESEND_RATE_PER_SECOND: "1000",
        RESEND_TIMEOUT_MS: String(o.sendTimeoutMs),
        WEBHOOK_TIMEOUT_MS: String(o.sendTimeoutMs),
        DELIVERY_BACKOFF: o.backoff,
        DELIVERY_LEASE_SECONDS: String(o.leaseSeconds),
        SHUTDOWN_TIMEOUT_MS: String(o.shutdownTimeoutMs),
        ALERT_EMAIL_FROM: "vigil <alerts@example.com>",
        ...o.env,
      });
      replicas.push(replica);
      sourceByKey.set(apiKey, replica);
    }
    const [a, b] = replicas;

    // A first: the remote agent is registered through it, so that B loads it at start-up.
    await a.start();
    const api = async (
      replica: Replica,
      method: string,
      path: string,
      key: string,
      body?: unknown,
    ) => {
      const res = await fetch(`${replica.process!.url}${path}`, {
        method,
        headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await res.text();
      if (!res.ok) throw new Error(`${method} ${path}: HTTP ${res.status} ${text}`);
      return text ? JSON.parse(text) : undefined;
    };
    await api(a, "POST", "/v1/agents", ADMIN_KEY, {
      name: "gauge",
      url: gauge.url,
      capabilities: ["gauge.read"],
    });
    const user = await api(a, "POST", "/v1/users", ADMIN_KEY, {
      email: "chaos@example.com",
      name: "Chaos",
    });
    const userKey: string = user.api_key?.key ?? user.api_key ?? user.key;
    if (typeof userKey !== "string") throw new Error(`no API key in ${JSON.stringify(user)}`);
    const bStarted = b.start();

    // The alerts are created disabled and switched on in waves, so that neither replica's
    // minutely cron evaluates them before the scenario asks for it.
    log(`creating ${o.alerts} alerts (seed ${o.seed})`);
    const channelsOf = new Map<string, string[]>();
    const ids: string[] = [];
    let next = 0;
    await Promise.all(Array.from({ length: 8 }, async () => {
      while (next < o.alerts) {
        const i = next++;
        const email = i % o.emailEvery === 0;
        const alert = await api(a, "POST", "/v1/alerts", userKey, {
          name: `chaos ${i}`,
          condition: { capability: "gauge.read", args: {}, path: "value", op: ">", threshold: 10 },
          channels: {
            inapp: true,
            email,
            webhook: { url: `${hook.url}/hook/${i}`, secret: SECRET },
          },
          enabled: false,
        });
        channelsOf.set(alert.id, ["inapp", "webhook", ...(email ? ["email"] : [])]);
        ids[i] = alert.id;
      }
    }));
    await bStarted;

    const plan: ChaosEvent["signal"][] = Array(o.kills).fill("SIGKILL");
    if (o.sigterm) plan.splice(Math.min(2, plan.length), 0, "SIGTERM");
    for (let p = 0; p < o.pauses; p++) plan.splice(Math.min(4 + 2 * p, plan.length), 0, "SIGSTOP");
    // Wave 0 is evaluated by both replicas at once; a later wave is switched on before each
    // later event, so that every signal finds fresh sends (not only retries) in flight.
    const perWave = plan.length > 1 ? Math.floor((o.alerts * o.laterWaves) / (plan.length - 1)) : 0;
    const first = o.alerts - perWave * (plan.length - 1);
    const waves = [ids.slice(0, first)];
    for (let w = 1; w < plan.length; w++) {
      waves.push(ids.slice(first + (w - 1) * perWave, first + w * perWave));
    }
    const enable = async (wave: string[]) => {
      if (wave.length === 0) return;
      await sql`update alerts set enabled = true, next_eval_at = now() where id = any(${wave}::uuid[])`;
    };

    // 1. Both replicas evaluate at once; 2. kills while sends are in flight.
    log(`evaluating ${waves[0].length} alerts on both replicas at once`);
    await enable(waves[0]);
    const evaluations = [a.job("alerts.evaluate"), b.job("alerts.evaluate")];
    const events: ChaosEvent[] = [];
    let sigterm: ChaosResult["sigterm"] = null;
    let driver: ReturnType<typeof drive> | undefined;
    /** Since when only the replica being driven has been sending (both evaluate at first). */
    let quietSince = Infinity;

    for (let i = 0; i < plan.length; i++) {
      const signal = plan[i];
      const target = replicas[i % 2];
      const other = replicas[(i + 1) % 2];
      if (signal === "SIGTERM") faults.mode = { ...chaos, latencyMs: o.slowLatencyMs };
      if (i > 0 && waves[i].length > 0) {
        await enable(waves[i]);
        evaluations.push(target.job("alerts.evaluate"));
      }
      // The target is the replica being driven (or, first, evaluating); the other is idle. Its
      // own email in flight proves the target is mid-send; else any request held while only
      // the target works. Then a random moment later (mid-batch, or while recording).
      const busy = () =>
        resend.held(target.label) > 0 ||
        (target.outstanding > 0 && other.outstanding === 0 && held() > 0);
      const targetBusy = await waitUntil(busy, 8_000);
      await sleep(random() * 250);
      const inFlight = held();
      log(
        `${signal} ${target.label} (${inFlight} requests in flight${
          targetBusy ? "" : ", target idle"
        })`,
      );
      driver?.halt();
      const previous = driver;
      if (signal === "SIGSTOP") {
        // Frozen past its lease (a long GC pause, a stalled VM): the other replica takes its
        // deliveries over; when it wakes up, its late outcomes must not overwrite the new owner's.
        const pid = target.process!.pid;
        const pausedAt = performance.now();
        Deno.kill(pid, "SIGSTOP");
        driver = drive(other, "alerts.retry");
        await sleep(o.leaseSeconds * 1000 + 1500);
        Deno.kill(pid, "SIGCONT");
        const pausedMs = performance.now() - pausedAt;
        await previous?.stop();
        quietSince = Date.now();
        events.push({
          at_ms: since(),
          replica: target.label,
          signal,
          in_flight: inFlight,
          target_busy: targetBusy,
          exit_code: -1,
          exit_ms: Math.round(pausedMs),
          restart_ms: 0,
        });
        log(`SIGCONT ${target.label} after ${Math.round(pausedMs)} ms`);
        continue;
      }
      const signalledAt = Date.now();
      const { code, ms } = await target.stop(signal);
      if (signal === "SIGTERM") {
        sigterm = await checkGracefulStop({
          sql,
          label: target.label,
          signalledAt,
          code,
          ms,
          inFlight,
          timeoutMs: o.shutdownTimeoutMs,
          emails: resend.requests,
          webhooks: hook.requests,
          webhooksSince: quietSince,
          log,
        });
        faults.mode = chaos;
      }
      await previous?.stop();
      quietSince = Date.now(); // the target is dead, the other replica idle until driven
      // Interleave: the live replica retries while the target restarts.
      driver = drive(other, "alerts.retry");
      const restartAt = performance.now();
      await target.start();
      const restartMs = performance.now() - restartAt;
      events.push({
        at_ms: since(),
        replica: `${target.name}${target.incarnation - 1}`,
        signal,
        in_flight: inFlight,
        target_busy: targetBusy,
        exit_code: code,
        exit_ms: Math.round(ms),
        restart_ms: Math.round(restartMs),
      });
      // Some time for the other replica to take over what the target held.
      await sleep(300 + random() * 1200);
    }
    await driver?.stop();
    for (const e of evaluations) await e;

    // 3. Recovery: healthy receivers, the retry job on both replicas until nothing is left.
    log("recovery: receivers healthy");
    faults.mode = HEALTHY;
    const recoveryStarted = performance.now();
    const reEvaluated = new Set<string>();
    let recovered = false;
    let stalled = false;
    let lastState = "";
    let lastChange = performance.now();
    while (performance.now() - recoveryStarted < o.recoveryTimeoutMs) {
      await Promise.all(replicas.map((r) => r.job("alerts.retry")));
      const [left] = await sql<
        { open: number; dlq: number; unfired: string[] | null; wake: Date | null }[]
      >`
        select
          (select count(*)::int from alert_deliveries where status in ('pending', 'failed')) as open,
          (select count(*)::int from alert_dlq where state = 'pending') as dlq,
          (select array_agg(a.id) from alerts a where not exists (
             select 1 from alert_deliveries d where d.alert_id = a.id and d.status <> 'suppressed'))
            as unfired,
          (select least(
             (select min(next_retry_at) from alert_dlq where state = 'pending'),
             (select min(lease_until) from alert_deliveries where status = 'pending'))) as wake`;
      const unfired = left.unfired ?? [];
      if (left.open === 0 && left.dlq === 0 && unfired.length === 0 && held() === 0) {
        recovered = true;
        break;
      }
      if (unfired.length > 0) {
        // A kill interrupted their claimed evaluation: by design they are evaluated again one
        // interval later. Fast-forward that interval instead of waiting for it.
        const [claim] = await sql<{ claimed: number; wait_s: number | null }[]>`
          select count(*) filter (where last_evaluated_at is not null)::int as claimed,
                 max(extract(epoch from next_eval_at - now()))::float8 as wait_s
          from alerts where id = any(${unfired}::uuid[])`;
        const byWave = new Map<string, number>();
        for (const id of unfired) {
          const w = waves.findIndex((wave) => wave.includes(id));
          const e = events[w];
          const key = e ? `wave ${w} (${e.signal} ${e.replica})` : `wave ${w}`;
          byWave.set(key, (byWave.get(key) ?? 0) + 1);
        }
        log(
          `${unfired.length} alerts never fired: ${claim.claimed} of them claimed by an ` +
            `evaluation that a signal interrupted (next evaluation in up to ` +
            `${Math.round(claim.wait_s ?? 0)} s; ${
              [...byWave].map(([k, n]) => `${n} of ${k}`).join(", ")
            }); evaluating them now`,
        );
        for (const id of unfired) reEvaluated.add(id);
        await sql`update alerts set next_eval_at = now() where id = any(${unfired}::uuid[])`;
        await Promise.all(replicas.map((r) => r.job("alerts.evaluate")));
        continue;
      }
      // Nothing due, no lease running out, and no change for a while: nothing will move it.
      const state = JSON.stringify([left.open, left.dlq, left.wake]);
      if (state !== lastState) [lastState, lastChange] = [state, performance.now()];
      if (!left.wake && performance.now() - lastChange > 5_000) {
        stalled = true;
        break;
      }
      const wait = left.wake ? left.wake.getTime() - Date.now() : 200;
      await sleep(Math.min(1000, Math.max(100, wait)));
    }
    const recoveryMs = performance.now() - recoveryStarted;
    log(
      `recovery ${recovered ? "complete" : stalled ? "stalled" : "timed out"} after ${
        Math.round(recoveryMs)
      } ms`,
    );

    // Quiesce: stop both replicas gracefully, let the receivers drain, then compare.
    const finalExitCodes: number[] = [];
    for (const r of replicas) finalExitCodes.push((await r.stop("SIGTERM")).code);
    await waitUntil(() => held() === 0, 5_000);

    const deliveries = await sql<DeliveryRow[]>`
      select d.id, d.alert_id, d.channel, d.status, d.attempts, d.payload ->> 'fired_at' as fired_at,
             d.last_error, q.state as dlq_state, q.retry_count, q.next_retry_at
      from alert_deliveries d left join alert_dlq q on q.delivery_id = d.id`;
    const notifications = await sql<{ delivery_id: string; alert_id: string | null }[]>`
      select coalesce(delivery_id::text, 'notification ' || id::text) as delivery_id, alert_id
      from notifications`;

    // Outcomes recorded by a sender that had lost its lease (kept, not applied): the pause and
    // the kills exercised the fencing when there are any.
    const fenced = await sql<{ n: number }[]>`
      select count(*)::int as n from delivery_attempts where fenced`.then(
      ([row]) => row.n,
      () => null,
    );
    const result = evaluate({
      channelsOf,
      deliveries,
      notifications,
      webhooks: hook.accepted,
      emails: resend.accepted,
      seen: (key) =>
        [
          ...hook.requests.filter((r) => r.id === key).map((r) => r.outcome),
          ...resend.requests.filter((r) => r.key === key).map((r) => `${r.source} ${r.outcome}`),
        ].join(", "),
    });
    const { suspects, ...figures } = result;
    if (suspects.length > 0) {
      const described = await describeDeliveries(
        sql,
        suspects.slice(0, 12),
        wallStart,
        Date.now(),
        [
          ...resend.requests.map((r) => ({
            key: r.key,
            at: r.at,
            doneAt: r.doneAt,
            what: `email ${r.source} ${r.outcome}`,
          })),
          ...hook.requests.map((r) => ({
            key: r.id,
            at: r.at,
            doneAt: r.doneAt,
            what: `webhook ${r.outcome}`,
          })),
        ],
      );
      figures.problems.unshift(...described.map((d) => `details (times from the start): ${d}`));
    }
    const logSummary: Record<string, number> = {};
    for (const r of replicas) {
      for (const line of r.logs) {
        const level = String(line.level ?? "");
        if (!["warn", "error", "fatal"].includes(level) && !("raw" in line)) continue;
        const text = String(line.msg ?? line.raw).replace(UUID, "<id>").replace(/\d+/g, "N");
        const key = `${level || "raw"}: ${text.slice(0, 140)}`;
        logSummary[key] = (logSummary[key] ?? 0) + 1;
      }
    }
    const webhookResends = hook.requests.filter((r) => r.outcome === "replayed").length;
    const emailResends = resend.requests.filter((r) => r.outcome === "replayed").length;
    return {
      alerts: o.alerts,
      ...figures,
      code_changed: (await codeDigest()) !== codeAtStart,
      re_evaluated: reEvaluated.size,
      fenced_attempts: fenced,
      resends: webhookResends + emailResends,
      kills: events.filter((e) => e.signal === "SIGKILL").length,
      sigterms: events.filter((e) => e.signal === "SIGTERM").length,
      pauses: events.filter((e) => e.signal === "SIGSTOP").length,
      sigterm,
      requests: {
        webhook: hook.requests.length,
        email: resend.requests.length,
        injected_failures: faults.injected,
        late_answers: faults.late,
        conflicts: resend.requests.filter((r) => r.outcome === "conflict").length,
        mismatches: resend.requests.filter((r) => r.outcome === "mismatch").length,
        bad_signatures: hook.badSignatures(),
      },
      recovered,
      recovery_ms: Math.round(recoveryMs),
      wall_ms: since(),
      seed: o.seed,
      events,
      job_errors: replicas.reduce((n, r) => n + r.jobErrors, 0),
      job_interrupted: replicas.reduce((n, r) => n + r.interrupted, 0),
      final_exit_codes: finalExitCodes,
      log_summary: logSummary,
    };
  } finally {
    for (const r of replicas) await r.stop("SIGKILL").catch(() => {});
    if (o.logFile) {
      const lines = replicas.flatMap((r) => r.logs).map((l) => JSON.stringify(l)).join("\n");
      await Deno.writeTextFile(o.logFile, lines + "\n");
    }
    await hook.close();
    await resend.close();
    await gauge.close();
    await sql.end({ timeout: 5 });
  }
}

/** Compares the database with what the receivers saw. */
function evaluate(input: {
  channelsOf: Map<string, string[]>;
  deliveries: DeliveryRow[];
  notifications: { delivery_id: string; alert_id: string | null }[];
  webhooks: Map<string, { alertId: string | null }>;
  emails: Map<string, unknown>;
  /** What the receivers saw of a key, for problem reports. */
  seen: (key: string) => string;
}) {
  const { channelsOf, deliveries, notifications, webhooks, emails } = input;
  const problems: string[] = [];
  /** Deliveries behind a problem, to be described in full. */
  const suspects = new Set<string>();
  const byId = new Map(deliveries.map((d) => [d.id, d]));
  const byStatus: Record<string, number> = {};
  const dlqByState: Record<string, number> = {};
  for (const d of deliveries) {
    byStatus[d.status] = (byStatus[d.status] ?? 0) + 1;
    if (d.dlq_state) dlqByState[d.dlq_state] = (dlqByState[d.dlq_state] ?? 0) + 1;
  }

  // User-visible copies per alert and channel (keys mapped to alerts through the database; a
  // key the database does not know is a disagreement of its own).
  const copies = new Map<string, Set<string>>(); // `${alert}/${channel}` → keys
  const addCopy = (alertId: string | null, channel: string, key: string) => {
    const k = `${alertId}/${channel}`;
    const set = copies.get(k) ?? new Set<string>();
    set.add(key);
    copies.set(k, set);
  };
  let disagreements = 0;
  const copyOf: Record<string, Set<string>> = {
    webhook: new Set(webhooks.keys()),
    email: new Set(emails.keys()),
    inapp: new Set(notifications.map((n) => n.delivery_id)),
  };
  for (const [channel, keys] of Object.entries(copyOf)) {
    for (const key of keys) {
      const d = byId.get(key);
      const alertId = d?.alert_id ??
        (channel === "webhook"
          ? webhooks.get(key)?.alertId
          : channel === "inapp"
          ? notifications.find((n) => n.delivery_id === key)?.alert_id
          : undefined) ??
        null;
      addCopy(alertId, channel, key);
      if (!d || d.channel !== channel) {
        disagreements++;
        problems.push(`${channel} copy ${key} has no such delivery in the database`);
      } else if (d.status !== "delivered" && d.status !== "uncertain") {
        disagreements++;
        suspects.add(d.id);
        problems.push(
          `${channel} delivery ${key} (alert ${d.alert_id}) reached the user but is ${d.status}` +
            ` (attempts ${d.attempts}, dlq ${d.dlq_state ?? "none"}, last error ${d.last_error})`,
        );
      }
    }
  }
  for (const d of deliveries) {
    if (d.status === "delivered" && !copyOf[d.channel]?.has(d.id)) {
      disagreements++;
      suspects.add(d.id);
      problems.push(
        `${d.channel} delivery ${d.id} (alert ${d.alert_id}) is delivered but its receiver has no ` +
          `copy (receiver saw: ${input.seen(d.id) || "no request"})`,
      );
    }
  }

  // Firings, lost and duplicate copies.
  const firedAt = new Map<string, Set<string>>();
  for (const d of deliveries) {
    if (d.status === "suppressed" || !d.alert_id) continue;
    const set = firedAt.get(d.alert_id) ?? new Set<string>();
    set.add(d.fired_at ?? "?");
    firedAt.set(d.alert_id, set);
  }
  let firings = 0;
  let unfired = 0;
  let expected = 0;
  let lost = 0;
  let duplicates = 0;
  for (const [alertId, channels] of channelsOf) {
    const times = firedAt.get(alertId)?.size ?? 0;
    firings += times;
    if (times === 0) {
      unfired++;
      problems.push(`alert ${alertId} never fired`);
    }
    if (times > 1) problems.push(`alert ${alertId} fired ${times} times`);
    const occurrences = Math.max(1, times);
    for (const channel of channels) {
      expected += occurrences;
      const n = copies.get(`${alertId}/${channel}`)?.size ?? 0;
      if (n > 1) {
        duplicates += n - 1;
        problems.push(
          `alert ${alertId} reached the user ${n} times by ${channel}: ` +
            [...copies.get(`${alertId}/${channel}`)!].join(", "),
        );
      }
      if (n === 0) {
        const visible = deliveries.filter((d) =>
          d.alert_id === alertId && d.channel === channel &&
          (d.status === "exhausted" || d.status === "uncertain")
        );
        if (visible.length === 0) {
          lost++;
          const rows = deliveries.filter((d) => d.alert_id === alertId && d.channel === channel);
          problems.push(
            `alert ${alertId}: ${channel} lost (` +
              (rows.length
                ? rows.map((d) =>
                  `${d.id} ${d.status}, attempts ${d.attempts}, dlq ${d.dlq_state ?? "none"}`
                ).join("; ")
                : "no delivery row") +
              ")",
          );
        }
      }
    }
  }

  const stuckRows = deliveries.filter((d) =>
    d.status === "pending" || d.status === "failed" || d.dlq_state === "pending"
  );
  for (const d of stuckRows) suspects.add(d.id);
  for (const d of stuckRows.slice(0, 20)) {
    problems.push(
      `stuck: ${d.channel} delivery ${d.id} (alert ${d.alert_id}) ${d.status}, attempts ${d.attempts}, ` +
        `dlq ${d.dlq_state ?? "none"} retry ${d.retry_count ?? "-"} due ${
          d.next_retry_at?.toISOString() ?? "-"
        }, last error ${d.last_error}`,
    );
  }
  return {
    firings,
    unfired,
    expected,
    lost,
    duplicates,
    stuck: stuckRows.length,
    by_status: byStatus,
    dlq_by_state: dlqByState,
    delivered: byStatus.delivered ?? 0,
    exhausted: byStatus.exhausted ?? 0,
    uncertain: byStatus.uncertain ?? 0,
    disagreements,
    problems,
    suspects: [...suspects],
  };
}

/** The figures of a run, one per line, for logs and benchmark output. */
export function formatChaos(r: ChaosResult): string {
  const lines = [
    ...(r.code_changed
      ? ["WARNING: src/, migrations/ or deno.json changed during the run (mixed versions)"]
      : []),
    `alerts ${r.alerts}, firings ${r.firings} (unfired ${r.unfired}, re-evaluated ${r.re_evaluated}), ` +
    `expected copies ${r.expected}`,
    `lost ${r.lost} · duplicates ${r.duplicates} · stuck ${r.stuck} · disagreements ${r.disagreements}` +
    ` · resends ${r.resends} (idempotent) · fenced attempts ${r.fenced_attempts}`,
    `deliveries ${JSON.stringify(r.by_status)} · dlq ${JSON.stringify(r.dlq_by_state)}`,
    `kills ${r.kills} · sigterms ${r.sigterms} · pauses ${r.pauses}` +
    (r.sigterm
      ? ` (exit ${r.sigterm.exit_code} in ${r.sigterm.exit_ms} ms of ${r.sigterm.timeout_ms}, ` +
        `${r.sigterm.in_flight} requests in flight; sends during the stop ` +
        `${JSON.stringify(r.sigterm.statuses)}, ${r.sigterm.unrecorded} left leased to it, ` +
        `${r.sigterm.accepted_not_delivered} accepted but not recorded delivered)`
      : ""),
    `events: ${
      r.events.map((e) =>
        `${e.signal} ${e.replica}@${(e.at_ms / 1000).toFixed(1)}s in-flight ${e.in_flight}${
          e.target_busy ? "" : " (idle)"
        }${
          e.signal === "SIGSTOP"
            ? ` frozen ${e.exit_ms} ms`
            : ` exit ${e.exit_code} in ${e.exit_ms} ms, restart ${e.restart_ms} ms`
        }`
      ).join("; ")
    }`,
    `requests: ${JSON.stringify(r.requests)}`,
    `jobs: ${r.job_errors} errors, ${r.job_interrupted} interrupted; final exit codes ${
      r.final_exit_codes.join(", ")
    }`,
    `recovered ${r.recovered} in ${r.recovery_ms} ms · wall ${r.wall_ms} ms · seed ${r.seed}`,
  ];
  const logs = Object.entries(r.log_summary).sort((x, y) => y[1] - x[1]);
  if (logs.length) lines.push("replica warnings/errors:", ...logs.map(([k, n]) => `  ${n} × ${k}`));
  if (r.problems.length) {
    lines.push(`problems (${r.problems.length}):`, ...r.problems.slice(0, 40).map((p) => `  ${p}`));
  }
  return lines.join("\n");
}
