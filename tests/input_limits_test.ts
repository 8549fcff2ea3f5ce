/**
 * Issue 15: the fuzzer's inputs — forged cursors, deep JSON, NUL characters, lone surrogates,
 * huge validation answers, explosive or slow templates — get a 4xx problem or an error run,
 * quickly, and vigil keeps answering.
 */
import { encodeCursor } from "../src/http/pagination.ts";
import { assert, assertEquals, assertMatch } from "./support/assert.ts";
import { testApp } from "./support/app.ts";
import { dbTest } from "./support/database.ts";
import { serveLocal } from "./support/servers.ts";
import { alwaysMatches } from "./support/gauge.ts";

const deep = (levels: number) => "[".repeat(levels) + "]".repeat(levels);
const deepObject = (levels: number) => '{"a":'.repeat(levels) + "1" + "}".repeat(levels);
const b64 = (text: string) =>
  btoa(text).replaceAll("+", "-").replaceAll("/", "_").replaceAll("=", "");

const condition = alwaysMatches;

const pattern = (id: string, extra: Record<string, unknown> = {}) => ({
  id,
  steps: [{ capability: "data.compare", args: { value: 1, op: ">", threshold: 0 }, as: "c" }],
  outputs: { r: "{{c.result}}" },
  ...extra,
});

async function assertLive(app: Awaited<ReturnType<typeof testApp>>) {
  assertEquals((await app.request("GET", "/health/live")).status, 200);
}

dbTest(
  "input limits: forged cursors are a 400 naming the parameter on every paged route",
  async (t, db) => {
    const app = await testApp(db);
    const alert = await app.request("POST", "/v1/alerts", { body: { name: "a", condition } });
    assertEquals(alert.status, 201);
    const routes = [
      "/v1/alerts",
      "/v1/notifications",
      "/v1/dlq",
      "/v1/users",
      "/v1/runs",
      `/v1/alerts/${alert.body.id}/deliveries`,
    ];
    const cursors: Record<string, string> = {
      "not base64": "%%%",
      "not JSON": b64("nope"),
      "not a pair": b64('{"a":1}'),
      "a non-UUID id": b64(JSON.stringify([new Date().toISOString(), "x' or 1=1"])),
      "year 0": b64(JSON.stringify(["0000-01-01T00:00:00Z", crypto.randomUUID()])),
      "an invalid date": b64(JSON.stringify(["2024-02-31T25:00:00Z", crypto.randomUUID()])),
      "too long": "a".repeat(300),
      "a NUL in the id": b64(JSON.stringify([new Date().toISOString(), "\u0000"])),
    };
    for (const route of routes) {
      await t.step(route, async () => {
        for (const [what, cursor] of Object.entries(cursors)) {
          const res = await app.request("GET", `${route}?cursor=${encodeURIComponent(cursor)}`);
          assertEquals(res.status, 400, `${route}, ${what}: ${JSON.stringify(res.body)}`);
          assertEquals(res.body.errors[0].path, "query.cursor");
        }
        const good = encodeCursor(new Date(), crypto.randomUUID());
        assertEquals((await app.request("GET", `${route}?cursor=${good}`)).status, 200);
      });
    }
    await assertLive(app);
  },
);

dbTest("input limits: JSON nested 10,000 deep is a 400 before zod or storage", async (t, db) => {
  const app = await testApp(db);
  const created = await app.request("POST", "/v1/patterns", { body: pattern("p") });
  assertEquals(created.status, 201);
  const bodies: [string, string, string][] = [
    [
      "POST",
      "/v1/alerts",
      `{"name":"x","condition":{"capability":"data.pick","args":{"value":${
        deep(10_000)
      },"path":""},"path":"","op":"==","threshold":1}}`,
    ],
    [
      "POST",
      "/v1/patterns",
      `{"id":"deep","steps":[{"capability":"data.pick","args":{"value":${
        deepObject(10_000)
      },"path":""},"as":"s"}]}`,
    ],
    ["POST", "/v1/patterns/p/run", `{"inputs":{"x":${deep(10_000)}}}`],
    ["PUT", "/v1/patterns/p", deepObject(10_000)],
  ];
  for (const [method, path, body] of bodies) {
    await t.step(`${method} ${path}`, async () => {
      const started = performance.now();
      const res = await app.request(method, path, { body });
      assertEquals(res.status, 400, JSON.stringify(res.body));
      assertMatch(res.body.detail, /nested deeper than 32 levels/);
      assert(performance.now() - started < 1000);
    });
  }
  await t.step("at the limit it is accepted (and still validated by zod)", async () => {
    const res = await app.request("POST", "/v1/patterns/p/run", {
      body: `{"inputs":{"x":${deep(30)}}}`,
    });
    assertEquals(res.status, 422); // an undeclared input, not a depth problem
    assertEquals(res.body.errors[0].path, "inputs");
  });
  await t.step("nothing was stored, and lists still answer", async () => {
    assertEquals((await app.request("GET", "/v1/alerts")).body.items.length, 0);
    assertEquals((await app.request("GET", "/v1/runs")).status, 200);
  });
  await assertLive(app);
});

