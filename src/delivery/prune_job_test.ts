import { assertEquals } from "../../tests/support/assert.ts";
import { HOUR, ManualClock } from "../../tests/support/clock.ts";
import { dbTest } from "../../tests/support/database.ts";
import type { Sql } from "../db/database.ts";
import { createUser } from "../users/store.ts";
import { PRUNE_BATCH } from "../db/batched_delete.ts";
import { pruneDeliveriesJob } from "./prune_job.ts";

const DAY = 24 * HOUR;
const RETENTION_DAYS = 30;

async function setup(sql: Sql, clock: ManualClock) {
  const { user } = await createUser(sql, {
    email: "ann@example.com",
    name: "Ann",
    role: "user",
    now: clock.now(),
  });
  const ago = (days: number) => new Date(clock.now().getTime() - days * DAY);

  /** A delivery created `days` ago, with two attempts. */
  async function delivery(status: string, days: number): Promise<string> {
    const id = crypto.randomUUID();
    await sql`
      insert into alert_deliveries (id, user_id, channel, content_hash, payload, status, created_at)
      values (${id}, ${user.id}, 'inapp', ${id}, '{}', ${status}, ${ago(days)})`;
    await sql`
      insert into delivery_attempts (delivery_id, attempt, at, outcome)
      values (${id}, 1, ${ago(days)}, 'failed'), (${id}, 2, ${ago(days)}, 'delivered')`;
    return id;
  }

  /** A notification created `days` ago, read `readDays` ago (null: unread). */
  async function notification(
    deliveryId: string | null,
    days: number,
    readDays: number | null,
  ): Promise<string> {
    const [row] = await sql<{ id: string }[]>`
      insert into notifications (user_id, delivery_id, title, message, read_at, created_at)
      values (${user.id}, ${deliveryId}, 't', 'm', ${readDays === null ? null : ago(readDays)},
              ${ago(days)})
      returning id`;
    return row.id;
  }

  return { user, ago, delivery, notification };
}

dbTest("deliveries.prune: old settled deliveries and old read notifications go", async (t, db) => {
  const { sql } = db;
  const clock = new ManualClock();
  const { delivery, notification } = await setup(sql, clock);
  const job = pruneDeliveriesJob(sql, RETENTION_DAYS);

  const oldDelivered = await delivery("delivered", 31);
  const oldSuppressed = await delivery("suppressed", 31);
  const youngDelivered = await delivery("delivered", 29);
  // Still someone's to act on (replay, retry), whatever their age.
  const oldExhausted = await delivery("exhausted", 400);
  const oldFailed = await delivery("failed", 31);
  const oldPending = await delivery("pending", 31);
  await sql`
    insert into alert_dlq (delivery_id, error_message, state, created_at)
    values (${oldExhausted}, 'gave up', 'exhausted', ${clock.now()})`;

  const oldDeliveredForRead = await delivery("delivered", 31);
  const unreadOld = await notification(oldDelivered, 31, null);
  const readOld = await notification(oldDeliveredForRead, 31, 31);
  const readRecently = await notification(null, 31, 29);
  const unreadYoung = await notification(youngDelivered, 29, null);

  await t.step("run: the counts of what went", async () => {
    assertEquals(await job.run(clock.now()), {
      deliveries: 3,
      notifications: 1,
      silences: 0,
    });
  });

  await t.step(
    "deliveries: exactly the old delivered and suppressed ones, with attempts",
    async () => {
      const kept = await sql<{ id: string }[]>`select id from alert_deliveries order by id`;
      assertEquals(
        kept.map((r) => r.id),
        [youngDelivered, oldExhausted, oldFailed, oldPending].sort(),
      );
      const attempts = await sql<{ id: string }[]>`
      select distinct delivery_id as id from delivery_attempts order by 1`;
      assertEquals(attempts.map((r) => r.id), kept.map((r) => r.id));
      assertEquals(
        (await sql`select 1 from alert_dlq where delivery_id = ${oldExhausted}`).length,
        1,
      );
      for (const gone of [oldDelivered, oldSuppressed, oldDeliveredForRead]) {
        assertEquals(
          (await sql`select 1 from delivery_attempts where delivery_id = ${gone}`).length,
          0,
        );
      }
    },
  );

  await t.step("notifications: unread ones stay (without their pruned delivery)", async () => {
    const kept = await sql<{ id: string; delivery_id: string | null }[]>`
      select id, delivery_id from notifications order by id`;
    assertEquals(
      [...kept],
      [
        { id: unreadOld, delivery_id: null },
        { id: readRecently, delivery_id: null },
        { id: unreadYoung, delivery_id: youngDelivered },
      ].sort((a, b) => a.id < b.id ? -1 : 1),
    );
    assertEquals(kept.some((n) => n.id === readOld), false);
  });

  await t.step("a second run finds nothing; a month later the young ones go", async () => {
    assertEquals(await job.run(clock.now()), {
      deliveries: 0,
      notifications: 0,
      silences: 0,
    });
    clock.advance(2 * DAY);
    assertEquals(await job.run(clock.now()), {
      deliveries: 1,
      notifications: 1,
      silences: 0,
    });
    assertEquals(
      (await sql<{ id: string }[]>`select id from notifications`).map((r) => r.id).sort(),
      [unreadOld, unreadYoung].sort(),
    );
  });
});

