import { assert, assertEquals } from "../../tests/support/assert.ts";
import { ManualClock } from "../../tests/support/clock.ts";
import { SingleFlightCache } from "./single_flight.ts";

Deno.test("single flight cache: one computation, reused for its period, stale while revalidating, the last good value on failure", async () => {
  const clock = new ManualClock();
  const cache = new SingleFlightCache<number>(clock, 10_000);
  let calls = 0;
  let release!: () => void;
  let gate = new Promise<void>((r) => (release = r));
  const compute = async () => {
    calls++;
    await gate;
    return calls;
  };
  const all = Promise.all([cache.get("k", compute), cache.get("k", compute)]);
  release();
  assertEquals(await all, [1, 1], "concurrent callers of a new key share one computation");
  clock.advance(9_999);
  assertEquals(await cache.get("k", compute), 1, "reused within its period");
  clock.advance(1);
  gate = new Promise<void>((r) => (release = r));
  assertEquals(await cache.get("k", compute), 1, "expired: answered at once, recomputed behind");
  assertEquals(await cache.get("k", compute), 1, "one recomputation at a time");
  assertEquals(calls, 2);
  release();
  await new Promise((r) => setTimeout(r, 0));
  assertEquals(await cache.get("k", compute), 2, "the new value once computed");

  let fail = true;
  const flaky = () => (fail ? Promise.reject(new Error("db down")) : Promise.resolve(7));
  await cache.get("f", flaky).then(() => assert(false), (e) => assertEquals(e.message, "db down"));
  fail = false;
  assertEquals(await cache.get("f", flaky), 7, "a first failure is not kept");
  // The database goes away: the last good value is answered, and tried again a period later.
  fail = true;
  let tries = 0;
  const down = () => (tries++, flaky());
  clock.advance(10_000);
  assertEquals(await cache.get("f", down), 7, "stale, not an error");
  await new Promise((r) => setTimeout(r, 0));
  assertEquals(await cache.get("f", down), 7);
  assertEquals(tries, 1, "one attempt per period while it fails");
  clock.advance(10_000);
  assertEquals(await cache.get("f", down), 7);
  assertEquals(tries, 2);
  clock.advance(3_620_000);
  await cache.get("other", () => Promise.resolve(0));
  assertEquals(cache.size, 1, "expired entries are dropped");
});
