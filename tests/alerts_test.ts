/**
 * Alerts: the API (validation, isolation), evaluation now and by the job through the lifecycle
 * (firing, repeats, resolved, errors), concurrent firings, and the in-app notifications.
 */
import { evaluateDueAlerts } from "../src/alerts/evaluate_job.ts";
import { assert, assertEquals, assertMatch } from "./support/assert.ts";
import { testApp } from "./support/app.ts";
import { MINUTE, SECOND } from "./support/clock.ts";
import { dbTest } from "./support/database.ts";
import { gaugeApp, overTen } from "./support/gauge.ts";
import { parseMetrics, sampleValue } from "./support/prometheus_text.ts";
import { serveLocal } from "./support/servers.ts";

dbTest(
  "alerts: create, read, list, change, delete — each user sees only their own",
  async (t, db) => {
    const app = await gaugeApp(db);
    await using _server = app.server;
    const ann = await app.newUser("ann@example.com");
    const bob = await app.newUser("bob@example.com");

    let id = "";
    await t.step("create with defaults", async () => {
      const res = await app.request("POST", "/v1/alerts", {
        key: ann.key,
        body: { name: "hot", condition: overTen },
      });
      assertEquals(res.status, 201);
      assertEquals(res.body.user_id, ann.id);
      assertEquals(res.body.channels, { inapp: true, email: false });
      assertEquals(
        [res.body.interval_seconds, res.body.repeat_interval_seconds, res.body.enabled],
        [60, 86400, true],
      );
      assertEquals([res.body.state, res.body.severity, res.body.labels, res.body.episode], [
        "ok",
        "warning",
        {},
        null,
      ]);
      assertEquals(
        [res.body.failure_threshold, res.body.success_threshold, res.body.error_threshold],
        [1, 1, 3],
      );
      id = res.body.id;
    });

    await t.step("a webhook channel gets a signing secret", async () => {
      const res = await app.request("POST", "/v1/alerts", {
        key: ann.key,
        body: {
          name: "hooked",
          condition: overTen,
          channels: { inapp: false, webhook: { url: "http://127.0.0.1:9/hook" } },
        },
      });
      assertEquals(res.status, 201);
      assertMatch(res.body.channels.webhook.secret, /^whsec_[A-Za-z0-9+/]{43}=$/);
    });

    await t.step("others get 404 (no leak), not 403", async () => {
      assertEquals((await app.request("GET", `/v1/alerts/${id}`, { key: bob.key })).status, 404);
      assertEquals(
        (await app.request("PATCH", `/v1/alerts/${id}`, { key: bob.key, body: { name: "x" } }))
          .status,
        404,
      );
      assertEquals((await app.request("DELETE", `/v1/alerts/${id}`, { key: bob.key })).status, 404);
      assertEquals(
        (await app.request("POST", `/v1/alerts/${id}/evaluate`, { key: bob.key, body: {} })).status,
        404,
      );
      assertEquals(
        (await app.request("GET", `/v1/alerts/${id}/deliveries`, { key: bob.key })).status,
        404,
      );
      assertEquals((await app.request("GET", "/v1/alerts", { key: bob.key })).body.items, []);
      assertEquals(
        (await app.request("GET", `/v1/alerts?user_id=${ann.id}`, { key: bob.key })).status,
        403,
      );
      assertEquals((await app.request("GET", "/v1/alerts", { key: ann.key })).body.items.length, 2);
    });

    await t.step("admins see and create for anyone; users cannot create for others", async () => {
      assertEquals((await app.request("GET", `/v1/alerts/${id}`)).status, 200);
      assertEquals((await app.request("GET", `/v1/alerts?user_id=${ann.id}`)).body.items.length, 2);
      const forBob = await app.request("POST", "/v1/alerts", {
        body: { name: "b", condition: overTen, user_id: bob.id },
      });
      assertEquals([forBob.status, forBob.body.user_id], [201, bob.id]);
      const byAnn = await app.request("POST", "/v1/alerts", {
        key: ann.key,
        body: { name: "b", condition: overTen, user_id: bob.id },
      });
      assertEquals(byAnn.status, 403);
    });

    await t.step("patch and delete", async () => {
      const patched = await app.request("PATCH", `/v1/alerts/${id}`, {
        key: ann.key,
        body: { name: "hotter", cooldown_seconds: 600, channels: { inapp: true, email: true } },
      });
      assertEquals(patched.status, 200);
      assertEquals(
        [patched.body.name, patched.body.repeat_interval_seconds, patched.body.channels.email],
        ["hotter", 600, true],
        "cooldown_seconds is the old name of repeat_interval_seconds",
      );
      const both = await app.request("PATCH", `/v1/alerts/${id}`, {
        key: ann.key,
        body: { cooldown_seconds: 60, repeat_interval_seconds: 120, labels: { "bad name": "x" } },
      });
      assertEquals(both.status, 422);
      assertEquals(both.body.errors.map((e: { path: string }) => e.path).sort(), [
        "cooldown_seconds",
        "labels.bad name",
      ]);
      assertEquals((await app.request("DELETE", `/v1/alerts/${id}`, { key: ann.key })).status, 204);
      assertEquals((await app.request("GET", `/v1/alerts/${id}`, { key: ann.key })).status, 404);
    });
  },
);

