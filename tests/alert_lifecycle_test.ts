/**
 * The alert lifecycle end to end on real PostgreSQL, driven by the evaluation job and the API: a
 * check that fails three times and recovers is one firing and one resolved message on every
 * channel (in-app, a signed webhook, a fake Slack, a fake PagerDuty with one dedup_key); two
 * replicas evaluating the same alert make one episode; acknowledgement stops the reminders.
 */
import { evaluateDueAlerts } from "../src/alerts/evaluate_job.ts";
import { assert, assertEquals } from "./support/assert.ts";
import { type Json, type Reply, testApp } from "./support/app.ts";
import { MINUTE } from "./support/clock.ts";
import { dbTest } from "./support/database.ts";
import { fakePagerDuty, fakeSlack, trustFakeTls } from "./support/fake_chat.ts";
import { alwaysMatches, gaugeApp, overTen } from "./support/gauge.ts";
import { serveLocal } from "./support/servers.ts";

const ROUTING_KEY = "R0UT1NGKEY0123456789abcdefABCDEF";

dbTest(
  "lifecycle: fails 3 times then recovers — one firing and one resolved on every channel",
  async (t, db) => {
    await using slack = fakeSlack();
    await using pagerduty = fakePagerDuty();
    const hooked: Json[] = [];
    await using hook = serveLocal(async (req) => {
      hooked.push(await req.json());
      return new Response(null, { status: 204 });
    });
    const app = await gaugeApp(db, { env: { PAGERDUTY_EVENTS_URL: pagerduty.url } });
    await using _gauge = app.server;
    trustFakeTls(app.policy);
    const ann = await app.newUser("ann@example.com");
    const created = await app.request("POST", "/v1/alerts", {
      key: ann.key,
      body: {
        name: "checkout",
        condition: overTen,
        failure_threshold: 3,
        severity: "critical",
        channels: {
          inapp: true,
          webhook: { url: `${hook.url}/in` },
          slack: { webhook_url: slack.webhookUrl },
          pagerduty: { routing_key: ROUTING_KEY },
        },
      },
    });
    assertEquals(created.status, 201, JSON.stringify(created.body));
    const id = created.body.id;
    const state = async () =>
      (await app.request("GET", `/v1/alerts/${id}`, { key: ann.key })).body.state;
    const tick = async () => {
      const totals = await evaluateDueAlerts(app, app.clock.now());
      app.clock.advance(MINUTE);
      return totals;
    };

    await t.step("three failing checks: pending, pending, firing", async () => {
      app.gauge.value = 50;
      await tick();
      assertEquals(await state(), "pending");
      await tick();
      assertEquals(await state(), "pending");
      assertEquals((await tick()).fired, 1);
      assertEquals(await state(), "firing");
      for (let i = 0; i < 5; i++) assertEquals((await tick()).fired, 0, "no reminder within 24 h");
    });

    await t.step("recovered: resolved", async () => {
      app.gauge.value = 1;
      await tick();
      assertEquals(await state(), "ok");
      await tick(); // nothing more
    });

    await t.step("in-app: firing then resolved", async () => {
      const list = await app.request("GET", "/v1/notifications", { key: ann.key });
      assertEquals(list.body.items.map((n: Json) => n.title), [
        "Resolved: checkout",
        "Firing: checkout",
      ]);
    });

    await t.step("webhook: firing then resolved, one episode", () => {
      assertEquals(hooked.map((m) => m.type), ["alert.fired", "alert.resolved"]);
      const [fired, resolved] = hooked;
      assertEquals(fired.episode.id, resolved.episode.id);
      assertEquals(resolved.episode.duration_seconds, 6 * 60);
    });

    await t.step("Slack: firing then resolved", () => {
      assertEquals(slack.texts(), ["Firing: checkout", "Resolved: checkout"]);
    });

    await t.step(
      "PagerDuty: one trigger and one resolve under the episode's dedup_key",
      async () => {
        const events = await app.request("GET", `/v1/alerts/${id}/events`, { key: ann.key });
        const episode = events.body.items.find((e: Json) => e.to === "firing").episode_id;
        assertEquals([...pagerduty.alerts.keys()], [episode]);
        assertEquals(pagerduty.alerts.get(episode), {
          open: false,
          triggers: 1,
          resolves: 1,
          opened: 1,
        });
      },
    );

    await t.step("the transitions, newest first", async () => {
      const events = await app.request("GET", `/v1/alerts/${id}/events`, { key: ann.key });
      assertEquals(
        events.body.items.map((e: Json) => `${e.from}→${e.to}`),
        ["firing→ok", "pending→firing", "ok→pending"],
      );
      const page = await app.request("GET", `/v1/alerts/${id}/events?limit=2`, { key: ann.key });
      const rest = await app.request(
        "GET",
        `/v1/alerts/${id}/events?limit=2&cursor=${page.body.next_cursor}`,
        { key: ann.key },
      );
      assertEquals(rest.body.items.map((e: Json) => e.to), ["pending"], "keyset pages");
    });
  },
);

