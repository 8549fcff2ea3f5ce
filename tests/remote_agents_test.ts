/**
 * Remote agents end to end: registration through the API, calls with {args, context} and the
 * caller's traceparent, failures counted by the breaker, rejection while open, and recovery
 * through HALF_OPEN — with the breaker gauge after each step.
 */
import { assert, assertEquals, assertMatch } from "./support/assert.ts";
import { testApp } from "./support/app.ts";
import { SECOND } from "./support/clock.ts";
import { dbTest } from "./support/database.ts";
import { parseMetrics, sampleValue } from "./support/prometheus_text.ts";
import { serveLocal } from "./support/servers.ts";

dbTest("remote agents: register, call, fail, open, recover through HALF_OPEN", async (t, db) => {
  const { request, clock } = await testApp(db, {
    env: { CB_FAILURE_THRESHOLD: "3", CB_OPEN_SECONDS: "60" },
  });
  let healthy = true;
  const received: {
    path: string;
    body: { args: unknown; context: Record<string, unknown> };
    traceparent: string | null;
  }[] = [];
  await using agent = serveLocal(async (req) => {
    received.push({
      path: new URL(req.url).pathname,
      body: await req.json(),
      traceparent: req.headers.get("traceparent"),
    });
    return healthy ? Response.json({ balance: 42 }) : new Response("overloaded", { status: 503 });
  });

  const breaker = async () => {
    const list = await request("GET", "/v1/agents");
    return list.body.items.find((a: { name: string }) => a.name === "billing").circuit_breaker
      .state;
  };
  const gauge = async () => {
    const samples = parseMetrics((await request("GET", "/metrics", { key: null })).body);
    return Object.fromEntries(
      ["closed", "open", "half_open"].map((
        state,
      ) => [
        state,
        sampleValue(samples, "circuit_breaker_state", { agent_name: "billing", state }),
      ]),
    );
  };
  const run = () =>
    request("POST", "/v1/patterns/balance/run", { body: { inputs: { account: "acme" } } });

  await t.step("register (201), re-register (200), listed with its breaker", async () => {
    const body = {
      name: "billing",
      url: agent.url,
      capabilities: ["billing.balance"],
      timeout_ms: 2000,
    };
    const created = await request("POST", "/v1/agents", { body });
    assertEquals(created.status, 201);
    assertEquals(created.body.kind, "remote");
    assertEquals(created.body.capabilities, [{ name: "billing.balance", description: "" }]);
    const again = await request("POST", "/v1/agents", {
      body: {
        ...body,
        capabilities: [{ name: "billing.balance", description: "Account balance" }],
      },
    });
    assertEquals(again.status, 200);
    const list = await request("GET", "/v1/agents");
    assertEquals(list.body.items.map((a: { name: string }) => a.name), [
      "billing",
      "data",
      "http",
      "prometheus",
      "sla",
    ]);
    assertEquals(await breaker(), "closed");
    assertEquals(await gauge(), { closed: 1, open: 0, half_open: 0 });
  });

  await t.step(
    "bad registrations: taken capability 409, built-in name 409, metadata URL 422",
    async () => {
      const taken = await request("POST", "/v1/agents", {
        body: { name: "other", url: agent.url, capabilities: ["http.check"] },
      });
      assertEquals(taken.status, 409);
      assertEquals(taken.body.detail, "Capability http.check is already provided by agent http.");
      const builtin = await request("POST", "/v1/agents", {
        body: { name: "data", url: agent.url, capabilities: ["data.x"] },
      });
      assertEquals(builtin.status, 409);
      const metadata = await request("POST", "/v1/agents", {
        body: { name: "meta", url: "http://169.254.169.254", capabilities: ["meta.data"] },
      });
      assertEquals(metadata.status, 422);
      assertEquals(metadata.body.errors[0].path, "url");
      assertEquals((await request("DELETE", "/v1/agents/http")).status, 409);
    },
  );

  await t.step("a pattern calls it with {args, context} and the traceparent", async () => {
    const created = await request("POST", "/v1/patterns", {
      body: {
        id: "balance",
        inputs: { account: { type: "string" } },
        steps: [{
          capability: "billing.balance",
          args: { account: "{{inputs.account}}" },
          as: "b",
        }],
        outputs: { balance: "{{b.balance}}" },
      },
    });
    assertEquals(created.status, 201);
    const res = await run();
    assertEquals(res.body.status, "success");
    assertEquals(res.body.outputs, { balance: 42 });
    const call = received.at(-1)!;
    assertEquals(call.path, "/billing.balance");
    assertEquals(call.body.args, { account: "acme" });
    assertEquals(call.body.context.run_id, res.body.run_id);
    assertEquals(call.body.context.pattern_id, "balance");
    assertMatch(String(call.body.context.request_id), /^[0-9a-f-]{36}$/);
    assertMatch(call.traceparent!, new RegExp(`^00-${res.body.trace_id}-[0-9a-f]{16}-0[01]$`));
  });

  await t.step("three failures open the breaker", async () => {
    healthy = false;
    for (let i = 0; i < 3; i++) {
      const res = await run();
      assertEquals(res.body.status, "error");
      assertEquals(
        res.body.error,
        'step 0 (billing.balance as "b") failed: agent answered HTTP 503: overloaded',
      );
    }
    assertEquals(await breaker(), "open");
    assertEquals(await gauge(), { closed: 0, open: 1, half_open: 0 });
  });

  await t.step("while open, calls are rejected at once (the agent is not called)", async () => {
    const before = received.length;
    const res = await run();
    assertEquals(res.body.status, "error");
    assertMatch(res.body.error, /circuit breaker of agent "billing" is open until /);
    assertEquals(received.length, before);
  });

  await t.step("after the cool-down a failed trial opens it again", async () => {
    clock.advance(60 * SECOND);
    const res = await run();
    assertMatch(res.body.error, /agent answered HTTP 503/);
    assertEquals(await breaker(), "open");
  });

  await t.step("after the next cool-down a successful trial closes it", async () => {
    healthy = true;
    clock.advance(60 * SECOND);
    const res = await run();
    assertEquals(res.body.status, "success");
    assertEquals(await breaker(), "closed");
    assertEquals(await gauge(), { closed: 1, open: 0, half_open: 0 });
  });

  await t.step("invocations were counted by outcome", async () => {
    const samples = parseMetrics((await request("GET", "/metrics", { key: null })).body);
    const count = (status: string) =>
      sampleValue(samples, "agent_invocations_total", {
        agent_name: "billing",
        capability: "billing.balance",
        status,
      });
    assertEquals([count("success"), count("error"), count("rejected")], [2, 4, 1]);
  });

  await t.step("delete: its capability is gone", async () => {
    assertEquals((await request("DELETE", "/v1/agents/billing")).status, 204);
    assertEquals((await request("DELETE", "/v1/agents/billing")).status, 404);
    const res = await run();
    assertEquals(
      res.body.error,
      'step 0 (billing.balance as "b") failed: unknown capability "billing.balance"',
    );
    const samples = parseMetrics((await request("GET", "/metrics", { key: null })).body);
    assert(
      samples.every((s) => s.labels.agent_name !== "billing" || s.name !== "circuit_breaker_state"),
    );
  });
});

