/**
 * A property-based model test of the delivery promise: "never lost, never sent twice".
 *
 * fast-check draws scenarios: 1–50 alerts over in-app, email and webhook channels, providers
 * that answer at random (success, 4xx, 5xx, 429 with any Retry-After, no answer, an answer lost
 * after the message was taken in, slow answers), two workers (two service instances with their
 * own connection pools on one PostgreSQL) running the evaluation and retry jobs one after the
 * other or at once, crashes at any send (the worker's connections die before or after the
 * provider took the message), shutdowns that cut sends off, clock jumps past leases and retries,
 * replays and discards of DLQ entries. Then the clock runs through the whole retry schedule and
 * the invariants are checked against what the fake providers recorded:
 *
 * 1. nothing is stuck: every delivery ends delivered, exhausted, uncertain or suppressed;
 * 2. the providers only ever saw a delivery's own id as its key, never a suppressed one's;
 * 3. user-visible copies: exactly 1 for a delivered delivery, 0 for an exhausted one, at most 1
 *    for an uncertain or discarded one (at most 2 once a person replayed an uncertain one);
 * 4. the database agrees with itself: attempts = recorded non-fenced attempts, delivered_at iff
 *    delivered, no lease left, no DLQ row for a delivered delivery.
 *
 * Runs: VIGIL_PROPERTY_RUNS (default 200), seed: VIGIL_PROPERTY_SEED (printed on failure, with
 * the shrunk scenario).
 */
import "./support/logs.ts";
import fc from "fast-check";
import postgres from "postgres";
import { trace } from "@opentelemetry/api";
import { evaluateDueAlerts } from "../src/alerts/evaluate_job.ts";
import { retryDeliveries } from "../src/delivery/retry_job.ts";
import { DEFAULT_SCHEDULE } from "../src/delivery/schedule.ts";
import { discardDlq, replayDlq } from "../src/delivery/store.ts";
import type { Delivery, Sender } from "../src/delivery/types.ts";
import { rootLogger } from "../src/observability/logger.ts";
import { createMetrics } from "../src/observability/metrics.ts";
import { createServices } from "../src/services.ts";
import { tolerateStrayConnectionErrors } from "../src/db/connection_errors.ts";
import { testConfig } from "./support/app.ts";
import { assert } from "./support/assert.ts";
import { HOUR, ManualClock, MINUTE, SECOND } from "./support/clock.ts";
import { dbTest, type TestDatabase } from "./support/database.ts";
import {
  type Behaviour,
  fakeResendProvider,
  fakeWebhookReceiver,
} from "./support/fake_providers.ts";

// Crashes end connection pools mid-query, as production's database restarts do.
tolerateStrayConnectionErrors();

const RUNS = Number(Deno.env.get("VIGIL_PROPERTY_RUNS") ?? 200);
const SEED = Number(Deno.env.get("VIGIL_PROPERTY_SEED") ?? Date.now() % 2 ** 31);
const LEASE = DEFAULT_SCHEDULE.leaseMs;
const SECRET = "whsec_" + btoa("0123456789abcdef0123456789abcdef");
const CHANNELS = ["inapp", "email", "webhook"] as const;

// ---- scenarios -------------------------------------------------------------------------------

const retryAfter = fc.oneof(
  fc.constantFrom("1e30", "99999999999999999999", "-30", "soon", "Thu, 01 Jan 1970 00:00:00 GMT"),
  fc.integer({ min: 0, max: 200_000 }).map(String),
);
const behaviour: fc.Arbitrary<Behaviour> = fc.oneof(
  { weight: 8, arbitrary: fc.constant<Behaviour>({ kind: "ok" }) },
  {
    weight: 2,
    arbitrary: fc.integer({ min: 1, max: 15 }).map((delayMs) =>
      ({ kind: "ok", delayMs }) as Behaviour
    ),
  },
  {
    weight: 3,
    arbitrary: fc.constantFrom(500, 502, 503).map((status) =>
      ({ kind: "status", status }) as Behaviour
    ),
  },
  {
    weight: 1,
    arbitrary: fc.constantFrom(400, 422).map((status) => ({ kind: "status", status }) as Behaviour),
  },
  {
    weight: 2,
    arbitrary: retryAfter.map((r) => ({ kind: "status", status: 429, retryAfter: r }) as Behaviour),
  },
  { weight: 1, arbitrary: fc.constant<Behaviour>({ kind: "hang" }) },
  { weight: 1, arbitrary: fc.constant<Behaviour>({ kind: "accept_then_hang" }) },
  { weight: 2, arbitrary: fc.constant<Behaviour>({ kind: "outage" }) },
);

