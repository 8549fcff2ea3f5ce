/**
 * Error tracking end to end: the real `@sentry/deno` SDK posting envelopes to a fake Sentry on
 * 127.0.0.1 (`SENTRY_DSN=http://publickey@127.0.0.1:<port>/1`). A 500 from vigil's app, a failed
 * job run and exhausted deliveries are one event each, tagged, and scrubbed of the API key, the
 * Authorization header, cookies and email addresses.
 */
import "./support/logs.ts";
import { runJob } from "../src/jobs/scheduler.ts";
import { rootLogger } from "../src/observability/logger.ts";
import { createMetrics } from "../src/observability/metrics.ts";
import { RELEASE, setupErrorReporting } from "../src/observability/sentry.ts";
import { testApp, testConfig } from "./support/app.ts";
import { assert, assertEquals } from "./support/assert.ts";
import { ManualClock } from "./support/clock.ts";
import { dbTest, type TestDatabase } from "./support/database.ts";
import { fakeResend } from "./support/fake_resend.ts";
import { alwaysMatches } from "./support/gauge.ts";
import { serveLocal } from "./support/servers.ts";

// deno-lint-ignore no-explicit-any
type SentryEvent = any;

/** Items of a Sentry envelope: a header line, then (item header, payload) pairs. */
function parseEnvelope(bytes: Uint8Array): { header: Record<string, unknown>; payload: unknown }[] {
  const decoder = new TextDecoder();
  let at = 0;
  const line = (length?: number) => {
    let end = length === undefined ? bytes.indexOf(0x0a, at) : at + length;
    if (end < 0) end = bytes.length;
    const text = decoder.decode(bytes.subarray(at, end));
    at = end + 1; // past the newline
    return text;
  };
  line(); // the envelope header: event_id, dsn, sdk, sent_at
  const items = [];
  while (at < bytes.length) {
    const text = line();
    if (!text.trim()) continue;
    const header = JSON.parse(text) as Record<string, unknown>;
    const body = line(typeof header.length === "number" ? header.length : undefined);
    items.push({ header, payload: header.type === "attachment" ? body : JSON.parse(body) });
  }
  return items;
}

/** A stand-in for Sentry's ingestion: what the SDK posts to /api/<project>/envelope/. */
function fakeSentry() {
  const events: SentryEvent[] = [];
  const bodies: string[] = [];
  const paths: string[] = [];
  const server = serveLocal(async (req) => {
    const url = new URL(req.url);
    paths.push(url.pathname);
    let stream = req.body ?? new Blob([]).stream();
    if (req.headers.get("content-encoding") === "gzip") {
      stream = stream.pipeThrough(new DecompressionStream("gzip"));
    }
    const bytes = new Uint8Array(await new Response(stream).arrayBuffer());
    bodies.push(new TextDecoder().decode(bytes));
    for (const item of parseEnvelope(bytes)) {
      if (item.header.type === "event") events.push(item.payload);
    }
    return new Response(null, { status: 200 });
  });
  return {
    dsn: `http://publickey@127.0.0.1:${server.port}/1`,
    events,
    paths,
    /** Everything that reached "Sentry", as text: to look for what must never be there. */
    text: () => bodies.join("\n"),
    close: server.close,
    [Symbol.asyncDispose]: server.close,
  };
}

async function sentryApp(db: TestDatabase, env: Record<string, string>) {
  const errors = await setupErrorReporting(testConfig(env));
  assert(errors.enabled, "SENTRY_DSN is set: the reporter is Sentry");
  return await testApp(db, { env, errors });
}

const TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736";

