import { assert, assertEquals, assertMatch } from "../../tests/support/assert.ts";
import { testApp } from "../../tests/support/app.ts";
import { dbTest } from "../../tests/support/database.ts";
import { SECOND } from "../../tests/support/clock.ts";

const PROBLEM = "application/problem+json";

dbTest("auth: missing, malformed, unknown and revoked keys are 401 problems", async (t, db) => {
  const { request, newUser } = await testApp(db);

  await t.step("no key", async () => {
    const res = await request("GET", "/v1/me", { key: null });
    assertEquals(res.status, 401);
    assertEquals(res.headers.get("content-type"), PROBLEM);
    assertEquals(res.headers.get("www-authenticate"), 'Bearer realm="vigil"');
    assertEquals(res.body.title, "Unauthorized");
    assertEquals(res.body.type, "urn:vigil:problem:unauthorized");
    assertMatch(res.body.detail, /Authorization: Bearer/);
  });

  await t.step("not a bearer header", async () => {
    const res = await request("GET", "/v1/me", {
      key: null,
      headers: { authorization: "Basic eA==" },
    });
    assertEquals(res.status, 401);
  });

  await t.step("unknown key", async () => {
    const res = await request("GET", "/v1/me", { key: "vgl_" + "x".repeat(43) });
    assertEquals(res.status, 401);
    assertEquals(res.body.detail, "The API key is not valid.");
  });

  await t.step("revoked key", async () => {
    const ann = await newUser("ann@example.com");
    const me = await request("GET", "/v1/me", { key: ann.key });
    assertEquals(me.status, 200);
    const revoked = await request("DELETE", `/v1/api-keys/${me.body.api_key.id}`, { key: ann.key });
    assertEquals(revoked.status, 204);
    const after = await request("GET", "/v1/me", { key: ann.key });
    assertEquals(after.status, 401);
    assertEquals(after.body.detail, "The API key has been revoked.");
  });
});

dbTest("auth: a user key on an admin route is 403", async (_t, db) => {
  const { request, newUser } = await testApp(db);
  const bob = await newUser("bob@example.com");
  const res = await request("GET", "/v1/users", { key: bob.key });
  assertEquals(res.status, 403);
  assertEquals(res.headers.get("content-type"), PROBLEM);
  assertEquals(res.body.detail, "This needs an API key with the admin role.");
  const create = await request("POST", "/v1/users", {
    key: bob.key,
    body: { email: "eve@example.com", name: "Eve" },
  });
  assertEquals(create.status, 403);
});

dbTest(
  "auth: lookups are cached, and a revocation elsewhere is seen after the cache lifetime",
  async (_t, db) => {
    const { request, newUser, clock } = await testApp(db, { env: { AUTH_CACHE_SECONDS: "10" } });
    const cara = await newUser("cara@example.com");
    assertEquals((await request("GET", "/v1/me", { key: cara.key })).status, 200);
    // Another replica revokes the key directly in the database.
    await db.sql`update api_keys set revoked_at = now() where user_id = ${cara.id}`;
    assertEquals((await request("GET", "/v1/me", { key: cara.key })).status, 200);
    clock.advance(11 * SECOND);
    assertEquals((await request("GET", "/v1/me", { key: cara.key })).status, 401);
  },
);

dbTest("users: create, read back, list with pagination", async (t, db) => {
  const { request, clock } = await testApp(db);

  let created: { user: { id: string }; api_key: { key: string; role: string } } | undefined;
  await t.step("admin creates a user and gets its first key once", async () => {
    clock.advance(SECOND);
    const res = await request("POST", "/v1/users", {
      body: { email: "dan@example.com", name: "Dan" },
    });
    assertEquals(res.status, 201);
    assertEquals(res.body.user.email, "dan@example.com");
    assertMatch(res.body.api_key.key, /^vgl_[A-Za-z0-9_-]{43}$/);
    assertEquals(res.body.api_key.role, "user");
    created = res.body;
    const stored = await db.sql`select key_hash from api_keys where id = ${res.body.api_key.id}`;
    assert(!stored[0].key_hash.includes(res.body.api_key.key), "the secret is not stored");
  });

  await t.step("the new key works and /v1/me says who it is", async () => {
    const res = await request("GET", "/v1/me", { key: created!.api_key.key });
    assertEquals(res.status, 200);
    assertEquals(res.body.user, { id: created!.user.id, email: "dan@example.com", name: "Dan" });
    assertEquals(res.body.api_key.role, "user");
  });

  await t.step("duplicate email (any case) is 409", async () => {
    const res = await request("POST", "/v1/users", {
      body: { email: "DAN@example.com", name: "Dan again" },
    });
    assertEquals(res.status, 409);
    assertEquals(res.headers.get("content-type"), PROBLEM);
  });

  await t.step("pages never repeat or skip", async () => {
    for (let i = 0; i < 5; i++) {
      clock.advance(SECOND);
      const res = await request("POST", "/v1/users", {
        body: { email: `u${i}@example.com`, name: `U${i}` },
      });
      assertEquals(res.status, 201);
    }
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const query: string = cursor ? `?limit=3&cursor=${cursor}` : "?limit=3";
      const res = await request("GET", `/v1/users${query}`);
      assertEquals(res.status, 200);
      assert(res.body.items.length <= 3);
      seen.push(...res.body.items.map((u: { email: string }) => u.email));
      cursor = res.body.next_cursor;
    } while (cursor);
    assertEquals(seen, [
      "u4@example.com",
      "u3@example.com",
      "u2@example.com",
      "u1@example.com",
      "u0@example.com",
      "dan@example.com",
      "admin@example.com",
    ]);
  });

  await t.step("a forged cursor is a 400 naming the parameter", async () => {
    const res = await request("GET", "/v1/users?cursor=garbage");
    assertEquals(res.status, 400);
    assertEquals(res.body.errors, [{
      path: "query.cursor",
      message: "is not a cursor from this API",
    }]);
  });
});