const worker = fc.constantFrom(0, 1);
type Step =
  | { kind: "evaluate"; worker: 0 | 1 }
  | { kind: "retry"; worker: 0 | 1 }
  | { kind: "both"; jobs: ["evaluate" | "retry", "evaluate" | "retry"] }
  | { kind: "advance"; ms: number }
  | { kind: "crash"; worker: 0 | 1; atSend: number; afterSend: boolean }
  | { kind: "shutdown"; worker: 0 | 1; atSend: number; waitMs: number }
  /** At its n-th send the worker stalls past its lease while the other one runs its retry job. */
  | { kind: "stall"; worker: 0 | 1; atSend: number }
  | { kind: "replay"; pick: number }
  | { kind: "discard"; pick: number };
const job = fc.constantFrom<"evaluate" | "retry">("evaluate", "retry");
const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ kind: fc.constant("evaluate"), worker }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant("retry"), worker }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant("both"), jobs: fc.tuple(job, job) }) },
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant("advance"),
      ms: fc.constantFrom(10 * SECOND, MINUTE, LEASE + SECOND, 5 * MINUTE, 2 * HOUR, 25 * HOUR),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant("crash"),
      worker,
      atSend: fc.integer({ min: 1, max: 6 }),
      afterSend: fc.boolean(),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant("shutdown"),
      worker,
      atSend: fc.integer({ min: 1, max: 6 }),
      waitMs: fc.constantFrom(0, 5, 30),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant("stall"),
      worker,
      atSend: fc.integer({ min: 1, max: 6 }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("replay"), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("discard"), pick: fc.nat() }) },
) as fc.Arbitrary<Step>;

const scenario = fc.record({
  alerts: fc.array(
    fc.record({
      channels: fc.subarray([...CHANNELS], { minLength: 1 }),
      // 60: a reminder at every evaluation a minute or more after the last (always matching).
      repeat: fc.constantFrom(60, 86_400),
    }),
    { minLength: 1, maxLength: 50 },
  ),
  email: fc.array(behaviour, { minLength: 1, maxLength: 40 }),
  webhook: fc.array(behaviour, { minLength: 1, maxLength: 40 }),
  steps: fc.array(step, { minLength: 1, maxLength: 14 }),
  // Small batches make the retry job claim batch after batch, one claim ahead of its sends.
  batch: fc.constantFrom(1, 2, 3, 200),
});
type Scenario = typeof scenario extends fc.Arbitrary<infer T> ? T : never;

// ---- the system under test -------------------------------------------------------------------

type Fault = Extract<Step, { kind: "crash" | "shutdown" | "stall" }>;

/** One vigil instance with its own pool; it can crash (its connections die) or stop. */
class Worker {
  readonly sql: postgres.Sql;
  readonly services: ReturnType<typeof createServices>;
  #sends = 0;
  #fault?: Fault;
  dead = false;
  /** What a stall does meanwhile (set by the scenario: move the clock, run the other worker). */
  onStall: () => Promise<void> = () => Promise.resolve();

  constructor(db: TestDatabase, clock: ManualClock, env: Record<string, string>) {
    this.sql = postgres(db.url, { max: 4, onnotice: () => {} });
    this.services = createServices({
      config: testConfig(env),
      sql: this.sql,
      clock,
      logger: rootLogger,
      metrics: createMetrics(),
      tracer: trace.getTracer("model"),
    });
    const senders = this.services.senders as Record<string, Sender>;
    for (const [channel, sender] of Object.entries(senders)) {
      senders[channel] = this.#faulty(sender);
    }
  }

  arm(fault: Fault) {
    this.#fault = fault;
    this.#sends = 0;
  }

