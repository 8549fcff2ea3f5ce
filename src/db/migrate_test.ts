import postgres from "postgres";
import { assertEquals } from "../../tests/support/assert.ts";
import { dbTest } from "../../tests/support/database.ts";
import { listMigrations, migrate } from "./migrate.ts";

dbTest("migrate: applies every file in order, once, and records it", async (_t, db) => {
  const files = await listMigrations();
  assertEquals(files.length > 0, true);
  assertEquals(files, [...files].sort());
  assertEquals(await migrate(db.sql), files);
  assertEquals(await migrate(db.sql), []);
  const rows = await db.sql<{ name: string }[]>`select name from schema_migrations order by name`;
  assertEquals(rows.map((r) => r.name), files);
  const [users] = await db.sql`select to_regclass('public.users') as t`;
  assertEquals(users.t, "users");
}, { empty: true, realPostgresOnly: true });

dbTest("migrate: concurrent migrators apply each file exactly once", async (_t, db) => {
  const pools = Array.from({ length: 4 }, () => postgres(db.url, { max: 2, onnotice: () => {} }));
  try {
    const results = await Promise.all(pools.map((sql) => migrate(sql)));
    const applied = results.flat().sort();
    assertEquals(applied, await listMigrations());
    const [{ n }] = await db.sql`select count(*)::int as n from schema_migrations`;
    assertEquals(n, applied.length);
  } finally {
    await Promise.all(pools.map((sql) => sql.end()));
  }
}, { empty: true, realPostgresOnly: true });
