/**
 * The delivery guarantees, one defect at a time: each test reproduces a way the pipeline once
 * lost or repeated a delivery (issue 9) and checks it no longer does. Providers are fakes that
 * de-duplicate by key like the real ones (support/fake_providers.ts); time moves by the clock.
 */
import { evaluateDueAlerts } from "../src/alerts/evaluate_job.ts";
import { retryDeliveries } from "../src/delivery/retry_job.ts";
import { DEFAULT_SCHEDULE, MAX_DELAY_MS } from "../src/delivery/schedule.ts";
import { runJob } from "../src/jobs/scheduler.ts";
import type { Env } from "../src/config.ts";
import { assert, assertEquals, assertMatch, assertRejects } from "./support/assert.ts";
import { testApp } from "./support/app.ts";
import { HOUR, ManualClock, MINUTE, SECOND } from "./support/clock.ts";
import { dbTest, type TestDatabase } from "./support/database.ts";
import { fakeResendProvider, fakeWebhookReceiver } from "./support/fake_providers.ts";
import { gaugeApp, overTen } from "./support/gauge.ts";
import { parseMetrics, sampleValue } from "./support/prometheus_text.ts";
import { serveLocal } from "./support/servers.ts";

const { backoffMs: BACKOFF, leaseMs: LEASE } = DEFAULT_SCHEDULE;

/** An app whose email goes to a de-duplicating fake Resend, with a webhook receiver beside it. */
async function setup(db: TestDatabase, env: Env = {}) {
  const clock = new ManualClock();
  const resend = fakeResendProvider(clock);
  const hook = fakeWebhookReceiver(clock);
  const app = await gaugeApp(db, {
    clock,
    env: {
      RESEND_API_KEY: "re_test",
      RESEND_BASE_URL: resend.url,
      RESEND_RATE_PER_SECOND: "1000",
      ...env,
    },
  });
  app.gauge.value = 11;
  const ann = await app.newUser("ann@example.com");
  const channelsFor = (channel: "email" | "webhook" | "inapp") =>
    channel === "webhook"
      ? { inapp: false, webhook: { url: hook.url } }
      : { inapp: channel === "inapp", email: channel === "email" };
  /** Creates an alert on one channel; returns its id. */
  const alertOn = async (
    channel: "email" | "webhook" | "inapp",
    extra: Record<string, unknown> = {},
  ) => {
    const res = await app.request("POST", "/v1/alerts", {
      key: ann.key,
      body: {
        name: `on ${channel} ${crypto.randomUUID()}`,
        condition: overTen,
        ...extra,
        channels: channelsFor(channel),
      },
    });
    assertEquals(res.status, 201, JSON.stringify(res.body));
    return res.body.id as string;
  };
  /** Fires an alert on one channel without sending: the process "dies" after the commit. */
  const fireOnly = async (channel: "email" | "webhook") => {
    const alertId = await alertOn(channel);
    const alert = (await app.request("GET", `/v1/alerts/${alertId}`, { key: ann.key })).body;
    return await app.evaluator.apply(
      { ...alert, next_eval_at: new Date(alert.next_eval_at) },
      { value: 11, matched: true },
      clock.now(),
    );
  };
  const evaluate = async (alertId: string) =>
    (await app.request("POST", `/v1/alerts/${alertId}/evaluate`, { key: ann.key, body: {} }))
      .body;
  const delivery = async (id: string) => {
    const [row] = await db.sql`
      select d.status, d.attempts, d.maybe_sent, d.lease_until, q.state as dlq_state,
             q.retry_count, q.next_retry_at,
             (select json_agg(json_build_object('outcome', a.outcome, 'fenced', a.fenced)
                              order by a.id)
                from delivery_attempts a where a.delivery_id = d.id) as history
      from alert_deliveries d left join alert_dlq q on q.delivery_id = d.id
      where d.id = ${id}`;
    return row;
  };
  return {
    app,
    clock,
    resend,
    hook,
    ann,
    alertOn,
    fireOnly,
    evaluate,
    delivery,
    async [Symbol.asyncDispose]() {
      await app.server.close();
      await resend.close();
      await hook.close();
    },
  };
}