  /** Wraps a sender so that the armed fault strikes at its n-th send. */
  #faulty(sender: Sender): Sender {
    const around = async <T>(send: () => Promise<T>): Promise<T> => {
      const n = ++this.#sends;
      const fault = this.#fault;
      const strikes = fault && n === fault.atSend;
      if (strikes && fault.kind === "crash" && !fault.afterSend) this.crash();
      if (strikes && fault.kind === "shutdown") {
        void this.services.drain.stop(fault.waitMs, 5_000);
      }
      if (strikes && fault.kind === "stall") await this.onStall();
      const result = await send();
      if (strikes && fault.kind === "crash" && fault.afterSend) this.crash();
      return result;
    };
    return {
      ...sender,
      send: (d: Delivery, ctx) => around(() => sender.send(d, ctx)),
      ...(sender.sendMany
        ? { sendMany: (ds: Delivery[], ctx) => around(() => sender.sendMany!(ds, ctx)) }
        : {}),
    };
  }

  /** The process dies: its connections go, whatever it was doing is abandoned. */
  crash() {
    this.dead = true;
    this.sql.end({ timeout: 0 }).catch(() => {}); // it dies as it may
  }

  get gone(): boolean {
    return this.dead || this.services.drain.stopping;
  }

  async run(kind: "evaluate" | "retry"): Promise<void> {
    if (this.gone) return;
    const work: Promise<unknown> = kind === "evaluate"
      ? evaluateDueAlerts(this.services, this.services.clock.now())
      : retryDeliveries(this.services.dispatcher);
    // A crash makes the job fail: that is the point.
    await this.services.drain.track(work).catch(() => {});
  }

  async close() {
    this.dead = true;
    await this.sql.end({ timeout: 1 }).catch(() => {});
  }
}

// ---- the test --------------------------------------------------------------------------------

