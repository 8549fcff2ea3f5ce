/** DLQ counts kept by triggers (migration 013): always what counting the queue says. */
import fc from "fast-check";
import postgres from "postgres";
import { assert, assertEquals } from "../../tests/support/assert.ts";
import { dbTest } from "../../tests/support/database.ts";
import type { Sql } from "../db/database.ts";
import { dlqCounts } from "./store.ts";

async function user(sql: Sql): Promise<string> {
  const [row] = await sql<{ id: string }[]>`
    insert into users (email, name, created_at)
    values (${`dlq-${crypto.randomUUID()}@example.com`}, 'DLQ', now()) returning id`;
  return row.id;
}

/** `count` failed deliveries, each with a DLQ row in `state`; their delivery ids. */
async function queue(sql: Sql, userId: string, count: number, state: string): Promise<string[]> {
  const rows = await sql<{ id: string }[]>`
    with d as (
      insert into alert_deliveries (id, user_id, channel, content_hash, payload, status, attempts,
                                    created_at)
      select gen_random_uuid(), ${userId}, 'inapp', md5(random()::text), '{}', 'failed', 1, now()
      from generate_series(1, ${count})
      returning id
    )
    insert into alert_dlq (delivery_id, error_message, retry_count, next_retry_at, state,
                           created_at)
    select id, 'test', 0, now(), ${state}, now() from d
    returning delivery_id as id`;
  return rows.map((r) => r.id);
}

/** What counting the queue says. */
async function counted(sql: Sql): Promise<Record<string, number>> {
  const counts: Record<string, number> = { pending: 0, exhausted: 0, uncertain: 0 };
  for (
    const r of await sql<{ state: string; n: number }[]>`
    select state, count(*)::int as n from alert_dlq group by state`
  ) counts[r.state] = r.n;
  return counts;
}

const deltas = async (sql: Sql) =>
  (await sql<{ n: number }[]>`select count(*)::int as n from alert_dlq_counts`)[0].n;

dbTest(
  "DLQ counts: kept exact by every kind of write, without counting the queue",
  async (t, db) => {
    const { sql } = db;
    const u = await user(sql);
    const check = async (step: string) =>
      assertEquals(await dlqCounts(sql), await counted(sql), step);

    await t.step("inserts", async () => {
      await queue(sql, u, 30, "pending");
      await queue(sql, u, 5, "exhausted");
      await check("inserted");
    });
    await t.step("an update that moves no state (a claim) writes no delta", async () => {
      const before = await deltas(sql);
      await sql`update alert_dlq set next_retry_at = now() + interval '1 minute',
                                   last_retry_at = now() where state = 'pending'`;
      assertEquals(await deltas(sql), before);
      await check("claimed");
    });
    await t.step("state changes, upserts and deletes", async () => {
      await sql`update alert_dlq set state = 'exhausted'
              where id in (select id from alert_dlq where state = 'pending' limit 4)`;
      await sql`update alert_dlq set state = 'uncertain'
              where id in (select id from alert_dlq where state = 'exhausted' limit 2)`;
      const [extra] = await queue(sql, u, 1, "pending");
      // The dispatcher's record statement upserts: an update of one row, an insert of another.
      const [fresh] = await sql<{ id: string }[]>`
      insert into alert_deliveries (id, user_id, channel, content_hash, payload, status, attempts,
                                    created_at)
      values (gen_random_uuid(), ${u}, 'inapp', 'x', '{}', 'failed', 1, now()) returning id`;
      await sql`
      insert into alert_dlq (delivery_id, error_message, retry_count, next_retry_at, state,
                             created_at)
      values (${extra}, 'again', 1, now(), 'exhausted', now()),
             (${fresh.id}, 'new', 0, now(), 'pending', now())
      on conflict (delivery_id) do update set state = excluded.state`;
      await check("upserted");
      await sql`delete from alert_dlq where id in (select id from alert_dlq limit 7)`;
      await check("deleted");
    });
    await t.step("cascaded deletes (pruned deliveries) and a rolled back write", async () => {
      await sql`delete from alert_deliveries
              where id in (select delivery_id from alert_dlq where state = 'pending' limit 3)`;
      await check("cascaded");
      await sql.begin(async (tx) => {
        await queue(tx as unknown as Sql, u, 10, "pending");
        await tx`select 1 / 0`;
      }).catch(() => {});
      await check("rolled back");
    });
    await t.step("truncate, directly and by cascade", async () => {
      await sql`truncate alert_dlq`;
      await check("truncated");
      await queue(sql, u, 3, "pending");
      await sql`truncate alert_deliveries cascade`;
      await check("truncated by cascade");
    });
  },
);

