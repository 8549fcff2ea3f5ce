/**
 * Reliable delivery: the retry schedule with an injected clock, the real Resend SDK against a
 * fake Resend, crash safety of the outbox, two retry workers on one queue, webhook signatures,
 * and the DLQ API.
 */
import { Webhook } from "standardwebhooks";
import { DEFAULT_SCHEDULE } from "../src/delivery/schedule.ts";

const { backoffMs: BACKOFF_MS, leaseMs: LEASE_MS } = DEFAULT_SCHEDULE;
import { retryDeliveries } from "../src/delivery/retry_job.ts";
import { assert, assertEquals, assertMatch } from "./support/assert.ts";
import { testApp } from "./support/app.ts";
import { ManualClock, MINUTE, SECOND } from "./support/clock.ts";
import { dbTest } from "./support/database.ts";
import { fakeResend } from "./support/fake_resend.ts";
import { gaugeApp, overTen } from "./support/gauge.ts";
import { parseMetrics, sampleValue } from "./support/prometheus_text.ts";
import { serveLocal } from "./support/servers.ts";

/** A retry tick that did nothing. */
const NONE = { delivered: 0, failed: 0, exhausted: 0, uncertain: 0, pending: 0 };

dbTest(
  "retries: 5 min, 30 min, 2 h, 12 h, 24 h, then exhausted; never early; replay works",
  async (t, db) => {
    const app = await gaugeApp(db);
    await using _gauge = app.server;
    let healthy = false;
    const hits: string[] = [];
    await using hook = serveLocal((req) => {
      hits.push(req.headers.get("webhook-id")!);
      return new Response(null, { status: healthy ? 204 : 500 });
    });
    const ann = await app.newUser("ann@example.com");
    const alert = await app.request("POST", "/v1/alerts", {
      key: ann.key,
      body: {
        name: "hook",
        condition: overTen,
        channels: { inapp: false, webhook: { url: `${hook.url}/in` } },
      },
    });
    app.gauge.value = 11;
    const fired = await app.request("POST", `/v1/alerts/${alert.body.id}/evaluate`, {
      key: ann.key,
      body: {},
    });
    assertEquals(fired.body.deliveries.map((d: { status: string }) => d.status), ["failed"]);
    const deliveryId = fired.body.deliveries[0].id;
    const dlq = async () =>
      (await db.sql`select * from alert_dlq where delivery_id = ${deliveryId}`)[0];
    const tick = (at: Date) => {
      app.clock.set(at);
      return retryDeliveries(app.dispatcher);
    };

    let due = new Date(app.clock.now().getTime() + BACKOFF_MS[0]);
    await t.step("the first failure is due in 5 min", async () => {
      const row = await dlq();
      assertEquals([row.state, row.retry_count, row.next_retry_at.toISOString()], [
        "pending",
        0,
        due.toISOString(),
      ]);
    });

    const expected = [30 * MINUTE, 120 * MINUTE, 720 * MINUTE, 1440 * MINUTE];
    for (let retry = 1; retry <= 5; retry++) {
      await t.step(`retry ${retry} happens at its time, not before`, async () => {
        const early = await tick(new Date(due.getTime() - 1));
        assertEquals(early.retried, NONE);
        const result = await tick(due);
        const row = await dlq();
        assertEquals(row.retry_count, retry);
        if (retry < 5) {
          assertEquals(result.retried, { ...NONE, failed: 1 });
          due = new Date(due.getTime() + expected[retry - 1]);
          assertEquals([row.state, row.next_retry_at.toISOString()], [
            "pending",
            due.toISOString(),
          ]);
        } else {
          assertEquals(result.retried, { ...NONE, exhausted: 1 });
          assertEquals([row.state, row.next_retry_at], ["exhausted", null]);
        }
      });
    }

    await t.step("exhausted rows stay, are never retried, and are visible", async () => {
      assertEquals(
        (await tick(new Date(app.clock.now().getTime() + 30 * 24 * 60 * MINUTE))).retried,
        NONE,
      );
      assertEquals(hits.length, 6);
      assertEquals(
        new Set(hits),
        new Set([deliveryId]),
        "every attempt carries the same webhook-id",
      );
      const history = await app.request("GET", `/v1/alerts/${alert.body.id}/deliveries`, {
        key: ann.key,
      });
      const d = history.body.items[0];
      assertEquals([d.status, d.attempts, d.dlq.state, d.dlq.retry_count], [
        "exhausted",
        6,
        "exhausted",
        5,
      ]);
      assertEquals(d.attempt_history.map((a: { outcome: string }) => a.outcome), [
        ...Array(5).fill("failed"),
        "exhausted",
      ]);
      assertEquals(d.attempt_history[0].error, "webhook answered HTTP 500");
      assertEquals(d.attempt_history[0].provider_status, 500);
    });

    await t.step("replay: due now, count and history kept; success removes the row", async () => {
      healthy = true;
      const row = await dlq();
      const replayed = await app.request("POST", `/v1/dlq/${row.id}/replay`);
      assertEquals([replayed.status, replayed.body.state, replayed.body.retry_count], [
        200,
        "pending",
        5,
      ]);
      assertEquals(replayed.body.next_retry_at, app.clock.now().toISOString());
      assertEquals((await tick(app.clock.now())).retried, { ...NONE, delivered: 1 });
      assertEquals(await dlq(), undefined);
      const [delivery] = await db
        .sql`select status, attempts from alert_deliveries where id = ${deliveryId}`;
      assertEquals([delivery.status, delivery.attempts], ["delivered", 7]);
    });

    await t.step("retry metrics by channel and outcome", async () => {
      const samples = parseMetrics((await app.request("GET", "/metrics", { key: null })).body);
      const v = (outcome: string) =>
        sampleValue(samples, "alert_retry_attempts_total", { channel: "webhook", outcome });
      assertEquals([v("failed"), v("exhausted"), v("delivered")], [4, 1, 1]);
    });
  },
);

