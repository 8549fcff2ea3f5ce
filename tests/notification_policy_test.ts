/**
 * Notification policies end to end (issue 14): the API, alerts that take their channels and
 * repeat interval from it unless they set their own, and time windows — an info alert firing at
 * the weekend is delivered on Monday at 09:00 local time, not a minute before, across daylight
 * saving time changes too, by the retry job's sweep; nothing lost, nothing doubled, no repeat
 * stacked while it waits, and a deferred email keeps Resend's idempotency window.
 */
import { evaluateDueAlerts } from "../src/alerts/evaluate_job.ts";
import { retryDeliveries } from "../src/delivery/retry_job.ts";
import { assert, assertEquals } from "./support/assert.ts";
import { type Json, testApp } from "./support/app.ts";
import { HOUR, ManualClock, MINUTE } from "./support/clock.ts";
import { dbTest, type TestDatabase } from "./support/database.ts";
import { fakeResendProvider } from "./support/fake_providers.ts";
import { alwaysMatches } from "./support/gauge.ts";
import { serveLocal } from "./support/servers.ts";

const POLICY = "/v1/me/notification-policy";

dbTest(
  "policy API: the defaults, a replacement per user, and a 422 listing every problem",
  async (_t, db) => {
    const app = await testApp(db);
    const ann = await app.newUser("ann@example.com");
    const bob = await app.newUser("bob@example.com");

    const initial = await app.request("GET", POLICY, { key: ann.key });
    assertEquals(initial.status, 200);
    assertEquals(initial.body, {
      time_zone: "UTC",
      critical: { channels: "all", repeat_interval_seconds: 1800, window: null },
      warning: { channels: "all", repeat_interval_seconds: 7200, window: null },
      info: {
        channels: "all",
        repeat_interval_seconds: 43_200,
        window: { days: ["mon", "tue", "wed", "thu", "fri"], from: "09:00", to: "17:00" },
      },
      updated_at: null,
    });

    const put = await app.request("PUT", POLICY, {
      key: ann.key,
      body: {
        time_zone: "europe/berlin",
        critical: { channels: ["pagerduty", "inapp"], repeat_interval_seconds: 600, window: null },
        warning: {
          channels: "all",
          repeat_interval_seconds: 3600,
          window: {
            days: ["sat", "sun"],
            from: "10:00",
            to: "24:00",
            time_zone: "America/New_York",
          },
        },
      },
    });
    assertEquals(put.status, 200, JSON.stringify(put.body));
    assertEquals(put.body.time_zone, "Europe/Berlin", "canonical name");
    assertEquals(put.body.info, initial.body.info, "left out: the default");
    assertEquals(put.body.updated_at, app.clock.now().toISOString());
    assertEquals((await app.request("GET", POLICY, { key: ann.key })).body, put.body);
    assertEquals(
      (await app.request("GET", POLICY, { key: bob.key })).body,
      initial.body,
      "per user",
    );

    const bad = await app.request("PUT", POLICY, {
      key: ann.key,
      body: {
        time_zone: "Mars/Olympus_Mons",
        critical: {
          channels: ["sms"],
          repeat_interval_seconds: -1,
          window: { days: [], from: "25:00", to: "08:00", time_zone: "+01:00" },
        },
        info: {
          channels: "all",
          repeat_interval_seconds: 60,
          window: { days: ["mon"], from: "17:00", to: "09:00" },
        },
        warning: { channels: "all" },
      },
    });
    assertEquals(bad.status, 422);
    assertEquals(bad.body.errors.map((e: Json) => e.path).sort(), [
      "critical.channels",
      "critical.repeat_interval_seconds",
      "critical.window.days",
      "critical.window.from",
      "critical.window.time_zone",
      "info.window.to",
      "time_zone",
      "warning.repeat_interval_seconds",
      "warning.window",
    ]);
    const zone = bad.body.errors.find((e: Json) => e.path === "time_zone");
    assertEquals(
      zone.message,
      '"Mars/Olympus_Mons" is not an IANA time zone (such as Europe/Berlin or UTC)',
    );
    assertEquals((await app.request("GET", POLICY, { key: ann.key })).body, put.body, "unchanged");
    assertEquals((await app.request("GET", POLICY, { key: null })).status, 401);
    assertEquals((await app.request("PUT", POLICY, { key: null, body: {} })).status, 401);
  },
);