dbTest("retries: each outcome is recorded on its own delivery in a mixed batch", async (_t, db) => {
  await using s = await setup(db);
  // Due in the order email, webhook, email: a batch sent channel by channel must not pair
  // results by position.
  const ids: string[] = [];
  for (const channel of ["email", "webhook", "email"] as const) {
    if (channel === "email") s.resend.respond({ kind: "status", status: 500 });
    else s.hook.respond({ kind: "status", status: 500 });
    const fired = await s.evaluate(await s.alertOn(channel));
    assertEquals(fired.deliveries[0].status, "failed");
    ids.push(fired.deliveries[0].id);
    s.clock.advance(SECOND);
  }
  s.resend.respond({ kind: "status", status: 500 }, { kind: "status", status: 500 });
  s.clock.advance(BACKOFF[0]);
  const tick = await retryDeliveries(s.app.dispatcher);
  assertEquals([tick.retried.delivered, tick.retried.failed], [1, 2]);
  const [first, hook, last] = await Promise.all(ids.map(s.delivery));
  assertEquals([first.status, first.dlq_state, first.retry_count], ["failed", "pending", 1]);
  assertEquals([hook.status, hook.dlq_state], ["delivered", null]);
  assertEquals([last.status, last.dlq_state, last.retry_count], ["failed", "pending", 1]);
  assertEquals(s.hook.copies.get(ids[1]), 1);
});

dbTest(
  "leases: a slow evaluation batch does not send twice what another replica took over",
  async (_t, db) => {
    await using s = await setup(db);
    const other = await testApp(db, { clock: s.clock, adminEmail: "admin-2@example.com" });
    const fast = await s.alertOn("webhook");
    s.clock.advance(SECOND);
    // A second alert whose condition takes longer than a lease; meanwhile another replica's
    // retry job runs and finds the first alert's delivery with its lease expired.
    await using slow = serveLocal(async () => {
      while ((await db.sql`select 1 from alert_deliveries where alert_id = ${fast}`).length === 0) {
        await new Promise((r) => setTimeout(r, 5)); // waiting for the other alert's firing
      }
      s.clock.advance(LEASE + MINUTE);
      await retryDeliveries(other.dispatcher);
      return Response.json({ value: 0 });
    });
    await s.app.request("POST", "/v1/agents", {
      body: { name: "slow", url: slow.url, capabilities: ["slow.read"] },
    });
    await s.alertOn("webhook", { condition: { ...overTen, capability: "slow.read" } });
    const totals = await evaluateDueAlerts(s.app, s.clock.now());
    assertEquals([totals.evaluated, totals.fired], [2, 1]);
    const [{ id }] = await db.sql`select id from alert_deliveries where alert_id = ${fast}`;
    assertEquals(s.hook.requests.get(id), 1, "one webhook call");
    const d = await s.delivery(id);
    assertEquals([d.status, d.attempts, d.history], ["delivered", 1, [{
      outcome: "delivered",
      fenced: false,
    }]]);
  },
);

dbTest(
  "fencing: a sender that lost its lease records nothing over the new owner's outcome",
  async (_t, db) => {
    await using s = await setup(db);
    const other = await testApp(db, { clock: s.clock, adminEmail: "admin-2@example.com" });
    let release!: () => void;
    // The first request is held on the way (a proxy, say), then refused by an outage in front
    // of the receiver: a definite failure, answered long after the lease ran out.
    s.hook.respond({
      kind: "wait",
      until: new Promise<void>((r) => (release = r)),
      then: { kind: "outage" },
    });
    const firing = await s.fireOnly("webhook");
    const late = s.app.dispatcher.deliver(firing.deliveries); // its request hangs
    while ((s.hook.requests.size) === 0) await new Promise((r) => setTimeout(r, 2));
    s.clock.advance(LEASE + SECOND);
    const takeover = await retryDeliveries(other.dispatcher);
    assertEquals(takeover.abandoned.delivered, 1);
    release();
    const [outcome] = await late;
    assertEquals(outcome.status, "failed", "the late sender saw its own failure");
    const d = await s.delivery(firing.deliveries[0].id);
    assertEquals([d.status, d.dlq_state, d.attempts], ["delivered", null, 1]);
    assertEquals(d.history, [
      { outcome: "delivered", fenced: false },
      { outcome: "failed", fenced: true },
    ]);
    assertEquals(s.hook.copies.get(firing.deliveries[0].id), 1);
  },
);