dbTest(
  "email: the real Resend SDK against a fake Resend (200, 429, 422, 500, timeout)",
  async (t, db) => {
    await using resend = fakeResend();
    const app = await gaugeApp(db, {
      env: {
        RESEND_API_KEY: "re_test_key",
        RESEND_BASE_URL: resend.url,
        RESEND_RATE_PER_SECOND: "1000",
        RESEND_TIMEOUT_MS: "300",
        ALERT_EMAIL_FROM: "vigil <alerts@example.com>",
      },
    });
    await using _gauge = app.server;
    const ann = await app.newUser("ann@example.com");
    app.gauge.value = 11;
    let n = 0;
    /** Fires a fresh email alert and returns its delivery id and first outcome. */
    const fire = async () => {
      const alert = await app.request("POST", "/v1/alerts", {
        key: ann.key,
        body: { name: `mail ${++n}`, condition: overTen, channels: { inapp: false, email: true } },
      });
      const res = await app.request("POST", `/v1/alerts/${alert.body.id}/evaluate`, {
        key: ann.key,
        body: {},
      });
      return res.body.deliveries[0] as { id: string; status: string; error?: string };
    };
    const dlq = async (id: string) =>
      (await db.sql`select * from alert_dlq where delivery_id = ${id}`)[0];
    const callsFor = (id: string) => resend.calls.filter((c) => c.idempotencyKey === id);

    await t.step("200: delivered, with subject, text, html, sender and key", async () => {
      const d = await fire();
      assertEquals(d.status, "delivered");
      const [call] = callsFor(d.id);
      assertEquals(call.authorization, "Bearer re_test_key");
      assertEquals(call.body.from, "vigil <alerts@example.com>");
      assertEquals(call.body.to, "ann@example.com");
      assertEquals(call.body.subject, "Firing: mail 1");
      assertMatch(call.body.text!, /mail 1: value is 11 \(> 10\)/);
      assertMatch(call.body.html!, /<h2>Firing: mail 1<\/h2>/);
    });

    await t.step("429 with retry-after: retried no earlier than it says", async () => {
      resend.respond({ status: 429, name: "rate_limit_exceeded", retryAfter: "3600" });
      const d = await fire();
      assertEquals(d.status, "failed");
      const row = await dlq(d.id);
      assertEquals(row.next_retry_at.getTime() - app.clock.now().getTime(), 3600 * SECOND);
      app.clock.advance(BACKOFF_MS[0]);
      assertEquals(
        (await retryDeliveries(app.dispatcher)).retried.delivered,
        0,
        "5 min is too early",
      );
      app.clock.advance(3600 * SECOND - BACKOFF_MS[0]);
      assertEquals((await retryDeliveries(app.dispatcher)).retried.delivered, 1);
      assertEquals(callsFor(d.id).length, 2);
    });

    await t.step("422: exhausted at once, with the provider's message", async () => {
      resend.respond({ status: 422, name: "validation_error", message: "Invalid `to` field." });
      const d = await fire();
      assertEquals(d.status, "exhausted");
      assertEquals(d.error, "Resend 422: Invalid `to` field.");
      const row = await dlq(d.id);
      assertEquals([row.state, row.error_message], [
        "exhausted",
        "Resend 422: Invalid `to` field.",
      ]);
      app.clock.advance(48 * 60 * MINUTE);
      await retryDeliveries(app.dispatcher);
      assertEquals(callsFor(d.id).length, 1, "never retried");
    });

    await t.step("500 then timeout then 200: retried, one idempotency key throughout", async () => {
      resend.respond({ status: 500, name: "internal_server_error" }, { hang: true });
      const d = await fire();
      assertEquals([d.status, d.error], ["failed", "Resend 500: HTTP 500"]);
      app.clock.advance(BACKOFF_MS[0]);
      const second = await retryDeliveries(app.dispatcher);
      assertEquals(second.retried.failed, 1); // the timeout
      assertMatch((await dlq(d.id)).error_message, /^Resend: /);
      app.clock.advance(BACKOFF_MS[1]);
      assertEquals((await retryDeliveries(app.dispatcher)).retried.delivered, 1);
      const calls = callsFor(d.id);
      assertEquals(calls.length, 3);
      assert(calls.every((c) => c.idempotencyKey === d.id));
    });

    await t.step("readiness reports the email channel", async () => {
      const ready = await app.request("GET", "/health/ready", { key: null });
      assertEquals(ready.body.dependencies.email.status, "up");
    });
  },
);

