/**
 * Silences end to end on PostgreSQL: create, read, list, expire; owner scoping; validation that
 * lists every problem (unsafe regexes included); states as the clock moves; the per-user cap;
 * and `activeSilences`, which the evaluator calls.
 */
import { activeSilences, insertSilenceCapped } from "../src/silences/store.ts";
import { matchingSilence, type MatchTarget } from "../src/silences/matchers.ts";
import { assert, assertEquals, assertMatch } from "./support/assert.ts";
import { type Json, testApp } from "./support/app.ts";
import { HOUR, MINUTE } from "./support/clock.ts";
import { dbTest } from "./support/database.ts";

const DAY = 24 * HOUR;
const service = (value: string) => ({ name: "service", op: "=" as const, value });
const at = (clock: { now(): Date }, ms: number) =>
  new Date(clock.now().getTime() + ms).toISOString();
const paths = (body: Json) => (body.errors as { path: string }[]).map((e) => e.path).sort();

dbTest("silences: create, read, list, expire — owners see their own, admins all", async (t, db) => {
  const app = await testApp(db);
  const { request, clock } = app;
  const ann = await app.newUser("ann@example.com");
  const bob = await app.newUser("bob@example.com");
  const t0 = clock.now();

  let active = "";
  let pending = "";
  await t.step("create: starts now by default, or later (pending)", async () => {
    const res = await request("POST", "/v1/silences", {
      key: ann.key,
      body: { matchers: [service("checkout")], ends_at: at(clock, 2 * HOUR), comment: "deploy" },
    });
    assertEquals(res.status, 201);
    const s = res.body;
    assertEquals(
      [s.user_id, s.created_by, s.state, s.starts_at, s.ends_at, s.created_at, s.comment],
      [
        ann.id,
        ann.id,
        "active",
        t0.toISOString(),
        at(clock, 2 * HOUR),
        t0.toISOString(),
        "deploy",
      ],
    );
    assertEquals(s.matchers, [service("checkout")]);
    assertEquals(
      Object.keys(s).sort(),
      [
        "comment",
        "created_at",
        "created_by",
        "ends_at",
        "id",
        "matchers",
        "starts_at",
        "state",
        "user_id",
      ],
    );
    active = s.id;
    clock.advance(MINUTE); // newest first needs distinct creation times

    const later = await request("POST", "/v1/silences", {
      key: ann.key,
      body: {
        matchers: [{ name: "env", op: "=~", value: "prod|staging" }],
        starts_at: at(clock, HOUR),
        ends_at: at(clock, 3 * HOUR),
        comment: "maintenance window",
      },
    });
    assertEquals([later.status, later.body.state], [201, "pending"]);
    pending = later.body.id;
  });

  await t.step("a start in the past means now (as in Alertmanager)", async () => {
    const res = await request("POST", "/v1/silences", {
      key: bob.key,
      body: {
        matchers: [service("search")],
        starts_at: at(clock, -DAY),
        ends_at: at(clock, HOUR),
        comment: "bob's",
      },
    });
    assertEquals([res.status, res.body.starts_at, res.body.state], [
      201,
      clock.now().toISOString(),
      "active",
    ]);
  });

  await t.step("read: the owner and admins; others get 404", async () => {
    assertEquals((await request("GET", `/v1/silences/${active}`, { key: ann.key })).status, 200);
    const other = await request("GET", `/v1/silences/${active}`, { key: bob.key });
    assertEquals(other.status, 404);
    assertEquals(other.headers.get("content-type"), "application/problem+json");
    const admin = await request("GET", `/v1/silences/${active}`);
    assertEquals([admin.status, admin.body.user_id], [200, ann.id]);
    const none = await request("GET", "/v1/silences/00000000-0000-4000-8000-000000000000");
    assertEquals(none.status, 404);
    assertEquals((await request("GET", "/v1/silences/nope")).status, 422);
  });

  await t.step("list: own, newest first, filtered by state at the clock's now", async () => {
    const mine = await request("GET", "/v1/silences", { key: ann.key });
    assertEquals(mine.status, 200);
    assertEquals(mine.body.items.map((s: Json) => s.id), [pending, active]);
    assertEquals(mine.body.next_cursor, null);
    const only = async (state: string, key = ann.key) =>
      (await request("GET", `/v1/silences?state=${state}`, { key })).body.items.map((
        s: Json,
      ) => s.id);
    assertEquals(await only("active"), [active]);
    assertEquals(await only("pending"), [pending]);
    assertEquals(await only("expired"), []);
    assertEquals((await request("GET", "/v1/silences?state=soon", { key: ann.key })).status, 422);

    const bobs = await request("GET", "/v1/silences", { key: bob.key });
    assertEquals(bobs.body.items.length, 1);
    assertEquals(
      (await request("GET", `/v1/silences?user_id=${ann.id}`, { key: bob.key })).status,
      403,
    );
    const all = await request("GET", "/v1/silences");
    assertEquals(all.body.items.length, 3);
    const annsForAdmin = await request("GET", `/v1/silences?user_id=${ann.id}`);
    assertEquals(annsForAdmin.body.items.map((s: Json) => s.id), [pending, active]);
  });

  await t.step("list: keyset pages visit every silence once", async () => {
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const q: string = cursor ? `&cursor=${cursor}` : "";
      const res: Json = await request("GET", `/v1/silences?limit=1${q}`);
      assertEquals(res.status, 200);
      seen.push(...res.body.items.map((s: Json) => s.id));
      cursor = res.body.next_cursor;
    } while (cursor);
    assertEquals(seen.length, 3);
    assertEquals(new Set(seen).size, 3);
    assertEquals((await request("GET", "/v1/silences?cursor=junk")).status, 400);
  });

  await t.step("states follow the clock: pending → active → expired", async () => {
    clock.advance(90 * MINUTE);
    const s = async (id: string) =>
      (await request("GET", `/v1/silences/${id}`, { key: ann.key })).body.state;
    assertEquals([await s(active), await s(pending)], ["active", "active"]);
    clock.advance(31 * MINUTE); // 2 h 2 min after t0: the first one is over
    assertEquals([await s(active), await s(pending)], ["expired", "active"]);
  });

  await t.step("expire: others get 404; an expired silence is a 409", async () => {
    assertEquals(
      (await request("DELETE", `/v1/silences/${pending}`, { key: bob.key })).status,
      404,
    );
    const again = await request("DELETE", `/v1/silences/${active}`, { key: ann.key });
    assertEquals(again.status, 409);
    assertMatch(again.body.detail, /already expired/);
  });

  await t.step("expire an active silence: it ends now and stays, expired", async () => {
    const res = await request("DELETE", `/v1/silences/${pending}`, { key: ann.key });
    assertEquals(res.status, 204);
    const after = await request("GET", `/v1/silences/${pending}`, { key: ann.key });
    assertEquals([after.body.state, after.body.ends_at], ["expired", clock.now().toISOString()]);
  });

  await t.step("expire a pending silence: it is deleted; admins expire anyone's", async () => {
    const res = await request("POST", "/v1/silences", {
      key: ann.key,
      body: {
        matchers: [service("cart")],
        starts_at: at(clock, DAY),
        ends_at: at(clock, 2 * DAY),
        comment: "tomorrow",
      },
    });
    assertEquals(res.body.state, "pending");
    assertEquals((await request("DELETE", `/v1/silences/${res.body.id}`)).status, 204);
    assertEquals((await request("GET", `/v1/silences/${res.body.id}`)).status, 404);
    const none = await request("DELETE", "/v1/silences/00000000-0000-4000-8000-000000000000");
    assertEquals(none.status, 404);
  });

  await t.step("admins create for another user; users cannot", async () => {
    const body = { matchers: [service("x")], ends_at: at(clock, HOUR), comment: "for ann" };
    const res = await request("POST", "/v1/silences", { body: { ...body, user_id: ann.id } });
    assertEquals([res.status, res.body.user_id, res.body.created_by], [201, ann.id, app.adminId]);
    const forbidden = await request("POST", "/v1/silences", {
      key: bob.key,
      body: { ...body, user_id: ann.id },
    });
    assertEquals(forbidden.status, 403);
    const own = await request("POST", "/v1/silences", {
      key: bob.key,
      body: { ...body, user_id: bob.id },
    });
    assertEquals([own.status, own.body.user_id], [201, bob.id]);
    const ghost = await request("POST", "/v1/silences", {
      body: { ...body, user_id: "00000000-0000-4000-8000-000000000000" },
    });
    assertEquals([ghost.status, paths(ghost.body)], [422, ["user_id"]]);
  });
});