dbTest("alerts: a bad rule is a 422 listing every problem", async (_t, db) => {
  const app = await gaugeApp(db);
  await using _server = app.server;
  assertEquals(
    (await app.request("POST", "/v1/patterns", {
      body: {
        id: "p",
        inputs: { url: { type: "string" } },
        steps: [{ capability: "http.check", args: { url: "{{inputs.url}}" }, as: "c" }],
      },
    })).status,
    201,
  );

  const shape = await app.request("POST", "/v1/alerts", {
    body: {
      name: "",
      condition: {
        pattern_id: "p",
        capability: "gauge.read",
        args: {},
        path: "a..b",
        op: "=>",
        threshold: "x",
      },
      channels: { inapp: false, email: false },
      interval_seconds: 5,
    },
  });
  assertEquals(shape.status, 422);
  assertEquals(shape.body.errors.map((e: { path: string }) => e.path).sort(), [
    "channels",
    "condition",
    "condition.args",
    "condition.op",
    "condition.path",
    "interval_seconds",
    "name",
  ]);

  const semantic = await app.request("POST", "/v1/alerts", {
    body: { name: "x", condition: { pattern_id: "nope", path: "up", op: "==", threshold: false } },
  });
  assertEquals(semantic.body.errors, [{
    path: "condition.pattern_id",
    message: "there is no pattern nope",
  }]);

  const inputs = await app.request("POST", "/v1/alerts", {
    body: {
      name: "x",
      condition: { pattern_id: "p", inputs: { url: 3 }, path: "up", op: "==", threshold: false },
      channels: { webhook: { url: "http://169.254.169.254/x" } },
    },
  });
  assertEquals(inputs.body.errors.map((e: { path: string }) => e.path), [
    "condition.inputs.url",
    "channels.webhook.url",
  ]);

  const capability = await app.request("POST", "/v1/alerts", {
    body: {
      name: "x",
      condition: {
        capability: "data.compare",
        args: { value: 1 },
        path: "result",
        op: "==",
        threshold: true,
      },
    },
  });
  assertEquals(capability.body.errors.map((e: { path: string }) => e.path).sort(), [
    "condition.args.op",
    "condition.args.threshold",
  ]);
  const unknown = await app.request("POST", "/v1/alerts", {
    body: { name: "x", condition: { capability: "no.such", path: "", op: "==", threshold: 1 } },
  });
  assertEquals(unknown.body.errors, [{
    path: "condition.capability",
    message: 'unknown capability "no.such"',
  }]);
});

