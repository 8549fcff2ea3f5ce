import { assert, assertEquals, assertMatch } from "../../tests/support/assert.ts";
import { testApp } from "../../tests/support/app.ts";
import { HOUR } from "../../tests/support/clock.ts";
import { dbTest } from "../../tests/support/database.ts";
import { serveLocal } from "../../tests/support/servers.ts";
import { loadExamplePatterns } from "./examples.ts";
import { pruneRunsJob } from "./prune.ts";

const healthPattern = (id = "health") => ({
  id,
  description: "up and fast?",
  inputs: { url: { type: "string" }, budget_ms: { type: "number", default: 2000 } },
  steps: [
    { capability: "http.check", args: { url: "{{inputs.url}}" }, as: "check" },
    {
      capability: "data.compare",
      args: { value: "{{check.latency_ms}}", op: "<=", threshold: "{{inputs.budget_ms}}" },
      as: "fast",
    },
  ],
  outputs: {
    up: "{{check.ok}}",
    status: "{{check.status}}",
    fast: "{{fast.result}}",
    note: "status {{check.status}}",
  },
});

dbTest("patterns: create, read, list, update to a new version, delete", async (t, db) => {
  const { request, newUser } = await testApp(db);

  await t.step("create → version 1", async () => {
    const res = await request("POST", "/v1/patterns", { body: healthPattern() });
    assertEquals(res.status, 201);
    assertEquals(res.body.id, "health");
    assertEquals(res.body.version, 1);
    assertEquals(res.body.definition.version, 1);
    assertEquals(res.body.definition.steps.length, 2);
  });

  await t.step("the same id again → 409", async () => {
    const res = await request("POST", "/v1/patterns", { body: healthPattern() });
    assertEquals(res.status, 409);
  });

  await t.step("users may read but not write", async () => {
    const user = await newUser("reader@example.com");
    assertEquals((await request("GET", "/v1/patterns/health", { key: user.key })).status, 200);
    assertEquals((await request("GET", "/v1/patterns", { key: user.key })).body.items.length, 1);
    assertEquals(
      (await request("POST", "/v1/patterns", { key: user.key, body: healthPattern("x") })).status,
      403,
    );
    assertEquals((await request("DELETE", "/v1/patterns/health", { key: user.key })).status, 403);
  });

  await t.step("PUT → version 2; the id in the body must match the path", async () => {
    const updated = { ...healthPattern(), description: "v2" };
    const res = await request("PUT", "/v1/patterns/health", { body: updated });
    assertEquals(res.status, 200);
    assertEquals([res.body.version, res.body.definition.version, res.body.definition.description], [
      2,
      2,
      "v2",
    ]);
    const { id: _id, ...withoutId } = updated;
    assertEquals(
      (await request("PUT", "/v1/patterns/health", { body: withoutId })).body.version,
      3,
    );
    const mismatch = await request("PUT", "/v1/patterns/health", { body: healthPattern("other") });
    assertEquals(mismatch.status, 422);
    assertEquals(mismatch.body.errors, [{
      path: "id",
      message: "must be health, the id in the path",
    }]);
    assertEquals(
      (await request("PUT", "/v1/patterns/nope", { body: healthPattern("nope") })).status,
      404,
    );
  });

  await t.step("delete → 204, then 404", async () => {
    assertEquals((await request("DELETE", "/v1/patterns/health")).status, 204);
    assertEquals((await request("GET", "/v1/patterns/health")).status, 404);
    assertEquals((await request("DELETE", "/v1/patterns/health")).status, 404);
  });
});

dbTest("patterns: an invalid definition is a 422 listing every problem", async (_t, db) => {
  const { request } = await testApp(db);
  const res = await request("POST", "/v1/patterns", {
    body: {
      id: "broken",
      inputs: { url: { type: "string" } },
      steps: [
        { capability: "http.nope", args: {}, as: "a" },
        {
          capability: "data.compare",
          args: { value: "{{b.x}}", op: ">", threshold: "{{inputs.limit}}" },
          as: "a",
        },
        { capability: "test.none", args: {}, as: "b" },
      ],
    },
  });
  assertEquals(res.status, 422);
  assertEquals(res.headers.get("content-type"), "application/problem+json");
  assertEquals(res.body.detail, "The pattern is not valid: 5 problem(s).");
  assertEquals(res.body.errors.map((e: { path: string }) => e.path), [
    "steps.1.as",
    "steps.0.capability",
    "steps.1.args.value",
    "steps.1.args.threshold",
    "steps.2.capability",
  ]);
  // Shape errors are listed the same way, before any semantic check.
  const shape = await request("POST", "/v1/patterns", {
    body: { id: "Bad Id", steps: [], extra: 1 },
  });
  assertEquals(shape.status, 422);
  assertEquals(shape.body.errors.map((e: { path: string }) => e.path).sort(), [
    "(root)",
    "id",
    "steps",
  ]);
});

