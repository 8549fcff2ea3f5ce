/**
 * Check history: every alert evaluation is a check result (ok = the condition could be evaluated
 * and did not match), written with the hourly and daily (UTC) rollups it adds to in one
 * statement per batch of evaluations. Uptime over 1 h and 24 h is read from the results
 * themselves; 7 d from hourly rollups, 30 d and 90 d from daily ones, so that no view reads more
 * than a few hundred rows per alert. Downtime is the lifecycle's episodes (firing until resolved).
 */
import type { Queryable, Sql } from "../db/database.ts";
import { addCounts, bucketIndex, emptyCounts, quantile } from "../util/histogram.ts";

/** Check latency histogram bounds (ms): the rollups' `latency_buckets` count per bucket. */
export const CHECK_LATENCY_BOUNDS_MS = [
  10,
  25,
  50,
  100,
  250,
  500,
  1000,
  2500,
  5000,
  10_000,
  30_000,
] as const;

export interface CheckResult {
  alert_id: string;
  at: Date;
  ok: boolean;
  /** The condition's value when it is a number. */
  value: number | null;
  duration_ms: number;
  error: string | null;
}

const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;

const floorTo = (at: Date, ms: number) => new Date(Math.floor(at.getTime() / ms) * ms);

interface RollupRow {
  alert_id: string;
  period: "hour" | "day";
  bucket: string;
  evaluations: number;
  ok: number;
  min: number;
  max: number;
  sum: number;
  buckets: number[];
}

/**
 * A duration as stored: to 0.01 ms, as a `real` (so that its bucket here is the bucket of the
 * value in the row).
 */
const storedMs = (ms: number) => Math.fround(Math.round(Math.max(0, ms) * 100) / 100);

/** The rollup rows a batch of results adds to, one per (alert, period, bucket), in key order. */
export function rollupsOf(results: readonly CheckResult[]): RollupRow[] {
  const rows = new Map<string, RollupRow>();
  for (const r of results) {
    for (const [period, ms] of [["hour", HOUR_MS], ["day", DAY_MS]] as const) {
      const bucket = floorTo(r.at, ms).toISOString();
      const key = `${r.alert_id} ${period} ${bucket}`;
      let row = rows.get(key);
      if (!row) {
        row = {
          alert_id: r.alert_id,
          period,
          bucket,
          evaluations: 0,
          ok: 0,
          min: Number.POSITIVE_INFINITY,
          max: 0,
          sum: 0,
          buckets: emptyCounts(CHECK_LATENCY_BOUNDS_MS),
        };
        rows.set(key, row);
      }
      row.evaluations++;
      if (r.ok) row.ok++;
      const took = storedMs(r.duration_ms);
      row.min = Math.min(row.min, took);
      row.max = Math.max(row.max, took);
      row.sum += took;
      row.buckets[bucketIndex(CHECK_LATENCY_BOUNDS_MS, took)]++;
    }
  }
  // Key order: two statements adding to the same rows lock them in the same order.
  return [...rows.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, r]) => r);
}

/** Writes a batch of check results and their rollups in one statement. */
export async function recordChecks(sql: Queryable, results: readonly CheckResult[]) {
  if (results.length === 0) return;
  const raw = results.map((r) => ({
    alert_id: r.alert_id,
    at: r.at.toISOString(),
    ok: r.ok,
    value: r.value !== null && Number.isFinite(r.value) ? r.value : null,
    duration_ms: storedMs(r.duration_ms),
    // An error message is for the user who owns the alert, kept short.
    error: r.error === null ? null : r.error.slice(0, 500),
  }));
  await sql`
    with raw as (
      insert into check_results (alert_id, at, ok, value, duration_ms, error)
      select alert_id, at, ok, value, duration_ms, error
      from jsonb_to_recordset(${sql.json(raw as never)}) as t(
        alert_id uuid, at timestamptz, ok boolean, value double precision, duration_ms real,
        error text)
      -- The alert may have been deleted since it was evaluated: its result goes with it, not
      -- the batch's.
      where exists (select 1 from alerts a where a.id = t.alert_id)
    )
    insert into check_rollups as r (alert_id, period, bucket, evaluations, ok, latency_min_ms,
                                     latency_max_ms, latency_sum_ms, latency_buckets)
    select alert_id, period, bucket, evaluations, ok, min, max, sum, buckets
    from jsonb_to_recordset(${sql.json(rollupsOf(results) as never)}) as t(
      alert_id uuid, period text, bucket timestamptz, evaluations integer, ok integer, min real,
      max real, sum double precision, buckets integer[])
    where exists (select 1 from alerts a where a.id = t.alert_id)
    on conflict (alert_id, period, bucket) do update set
      evaluations = r.evaluations + excluded.evaluations,
      ok = r.ok + excluded.ok,
      latency_min_ms = least(r.latency_min_ms, excluded.latency_min_ms),
      latency_max_ms = greatest(r.latency_max_ms, excluded.latency_max_ms),
      latency_sum_ms = r.latency_sum_ms + excluded.latency_sum_ms,
      latency_buckets = array(
        select coalesce(a, 0) + coalesce(b, 0)
        from unnest(r.latency_buckets, excluded.latency_buckets) with ordinality as u(a, b, i)
        order by i)`;
}