dbTest(
  "alerts: channels and repeat interval come from the policy unless set explicitly",
  async (_t, db) => {
    const app = await testApp(db);
    const ann = await app.newUser("ann@example.com");
    const create = (body: Record<string, unknown>) =>
      app.request("POST", "/v1/alerts", {
        key: ann.key,
        body: { name: "a", condition: alwaysMatches, ...body },
      });
    const flags = (a: Json) => [a.channels_from_policy, a.repeat_interval_from_policy];

    const bare = await create({});
    assertEquals(bare.status, 201);
    assertEquals(flags(bare.body), [true, true]);
    assertEquals(bare.body.channels, { inapp: true, email: false });
    assertEquals(flags((await create({ channels: { inapp: true, email: true } })).body), [
      false,
      true,
    ]);
    assertEquals(flags((await create({ repeat_interval_seconds: 60 })).body), [true, false]);
    assertEquals(flags((await create({ cooldown_seconds: 60 })).body), [true, false]);
    // Configure channels, let the policy choose among them.
    assertEquals(
      flags(
        (await create({ channels: { inapp: true, email: true }, channels_from_policy: true })).body,
      ),
      [true, true],
    );
    const both = await create({ repeat_interval_seconds: 60, repeat_interval_from_policy: true });
    assertEquals(both.status, 422);
    assertEquals(both.body.errors.map((e: Json) => e.path), ["repeat_interval_from_policy"]);

    const id = bare.body.id;
    const patch = (body: Record<string, unknown>) =>
      app.request("PATCH", `/v1/alerts/${id}`, { key: ann.key, body });
    assertEquals(flags((await patch({ channels: { inapp: true, email: true } })).body), [
      false,
      true,
    ]);
    assertEquals(flags((await patch({ repeat_interval_seconds: 120 })).body), [false, false]);
    assertEquals(
      flags((await patch({ name: "renamed" })).body),
      [false, false],
      "other changes keep them",
    );
    const back = await patch({ channels_from_policy: true, repeat_interval_from_policy: true });
    assertEquals(flags(back.body), [true, true]);
    assertEquals(
      back.body.repeat_interval_seconds,
      120,
      "kept for when it is the alert's own again",
    );
  },
);

dbTest(
  "policy channels: chosen among the configured, a missing one skipped, in-app as the fallback",
  async (_t, db) => {
    await using hook = serveLocal(() => new Response(null, { status: 204 }));
    const app = await testApp(db);
    const ann = await app.newUser("ann@example.com");
    await app.request("PUT", POLICY, {
      key: ann.key,
      body: {
        warning: { channels: ["webhook"], repeat_interval_seconds: 7200, window: null },
        critical: { channels: ["slack"], repeat_interval_seconds: 1800, window: null },
      },
    });
    const fire = async (body: Record<string, unknown>) => {
      const created = await app.request("POST", "/v1/alerts", {
        key: ann.key,
        body: { name: crypto.randomUUID(), condition: alwaysMatches, ...body },
      });
      assertEquals(created.status, 201, JSON.stringify(created.body));
      const evaluated = await app.request("POST", `/v1/alerts/${created.body.id}/evaluate`, {
        key: ann.key,
        body: {},
      });
      assertEquals(evaluated.body.fired, true);
      return evaluated.body.deliveries.map((d: Json) => `${d.channel}:${d.status}`).sort();
    };
    const configured = { inapp: true, webhook: { url: `${hook.url}/in` } };
    assertEquals(
      await fire({ severity: "warning", channels: configured, channels_from_policy: true }),
      ["webhook:delivered"],
      "the policy's choice among the alert's channels",
    );
    assertEquals(
      await fire({
        severity: "critical",
        channels: { inapp: false, webhook: { url: `${hook.url}/in` } },
        channels_from_policy: true,
      }),
      ["inapp:delivered"],
      "Slack is not configured on the alert: skipped, and in-app instead of nothing",
    );
    assertEquals(
      await fire({ severity: "warning", channels: configured }),
      ["inapp:delivered", "webhook:delivered"],
      "channels set explicitly: all of them",
    );
  },
);