dbTest(
  "email: without RESEND_API_KEY outside development it is unavailable, and deliveries wait in the DLQ",
  async (_t, db) => {
    const app = await gaugeApp(db);
    await using _gauge = app.server;
    const ready = await app.request("GET", "/health/ready", { key: null });
    assertEquals(ready.status, 200, "email is not required for readiness");
    const { latency_ms: _latency, ...email } = ready.body.dependencies.email;
    assertEquals(email, {
      status: "unavailable",
      required: false,
      detail: "RESEND_API_KEY is not set",
    });
    app.gauge.value = 50;
    const alert = await app.request("POST", "/v1/alerts", {
      body: { name: "m", condition: overTen, channels: { email: true } },
    });
    const res = await app.request("POST", `/v1/alerts/${alert.body.id}/evaluate`, { body: {} });
    assertEquals(
      res.body.deliveries.map((d: { channel: string; status: string }) => [d.channel, d.status]),
      [
        ["inapp", "delivered"],
        ["email", "failed"],
      ],
    );
  },
);

dbTest(
  "outbox: a delivery committed but never sent is sent by the retry job exactly once",
  async (_t, db) => {
    const app = await gaugeApp(db);
    await using _gauge = app.server;
    const calls: string[] = [];
    await using hook = serveLocal((req) => {
      calls.push(req.headers.get("webhook-id")!);
      return new Response(null, { status: 200 });
    });
    const ann = await app.newUser("ann@example.com");
    const alert = await app.request("POST", "/v1/alerts", {
      key: ann.key,
      body: {
        name: "crash",
        condition: overTen,
        channels: { inapp: true, webhook: { url: hook.url } },
      },
    });
    const stored = (await app.request("GET", `/v1/alerts/${alert.body.id}`, { key: ann.key })).body;
    // The process "dies" right after the firing transaction commits: the intents are written
    // (apply() does not send), nothing is sent.
    const firing = await app.evaluator.apply(
      { ...stored, next_eval_at: new Date(stored.next_eval_at) },
      { value: 11, matched: true },
      app.clock.now(),
    );
    assertEquals(firing.deliveries.map((d) => d.status), ["pending", "pending"]);

    // Another process starts; its retry job runs every minute.
    const other = await testApp(db, { clock: app.clock, adminEmail: "admin-2@example.com" });
    assertEquals(
      (await retryDeliveries(other.dispatcher)).abandoned.delivered,
      0,
      "not stale yet",
    );
    app.clock.advance(2 * MINUTE);
    const [first, second] = await Promise.all([
      retryDeliveries(other.dispatcher),
      retryDeliveries(other.dispatcher),
    ]);
    assertEquals(first.abandoned.delivered + second.abandoned.delivered, 2);
    app.clock.advance(LEASE_MS + MINUTE);
    assertEquals((await retryDeliveries(other.dispatcher)).abandoned.delivered, 0);
    assertEquals(calls, [firing.deliveries[1].id], "the webhook was called once");
    const notes = await app.request("GET", "/v1/notifications", { key: ann.key });
    assertEquals(notes.body.items.length, 1);
  },
);

