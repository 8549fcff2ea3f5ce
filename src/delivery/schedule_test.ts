import fc from "fast-check";
import { assert } from "../../tests/support/assert.ts";
import { dueAfter, MAX_DELAY_MS } from "./schedule.ts";
import { retryAfterMs } from "./channels/email.ts";

const runs = Number(Deno.env.get("VIGIL_PROPERTY_RUNS") ?? 500);
const seed = Deno.env.get("VIGIL_PROPERTY_SEED");

Deno.test("schedule: any delay, and any Retry-After a receiver sends, gives a due time in range", () => {
  const header = fc.oneof(
    fc.string(),
    fc.double().map(String),
    fc.integer().map(String),
    fc.date({ noInvalidDate: true }).map((d) => d.toUTCString()),
  );
  fc.assert(
    fc.property(
      fc.date({ min: new Date("2000-01-01"), max: new Date("2100-01-01"), noInvalidDate: true }),
      fc.oneof(fc.double(), header.map((h) => retryAfterMs(h) ?? 0)),
      (at, delay) => {
        const due = dueAfter(at, delay).getTime();
        assert(Number.isFinite(due), `invalid due time for ${delay}`);
        assert(due >= at.getTime() && due <= at.getTime() + MAX_DELAY_MS, `${delay} → ${due}`);
        // Never earlier than asked, up to the cap (a huge or infinite delay is the cap, not 0).
        const asked = Number.isNaN(delay) ? 0 : Math.min(Math.max(delay, 0), MAX_DELAY_MS);
        assert(due - at.getTime() >= Math.floor(asked), `${delay} came due early`);
      },
    ),
    { numRuns: runs, ...(seed ? { seed: Number(seed) } : {}) },
  );
});
