/**
 * The retry job's claim ahead: the next batch is claimed while this one is sent. A batch claimed
 * ahead that is not sent is released at once (no retry used up, not "maybe sent"), and its lease
 * counts from its claim, not from when its turn came.
 */
import { assertEquals, assertRejects } from "../../tests/support/assert.ts";
import { testApp } from "../../tests/support/app.ts";
import { ManualClock, SECOND } from "../../tests/support/clock.ts";
import { dbTest, type TestDatabase } from "../../tests/support/database.ts";
import { Dispatcher } from "./dispatcher.ts";
import { sendBudgetMs } from "./schedule.ts";
import type { Sender } from "./types.ts";

const BATCH = 2;

/** `count` failed in-app deliveries whose DLQ rows are due now, oldest first; their ids. */
async function dueInApp(db: TestDatabase, userId: string, count: number, at: Date) {
  const rows = await db.sql<{ id: string }[]>`
    insert into alert_deliveries (id, user_id, channel, content_hash, payload, status, attempts,
                                  created_at)
    select gen_random_uuid(), ${userId}, 'inapp', md5(i::text), ${
    db.sql.json({ type: "alert.fired", source: "rule", title: "t", message: "m", alert: null })
  }, 'failed', 1, ${at}
    from generate_series(1, ${count}) as i
    returning id`;
  const ids = rows.map((r) => r.id);
  await db.sql`
    insert into alert_dlq (delivery_id, error_message, retry_count, next_retry_at, state, created_at)
    select id, 'earlier failure', 1, ${at}::timestamptz + (n || ' ms')::interval, 'pending', ${at}
    from unnest(${ids}::uuid[]) with ordinality as u(id, n)`;
  return ids;
}

async function setUp(db: TestDatabase) {
  const clock = new ManualClock();
  const app = await testApp(db, { clock, env: { DELIVERY_BATCH_SIZE: String(BATCH) } });
  const user = await app.newUser(`pipeline-${crypto.randomUUID()}@example.com`);
  const start = clock.now();
  const ids = await dueInApp(db, user.id, 5, new Date(start.getTime() - SECOND));
  const senders = app.senders as Record<string, Sender>;
  const inapp = senders.inapp;
  const sent: string[] = [];
  /** Runs at every in-app batch before it is sent (the batch's ids). */
  let before: (ids: string[]) => void = () => {};
  senders.inapp = {
    ...inapp,
    sendMany: (deliveries, ctx) => {
      before(deliveries.map((d) => d.id));
      sent.push(...deliveries.map((d) => d.id));
      return inapp.sendMany!(deliveries, ctx);
    },
  };
  const state = () =>
    db.sql<
      {
        id: string;
        status: string;
        attempts: number;
        maybe_sent: boolean;
        leased: boolean;
        retry_count: number | null;
        due: boolean | null;
      }[]
    >`
      select d.id, d.status, d.attempts, d.maybe_sent, d.lease_token is not null as leased,
             q.retry_count, q.next_retry_at <= ${clock.now()} as due
      from alert_deliveries d left join alert_dlq q on q.delivery_id = d.id
      where d.id = any(${ids}::uuid[])`;
  return { app, clock, ids, sent, state, onBatch: (f: typeof before) => (before = f) };
}

dbTest("retries: every batch of a long queue is sent once, one claim ahead", async (_t, db) => {
  const { app, ids, sent, state } = await setUp(db);
  const outcomes = await app.dispatcher.retryDue();
  assertEquals(outcomes.map((o) => o.status), ids.map(() => "delivered"));
  assertEquals(new Set(sent), new Set(ids));
  assertEquals(sent.length, ids.length, "nothing sent twice");
  for (const row of await state()) {
    assertEquals([row.status, row.leased, row.retry_count], ["delivered", false, null]);
  }
}, { realPostgresOnly: true });