dbTest("delivery model: never lost, never sent twice, never stuck", async (t, db) => {
  const clock = new ManualClock();
  await using resend = fakeResendProvider(clock);
  await using hook = fakeWebhookReceiver(clock);
  const env = {
    RESEND_API_KEY: "re_model",
    RESEND_BASE_URL: resend.url,
    RESEND_RATE_PER_SECOND: "1000",
    RESEND_TIMEOUT_MS: "150",
    WEBHOOK_TIMEOUT_MS: "150",
  };
  const [user] = await db.sql<{ id: string }[]>`
    insert into users (email, name) values ('model@example.com', 'Model')
    returning id`;
  let runs = 0;
  const started = performance.now();
  /** What the scenarios reached, summed: evidence that they exercise the hard cases. */
  const reached: Record<string, number> = {};
  const count = (what: string, n = 1) => (reached[what] = (reached[what] ?? 0) + n);

  const property = fc.asyncProperty(scenario, async (s: Scenario) => {
    runs++;
    await db.sql`
      truncate alerts, alert_episodes, alert_events, alert_deliveries, delivery_attempts,
               alert_dlq, notifications, check_results, check_rollups`;
    clock.set("2026-01-01T00:00:00Z");
    resend.reset();
    hook.reset();
    let emailTurn = 0;
    let hookTurn = 0;
    resend.decide = () => s.email[emailTurn++ % s.email.length];
    hook.decide = () => s.webhook[hookTurn++ % s.webhook.length];

    const now = clock.now();
    await db.sql`
      insert into alerts (user_id, name, condition, channels, repeat_interval_seconds, next_eval_at,
                          created_at, updated_at)
      select ${user.id}, 'alert ' || a.i, ${
      db.sql.json({
        capability: "data.compare",
        args: { value: 2, op: ">", threshold: 1 },
        path: "result",
        op: "==",
        threshold: true,
      })
    }, a.channels, a.repeat, ${now}, ${now}, ${now}
      from jsonb_to_recordset(${
      db.sql.json(s.alerts.map((a, i) => ({
        i,
        repeat: a.repeat,
        channels: {
          inapp: a.channels.includes("inapp"),
          email: a.channels.includes("email"),
          ...(a.channels.includes("webhook") ? { webhook: { url: hook.url, secret: SECRET } } : {}),
        },
      })))
    }) as a(i int, repeat int, channels jsonb)`;

    const workers: Worker[] = [];
    const fresh = (i: 0 | 1) => {
      const w = new Worker(db, clock, { ...env, DELIVERY_BATCH_SIZE: String(s.batch) });
      w.onStall = async () => {
        clock.advance(LEASE + SECOND);
        await (await live(i === 0 ? 1 : 0)).run("retry");
      };
      return w;
    };
    const live = async (i: 0 | 1): Promise<Worker> => {
      if (workers[i].gone) {
        await workers[i].close();
        workers[i] = fresh(i);
      }
      return workers[i];
    };
    workers.push(fresh(0), fresh(1));
    const replayedUncertain = new Set<string>();
    const replayed = new Set<string>();
    const discarded = new Set<string>();
    try {
      for (const st of s.steps) {
        switch (st.kind) {
          case "evaluate":
          case "retry":
            await (await live(st.worker)).run(st.kind);
            break;
          case "both": {
            const [a, b] = [await live(0), await live(1)];
            await Promise.all([a.run(st.jobs[0]), b.run(st.jobs[1])]);
            break;
          }
          case "advance":
            clock.advance(st.ms);
            break;
          case "crash":
          case "shutdown":
          case "stall":
            (await live(st.worker)).arm(st);
            break;
          case "replay":
          case "discard": {
            const rows = await db.sql<{ id: string; delivery_id: string; state: string }[]>`
              select id, delivery_id, state from alert_dlq order by created_at, id`;
            if (rows.length === 0) break;
            const row = rows[st.pick % rows.length];
            if (st.kind === "replay") {
              const done = await replayDlq(db.sql, row.id, clock.now());
              if (done && done !== "busy") {
                replayed.add(row.delivery_id);
                if (row.state === "uncertain") replayedUncertain.add(row.delivery_id);
              }
            } else if (await discardDlq(db.sql, row.id, "model", clock.now())) {
              discarded.add(row.delivery_id);
            }
            break;
          }
        }
      }

      // Recovery: fresh workers, and the clock through the whole retry schedule.
      for (const i of [0, 1] as const) {
        await workers[i].close();
        workers[i] = fresh(i);
      }
      // Every round sends at least the earliest due retry, and a delivery has at most one first
      // attempt and one per backoff step: this many rounds drain anything that can drain.
      const [{ total }] = await db.sql<{ total: number }[]>`
        select count(*)::int as total from alert_deliveries`;
      const rounds = 10 + (2 + DEFAULT_SCHEDULE.backoffMs.length) * total;
      for (let round = 0; round < rounds; round++) {
        const [open] = await db.sql<{ n: number; next: Date | null }[]>`
          select (select count(*)::int from alert_deliveries where status = 'pending')
               + (select count(*)::int from alert_dlq where state = 'pending') as n,
                 (select min(next_retry_at) from alert_dlq where state = 'pending') as next`;
        if (open.n === 0) break;
        // Past every lease, and to the next due retry.
        clock.set(
          new Date(Math.max(clock.now().getTime() + LEASE + SECOND, open.next?.getTime() ?? 0)),
        );
        await Promise.all(workers.map((w) => w.run("retry")));
      }

      await checkInvariants(db, { resend, hook, replayed, replayedUncertain, discarded });
      for (
        const r of await db.sql<{ what: string; n: number }[]>`
        select status as what, count(*)::int as n from alert_deliveries group by status
        union all
        select 'fenced attempts', count(*)::int from delivery_attempts where fenced
        union all
        select 'unknown outcomes', count(*)::int from delivery_attempts where outcome = 'unknown'`
      ) count(r.what, r.n);
      count("crashes", s.steps.filter((st) => st.kind === "crash").length);
      const [{ deliveries }] = await db.sql<{ deliveries: number }[]>`
        select count(*)::int as deliveries from alert_deliveries`;
      if (deliveries > s.batch) count("scenarios of several batches");
    } finally {
      await Promise.all(workers.map((w) => w.close()));
    }
  });

  await t.step(`${RUNS} scenarios (seed ${SEED})`, async () => {
    try {
      await fc.assert(property, { numRuns: RUNS, seed: SEED, endOnFailure: false });
    } finally {
      // The figures that show the scenarios reached the hard cases, and the seed to replay.
      // deno-lint-ignore no-console
      console.log(
        `delivery model: ${runs} scenarios in ${
          ((performance.now() - started) / 1000).toFixed(1)
        } s, seed ${SEED}; reached ${JSON.stringify(reached)}`,
      );
    }
  });
}, { realPostgresOnly: true });

