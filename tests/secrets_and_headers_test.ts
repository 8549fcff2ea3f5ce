/**
 * What a reader must never see, and what every answer carries: webhook secrets are write-only,
 * answers with a new key or secret are not cached, error answers carry the request id, every
 * answer carries the security headers, and no secret or key reaches the log.
 */
import { assert, assertEquals, assertMatch } from "./support/assert.ts";
import { testApp } from "./support/app.ts";
import { dbTest } from "./support/database.ts";
import { logRecords } from "./support/logs.ts";
import { parseMetrics, sampleValue } from "./support/prometheus_text.ts";
import { alwaysMatches } from "./support/gauge.ts";

const hook = { url: "http://127.0.0.1:9/in" };
const condition = alwaysMatches;

dbTest("secrets: a webhook secret is shown once, then only as a hint", async (t, db) => {
  const app = await testApp(db);
  const ann = await app.newUser("ann@example.com");
  const created = await app.request("POST", "/v1/alerts", {
    key: ann.key,
    body: { name: "hooked", condition, channels: { inapp: false, webhook: hook } },
  });
  const secret: string = created.body.channels.webhook.secret;
  const id = created.body.id;
  await t.step("the creation answer has it, and must not be cached", () => {
    assertMatch(secret, /^whsec_[A-Za-z0-9+/]{32,}/);
    assertEquals(created.headers.get("cache-control"), "no-store");
  });
  const hint = `whsec_…${secret.slice(-4)}`;
  await t.step("reads show a hint, to the owner and to admins", async () => {
    const one = await app.request("GET", `/v1/alerts/${id}`, { key: ann.key });
    assertEquals(one.body.channels.webhook.secret, hint);
    const list = await app.request("GET", `/v1/alerts?user_id=${ann.id}`);
    assertEquals(list.body.items[0].channels.webhook.secret, hint);
  });
  await t.step("changing the URL keeps the secret (and does not show it)", async () => {
    const changed = await app.request("PATCH", `/v1/alerts/${id}`, {
      key: ann.key,
      body: { channels: { inapp: false, webhook: { url: "http://127.0.0.1:10/in" } } },
    });
    assertEquals(changed.status, 200);
    assertEquals(changed.body.channels.webhook.secret, hint);
    const [row] = await db.sql`select channels -> 'webhook' ->> 'secret' as s from alerts`;
    assertEquals(await app.secrets.open(row.s, "alerts.webhook.secret"), secret, "not rotated");
  });
  await t.step("a webhook added later shows its new secret once", async () => {
    const plain = await app.request("POST", "/v1/alerts", {
      key: ann.key,
      body: { name: "plain", condition },
    });
    const added = await app.request("PATCH", `/v1/alerts/${plain.body.id}`, {
      key: ann.key,
      body: { channels: { inapp: true, webhook: hook } },
    });
    assertMatch(added.body.channels.webhook.secret, /^whsec_[A-Za-z0-9+/]{32,}/);
    assertEquals(added.headers.get("cache-control"), "no-store");
  });
  await t.step("neither the secret nor an API key is ever logged", () => {
    const text = JSON.stringify(logRecords);
    assert(!text.includes(secret), "the webhook secret is in the log");
    assert(!text.includes(ann.key), "an API key is in the log");
    assert(!text.includes(app.adminKey), "the admin key is in the log");
  });
});

dbTest(
  "headers: new keys are not cached; errors carry the request id; security headers everywhere",
  async (t, db) => {
    const app = await testApp(db);
    await t.step("answers with a new API key say no-store", async () => {
      const user = await app.request("POST", "/v1/users", {
        body: { email: "bo@example.com", name: "Bo" },
      });
      assertEquals(user.headers.get("cache-control"), "no-store");
      const key = await app.request("POST", "/v1/api-keys", { body: {} });
      assertEquals([key.status, key.headers.get("cache-control")], [201, "no-store"]);
    });
    await t.step("every error answer carries X-Request-Id", async () => {
      for (
        const [method, path, opts] of [
          ["GET", "/v1/me", { key: null }],
          ["GET", "/v1/alerts/00000000-0000-4000-8000-000000000000", {}],
          ["POST", "/v1/users", { body: { email: "nope" } }],
          ["GET", "/nowhere", {}],
          ["POST", "/v1/users", { body: "{not json" }],
        ] as const
      ) {
        const res = await app.request(method, path, opts);
        assert(res.status >= 400, `${path}: ${res.status}`);
        assertMatch(res.headers.get("x-request-id") ?? "", /^[0-9a-f-]{36}$/, `${method} ${path}`);
        assertEquals(res.body.request_id, res.headers.get("x-request-id"));
      }
    });
    await t.step("security headers on the API, health and docs", async () => {
      for (const path of ["/v1/me", "/health/live", "/docs", "/nowhere"]) {
        const res = await app.request("GET", path);
        assertEquals(res.headers.get("x-content-type-options"), "nosniff", path);
        assertEquals(res.headers.get("x-frame-options"), "SAMEORIGIN", path);
        assertEquals(res.headers.get("referrer-policy"), "no-referrer", path);
        assert(res.headers.has("strict-transport-security"), path);
        assertEquals(res.headers.get("cross-origin-resource-policy"), "same-origin", path);
      }
      // Headers that only mean something to an HTML document: on pages, not on JSON answers.
      const pageOnly = [
        "cross-origin-opener-policy",
        "origin-agent-cluster",
        "x-dns-prefetch-control",
        "x-download-options",
        "x-permitted-cross-domain-policies",
        "x-xss-protection",
      ];
      for (const path of ["/v1/me", "/health/live", "/metrics", "/sla/status", "/openapi.json"]) {
        const res = await app.request("GET", path);
        assertEquals(pageOnly.filter((h) => res.headers.has(h)), [], path);
      }
      for (const path of ["/docs", "/status", "/nowhere"]) {
        const res = await app.request("GET", path);
        assertEquals(pageOnly.filter((h) => !res.headers.has(h)), [], path);
      }
    });
  },
);

