/** vigil as a process: configuration errors, start-up races, persistence, graceful stop. */
import { assert, assertEquals } from "./support/assert.ts";
import { dbTest, type TestDatabase } from "./support/database.ts";
import { spawnVigil, startVigil } from "./support/process.ts";
import { serveLocal } from "./support/servers.ts";
import { listMigrations } from "../src/db/migrate.ts";

Deno.test("start-up: a bad value stops vigil with one line and exit code 1", async () => {
  const { child, stderr, stdoutDone } = spawnVigil({ PORT: "eighty", LOG_LEVEL: "info" });
  const status = await child.status;
  await stdoutDone;
  assertEquals(status.code, 1);
  const text = stderr().trim();
  assertEquals(text, 'vigil: invalid configuration: PORT must be a number (got "eighty")');
});

dbTest(
  "start-up: two processes on one empty database both come up; each migration runs once",
  async (_t, db) => {
    const env = { DATABASE_URL: db.url };
    const [a, b] = await Promise.all([startVigil(env), startVigil(env)]);
    await using _a = a;
    await using _b = b;
    for (const p of [a, b]) {
      const res = await fetch(`${p.url}/health/ready`);
      assertEquals(res.status, 200);
      await res.body?.cancel();
    }
    const files = await listMigrations();
    const rows = await db.sql<{ name: string }[]>`select name from schema_migrations order by name`;
    assertEquals(rows.map((r) => r.name), files);
    const applied = [...a.logs, ...b.logs]
      .filter((l) => typeof l.msg === "string" && l.msg.startsWith("applied migration"))
      .map((l) => l.name as string)
      .sort();
    assertEquals(applied, files);
    assertEquals(await a.stop(), 0);
    assertEquals(await b.stop(), 0);
  },
  { empty: true, realPostgresOnly: true },
);

Deno.test({
  name: "start-up: the embedded database keeps its data across restarts",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const dataDir = await Deno.makeTempDir({ prefix: "vigil-embedded-" });
    try {
      const env = { VIGIL_ENV: "development", DATA_DIR: dataDir };
      let key: string;
      {
        await using first = await startVigil(env);
        const created = await first.waitForLog((l) => l.api_key !== undefined);
        key = created.api_key as string;
        const res = await fetch(`${first.url}/v1/users`, {
          method: "POST",
          headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
          body: JSON.stringify({ email: "kept@example.com", name: "Kept" }),
        });
        assertEquals(res.status, 201);
        await res.body?.cancel();
        assertEquals(await first.stop("SIGINT"), 0);
      }
      {
        await using second = await startVigil(env);
        const ready = await fetch(`${second.url}/health/ready`);
        assertEquals(ready.status, 200);
        await ready.body?.cancel();
        const res = await fetch(`${second.url}/v1/users`, {
          headers: { authorization: `Bearer ${key}` },
        });
        assertEquals(res.status, 200);
        const body = await res.json();
        assert(body.items.some((u: { email: string }) => u.email === "kept@example.com"));
        assert(!second.logs.some((l) => l.api_key !== undefined), "the admin key is printed once");
        assertEquals(await second.stop("SIGTERM"), 0);
      }
    } finally {
      await Deno.remove(dataDir, { recursive: true });
    }
  },
});

/** A target that answers only when released; `requestArrived` resolves at its first request. */
function heldTarget(answer: string) {
  let arrived!: () => void;
  const requestArrived = new Promise<void>((resolve) => (arrived = resolve));
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  const target = serveLocal(async () => {
    arrived();
    await released;
    return new Response(answer);
  });
  return {
    target,
    requestArrived,
    release,
    [Symbol.asyncDispose]: async () => {
      release();
      await target.close();
    },
  };
}

/** The test's database for a vigil process; on the embedded fallback (one connection), its own. */
async function databaseFor(db: TestDatabase) {
  const dataDir = db.kind === "embedded" ? await Deno.makeTempDir() : undefined;
  const database: Record<string, string> = dataDir
    ? { DATA_DIR: dataDir }
    : { DATABASE_URL: db.url };
  return { dataDir, database };
}