dbTest(
  "sentry: a 500 is one event, tagged, with no key, Authorization or email in it",
  async (_t, db) => {
    await using sentry = fakeSentry();
    const app = await sentryApp(db, { SENTRY_DSN: sentry.dsn });
    const key = app.adminKey;
    // A route that throws, registered by this test only (before the app's first request).
    app.app.get("/v1/test/boom/:id", () => {
      throw new Error(`cannot notify ann@example.com for ${key}`);
    });

    const res = await app.app.request("/v1/test/boom/7?notify=ann@example.com", {
      headers: {
        authorization: `Bearer ${key}`,
        cookie: "session=topsecret-cookie",
        "x-request-id": "req-sentry-1",
        traceparent: `00-${TRACE_ID}-00f067aa0ba902b7-01`,
        "user-agent": "sentry-test",
      },
    });
    assertEquals(res.status, 500);
    const problem = await res.json();
    assertEquals(problem.request_id, "req-sentry-1");
    // 4xx answers are not errors: nothing is reported for them.
    assertEquals(
      (await app.app.request("/v1/nothing", { headers: { authorization: `Bearer ${key}` } }))
        .status,
      404,
    );
    assertEquals((await app.app.request("/v1/alerts")).status, 401);
    assert(await app.errors.flush(5000), "flushed");

    assertEquals(sentry.events.length, 1, JSON.stringify(sentry.events));
    assertEquals(new Set(sentry.paths), new Set(["/api/1/envelope/"]));
    const [event] = sentry.events;
    assertEquals(event.level, "error");
    assertEquals(event.release, RELEASE);
    assertEquals(event.environment, "test");
    assertEquals(event.tags.request_id, "req-sentry-1");
    assertEquals(event.tags.route, "/v1/test/boom/:id");
    assertEquals(event.tags.trace_id, TRACE_ID);
    assertEquals([event.tags.method, event.tags.status], ["GET", 500]);
    assertEquals(event.transaction, "GET /v1/test/boom/:id");
    assertEquals(event.contexts.trace.trace_id, TRACE_ID, "the event is in vigil's trace");
    assertEquals(event.exception.values[0].type, "Error");
    assertEquals(event.exception.values[0].value, "cannot notify [email] for vgl_[Filtered]");
    assert(event.exception.values[0].stacktrace.frames.length > 0, "with its stack");
    assertEquals(event.request.method, "GET");
    assertEquals(event.request.url, "http://localhost/v1/test/boom/7?notify=[email]");
    assertEquals(event.request.headers.authorization, "[Filtered]");
    assertEquals(event.request.headers.cookie, "[Filtered]");
    assertEquals(event.request.headers["user-agent"], "sentry-test");
    assertEquals(event.user, undefined, "no user, no IP address");
    const sent = sentry.text();
    for (const secret of [key, key.slice(4), "ann@example.com", "admin@example.com", "topsecret"]) {
      assert(!sent.includes(secret), `${secret} never reaches Sentry`);
    }
  },
);

Deno.test({
  name: "sentry: a failed job run is one event, tagged with the job",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    await using sentry = fakeSentry();
    const config = testConfig({ SENTRY_DSN: sentry.dsn, SENTRY_ENVIRONMENT: "staging" });
    const errors = await setupErrorReporting(config);
    const deps = { clock: new ManualClock(), metrics: createMetrics(), logger: rootLogger, errors };
    const ok = await runJob({
      name: "demo.ok",
      schedule: "* * * * *",
      run: () => Promise.resolve(1),
    }, deps);
    const failed = await runJob({
      name: "demo.fail",
      schedule: "* * * * *",
      run: () =>
        Promise.reject(
          new Error("could not mail ops@example.com: whsec_c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"),
        ),
    }, deps);
    assertEquals([ok.status, failed.status], ["success", "error"]);
    assert(await errors.flush(5000));
    assertEquals(sentry.events.length, 1);
    const [event] = sentry.events;
    assertEquals(event.tags.job, "demo.fail");
    assertEquals(event.transaction, "cron demo.fail");
    assertEquals([event.release, event.environment], [RELEASE, "staging"]);
    assertEquals(event.exception.values[0].value, "could not mail [email]: whsec_[Filtered]");
    assert(!sentry.text().includes("ops@example.com"));
    assert(!sentry.text().includes("c2VjcmV0c2Vj"));
  },
});