dbTest("patterns: run, trace, history, access", async (t, db) => {
  const { request, newUser, clock } = await testApp(db);
  await using target = serveLocal((req) =>
    new Response("ok", { status: new URL(req.url).pathname === "/down" ? 503 : 200 })
  );
  assertEquals((await request("POST", "/v1/patterns", { body: healthPattern() })).status, 201);
  const ann = await newUser("ann@example.com");
  const bob = await newUser("bob@example.com");

  let runId = "";
  await t.step("a successful run answers outputs and a trace", async () => {
    const res = await request("POST", "/v1/patterns/health/run", {
      key: ann.key,
      body: { inputs: { url: `${target.url}/up` } },
    });
    assertEquals(res.status, 200);
    assertEquals(res.body.status, "success");
    assertEquals(res.body.pattern_id, "health");
    assertEquals(res.body.version, 1);
    assertEquals(res.body.outputs.up, true);
    assertEquals(res.body.outputs.status, 200);
    assertEquals(res.body.outputs.fast, true);
    assertEquals(res.body.outputs.note, "status 200");
    assertEquals(res.body.error, null);
    assertEquals(
      res.body.trace.map((s: { capability: string; agent: string }) => [s.capability, s.agent]),
      [
        ["http.check", "http"],
        ["data.compare", "data"],
      ],
    );
    assertMatch(res.body.trace_id, /^[0-9a-f]{32}$/);
    runId = res.body.run_id;
  });

  await t.step("the run is stored and can be read back by its owner", async () => {
    const res = await request("GET", `/v1/runs/${runId}`, { key: ann.key });
    assertEquals(res.status, 200);
    assertEquals(res.body.id, runId);
    assertEquals(res.body.user_id, ann.id);
    assertEquals(res.body.inputs, { url: `${target.url}/up`, budget_ms: 2000 });
    assertEquals(res.body.outputs.up, true);
    assertEquals(res.body.trace.length, 2);
    const [{ n }] = await db.sql`select count(*)::int as n from pattern_runs`;
    assertEquals(n, 1);
  });

  await t.step("another user cannot see it; an admin can", async () => {
    assertEquals((await request("GET", `/v1/runs/${runId}`, { key: bob.key })).status, 404);
    assertEquals((await request("GET", `/v1/runs/${runId}`)).status, 200);
  });

  await t.step("a down target is a result, not a failed run", async () => {
    clock.advance(1000);
    const res = await request("POST", "/v1/patterns/health/run", {
      key: ann.key,
      body: { inputs: { url: `${target.url}/down` } },
    });
    assertEquals(res.body.status, "success");
    assertEquals([res.body.outputs.up, res.body.outputs.status], [false, 503]);
  });

  await t.step("a failing step makes an error run that names it", async () => {
    clock.advance(1000);
    const res = await request("POST", "/v1/patterns/health/run", {
      key: ann.key,
      body: { inputs: { url: "http://169.254.169.254/latest" } },
    });
    assertEquals(res.status, 200);
    assertEquals(res.body.status, "error");
    assertEquals(
      res.body.error,
      'step 0 (http.check as "check") failed: refused 169.254.169.254: the cloud metadata address is never allowed',
    );
    assertEquals(res.body.outputs, null);
  });

  await t.step("bad inputs → 422 naming each; unknown pattern → 404", async () => {
    const res = await request("POST", "/v1/patterns/health/run", {
      key: ann.key,
      body: { inputs: { budget_ms: "soon", other: 1 } },
    });
    assertEquals(res.status, 422);
    assertEquals(res.body.errors.map((e: { path: string }) => e.path).sort(), [
      "inputs",
      "inputs.budget_ms",
      "inputs.url",
    ]);
    assertEquals(
      (await request("POST", "/v1/patterns/nope/run", { key: ann.key, body: {} })).status,
      404,
    );
  });

  await t.step("history: own runs, filters, keyset pages", async () => {
    const mine = await request("GET", "/v1/runs", { key: ann.key });
    assertEquals(mine.body.items.length, 3);
    assertEquals(mine.body.items.map((r: { status: string }) => r.status), [
      "error",
      "success",
      "success",
    ]);
    const errors = await request("GET", "/v1/runs?status=error", { key: ann.key });
    assertEquals(errors.body.items.length, 1);
    assertEquals(
      (await request("GET", "/v1/runs?pattern_id=other", { key: ann.key })).body.items.length,
      0,
    );
    assertEquals((await request("GET", "/v1/runs", { key: bob.key })).body.items.length, 0);
    const first = await request("GET", "/v1/runs?limit=2", { key: ann.key });
    const second = await request("GET", `/v1/runs?limit=2&cursor=${first.body.next_cursor}`, {
      key: ann.key,
    });
    assertEquals(second.body.items.length, 1);
    assertEquals(second.body.next_cursor, null);
    const ids = [...first.body.items, ...second.body.items].map((r: { id: string }) => r.id);
    assertEquals(new Set(ids).size, 3);
    assertEquals((await request("GET", "/v1/runs?status=bogus", { key: ann.key })).status, 422);
  });

  await t.step("runs older than the retention are pruned by the job", async () => {
    const job = pruneRunsJob(db.sql, 7);
    assertEquals(await job.run(clock.now()), { deleted: 0 });
    // Runs started at t, t+1 s and t+2 s; the clock is at t+2 s. Move it to t+7 days+1.5 s:
    // the first two are now older than 7 days, the last one not yet.
    clock.advance(7 * 24 * HOUR - 500);
    assertEquals(await job.run(clock.now()), { deleted: 2 });
    const [{ n }] = await db.sql`select count(*)::int as n from pattern_runs`;
    assertEquals(n, 1);
  });
});

