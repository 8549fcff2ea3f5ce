/**
 * Time windows: business hours across a weekend and across daylight saving time changes, the
 * corner cases of skipped and repeated local hours, and a property (fast-check) checked against
 * an independent oracle, Temporal (built into Deno 2.9): `nextWindowOpening(t)` is never before
 * `t`, is inside the window, and no instant between `t` and it is inside.
 *
 * Runs: VIGIL_PROPERTY_RUNS (default 150); replay a failure with VIGIL_PROPERTY_SEED.
 */
import fc from "fast-check";
import { assert, assertEquals } from "../../tests/support/assert.ts";
import { type Day, DAYS } from "./schema.ts";
import {
  insideWindow,
  nextWindowOpening,
  offsetAt,
  offsetChanges,
  type ZonedWindow,
  zonedWindow,
} from "./window.ts";

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const WEEKDAYS: Day[] = ["mon", "tue", "wed", "thu", "fri"];

const business = (zone: string) =>
  zonedWindow({ days: WEEKDAYS, from: "09:00", to: "17:00" }, zone);
const next = (at: string, w: ZonedWindow) => nextWindowOpening(new Date(at), w).toISOString();

Deno.test("window: Friday 17:00 → Monday 09:00 (UTC), and inside means now", () => {
  const w = business("UTC");
  assertEquals(next("2026-01-02T17:00:00.000Z", w), "2026-01-05T09:00:00.000Z"); // Friday 17:00
  assertEquals(next("2026-01-03T12:00:00.000Z", w), "2026-01-05T09:00:00.000Z"); // Saturday
  assertEquals(next("2026-01-05T08:59:59.999Z", w), "2026-01-05T09:00:00.000Z");
  assertEquals(next("2026-01-02T16:59:59.999Z", w), "2026-01-02T16:59:59.999Z", "still inside");
  assertEquals(next("2026-01-05T09:00:00.000Z", w), "2026-01-05T09:00:00.000Z", "from: inside");
  assertEquals(next("2026-01-06T20:00:00.000Z", w), "2026-01-07T09:00:00.000Z", "next morning");
});

Deno.test("window: Europe/Berlin — 09:00 local is 08:00 UTC in winter, 07:00 UTC in summer", () => {
  const w = business("Europe/Berlin");
  // No change in between: January.
  assertEquals(next("2026-01-02T16:00:00.000Z", w), "2026-01-05T08:00:00.000Z");
  // Summer time starts on Sunday 29 March 2026 (02:00 → 03:00): Friday 17:00 CET → Monday 09:00
  // CEST, 63 hours later rather than 64.
  assertEquals(next("2026-03-27T16:00:00.000Z", w), "2026-03-30T07:00:00.000Z");
  // It ends on Sunday 25 October 2026 (03:00 → 02:00): Friday 17:00 CEST → Monday 09:00 CET.
  assertEquals(next("2026-10-23T15:00:00.000Z", w), "2026-10-26T08:00:00.000Z");
  // Friday 16:30 CEST is inside; 17:00 CEST (15:00 UTC) is not.
  assert(insideWindow(Date.parse("2026-10-23T14:30:00.000Z"), w));
  assert(!insideWindow(Date.parse("2026-10-23T15:00:00.000Z"), w));
});

Deno.test("window: America/New_York across its March change (second Sunday, 8 March 2026)", () => {
  const w = business("America/New_York");
  assertEquals(next("2026-03-06T22:00:00.000Z", w), "2026-03-09T13:00:00.000Z"); // EDT: −4
  assertEquals(next("2026-03-02T01:00:00.000Z", w), "2026-03-02T14:00:00.000Z"); // EST: −5
});

