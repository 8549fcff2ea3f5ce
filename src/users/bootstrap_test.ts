import "../../tests/support/logs.ts";
import { assertEquals, assertRejects } from "../../tests/support/assert.ts";
import { ManualClock } from "../../tests/support/clock.ts";
import { dbTest } from "../../tests/support/database.ts";
import { rootLogger } from "../observability/logger.ts";
import { Authenticator } from "./auth.ts";
import { BOOTSTRAP_ADMIN_EMAIL, bootstrapAdmin } from "./bootstrap.ts";
import { RevokedAdminKey } from "./store.ts";

const KEY = "vgl_" + "b".repeat(40);
const config = { ADMIN_API_KEY: KEY, VIGIL_ENV: "production" as const };

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
