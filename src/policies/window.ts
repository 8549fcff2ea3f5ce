/**
 * Time windows in a time zone, with plain `Intl` (no time-zone library).
 *
 * An instant is inside a window when its local wall time, in the window's zone, falls on one of
 * its days at or after `from` and before `to`. Every instant has exactly one local wall time, so
 * this is defined across daylight saving time changes too: on the night a zone skips an hour
 * (02:00 → 03:00) the skipped local times never happen, and on the night it repeats one both
 * passes count.
 *
 * `nextWindowOpening(t)` is the earliest instant at or after `t` inside the window. Being
 * outside and then inside can only start where the local time reaches `from` on a window day, or
 * where the zone's offset changes (a jump over `from`, or back into the window). So the candidates
 * are those instants — `from` on each day of the next two weeks converted to UTC with every
 * offset the zone has in that span (and kept only when the conversion round-trips), and every
 * offset change, found by sampling the offset and bisecting — and the answer is the first of them
 * that is inside. Offsets come from `Intl.DateTimeFormat#formatToParts`.
 */
import { type Day, minutesOf } from "./schema.ts";

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
/** A window opens at least once a week; two, in case a DST change skips its only hours once. */
const HORIZON_MS = 16 * DAY;
/** Offset changes are found by sampling this often (no zone changes twice within 6 hours). */
const SAMPLE_MS = 6 * HOUR;

/** A window ready for computing: days as JavaScript weekdays (0 = Sunday), times in ms. */
export interface ZonedWindow {
  days: ReadonlySet<number>;
  /** From local midnight, inclusive. */
  fromMs: number;
  /** From local midnight, exclusive (24 h: to midnight). */
  toMs: number;
  timeZone: string;
}

const WEEKDAY: Record<Day, number> = { sun: 0, mon: 1, tue: 2, wed: 3, thu: 4, fri: 5, sat: 6 };

export function zonedWindow(
  w: { days: readonly Day[]; from: string; to: string; time_zone?: string },
  defaultZone: string,
): ZonedWindow {
  return {
    days: new Set(w.days.map((d) => WEEKDAY[d])),
    fromMs: minutesOf(w.from) * MINUTE,
    toMs: minutesOf(w.to) * MINUTE,
    timeZone: w.time_zone ?? defaultZone,
  };
}

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat("en-US", {
      timeZone,
      hourCycle: "h23",
      era: "short",
      year: "numeric",
      month: "numeric",
      day: "numeric",
      hour: "numeric",
      minute: "numeric",
      second: "numeric",
    });
    formatters.set(timeZone, f);
  }
  return f;
}

/**
 * The local wall time of instant `ms` in `timeZone`, as the UTC instant with the same reading
 * ("local ms"): its UTC date is the local date, and `localMs - ms` is the zone's offset then.
 */
export function localMs(ms: number, timeZone: string): number {
  let year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0, bc = false;
  for (const part of formatter(timeZone).formatToParts(ms)) {
    switch (part.type) {
      case "era":
        bc = part.value.startsWith("B");
        break;
      case "year":
        year = Number(part.value);
        break;
      case "month":
        month = Number(part.value);
        break;
      case "day":
        day = Number(part.value);
        break;
      case "hour":
        hour = Number(part.value);
        break;
      case "minute":
        minute = Number(part.value);
        break;
      case "second":
        second = Number(part.value);
        break;
    }
  }
  const date = new Date(0);
  date.setUTCFullYear(bc ? 1 - year : year, month - 1, day);
  date.setUTCHours(hour, minute, second, 0);
  // formatToParts drops the milliseconds (rounding towards the past).
  return date.getTime() + (((ms % 1000) + 1000) % 1000);
}

/** The zone's offset from UTC at instant `ms`, in ms (Berlin: +1 h in winter, +2 h in summer). */
export function offsetAt(ms: number, timeZone: string): number {
  return localMs(ms, timeZone) - ms;
}

const mod = (a: number, n: number) => ((a % n) + n) % n;

/** Is instant `ms` inside the window? */
export function insideWindow(ms: number, w: ZonedWindow): boolean {
  const local = localMs(ms, w.timeZone);
  const weekday = mod(Math.floor(local / DAY) + 4, 7); // 1970-01-01 was a Thursday
  if (!w.days.has(weekday)) return false;
  const time = mod(local, DAY);
  return time >= w.fromMs && time < w.toMs;
}

/** The first instant in (lo, hi] whose offset differs from `offset` (the offset at lo). */
function firstChange(lo: number, hi: number, offset: number, timeZone: string): number {
  while (hi - lo > 1) {
    const mid = lo + Math.floor((hi - lo) / 2);
    if (offsetAt(mid, timeZone) === offset) lo = mid;
    else hi = mid;
  }
  return hi;
}

/** The instants in [start, end] where the zone's offset changes, and every offset it has there. */
export function offsetChanges(
  start: number,
  end: number,
  timeZone: string,
): { changes: number[]; offsets: Set<number> } {
  const changes: number[] = [];
  let offset = offsetAt(start, timeZone);
  const offsets = new Set([offset]);
  let cursor = start;
  while (cursor < end) {
    const next = Math.min(cursor + SAMPLE_MS, end);
    if (offsetAt(next, timeZone) === offset) {
      cursor = next;
      continue;
    }
    cursor = firstChange(cursor, next, offset, timeZone);
    offset = offsetAt(cursor, timeZone);
    changes.push(cursor);
    offsets.add(offset);
  }
  return { changes, offsets };
}

/**
 * The earliest instant at or after `t` inside the window: `t` itself when it is inside. Never
 * before `t`, always inside, and no instant between `t` and it is inside (property-tested in
 * window_test.ts against Temporal).
 */
export function nextWindowOpening(t: Date, w: ZonedWindow): Date {
  const start = t.getTime();
  if (insideWindow(start, w)) return t;
  if (w.days.size === 0 || w.toMs <= w.fromMs) {
    throw new RangeError("the window never opens: it needs a day and from before to");
  }
  // Two weeks at most, in two spans (the first one nearly always has the opening).
  for (let from = start; from < start + HORIZON_MS; from += HORIZON_MS / 2) {
    const opening = firstOpeningIn(from, from + HORIZON_MS / 2, w);
    if (opening !== undefined) return new Date(opening);
  }
  throw new RangeError(`the window does not open within ${HORIZON_MS / DAY} days`);
}

/** The first instant in [start, end] inside the window, if any (start is not inside). */
function firstOpeningIn(start: number, end: number, w: ZonedWindow): number | undefined {
  const { changes, offsets } = offsetChanges(start, end, w.timeZone);
  const candidates = [...changes];
  // `from` on each local day around the span, on window days, at each offset seen.
  const firstDay = Math.floor(localMs(start, w.timeZone) / DAY) - 1;
  const lastDay = Math.floor(localMs(end, w.timeZone) / DAY) + 1;
  for (let day = firstDay; day <= lastDay; day++) {
    if (!w.days.has(mod(day + 4, 7))) continue;
    const wall = day * DAY + w.fromMs;
    for (const offset of offsets) {
      const at = wall - offset;
      // Kept only if that offset holds then: a local time skipped by a change has no instant.
      if (at >= start && at <= end && offsetAt(at, w.timeZone) === offset) candidates.push(at);
    }
  }
  candidates.sort((a, b) => a - b);
  return candidates.find((at) => insideWindow(at, w));
}