dbTest(
  "shutdown: in-flight sends finish and are recorded; then nothing is claimed",
  async (_t, db) => {
    await using s = await setup(db);
    let release!: () => void;
    s.hook.respond({ kind: "status", status: 500 });
    const fired = await s.evaluate(await s.alertOn("webhook"));
    const id = fired.deliveries[0].id;
    s.hook.respond({
      kind: "wait",
      until: new Promise<void>((r) => (release = r)),
      then: { kind: "ok" },
    });
    s.clock.advance(BACKOFF[0]);
    const running = s.app.drain.track(retryDeliveries(s.app.dispatcher));
    while (s.hook.requests.get(id) !== 2) await new Promise((r) => setTimeout(r, 2));
    const stopped = s.app.drain.stop(10_000, 1_000);
    release();
    assertEquals(await stopped, true);
    assertEquals((await running).retried.delivered, 1);
    assertEquals((await s.delivery(id)).status, "delivered");
    // Stopping: the jobs claim nothing more.
    s.hook.respond({ kind: "status", status: 500 });
    await s.evaluate(await s.alertOn("webhook"));
    s.clock.advance(BACKOFF[0]);
    assertEquals((await retryDeliveries(s.app.dispatcher)).retried.failed, 0);
    assertEquals(await evaluateDueAlerts(s.app, s.clock.now()), {
      evaluated: 0,
      matched: 0,
      fired: 0,
      errors: 0,
    });
  },
);

dbTest(
  "shutdown: a send cut off at the deadline is released, and the next process sends it at once",
  async (_t, db) => {
    await using s = await setup(db);
    s.hook.respond({ kind: "hang" });
    const firing = await s.fireOnly("webhook");
    const id = firing.deliveries[0].id;
    const sending = s.app.drain.track(s.app.dispatcher.deliver(firing.deliveries));
    while (!s.hook.requests.has(id)) await new Promise((r) => setTimeout(r, 2));
    assertEquals(await s.app.drain.stop(20, 5_000), true, "cut off, then recorded in time");
    assertEquals((await sending)[0].status, "pending");
    const d = await s.delivery(id);
    assertEquals([d.status, d.lease_until, d.maybe_sent, d.dlq_state], [
      "pending",
      null,
      true,
      null,
    ]);
    assertEquals(d.history, [{ outcome: "unknown", fenced: false }]);
    // The receiver notices the cut-off connection (else it would answer 409: still in progress).
    while (s.hook.inFlight > 0) await new Promise((r) => setTimeout(r, 2));
    // No stale window to wait for: the next process takes it on its first tick.
    const next = await testApp(db, { clock: s.clock, adminEmail: "admin-2@example.com" });
    assertEquals((await retryDeliveries(next.dispatcher)).abandoned.delivered, 1);
    assertEquals(s.hook.copies.get(id), 1);
  },
);

dbTest(
  "rate limit: emails whose slot comes too late in a lease wait for the next tick, unsent",
  async (_t, db) => {
    await using s = await setup(db, {
      DELIVERY_LEASE_SECONDS: "2",
      RESEND_TIMEOUT_MS: "300",
      WEBHOOK_TIMEOUT_MS: "300",
      RESEND_RATE_PER_SECOND: "5",
    });
    for (let i = 0; i < 10; i++) await s.alertOn("email");
    assertEquals((await evaluateDueAlerts(s.app, s.clock.now())).fired, 10);
    const statuses = async () =>
      Object.fromEntries(
        (await db.sql`select status, count(*)::int as n from alert_deliveries group by status`)
          .map((r) => [r.status, r.n]),
      );
    const first = await statuses();
    // 1.5 s of a 2 s lease for sends, each needing 300 ms: slots at 0, 200, … 1,200 ms.
    assert(first.delivered >= 1 && first.pending >= 1, JSON.stringify(first));
    assertEquals(first.failed, undefined, "nothing was sent with no time left");
    const [{ attempts }] = await db.sql`
      select coalesce(sum(attempts), 0)::int as attempts from alert_deliveries where status = 'pending'`;
    assertEquals(attempts, 0, "a send that never started is no attempt");
    for (let tick = 0; tick < 3 && (await statuses()).pending; tick++) {
      await retryDeliveries(s.app.dispatcher);
    }
    assertEquals(await statuses(), { delivered: 10 });
    assertEquals([...s.resend.requests.values()], Array(10).fill(1), "one request per email");
  },
);

