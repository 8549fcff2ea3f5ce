import fc from "fast-check";
import { assertEquals } from "../../tests/support/assert.ts";
import { addCounts, bucketIndex, emptyCounts, quantile } from "./histogram.ts";

const BOUNDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const runs = Number(Deno.env.get("VIGIL_PROPERTY_RUNS") ?? 300);
const seed = Deno.env.get("VIGIL_PROPERTY_SEED");
const params = { numRuns: runs, ...(seed ? { seed: Number(seed) } : {}) };

Deno.test("histogram: a value falls in the first bucket whose bound is not below it", () => {
  assertEquals(bucketIndex(BOUNDS, 0), 0);
  assertEquals(bucketIndex(BOUNDS, 0.005), 0, "bounds are inclusive, like Prometheus' le");
  assertEquals(bucketIndex(BOUNDS, 0.0051), 1);
  assertEquals(bucketIndex(BOUNDS, 10), BOUNDS.length - 1);
  assertEquals(bucketIndex(BOUNDS, 11), BOUNDS.length, "+Inf");
});

Deno.test("histogram: quantile reads the buckets like histogram_quantile", () => {
  // 100 observations: 50 in (0, 0.005], 50 in (0.005, 0.01].
  const counts = emptyCounts(BOUNDS);
  counts[0] = 50;
  counts[1] = 50;
  assertEquals(quantile(0.5, BOUNDS, counts), 0.005);
  assertEquals(quantile(0.95, BOUNDS, counts), 0.005 + 0.005 * (45 / 50));
  assertEquals(quantile(0.95, BOUNDS, emptyCounts(BOUNDS)), null, "nothing observed");
  const inf = emptyCounts(BOUNDS);
  inf[BOUNDS.length] = 3;
  assertEquals(quantile(0.95, BOUNDS, inf), 10, "+Inf: the highest finite bound");
});

Deno.test("histogram: property — the quantile lies in the bucket of the exact sample quantile", () => {
  fc.assert(
    fc.property(
      fc.array(fc.double({ min: 0, max: 20, noNaN: true }), { minLength: 1, maxLength: 200 }),
      fc.double({ min: 0.01, max: 1, noNaN: true }),
      fc.integer({ min: 1, max: 4 }),
      (values, q, parts) => {
        const counts = emptyCounts(BOUNDS);
        for (const v of values) counts[bucketIndex(BOUNDS, v)]++;
        // Split into parts and added back: the same histogram (rollups, replicas).
        const split = Array.from({ length: parts }, () => emptyCounts(BOUNDS));
        values.forEach((v, i) => split[i % parts][bucketIndex(BOUNDS, v)]++);
        const merged = split.reduce((into, c) => addCounts(into, c), emptyCounts(BOUNDS));
        assertEquals(merged, counts);

        const sorted = [...values].sort((a, b) => a - b);
        const exact = sorted[Math.max(0, Math.ceil(q * sorted.length) - 1)];
        const i = bucketIndex(BOUNDS, exact);
        const lo = i === 0 ? 0 : BOUNDS[i - 1];
        const hi = i < BOUNDS.length ? BOUNDS[i] : BOUNDS[BOUNDS.length - 1];
        const estimate = quantile(q, BOUNDS, counts)!;
        if (!(estimate >= Math.min(lo, hi) - 1e-12 && estimate <= hi + 1e-12)) {
          throw new Error(`q=${q}: ${estimate} outside (${lo}, ${hi}] of exact ${exact}`);
        }
      },
    ),
    params,
  );
});
