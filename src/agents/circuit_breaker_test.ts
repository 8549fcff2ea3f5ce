import { assertEquals } from "../../tests/support/assert.ts";
import { ManualClock, SECOND } from "../../tests/support/clock.ts";
import { createMetrics, setBreakerState } from "../observability/metrics.ts";
import { CircuitBreaker } from "./circuit_breaker.ts";

function setup() {
  const clock = new ManualClock();
  const metrics = createMetrics();
  const gauge = async () => {
    const values = (await metrics.breakerState.get()).values;
    return Object.fromEntries(values.map((v) => [v.labels.state, v.value]));
  };
  setBreakerState(metrics, "a", "closed");
  const breaker = new CircuitBreaker({
    failureThreshold: 3,
    openMs: 60 * SECOND,
    clock,
    onStateChange: (state) => setBreakerState(metrics, "a", state),
  });
  return { clock, breaker, gauge };
}

Deno.test("circuit breaker: every transition, and the gauge after each", async (t) => {
  const { clock, breaker, gauge } = setup();

  await t.step("starts CLOSED", async () => {
    assertEquals(breaker.state, "closed");
    assertEquals(await gauge(), { closed: 1, open: 0, half_open: 0 });
  });

  await t.step("stays CLOSED below the threshold; a success resets the count", async () => {
    breaker.admit();
    breaker.failure();
    breaker.admit();
    breaker.failure();
    assertEquals(breaker.consecutiveFailures, 2);
    breaker.admit();
    breaker.success();
    assertEquals(breaker.consecutiveFailures, 0);
    breaker.failure();
    breaker.failure();
    assertEquals(breaker.state, "closed");
    assertEquals(await gauge(), { closed: 1, open: 0, half_open: 0 });
  });

  await t.step("CLOSED → OPEN at the threshold", async () => {
    breaker.failure();
    assertEquals(breaker.state, "open");
    assertEquals(await gauge(), { closed: 0, open: 1, half_open: 0 });
  });

  await t.step("OPEN rejects until the cool-down has passed", () => {
    const rejected = breaker.admit();
    assertEquals(rejected, {
      admitted: false,
      retryAt: new Date(clock.now().getTime() + 60 * SECOND),
    });
    clock.advance(59 * SECOND);
    assertEquals(breaker.admit().admitted, false);
    assertEquals(breaker.state, "open");
  });

  await t.step("OPEN → HALF_OPEN after the cool-down, with one trial call", async () => {
    clock.advance(1 * SECOND);
    assertEquals(breaker.admit(), { admitted: true });
    assertEquals(breaker.state, "half_open");
    assertEquals(await gauge(), { closed: 0, open: 0, half_open: 1 });
    assertEquals(breaker.admit().admitted, false, "only one trial at a time");
  });

  await t.step("HALF_OPEN → OPEN when the trial fails", async () => {
    breaker.failure();
    assertEquals(breaker.state, "open");
    assertEquals(await gauge(), { closed: 0, open: 1, half_open: 0 });
    assertEquals(breaker.admit().admitted, false, "a fresh cool-down started");
  });

  await t.step("HALF_OPEN → CLOSED when the trial succeeds", async () => {
    clock.advance(60 * SECOND);
    assertEquals(breaker.admit(), { admitted: true });
    assertEquals(breaker.state, "half_open");
    breaker.success();
    assertEquals(breaker.state, "closed");
    assertEquals(await gauge(), { closed: 1, open: 0, half_open: 0 });
    assertEquals(breaker.admit(), { admitted: true });
  });
});