dbTest("silences: validation lists every problem; unsafe regexes are a 422", async (t, db) => {
  const app = await testApp(db);
  const { request, clock } = app;
  const post = (body: unknown) => request("POST", "/v1/silences", { body });

  await t.step("every problem of a request at once", async () => {
    const res = await post({
      matchers: [
        { name: "1service", op: "==", value: "x" },
        { name: "service", op: "=~", value: "(a+)+$" },
        { name: "alert_id", op: "=", value: "not-an-id" },
      ],
      ends_at: at(clock, -MINUTE),
      comment: "   ",
      colour: "red",
    });
    assertEquals(res.status, 422);
    assertEquals(res.headers.get("content-type"), "application/problem+json");
    assertEquals(res.body.type, "urn:vigil:problem:validation-failed");
    assertEquals(paths(res.body), [
      "(root)",
      "comment",
      "ends_at",
      "matchers.0.name",
      "matchers.0.op",
      "matchers.1.value",
      "matchers.2.value",
    ]);
    const byPath = Object.fromEntries(
      res.body.errors.map((e: Json) => [e.path, e.message]),
    );
    assertMatch(byPath["matchers.1.value"], /backtrack/);
    assertMatch(byPath["ends_at"], /in the future/);
  });

  await t.step("unsafe or invalid regexes, each with its reason", async () => {
    for (
      const [value, reason] of [
        ["(a|a)*b", /several ways/],
        [".*a.*b.*c", /too many variable repetitions/],
        ["(x+x+)+y", /backtrack catastrophically/],
        ["(a)\\1", /back-reference/],
        ["[z-a]", /not a valid regular expression/],
        ["a".repeat(257), /256/],
      ] as const
    ) {
      const res = await post({
        matchers: [{ name: "service", op: "!~", value }, service("x")],
        ends_at: at(clock, HOUR),
        comment: "c",
      });
      assertEquals([res.status, paths(res.body)], [422, ["matchers.0.value"]], value);
      assertMatch(res.body.errors[0].message, reason);
    }
  });

  await t.step("matcher count, and a silence cannot match every alert", async () => {
    const body = (matchers: unknown) => ({ matchers, ends_at: at(clock, HOUR), comment: "c" });
    const none = await post(body([]));
    assertEquals([none.status, paths(none.body)], [422, ["matchers"]]);
    const many = await post(body(Array.from({ length: 21 }, (_, i) => service(`s${i}`))));
    assertEquals([many.status, paths(many.body)], [422, ["matchers"]]);
    assertEquals((await post(body(Array.from({ length: 20 }, () => service("s"))))).status, 201);
    for (
      const broad of [
        [{ name: "service", op: "=~", value: ".*" }],
        [{ name: "service", op: "!=", value: "x" }, { name: "team", op: "=", value: "" }],
      ]
    ) {
      const res = await post(body(broad));
      assertEquals([res.status, paths(res.body)], [422, ["matchers"]]);
      assertMatch(res.body.errors[0].message, /must not match the empty string/);
    }
  });

  await t.step("time rules: after the start, in the future, at most 365 days", async () => {
    const post2 = (starts: number | undefined, ends: number) =>
      post({
        matchers: [service("x")],
        ...(starts === undefined ? {} : { starts_at: at(clock, starts) }),
        ends_at: at(clock, ends),
        comment: "c",
      });
    const before = await post2(2 * HOUR, HOUR);
    assertEquals([before.status, before.body.errors[0].message], [422, "must be after starts_at"]);
    const same = await post2(HOUR, HOUR);
    assertEquals(same.status, 422);
    const long = await post2(undefined, 365 * DAY + 1);
    assertEquals([long.status, paths(long.body)], [422, ["ends_at"]]);
    assertMatch(long.body.errors[0].message, /365 days/);
    assertEquals((await post2(undefined, 365 * DAY)).status, 201);
    assertEquals((await post2(DAY, 366 * DAY)).status, 201);
    const bad = await post({ matchers: [service("x")], ends_at: "tomorrow", comment: "c" });
    assertEquals([bad.status, paths(bad.body)], [422, ["ends_at"]]);
    const noOffset = await post({
      matchers: [service("x")],
      ends_at: "2026-01-01T05:00:00+02:00",
      comment: "c",
    });
    assertEquals([noOffset.status, noOffset.body.ends_at], [201, "2026-01-01T03:00:00.000Z"]);
  });

  await t.step("comment and body shape", async () => {
    const long = await post({
      matchers: [service("x")],
      ends_at: at(clock, HOUR),
      comment: "c".repeat(1001),
    });
    assertEquals([long.status, paths(long.body)], [422, ["comment"]]);
    const missing = await post({});
    assertEquals([missing.status, paths(missing.body)], [422, ["comment", "ends_at", "matchers"]]);
    const notJson = await request("POST", "/v1/silences", { body: "{" });
    assertEquals(notJson.status, 400);
  });
});

