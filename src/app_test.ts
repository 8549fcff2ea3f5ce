import { assert, assertEquals, assertMatch } from "../tests/support/assert.ts";
import { testApp, testConfig } from "../tests/support/app.ts";
import { dbTest } from "../tests/support/database.ts";
import { logsSince } from "../tests/support/logs.ts";
import postgres from "postgres";

dbTest("http: request ids are honoured when valid, generated otherwise", async (_t, db) => {
  const { request } = await testApp(db);
  const given = await request("GET", "/health/live", { headers: { "x-request-id": "abc-123" } });
  assertEquals(given.headers.get("x-request-id"), "abc-123");
  const invalid = await request("GET", "/health/live", {
    headers: { "x-request-id": "bad id with spaces" },
  });
  assertMatch(invalid.headers.get("x-request-id")!, /^[0-9a-f-]{36}$/);
  const none = await request("GET", "/health/live");
  assertMatch(none.headers.get("x-request-id")!, /^[0-9a-f-]{36}$/);
});

dbTest("http: one JSON log line per request with the route pattern", async (_t, db) => {
  const { request, adminId } = await testApp(db);
  const logs = logsSince();
  const res = await request("DELETE", "/v1/api-keys/00000000-0000-4000-8000-000000000000", {
    headers: { "x-request-id": "req-42" },
  });
  assertEquals(res.status, 404);
  const lines = logs().filter((r) => r.logger === "vigil.http");
  assertEquals(lines.length, 1);
  const { fields: properties } = lines[0];
  assertEquals(properties.request_id, "req-42");
  assertEquals(properties.method, "DELETE");
  assertEquals(properties.route, "/v1/api-keys/:id");
  assertEquals(properties.status, 404);
  assertEquals(properties.user_id, adminId);
  assert(typeof properties.duration_ms === "number");
});

dbTest("http: unknown route is a 404 problem", async (_t, db) => {
  const { request } = await testApp(db);
  const res = await request("GET", "/nowhere", { key: null });
  assertEquals(res.status, 404);
  assertEquals(res.headers.get("content-type"), "application/problem+json");
  assertEquals(res.body.detail, "There is no route for GET /nowhere.");
});

dbTest("http: a body over 1 MiB is 413", async (_t, db) => {
  const { request } = await testApp(db);
  const res = await request("POST", "/v1/users", {
    body: JSON.stringify({ email: "big@example.com", name: "x".repeat(1024 * 1024) }),
  });
  assertEquals(res.status, 413);
  assertEquals(res.headers.get("content-type"), "application/problem+json");
});

dbTest(
  "http: an unexpected error is a 500 with the request id, logged with its stack",
  async (_t, db) => {
    const { app, request } = await testApp(db);
    app.get("/v1/explode", () => {
      throw new Error("secret internals");
    });
    const logs = logsSince();
    const res = await request("GET", "/v1/explode", { headers: { "x-request-id": "boom-1" } });
    assertEquals(res.status, 500);
    assertEquals(res.headers.get("content-type"), "application/problem+json");
    assertEquals(res.body.request_id, "boom-1");
    assert(!JSON.stringify(res.body).includes("secret internals"), "no internals leak");
    assert(!JSON.stringify(res.body).includes("at "), "no stack trace");
    const logged = logs().find((r) => r.level === "error");
    assert(logged, "the error is logged");
    assertEquals(logged.fields.request_id, "boom-1");
    assert((logged.fields.error as Error).stack?.includes("secret internals"));
    const line = logs().find((r) => r.msg === "request");
    assertEquals(
      [line?.level, line?.fields.status],
      ["error", 500],
      "5xx request lines are errors",
    );
  },
);

dbTest("health: live always; ready reflects the database", async (_t, db) => {
  const { request } = await testApp(db);
  const live = await request("GET", "/health/live", { key: null });
  assertEquals(live.status, 200);
  assertEquals(live.body.status, "ok");
  const ready = await request("GET", "/health/ready", { key: null });
  assertEquals(ready.status, 200);
  assertEquals(ready.body.dependencies.database.status, "up");
});

dbTest("health: ready is 503 with the reason when the database is gone", async (_t, db) => {
  const closed = postgres(db.url, { max: 1 });
  await closed.end();
  const { createApp } = await import("./app.ts");
  const { createServices } = await import("./services.ts");
  const { createMetrics } = await import("./observability/metrics.ts");
  const { rootLogger } = await import("./observability/logger.ts");
  const { trace } = await import("@opentelemetry/api");
  const services = createServices({
    config: testConfig(),
    sql: closed,
    clock: { now: () => new Date() },
    logger: rootLogger,
    metrics: createMetrics(),
    tracer: trace.getTracer("test"),
  });
  const app = createApp({ ...services, startedAt: new Date() });
  const res = await app.request("/health/ready");
  assertEquals(res.status, 503);
  const body = await res.json();
  assertEquals(body.status, "not_ready");
  assertEquals(body.dependencies.database.status, "unavailable");
  // Public endpoint: no driver text (it names hosts, ports, users); that goes to the log.
  assertEquals(body.dependencies.database.detail, "database did not answer");
});

dbTest("openapi: every route is documented with its schemas", async (_t, db) => {
  const { request } = await testApp(db);
  const res = await request("GET", "/openapi.json", { key: null });
  assertEquals(res.status, 200);
  const paths = Object.keys(res.body.paths).sort();
  for (
    const p of [
      "/health/live",
      "/health/ready",
      "/v1/me",
      "/v1/users",
      "/v1/api-keys",
      "/v1/api-keys/{id}",
    ]
  ) {
    assert(paths.includes(p), `${p} is documented`);
  }
  assert(res.body.components.schemas.User, "User schema");
  assert(res.body.components.schemas.Problem, "Problem schema");
  assertEquals(res.body.components.securitySchemes.bearerAuth.scheme, "bearer");
  const docs = await request("GET", "/docs", { key: null });
  assertEquals(docs.status, 200);
  assertMatch(docs.body, /swagger/i);
});