dbTest(
  "policy repeat interval: critical every 30 min by default; an alert's own wins",
  async (_t, db) => {
    const app = await testApp(db);
    const ann = await app.newUser("ann@example.com");
    const create = async (body: Record<string, unknown>) =>
      (await app.request("POST", "/v1/alerts", {
        key: ann.key,
        body: {
          name: crypto.randomUUID(),
          condition: alwaysMatches,
          severity: "critical",
          ...body,
        },
      })).body.id as string;
    const evaluate = async (id: string) =>
      (await app.request("POST", `/v1/alerts/${id}/evaluate`, { key: ann.key, body: {} })).body;
    const fromPolicy = await create({});
    const own = await create({ repeat_interval_seconds: 3600 });
    assertEquals((await evaluate(fromPolicy)).fired, true);
    assertEquals((await evaluate(own)).fired, true);
    app.clock.advance(29 * MINUTE);
    assertEquals((await evaluate(fromPolicy)).suppressed_by, "repeat_interval");
    app.clock.advance(MINUTE);
    const repeat = await evaluate(fromPolicy);
    assertEquals([repeat.fired, repeat.notifications], [true, [{
      kind: "repeat",
      silenced: false,
    }]]);
    assertEquals((await evaluate(own)).suppressed_by, "repeat_interval", "its own hour");
    await app.request("PUT", POLICY, {
      key: ann.key,
      body: { critical: { channels: "all", repeat_interval_seconds: 0, window: null } },
    });
    app.clock.advance(2 * HOUR);
    assertEquals((await evaluate(fromPolicy)).fired, false, "0: no repeats");
    assertEquals((await evaluate(own)).fired, true);
  },
);

/** An info alert of a Berlin user, evaluated by the jobs every few minutes from `start`. */
async function weekend(db: TestDatabase, start: string) {
  const clock = new ManualClock(start);
  const app = await testApp(db, { clock });
  const ann = await app.newUser("ann@example.com");
  const put = await app.request("PUT", POLICY, {
    key: ann.key,
    body: { time_zone: "Europe/Berlin" },
  });
  assertEquals(put.status, 200);
  const created = await app.request("POST", "/v1/alerts", {
    key: ann.key,
    body: { name: "disk", condition: alwaysMatches, severity: "info" },
  });
  assertEquals(created.status, 201);
  const id = created.body.id as string;
  /** Both jobs, as every replica runs them each minute. */
  const tick = async () => {
    const evaluated = await evaluateDueAlerts(app, clock.now());
    const retried = await retryDeliveries(app.dispatcher);
    return { evaluated, retried };
  };
  const notifications = async () =>
    (await app.request("GET", "/v1/notifications", { key: ann.key })).body.items
      .map((n: Json) => n.title);
  const deliveries = () =>
    db.sql<
      {
        status: string;
        not_before: Date | null;
        attempts: number;
        maybe_sent: boolean;
        kind: string;
      }[]
    >`
      select status, not_before, attempts, maybe_sent, payload ->> 'kind' as kind
      from alert_deliveries where alert_id = ${id} order by created_at`;
  /** Runs the jobs every `step` until `until` (exclusive); returns what was delivered. */
  const runUntil = async (until: string, step = 20 * MINUTE) => {
    let delivered = 0;
    while (clock.now().getTime() < Date.parse(until)) {
      const { retried } = await tick();
      delivered += retried.abandoned.delivered + retried.retried.delivered;
      clock.set(new Date(Math.min(clock.now().getTime() + step, Date.parse(until))));
    }
    return delivered;
  };
  return { app, clock, ann, id, tick, notifications, deliveries, runUntil };
}