dbTest(
  "silences: at most 1000 unexpired per user (409 beyond); expired ones do not count",
  async (_t, db) => {
    const app = await testApp(db);
    const { request, clock } = app;
    const ann = await app.newUser("ann@example.com");
    const now = clock.now();
    await db.sql`
    insert into silences (id, user_id, matchers, starts_at, ends_at, comment, created_by, created_at)
    select gen_random_uuid(), ${ann.id}, ${db.sql.json([service("x")])}, ${now},
           ${new Date(now.getTime() + HOUR)}, 'bulk', ${ann.id}, ${now}
    from generate_series(1, 999)`;
    const body = { matchers: [service("y")], ends_at: at(clock, 2 * HOUR), comment: "c" };
    const last = await request("POST", "/v1/silences", { key: ann.key, body });
    assertEquals(last.status, 201);
    const over = await request("POST", "/v1/silences", { key: ann.key, body });
    assertEquals(over.status, 409);
    assertMatch(over.body.detail, /1000/);
    // Someone else is not affected.
    assertEquals((await request("POST", "/v1/silences", { body })).status, 201);
    // Expiring one makes room.
    assertEquals(
      (await request("DELETE", `/v1/silences/${last.body.id}`, { key: ann.key })).status,
      204,
    );
    assertEquals((await request("POST", "/v1/silences", { key: ann.key, body })).status, 201);
    // Once the bulk ones are over, they count no more.
    clock.advance(HOUR);
    for (let i = 0; i < 3; i++) {
      assertEquals((await request("POST", "/v1/silences", { key: ann.key, body })).status, 201);
    }
  },
);