dbTest("alerts: evaluate now — dry run, firing, repeats, resolved, errors", async (t, db) => {
  const app = await gaugeApp(db);
  await using _server = app.server;
  const ann = await app.newUser("ann@example.com");
  const created = await app.request("POST", "/v1/alerts", {
    key: ann.key,
    body: { name: "hot", condition: overTen, repeat_interval_seconds: 3600 },
  });
  const id = created.body.id;
  const evaluate = (body: unknown = {}) =>
    app.request("POST", `/v1/alerts/${id}/evaluate`, { key: ann.key, body });
  const notifications = async () =>
    (await app.request("GET", "/v1/notifications", { key: ann.key })).body;
  const quiet = { transitions: [], notifications: [], fired: false, deliveries: [] };

  /** The answer without the check's duration (it varies; a number, the check's latency). */
  const evaluated = async (body?: unknown) => {
    const { duration_ms, ...rest } = (await evaluate(body)).body;
    assertEquals(typeof duration_ms, "number");
    return rest;
  };

  await t.step("not matched", async () => {
    app.gauge.value = 5;
    assertEquals(await evaluated(), {
      value: 5,
      matched: false,
      state: "ok",
      episode_id: null,
      ...quiet,
    });
  });

  await t.step("matched, dry run: changes nothing", async () => {
    app.gauge.value = 12;
    assertEquals(await evaluated({ dry_run: true }), {
      value: 12,
      matched: true,
      state: "ok",
      episode_id: null,
      ...quiet,
    });
    assertEquals((await notifications()).items.length, 0);
  });

  const firedAt = app.clock.now();
  let episode = "";
  await t.step(
    "matched: firing, an episode opens, the in-app notification is delivered",
    async () => {
      const res = await evaluate();
      assertEquals([res.body.fired, res.body.state], [true, "firing"]);
      assertEquals(res.body.transitions, [{ from: "ok", to: "firing" }]);
      assertEquals(res.body.notifications, [{ kind: "firing", silenced: false }]);
      assertEquals(
        res.body.deliveries.map((d: { channel: string; status: string }) => [d.channel, d.status]),
        [["inapp", "delivered"]],
      );
      episode = res.body.episode_id;
      const list = await notifications();
      assertEquals(list.unread_count, 1);
      assertEquals(list.items[0].title, "Firing: hot");
      assertEquals(
        list.items[0].message,
        `hot: value is 12 (> 10); failing since ${firedAt.toISOString()}`,
      );
      assertEquals(list.items[0].alert_id, id);
      const alert = (await app.request("GET", `/v1/alerts/${id}`, { key: ann.key })).body;
      assertEquals([alert.state, alert.episode.id, alert.counts.consecutive_failures], [
        "firing",
        episode,
        1,
      ]);
    },
  );

  await t.step("still matching within the repeat interval: nothing sent", async () => {
    app.clock.advance(59 * MINUTE);
    app.gauge.value = 13;
    const res = await evaluate();
    assertEquals([res.body.fired, res.body.suppressed_by, res.body.deliveries], [
      false,
      "repeat_interval",
      [],
    ]);
  });

  await t.step("after the repeat interval: a reminder, saying since when", async () => {
    app.clock.advance(2 * MINUTE);
    const res = await evaluate();
    assertEquals([res.body.fired, res.body.notifications], [true, [{
      kind: "repeat",
      silenced: false,
    }]]);
    const latest = (await notifications()).items[0];
    assertEquals(latest.title, "Still firing: hot");
    assertEquals(
      latest.message,
      `hot: value is 13 (> 10); firing since ${firedAt.toISOString()} (1 h 1 min)`,
    );
  });

  await t.step("not matching any more: resolved, with start, end and duration", async () => {
    app.clock.advance(9 * MINUTE);
    app.gauge.value = 3;
    const res = await evaluate();
    assertEquals([res.body.state, res.body.transitions, res.body.notifications], [
      "ok",
      [{ from: "firing", to: "ok" }],
      [{ kind: "resolved", silenced: false }],
    ]);
    assertEquals(res.body.episode_id, episode, "the episode it closed");
    const latest = (await notifications()).items[0];
    assertEquals(latest.title, "Resolved: hot");
    assertEquals(
      latest.message,
      `hot is back to normal: value is 3 (> 10). Started ${firedAt.toISOString()}, ended ${app.clock.now().toISOString()}, lasted 1 h 10 min.`,
    );
    const alert = (await app.request("GET", `/v1/alerts/${id}`, { key: ann.key })).body;
    assertEquals([alert.state, alert.episode], ["ok", null]);
  });

  await t.step(
    "an evaluation that fails is an error, not a match (counted neither way)",
    async () => {
      app.gauge.value = "not a number";
      const res = await evaluate();
      assertEquals([res.body.matched, res.body.fired, res.body.state], [false, false, "ok"]);
      assertEquals(res.body.error, '> compares numbers; got "not a number" and 10');
    },
  );

  await t.step("metrics count evaluations, transitions and notifications", async () => {
    const samples = parseMetrics((await app.request("GET", "/metrics", { key: null })).body);
    const v = (name: string, labels: Record<string, string> = {}) =>
      sampleValue(samples, name, labels);
    assertEquals(v("alert_evaluations_total", { result: "matched" }), 4);
    assertEquals(v("alert_evaluations_total", { result: "not_matched" }), 2);
    assertEquals(v("alert_evaluations_total", { result: "error" }), 1);
    assertEquals(v("alerts_fired_total"), 2);
    assertEquals(v("alert_transitions_total", { from: "ok", to: "firing" }), 1);
    assertEquals(v("alert_transitions_total", { from: "firing", to: "ok" }), 1);
    for (const [kind, n] of [["firing", 1], ["repeat", 1], ["resolved", 1], ["error", 0]]) {
      assertEquals(v("alert_notifications_total", { kind: String(kind) }), n, String(kind));
    }
    assertEquals(v("alert_deliveries_total", { channel: "inapp", status: "delivered" }), 3);
  });

  await t.step("the events and deliveries endpoints tell the whole story", async () => {
    const events = await app.request("GET", `/v1/alerts/${id}/events`, { key: ann.key });
    assertEquals(
      events.body.items.map((e: { from: string; to: string }) => `${e.from}→${e.to}`),
      ["firing→ok", "ok→firing"],
    );
    assertEquals(events.body.items[1].episode_id, episode);
    assertEquals(events.body.items[1].value, 12);
    const res = await app.request("GET", `/v1/alerts/${id}/deliveries`, { key: ann.key });
    assertEquals(res.body.items.map((d: { payload: { kind: string } }) => d.payload.kind), [
      "resolved",
      "repeat",
      "firing",
    ]);
    assertEquals(res.body.items[0].attempt_history.map((a: { outcome: string }) => a.outcome), [
      "delivered",
    ]);
  });
});

