import { assertEquals } from "../../tests/support/assert.ts";
import { RateLimiter } from "./rate_limiter.ts";

function manualLimiter() {
  const clock = { now: 0 };
  const slept: number[] = [];
  const limiter = new RateLimiter({
    perSecond: 2,
    now: () => clock.now,
    sleep: (ms) => {
      slept.push(ms);
      return Promise.resolve();
    },
  });
  return { clock, slept, limiter };
}

Deno.test("rate limiter: spaces callers 1/rate apart, in arrival order", async () => {
  const { clock, slept, limiter } = manualLimiter();
  await Promise.all([limiter.acquire(), limiter.acquire(), limiter.acquire()]);
  assertEquals(slept, [500, 1000]); // the first goes at once, then one every 500 ms
  clock.now = 5000; // idle for a while: no debt, no burst beyond one slot
  await limiter.acquire();
  await limiter.acquire();
  assertEquals(slept, [500, 1000, 500]);
});

Deno.test("rate limiter: a slot after the caller's latest start is refused and not taken", async () => {
  const { slept, limiter } = manualLimiter();
  const granted = await Promise.all([0, 1, 2, 3].map(() => limiter.acquire(1000)));
  assertEquals(granted, [true, true, true, false]); // slots at 0, 500, 1000; 1500 is too late
  assertEquals(slept, [500, 1000]);
  assertEquals(await limiter.acquire(), true, "the refused slot was not reserved");
  assertEquals(slept, [500, 1000, 1500]);
});

Deno.test("rate limiter: an aborted signal ends the wait with false, at once", async () => {
  const limiter = new RateLimiter({ perSecond: 0.001 }); // one slot every 1,000 s
  assertEquals(await limiter.acquire(), true);
  const stop = new AbortController();
  const waiting = limiter.acquire(Infinity, stop.signal);
  stop.abort();
  assertEquals(await waiting, false);
  assertEquals(await limiter.acquire(Infinity, AbortSignal.abort()), false);
});