dbTest(
  "sentry: each exhausted delivery is one event: channel and ids, never the payload",
  async (_t, db) => {
    await using sentry = fakeSentry();
    await using resend = fakeResend();
    const app = await sentryApp(db, {
      SENTRY_DSN: sentry.dsn,
      RESEND_API_KEY: "re_test_key",
      RESEND_BASE_URL: resend.url,
      RESEND_RATE_PER_SECOND: "1000",
      ALERT_EMAIL_FROM: "vigil <alerts@example.com>",
    });
    const admin = { authorization: `Bearer ${app.adminKey}`, "content-type": "application/json" };
    const created = await app.app.request("/v1/users", {
      method: "POST",
      headers: admin,
      body: JSON.stringify({ email: "ann@example.com", name: "Ann", role: "user" }),
    });
    assertEquals(created.status, 201);
    const ann = {
      authorization: `Bearer ${(await created.json()).api_key.key}`,
      "content-type": "application/json",
    };

    const fire = async (name: string) => {
      // Resend refuses the address (a permanent failure): the delivery is exhausted at once.
      resend.respond({
        status: 422,
        name: "validation_error",
        message: "Invalid `to` field: ann@example.com",
      });
      const alert = await app.app.request("/v1/alerts", {
        method: "POST",
        headers: ann,
        body: JSON.stringify({
          name,
          condition: alwaysMatches,
          channels: { inapp: false, email: true },
        }),
      });
      assertEquals(alert.status, 201);
      const alertId = (await alert.json()).id;
      const res = await app.app.request(`/v1/alerts/${alertId}/evaluate`, {
        method: "POST",
        headers: ann,
        body: "{}",
      });
      const [delivery] = (await res.json()).deliveries;
      assertEquals(delivery.status, "exhausted");
      return { alertId, deliveryId: delivery.id as string };
    };
    const first = await fire("quokka-one");
    const second = await fire("quokka-two");
    assertEquals(resend.calls.length, 2);
    assert(await app.errors.flush(5000));

    assertEquals(sentry.events.length, 2, "one event each, even with the same message");
    const byDelivery = new Map(sentry.events.map((e: SentryEvent) => [e.tags.delivery_id, e]));
    for (const { alertId, deliveryId } of [first, second]) {
      const event = byDelivery.get(deliveryId);
      assert(event, `an event for ${deliveryId}`);
      assertEquals(event.message, "delivery exhausted");
      assertEquals(event.level, "error");
      assertEquals([event.tags.channel, event.tags.alert_id], ["email", alertId]);
      assertEquals(event.fingerprint, ["delivery-exhausted", "email"]);
      assertEquals(event.extra.error, "Resend 422: Invalid `to` field: [email]");
      assertEquals([event.extra.attempts, event.release, event.environment], [1, RELEASE, "test"]);
    }
    const sent = sentry.text();
    for (const secret of ["ann@example.com", "quokka", "re_test_key", "Firing"]) {
      assert(!sent.includes(secret), `${secret} never reaches Sentry`);
    }
  },
);

Deno.test("sentry: without SENTRY_DSN a process never sets Sentry up; with one it does", async () => {
  const probe = async (env: Record<string, string>) => {
    const code = `
      import { loadConfig } from "./src/config.ts";
      import { setupErrorReporting } from "./src/observability/sentry.ts";
      const reporter = await setupErrorReporting(loadConfig(Deno.env.toObject()));
      reporter.captureMessage("probe");
      await reporter.flush(100);
      console.log(JSON.stringify({ enabled: reporter.enabled, sentry: "__SENTRY__" in globalThis }));`;
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["eval", "--ext=ts", code],
      cwd: new URL("../", import.meta.url),
      // Only what Deno needs to find its cache: no SENTRY_DSN from this process.
      env: {
        ...Object.fromEntries(
          ["HOME", "PATH", "DENO_DIR", "XDG_CACHE_HOME"].flatMap((k) => {
            const v = Deno.env.get(k);
            return v === undefined ? [] : [[k, v]];
          }),
        ),
        ...env,
        NO_COLOR: "1",
      },
      clearEnv: true,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(out.stderr);
    assert(out.success, stderr);
    return JSON.parse(new TextDecoder().decode(out.stdout).trim().split("\n").at(-1)!);
  };
  assertEquals(await probe({}), { enabled: false, sentry: false });
  assertEquals(await probe({ SENTRY_DSN: "http://publickey@127.0.0.1:9/1" }), {
    enabled: true,
    sentry: true,
  });
});
