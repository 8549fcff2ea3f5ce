/** The Alertmanager receiver: firing then resolved alerts become notifications for recipients. */
import { assert, assertEquals, assertMatch } from "./support/assert.ts";
import { testApp } from "./support/app.ts";
import { MINUTE } from "./support/clock.ts";
import { dbTest } from "./support/database.ts";
import { fakeResend } from "./support/fake_resend.ts";
import { logsSince } from "./support/logs.ts";
import { parseMetrics, sampleValue } from "./support/prometheus_text.ts";

const TOKEN = "am-token-0123456789abcdef";

function payload(status: "firing" | "resolved", severity = "critical") {
  return {
    version: "4",
    groupKey: '{}:{alertname="CircuitBreakerOpen"}',
    truncatedAlerts: 0,
    status,
    receiver: "vigil",
    groupLabels: { alertname: "CircuitBreakerOpen" },
    commonLabels: { alertname: "CircuitBreakerOpen", severity, service: "vigil" },
    commonAnnotations: {},
    externalURL: "http://alertmanager:9093",
    alerts: [{
      status,
      labels: {
        alertname: "CircuitBreakerOpen",
        severity,
        service: "vigil",
        agent_name: "billing",
      },
      annotations: {
        summary: "Circuit breaker of billing is open",
        description: "Calls are rejected.",
      },
      startsAt: "2026-01-01T00:00:00Z",
      endsAt: status === "resolved" ? "2026-01-01T00:10:00Z" : "0001-01-01T00:00:00Z",
      generatorURL: "http://prometheus:9090/graph",
      fingerprint: "c0ffee1234567890",
    }],
  };
}

dbTest(
  "alertmanager: firing then resolved → notifications (and email for critical)",
  async (t, db) => {
    await using resend = fakeResend();
    const app = await testApp(db, {
      env: {
        ALERTMANAGER_WEBHOOK_TOKEN: TOKEN,
        ALERTMANAGER_RECIPIENTS: "oncall@example.com, Lead@example.com, nobody@example.com",
        RESEND_API_KEY: "re_test",
        RESEND_BASE_URL: resend.url,
        RESEND_RATE_PER_SECOND: "1000",
      },
    });
    const oncall = await app.newUser("oncall@example.com");
    const lead = await app.newUser("lead@example.com");
    const other = await app.newUser("other@example.com");
    const post = (body: unknown, key: string | null = TOKEN) =>
      app.request("POST", "/v1/alertmanager/webhook", { key, body });
    const titles = async (key: string) =>
      (await app.request("GET", "/v1/notifications", { key })).body.items.map((
        n: { title: string },
      ) => n.title);

    await t.step("the shared token is required (API keys do not work)", async () => {
      assertEquals((await post(payload("firing"), null)).status, 401);
      assertEquals((await post(payload("firing"), app.adminKey)).status, 401);
      assertEquals(
        (await post({ version: "3" }, null)).status,
        401,
        "before the body is looked at",
      );
    });

    await t.step("a malformed payload is a 422", async () => {
      const res = await post({ version: "3", alerts: [] });
      assertEquals(res.status, 422);
      const paths = res.body.errors.map((e: { path: string }) => e.path);
      assertEquals(paths.includes("version") && paths.includes("alerts"), true);
    });

    await t.step(
      "firing: each recipient gets an in-app notification and, for critical, an email",
      async () => {
        const res = await post(payload("firing"));
        assertEquals(res.status, 200);
        assertEquals(res.body, {
          alerts: 1,
          recipients: 2,
          delivered: 4,
          suppressed: 0,
          failed: 0,
        });
        assertEquals(await titles(oncall.key), ["[FIRING] CircuitBreakerOpen"]);
        assertEquals(await titles(lead.key), ["[FIRING] CircuitBreakerOpen"]);
        assertEquals(await titles(other.key), []);
        assertEquals(resend.calls.map((c) => c.body.to).sort(), [
          "lead@example.com",
          "oncall@example.com",
        ]);
        const note =
          (await app.request("GET", "/v1/notifications", { key: oncall.key })).body.items[0];
        assertEquals(note.message, "Circuit breaker of billing is open — Calls are rejected.");
      },
    );

    await t.step("the same notification again (a repeat) is de-duplicated", async () => {
      const res = await post(payload("firing"));
      assertEquals(res.body, { alerts: 1, recipients: 2, delivered: 0, suppressed: 4, failed: 0 });
      assertEquals((await titles(oncall.key)).length, 1);
    });

    await t.step("resolved: a second notification", async () => {
      app.clock.advance(10 * MINUTE);
      const res = await post(payload("resolved"));
      assertEquals(res.body.delivered, 4);
      assertEquals(await titles(oncall.key), [
        "[RESOLVED] CircuitBreakerOpen",
        "[FIRING] CircuitBreakerOpen",
      ]);
      const [resolved] =
        (await app.request("GET", "/v1/notifications", { key: oncall.key })).body.items;
      assertMatch(
        resolved.message,
        /Started 2026-01-01T00:00:00\.000Z, ended .*, lasted 10 min\.$/,
      );
      // One episode per recipient, opened by the firing, closed by the resolved.
      const episodes = await db.sql`
        select user_id, started_at, ended_at from alert_episodes where fingerprint = 'c0ffee1234567890'`;
      assertEquals(episodes.length, 2);
      assert(episodes.every((e) => e.ended_at !== null), "closed");
      const kinds = await db.sql`
        select payload ->> 'kind' as kind, payload -> 'episode' ->> 'id' as episode
        from alert_deliveries where user_id = ${oncall.id} and channel = 'inapp' and status = 'delivered'
        order by created_at`;
      assertEquals(kinds.map((k) => k.kind), ["firing", "resolved"]);
      assertEquals(kinds[0].episode, kinds[1].episode, "the resolved closes the firing's episode");
    });

    await t.step("a warning goes in-app only", async () => {
      const warning = payload("firing", "warning");
      warning.alerts[0].fingerprint = "another";
      const res = await post(warning);
      assertEquals(res.body.delivered, 2);
      assertEquals(resend.calls.length, 4);
    });
  },
);