dbTest(
  "input limits: NUL characters and lone surrogates are a 422 naming the field",
  async (t, db) => {
    const app = await testApp(db);
    await t.step("a NUL in an alert's name", async () => {
      const res = await app.request("POST", "/v1/alerts", {
        body: { name: "a\u0000b", condition },
      });
      assertEquals(res.status, 422);
      assertEquals(res.body.errors.map((e: { path: string }) => e.path), ["name"]);
      assertMatch(res.body.errors[0].message, /NUL character/);
    });
    await t.step("a NUL in a JSON argument, and in a key", async () => {
      const res = await app.request("POST", "/v1/alerts", {
        body: {
          name: "n",
          condition: { ...condition, args: { value: "x\u0000", op: "==", threshold: "\u0000" } },
        },
      });
      assertEquals(res.status, 422);
      assertEquals(res.body.errors.map((e: { path: string }) => e.path), [
        "condition.args.value",
        "condition.args.threshold",
      ]);
      const key = await app.request("POST", "/v1/patterns/service-health/run", {
        body: '{"inputs":{"a\\u0000":1}}',
      });
      assertEquals(key.status, 422);
      assertMatch(key.body.errors[0].message, /^this key contains a NUL/);
    });
    await t.step("a lone surrogate (escaped, as JSON.stringify writes it)", async () => {
      const res = await app.request("POST", "/v1/users", {
        body: '{"email":"s@example.com","name":"\\ud800x"}',
      });
      assertEquals(res.status, 422);
      assertEquals(res.body.errors[0].path, "name");
      const pair = await app.request("POST", "/v1/users", {
        body: '{"email":"p@example.com","name":"\\ud83d\\ude00"}', // a valid pair: 😀
      });
      assertEquals(pair.status, 201);
    });
    await t.step("a NUL in a path or a query parameter", async () => {
      for (
        const [method, path] of [
          ["DELETE", "/v1/agents/a%00b"],
          ["GET", "/v1/patterns/%00"],
          ["GET", "/v1/runs?pattern_id=x%00"],
          ["POST", "/v1/jobs/%00/run"],
        ]
      ) {
        const res = await app.request(method, path);
        assertEquals(res.status, 400, `${method} ${path}`);
        assertMatch(res.body.detail, /NUL character/);
      }
    });
    await t.step("a 200 KB body of bad strings answers 50 problems and a count", async () => {
      const args = Object.fromEntries(
        Array.from({ length: 20_000 }, (_, i) => [`k${i}`, "\u0000"]),
      );
      const body = JSON.stringify({ name: "n", condition: { ...condition, args } });
      assert(body.length > 200_000);
      const res = await app.request("POST", "/v1/alerts", { body });
      assertEquals(res.status, 422);
      assertEquals(res.body.errors.length, 50);
      assertEquals(res.body.more_errors, 19_950);
      assert(JSON.stringify(res.body).length < 20_000);
    });
    await t.step("a 200 KB body of zod problems too", async () => {
      const steps = Array.from({ length: 100 }, () => ({
        capability: "",
        args: {},
        as: "1".repeat(2000),
        extra: 1,
      }));
      const res = await app.request("POST", "/v1/patterns", { body: { id: "many", steps } });
      assertEquals(res.status, 422);
      assertEquals(res.body.errors.length, 50);
      assert(res.body.more_errors > 0);
      assert(JSON.stringify(res.body).length < 40_000);
    });
    await assertLive(app);
  },
);