export const UPTIME_WINDOWS = ["1h", "24h", "7d", "30d", "90d"] as const;
export type UptimeWindow = typeof UPTIME_WINDOWS[number];

/**
 * Where a window's figures come from and since when: 1 h and 24 h exactly (raw results), 7 d
 * from whole hours (the current one and the 168 before it, so up to an hour more), 30 d and 90 d
 * from whole UTC days (today and the 29 or 89 before).
 */
export function windowSource(window: UptimeWindow, now: Date) {
  switch (window) {
    case "1h":
      return { source: "results" as const, from: new Date(now.getTime() - HOUR_MS) };
    case "24h":
      return { source: "results" as const, from: new Date(now.getTime() - DAY_MS) };
    case "7d":
      return {
        source: "hour" as const,
        from: floorTo(new Date(now.getTime() - 7 * DAY_MS), HOUR_MS),
      };
    case "30d":
      return {
        source: "day" as const,
        from: new Date(floorTo(now, DAY_MS).getTime() - 29 * DAY_MS),
      };
    case "90d":
      return {
        source: "day" as const,
        from: new Date(floorTo(now, DAY_MS).getTime() - 89 * DAY_MS),
      };
  }
}

export interface Downtime {
  episode_id: string;
  started_at: Date;
  /** null: still down. */
  ended_at: Date | null;
  /** Inside the window. */
  duration_seconds: number;
}

export interface Uptime {
  window: UptimeWindow;
  from: Date;
  to: Date;
  /** null: not evaluated in the window. */
  uptime_percent: number | null;
  evaluations: number;
  failures: number;
  latency_avg_ms: number | null;
  latency_p95_ms: number | null;
  downtime: Downtime[];
  downtime_seconds: number;
}

interface Totals {
  evaluations: number;
  ok: number;
  latency_avg_ms: number | null;
  latency_p95_ms: number | null;
}

async function totalsFromResults(sql: Queryable, alertId: string, from: Date, to: Date) {
  const [row] = await sql<
    { evaluations: number; ok: number; avg: number | null; p95: number | null }[]
  >`
    select count(*)::int as evaluations, (count(*) filter (where ok))::int as ok,
           avg(duration_ms)::float8 as avg,
           (percentile_cont(0.95) within group (order by duration_ms))::float8 as p95
    from check_results where alert_id = ${alertId} and at > ${from} and at <= ${to}`;
  return {
    evaluations: row.evaluations,
    ok: row.ok,
    latency_avg_ms: row.avg,
    latency_p95_ms: row.p95,
  };
}

async function totalsFromRollups(
  sql: Queryable,
  alertId: string,
  period: "hour" | "day",
  from: Date,
): Promise<Totals> {
  const rows = await sql<
    { evaluations: number; ok: number; latency_sum_ms: number; latency_buckets: number[] }[]
  >`
    select evaluations, ok, latency_sum_ms, latency_buckets from check_rollups
    where alert_id = ${alertId} and period = ${period} and bucket >= ${from}`;
  const counts = emptyCounts(CHECK_LATENCY_BOUNDS_MS);
  let evaluations = 0, ok = 0, sum = 0;
  for (const r of rows) {
    evaluations += r.evaluations;
    ok += r.ok;
    sum += r.latency_sum_ms;
    addCounts(counts, r.latency_buckets);
  }
  return {
    evaluations,
    ok,
    latency_avg_ms: evaluations ? sum / evaluations : null,
    latency_p95_ms: quantile(0.95, CHECK_LATENCY_BOUNDS_MS, counts),
  };
}

/** The firing episodes of an alert that overlap [from, to], clipped to it. */
export async function downtimes(sql: Queryable, alertId: string, from: Date, to: Date) {
  const rows = await sql<{ id: string; started_at: Date; ended_at: Date | null }[]>`
    select id, started_at, ended_at from alert_episodes
    where alert_id = ${alertId} and started_at < ${to} and (ended_at is null or ended_at > ${from})
    order by started_at`;
  return rows.map((e): Downtime => {
    const start = Math.max(e.started_at.getTime(), from.getTime());
    const end = Math.min(e.ended_at?.getTime() ?? to.getTime(), to.getTime());
    return {
      episode_id: e.id,
      started_at: e.started_at,
      ended_at: e.ended_at,
      duration_seconds: Math.max(0, Math.round((end - start) / 1000)),
    };
  });
}

/** `ok` of `n` in percent, to four decimals; null without evaluations. */
export const percent = (ok: number, n: number) => (n ? Math.round((ok / n) * 1e6) / 1e4 : null);