dbTest(
  "lifecycle: two replicas evaluating one alert at once make one episode and one firing",
  async (_t, db) => {
    const a = await testApp(db);
    const b = await testApp(db, { clock: a.clock, adminEmail: "admin-b@example.com" });
    const ann = await a.newUser("ann@example.com");
    const created = await a.request("POST", "/v1/alerts", {
      key: ann.key,
      body: { name: "both", condition: alwaysMatches, repeat_interval_seconds: 0 },
    });
    const id = created.body.id;
    for (let i = 0; i < 5; i++) {
      // Both replicas' jobs, and evaluations asked for through both APIs, at the same time.
      await Promise.all([
        evaluateDueAlerts(a, a.clock.now()),
        evaluateDueAlerts(b, a.clock.now()),
        a.request("POST", `/v1/alerts/${id}/evaluate`, { key: ann.key, body: {} }),
        b.request("POST", `/v1/alerts/${id}/evaluate`, { key: ann.key, body: {} }),
      ]);
      a.clock.advance(MINUTE);
    }
    const episodes = await db.sql`select id, ended_at from alert_episodes where alert_id = ${id}`;
    assertEquals(episodes.length, 1);
    const [{ n }] = await db.sql`
      select count(*)::int as n from notifications where alert_id = ${id}`;
    assertEquals(n, 1, "one firing notification");
    const events = await db
      .sql`select from_state, to_state from alert_events where alert_id = ${id}`;
    assertEquals(events.map((e) => `${e.from_state}→${e.to_state}`), ["ok→firing"]);
  },
  { realPostgresOnly: true },
);

dbTest(
  "lifecycle: an episode another replica opened while an evaluation waited for the lock is seen",
  async (_t, db) => {
    const app = await testApp(db);
    const ann = await app.newUser("ann@example.com");
    const created = await app.request("POST", "/v1/alerts", {
      key: ann.key,
      body: { name: "waits", condition: alwaysMatches, repeat_interval_seconds: 3600 },
    });
    const id = created.body.id;
    const episode = crypto.randomUUID();
    let evaluation: Promise<Reply> | undefined;
    // "Another replica": holds the alert's row lock, and fires it meanwhile.
    await db.sql.begin(async (tx) => {
      await tx`select 1 from alerts where id = ${id} for update`;
      evaluation = app.request("POST", `/v1/alerts/${id}/evaluate`, { key: ann.key, body: {} });
      for (let waiting = 0; waiting === 0;) {
        await new Promise((r) => setTimeout(r, 5));
        [{ waiting }] = await db.sql<{ waiting: number }[]>`
          select count(*)::int as waiting from pg_stat_activity
          where datname = current_database() and wait_event_type = 'Lock'`;
      }
      const now = app.clock.now();
      await tx`
        insert into alert_episodes (id, alert_id, user_id, started_at, notified)
        values (${episode}, ${id}, ${ann.id}, ${now}, true)`;
      await tx`
        update alerts set state = 'firing', state_since = ${now}, failing_since = ${now},
                          consecutive_failures = 1, episode_id = ${episode}, last_fired_at = ${now}
        where id = ${id}`;
    });
    // The evaluation continues that episode (no second one, no second firing) instead of
    // judging by what it could have read before the lock was its own.
    const res = await evaluation!;
    assertEquals(res.status, 200, JSON.stringify(res.body));
    assertEquals([res.body.notifications, res.body.suppressed_by], [[], "repeat_interval"]);
    const episodes = await db.sql`select id from alert_episodes where alert_id = ${id}`;
    assertEquals(episodes.map((e) => e.id), [episode]);
  },
  { realPostgresOnly: true },
);