dbTest("input limits: hostile templates give a 422 or an error run, quickly", async (t, db) => {
  const app = await testApp(db);
  await t.step("{{ followed by 5,000 spaces", async () => {
    const started = performance.now();
    const res = await app.request("POST", "/v1/patterns", {
      body: pattern("spaces", { outputs: { r: "{{" + " ".repeat(5000) } }),
    });
    assertEquals(res.status, 201); // not a template at all: plain text
    const run = await app.request("POST", "/v1/patterns/spaces/run", { body: {} });
    assertEquals(run.body.outputs.r, "{{" + " ".repeat(5000));
    const closed = await app.request("POST", "/v1/patterns", {
      body: pattern("spaces2", { outputs: { r: "{{" + " ".repeat(5000) + "x }}" } }),
    });
    assertEquals(closed.status, 422);
    assertMatch(closed.body.errors[0].message, /names "x", which is neither/);
    assert(performance.now() - started < 1000);
  });
  await t.step("19 steps that each interpolate the previous result twice", async () => {
    const steps = Array.from({ length: 19 }, (_, i) => ({
      capability: "data.pick",
      args: {
        value: i === 0 ? "{{inputs.s}}{{inputs.s}}" : `{{s${i - 1}}}{{s${i - 1}}}`,
        path: "",
      },
      as: `s${i}`,
    }));
    const created = await app.request("POST", "/v1/patterns", {
      body: {
        id: "doubling",
        inputs: { s: { type: "string" } },
        steps,
        outputs: { last: "{{s18}}" },
      },
    });
    assertEquals(created.status, 201, JSON.stringify(created.body));
    const started = performance.now();
    const res = await app.request("POST", "/v1/patterns/doubling/run", {
      body: { inputs: { s: "x".repeat(1024) } },
    });
    assert(performance.now() - started < 3000);
    assertEquals(res.status, 200);
    assertEquals(res.body.status, "error");
    assertMatch(res.body.error, /PATTERN_MAX_RENDER_BYTES/);
    const stored = await app.request("GET", `/v1/runs/${res.body.run_id}`);
    assertEquals(stored.body.error, res.body.error);
  });
  await t.step(
    "agent results PostgreSQL cannot store: NUL, lone surrogate, 10,000 deep",
    async () => {
      await using agent = serveLocal((req) => {
        const kind = new URL(req.url).searchParams.get("kind");
        const body = kind === "nul"
          ? '{"v":"a\\u0000b"}'
          : kind === "surrogate"
          ? '{"v":"\\udc00"}'
          : `{"v":${deep(10_000)}}`;
        return new Response(body, { headers: { "content-type": "application/json" } });
      });
      const created = await app.request("POST", "/v1/patterns", {
        body: {
          id: "agent-text",
          inputs: { url: { type: "string" } },
          steps: [{ capability: "http.request", args: { url: "{{inputs.url}}" }, as: "a" }],
          outputs: { r: "{{a.json.v}}" },
        },
      });
      assertEquals(created.status, 201, JSON.stringify(created.body));
      for (
        const [kind, error] of [
          ["nul", /^outputs: r contains a NUL character/],
          ["surrogate", /^outputs: r contains a NUL character or a lone UTF-16 surrogate/],
          ["deep", /^outputs are nested deeper than 100 levels$/],
        ] as const
      ) {
        const res = await app.request("POST", "/v1/patterns/agent-text/run", {
          body: { inputs: { url: `${agent.url}/?kind=${kind}` } },
        });
        assertEquals(res.status, 200, JSON.stringify(res.body));
        assertEquals(res.body.status, "error");
        assertMatch(res.body.error, error);
        assertEquals((await app.request("GET", `/v1/runs/${res.body.run_id}`)).status, 200);
      }
    },
  );
  assertEquals((await app.request("GET", "/v1/runs")).status, 200);
  await assertLive(app);
});