Deno.test("window: opening inside a skipped hour is the change itself; a repeated hour counts twice", () => {
  // 02:30 does not exist in Berlin on 29 March 2026: the window opens when 03:00 CEST begins.
  const gap = zonedWindow({ days: ["sun"], from: "02:30", to: "04:00" }, "Europe/Berlin");
  assertEquals(next("2026-03-28T12:00:00.000Z", gap), "2026-03-29T01:00:00.000Z");
  // A window only inside the skipped hour does not happen that Sunday: the next one.
  const lost = zonedWindow({ days: ["sun"], from: "02:10", to: "02:50" }, "Europe/Berlin");
  assertEquals(next("2026-03-28T12:00:00.000Z", lost), "2026-04-05T00:10:00.000Z");
  // 02:00–03:00 happens twice on 25 October 2026: after the first pass, the second.
  const twice = zonedWindow({ days: ["sun"], from: "02:30", to: "02:45" }, "Europe/Berlin");
  assertEquals(next("2026-10-25T00:00:00.000Z", twice), "2026-10-25T00:30:00.000Z"); // CEST
  assertEquals(next("2026-10-25T01:10:00.000Z", twice), "2026-10-25T01:30:00.000Z"); // CET
  // Set back into the middle of a window: it opens again at the change (02:00 CET), not at from.
  const back = zonedWindow({ days: ["sun"], from: "01:30", to: "02:30" }, "Europe/Berlin");
  assertEquals(next("2026-10-25T00:45:00.000Z", back), "2026-10-25T01:00:00.000Z");
});

Deno.test("window: half-hour zones and changes, whole days, midnight", () => {
  // Lord Howe moves by 30 minutes (+10:30 → +11 on 4 October 2026).
  const lh = zonedWindow({ days: ["mon"], from: "09:00", to: "10:00" }, "Australia/Lord_Howe");
  assertEquals(next("2026-10-01T00:00:00.000Z", lh), "2026-10-04T22:00:00.000Z");
  assertEquals(offsetAt(Date.parse("2026-10-01T00:00:00Z"), "Australia/Lord_Howe"), 10.5 * HOUR);
  const allSunday = zonedWindow({ days: ["sun"], from: "00:00", to: "24:00" }, "Asia/Kolkata");
  assertEquals(next("2026-01-03T18:29:00.000Z", allSunday), "2026-01-03T18:30:00.000Z");
  assert(insideWindow(Date.parse("2026-01-04T18:29:59.999Z"), allSunday), "until 24:00");
  assert(!insideWindow(Date.parse("2026-01-04T18:30:00.000Z"), allSunday), "Monday");
});

// ---- the property, against Temporal --------------------------------------------------------

const ZONES = [
  "UTC",
  "Europe/Berlin",
  "Europe/London",
  "America/New_York",
  "America/Santiago", // changes at midnight
  "America/St_Johns", // −03:30 / −02:30
  "Australia/Lord_Howe", // 30-minute change
  "Pacific/Chatham", // +12:45 / +13:45
  "Asia/Kathmandu", // +05:45
  "Africa/Casablanca", // suspended for Ramadan: two changes a year apart by weeks
  "Asia/Tehran", // no changes since 2022
] as const;

const JS_WEEKDAY: Record<Day, number> = { mon: 1, tue: 2, wed: 3, thu: 4, fri: 5, sat: 6, sun: 7 };

/** The oracle: inside, according to Temporal. */
function insideByTemporal(
  ms: number,
  zone: string,
  days: Day[],
  fromMin: number,
  toMin: number,
): boolean {
  const z = Temporal.Instant.fromEpochMilliseconds(ms).toZonedDateTimeISO(zone);
  if (!days.some((d) => JS_WEEKDAY[d] === z.dayOfWeek)) return false;
  const time = ((z.hour * 60 + z.minute) * 60 + z.second) * 1000 + z.millisecond;
  return time >= fromMin * MINUTE && time < toMin * MINUTE;
}

const hhmm = (minutes: number) =>
  `${String(Math.floor(minutes / 60)).padStart(2, "0")}:${String(minutes % 60).padStart(2, "0")}`;

const T_MIN = Date.UTC(2020, 0, 1);
const T_MAX = Date.UTC(2035, 0, 1);