dbTest("remote agents: a registration made on one replica reaches another", async (_t, db) => {
  const a = await testApp(db);
  const b = await testApp(db, { clock: a.clock, adminEmail: "admin-b@example.com" });
  await using agent = serveLocal(() => Response.json({ ok: true }));
  const listed = async () =>
    (await b.request("GET", "/v1/agents")).body.items.some((x: { name: string }) =>
      x.name === "pinger"
    );
  assertEquals(await listed(), false); // b has loaded the (empty) table
  const res = await a.request("POST", "/v1/agents", {
    body: { name: "pinger", url: agent.url, capabilities: ["pinger.ping"] },
  });
  assertEquals(res.status, 201);
  // Replica b reloads the table once its copy is older than the refresh interval (15 s).
  a.clock.advance(20 * SECOND);
  assertEquals(await listed(), true);
  assertEquals((await a.request("DELETE", "/v1/agents/pinger")).status, 204);
  a.clock.advance(20 * SECOND);
  assertEquals(await listed(), false);
});

dbTest(
  "remote agents: a 2xx answer that is not JSON is a failure the breaker counts",
  async (_t, db) => {
    const { request } = await testApp(db, { env: { CB_FAILURE_THRESHOLD: "2" } });
    await using agent = serveLocal(() => new Response("<html>oops</html>", { status: 200 }));
    assertEquals(
      (await request("POST", "/v1/agents", {
        body: { name: "html", url: agent.url, capabilities: ["html.get"] },
      })).status,
      201,
    );
    assertEquals(
      (await request("POST", "/v1/patterns", {
        body: { id: "html", steps: [{ capability: "html.get", args: {}, as: "h" }] },
      }))
        .status,
      201,
    );
    for (let i = 0; i < 2; i++) {
      const res = await request("POST", "/v1/patterns/html/run", { body: {} });
      assertEquals(
        res.body.error,
        'step 0 (html.get as "h") failed: agent answered with a body that is not JSON',
      );
    }
    const list = await request("GET", "/v1/agents");
    assertEquals(
      list.body.items.find((a: { name: string }) => a.name === "html").circuit_breaker.state,
      "open",
    );
  },
);

