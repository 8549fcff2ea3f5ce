/**
 * Traces end to end: an OTLP/HTTP receiver gets the HTTP, pattern.run, pattern.step and
 * agent.call spans with the right parents and attributes; the incoming traceparent is honoured,
 * a remote agent receives the traceparent of its call, and runs and log lines carry the trace id.
 */
import { assert, assertEquals } from "./support/assert.ts";
import { testApp } from "./support/app.ts";
import { dbTest } from "./support/database.ts";
import { logsSince } from "./support/logs.ts";
import { otlpReceiver } from "./support/otlp.ts";
import { serveLocal } from "./support/servers.ts";
import { alwaysMatches } from "./support/gauge.ts";
import { runJob } from "../src/jobs/scheduler.ts";

const TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_ID = "00f067aa0ba902b7";

dbTest("tracing: spans, parents, attributes and propagation", async (t, db) => {
  await using receiver = otlpReceiver();
  let fail = false;
  const traceparents: string[] = [];
  await using agent = serveLocal((req) => {
    traceparents.push(req.headers.get("traceparent") ?? "");
    return fail ? new Response("no", { status: 500 }) : Response.json({ n: 1 });
  });
  const { request, tracing } = await testApp(db, {
    env: { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_SERVICE_NAME: "vigil-test" },
  });
  assertEquals(
    (await request("POST", "/v1/agents", {
      body: { name: "remote", url: agent.url, capabilities: ["remote.count"] },
    })).status,
    201,
  );
  assertEquals(
    (await request("POST", "/v1/patterns", {
      body: {
        id: "traced",
        steps: [
          { capability: "data.compare", args: { value: 1, op: "<", threshold: 2 }, as: "a" },
          { capability: "remote.count", args: {}, as: "r" },
          { capability: "data.compare", args: { value: 1, op: "<", threshold: 2 }, as: "b" },
        ],
        outputs: { n: "{{r.n}}" },
      },
    })).status,
    201,
  );

  const logs = logsSince();
  const res = await request("POST", "/v1/patterns/traced/run", {
    body: {},
    headers: { traceparent: `00-${TRACE_ID}-${PARENT_ID}-01` },
  });
  assertEquals(res.body.status, "success");
  await tracing.forceFlush();
  const spans = receiver.spans.filter((s) => s.traceId === TRACE_ID);
  const one = (name: string) => {
    const found = spans.filter((s) => s.name === name);
    assertEquals(found.length, 1, `one ${name} span`);
    return found[0];
  };

  await t.step("the HTTP span continues the incoming trace", () => {
    const http = one("POST /v1/patterns/:id/run");
    assertEquals(http.parentSpanId, PARENT_ID);
    assertEquals(http.kind, 2); // SERVER
    assertEquals(http.attributes["http.route"], "/v1/patterns/:id/run");
    assertEquals(http.attributes["http.response.status_code"], 200);
    assertEquals(http.resource["service.name"], "vigil-test");
  });

  await t.step(
    "pattern.run → pattern.step × 3 → agent.call × 2 (the cache hit calls nothing)",
    () => {
      const http = one("POST /v1/patterns/:id/run");
      const run = one("pattern.run");
      assertEquals(run.parentSpanId, http.spanId);
      assertEquals(run.attributes, { pattern_id: "traced", version: 1, status: "success" });
      const steps = spans.filter((s) => s.name === "pattern.step").sort((a, b) =>
        Number(a.attributes.step_index) - Number(b.attributes.step_index)
      );
      assertEquals(
        steps.map((
          s,
        ) => [
          s.parentSpanId,
          s.attributes.step_index,
          s.attributes.capability,
          s.attributes.cache_hit,
        ]),
        [
          [run.spanId, 0, "data.compare", false],
          [run.spanId, 1, "remote.count", false],
          [run.spanId, 2, "data.compare", true],
        ],
      );
      const calls = spans.filter((s) => s.name === "agent.call");
      assertEquals(
        calls.map((c) => [c.parentSpanId, c.attributes.agent_name, c.attributes.capability]).sort(),
        [
          [steps[0].spanId, "data", "data.compare"],
          [steps[1].spanId, "remote", "remote.count"],
        ].sort(),
      );
    },
  );

  await t.step("the remote agent got the traceparent of its call's HTTP client span", () => {
    const call = spans.find((s) =>
      s.name === "agent.call" && s.attributes.agent_name === "remote"
    )!;
    const client = spans.filter((s) => s.parentSpanId === call.spanId);
    assertEquals(client.map((s) => [s.name, s.kind]), [["POST", 3]]); // CLIENT
    assertEquals(traceparents, [`00-${TRACE_ID}-${client[0].spanId}-01`]);
  });

  await t.step("the run record and the log lines carry the trace id", async () => {
    assertEquals(res.body.trace_id, TRACE_ID);
    const [row] = await db.sql`select trace_id from pattern_runs where id = ${res.body.run_id}`;
    assertEquals(row.trace_id, TRACE_ID);
    const line = logs().find((r) => r.fields.route === "/v1/patterns/:id/run");
    assertEquals(line?.fields.trace_id, TRACE_ID);
  });

  await t.step("a failed agent call: error status and an exception event", async () => {
    fail = true;
    const failed = await request("POST", "/v1/patterns/traced/run", { body: {} });
    assertEquals(failed.body.status, "error");
    await tracing.forceFlush();
    const mine = receiver.spans.filter((s) => s.traceId === failed.body.trace_id);
    const call = mine.find((s) => s.name === "agent.call" && s.attributes.agent_name === "remote")!;
    assertEquals(call.status.code, 2); // ERROR
    assert(
      call.events.some((e) =>
        e.name === "exception" && String(e.attributes["exception.message"]).includes("HTTP 500")
      ),
    );
    const step = mine.find((s) => s.spanId === call.parentSpanId)!;
    assertEquals([step.name, step.status.code], ["pattern.step", 2]);
    const run = mine.find((s) => s.name === "pattern.run")!;
    assertEquals([run.attributes.status, run.status.code], ["error", 2]);
    assert(
      !mine.some((s) => s.parentSpanId === PARENT_ID),
      "a new trace without an incoming traceparent",
    );
  });

  await tracing.shutdown();
});