for (
  const [when, start, opening] of [
    ["in winter (09:00 CET = 08:00 UTC)", "2026-01-02T16:00:00.000Z", "2026-01-05T08:00:00.000Z"],
    [
      "across the March change (09:00 CEST = 07:00 UTC)",
      "2026-03-27T16:00:00.000Z",
      "2026-03-30T07:00:00.000Z",
    ],
    [
      "across the October change (back to 08:00 UTC)",
      "2026-10-23T15:00:00.000Z",
      "2026-10-26T08:00:00.000Z",
    ],
  ] as const
) {
  dbTest(
    `time window: an info alert firing at Friday 17:00 is delivered Monday 09:00 Berlin time ${when}`,
    async (t, db) => {
      const w = await weekend(db, start); // Friday 17:00 in Berlin: the window has just closed

      await t.step(
        "decided outside the window: written, due at the opening, not sent",
        async () => {
          const evaluation = await w.app.request("POST", `/v1/alerts/${w.id}/evaluate`, {
            key: w.ann.key,
            body: {},
          });
          assertEquals(evaluation.body.fired, true);
          assertEquals(evaluation.body.deferred_until, opening);
          assertEquals(evaluation.body.deliveries.map((d: Json) => d.status), ["pending"]);
          const [d] = await w.deliveries();
          assertEquals([d.status, d.not_before?.toISOString(), d.attempts], [
            "pending",
            opening,
            0,
          ]);
          const alert = (await w.app.request("GET", `/v1/alerts/${w.id}`, { key: w.ann.key })).body;
          assertEquals(alert.last_fired_at, opening, "the repeat interval counts from the opening");
        },
      );

      await t.step("the weekend: the jobs run, nothing is sent, no repeat is stacked", async () => {
        const before = new Date(Date.parse(opening) - MINUTE).toISOString();
        assertEquals(await w.runUntil(before), 0);
        assertEquals(await w.notifications(), []);
        const rows = await w.deliveries();
        assertEquals(rows.length, 1, "12-hour repeats do not pile up while it waits");
        assertEquals([rows[0].status, rows[0].attempts, rows[0].maybe_sent], ["pending", 0, false]);
        // A minute before: still nothing, and the sweep does not take it for an abandoned send.
        const { retried } = await w.tick();
        assertEquals(retried.abandoned, {
          delivered: 0,
          failed: 0,
          exhausted: 0,
          uncertain: 0,
          pending: 0,
        });
        w.clock.set(new Date(Date.parse(opening) - 1));
        assertEquals((await w.tick()).retried.abandoned.delivered, 0, "1 ms before");
        assertEquals(await w.notifications(), []);
      });

      await t.step("Monday 09:00 local: delivered once", async () => {
        w.clock.set(opening);
        const { retried } = await w.tick();
        assertEquals(retried.abandoned.delivered, 1);
        assertEquals(await w.notifications(), ["Firing: disk"]);
        const [d] = await w.deliveries();
        assertEquals([d.status, d.attempts, d.maybe_sent], ["delivered", 1, false]);
      });

      await t.step(
        "the rest of Monday: nothing twice; the repeat 12 h later waits for Tuesday",
        async () => {
          const tuesday = new Date(Date.parse(opening) + 24 * HOUR).toISOString();
          assertEquals(await w.runUntil(tuesday, 30 * MINUTE), 0);
          assertEquals(await w.notifications(), ["Firing: disk"]);
          const rows = await w.deliveries();
          assertEquals(rows.map((r) => [r.kind, r.status, r.not_before?.toISOString()]), [
            ["firing", "delivered", opening],
            ["repeat", "pending", tuesday],
          ]);
          await w.runUntil(new Date(Date.parse(tuesday) + 5 * MINUTE).toISOString(), MINUTE);
          assertEquals(await w.notifications(), ["Still firing: disk", "Firing: disk"]);
          assertEquals((await w.deliveries()).map((r) => r.status), ["delivered", "delivered"]);
        },
      );
    },
  );
}

