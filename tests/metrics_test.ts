/** /metrics after real activity: exact series and counts, accepted by promtool. */
import { assert, assertEquals } from "./support/assert.ts";
import { testApp } from "./support/app.ts";
import { dbTest } from "./support/database.ts";
import { parseMetrics, sampleValue } from "./support/prometheus_text.ts";

const promtool = new Deno.Command("promtool", {
  args: ["--version"],
  stdout: "null",
  stderr: "null",
})
  .output().then((o) => o.success, () => false);

dbTest("metrics: a scrape after a few runs shows the exact series and counts", async (t, db) => {
  const { request } = await testApp(db);
  const created = await request("POST", "/v1/patterns", {
    body: {
      id: "m1",
      inputs: { doc: { type: "object" }, path: { type: "string" } },
      steps: [
        { capability: "data.compare", args: { value: 2, op: ">", threshold: 1 }, as: "cmp" },
        {
          capability: "data.pick",
          args: { value: "{{inputs.doc}}", path: "{{inputs.path}}" },
          as: "picked",
        },
      ],
      outputs: { picked: "{{picked}}" },
    },
  });
  assertEquals(created.status, 201);
  for (const path of ["a", "a", "missing"]) {
    const res = await request("POST", "/v1/patterns/m1/run", {
      body: { inputs: { doc: { a: 1 }, path } },
    });
    assertEquals(res.status, 200);
  }
  await request("GET", "/health/live", { key: null });
  await request("GET", "/health/ready", { key: null });

  const scrape = await request("GET", "/metrics", { key: null });
  assertEquals(scrape.status, 200);
  assert(scrape.headers.get("content-type")!.startsWith("text/plain; version=0.0.4"));
  const text: string = scrape.body;
  const samples = parseMetrics(text);
  const v = (name: string, labels: Record<string, string> = {}) =>
    sampleValue(samples, name, labels);

  await t.step("pattern and step series", () => {
    assertEquals(v("pattern_executions_total", { pattern_id: "m1", status: "success" }), 2);
    assertEquals(v("pattern_executions_total", { pattern_id: "m1", status: "error" }), 1);
    assertEquals(v("pattern_duration_seconds_count", { pattern_id: "m1", status: "success" }), 2);
    assertEquals(v("pattern_duration_seconds_count", { pattern_id: "m1", status: "error" }), 1);
    assertEquals(
      v("pattern_step_duration_seconds_count", {
        pattern_id: "m1",
        step_index: "0",
        capability: "data.compare",
      }),
      3,
    );
    assertEquals(
      v("pattern_step_duration_seconds_count", {
        pattern_id: "m1",
        step_index: "1",
        capability: "data.pick",
      }),
      3,
    );
  });

  await t.step("agent and circuit-breaker series", () => {
    assertEquals(
      v("agent_invocations_total", {
        agent_name: "data",
        capability: "data.compare",
        status: "success",
      }),
      3,
    );
    assertEquals(
      v("agent_invocations_total", {
        agent_name: "data",
        capability: "data.pick",
        status: "success",
      }),
      2,
    );
    assertEquals(
      v("agent_invocations_total", {
        agent_name: "data",
        capability: "data.pick",
        status: "error",
      }),
      1,
    );
    assertEquals(
      v("agent_latency_seconds_count", { agent_name: "data", capability: "data.pick" }),
      3,
    );
    for (const agent of ["data", "http", "prometheus"]) {
      assertEquals(v("circuit_breaker_state", { agent_name: agent, state: "closed" }), 1);
      assertEquals(v("circuit_breaker_state", { agent_name: agent, state: "open" }), 0);
      assertEquals(v("circuit_breaker_state", { agent_name: agent, state: "half_open" }), 0);
    }
  });

  await t.step("HTTP series count API requests by route pattern, not probes or scrapes", () => {
    assertEquals(
      v("http_requests_total", { method: "POST", route: "/v1/patterns/:id/run", status: "200" }),
      3,
    );
    assertEquals(
      v("http_requests_total", { method: "POST", route: "/v1/patterns", status: "201" }),
      1,
    );
    assertEquals(
      v("http_request_duration_seconds_count", {
        method: "POST",
        route: "/v1/patterns/:id/run",
        status: "200",
      }),
      3,
    );
    const routes = new Set(
      samples.filter((s) => s.name === "http_requests_total").map((s) => s.labels.route),
    );
    assertEquals([...routes].sort(), ["/v1/patterns", "/v1/patterns/:id/run"]);
  });

  await t.step("bounded alerting series start at zero; process metrics are ours", () => {
    for (const channel of ["inapp", "email", "webhook"]) {
      for (const status of ["delivered", "failed", "suppressed", "exhausted"]) {
        assertEquals(v("alert_deliveries_total", { channel, status }), 0);
      }
    }
    assertEquals(v("alerts_fired_total"), 0);
    for (const channel of ["inapp", "email", "webhook"]) {
      assertEquals(v("alert_delivery_duration_seconds_count", { channel }), 0);
    }
    assert(v("process_resident_memory_bytes")! > 0);
    assert(v("process_cpu_seconds_total")! > 0);
    assert(
      Math.abs(
        v("process_cpu_seconds_total")! -
          v("process_cpu_user_seconds_total")! - v("process_cpu_system_seconds_total")!,
      ) < 0.05,
      "user + system = total",
    );
    assertEquals(v("vigil_database_pool_max") ?? 0, 0, "set by the monitor, not at creation");
    assert(v("process_heap_used_bytes")! > 0);
    assert(v("process_uptime_seconds")! >= 0);
    assertEquals(v("vigil_build_info", { version: "1.0.0", deno: Deno.version.deno }), 1);
    assert(!samples.some((s) => s.name.startsWith("nodejs_")), "no default Node metrics");
  });

  await t.step(
    `promtool check metrics accepts the output${
      await promtool ? "" : " (skipped: promtool not installed)"
    }`,
    async () => {
      if (!await promtool) return;
      const child = new Deno.Command("promtool", {
        args: ["check", "metrics"],
        stdin: "piped",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const writer = child.stdin.getWriter();
      await writer.write(new TextEncoder().encode(text));
      await writer.close();
      const out = await child.output();
      const report = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
      assertEquals(report.trim(), "");
      assertEquals(out.code, 0);
    },
  );
});

dbTest("metrics: METRICS_TOKEN guards /metrics", async (_t, db) => {
  const token = "scrape-token-0123456789";
  const { request } = await testApp(db, { env: { METRICS_TOKEN: token } });
  assertEquals((await request("GET", "/metrics", { key: null })).status, 401);
  assertEquals((await request("GET", "/metrics", { key: "wrong-token-0123456789" })).status, 401);
  const ok = await request("GET", "/metrics", { key: token });
  assertEquals(ok.status, 200);
});

dbTest(
  "metrics: a pattern's series exist from its creation, before its first run",
  async (_t, db) => {
    const { request } = await testApp(db);
    const created = await request("POST", "/v1/patterns", {
      body: {
        id: "fresh",
        steps: [{ capability: "data.compare", args: { value: 2, op: ">", threshold: 1 }, as: "a" }],
      },
    });
    assertEquals(created.status, 201);
    const samples = parseMetrics((await request("GET", "/metrics", { key: null })).body);
    for (const status of ["success", "error"]) {
      assertEquals(
        sampleValue(samples, "pattern_executions_total", { pattern_id: "fresh", status }),
        0,
      );
      assertEquals(
        sampleValue(samples, "pattern_duration_seconds_count", { pattern_id: "fresh", status }),
        0,
      );
    }
    assertEquals(
      sampleValue(samples, "pattern_step_duration_seconds_count", {
        pattern_id: "fresh",
        step_index: "0",
        capability: "data.compare",
      }),
      0,
    );
  },
);