dbTest("alertmanager: without a token configured the receiver is off (503)", async (_t, db) => {
  const app = await testApp(db);
  const res = await app.request("POST", "/v1/alertmanager/webhook", {
    key: "whatever-token-value",
    body: payload("firing"),
  });
  assertEquals(res.status, 503);
});

/** A group of `n` distinct warning alerts (in-app only), about 690 bytes each. */
function bigGroup(n: number) {
  const group = payload("firing", "warning");
  const [template] = group.alerts;
  group.alerts = Array.from({ length: n }, (_, i) => ({
    ...template,
    labels: { ...template.labels, agent_name: `agent-${i}`, pod: `vigil-${i}`.padEnd(300, "x") },
    annotations: { ...template.annotations, description: `Calls to agent-${i} are rejected.` },
    fingerprint: `fp-${i}`,
  }));
  return group;
}

dbTest("alertmanager: a group over 1 MiB is accepted whole", async (t, db) => {
  const app = await testApp(db, {
    env: { ALERTMANAGER_WEBHOOK_TOKEN: TOKEN, ALERTMANAGER_RECIPIENTS: "oncall@example.com" },
  });
  const oncall = await app.newUser("oncall@example.com");
  const n = 3000;
  const body = JSON.stringify(bigGroup(n));
  assert(body.length > 2_000_000, `${body.length} bytes`);

  await t.step("200, and every alert is a notification for the recipient", async () => {
    const res = await app.request("POST", "/v1/alertmanager/webhook", { key: TOKEN, body });
    assertEquals(res.status, 200);
    assertEquals(res.body, { alerts: n, recipients: 1, delivered: n, suppressed: 0, failed: 0 });
    const [counts] = await db.sql<{ all: number; distinct: number }[]>`
      select count(*)::int as all, count(distinct message)::int as distinct from notifications
      where user_id = ${oncall.id}`;
    assertEquals(counts, { all: n, distinct: n });
  });

  await t.step("alerts Alertmanager left out (over max_alerts) are logged", async () => {
    const logs = logsSince();
    const truncated = { ...payload("firing", "warning"), truncatedAlerts: 42 };
    const res = await app.request("POST", "/v1/alertmanager/webhook", {
      key: TOKEN,
      body: truncated,
    });
    assertEquals(res.status, 200);
    const line = logs().find((r) => r.level === "warn" && r.fields.truncated === 42);
    assert(line, "a warning with the count");
    assertEquals(line.fields.group_key, truncated.groupKey);
  });

  await t.step("other routes still refuse a body over 1 MiB", async () => {
    const res = await app.request("POST", "/v1/users", { body });
    assertEquals(res.status, 413);
    assertEquals(res.headers.get("content-type"), "application/problem+json");
  });
});