async function checkInvariants(
  db: TestDatabase,
  seen: {
    resend: ReturnType<typeof fakeResendProvider>;
    hook: ReturnType<typeof fakeWebhookReceiver>;
    replayed: Set<string>;
    replayedUncertain: Set<string>;
    discarded: Set<string>;
  },
) {
  const rows = await db.sql<{
    id: string;
    channel: "inapp" | "email" | "webhook";
    alert_id: string;
    content_hash: string;
    created_at: Date;
    status: string;
    attempts: number;
    recorded: number;
    delivered_at: Date | null;
    lease_until: Date | null;
    dlq_state: string | null;
    notifications: number;
  }[]>`
    select d.id, d.channel, d.alert_id, d.content_hash, d.created_at, d.status, d.attempts,
           d.delivered_at, d.lease_until,
           q.state as dlq_state,
           (select count(*)::int from delivery_attempts a
             where a.delivery_id = d.id and not a.fenced and a.outcome <> 'discarded') as recorded,
           (select count(*)::int from notifications n where n.delivery_id = d.id) as notifications
    from alert_deliveries d left join alert_dlq q on q.delivery_id = d.id`;
  const problems: string[] = [];
  const ids = new Set(rows.map((r) => r.id));
  for (const [name, provider] of [["email", seen.resend], ["webhook", seen.hook]] as const) {
    for (const key of provider.requests.keys()) {
      const row = rows.find((r) => r.id === key);
      if (!ids.has(key) || row?.channel !== name) problems.push(`${name} saw unknown key ${key}`);
      if (row?.status === "suppressed") problems.push(`${name} was sent suppressed ${key}`);
    }
  }
  const copiesOf = (r: (typeof rows)[number]) =>
    r.channel === "inapp"
      ? r.notifications
      : (r.channel === "email" ? seen.resend : seen.hook).copies.get(r.id) ?? 0;
  // The same message on the same channel reaches the user once per content window (24 h),
  // unless a person stepped in (a replay or a discard).
  const human = (id: string) => seen.replayed.has(id) || seen.discarded.has(id);
  for (const a of rows) {
    for (const b of rows) {
      if (
        a.id < b.id && a.channel === b.channel && a.content_hash === b.content_hash &&
        Math.abs(a.created_at.getTime() - b.created_at.getTime()) < 24 * HOUR &&
        copiesOf(a) > 0 && copiesOf(b) > 0 && !human(a.id) && !human(b.id)
      ) {
        problems.push(`${a.channel}: the same message twice within 24 h (${a.id}, ${b.id})`);
      }
    }
  }
  for (const r of rows) {
    const copies = copiesOf(r);
    const say = (what: string) =>
      problems.push(`${r.channel} ${r.id} (${r.status}, dlq ${r.dlq_state}): ${what}`);
    if (!["delivered", "exhausted", "uncertain", "suppressed"].includes(r.status)) say("stuck");
    if (r.dlq_state === "pending") say("DLQ row still pending");
    if (r.lease_until !== null) say("still leased");
    const max = seen.replayedUncertain.has(r.id) ? 2 : 1;
    if (r.status === "delivered" && (copies < 1 || copies > max)) say(`${copies} copies`);
    if (r.status === "delivered" && r.dlq_state !== null) say("delivered with a DLQ row");
    if (r.status === "delivered" && r.delivered_at === null) say("delivered without delivered_at");
    if (r.status !== "delivered" && r.delivered_at !== null) say("delivered_at but not delivered");
    if (r.status === "exhausted" && !seen.discarded.has(r.id) && copies !== 0) {
      say(`exhausted with ${copies} copies`);
    }
    if (["uncertain", "exhausted"].includes(r.status) && copies > max) say(`${copies} copies`);
    if (r.status === "suppressed" && copies !== 0) say(`suppressed with ${copies} copies`);
    if (r.attempts !== r.recorded) say(`attempts ${r.attempts} but ${r.recorded} recorded`);
  }
  assert(problems.length === 0, problems.slice(0, 10).join("\n"));
}