/** An instant: anywhere in 2020–2035, or within days of one of the zone's changes. */
const instantIn = (zone: string) =>
  fc.oneof(
    fc.integer({ min: T_MIN, max: T_MAX }),
    fc.tuple(
      fc.integer({ min: T_MIN, max: T_MAX }),
      fc.oneof(fc.integer({ min: -3 * DAY, max: DAY }), fc.constantFrom(0, 1, -1, MINUTE, -MINUTE)),
    ).map(([ms, delta]) => {
      const change = Temporal.Instant.fromEpochMilliseconds(ms).toZonedDateTimeISO(zone)
        .getTimeZoneTransition("next");
      return (change?.epochMilliseconds ?? ms) + delta;
    }),
  );

// Window edges on quarter hours, so that inside/outside is constant on each UTC quarter hour
// (every offset since 2020 is a multiple of 15 minutes and every change happens on one): the
// oracle can check every quarter hour between t and the opening, which is every instant.
const windowArb = fc.record({
  days: fc.subarray([...DAYS], { minLength: 1 }),
  from: fc.integer({ min: 0, max: 95 }),
  span: fc.integer({ min: 1, max: 96 }),
}).map(({ days, from, span }) => ({
  days,
  fromMin: from * 15,
  toMin: Math.min(96, from + span) * 15,
}));

const runs = Number(Deno.env.get("VIGIL_PROPERTY_RUNS") ?? 150);
const seed = Deno.env.get("VIGIL_PROPERTY_SEED");
const property = { numRuns: runs, ...(seed ? { seed: Number(seed) } : {}) };

Deno.test("window: property — the opening is at or after t, inside, and nothing in between is inside", () => {
  fc.assert(
    fc.property(
      fc.constantFrom(...ZONES).chain((zone) =>
        fc.record({ zone: fc.constant(zone), t: instantIn(zone), window: windowArb })
      ),
      ({ zone, t, window: { days, fromMin, toMin } }) => {
        const w = zonedWindow({ days, from: hhmm(fromMin), to: hhmm(toMin) }, zone);
        const inside = (ms: number) => insideByTemporal(ms, zone, days, fromMin, toMin);
        const opening = nextWindowOpening(new Date(t), w).getTime();
        assert(opening >= t, `${new Date(opening).toISOString()} is before t`);
        assert(inside(opening), `${new Date(opening).toISOString()} is not inside`);
        assertEquals(insideWindow(t, w), inside(t), "inside at t agrees with Temporal");
        if (opening === t) return;
        assert(!inside(t), "t is inside, yet the opening is later");
        assert(!inside(opening - 1), "the instant just before the opening is inside");
        const QUARTER = 15 * MINUTE;
        for (let q = Math.floor(t / QUARTER) * QUARTER + QUARTER; q < opening; q += QUARTER) {
          assert(!inside(q), `${new Date(q).toISOString()}, before the opening, is inside`);
        }
      },
    ),
    property,
  );
});

Deno.test("window: property — the offset changes found are Temporal's", () => {
  fc.assert(
    fc.property(
      fc.constantFrom(...ZONES),
      fc.integer({ min: T_MIN, max: T_MAX }),
      (zone, start) => {
        const end = start + 60 * DAY;
        const expected: number[] = [];
        let z = Temporal.Instant.fromEpochMilliseconds(start).toZonedDateTimeISO(zone);
        for (;;) {
          const change = z.getTimeZoneTransition("next");
          if (!change || change.epochMilliseconds > end) break;
          expected.push(change.epochMilliseconds);
          z = change;
        }
        assertEquals(offsetChanges(start, end, zone).changes, expected);
        const offset = Temporal.Instant.fromEpochMilliseconds(start).toZonedDateTimeISO(zone)
          .offsetNanoseconds / 1e6;
        assertEquals(offsetAt(start, zone), offset);
      },
    ),
    { ...property, numRuns: Math.max(1, Math.floor(runs / 3)) },
  );
});
