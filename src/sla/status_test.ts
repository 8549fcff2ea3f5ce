import { assertEquals } from "../../tests/support/assert.ts";
import { HTTP_BUCKETS } from "../observability/metrics.ts";
import { emptyCounts } from "../util/histogram.ts";
import { slowerThan, windowStart, windowStatus } from "./status.ts";

const TARGETS = { SLA_AVAILABILITY_TARGET: 99.5, SLA_ERROR_RATE_TARGET: 1, SLA_P95_MS: 1000 };
const NOW = new Date("2026-03-10T12:30:20Z");

/** `n` requests of `seconds` each (in that value's bucket). */
function counts(...groups: [n: number, seconds: number][]): number[] {
  const c = emptyCounts(HTTP_BUCKETS);
  for (const [n, s] of groups) c[HTTP_BUCKETS.findIndex((b) => s <= b)] += n;
  return c;
}

Deno.test("sla: budget and burn rate of a window", () => {
  // 10,000 requests, 25 5xx = 0.25 % unavailable: half the 0.5 % budget spent.
  const s = windowStatus(
    "30d",
    { requests: 10_000, errors: 25, buckets: counts([10_000, 0.02]) },
    TARGETS,
    NOW,
  );
  assertEquals(s.availability.percent, 99.75);
  assertEquals(s.availability.met, true);
  assertEquals(s.availability.error_budget.burn_rate, 0.5);
  assertEquals(s.availability.error_budget.remaining_percent, 50);
  // 30 days × 0.5 % = 216 minutes of budget, half of it left.
  assertEquals(s.availability.error_budget.remaining_minutes, 108);
  assertEquals(s.error_rate.percent, 0.25);
  assertEquals(s.error_rate.error_budget.burn_rate, 0.25);
  assertEquals(s.latency.met, true);
  assertEquals(s.latency.within_target_percent, 100);
  assertEquals(s.met, true);
});

Deno.test("sla: a breached window says which objective and by how much", () => {
  // 2 % 5xx and 10 % of requests slower than a second.
  const s = windowStatus(
    "1h",
    { requests: 1000, errors: 20, buckets: counts([900, 0.05], [100, 2.5]) },
    TARGETS,
    NOW,
  );
  assertEquals([s.availability.met, s.error_rate.met, s.latency.met, s.met], [
    false,
    false,
    false,
    false,
  ]);
  assertEquals(s.availability.error_budget.burn_rate, 4);
  assertEquals(s.availability.error_budget.remaining_percent, -300, "overspent");
  assertEquals(s.error_rate.error_budget.burn_rate, 2);
  assertEquals(s.latency.within_target_percent, 90);
  assertEquals(s.latency.error_budget.burn_rate, 2, "10 % slow of the 5 % allowed");
});

Deno.test("sla: no traffic is neither met nor breached", () => {
  const s = windowStatus("24h", { requests: 0, errors: 0, buckets: counts() }, TARGETS, NOW);
  assertEquals([s.met, s.availability.percent, s.latency.p95_ms], [null, null, null]);
  assertEquals(s.availability.error_budget.burn_rate, null);
});

Deno.test("sla: requests slower than a target inside a bucket are interpolated", () => {
  // 100 requests in (0.5, 0.75]: a target of 0.625 s has half of them slower.
  assertEquals(slowerThan(0.625, counts([100, 0.6])), 50);
  assertEquals(slowerThan(1, counts([100, 0.6], [7, 2])), 7, "a bound: exact");
});

Deno.test("sla: windows start on minutes (1h, 24h) or whole hours (7d, 30d)", () => {
  assertEquals(windowStart("1h", NOW).from.toISOString(), "2026-03-10T11:31:00.000Z");
  assertEquals(windowStart("24h", NOW).period, "minute");
  assertEquals(windowStart("7d", NOW).from.toISOString(), "2026-03-03T12:00:00.000Z");
  assertEquals(windowStart("30d", NOW).period, "hour");
});
