import { assertEquals } from "../../tests/support/assert.ts";
import { RateLimiter } from "./rate_limiter.ts";

Deno.test("rate limiter: spaces callers 1/rate apart, in arrival order", async () => {
  let now = 0;
  const slept: number[] = [];
  const limiter = new RateLimiter({
    perSecond: 2,
    now: () => now,
    sleep: (ms) => {
      slept.push(ms);
      return Promise.resolve();
    },
  });
  await Promise.all([limiter.acquire(), limiter.acquire(), limiter.acquire()]);
  assertEquals(slept, [500, 1000]); // the first goes at once, then one every 500 ms
  now = 5000; // idle for a while: no debt, no burst beyond one slot
  await limiter.acquire();
  await limiter.acquire();
  assertEquals(slept, [500, 1000, 500]);
});