dbTest("retries: a batch claimed ahead of a stop is released unsent", async (_t, db) => {
  const { app, ids, sent, state, onBatch } = await setUp(db);
  // The stop comes while the first batch is being sent: the second is already claimed.
  onBatch(() => void app.drain.stop(60_000, 60_000));
  await app.dispatcher.retryDue();
  assertEquals(sent, ids.slice(0, BATCH));
  const rows = new Map((await state()).map((r) => [r.id, r]));
  for (const id of ids.slice(BATCH)) {
    const row = rows.get(id)!;
    // Due again now, leased to nobody, with its retry count and "not sent" knowledge intact.
    assertEquals(
      {
        status: row.status,
        attempts: row.attempts,
        maybe_sent: row.maybe_sent,
        leased: row.leased,
        retry_count: row.retry_count,
        due: row.due,
      },
      {
        status: "failed",
        attempts: 1,
        maybe_sent: false,
        leased: false,
        retry_count: 1,
        due: true,
      },
      `delivery ${ids.indexOf(id)}`,
    );
  }
  const [{ attempts }] = await db.sql<{ attempts: number }[]>`
    select count(*)::int as attempts from delivery_attempts where delivery_id = any(${ids}::uuid[])`;
  assertEquals(attempts, BATCH, "an attempt row only for what was sent");
}, { realPostgresOnly: true });

dbTest("retries: a batch claimed ahead counts its lease from its claim", async (_t, db) => {
  const { app, clock, ids, sent, state, onBatch } = await setUp(db);
  const budget = sendBudgetMs(app.config.DELIVERY_LEASE_SECONDS * 1000);
  let batches = 0;
  // The first batch's send takes (by the shared clock) all of the send budget: the batch
  // claimed meanwhile has no lease left to send under when its turn comes. It is released
  // unsent, and sent once under a lease of its own by a later claim.
  onBatch(() => {
    if (batches++ === 0) clock.advance(budget);
  });
  const outcomes = await app.dispatcher.retryDue();
  const ahead = ids.slice(BATCH, 2 * BATCH);
  assertEquals(
    outcomes.filter((o) => ahead.includes(o.id)).map((o) => o.status),
    ["failed", "failed", "delivered", "delivered"],
    "released first, then sent",
  );
  assertEquals(sent.length, ids.length, "each sent once");
  assertEquals(new Set(sent), new Set(ids));
  for (const row of await state()) {
    assertEquals([row.status, row.leased, row.maybe_sent], ["delivered", false, false]);
  }
  const attempts = await db.sql<{ n: number }[]>`
    select count(*)::int as n from delivery_attempts where delivery_id = any(${ids}::uuid[])`;
  assertEquals(attempts[0].n, ids.length, "no attempt row for the release");
}, { realPostgresOnly: true });

dbTest(
  "retries: a claim made ahead that fails is the job's error, not the process's",
  async (_t, db) => {
    const { app, ids, sent, onBatch } = await setUp(db);
    // The database goes away while the first batch is being sent: the claim already made for
    // the next batch fails then, before anything awaits it.
    let claims = 0;
    let fail!: (error: Error) => void;
    const failing = new Promise<never>((_, reject) => (fail = reject));
    const sql = new Proxy(app.sql, {
      apply(target, self, args) {
        const strings = args[0] as TemplateStringsArray;
        if (Array.isArray(strings?.raw) && strings.join("$").includes("update alert_dlq q")) {
          if (++claims === 2) return failing;
        }
        return Reflect.apply(target, self, args);
      },
    });
    const dispatcher = new Dispatcher({
      sql,
      clock: app.clock,
      metrics: app.metrics,
      logger: app.logger,
      senders: app.senders,
      schedule: { backoffMs: app.config.DELIVERY_BACKOFF, leaseMs: 120_000 },
      drain: app.drain,
      batchSize: BATCH,
    });
    onBatch(() => fail(new Error("database away")));
    // Sending takes a moment, during which the failure is nobody's to handle but the claim's.
    const senders = app.senders as Record<string, Sender>;
    const inapp = senders.inapp;
    senders.inapp = {
      ...inapp,
      sendMany: async (deliveries, ctx) => {
        const results = await inapp.sendMany!(deliveries, ctx);
        await new Promise((r) => setTimeout(r, 20));
        return results;
      },
    };
    await assertRejects(() => dispatcher.retryDue(), Error, "database away");
    assertEquals(sent, ids.slice(0, BATCH), "the first batch went");
  },
  { realPostgresOnly: true },
);