dbTest(
  "dedup: a firing episode is one DLQ entry while the channel is down, one copy after",
  async (_t, db) => {
    await using s = await setup(db);
    s.hook.decide = () => ({ kind: "status", status: 503 });
    const id = await s.alertOn("webhook", { repeat_interval_seconds: 0 }); // no reminders
    const results = [];
    for (let i = 0; i < 3; i++) {
      results.push(await s.evaluate(id));
      s.clock.advance(MINUTE);
    }
    assertEquals(results.map((r) => r.suppressed_by ?? r.deliveries[0].status), [
      "failed",
      "repeat_interval",
      "repeat_interval",
    ]);
    const [{ n }] = await db.sql`select count(*)::int as n from alert_dlq`;
    assertEquals(n, 1);
    s.hook.decide = undefined;
    s.clock.advance(BACKOFF[0]);
    await retryDeliveries(s.app.dispatcher);
    assertEquals([...s.hook.copies.values()], [1], "one copy after recovery");
  },
);

dbTest("retry-after: any value the receiver sends leaves a due time in range", async (t, db) => {
  await using s = await setup(db);
  const cases: [string, number][] = [
    ["99999999999999999999", MAX_DELAY_MS],
    ["1e308", MAX_DELAY_MS],
    ["-5", BACKOFF[0]],
    ["Fri, 31 Dec 9999 23:59:59 GMT", MAX_DELAY_MS],
    ["not a number", BACKOFF[0]],
    ["7200", 2 * HOUR],
  ];
  for (const [header, delay] of cases) {
    await t.step(`Retry-After: ${header}`, async () => {
      s.hook.respond({ kind: "status", status: 429, retryAfter: header });
      const fired = await s.evaluate(await s.alertOn("webhook"));
      const d = await s.delivery(fired.deliveries[0].id);
      assertEquals(d.dlq_state, "pending");
      assertEquals(d.next_retry_at.getTime() - s.clock.now().getTime(), delay);
    });
  }
  await t.step("the database refuses a pending DLQ row without a due time", async () => {
    const [row] = await db.sql`select delivery_id from alert_dlq limit 1`;
    await assertRejects(
      () =>
        db.sql`update alert_dlq set next_retry_at = null where delivery_id = ${row.delivery_id}`,
      Error,
      "alert_dlq_due_check",
    );
  });
});

dbTest(
  "idempotency window: an email that may have arrived is never sent after Resend forgets its key",
  async (_t, db) => {
    await using s = await setup(db, { RESEND_TIMEOUT_MS: "100" });
    s.resend.respond({ kind: "accept_then_hang" });
    const fired = await s.evaluate(await s.alertOn("email"));
    const id = fired.deliveries[0].id;
    assertEquals(fired.deliveries[0].status, "failed");
    assertMatch(fired.deliveries[0].error, /no answer within 100 ms/);
    s.resend.down = true; // an outage in front of Resend's idempotency layer, for days
    const created = s.clock.now().getTime();
    for (let i = 0; i < 8; i++) {
      const d = await s.delivery(id);
      if (d.dlq_state !== "pending") break;
      s.clock.set(d.next_retry_at);
      await retryDeliveries(s.app.dispatcher);
    }
    const d = await s.delivery(id);
    assertEquals([d.status, d.dlq_state, d.maybe_sent], ["uncertain", "uncertain", true]);
    assertEquals(d.history.map((a: { outcome: string }) => a.outcome), [
      "unknown",
      "failed",
      "failed",
      "failed",
      "uncertain",
    ]);
    s.resend.down = false;
    s.clock.set(new Date(created + 30 * 24 * HOUR));
    await retryDeliveries(s.app.dispatcher);
    assertEquals(s.resend.requests.get(id), 5, "nothing sent after the window");
    assertEquals(s.resend.copies.get(id), 1, "the user got one email");
    const dlq = await s.app.request("GET", "/v1/dlq?state=uncertain");
    assertEquals(dlq.body.items.map((r: { delivery_id: string }) => r.delivery_id), [id]);
    await s.app.dbMonitor.refresh();
    const samples = parseMetrics((await s.app.request("GET", "/metrics", { key: null })).body);
    assertEquals(sampleValue(samples, "alert_dlq_entries", { state: "uncertain" }), 1);
    assertEquals(
      sampleValue(samples, "alert_retry_attempts_total", {
        channel: "email",
        outcome: "uncertain",
      }),
      1,
    );
  },
);