dbTest("agents: a remote agent's URL is shown to admins only", async (_t, db) => {
  const app = await testApp(db);
  const url = "http://127.0.0.1:9/agent/t0ken-in-the-path";
  const registered = await app.request("POST", "/v1/agents", {
    body: { name: "billing", url, capabilities: ["billing.check"] },
  });
  assertEquals(registered.status, 201);
  const user = await app.newUser("u@example.com");
  const find = (items: { name: string; url: string | null }[]) =>
    items.find((a) => a.name === "billing")?.url;
  assertEquals(find((await app.request("GET", "/v1/agents", { key: user.key })).body.items), null);
  assertEquals(find((await app.request("GET", "/v1/agents")).body.items), url);
});

dbTest("metrics: in production, only with METRICS_TOKEN or METRICS_PUBLIC=true", async (_t, db) => {
  const scrape = async (env: Record<string, string>, authorization?: string) => {
    const app = await testApp(db, { env, adminEmail: `admin-${crypto.randomUUID()}@example.com` });
    return (await app.request("GET", "/metrics", {
      key: null,
      headers: authorization ? { authorization } : {},
    })).status;
  };
  assertEquals(await scrape({ VIGIL_ENV: "production" }), 403);
  assertEquals(await scrape({ VIGIL_ENV: "production", METRICS_PUBLIC: "true" }), 200);
  const token = { VIGIL_ENV: "production", METRICS_TOKEN: "m".repeat(24) };
  assertEquals(await scrape(token), 401);
  assertEquals(await scrape(token, `Bearer ${"m".repeat(24)}`), 200);
  assertEquals(await scrape({}), 200, "outside production it is open by default");
});

dbTest(
  "rate limits: per API key, and failed authentications per address; 429 with Retry-After",
  async (_t, db) => {
    const app = await testApp(db, {
      env: { RATE_LIMIT_PER_MINUTE: "5", AUTH_FAILURES_PER_MINUTE: "3" },
    });
    const user = await app.newUser("rl@example.com"); // one request with the admin key
    const statuses: number[] = [];
    for (let i = 0; i < 7; i++) {
      statuses.push(
        (await app.request("GET", "/v1/me", { key: user.key })).status,
      );
    }
    assertEquals(statuses, [200, 200, 200, 200, 200, 429, 429], "each key has its own budget");
    const limited = await app.request("GET", "/v1/me", { key: user.key });
    assertEquals(limited.body.status, 429);
    assertMatch(limited.headers.get("content-type")!, /problem\+json/);
    assert(Number(limited.headers.get("retry-after")) >= 1);
    assertEquals(limited.headers.get("ratelimit-remaining"), "0");
    assertEquals((await app.request("GET", "/v1/me")).status, 200, "another key is not limited");

    const wrong = () => app.request("GET", "/v1/me", { key: "vgl_" + "x".repeat(40) });
    const failures = [];
    for (let i = 0; i < 5; i++) failures.push((await wrong()).status);
    assertEquals(failures, [401, 401, 401, 429, 429]);
    const samples = parseMetrics((await app.request("GET", "/metrics", { key: null })).body);
    assertEquals(sampleValue(samples, "http_rate_limited_total", { reason: "api_key" }), 3);
    assertEquals(sampleValue(samples, "http_rate_limited_total", { reason: "auth_failures" }), 2);
  },
);

dbTest(
  "rate limits: many good requests at once never count as failed authentications",
  async (_t, db) => {
    // hono-rate-limiter counted in-flight requests as failures until they ended: 32 concurrent
    // good requests from one address were refused (the benchmark found it).
    const app = await testApp(db, { env: { AUTH_FAILURES_PER_MINUTE: "3" } });
    const statuses = await Promise.all(
      Array.from({ length: 40 }, () => app.request("GET", "/v1/me").then((r) => r.status)),
    );
    assertEquals(statuses, Array(40).fill(200));
  },
);
