import postgres from "postgres";
import { assertEquals } from "../../tests/support/assert.ts";
import { realPostgres, testDatabase } from "../../tests/support/database.ts";
import { trackTransactions } from "./pool_stats.ts";

Deno.test({
  name: "pool stats: transactions wait while the only connection is taken, then none",
  ignore: !realPostgres,
}, async () => {
  await using db = await testDatabase();
  const sql = postgres(db.url, { max: 1, onnotice: () => {} });
  try {
    const stats = trackTransactions(sql);
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const first = sql.begin(async (tx) => {
      await tx`select 1`;
      await held;
    });
    await new Promise((r) => setTimeout(r, 50));
    const others = [1, 2, 3].map((n) => sql.begin((tx) => tx`select ${n}::int as n`));
    assertEquals(stats.waiting(), 3);
    release();
    await first;
    const results = await Promise.all(others);
    assertEquals(results.map((r) => r[0].n), [1, 2, 3]);
    assertEquals(stats.waiting(), 0);
    // A failed transaction stops waiting too; options before the callback still work.
    await sql.begin("read only", (tx) => tx`select 1`);
    await sql.begin((tx) => tx`select nope`).catch(() => {});
    assertEquals(stats.waiting(), 0);
  } finally {
    await sql.end();
  }
});