dbTest(
  "alerts: the evaluation job claims due alerts, evaluates and schedules the next",
  async (_t, db) => {
    const app = await gaugeApp(db);
    await using _server = app.server;
    const ann = await app.newUser("ann@example.com");
    assertEquals(
      (await app.request("POST", "/v1/patterns", {
        body: {
          id: "up",
          inputs: { url: { type: "string" } },
          steps: [{ capability: "http.check", args: { url: "{{inputs.url}}" }, as: "c" }],
          outputs: { up: "{{c.ok}}" },
        },
      })).status,
      201,
    );
    await using target = serveLocal(() => new Response("down", { status: 503 }));
    const create = (body: Record<string, unknown>) =>
      app.request("POST", "/v1/alerts", { key: ann.key, body });
    const fast = await create({ name: "fast", condition: overTen, interval_seconds: 60 });
    const slow = await create({ name: "slow", condition: overTen, interval_seconds: 600 });
    const off = await create({ name: "off", condition: overTen, enabled: false });
    await create({
      name: "site down",
      condition: {
        pattern_id: "up",
        inputs: { url: target.url },
        path: "up",
        op: "==",
        threshold: false,
      },
    });
    const broken = await create({
      name: "broken",
      condition: {
        pattern_id: "up",
        inputs: { url: "http://169.254.169.254/" },
        path: "up",
        op: "==",
        threshold: false,
      },
    });
    app.gauge.value = 50;

    const job = app;
    assertEquals(await evaluateDueAlerts(job, app.clock.now()), {
      evaluated: 4,
      matched: 3,
      fired: 3,
      errors: 1,
    });
    assertEquals(await evaluateDueAlerts(job, app.clock.now()), {
      evaluated: 0,
      matched: 0,
      fired: 0,
      errors: 0,
    });

    const next = async (id: string) =>
      (await app.request("GET", `/v1/alerts/${id}`, { key: ann.key })).body.next_eval_at;
    const t0 = app.clock.now().getTime();
    assertEquals(await next(fast.body.id), new Date(t0 + 60 * SECOND).toISOString());
    assertEquals(await next(slow.body.id), new Date(t0 + 600 * SECOND).toISOString());
    assertEquals(
      await next(off.body.id),
      new Date(t0).toISOString(),
      "disabled alerts are not claimed",
    );
    assert(
      (await next(broken.body.id)) > new Date(t0).toISOString(),
      "an erroring alert is rescheduled too",
    );

    app.clock.advance(61 * SECOND);
    const second = await evaluateDueAlerts(job, app.clock.now());
    assertEquals(second.evaluated, 3); // fast, site down, broken (60 s); slow waits 600 s
    assertEquals(second.fired, 0, "still firing: no repeat before the repeat interval");

    const notifications = await app.request("GET", "/v1/notifications", { key: ann.key });
    assertEquals(notifications.body.items.map((n: { title: string }) => n.title).sort(), [
      "Firing: fast",
      "Firing: site down",
      "Firing: slow",
    ]);
    const [runs] = await db
      .sql`select count(*)::int as n from pattern_runs where pattern_id = 'up' and user_id = ${ann.id}`;
    assertEquals(runs.n, 4, "pattern conditions are recorded runs");
  },
);