dbTest(
  "remote agents: credentials go in a write-only Authorization, never in the URL",
  async (_t, db) => {
    const app = await testApp(db);
    const seen: (string | null)[] = [];
    await using agent = serveLocal((req) => {
      seen.push(req.headers.get("authorization"));
      return Response.json({ ok: true });
    });
    const token = "Bearer agent-secret-0123456789";
    const registered = await app.request("POST", "/v1/agents", {
      body: { name: "vault", url: agent.url, capabilities: ["vault.ping"], authorization: token },
    });
    assertEquals(registered.status, 201);
    assert(!JSON.stringify(registered.body).includes("agent-secret"), "not echoed");
    const listed = await app.request("GET", "/v1/agents");
    assert(!JSON.stringify(listed.body).includes("agent-secret"), "never listed");
    // Calls carry it, also from another replica that loads the registration from the table.
    const other = await testApp(db, { clock: app.clock, adminEmail: "admin-2@example.com" });
    await other.remote.refresh(true);
    assertEquals((await other.runtime.invoke("vault.ping", {})).value, { ok: true });
    assertEquals(seen, [token]);

    const url = new URL(agent.url);
    url.username = "user";
    url.password = "pass";
    const inUrl = await app.request("POST", "/v1/agents", {
      body: { name: "leaky", url: url.toString(), capabilities: ["leaky.ping"] },
    });
    assertEquals(inUrl.status, 422);
    assertMatch(JSON.stringify(inUrl.body.errors), /credentials/);
    const injected = await app.request("POST", "/v1/agents", {
      body: {
        name: "split",
        url: agent.url,
        capabilities: ["split.ping"],
        authorization: "Bearer x\r\nX-Evil: 1",
      },
    });
    assertEquals(injected.status, 422);
  },
);

dbTest("remote agents: an agent that is down is named, with its URL and why", async (_t, db) => {
  const { request } = await testApp(db);
  const taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (taken.addr as Deno.NetAddr).port;
  taken.close(); // nothing listens there
  assertEquals(
    (await request("POST", "/v1/agents", {
      body: { name: "ledger", url: `http://127.0.0.1:${port}/agent`, capabilities: ["ledger.sum"] },
    })).status,
    201,
  );
  await request("POST", "/v1/patterns", {
    body: { id: "sum", steps: [{ capability: "ledger.sum", args: {}, as: "s" }] },
  });
  const run = await request("POST", "/v1/patterns/sum/run", { body: {} });
  assertEquals(run.body.status, "error");
  assertEquals(
    run.body.trace[0].error,
    `agent "ledger" at http://127.0.0.1:${port}/agent/ledger.sum did not answer: connection refused`,
  );
});