dbTest("patterns: the example patterns load at start-up, once", async (_t, db) => {
  const services = await testApp(db);
  const deps = { ...services, logger: services.logger };
  const dir = new URL("../../patterns", import.meta.url).pathname;
  assertEquals((await loadExamplePatterns(dir, deps)).sort(), [
    "prometheus-threshold",
    "service-health",
  ]);
  assertEquals(await loadExamplePatterns(dir, deps), [], "nothing changes the second time");

  // An admin's edit (a higher version) is kept; a newer file replaces an older row.
  const res = await services.request("GET", "/v1/patterns/service-health");
  assertEquals(res.body.version, 1);
  const tmp = await Deno.makeTempDir();
  try {
    const file = JSON.parse(await Deno.readTextFile(`${dir}/service-health.json`));
    await Deno.writeTextFile(
      `${tmp}/a.json`,
      JSON.stringify({ ...file, version: 2, description: "new" }),
    );
    await Deno.writeTextFile(
      `${tmp}/b.json`,
      JSON.stringify({ id: "bad", steps: [{ capability: "x.y", as: "a" }] }),
    );
    assertEquals(await loadExamplePatterns(tmp, deps), ["service-health"]);
    const after = await services.request("GET", "/v1/patterns/service-health");
    assertEquals([after.body.version, after.body.definition.description], [2, "new"]);
    assertEquals(
      (await services.request("GET", "/v1/patterns/bad")).status,
      404,
      "invalid files are skipped",
    );
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

dbTest("patterns: the service-health example works end to end", async (_t, db) => {
  const services = await testApp(db);
  await loadExamplePatterns(new URL("../../patterns", import.meta.url).pathname, services);
  await using target = serveLocal(() => new Response("fine"));
  const res = await services.request("POST", "/v1/patterns/service-health/run", {
    body: { inputs: { url: target.url } },
  });
  assertEquals(res.body.status, "success");
  assertEquals(res.body.outputs.up, true);
  assert(typeof res.body.outputs.latency_ms === "number");
});

dbTest(
  "patterns: runs see an update at once on its replica, and within 2 s on others",
  async (_t, db) => {
    const a = await testApp(db);
    const b = await testApp(db, { clock: a.clock, adminEmail: "admin-b@example.com" });
    const def = {
      id: "versioned",
      steps: [{ capability: "data.compare", args: { value: 1, op: "==", threshold: 1 }, as: "x" }],
    };
    assertEquals((await a.request("POST", "/v1/patterns", { body: def })).status, 201);
    const version = async (app: typeof a) =>
      (await app.request("POST", "/v1/patterns/versioned/run", { body: {} })).body.version;
    assertEquals([await version(a), await version(b)], [1, 1]);
    assertEquals((await a.request("PUT", "/v1/patterns/versioned", { body: def })).body.version, 2);
    assertEquals(await version(a), 2, "the replica that updated runs the new version at once");
    assertEquals(await version(b), 1, "another replica may run its cached copy…");
    a.clock.advance(2000);
    assertEquals(await version(b), 2, "…for at most DEFINITION_CACHE_MS");
    assertEquals((await a.request("DELETE", "/v1/patterns/versioned")).status, 204);
    assertEquals((await a.request("POST", "/v1/patterns/versioned/run", { body: {} })).status, 404);
  },
);