dbTest("retries: two workers on 1,000 due DLQ rows deliver each exactly once", async (_t, db) => {
  const clock = new ManualClock();
  const a = await testApp(db, { clock });
  const b = await testApp(db, { clock, adminEmail: "admin-b@example.com" });
  const received = new Map<string, number>();
  await using hook = serveLocal((req) => {
    const id = req.headers.get("webhook-id")!;
    received.set(id, (received.get(id) ?? 0) + 1);
    return new Response(null, { status: 200 });
  });
  const ann = await a.newUser("ann@example.com");
  const secret = "whsec_" + btoa("0123456789abcdef0123456789abcdef");
  const [alert] = await db.sql`
    insert into alerts (user_id, name, condition, channels, next_eval_at, created_at, updated_at)
    values (${ann.id}, 'bulk', ${db.sql.json(overTen)},
            ${db.sql.json({ inapp: false, email: false, webhook: { url: hook.url, secret } })},
            ${clock.now()}, ${clock.now()}, ${clock.now()})
    returning id`;
  const ids = Array.from({ length: 1000 }, () => crypto.randomUUID());
  const payload = {
    type: "alert.fired",
    source: "rule",
    title: "t",
    message: "m",
    alert: null,
    fired_at: "x",
    webhook_url: hook.url,
  };
  await db.sql`
    insert into alert_deliveries (id, alert_id, user_id, channel, content_hash, payload, status, created_at)
    select id, ${alert.id}, ${ann.id}, 'webhook', id::text, ${
    db.sql.json(payload)
  }, 'failed', ${clock.now()}
    from unnest(${ids}::uuid[]) as id`;
  await db.sql`
    insert into alert_dlq (delivery_id, error_message, retry_count, next_retry_at, state, created_at)
    select id, 'earlier failure', 0, ${clock.now()}, 'pending', ${clock.now()} from unnest(${ids}::uuid[]) as id`;

  const [ra, rb] = await Promise.all([
    a.dispatcher.retryDue(),
    b.dispatcher.retryDue(),
  ]);
  assertEquals(ra.length + rb.length, 1000);
  assert(ra.length > 0 && rb.length > 0, `both workers took part (${ra.length} / ${rb.length})`);
  assertEquals(received.size, 1000);
  assertEquals([...received.values()].every((n) => n === 1), true, "no provider call twice");
  const [{ left }] = await db.sql`select count(*)::int as left from alert_dlq`;
  assertEquals(left, 0);
  const [{ delivered }] = await db
    .sql`select count(*)::int as delivered from alert_deliveries where status = 'delivered'`;
  assertEquals(delivered, 1000);
}, { realPostgresOnly: true });