dbTest(
  "tracing: error answers carry the trace id, only when the trace is sampled",
  async (_t, db) => {
    await using receiver = otlpReceiver();
    const missing = "/v1/alerts/00000000-0000-4000-8000-000000000000";
    const traced = await testApp(db, { env: { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url } });
    const res = await traced.request("GET", missing, {
      headers: { traceparent: `00-${TRACE_ID}-${PARENT_ID}-01` },
    });
    assertEquals([res.status, res.body.trace_id], [404, TRACE_ID]);
    const unsampled = await testApp(db, {
      env: { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_TRACES_SAMPLER_ARG: "0" },
      adminEmail: "admin-2@example.com",
    });
    const quiet = await unsampled.request("GET", missing);
    assertEquals(
      [quiet.status, "trace_id" in quiet.body],
      [404, false],
      "no id of a trace never kept",
    );
  },
);

dbTest(
  "tracing: a cron tick that fires an alert to a webhook is one trace: cron → batch → delivery → HTTP",
  async (t, db) => {
    await using receiver = otlpReceiver();
    await using hook = serveLocal(() => new Response(null, { status: 204 }));
    const app = await testApp(db, {
      env: { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_SERVICE_NAME: "vigil-test" },
    });
    const created = await app.request("POST", "/v1/alerts", {
      body: {
        name: "traced hook",
        condition: alwaysMatches,
        channels: { inapp: true, webhook: { url: `${hook.url}/in?token=secret-query` } },
      },
    });
    assertEquals(created.status, 201);
    const job = app.jobs.find((j) => j.name === "alerts.evaluate")!;
    assertEquals((await runJob(job, app)).status, "success");
    await app.tracing.forceFlush();

    const cron = receiver.spans.find((s) => s.name === "cron alerts.evaluate");
    assert(cron, "a span for the cron tick");
    const spans = receiver.spans.filter((s) => s.traceId === cron.traceId);
    const byId = new Map(spans.map((s) => [s.spanId, s]));
    const parentOf = (s: { parentSpanId?: string }) => byId.get(s.parentSpanId ?? "");

    await t.step("the tick is the root, with the job's name and the instance", () => {
      assertEquals(cron.parentSpanId, undefined);
      assertEquals(cron.attributes["job.name"], "alerts.evaluate");
      assertEquals(cron.resource["service.name"], "vigil-test");
      assert(String(cron.resource["service.instance.id"]).length > 0);
      assertEquals(cron.resource["deployment.environment"], "test");
    });

    await t.step(
      "one batch, one delivery.send per delivery, the webhook's client span under its own",
      () => {
        const batches = spans.filter((s) => s.name === "delivery.batch");
        assertEquals(batches.length, 1);
        const sends = spans.filter((s) => s.name === "delivery.send");
        assertEquals(
          sends.map((s) => s.attributes["delivery.channel"]).sort(),
          ["inapp", "webhook"],
        );
        for (const send of sends) {
          assertEquals(send.parentSpanId, batches[0].spanId);
          assertEquals(send.attributes["delivery.outcome"], "delivered");
        }
        // The batch hangs off the tick (through the evaluation), in the same trace.
        let up = parentOf(batches[0]);
        while (up && up.spanId !== cron.spanId) up = parentOf(up);
        assert(up, "the batch descends from the cron span");

        const webhookSend = sends.find((s) => s.attributes["delivery.channel"] === "webhook")!;
        const http = spans.filter((s) =>
          s.kind === 3 && s.parentSpanId === webhookSend.spanId &&
          "http.request.method" in s.attributes
        );
        assertEquals(http.length, 1, "one CLIENT span for the webhook call");
        assertEquals(http[0].name, "POST");
        assertEquals(http[0].attributes["http.request.method"], "POST");
        assertEquals(http[0].attributes["http.response.status_code"], 204);
        assertEquals(http[0].attributes["server.address"], "127.0.0.1");
        assertEquals(http[0].attributes["url.full"], `${hook.url}/in`, "no query string");
        assert(!JSON.stringify(spans).includes("secret-query"));
        // Statements are CLIENT spans of the same trace; transactions INTERNAL ones around them.
        const db = spans.filter((s) => s.attributes["db.system.name"] === "postgresql");
        const statements = db.filter((s) => s.name !== "db.transaction");
        assert(statements.length > 0, "database statements in the trace");
        for (const s of statements) {
          assertEquals(s.kind, 3, s.name);
          assertEquals(typeof s.attributes["db.query.text"], "string", s.name);
        }
        assert(db.some((s) => s.name === "db.transaction" && s.kind === 1));
      },
    );
    await app.tracing.shutdown();
  },
);

