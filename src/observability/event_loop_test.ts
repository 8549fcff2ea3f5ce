import { assert, assertEquals } from "../../tests/support/assert.ts";
import { EventLoopLag } from "./event_loop.ts";
import { createMetrics } from "./metrics.ts";

async function lagObservations(metrics: ReturnType<typeof createMetrics>) {
  const metric = await metrics.eventLoopLag.get();
  const count = metric.values.find((v) => v.metricName?.endsWith("_count"))?.value ?? 0;
  const sum = metric.values.find((v) => v.metricName?.endsWith("_sum"))?.value ?? 0;
  return { count, sum };
}

Deno.test("event-loop lag: a blocked loop is measured as lag", async () => {
  const metrics = createMetrics();
  const lag = new EventLoopLag(metrics, 20);
  lag.start();
  try {
    await new Promise((r) => setTimeout(r, 60));
    const blockedMs = 150;
    const until = performance.now() + blockedMs;
    while (performance.now() < until) { /* block the loop on purpose */ }
    await new Promise((r) => setTimeout(r, 60));
  } finally {
    lag.stop();
  }
  const { count, sum } = await lagObservations(metrics);
  assert(count >= 2, `observations: ${count}`);
  // The blocked stretch (less the timer's own interval) is in the sum: a lower bound only.
  assert(sum >= 0.1, `lag sum ${sum} s after blocking 150 ms`);
});

Deno.test("event-loop lag: stopped, it records nothing more", async () => {
  const metrics = createMetrics();
  const lag = new EventLoopLag(metrics, 10);
  lag.start();
  lag.stop();
  await new Promise((r) => setTimeout(r, 40));
  assertEquals((await lagObservations(metrics)).count, 0);
});