dbTest(
  "webhooks: signed the Standard Webhooks way; verifiable with the alert's secret",
  async (_t, db) => {
    const app = await gaugeApp(db, { clock: new ManualClock(new Date()) });
    await using _gauge = app.server;
    const received: { headers: Record<string, string>; body: string }[] = [];
    await using hook = serveLocal(async (req) => {
      received.push({ headers: Object.fromEntries(req.headers), body: await req.text() });
      return new Response(null, { status: 202 });
    });
    const alert = await app.request("POST", "/v1/alerts", {
      body: {
        name: "signed",
        condition: overTen,
        channels: { inapp: false, webhook: { url: hook.url } },
      },
    });
    app.gauge.value = 42;
    const res = await app.request("POST", `/v1/alerts/${alert.body.id}/evaluate`, { body: {} });
    assertEquals(res.body.deliveries[0].status, "delivered");
    const [{ headers, body }] = received;
    assertEquals(headers["webhook-id"], res.body.deliveries[0].id);
    assertMatch(headers["webhook-signature"], /^v1,[A-Za-z0-9+/]+=*$/);
    const verified = new Webhook(alert.body.channels.webhook.secret).verify(
      body,
      headers,
    ) as Record<string, unknown>;
    assertEquals(verified.delivery_id, res.body.deliveries[0].id);
    assertEquals(verified.type, "alert.fired");
    assertEquals(verified.value, 42);
    assertEquals((verified.alert as { name: string }).name, "signed");
    assert(!("webhook_url" in verified), "the target is not echoed");
    let forged = false;
    try {
      new Webhook("whsec_" + btoa("another secret of thirty-two bytes!!")).verify(body, headers);
    } catch {
      forged = true;
    }
    assert(forged, "another secret does not verify");
  },
);

dbTest(
  "dlq: list and filter, discard with a reason, admins only; the gauge reads the table",
  async (_t, db) => {
    const app = await gaugeApp(db);
    await using _gauge = app.server;
    await using hook = serveLocal(() => new Response(null, { status: 503 }));
    const ann = await app.newUser("ann@example.com");
    app.gauge.value = 11;
    for (const name of ["one", "two"]) {
      const alert = await app.request("POST", "/v1/alerts", {
        key: ann.key,
        body: { name, condition: overTen, channels: { inapp: false, webhook: { url: hook.url } } },
      });
      await app.request("POST", `/v1/alerts/${alert.body.id}/evaluate`, { key: ann.key, body: {} });
      app.clock.advance(SECOND);
    }
    assertEquals((await app.request("GET", "/v1/dlq", { key: ann.key })).status, 403);
    const list = await app.request("GET", "/v1/dlq?state=pending&channel=webhook");
    assertEquals(list.body.items.length, 2);
    assertEquals(list.body.items[0].error_message, "webhook answered HTTP 503");
    assertEquals((await app.request("GET", "/v1/dlq?channel=email")).body.items.length, 0);

    // The gauge is read from the database (in the background, never by the scrape), so a fresh
    // process (a restart) reports it too.
    const restarted = await testApp(db, { clock: app.clock, adminEmail: "admin-r@example.com" });
    const gauge = async () => {
      await restarted.dbMonitor.refresh(); // every 5 s in a running process
      const samples = parseMetrics(
        (await restarted.request("GET", "/metrics", { key: null })).body,
      );
      return [
        sampleValue(samples, "alert_dlq_entries", { state: "pending" }),
        sampleValue(samples, "alert_dlq_entries", { state: "exhausted" }),
      ];
    };
    assertEquals(await gauge(), [2, 0]);

    const victim = list.body.items[0];
    assertEquals(
      (await app.request("DELETE", `/v1/dlq/${victim.id}`, { body: {} })).status,
      422,
      "a reason is required",
    );
    assertEquals(
      (await app.request("DELETE", `/v1/dlq/${victim.id}`, {
        body: { reason: "endpoint retired" },
      })).status,
      204,
    );
    assertEquals(
      (await app.request("DELETE", `/v1/dlq/${victim.id}`, { body: { reason: "again" } })).status,
      404,
    );
    assertEquals(await gauge(), [1, 0]);
    const history = await app.request("GET", `/v1/alerts/${victim.alert_id}/deliveries`, {
      key: ann.key,
    });
    const d = history.body.items[0];
    assertEquals([d.status, d.last_error, d.dlq], [
      "exhausted",
      "discarded from the DLQ: endpoint retired",
      null,
    ]);
    assertEquals(
      d.attempt_history.map((a: { outcome: string; error: string }) => [a.outcome, a.error]),
      [
        ["failed", "webhook answered HTTP 503"],
        ["discarded", "endpoint retired"],
      ],
    );
  },
);
