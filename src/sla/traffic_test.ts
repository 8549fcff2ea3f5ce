import fc from "fast-check";
import { assertEquals } from "../../tests/support/assert.ts";
import { ManualClock, MINUTE } from "../../tests/support/clock.ts";
import { dbTest } from "../../tests/support/database.ts";
import "../../tests/support/logs.ts";
import { rootLogger } from "../observability/logger.ts";
import type { Sql } from "../db/database.ts";
import { HTTP_BUCKETS } from "../observability/metrics.ts";
import { bucketIndex, emptyCounts } from "../util/histogram.ts";
import { windowTotals } from "./status.ts";
import { MAX_HELD_KEYS, SlaTraffic } from "./traffic.ts";

const runs = Number(Deno.env.get("VIGIL_PROPERTY_RUNS") ?? 25);
const seed = Deno.env.get("VIGIL_PROPERTY_SEED");

/** The database, unless `down` says it is away. */
function flaky(sql: Sql) {
  const state = { down: false };
  const proxy = new Proxy(sql, {
    apply(target, self, args) {
      if (state.down) return Promise.reject(new Error("connection refused"));
      return Reflect.apply(target as never, self, args);
    },
  });
  return { sql: proxy, state };
}

const ROUTES = ["/v1/me", "/v1/alerts", "/v1/alerts/:id", "/v1/patterns/:id/run"];

dbTest(
  "sla traffic: property — replicas, failed flushes and restarts lose and double nothing",
  async (_t, db) => {
    const request = fc.record({
      replica: fc.integer({ min: 0, max: 1 }),
      route: fc.constantFrom(...ROUTES),
      status: fc.constantFrom(200, 201, 204, 401, 404, 422, 500, 502, 503),
      seconds: fc.oneof(
        fc.constantFrom(...HTTP_BUCKETS),
        fc.double({ min: 0, max: 90, noNaN: true }),
      ),
      // The clock moves on before it (minutes, across an hour boundary).
      advanceMs: fc.integer({ min: 0, max: 7 * MINUTE }),
      // What happens after it: nothing, a flush, a flush while the database is down.
      then: fc.constantFrom("none", "none", "none", "flush", "flush_down", "outage_ends"),
    });
    await fc.assert(
      fc.asyncProperty(fc.array(request, { minLength: 1, maxLength: 80 }), async (requests) => {
        await db.sql`delete from sla_traffic`;
        const clock = new ManualClock("2026-03-10T11:50:00Z");
        const replicas = [0, 1].map(() => {
          const { sql, state } = flaky(db.sql);
          return { state, traffic: new SlaTraffic({ sql, clock, logger: rootLogger }) };
        });
        const expected = { requests: 0, errors: 0, buckets: emptyCounts(HTTP_BUCKETS) };
        for (const r of requests) {
          clock.advance(r.advanceMs);
          const { traffic, state } = replicas[r.replica];
          traffic.observe(r.route, r.status, r.seconds);
          expected.requests++;
          if (r.status >= 500) expected.errors++;
          expected.buckets[bucketIndex(HTTP_BUCKETS, r.seconds)]++;
          if (r.then === "flush") await traffic.flush();
          if (r.then === "flush_down") {
            state.down = true;
            await traffic.flush(); // fails: kept
          }
          if (r.then === "outage_ends") state.down = false;
        }
        for (const { traffic, state } of replicas) {
          state.down = false;
          await traffic.stop();
        }
        // Every request was within the last hour of the end? The 30-day window has them all.
        const totals = await windowTotals(db.sql, clock.now());
        assertEquals(totals["30d"], expected);
        // Minutes and hours say the same.
        const [m] = await db.sql<{ minute: number; hour: number }[]>`
        select (sum(requests) filter (where period = 'minute'))::int as minute,
               (sum(requests) filter (where period = 'hour'))::int as hour
        from sla_traffic`;
        assertEquals([m.minute, m.hour], [expected.requests, expected.requests]);
      }),
      { numRuns: runs, ...(seed ? { seed: Number(seed) } : {}) },
    );
  },
);

dbTest("sla traffic: the 1h window counts the last hour's minutes only", async (_t, db) => {
  const clock = new ManualClock("2026-03-10T10:00:30Z");
  const traffic = new SlaTraffic({ sql: db.sql, clock, logger: rootLogger });
  traffic.observe("/v1/me", 200, 0.01); // 10:00, out of the 1h window at 11:10
  clock.set("2026-03-10T11:05:00Z");
  traffic.observe("/v1/me", 500, 0.01);
  traffic.observe("/v1/me", 200, 0.3);
  await traffic.flush();
  const totals = await windowTotals(db.sql, new Date("2026-03-10T11:10:00Z"));
  assertEquals([totals["1h"].requests, totals["1h"].errors], [2, 1]);
  assertEquals([totals["24h"].requests, totals["7d"].requests], [3, 3]);
});

dbTest(
  "sla traffic: held beyond its bound, the oldest minutes are dropped and counted",
  async (_t, db) => {
    const clock = new ManualClock("2026-03-01T00:00:00Z");
    const { sql, state } = flaky(db.sql);
    let dropped = 0;
    const traffic = new SlaTraffic({
      sql,
      clock,
      logger: rootLogger,
      onDropped: (n) => (dropped += n),
    });
    // The database is away for longer than the bound holds: one request a minute on 50 routes.
    state.down = true;
    const minutes = MAX_HELD_KEYS / 50 + 3;
    for (let m = 0; m < minutes; m++) {
      for (let r = 0; r < 50; r++) traffic.observe(`/v1/r${r}`, 200, 0.01);
      clock.advance(MINUTE);
    }
    await traffic.flush();
    assertEquals(dropped, 3 * 50, "the three oldest minutes, every route");
    // Back: everything else is written, once.
    state.down = false;
    await traffic.flush();
    const [{ requests }] = await db.sql<{ requests: number }[]>`
    select coalesce(sum(requests), 0)::int as requests from sla_traffic where period = 'minute'`;
    assertEquals(requests, MAX_HELD_KEYS);
  },
);