dbTest("silences: activeSilences returns exactly the active ones, on the index", async (_t, db) => {
  const app = await testApp(db);
  const { clock } = app;
  const ann = await app.newUser("ann@example.com");
  const bob = await app.newUser("bob@example.com");
  const t0 = clock.now();
  const plus = (ms: number) => new Date(t0.getTime() + ms);
  const make = async (userId: string, start: number, end: number, value: string) =>
    (await insertSilenceCapped(db.sql, {
      user_id: userId,
      matchers: [service(value)],
      starts_at: plus(start),
      ends_at: plus(end),
      comment: value,
      created_by: userId,
    }, plus(-DAY)))!.id;
  const early = await make(ann.id, -HOUR, HOUR, "early"); // active over [t0-1h, t0+1h)
  const late = await make(ann.id, HOUR, 2 * HOUR, "late"); // active over [t0+1h, t0+2h)
  const past = await make(ann.id, -2 * HOUR, -HOUR, "past");
  await make(bob.id, -HOUR, 3 * HOUR, "bob");

  const ids = async (ms: number) =>
    (await activeSilences(db.sql, ann.id, plus(ms))).map((s) => s.id).sort();
  assertEquals(await ids(-90 * MINUTE), [past].sort());
  assertEquals(await ids(0), [early]);
  assertEquals(await ids(HOUR - 1), [early]);
  // starts_at is inclusive, ends_at exclusive
  assertEquals(await ids(HOUR), [late]);
  assertEquals(await ids(2 * HOUR), []);
  assertEquals((await activeSilences(db.sql, bob.id, plus(0))).length, 1);

  // Inside a transaction, as the evaluator calls it; matching on labels and ids.
  await db.sql.begin(async (tx) => {
    const isSilenced = async (alert: MatchTarget & { user_id: string }, at: Date) =>
      matchingSilence(await activeSilences(tx, alert.user_id, at), alert) !== undefined;
    const alert = { id: crypto.randomUUID(), user_id: ann.id, labels: { service: "early" } };
    assertEquals(await isSilenced(alert, plus(0)), true);
    assertEquals(await isSilenced(alert, plus(HOUR)), false);
    assertEquals(await isSilenced({ ...alert, labels: { service: "late" } }, plus(HOUR)), true);
    assertEquals(await isSilenced({ ...alert, user_id: bob.id }, plus(0)), false);
  });

  // One query that the index silences_active (user_id, ends_at) serves.
  const plan = await db.sql.begin(async (tx) => {
    await tx`set local enable_seqscan = off`;
    return await tx<{ "QUERY PLAN": string }[]>`
      explain select * from silences
      where user_id = ${ann.id} and ends_at > ${t0} and starts_at <= ${t0}
      order by created_at, id`;
  });
  assertMatch(plan.map((r) => r["QUERY PLAN"]).join("\n"), /silences_active/);
});

dbTest("silences: the four routes are in the OpenAPI document", async (_t, db) => {
  const { request } = await testApp(db);
  const doc = (await request("GET", "/openapi.json", { key: null })).body;
  assertEquals(Object.keys(doc.paths["/v1/silences"]).sort(), ["get", "post"]);
  assertEquals(Object.keys(doc.paths["/v1/silences/{id}"]).sort(), ["delete", "get"]);
  assert(doc.components.schemas.Silence, "Silence schema");
  assert(doc.components.schemas.SilenceMatcher, "SilenceMatcher schema");
  const params = doc.paths["/v1/silences"].get.parameters.map((p: Json) => p.name).sort();
  assertEquals(params, ["cursor", "limit", "state", "user_id"]);
  assert(doc.paths["/v1/silences/{id}"].delete.responses["409"], "409 documented");
});