dbTest("alertmanager: a body over ALERTMANAGER_MAX_BODY_BYTES is 413", async (t, db) => {
  const limit = 1024 * 1024 + 1000;
  const app = await testApp(db, {
    env: {
      ALERTMANAGER_WEBHOOK_TOKEN: TOKEN,
      ALERTMANAGER_RECIPIENTS: "oncall@example.com",
      ALERTMANAGER_MAX_BODY_BYTES: String(limit),
    },
  });
  await app.newUser("oncall@example.com");
  const bytes = new TextEncoder().encode(JSON.stringify(bigGroup(2000)));
  assert(bytes.length > limit);
  const post = (body: BodyInit, headers: Record<string, string> = {}) =>
    app.app.request("/v1/alertmanager/webhook", {
      method: "POST",
      headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json", ...headers },
      body,
    });
  /** The body in 64 KiB chunks, without a Content-Length: counted as it is read. */
  const stream = () =>
    new ReadableStream<Uint8Array>({
      start(controller) {
        for (let i = 0; i < bytes.length; i += 65536) controller.enqueue(bytes.slice(i, i + 65536));
        controller.close();
      },
    });

  for (
    const [name, send] of [
      ["declared by Content-Length", () => post(bytes, { "content-length": String(bytes.length) })],
      ["streamed without a length", () => post(stream())],
    ] as const
  ) {
    await t.step(`${name}: a problem naming the limit`, async () => {
      const res = await send();
      assertEquals(res.status, 413);
      assertEquals(res.headers.get("content-type"), "application/problem+json");
      const problem = await res.json();
      assertEquals(problem.status, 413);
      assertEquals(problem.detail, `The request body is larger than ${limit} bytes.`);
    });
  }

  await t.step("the token is still checked first", async () => {
    const res = await app.app.request("/v1/alertmanager/webhook", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: stream(),
    });
    assertEquals(res.status, 401);
  });

  await t.step("under the limit (over 1 MiB) is accepted", async () => {
    const res = await post(JSON.stringify(bigGroup(1400)));
    assertEquals(res.status, 200);
    assertEquals((await res.json()).delivered, 1400);
  });
});

dbTest(
  "alertmanager: when no recipient is a user, every admin is notified (never a silent drop)",
  async (_t, db) => {
    const app = await testApp(db, {
      env: {
        ALERTMANAGER_WEBHOOK_TOKEN: TOKEN,
        ALERTMANAGER_RECIPIENTS: "ops@example.com", // named, but not a user here
      },
    });
    const second = await app.newUser("second-admin@example.com", "admin");
    const user = await app.newUser("user@example.com");
    const res = await app.request("POST", "/v1/alertmanager/webhook", {
      key: TOKEN,
      body: payload("firing", "warning"),
    });
    assertEquals([res.status, res.body.recipients, res.body.delivered], [200, 2, 2]);
    const titles = async (key: string) =>
      (await app.request("GET", "/v1/notifications", { key })).body.items.map((
        n: { title: string },
      ) => n.title);
    assertEquals(await titles(app.adminKey), ["[FIRING] CircuitBreakerOpen"]);
    assertEquals(await titles(second.key), ["[FIRING] CircuitBreakerOpen"]);
    assertEquals(await titles(user.key), [], "users who are not admins are not told");
    const samples = parseMetrics((await app.request("GET", "/metrics", { key: null })).body);
    assertEquals(sampleValue(samples, "alertmanager_alerts_total", { outcome: "admins" }), 1);
    assertEquals(sampleValue(samples, "alertmanager_alerts_total", { outcome: "recipients" }), 0);
  },
);
