import fc from "fast-check";
import { assert, assertEquals } from "../../tests/support/assert.ts";
import { HOUR, ManualClock, MINUTE } from "../../tests/support/clock.ts";
import { dbTest } from "../../tests/support/database.ts";
import type { Sql } from "../db/database.ts";
import { createUser } from "../users/store.ts";
import { bucketIndex } from "../util/histogram.ts";
import {
  CHECK_LATENCY_BOUNDS_MS,
  type CheckResult,
  periods,
  publicChecks,
  recordChecks,
  uptime,
} from "./store.ts";

const DAY = 24 * HOUR;
const runs = Number(Deno.env.get("VIGIL_PROPERTY_RUNS") ?? 25);
const seed = Deno.env.get("VIGIL_PROPERTY_SEED");

async function alerts(sql: Sql, n: number, now: Date, publicOnes = 0): Promise<string[]> {
  const { user } = await createUser(sql, {
    email: `u${crypto.randomUUID()}@example.com`,
    name: "U",
    role: "user",
    now,
  });
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const [row] = await sql<{ id: string }[]>`
      insert into alerts (user_id, name, condition, next_eval_at, created_at, updated_at, public,
                          labels)
      values (${user.id}, ${`check ${i}`}, '{}', ${now}, ${now}, ${now}, ${i < publicOnes},
              ${sql.json({ group: "web" })})
      returning id`;
    ids.push(row.id);
  }
  return ids;
}

const result = (alertId: string, at: Date, ok: boolean, ms = 20): CheckResult => ({
  alert_id: alertId,
  at,
  ok,
  value: ok ? 1 : 0,
  duration_ms: ms,
  error: null,
});

dbTest("uptime: property — rollups always equal what the raw results add up to", async (_t, db) => {
  const { sql } = db;
  const t0 = new Date("2026-03-01T22:00:00Z").getTime();
  const ids = await alerts(sql, 3, new Date(t0));
  const resultArb = fc.record({
    alert: fc.integer({ min: 0, max: ids.length - 1 }),
    // Across hour and day boundaries (22:00 to 04:00 the next day).
    offsetMs: fc.integer({ min: 0, max: 6 * HOUR }),
    ok: fc.boolean(),
    ms: fc.oneof(
      fc.constantFrom(...CHECK_LATENCY_BOUNDS_MS),
      fc.double({ min: 0, max: 60_000, noNaN: true }),
    ),
  });
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.array(resultArb, { maxLength: 30 }), { minLength: 1, maxLength: 6 }),
      async (batches) => {
        await sql`delete from check_results`;
        await sql`delete from check_rollups`;
        // One alert appears at most once per batch (the evaluation job claims it once), but
        // batches may be concurrent (replicas, an evaluate-now).
        await Promise.all(batches.map((batch) => {
          const seen = new Set<number>();
          const unique = batch.filter((r) => !seen.has(r.alert) && seen.add(r.alert));
          return recordChecks(
            sql,
            unique.map((r) => result(ids[r.alert], new Date(t0 + r.offsetMs), r.ok, r.ms)),
          );
        }));
        const raw = await sql<
          { alert_id: string; at: Date; ok: boolean; duration_ms: number }[]
        >`select alert_id, at, ok, duration_ms from check_results`;
        const rollups = await sql<
          {
            alert_id: string;
            period: string;
            bucket: Date;
            evaluations: number;
            ok: number;
            latency_min_ms: number;
            latency_max_ms: number;
            latency_sum_ms: number;
            latency_buckets: number[];
          }[]
        >`select * from check_rollups order by alert_id, period, bucket`;
        const expected = new Map<string, typeof rollups[number]>();
        for (const r of raw) {
          for (const [period, ms] of [["hour", HOUR], ["day", DAY]] as const) {
            const bucket = new Date(Math.floor(r.at.getTime() / ms) * ms);
            const key = `${r.alert_id} ${period} ${bucket.toISOString()}`;
            const e = expected.get(key) ?? {
              alert_id: r.alert_id,
              period,
              bucket,
              evaluations: 0,
              ok: 0,
              latency_min_ms: Infinity,
              latency_max_ms: 0,
              latency_sum_ms: 0,
              latency_buckets: new Array(CHECK_LATENCY_BOUNDS_MS.length + 1).fill(0),
            };
            e.evaluations++;
            if (r.ok) e.ok++;
            e.latency_min_ms = Math.min(e.latency_min_ms, r.duration_ms);
            e.latency_max_ms = Math.max(e.latency_max_ms, r.duration_ms);
            e.latency_sum_ms += r.duration_ms;
            e.latency_buckets[bucketIndex(CHECK_LATENCY_BOUNDS_MS, r.duration_ms)]++;
            expected.set(key, e);
          }
        }
        assertEquals(rollups.length, expected.size, "one rollup per alert, period and bucket");
        for (const r of rollups) {
          const e = expected.get(`${r.alert_id} ${r.period} ${r.bucket.toISOString()}`);
          assert(e, `an unexpected rollup ${r.period} ${r.bucket.toISOString()}`);
          assertEquals(
            [r.evaluations, r.ok, r.latency_min_ms, r.latency_max_ms, r.latency_buckets],
            [e.evaluations, e.ok, e.latency_min_ms, e.latency_max_ms, e.latency_buckets],
          );
          assert(Math.abs(r.latency_sum_ms - e.latency_sum_ms) < 1e-3 * (1 + e.latency_sum_ms));
        }
      },
    ),
    { numRuns: runs, ...(seed ? { seed: Number(seed) } : {}) },
  );
});

