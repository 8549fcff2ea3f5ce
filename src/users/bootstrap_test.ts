import "../../tests/support/logs.ts";
import { assertEquals, assertRejects } from "../../tests/support/assert.ts";
import { ManualClock } from "../../tests/support/clock.ts";
import { dbTest } from "../../tests/support/database.ts";
import { rootLogger } from "../observability/logger.ts";
import { Authenticator } from "./auth.ts";
import { logsSince } from "../../tests/support/logs.ts";
import { BOOTSTRAP_ADMIN_EMAIL, bootstrapAdmin, RECIPIENT_NAME } from "./bootstrap.ts";
import { createUser, RevokedAdminKey } from "./store.ts";

const KEY = "vgl_" + "b".repeat(40);
const config = {
  ADMIN_API_KEY: KEY,
  VIGIL_ENV: "production" as const,
  ALERTMANAGER_RECIPIENTS: [] as string[],
};

dbTest("bootstrap: replicas starting together register ADMIN_API_KEY once", async (_t, db) => {
  const clock = new ManualClock();
  const results = await Promise.allSettled(
    Array.from({ length: 8 }, () => bootstrapAdmin(db.sql, config, clock, rootLogger)),
  );
  assertEquals(results.map((r) => r.status), Array(8).fill("fulfilled"));
  const keys = await db.sql`select role, revoked_at from api_keys`;
  assertEquals(keys.map((k) => [k.role, k.revoked_at]), [["admin", null]]);
  const users = await db.sql`select email from users`;
  assertEquals(users.map((u) => u.email), [BOOTSTRAP_ADMIN_EMAIL]);
  const principal = await new Authenticator(db.sql, clock, 0).authenticate(`Bearer ${KEY}`);
  assertEquals(principal?.role, "admin");
});

dbTest("bootstrap: a revoked ADMIN_API_KEY is never reinstated; start-up stops", async (_t, db) => {
  const clock = new ManualClock();
  await bootstrapAdmin(db.sql, config, clock, rootLogger);
  await db.sql`update api_keys set revoked_at = ${clock.now()}`;
  const error = await assertRejects(
    () => bootstrapAdmin(db.sql, config, clock, rootLogger),
    RevokedAdminKey,
    "ADMIN_API_KEY was revoked: set a new key",
  );
  assertEquals(error.message.includes("\n"), false);
  const [key] = await db.sql`select revoked_at from api_keys`;
  assertEquals(key.revoked_at !== null, true, "still revoked");
});

dbTest(
  "bootstrap: replicas starting together create each ALERTMANAGER_RECIPIENTS user once",
  async (_t, db) => {
    const clock = new ManualClock();
    const recipients = ["ops@example.com", "Oncall@example.com", "oncall@EXAMPLE.com"];
    const logs = logsSince();
    const results = await Promise.allSettled(
      Array.from(
        { length: 2 },
        () =>
          bootstrapAdmin(
            db.sql,
            { ...config, ALERTMANAGER_RECIPIENTS: recipients },
            clock,
            rootLogger,
          ),
      ),
    );
    assertEquals(results.map((r) => r.status), ["fulfilled", "fulfilled"]);
    const users = await db.sql`
      select u.email, u.name, count(k.id)::int as keys
      from users u left join api_keys k on k.user_id = u.id
      group by u.email, u.name order by lower(u.email)`;
    assertEquals(users.map((u) => [u.email, u.name, u.keys]), [
      [BOOTSTRAP_ADMIN_EMAIL, "Administrator", 1],
      ["Oncall@example.com", RECIPIENT_NAME, 0], // as first written; no API key
      ["ops@example.com", RECIPIENT_NAME, 0],
    ]);
    const created = logs().filter((r) => r.msg.includes("named by ALERTMANAGER_RECIPIENTS"));
    assertEquals(created.map((r) => r.fields.email).sort(), [
      "Oncall@example.com",
      "ops@example.com",
    ]);
    assertEquals(created.map((r) => r.level), ["info", "info"]);

    // A later start has nothing to create, and says nothing.
    const again = logsSince();
    await bootstrapAdmin(
      db.sql,
      { ...config, ALERTMANAGER_RECIPIENTS: recipients },
      clock,
      rootLogger,
    );
    assertEquals(again().filter((r) => r.msg.includes("ALERTMANAGER_RECIPIENTS")), []);
    const [{ count }] = await db.sql`select count(*)::int as count from users`;
    assertEquals(count, 3);
  },
);

dbTest("bootstrap: a recipient who is already a user is left as it is", async (_t, db) => {
  const clock = new ManualClock();
  const { user, api_key } = await createUser(db.sql, {
    email: "lead@example.com",
    name: "Lead",
    role: "user",
    now: clock.now(),
  });
  clock.advance(60_000);
  const logs = logsSince();
  await bootstrapAdmin(
    db.sql,
    { ...config, ALERTMANAGER_RECIPIENTS: ["LEAD@example.com", "new@example.com"] },
    clock,
    rootLogger,
  );
  const [lead] = await db.sql`select id, email, name, created_at from users where id = ${user.id}`;
  assertEquals(
    [lead.email, lead.name, lead.created_at.getTime()],
    [user.email, user.name, user.created_at.getTime()],
  );
  const keys = await db.sql`select id, role, revoked_at from api_keys where user_id = ${user.id}`;
  assertEquals(keys.map((k) => [k.id, k.role, k.revoked_at]), [[api_key.id, "user", null]]);
  const created = logs().filter((r) => r.msg.includes("named by ALERTMANAGER_RECIPIENTS"));
  assertEquals(created.map((r) => r.fields.email), ["new@example.com"]);
  const [fresh] = await db.sql`
    select u.name, u.created_at, count(k.id)::int as keys
    from users u left join api_keys k on k.user_id = u.id
    where u.email = 'new@example.com' group by u.id`;
  assertEquals([fresh.name, fresh.created_at.getTime(), fresh.keys], [
    RECIPIENT_NAME,
    clock.now().getTime(),
    0,
  ]);
});