dbTest("shutdown: SIGTERM lets an in-flight request finish, then exits 0", async (_t, db) => {
  const adminKey = "vgl_" + "k".repeat(40);
  // The check is held open until the test has sent SIGTERM.
  await using slow = heldTarget("late but fine");
  const { target, requestArrived, release } = slow;
  const { dataDir, database } = await databaseFor(db);
  await using vigil = await startVigil({ ...database, ADMIN_API_KEY: adminKey });
  const headers = { authorization: `Bearer ${adminKey}`, "content-type": "application/json" };
  const created = await fetch(`${vigil.url}/v1/patterns`, {
    method: "POST",
    headers,
    body: JSON.stringify({
      id: "slow",
      inputs: { url: { type: "string" } },
      steps: [{
        capability: "http.check",
        args: { url: "{{inputs.url}}", timeout_ms: 30000 },
        as: "c",
      }],
      outputs: { up: "{{c.ok}}" },
    }),
  });
  assertEquals(created.status, 201);
  await created.body?.cancel();

  const inFlight = fetch(`${vigil.url}/v1/patterns/slow/run`, {
    method: "POST",
    headers,
    body: JSON.stringify({ inputs: { url: target.url } }),
  });
  await requestArrived;
  const exitCode = vigil.stop("SIGTERM");
  await vigil.waitForLog((l) => l.msg === "stopping on SIGTERM");
  release();
  const res = await inFlight;
  assertEquals(res.status, 200);
  assertEquals((await res.json()).outputs, { up: true });
  assertEquals(await exitCode, 0);
  assert(vigil.logs.some((l) => l.msg === "stopped"));
  if (dataDir) await Deno.remove(dataDir, { recursive: true });
});

dbTest(
  "shutdown: past SHUTDOWN_TIMEOUT_MS vigil exits 1, and says so in its last log line",
  async (_t, db) => {
    const adminKey = "vgl_" + "d".repeat(40);
    // Never answers before vigil gives up.
    await using slow = heldTarget("too late");
    const { target, requestArrived, release } = slow;
    const { dataDir, database } = await databaseFor(db);
    await using vigil = await startVigil({
      ...database,
      ADMIN_API_KEY: adminKey,
      SHUTDOWN_TIMEOUT_MS: "1000",
    });
    const headers = { authorization: `Bearer ${adminKey}`, "content-type": "application/json" };
    const hanging = fetch(`${vigil.url}/v1/patterns/service-health/run`, {
      method: "POST",
      headers,
      body: JSON.stringify({ inputs: { url: target.url, max_latency_ms: 100 } }),
    }).then((r) => r.body?.cancel(), () => {});
    await requestArrived;
    assertEquals(await vigil.stop("SIGTERM"), 1);
    const last = vigil.logs.at(-1)!;
    assertEquals([last.level, last.msg], ["error", "shutdown took longer than 1000 ms; exiting"]);
    release();
    await hanging;
    if (dataDir) await Deno.remove(dataDir, { recursive: true });
  },
);

Deno.test({
  name: "start-up: a busy port stops vigil first — one line naming it, nothing created or printed",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const dataDir = `${await Deno.makeTempDir({ prefix: "vigil-busy-" })}/data`;
    const taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (taken.addr as Deno.NetAddr).port;
    try {
      const { child, stderr, stdoutDone, lines } = spawnVigil({
        VIGIL_ENV: "development",
        DATA_DIR: dataDir,
        PORT: String(port),
      });
      assertEquals((await child.status).code, 1);
      await stdoutDone;
      assertEquals(
        stderr().trim(),
        `vigil: 127.0.0.1:${port} is already in use (another vigil?); start with another port, ` +
          `e.g. PORT=${port + 1}`,
      );
      assert(!lines.some((l) => l.api_key !== undefined), "no admin key printed, none to lose");
      assert(!(await exists(dataDir)), "no database, no key file created");
    } finally {
      taken.close();
    }
  },
});

Deno.test("start-up: an unreachable DATABASE_URL is named, and never called connected", async () => {
  const taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (taken.addr as Deno.NetAddr).port;
  taken.close(); // nothing listens there now
  const { child, stderr, stdoutDone, lines } = spawnVigil({
    DATABASE_URL: `postgres://vigil:secret-pw@127.0.0.1:${port}/vigil`,
    DB_TIMEOUT_MS: "1000",
  });
  assertEquals((await child.status).code, 1);
  await stdoutDone;
  const text = stderr().trim();
  assert(
    text.startsWith(`vigil: cannot reach the database at 127.0.0.1:${port}/vigil: `),
    text,
  );
  assert(!text.includes("secret-pw"), "the password is never printed");
  assert(!lines.some((l) => String(l.msg).startsWith("database connected")));
});

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}