dbTest("lifecycle: acknowledging stops the reminders until the episode ends", async (t, db) => {
  const app = await testApp(db);
  const ann = await app.newUser("ann@example.com");
  const created = await app.request("POST", "/v1/alerts", {
    key: ann.key,
    body: { name: "ack me", condition: alwaysMatches, repeat_interval_seconds: 600 },
  });
  const id = created.body.id;
  const evaluate = async () =>
    (await app.request("POST", `/v1/alerts/${id}/evaluate`, { key: ann.key, body: {} })).body;

  await t.step("nothing to acknowledge while not firing: 409", async () => {
    const res = await app.request("POST", `/v1/alerts/${id}/ack`, { key: ann.key });
    assertEquals(res.status, 409);
  });

  await t.step("firing, then a reminder after the repeat interval", async () => {
    assertEquals((await evaluate()).notifications, [{ kind: "firing", silenced: false }]);
    app.clock.advance(10 * MINUTE);
    assertEquals((await evaluate()).notifications, [{ kind: "repeat", silenced: false }]);
  });

  await t.step("acknowledged (with a note): no reminders", async () => {
    const acked = await app.request("POST", `/v1/alerts/${id}/ack`, {
      key: ann.key,
      body: { note: "on it" },
    });
    assertEquals(acked.status, 200);
    assertEquals([acked.body.episode.ack_note, acked.body.episode.acknowledged_by], [
      "on it",
      ann.id,
    ]);
    assert(acked.body.episode.acknowledged_at);
    for (let i = 0; i < 3; i++) {
      app.clock.advance(10 * MINUTE);
      const res = await evaluate();
      assertEquals([res.notifications, res.suppressed_by], [[], "acknowledged"]);
    }
  });

  await t.step("un-acknowledged: reminders resume", async () => {
    const res = await app.request("DELETE", `/v1/alerts/${id}/ack`, { key: ann.key });
    assertEquals([res.status, res.body.episode.acknowledged_at], [200, null]);
    assertEquals((await evaluate()).notifications, [{ kind: "repeat", silenced: false }]);
  });

  await t.step("others cannot acknowledge it", async () => {
    const bob = await app.newUser("bob@example.com");
    const res = await app.request("POST", `/v1/alerts/${id}/ack`, { key: bob.key });
    assertEquals(res.status, 404);
  });
});

dbTest(
  "lifecycle: a silence holds the firing back (recorded); one goes out when it ends",
  async (t, db) => {
    const app = await testApp(db);
    const ann = await app.newUser("ann@example.com");
    const created = await app.request("POST", "/v1/alerts", {
      key: ann.key,
      body: {
        name: "quiet please",
        condition: alwaysMatches,
        labels: { service: "checkout" },
      },
    });
    const id = created.body.id;
    const evaluate = async () =>
      (await app.request("POST", `/v1/alerts/${id}/evaluate`, { key: ann.key, body: {} })).body;
    const silence = await app.request("POST", "/v1/silences", {
      key: ann.key,
      body: {
        matchers: [{ name: "service", op: "=", value: "checkout" }],
        ends_at: new Date(app.clock.now().getTime() + 30 * MINUTE).toISOString(),
        comment: "maintenance",
      },
    });
    assertEquals(silence.status, 201, JSON.stringify(silence.body));

    await t.step("during the silence: firing, recorded as silenced, nothing sent", async () => {
      const res = await evaluate();
      assertEquals([res.state, res.notifications, res.suppressed_by], [
        "firing",
        [{ kind: "firing", silenced: true }],
        "silence",
      ]);
      app.clock.advance(10 * MINUTE);
      const again = await evaluate();
      assertEquals(again.notifications, [], "held back once, not again at every evaluation");
      const history = await app.request("GET", `/v1/alerts/${id}/deliveries`, { key: ann.key });
      assertEquals(
        history.body.items.map((d: Json) => [d.status, d.suppressed_by]),
        [["suppressed", "silence"]],
      );
      const inbox = await app.request("GET", "/v1/notifications", { key: ann.key });
      assertEquals(inbox.body.items, []);
    });

    await t.step(
      "the silence is over and it still fires: one notification, saying since when",
      async () => {
        app.clock.advance(25 * MINUTE);
        const res = await evaluate();
        assertEquals(res.notifications, [{ kind: "firing", silenced: false }]);
        const inbox = await app.request("GET", "/v1/notifications", { key: ann.key });
        assertEquals(inbox.body.items.length, 1);
        assert(
          /failing since .* \(35 min\)$/.test(inbox.body.items[0].message),
          inbox.body.items[0].message,
        );
        app.clock.advance(MINUTE);
        assertEquals((await evaluate()).notifications, [], "and only one");
      },
    );

    await t.step("a silence on other labels changes nothing", async () => {
      const other = await app.request("POST", "/v1/alerts", {
        key: ann.key,
        body: { name: "loud", condition: alwaysMatches, labels: { service: "search" } },
      });
      app.clock.advance(MINUTE);
      await app.request("POST", "/v1/silences", {
        key: ann.key,
        body: {
          matchers: [{ name: "service", op: "=", value: "checkout" }],
          ends_at: new Date(app.clock.now().getTime() + 30 * MINUTE).toISOString(),
          comment: "checkout only",
        },
      });
      const res = await app.request("POST", `/v1/alerts/${other.body.id}/evaluate`, {
        key: ann.key,
        body: {},
      });
      assertEquals(res.body.notifications, [{ kind: "firing", silenced: false }]);
    });
  },
);