dbTest(
  "idempotency window: a delivery abandoned mid-send and found after the window is uncertain, unsent",
  async (_t, db) => {
    await using s = await setup(db);
    // The process died after the firing committed, perhaps while sending.
    const firing = await s.fireOnly("email");
    s.clock.advance(25 * HOUR); // every replica was down for a day
    const tick = await retryDeliveries(s.app.dispatcher);
    assertEquals(tick.abandoned.uncertain, 1);
    assertEquals(s.resend.requests.size, 0);
    const d = await s.delivery(firing.deliveries[0].id);
    assertEquals([d.status, d.dlq_state], ["uncertain", "uncertain"]);
    // A person may decide to send it anyway.
    const [{ id: dlqId }] = await db.sql`select id from alert_dlq`;
    assertEquals((await s.app.request("POST", `/v1/dlq/${dlqId}/replay`)).status, 200);
    assertEquals((await retryDeliveries(s.app.dispatcher)).retried.delivered, 1);
    assertEquals(s.resend.copies.get(firing.deliveries[0].id), 1);
  },
);

dbTest("clock skew: measured against the database; claims refused when far off", async (_t, db) => {
  const clock = new ManualClock(new Date(Date.now() - 45 * SECOND));
  const app = await testApp(db, { clock });
  const skew = await app.skew.measure();
  assert(Math.abs(skew - 45 * SECOND) < 5 * SECOND, `measured ${skew} ms`);
  const samples = parseMetrics((await app.request("GET", "/metrics", { key: null })).body);
  assert(Math.abs(sampleValue(samples, "vigil_clock_skew_seconds", {})! - 45) < 5);
  const retry = app.jobs.find((j) => j.name === "alerts.retry")!;
  const run = await runJob(retry, app);
  assertEquals(run.status, "error");
  assertMatch(run.error!, /refusing to claim work: this replica's clock is 4\d s off/);
  const prune = app.jobs.find((j) => j.name === "runs.prune")!;
  assertEquals((await runJob(prune, app)).status, "success", "jobs that claim nothing still run");
  clock.set(new Date());
  await app.skew.measure();
  assertEquals((await runJob(retry, app)).status, "success");
});

dbTest("jobs: an admin runs a job now; unknown jobs are 404, users are refused", async (_t, db) => {
  const app = await testApp(db);
  const user = await app.newUser("u@example.com");
  const run = await app.request("POST", "/v1/jobs/alerts.retry/run");
  assertEquals([run.status, run.body.job, run.body.status], [200, "alerts.retry", "success"]);
  assertEquals(run.body.result.retried.delivered, 0);
  const missing = await app.request("POST", "/v1/jobs/nope/run");
  assertEquals(missing.status, 404);
  assertMatch(missing.body.detail, /alerts\.evaluate/);
  assertEquals(
    (await app.request("POST", "/v1/jobs/alerts.retry/run", { key: user.key })).status,
    403,
  );
  const list = await app.request("GET", "/v1/jobs");
  assert(list.body.items.some((j: { name: string }) => j.name === "clock.skew"));
});

dbTest(
  "idempotency window: replaying a pending entry that may have arrived keeps the window",
  async (_t, db) => {
    // Found by the model test (seed 857636182): a replay used to forget that the first attempt
    // may have arrived, and the email went out again after Resend had forgotten its key.
    await using s = await setup(db, { RESEND_TIMEOUT_MS: "100" });
    s.resend.respond({ kind: "accept_then_hang" });
    const fired = await s.evaluate(await s.alertOn("email"));
    const id = fired.deliveries[0].id;
    const [{ id: dlqId }] = await db.sql`select id from alert_dlq where delivery_id = ${id}`;
    assertEquals((await s.app.request("POST", `/v1/dlq/${dlqId}/replay`)).status, 200);
    assertEquals((await s.delivery(id)).maybe_sent, true, "still maybe sent");
    s.clock.advance(25 * HOUR);
    await retryDeliveries(s.app.dispatcher);
    assertEquals((await s.delivery(id)).status, "uncertain");
    assertEquals(s.resend.copies.get(id), 1, "one email");
  },
);