dbTest(
  "tracing: a call refused by an open breaker is an agent.call span with status error",
  async (_t, db) => {
    await using receiver = otlpReceiver();
    await using agent = serveLocal(() => new Response("down", { status: 500 }));
    const app = await testApp(db, {
      env: { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, CB_FAILURE_THRESHOLD: "1" },
    });
    await app.request("POST", "/v1/agents", {
      body: { name: "flaky", url: agent.url, capabilities: ["flaky.call"] },
    });
    await app.request("POST", "/v1/patterns", {
      body: { id: "flaky", steps: [{ capability: "flaky.call", args: {}, as: "x" }] },
    });
    const first = await app.request("POST", "/v1/patterns/flaky/run", { body: {} });
    const second = await app.request("POST", "/v1/patterns/flaky/run", { body: {} });
    assertEquals([first.body.status, second.body.status], ["error", "error"]);
    await app.tracing.forceFlush();
    const calls = receiver.spans.filter((s) =>
      s.traceId === second.body.trace_id && s.name === "agent.call"
    );
    assertEquals(calls.length, 1);
    assertEquals(calls[0].status.code, 2);
    assertEquals(calls[0].attributes["vigil.breaker"], "open");
    await app.tracing.shutdown();
  },
);

dbTest(
  "tracing: an unsampled run returns no trace id; samplers by their standard names",
  async (_t, db) => {
    const app = await testApp(db, { env: { OTEL_TRACES_SAMPLER: "always_off" } });
    await app.request("POST", "/v1/patterns", {
      body: {
        id: "quiet",
        steps: [{ capability: "data.compare", args: { value: 1, op: "<", threshold: 2 }, as: "a" }],
      },
    });
    const run = await app.request("POST", "/v1/patterns/quiet/run", { body: {} });
    assertEquals([run.body.status, run.body.trace_id], ["success", null]);
    const on = await testApp(db, {
      env: { OTEL_TRACES_SAMPLER: "always_on", OTEL_TRACES_SAMPLER_ARG: "0" },
      adminEmail: "admin-2@example.com",
    });
    const sampled = await on.request("POST", "/v1/patterns/quiet/run", { body: {} });
    assert(/^[0-9a-f]{32}$/.test(sampled.body.trace_id), "always_on ignores the ratio");
  },
);