dbTest(
  "alerts: two replicas firing one alert at the same instant make one set of deliveries",
  async (t, db) => {
    const a = await gaugeApp(db);
    await using _server = a.server;
    const b = await testApp(db, { clock: a.clock, adminEmail: "admin-b@example.com" });
    const ann = await a.newUser("ann@example.com");
    a.gauge.value = 99;

    for (const cooldown of [86400, 0]) {
      await t.step(`cooldown ${cooldown} s`, async () => {
        const created = await a.request("POST", "/v1/alerts", {
          key: ann.key,
          body: { name: `race ${cooldown}`, condition: overTen, cooldown_seconds: cooldown },
        });
        const alert =
          (await a.request("GET", `/v1/alerts/${created.body.id}`, { key: ann.key })).body;
        const stored = {
          ...alert,
          last_fired_at: null,
          next_eval_at: new Date(alert.next_eval_at),
        };
        const now = a.clock.now();
        const replicas = [a, b, a, b];
        const results = await Promise.all(
          replicas.map((r) => r.evaluator.apply(stored, { value: 99, matched: true }, now)),
        );
        assertEquals(results.filter((r) => r.fired).length, 1);
        await Promise.all(
          results.map((r, i) =>
            replicas[i].dispatcher.deliver(r.deliveries.filter((d) => d.status === "pending"))
          ),
        );
        const [{ n }] = await db.sql`
        select count(*)::int as n from alert_deliveries where alert_id = ${alert.id} and status <> 'suppressed'`;
        assertEquals(n, 1);
        const [{ m }] = await db.sql`
        select count(*)::int as m from notifications where alert_id = ${alert.id}`;
        assertEquals(m, 1);
      });
    }
  },
  { realPostgresOnly: true },
);

dbTest("notifications: list, unread only, mark read, mark all read — own only", async (_t, db) => {
  const app = await gaugeApp(db);
  await using _server = app.server;
  const ann = await app.newUser("ann@example.com");
  const bob = await app.newUser("bob@example.com");
  app.gauge.value = 11;
  for (let i = 0; i < 3; i++) {
    const alert = await app.request("POST", "/v1/alerts", {
      key: ann.key,
      body: { name: `a${i}`, condition: overTen },
    });
    app.clock.advance(SECOND);
    await app.request("POST", `/v1/alerts/${alert.body.id}/evaluate`, { key: ann.key, body: {} });
  }
  const list = await app.request("GET", "/v1/notifications?limit=2", { key: ann.key });
  assertEquals([list.body.items.length, list.body.unread_count], [2, 3]);
  assertEquals(list.body.items.map((n: { title: string }) => n.title), [
    "Firing: a2",
    "Firing: a1",
  ]);
  const rest = await app.request(
    "GET",
    `/v1/notifications?limit=2&cursor=${list.body.next_cursor}`,
    { key: ann.key },
  );
  assertEquals(rest.body.items.map((n: { title: string }) => n.title), ["Firing: a0"]);

  const first = list.body.items[0].id;
  assertEquals(
    (await app.request("POST", `/v1/notifications/${first}/read`, { key: bob.key })).status,
    404,
  );
  const read = await app.request("POST", `/v1/notifications/${first}/read`, { key: ann.key });
  assertEquals([read.status, typeof read.body.read_at], [200, "string"]);
  const unread = await app.request("GET", "/v1/notifications?unread_only=true", { key: ann.key });
  assertEquals([unread.body.items.length, unread.body.unread_count], [2, 2]);
  assertEquals((await app.request("POST", "/v1/notifications/read-all", { key: ann.key })).body, {
    marked: 2,
  });
  assertEquals(
    (await app.request("GET", "/v1/notifications", { key: ann.key })).body.unread_count,
    0,
  );
  assertEquals((await app.request("GET", "/v1/notifications", { key: bob.key })).body.items, []);
});

dbTest(
  "alerts: two replicas running the evaluation job at once evaluate each due alert once",
  async (_t, db) => {
    const a = await gaugeApp(db);
    await using _server = a.server;
    const b = await testApp(db, { clock: a.clock, adminEmail: "admin-b@example.com" });
    const ann = await a.newUser("ann@example.com");
    a.gauge.value = 1; // never matches: this is about claiming, not firing
    for (let i = 0; i < 250; i++) {
      const res = await a.request("POST", "/v1/alerts", {
        key: ann.key,
        body: { name: `a${i}`, condition: overTen },
      });
      assertEquals(res.status, 201);
    }
    const now = a.clock.now();
    const [ra, rb] = await Promise.all([
      evaluateDueAlerts(a, now),
      evaluateDueAlerts(b, now),
    ]);
    assertEquals(ra.evaluated + rb.evaluated, 250);
    assertEquals(a.gauge.calls, 250, "the condition ran once per alert");
  },
  { realPostgresOnly: true },
);