dbTest("deliveries.prune: more rows than one batch are all deleted", async (_t, db) => {
  const { sql } = db;
  const clock = new ManualClock();
  const { user, ago, delivery } = await setup(sql, clock);
  const job = pruneDeliveriesJob(sql, RETENTION_DAYS);
  const n = 2 * PRUNE_BATCH + 500;
  await sql`
    insert into alert_deliveries (id, user_id, channel, content_hash, payload, status, created_at)
    select gen_random_uuid(), ${user.id}, 'inapp', 'h' || i, '{}',
           case when i % 2 = 0 then 'delivered' else 'suppressed' end, ${ago(40)}
    from generate_series(1, ${n}) as i`;
  await sql`
    insert into delivery_attempts (delivery_id, attempt, at, outcome)
    select id, 1, created_at, 'delivered' from alert_deliveries`;
  await sql`
    insert into notifications (user_id, title, message, read_at, created_at)
    select ${user.id}, 't', 'm', ${ago(35)}, ${ago(40)} from generate_series(1, ${n})`;
  const kept = await delivery("exhausted", 40);

  assertEquals(await job.run(clock.now()), {
    deliveries: n,
    notifications: n,
    silences: 0,
  });
  assertEquals(
    (await sql<{ id: string }[]>`select id from alert_deliveries`).map((r) => r.id),
    [kept],
  );
  const [{ attempts }] = await sql<{ attempts: number }[]>`
    select count(*)::int as attempts from delivery_attempts`;
  assertEquals(attempts, 2, "only the kept delivery's");
  assertEquals((await sql`select 1 from notifications`).length, 0);
});

dbTest("deliveries.prune: ended silences past retention go; active ones stay", async (_t, db) => {
  const { sql } = db;
  const clock = new ManualClock();
  const { user, ago } = await setup(sql, clock);
  const job = pruneDeliveriesJob(sql, RETENTION_DAYS);
  const silence = (starts: number, ends: number) =>
    sql`insert into silences (id, user_id, matchers, starts_at, ends_at, comment, created_at)
      values (${crypto.randomUUID()}, ${user.id}, '[]', ${ago(starts)}, ${ago(ends)}, 'c',
              ${ago(starts)})`;
  await silence(50, 40);
  await silence(10, 5);
  await silence(1, -1); // still active

  assertEquals(await job.run(clock.now()), { deliveries: 0, notifications: 0, silences: 1 });
  assertEquals((await sql`select 1 from silences`).length, 2);
});