dbTest("DLQ counts: deltas are folded once they pile up; the counts stay", async (_t, db) => {
  const { sql } = db;
  const u = await user(sql);
  for (let i = 0; i < 20; i++) {
    await queue(sql, u, 2, i % 3 === 0 ? "exhausted" : "pending");
    await sql`update alert_dlq set state = 'uncertain'
              where id in (select id from alert_dlq where state = 'pending' limit 1)`;
  }
  const expected = await counted(sql);
  assert((await deltas(sql)) > 20);
  assertEquals(await dlqCounts(sql, 100), expected); // under the threshold: read only
  assert((await deltas(sql)) > 20);
  assertEquals(await dlqCounts(sql, 10), expected); // over it: read, then fold
  assertEquals(await deltas(sql), 3);
  assertEquals(await dlqCounts(sql, 0), expected);
  await sql`delete from alert_dlq where state = 'uncertain'`;
  await dlqCounts(sql, 0);
  assertEquals(await deltas(sql), 2, "a state that sums to zero leaves no row");
  assertEquals(await dlqCounts(sql), await counted(sql));
});

dbTest("DLQ counts: writers never wait on each other, folds run beside them", async (_t, db) => {
  const u = await user(db.sql);
  // A lock wait fails the test (after 2 s) instead of hanging it.
  const pools = Array.from({ length: 4 }, (_, i) =>
    postgres(db.url, {
      max: 2,
      onnotice: () => {},
      connection: i === 1 || i === 2 ? { lock_timeout: 2000 } : {},
    }));
  try {
    // A transaction that wrote DLQ rows and holds on: another writer still commits at once.
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let wrote!: () => void;
    const written = new Promise<void>((r) => (wrote = r));
    const holding = pools[0].begin(async (tx) => {
      await queue(tx as unknown as Sql, u, 5, "pending");
      wrote();
      await held;
    });
    await written;
    const started = performance.now();
    await pools[1].begin((tx) => queue(tx as unknown as Sql, u, 5, "pending"));
    await dlqCounts(pools[2] as unknown as Sql, 0);
    assert(performance.now() - started < 2000, "a second writer and a fold did not wait");
    release();
    await holding;
    // Writers and folding readers side by side.
    await Promise.all([
      ...pools.slice(0, 3).map(async (p) => {
        for (let i = 0; i < 15; i++) {
          await queue(p as unknown as Sql, u, 3, "pending");
          await p`update alert_dlq set state = 'exhausted'
                  where id in (select id from alert_dlq where state = 'pending' limit 1
                               for update skip locked)`;
          await p`delete from alert_dlq
                  where id in (select id from alert_dlq where state = 'exhausted' limit 1
                               for update skip locked)`;
        }
      }),
      (async () => {
        for (let i = 0; i < 30; i++) await dlqCounts(pools[3] as unknown as Sql, 0);
      })(),
    ]);
    assertEquals(await dlqCounts(db.sql), await counted(db.sql));
  } finally {
    await Promise.all(pools.map((p) => p.end()));
  }
}, { realPostgresOnly: true });

dbTest("DLQ counts: any sequence of writes (property)", async (_t, db) => {
  const { sql } = db;
  const u = await user(sql);
  const state = fc.constantFrom("pending", "exhausted", "uncertain");
  const op = fc.oneof(
    fc.record({ kind: fc.constant("insert" as const), n: fc.integer({ min: 0, max: 4 }), state }),
    fc.record({ kind: fc.constant("move" as const), n: fc.integer({ min: 0, max: 4 }), state }),
    fc.record({ kind: fc.constant("delete" as const), n: fc.integer({ min: 0, max: 4 }) }),
    fc.record({ kind: fc.constant("fold" as const) }),
  );
  await fc.assert(
    fc.asyncProperty(fc.array(op, { maxLength: 12 }), async (ops) => {
      await sql`truncate alert_dlq`;
      for (const o of ops) {
        if (o.kind === "insert") await queue(sql, u, o.n, o.state);
        else if (o.kind === "move") {
          await sql`update alert_dlq set state = ${o.state}
                    where id in (select id from alert_dlq order by random() limit ${o.n})`;
        } else if (o.kind === "delete") {
          await sql`delete from alert_dlq
                    where id in (select id from alert_dlq order by random() limit ${o.n})`;
        } else await dlqCounts(sql, 0);
      }
      assertEquals(await dlqCounts(sql), await counted(sql));
    }),
    { numRuns: 25 },
  );
});
