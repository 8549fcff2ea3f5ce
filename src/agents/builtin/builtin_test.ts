import { assert, assertEquals, assertRejects } from "../../../tests/support/assert.ts";
import { closedPort, serveLocal } from "../../../tests/support/servers.ts";
import { CallerError } from "../types.ts";
import { dataAgent } from "./data.ts";
import { httpAgent } from "./http.ts";
import { prometheusAgent } from "./prometheus.ts";
import type { Agent } from "../types.ts";

function call(agent: Agent, name: string, args: unknown) {
  const cap = agent.capabilities.find((c) => c.name === name)!;
  return cap.handler(cap.args.parse(args), { signal: new AbortController().signal });
}

const http = httpAgent({ allowPrivate: true });

Deno.test("http.check: up, unexpected status, connection refused, timeout", async () => {
  await using server = serveLocal(async (req) => {
    const path = new URL(req.url).pathname;
    if (path === "/slow") await new Promise((r) => setTimeout(r, 300)); // a slow target, not a test wait
    return new Response("x", { status: path === "/missing" ? 404 : 200 });
  });
  const up = await call(http, "http.check", { url: `${server.url}/ok` }) as Record<string, unknown>;
  assertEquals([up.ok, up.status], [true, 200]);
  assert(typeof up.latency_ms === "number");

  const missing = await call(http, "http.check", { url: `${server.url}/missing` }) as Record<
    string,
    unknown
  >;
  assertEquals([missing.ok, missing.status], [false, 404]);
  const expected = await call(http, "http.check", {
    url: `${server.url}/missing`,
    expect_status: 404,
  }) as Record<string, unknown>;
  assertEquals(expected.ok, true);

  const refused = await call(http, "http.check", {
    url: `http://127.0.0.1:${closedPort()}/`,
  }) as Record<string, unknown>;
  assertEquals([refused.ok, refused.status], [false, null]);
  assert(typeof refused.error === "string" && refused.error.length > 0);

  const slow = await call(http, "http.check", {
    url: `${server.url}/slow`,
    timeout_ms: 50,
  }) as Record<string, unknown>;
  assertEquals([slow.ok, slow.error], [false, "timed out after 50 ms"]);
});

Deno.test("http.check: refused targets are errors, not results", async () => {
  const strict = httpAgent({ allowPrivate: false });
  await assertRejects(
    () => call(strict, "http.check", { url: "http://127.0.0.1:1/" }),
    CallerError,
    "private",
  );
  await assertRejects(
    () => call(http, "http.check", { url: "http://169.254.169.254/" }),
    CallerError,
    "metadata",
  );
});

Deno.test("http.request: JSON and text answers, headers and body sent", async () => {
  await using server = serveLocal(async (req) => {
    if (new URL(req.url).pathname === "/text") return new Response("plain", { status: 503 });
    return Response.json({ got: await req.json(), auth: req.headers.get("x-token") }, {
      status: 201,
    });
  });
  const json = await call(http, "http.request", {
    url: `${server.url}/json`,
    method: "POST",
    headers: { "x-token": "t" },
    json: { a: 1 },
  }) as Record<string, unknown>;
  assertEquals(json.status, 201);
  assertEquals(json.json, { got: { a: 1 }, auth: "t" });
  const text = await call(http, "http.request", { url: `${server.url}/text` }) as Record<
    string,
    unknown
  >;
  assertEquals([text.status, text.text], [503, "plain"]);
});

Deno.test("prometheus.query: vector, scalar, bad query, unset URL", async () => {
  await using prom = serveLocal((req) => {
    const query = new URL(req.url).searchParams.get("query");
    if (query === "up") {
      return Response.json({
        status: "success",
        data: {
          resultType: "vector",
          result: [{ metric: { job: "vigil" }, value: [1700000000, "1"] }],
        },
      });
    }
    if (query === "scalar(1)") {
      return Response.json({
        status: "success",
        data: { resultType: "scalar", result: [1700000000, "1"] },
      });
    }
    return Response.json({ status: "error", errorType: "bad_data", error: "parse error" }, {
      status: 400,
    });
  });
  const agent = prometheusAgent(prom.url, { allowPrivate: true });
  assertEquals(await call(agent, "prometheus.query", { query: "up" }), {
    result_type: "vector",
    series: [{ metric: { job: "vigil" }, value: 1, timestamp: 1700000000 }],
    value: 1,
  });
  assertEquals(await call(agent, "prometheus.query", { query: "scalar(1)" }), {
    result_type: "scalar",
    value: 1,
  });
  await assertRejects(
    () => call(agent, "prometheus.query", { query: "up{" }),
    CallerError,
    "Prometheus: parse error",
  );
  const unset = prometheusAgent(undefined, { allowPrivate: true });
  await assertRejects(
    () => call(unset, "prometheus.query", { query: "up" }),
    CallerError,
    "PROMETHEUS_URL is not configured",
  );
});

Deno.test("data.compare and data.pick", async () => {
  const data = dataAgent();
  assertEquals(await call(data, "data.compare", { value: 5, op: ">=", threshold: 5 }), {
    result: true,
    value: 5,
    threshold: 5,
  });
  assertEquals(
    (await call(data, "data.compare", { value: "a", op: "!=", threshold: "b" }) as {
      result: boolean;
    }).result,
    true,
  );
  await assertRejects(
    () => call(data, "data.compare", { value: "5", op: ">", threshold: 1 }),
    CallerError,
    "> compares numbers",
  );
  assertEquals(await call(data, "data.pick", { value: { a: [{ b: 7 }] }, path: "a.0.b" }), 7);
  await assertRejects(
    () => call(data, "data.pick", { value: { a: 1 }, path: "a.b" }),
    CallerError,
    'nothing at path "a.b"',
  );
});