dbTest("uptime: windows read results, hours or days; downtime is the episodes", async (t, db) => {
  const { sql } = db;
  const clock = new ManualClock("2026-03-10T12:30:00Z");
  const now = clock.now();
  const [id] = await alerts(sql, 1, now);
  // One evaluation a minute for 3 days; failing from 10:00 to 11:00 today (60 failures) and
  // for 30 minutes two days ago.
  const results: CheckResult[] = [];
  for (let m = 3 * 24 * 60 - 1; m >= 0; m--) {
    const at = new Date(now.getTime() - m * MINUTE);
    const h = at.getUTCHours();
    const todayDown = at.getUTCDate() === 10 && h === 10;
    const earlierDown = at.getUTCDate() === 8 && h === 9 && at.getUTCMinutes() < 30;
    results.push(result(id, at, !(todayDown || earlierDown), todayDown ? 900 : 20));
  }
  for (let i = 0; i < results.length; i += 500) await recordChecks(sql, results.slice(i, i + 500));
  const episode = async (start: string, end: string | null) =>
    await sql`insert into alert_episodes (id, alert_id, user_id, started_at, ended_at)
      select ${crypto.randomUUID()}, ${id}, user_id, ${start}, ${end} from alerts where id = ${id}`;
  await episode("2026-03-08T09:00:00Z", "2026-03-08T09:30:00Z");
  await episode("2026-03-10T10:00:00Z", "2026-03-10T11:00:00Z");

  await t.step("1h: exact, no failures, no downtime", async () => {
    const u = await uptime(sql, id, "1h", now);
    assertEquals([u.evaluations, u.failures, u.uptime_percent], [60, 0, 100]);
    assertEquals(u.latency_p95_ms, 20);
    assertEquals(u.downtime, []);
  });
  await t.step("24h: exact, the failing hour counted and listed", async () => {
    const u = await uptime(sql, id, "24h", now);
    assertEquals([u.evaluations, u.failures], [1440, 60]);
    assertEquals(u.uptime_percent, Math.round((1380 / 1440) * 1e6) / 1e4);
    assertEquals(u.downtime.map((d) => d.duration_seconds), [3600]);
    assertEquals(u.downtime_seconds, 3600);
  });
  await t.step("7d from hours, 30d and 90d from days: every evaluation stored", async () => {
    for (const w of ["7d", "30d", "90d"] as const) {
      const u = await uptime(sql, id, w, now);
      assertEquals([u.evaluations, u.failures], [3 * 1440, 90], w);
      assertEquals(u.downtime.map((d) => d.duration_seconds), [1800, 3600], w);
      // 90 of 4320 took 900 ms: the p95 is in the 20 ms bucket.
      assert(u.latency_p95_ms! > 10 && u.latency_p95_ms! <= 25, `${w}: ${u.latency_p95_ms}`);
    }
  });
  await t.step("an open episode is downtime until now, clipped to the window", async () => {
    await episode("2026-03-10T12:00:00Z", null);
    const u = await uptime(sql, id, "1h", now);
    assertEquals(u.downtime.map((d) => [d.ended_at, d.duration_seconds]), [[null, 1800]]);
  });
  await t.step("daily and hourly periods for the status page", async () => {
    const days = (await periods(sql, [id], "day", new Date("2026-03-01T00:00:00Z"))).get(id)!;
    assertEquals(days.map((d) => d.start.toISOString().slice(0, 10)), [
      "2026-03-07",
      "2026-03-08",
      "2026-03-09",
      "2026-03-10",
    ]);
    assertEquals(days[1].evaluations - days[1].ok, 30);
    const hours = (await periods(sql, [id], "hour", new Date(now.getTime() - DAY))).get(id)!;
    assertEquals(hours.find((h) => h.start.toISOString() === "2026-03-10T10:00:00.000Z")?.ok, 0);
  });
});

dbTest(
  "uptime: public checks for /metrics: only public alerts, with their uptime",
  async (_t, db) => {
    const { sql } = db;
    const now = new Date("2026-03-10T12:30:00Z");
    const ids = await alerts(sql, 3, now, 2);
    await recordChecks(sql, [result(ids[0], now, true), result(ids[1], now, false)]);
    await sql`update alerts set state = 'firing' where id = ${ids[1]}`;
    const checks = (await publicChecks(sql, now)).sort((a, b) => a.name < b.name ? -1 : 1);
    assertEquals(
      checks.map((c) => [c.name, c.group, c.state, c.uptime_24h, c.uptime_30d]),
      [["check 0", "web", "ok", 1, 1], ["check 1", "web", "firing", 0, 0]],
    );
  },
);

dbTest(
  "uptime: a result of an alert deleted meanwhile is dropped, not an error",
  async (_t, db) => {
    const { sql } = db;
    const now = new Date("2026-03-10T12:30:00Z");
    const [id, other] = await alerts(sql, 2, now);
    await sql`delete from alerts where id = ${id}`;
    await recordChecks(sql, [result(id, now, true), result(other, now, true)]);
    const rows = await sql`select alert_id from check_results`;
    assertEquals(rows.map((r) => r.alert_id), [other], "the other alert's result is kept");
    const rollups = await sql`select distinct alert_id from check_rollups`;
    assertEquals(rollups.map((r) => r.alert_id), [other]);
  },
);