dbTest(
  "time window: inside it (Friday 16:59 Berlin) an info alert is sent at once",
  async (_t, db) => {
    const w = await weekend(db, "2026-01-02T15:59:00.000Z");
    const evaluation = await w.app.request("POST", `/v1/alerts/${w.id}/evaluate`, {
      key: w.ann.key,
      body: {},
    });
    assertEquals(evaluation.body.deliveries.map((d: Json) => d.status), ["delivered"]);
    assertEquals(evaluation.body.deferred_until, undefined);
    assertEquals(await w.notifications(), ["Firing: disk"]);
  },
);

dbTest(
  "time window: a repeat falling due while its episode's firing still waits is folded into it",
  async (_t, db) => {
    const w = await weekend(db, "2026-01-03T10:00:00.000Z"); // Saturday
    const evaluate = async () =>
      (await w.app.request("POST", `/v1/alerts/${w.id}/evaluate`, { key: w.ann.key, body: {} }))
        .body;
    assertEquals((await evaluate()).deferred_until, "2026-01-05T08:00:00.000Z");
    // A replica whose clock was behind recorded the firing as sent now rather than at the opening:
    // a repeat falls due 12 h later, while the firing still waits.
    await db.sql`update alerts set last_fired_at = ${w.clock.now()} where id = ${w.id}`;
    w.clock.advance(12 * HOUR);
    const folded = await evaluate();
    assertEquals([folded.fired, folded.suppressed_by, folded.deliveries], [false, "window", []]);
    assertEquals((await w.deliveries()).length, 1);
    await w.runUntil("2026-01-05T08:05:00.000Z", HOUR);
    assertEquals(await w.notifications(), ["Firing: disk"]);
  },
);

dbTest(
  "time window: a deferred email keeps Resend's idempotency window (counted from when it is due)",
  async (_t, db) => {
    const clock = new ManualClock("2026-01-03T10:00:00.000Z"); // Saturday
    const resend = fakeResendProvider(clock);
    await using _resend = resend;
    const app = await testApp(db, {
      clock,
      env: {
        RESEND_API_KEY: "re_test",
        RESEND_BASE_URL: resend.url,
        RESEND_RATE_PER_SECOND: "1000",
        RESEND_TIMEOUT_MS: "100",
      },
    });
    const ann = await app.newUser("ann@example.com");
    const created = await app.request("POST", "/v1/alerts", {
      key: ann.key,
      body: {
        name: "disk",
        condition: alwaysMatches,
        severity: "info",
        channels: { inapp: false, email: true },
      },
    });
    const fired = await app.request("POST", `/v1/alerts/${created.body.id}/evaluate`, {
      key: ann.key,
      body: {},
    });
    const opening = "2026-01-05T09:00:00.000Z"; // Monday 09:00 UTC: 47 h after it was written
    assertEquals(fired.body.deferred_until, opening, "explicit channels: the window still applies");
    const id = fired.body.deliveries[0].id;
    clock.set(opening);
    // Resend takes the email in, but the answer is lost: the outcome is unknown.
    resend.respond({ kind: "accept_then_hang" });
    const first = await retryDeliveries(app.dispatcher);
    assertEquals(first.abandoned.failed, 1, "an unknown outcome, retried (not uncertain)");
    const [dlq] = await db.sql<{ next_retry_at: Date }[]>`
    select next_retry_at from alert_dlq where delivery_id = ${id}`;
    clock.set(dlq.next_retry_at); // 5 minutes later: Resend still knows the key
    const second = await retryDeliveries(app.dispatcher);
    assertEquals(second.retried.delivered, 1);
    assertEquals(resend.requests.get(id), 2);
    assertEquals(resend.copies.get(id), 1, "one email");
    const [d] = await db.sql`select status from alert_deliveries where id = ${id}`;
    assertEquals(d.status, "delivered");
    assert(
      Date.parse(opening) - Date.parse("2026-01-03T10:00:00.000Z") > 24 * HOUR,
      "counted from created_at, the window would have been over",
    );
  },
);