dbTest(
  "input limits: a run past PATTERN_RUN_TIMEOUT_MS is stored as an error run",
  async (_t, db) => {
    const app = await testApp(db, { env: { PATTERN_RUN_TIMEOUT_MS: "200" } });
    await using slow = serveLocal(async () => {
      await new Promise((r) => setTimeout(r, 3000));
      return new Response("late");
    });
    const created = await app.request("POST", "/v1/patterns", {
      body: {
        id: "slow",
        steps: [
          { capability: "http.request", args: { url: slow.url }, as: "a" },
          { capability: "http.request", args: { url: slow.url }, as: "b" },
        ],
      },
    });
    assertEquals(created.status, 201, JSON.stringify(created.body));
    const started = performance.now();
    const res = await app.request("POST", "/v1/patterns/slow/run", { body: {} });
    const took = performance.now() - started;
    assert(took < 1500, `took ${took} ms`);
    assertEquals(res.body.status, "error");
    assertMatch(res.body.error, /^deadline exceeded: the run took longer than 200 ms/);
    const stored = await app.request("GET", `/v1/runs/${res.body.run_id}`);
    assertEquals([stored.body.status, stored.body.error], ["error", res.body.error]);
    await assertLive(app);
  },
);

dbTest("input limits: alerts per user and patterns are capped", async (t, db) => {
  const app = await testApp(db, { env: { MAX_ALERTS_PER_USER: "3", MAX_PATTERNS: "2" } });
  const ann = await app.newUser("ann@example.com");
  await t.step("MAX_ALERTS_PER_USER, even when created at once", async () => {
    const results = await Promise.all(
      Array.from(
        { length: 6 },
        (_, i) =>
          app.request("POST", "/v1/alerts", { key: ann.key, body: { name: `a${i}`, condition } }),
      ),
    );
    assertEquals(results.map((r) => r.status).sort(), [201, 201, 201, 409, 409, 409]);
    const refused = results.find((r) => r.status === 409)!;
    assertMatch(refused.body.detail, /already has 3 alerts.*MAX_ALERTS_PER_USER/);
    assertEquals((await app.request("GET", "/v1/alerts", { key: ann.key })).body.items.length, 3);
    // Another user has their own allowance; deleting one makes room again.
    const other = await app.request("POST", "/v1/alerts", { body: { name: "x", condition } });
    assertEquals(other.status, 201);
    const id = results.find((r) => r.status === 201)!.body.id;
    assertEquals((await app.request("DELETE", `/v1/alerts/${id}`, { key: ann.key })).status, 204);
    const again = await app.request("POST", "/v1/alerts", {
      key: ann.key,
      body: { name: "again", condition },
    });
    assertEquals(again.status, 201);
  });
  await t.step("MAX_PATTERNS", async () => {
    assertEquals((await app.request("GET", "/v1/patterns")).body.items.length, 0);
    assertEquals((await app.request("POST", "/v1/patterns", { body: pattern("p1") })).status, 201);
    assertEquals((await app.request("POST", "/v1/patterns", { body: pattern("p2") })).status, 201);
    const third = await app.request("POST", "/v1/patterns", { body: pattern("p3") });
    assertEquals(third.status, 409);
    assertMatch(third.body.detail, /MAX_PATTERNS/);
    // Updating an existing one is not creating one.
    assertEquals(
      (await app.request("PUT", "/v1/patterns/p1", { body: pattern("p1") })).status,
      200,
    );
  });
});

dbTest(
  "input limits: the Alertmanager receiver refuses unstorable text and deep JSON too",
  async (_t, db) => {
    const token = "am-token-0123456789abcdef";
    const app = await testApp(db, { env: { ALERTMANAGER_WEBHOOK_TOKEN: token } });
    const send = (body: string) =>
      app.request("POST", "/v1/alertmanager/webhook", {
        key: null,
        body,
        headers: { authorization: `Bearer ${token}` },
      });
    const nul = await send('{"version":"4","groupKey":"\\u0000","status":"firing","alerts":[]}');
    assertEquals(nul.status, 422, JSON.stringify(nul.body));
    assertEquals(nul.body.errors[0].path, "groupKey");
    assertEquals((await send(`{"alerts":${deep(10_000)}}`)).status, 400);
    await assertLive(app);
  },
);