dbTest("users: validation lists every problem; malformed JSON is 400", async (t, db) => {
  const { request } = await testApp(db);

  await t.step("wrong fields → 422 with one entry per issue", async () => {
    const res = await request("POST", "/v1/users", {
      body: { email: "not-an-email", name: "", role: "root", extra: 1 },
    });
    assertEquals(res.status, 422);
    assertEquals(res.headers.get("content-type"), PROBLEM);
    assertEquals(res.body.title, "Validation Failed");
    const paths = res.body.errors.map((e: { path: string }) => e.path).sort();
    assertEquals(paths, ["(root)", "email", "name", "role"]);
    assertEquals(
      res.body.errors.find((e: { path: string }) => e.path === "email").message,
      "must be an email address",
    );
  });

  await t.step("malformed JSON → 400", async () => {
    const res = await request("POST", "/v1/users", { body: '{"email": "x@example.com",' });
    assertEquals(res.status, 400);
    assertEquals(res.headers.get("content-type"), PROBLEM);
    assertEquals(res.body.detail, "Malformed JSON in request body");
  });

  await t.step("not JSON at all → 415", async () => {
    const res = await request("POST", "/v1/users", {
      body: "email=x",
      headers: { "content-type": "application/x-www-form-urlencoded" },
    });
    assertEquals(res.status, 415);
    assertEquals(
      res.body.detail,
      "This endpoint takes a JSON body: send Content-Type: application/json " +
        "(got application/x-www-form-urlencoded).",
    );
  });

  await t.step("a query parameter out of range → 422 naming it", async () => {
    const res = await request("GET", "/v1/users?limit=0");
    assertEquals(res.status, 422);
    assertEquals(res.body.errors[0].path, "query.limit");
  });

  await t.step("a path parameter that is not a UUID → 422", async () => {
    const res = await request("DELETE", "/v1/api-keys/nope");
    assertEquals(res.status, 422);
    assertEquals(res.body.errors, [{ path: "path.id", message: "must be a UUID" }]);
  });
});

dbTest("api keys: create, list, revoke own; only admins revoke others'", async (_t, db) => {
  const { request, newUser, adminKey } = await testApp(db);
  const eve = await newUser("eve@example.com");
  const fay = await newUser("fay@example.com");

  const second = await request("POST", "/v1/api-keys", { key: eve.key, body: { label: "ci" } });
  assertEquals(second.status, 201);
  assertEquals(second.body.role, "user");
  assertEquals(second.body.label, "ci");

  const noBody = await request("POST", "/v1/api-keys", { key: eve.key });
  assertEquals(noBody.status, 201);
  assertEquals(noBody.body.label, null);

  const list = await request("GET", "/v1/api-keys", { key: eve.key });
  assertEquals(list.status, 200);
  assertEquals(list.body.items.length, 3);
  assert(list.body.items.every((k: Record<string, unknown>) => !("key" in k)), "no secrets listed");

  // Fay cannot revoke Eve's key, and cannot even learn that it exists.
  const foreign = await request("DELETE", `/v1/api-keys/${second.body.id}`, { key: fay.key });
  assertEquals(foreign.status, 404);
  assertEquals((await request("GET", "/v1/me", { key: second.body.key })).status, 200);

  const byAdmin = await request("DELETE", `/v1/api-keys/${second.body.id}`, { key: adminKey });
  assertEquals(byAdmin.status, 204);
  assertEquals((await request("GET", "/v1/me", { key: second.body.key })).status, 401);
  assertEquals((await request("GET", "/v1/me", { key: eve.key })).status, 200);
});

dbTest("api keys: an admin gives a key to a user that has none (or lost it)", async (_t, db) => {
  const app = await testApp(db);
  // Alertmanager recipients are created without a key (bootstrap.ts); here, one by SQL.
  const [user] = await db.sql`
    insert into users (email, name, created_at) values ('oncall@example.com', 'On call', now())
    returning id`;
  const given = await app.request("POST", `/v1/users/${user.id}/api-keys`);
  assertEquals(given.status, 201);
  assertEquals([given.body.role, given.body.user_id], ["user", user.id]);
  assertEquals(given.headers.get("cache-control"), "no-store");
  const me = await app.request("GET", "/v1/me", { key: given.body.key });
  assertEquals([me.status, me.body.user.email], [200, "oncall@example.com"]);

  const labelled = await app.request("POST", `/v1/users/${user.id}/api-keys`, {
    body: { role: "admin", label: "pager" },
  });
  assertEquals([labelled.status, labelled.body.role, labelled.body.label], [201, "admin", "pager"]);
  const missing = await app.request(
    "POST",
    "/v1/users/00000000-0000-4000-8000-000000000000/api-keys",
  );
  assertEquals(missing.status, 404);
  const bad = await app.request("POST", `/v1/users/${user.id}/api-keys`, {
    body: { role: "root" },
  });
  assertEquals(bad.status, 422);
  const asUser = await app.request("POST", `/v1/users/${user.id}/api-keys`, {
    key: given.body.key,
  });
  assertEquals(asUser.status, 403);
});