function windowTotals(sql: Sql, alertId: string, window: UptimeWindow, now: Date) {
  const { source, from } = windowSource(window, now);
  return source === "results"
    ? totalsFromResults(sql, alertId, from, now)
    : totalsFromRollups(sql, alertId, source, from);
}

/** The uptime percentage alone (a badge): no downtime intervals read. */
export async function uptimePercent(
  sql: Sql,
  alertId: string,
  window: UptimeWindow,
  now: Date,
): Promise<number | null> {
  const totals = await windowTotals(sql, alertId, window, now);
  return percent(totals.ok, totals.evaluations);
}

export async function uptime(
  sql: Sql,
  alertId: string,
  window: UptimeWindow,
  now: Date,
): Promise<Uptime> {
  const { from } = windowSource(window, now);
  const [totals, downtime] = await Promise.all([
    windowTotals(sql, alertId, window, now),
    downtimes(sql, alertId, from, now),
  ]);
  return {
    window,
    from,
    to: now,
    uptime_percent: percent(totals.ok, totals.evaluations),
    evaluations: totals.evaluations,
    failures: totals.evaluations - totals.ok,
    latency_avg_ms: totals.latency_avg_ms,
    latency_p95_ms: totals.latency_p95_ms,
    downtime,
    downtime_seconds: downtime.reduce((s, d) => s + d.duration_seconds, 0),
  };
}

export interface Period {
  /** Start of the hour or UTC day. */
  start: Date;
  evaluations: number;
  ok: number;
  uptime_percent: number | null;
  /** The latency of its evaluations, added up (its average is this ÷ evaluations). */
  latency_sum_ms: number;
}

/**
 * The hourly or daily rollups of many alerts since `from` (the status page's bars and
 * sparklines): one entry per period that has a rollup, oldest first; counts and average latency
 * only (the latency histograms are for the uptime API's windows).
 */
export async function periods(
  sql: Queryable,
  alertIds: readonly string[],
  period: "hour" | "day",
  from: Date,
): Promise<Map<string, Period[]>> {
  const out = new Map<string, Period[]>(alertIds.map((id) => [id, []]));
  if (alertIds.length === 0) return out;
  // One row per alert, its periods as arrays: far cheaper to read than a row each (90 days ×
  // 100 alerts are 9,000 rows, whose parsing cost more than the query).
  const rows = await sql<
    {
      alert_id: string;
      starts: number[];
      evaluations: number[];
      ok: number[];
      sums: number[];
    }[]
  >`
    select alert_id,
           array_agg(date_part('epoch', bucket) * 1000 order by bucket) as starts,
           array_agg(evaluations order by bucket) as evaluations,
           array_agg(ok order by bucket) as ok,
           array_agg(latency_sum_ms order by bucket) as sums
    from check_rollups
    where alert_id = any(${alertIds as string[]}::uuid[]) and period = ${period}
      and bucket >= ${from}
    group by alert_id`;
  for (const r of rows) {
    out.set(
      r.alert_id,
      r.starts.map((start, i) => ({
        start: new Date(start),
        evaluations: r.evaluations[i],
        ok: r.ok[i],
        uptime_percent: percent(r.ok[i], r.evaluations[i]),
        latency_sum_ms: r.sums[i],
      })),
    );
  }
  return out;
}

/** Start of the UTC day / hour `at` is in. */
export const startOfDay = (at: Date) => floorTo(at, DAY_MS);
export const startOfHour = (at: Date) => floorTo(at, HOUR_MS);

/** At most this many public alerts are exported as metrics (bounded label sets). */
export const PUBLIC_CHECK_SERIES = 200;

export interface PublicCheck {
  id: string;
  name: string;
  group: string;
  state: string;
  /** Share of evaluations that passed (0..1), null without any. */
  uptime_24h: number | null;
  uptime_30d: number | null;
}

/**
 * The public alerts' state and uptime over the last 24 hours and 30 days, from the rollups (for
 * /metrics, every few seconds: never the raw results). "24h" is therefore the current hour and
 * the 24 whole hours before it, up to an hour more than the uptime API's exact 24h window.
 */
export async function publicChecks(sql: Queryable, now: Date): Promise<PublicCheck[]> {
  const from24h = startOfHour(new Date(now.getTime() - DAY_MS));
  const from30d = windowSource("30d", now).from;
  return await sql<PublicCheck[]>`
    select a.id, a.name, coalesce(a.labels ->> 'group', '') as group, a.state,
      (select sum(r.ok)::float8 / nullif(sum(r.evaluations), 0) from check_rollups r
       where r.alert_id = a.id and r.period = 'hour' and r.bucket >= ${from24h}) as uptime_24h,
      (select sum(r.ok)::float8 / nullif(sum(r.evaluations), 0) from check_rollups r
       where r.alert_id = a.id and r.period = 'day' and r.bucket >= ${from30d}) as uptime_30d
    from alerts a where a.public
    order by a.created_at, a.id
    limit ${PUBLIC_CHECK_SERIES}`;
}
