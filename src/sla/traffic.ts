/**
 * vigil's own API traffic for /sla/status: every request http_requests_total counts (the /v1
 * routes) is added here in memory, per minute and route — requests, 5xx, and its duration in the
 * buckets of http_request_duration_seconds — and flushed every few seconds into `sla_traffic`
 * (per minute and per hour), added to what other replicas and earlier processes wrote. So the
 * SLA covers every replica and survives restarts.
 *
 * A flush that fails (the database away) keeps its counts for the next one: requests answered
 * 503 during an outage are counted once it is back. What a replica had not flushed when it was
 * killed is lost (at most FLUSH_INTERVAL_MS of its traffic); held counts are bounded
 * (MAX_HELD_KEYS minutes × routes), beyond which the oldest are dropped and counted
 * (sla_traffic_dropped_total).
 */
import type { Clock } from "../clock.ts";
import type { Sql } from "../db/database.ts";
import type { Logger } from "../observability/logger.ts";
import { HTTP_BUCKETS } from "../observability/metrics.ts";
import { addCounts, bucketIndex, emptyCounts } from "../util/histogram.ts";

export const FLUSH_INTERVAL_MS = 10_000;
/** A day of minutes for 50 routes: an outage longer than that loses its oldest counts. */
export const MAX_HELD_KEYS = 1440 * 50;

const MINUTE_MS = 60_000;
const HOUR_MS = 3_600_000;

interface Counts {
  requests: number;
  errors: number;
  durationSum: number;
  buckets: number[];
}

export class SlaTraffic {
  /** "minute ms|route" → counts since the last flush. */
  #pending = new Map<string, Counts>();
  #timer: ReturnType<typeof setInterval> | undefined;
  #flushing: Promise<void> | undefined;
  constructor(
    private readonly deps: {
      sql: Sql;
      clock: Clock;
      logger: Logger;
      /** Requests whose counts were dropped, held longer than the bound allows (a metric). */
      onDropped?: (requests: number) => void;
    },
  ) {}

  /** One API request: its route pattern, status and duration. */
  observe(route: string, status: number, seconds: number): void {
    const minute = Math.floor(this.deps.clock.now().getTime() / MINUTE_MS) * MINUTE_MS;
    const key = `${minute}|${route}`;
    let counts = this.#pending.get(key);
    if (!counts) {
      counts = { requests: 0, errors: 0, durationSum: 0, buckets: emptyCounts(HTTP_BUCKETS) };
      this.#pending.set(key, counts);
    }
    counts.requests++;
    if (status >= 500) counts.errors++;
    counts.durationSum += seconds;
    counts.buckets[bucketIndex(HTTP_BUCKETS, seconds)]++;
  }

  start(): void {
    this.#timer ??= setInterval(() => void this.flush(), FLUSH_INTERVAL_MS);
    Deno.unrefTimer(this.#timer);
  }

  /** Stops the timer and flushes what is left (shutdown). */
  async stop(): Promise<void> {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    await this.flush();
  }

  /** Writes the counts held so far; concurrent callers share one flush. Never throws. */
  flush(): Promise<void> {
    return this.#flushing ??= this.#flush().finally(() => (this.#flushing = undefined));
  }

  async #flush(): Promise<void> {
    if (this.#pending.size === 0) return;
    const batch = this.#pending;
    this.#pending = new Map();
    try {
      await writeTraffic(this.deps.sql, batch);
    } catch (error) {
      // Kept for the next flush, added to what came meanwhile.
      for (const [key, counts] of batch) {
        const now = this.#pending.get(key);
        if (now) merge(now, counts);
        else this.#pending.set(key, counts);
      }
      this.#bound();
      this.deps.logger.warn("SLA traffic could not be written, kept for the next flush: {error}", {
        error: error instanceof Error ? error.message : String(error),
      });
    }
  }

  /** Drops the oldest held minutes beyond MAX_HELD_KEYS. */
  #bound(): void {
    if (this.#pending.size <= MAX_HELD_KEYS) return;
    const keys = [...this.#pending.keys()].sort((a, b) => parseInt(a) - parseInt(b));
    let dropped = 0;
    for (const key of keys.slice(0, this.#pending.size - MAX_HELD_KEYS)) {
      dropped += this.#pending.get(key)!.requests;
      this.#pending.delete(key);
    }
    this.deps.onDropped?.(dropped);
    this.deps.logger.error("SLA traffic held too long: {dropped} requests dropped", { dropped });
  }
}

function merge(into: Counts, more: Counts): void {
  into.requests += more.requests;
  into.errors += more.errors;
  into.durationSum += more.durationSum;
  addCounts(into.buckets, more.buckets);
}

/** Adds per-minute counts to `sla_traffic`, per minute and per hour, in one statement. */
export async function writeTraffic(sql: Sql, byMinute: Map<string, Counts>): Promise<void> {
  const rows = new Map<string, { period: string; bucket: number; route: string } & Counts>();
  for (const [key, counts] of byMinute) {
    const bar = key.indexOf("|");
    const minute = Number(key.slice(0, bar));
    const route = key.slice(bar + 1);
    for (
      const [period, bucket] of [["minute", minute], [
        "hour",
        Math.floor(minute / HOUR_MS) * HOUR_MS,
      ]] as const
    ) {
      const k = `${period}|${bucket}|${route}`;
      const row = rows.get(k);
      if (row) merge(row, counts);
      else rows.set(k, { period, bucket, route, ...counts, buckets: [...counts.buckets] });
    }
  }
  // In key order: replicas flushing at once lock the same rows in the same order.
  const key = (r: { period: string; bucket: number; route: string }) =>
    `${r.period}|${String(r.bucket).padStart(15, "0")}|${r.route}`;
  const sorted = [...rows.values()].sort((a, b) => (key(a) < key(b) ? -1 : 1)).map((r) => ({
    period: r.period,
    bucket: new Date(r.bucket).toISOString(),
    route: r.route,
    requests: r.requests,
    errors: r.errors,
    duration_sum: r.durationSum,
    buckets: r.buckets,
  }));
  await sql`
    insert into sla_traffic as s (period, bucket, route, requests, errors, duration_sum_seconds,
                                  duration_buckets)
    select period, bucket, route, requests, errors, duration_sum, buckets
    from jsonb_to_recordset(${sql.json(sorted as never)}) as t(
      period text, bucket timestamptz, route text, requests bigint, errors bigint,
      duration_sum double precision, buckets bigint[])
    on conflict (period, bucket, route) do update set
      requests = s.requests + excluded.requests,
      errors = s.errors + excluded.errors,
      duration_sum_seconds = s.duration_sum_seconds + excluded.duration_sum_seconds,
      duration_buckets = array(
        select coalesce(a, 0) + coalesce(b, 0)
        from unnest(s.duration_buckets, excluded.duration_buckets) with ordinality as u(a, b, i)
        order by i)`;
}
